"""Run every benchmark and rewrite the measured block at the top of ``benchmarks/RESULTS.md``.

    PYTHONPATH=. OPENBLAS_NUM_THREADS=1 python benchmarks/run_all.py --quick          # the demo store, minutes
    PYTHONPATH=. OPENBLAS_NUM_THREADS=1 python benchmarks/run_all.py \\
        --artifacts /work/bench/octnov --inputs /work/bench/data/oct-109.9M-2019-1{0,1}.csv   # full size, hours

Each benchmark runs as its own process, one after another (never two at once: they share the two cores), with
its command, exit code, wall time and output recorded. The figures themselves are the benchmarks' own: each
prints its medians and the ratio against the baseline it measures in the same run (a raw DuckDB COPY for
ingest, exact search for the index, the popularity-only protocol for the evaluation, the two-tower alone for a
served call, a sequential client for the API, the Funnel page for the analyst pages, a baseline revision where
one is given). The block starts with the machine (CPU, cores, memory, Python, the pinned packages) and the load
average at the start, so a figure from a busy machine can be told apart.

``--quick`` builds the demo store into a temporary directory (or uses ``--artifacts``) and runs every benchmark
with few repeats. ``--only NAME ...`` runs some; ``--dry-run`` prints the plan. The block between the
``run_all`` markers is replaced; the dated sections below it (earlier measurements, each with its command) stay.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._child import REPO  # noqa: E402

RESULTS = REPO / "benchmarks" / "RESULTS.md"
BEGIN, END = "<!-- run_all: begin (written by benchmarks/run_all.py) -->", "<!-- run_all: end -->"
PACKAGES = ("streamlit", "pandas", "numpy", "duckdb", "pyarrow", "torch", "faiss-cpu", "lightgbm", "implicit",
            "fastapi", "uvicorn")


@dataclass
class Bench:
    name: str
    argv: list[str]
    what: str
    timeout_s: float


def plan(art: Path, inputs: list[Path], quick: bool) -> list[Bench]:
    """The benchmarks in the order they run: cheap and read-only first, stage rebuilds after."""
    b = str(REPO / "benchmarks")
    a = str(art)
    runs = "3" if quick else "5"
    hour = 3600.0
    out = [
        Bench("ingest", [f"{b}/ingest.py", *map(str, inputs), "--repeat", runs,
                         "--pandas-max-rows", "10000000"],
              "ingest vs a raw DuckDB CSV->Parquet COPY of the same file(s), and pandas where it fits", 3 * hour),
        Bench("aggregates", [f"{b}/aggregates.py", "--artifacts", a, "--runs", runs],
              "the aggregates stage rebuilt: seconds per step, peak RSS", 2 * hour),
        Bench("rules", [f"{b}/rules.py", "--artifacts", a, "--runs", runs],
              "affinity mining: Apriori vs FP-growth", hour),
        Bench("eda_pages", [f"{b}/eda_pages.py", "--artifacts", a, "--runs", runs],
              "Explore pages: uncached and cached script runs per filter setting", hour),
        Bench("analyst_pages", [f"{b}/analyst_pages.py", "--artifacts", a, "--runs", runs],
              "Retention and Customers pages against the Funnel page", hour),
        Bench("pages_first_visit", [f"{b}/pages_first_visit.py", a],
              "every page's first visit and rerun in a fresh session", hour),
        Bench("recommend", [f"{b}/recommend.py", "--artifacts", a, "--runs", runs,
                            "--calls", "300" if quick else "1000"],
              "one served recommend_products_for_user call against the two-tower alone", hour),
        Bench("search", [f"{b}/search.py", "--artifacts", a, "--runs", runs],
              "text search: BM25 against the query tower", hour),
        Bench("api_load", [f"{b}/api_load.py", "--artifacts", a, "--runs", runs,
                           "--requests", "500" if quick else "2000"],
              "REST API: 20 concurrent clients against a sequential single client", hour),
        Bench("train_throughput", [f"{b}/train_throughput.py", "--artifacts", a, "--runs", runs],
              "two-tower training examples/s", hour),
        Bench("evaluation", [f"{b}/evaluation.py", a, "--repeat", "1" if not quick else "2"],
              "the evaluation stage rebuilt against the popularity-only protocol", 3 * hour),
    ]
    if quick:
        out.append(Bench("first_start", [f"{b}/first_start.py", "--runs", "1"],
                         "the demo store's first start, stages beside each other against in turn", hour))
    return out


def machine() -> list[str]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else "?"
    mem = next((int(line.split()[1]) / 1024 ** 2 for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")), float("nan")) if Path("/proc/meminfo").exists() else float("nan")
    from importlib.metadata import PackageNotFoundError, version

    def v(p: str) -> str:
        try:
            return version(p)
        except PackageNotFoundError:
            return "absent"

    return [f"- machine: {cpu}, {os.cpu_count()} cores, {mem:.1f} GiB RAM, {platform.platform()}",
            f"- Python {platform.python_version()}; " + ", ".join(f"{p} {v(p)}" for p in PACKAGES)]


def run(bench: Bench, env: dict[str, str]) -> dict:
    t0, load = time.perf_counter(), os.getloadavg()[0]
    try:
        proc = subprocess.run([sys.executable, *bench.argv], cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=bench.timeout_s)
        code, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        raw = exc.stdout or ""
        code, out, err = "timeout", raw.decode() if isinstance(raw, bytes) else raw, ""
    return {"bench": bench, "code": code, "seconds": time.perf_counter() - t0, "load": load,
            "out": out.strip(), "err": err.strip()}


def block(results: list[dict], header: list[str]) -> str:
    lines = [BEGIN, "", *header, ""]
    lines += ["| benchmark | what | exit | wall | load at start |", "|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['bench'].name} | {r['bench'].what} | {r['code']} | {r['seconds']:.0f} s | {r['load']:.2f} |")
    for r in results:
        cmd = "python " + " ".join(os.path.relpath(x, REPO) if x.startswith(str(REPO)) else x for x in r["bench"].argv)
        lines += ["", f"### {r['bench'].name}", "", f"`{cmd}` (exit {r['code']}, {r['seconds']:.0f} s)", "", "```",
                  r["out"][-6000:] or "(no output)"]
        if r["code"] != 0 and r["err"]:
            lines += ["--- stderr (tail) ---", r["err"][-2000:]]
        lines.append("```")
    return "\n".join(lines + ["", END])


def rewrite(text: str, new_block: str) -> str:
    """``text`` with its run_all block replaced (or inserted after the title and intro paragraph)."""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        return head + new_block + rest.split(END, 1)[1]
    first = text.find("\n## ")
    return (text + "\n\n" + new_block + "\n") if first < 0 else text[:first + 1] + new_block + "\n" + text[first:]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="the demo store (built under a temporary directory)")
    p.add_argument("--artifacts", type=Path, help="a built artifacts directory (full size: every stage built)")
    p.add_argument("--inputs", type=Path, nargs="+", help="the CSV file(s) those artifacts were built from")
    p.add_argument("--only", nargs="+", help="run only these benchmarks")
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--dry-run", action="store_true")
    args = p.parse_args(argv)
    if not args.quick and not (args.artifacts and args.inputs):
        p.error("give --quick, or --artifacts and --inputs of a full-size build")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OPENBLAS_NUM_THREADS": "1"}
    started, load = dt.datetime.now(dt.timezone.utc), os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="run-all-") as tmp:
        art = args.artifacts or Path(tmp) / "demo"
        if args.artifacts is None and not args.dry_run:
            print(f"building the demo store in {art} ...", file=sys.stderr, flush=True)
            subprocess.run([sys.executable, "-m", "recsys", "build", "--artifacts", str(art)], cwd=REPO, env=env,
                           check=True, capture_output=True)
        inputs = args.inputs or sorted((art / "raw").glob("*.csv"))
        # described now: a quick run's demo store (and its raw CSV) goes with the temporary directory
        described = ", ".join(f"{p.name} ({p.stat().st_size / 1e9:.2f} GB)" for p in inputs)
        benches = plan(art, inputs, args.quick)
        if args.only:
            unknown = set(args.only) - {b.name for b in benches}
            if unknown:
                p.error(f"unknown benchmark(s) {sorted(unknown)}: choose from {[b.name for b in benches]}")
            benches = [b for b in benches if b.name in args.only]
        if args.dry_run:
            for b in benches:
                print(b.name, " ".join(b.argv))
            return 0
        results = []
        for b in benches:
            print(f"{b.name} ...", file=sys.stderr, flush=True)
            results.append(run(b, env))
            print(f"{b.name}: exit {results[-1]['code']} in {results[-1]['seconds']:.0f} s", file=sys.stderr,
                  flush=True)
    mode = "quick (the demo store)" if args.quick and not args.artifacts else f"artifacts {art}"
    header = [f"## Latest `run_all.py` run: {started:%Y-%m-%d %H:%M} UTC, {mode}", "",
              f"- load average at start: {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1 / 5 / 15 min)",
              *machine(), f"- inputs: {described}"]
    text = args.results.read_text() if args.results.exists() else "# Benchmark results\n"
    tmp_out = args.results.with_name(".tmp-" + args.results.name)
    tmp_out.write_text(rewrite(text, block(results, header)))
    tmp_out.replace(args.results)
    failed = [r["bench"].name for r in results if r["code"] != 0]
    print(f"wrote {args.results}" + (f"; failed: {', '.join(failed)}" if failed else ""), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
