"""Where the model stage's time and memory go: rebuilds ``<artifacts>/model`` (force) and prints, for each phase
(a progress message, loss figures folded), its seconds and the peak RSS of this process while it was current
(sampled every 50 ms from /proc/self/status, Linux).

    PYTHONPATH=. OPENBLAS_NUM_THREADS=1 python benchmarks/model_stage_memory.py /work/bench/oct_m
"""
from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recsys.model.stage import build_model_stage


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main(root: str) -> None:
    t0 = time.perf_counter()
    state = {"phase": "start", "peak": 0.0, "t": t0}
    lock = threading.Lock()

    def sample() -> None:
        while True:
            r = rss_mb()
            with lock:
                state["peak"] = max(state["peak"], r)
            time.sleep(0.05)

    def progress(fraction: float, message: str) -> None:
        phase = message.split(" loss ")[0].split(": loss")[0][:60]
        with lock:
            if phase != state["phase"]:
                now = time.perf_counter()
                print(f"{now - t0:7.1f} s  {now - state['t']:6.1f} s  peak {state['peak']:8,.0f} MB  {state['phase']}",
                      flush=True)
                state.update(phase=phase, peak=rss_mb(), t=now)

    threading.Thread(target=sample, daemon=True).start()
    build_model_stage(root, force=True, progress=progress)
    progress(1.0, "end")


if __name__ == "__main__":
    main(sys.argv[1])
