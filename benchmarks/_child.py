"""What the benchmark scripts share: a measured child process and a baseline revision's worktree.

A measurement runs in a fresh child process, so its peak memory is its own (``wait4``'s ``ru_maxrss``: the largest
of the child and the children it waited for, in KiB on Linux); a baseline revision is measured from a temporary
git worktree in the same run, so both see the same machine.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_child(cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> tuple[str, float]:
    """Run ``cmd`` to its end: (its stdout, peak RSS in MiB). Exits with the tail of its stderr when it fails."""
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
        out = proc.stdout.read()  # before waiting: a full pipe would block the child
        _, status, usage = os.wait4(proc.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            err.seek(0)
            sys.exit(f"{' '.join(cmd[:4])} ... failed ({code}):\n{err.read()[-3000:]}")
    return out, usage.ru_maxrss / 1024


@contextlib.contextmanager
def baseline_worktree(rev: str | None) -> Iterator[Path | None]:
    """A detached worktree of ``rev`` for the duration (None: no baseline), removed afterwards."""
    if not rev:
        yield None
        return
    tmp = tempfile.mkdtemp(prefix="bench-baseline-")
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "-q", "--detach", tmp, rev], check=True)
    try:
        yield Path(tmp)
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", tmp], check=False)
