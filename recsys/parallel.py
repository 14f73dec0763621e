"""One build stage in a second process, beside the stages the build runs in its own.

The evaluation reads only the events stage and fits every model again on its own split, so on a small store it
can run while this process trains the served model: on two cores the demo store's first start takes about the
longer of the two instead of their sum (``benchmarks/first_start.py``). The second process is a fresh interpreter
(no fork of a process that holds torch, DuckDB or OpenMP threads); it writes its stage into this build's journal
(``join_transaction``), so the build's commit or rollback covers it, and reports progress and its result as JSON
lines on a pipe of its own. Every model is seeded per stage, so the artifacts are the same bytes as a build that
runs the stages in turn.
"""
from __future__ import annotations

import base64
import importlib
import json
import os
import pickle
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from recsys.artifacts import Progress
from recsys.journal import join_transaction

_CHILD = "import sys; from recsys.parallel import _child_main; _child_main(sys.argv[1:])"


class StageProcess:
    """Runs ``target`` (``module:function``, a stage function) in a second process; ``wait()`` returns
    ``{"built": bool, "duration_s": float}`` as ``build`` reports a stage, or raises the error the stage raised."""

    def __init__(self, target: str, root: Path, journal: Path, *, force: bool):
        self.target = target
        self.fraction, self.message = 0.0, ""
        self._result: dict[str, Any] | None = None
        self._error: dict[str, str] | None = None
        read_fd, write_fd = os.pipe()
        env = dict(os.environ)  # the child imports what this process imports (a test's stage function too)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", _CHILD, target, str(root), str(journal), "1" if force else "0", str(write_fd),
                 str(os.getpid())],
                pass_fds=(write_fd,), env=env, stdin=subprocess.DEVNULL)
        finally:
            os.close(write_fd)
        self._reader = threading.Thread(target=self._read, args=(read_fd,), daemon=True)
        self._reader.start()

    def _read(self, fd: int) -> None:
        with os.fdopen(fd, encoding="utf-8") as lines:
            for line in lines:
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                if "progress" in msg:
                    self.fraction, self.message = float(msg["progress"]), str(msg.get("message", ""))
                elif "done" in msg:
                    self._result = msg["done"]
                elif "error" in msg:
                    self._error = msg["error"]

    def running(self) -> bool:
        return self._proc.poll() is None

    def wait(self, progress: Progress, timeout: float = 0.25) -> dict[str, Any]:
        """Block until the stage ends, calling ``progress(fraction, message)`` from this thread meanwhile."""
        while True:
            try:
                code = self._proc.wait(timeout=timeout)
                break
            except subprocess.TimeoutExpired:
                progress(self.fraction, self.message)
        self._reader.join()
        if self._result is not None and code == 0:
            return self._result
        raise self._exception(code)

    def _exception(self, code: int) -> BaseException:
        err = self._error
        if err is None:  # killed (out of memory, a signal) before it could say why
            how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
            return RuntimeError(f"the stage process for {self.target} {how} without a result "
                                f"(out of memory? run the build again with RECSYS_BUILD_PARALLEL=0)")
        try:
            exc = pickle.loads(base64.b64decode(err["pickle"]))
            if isinstance(exc, BaseException):
                return exc
        except Exception:  # an exception class that does not unpickle (the project's own define __reduce__)
            pass
        return RuntimeError(f"{err.get('type', 'error')}: {err.get('message', 'the stage failed')}")

    def stop(self) -> None:
        """End the process if it still runs (this build failed elsewhere) and wait for it."""
        if self.running():
            self._proc.terminate()
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._reader.join(timeout=5)


def _end_with_parent(parent: str) -> None:
    """Get SIGTERM when the parent dies (Linux): a killed build's next run rolls its journal back, and this
    process must not go on writing into it. The parent may already be gone by now: then end at once."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the closed pipe ends this process at its next progress report instead
    if str(os.getppid()) != parent:
        sys.exit(128 + signal.SIGTERM)


def stage_function(target: str) -> Callable[..., tuple[dict, bool]]:
    """The stage function a ``module:function`` target names (imported only when the stage runs)."""
    module, func = target.split(":")
    return getattr(importlib.import_module(module), func)


def _child_main(argv: list[str]) -> None:
    """The second process: run one stage inside the parent's journal, report on the pipe, exit 0 or 1."""
    target, root, journal, force, fd, parent = argv
    out = os.fdopen(int(fd), "w", encoding="utf-8", buffering=1)

    def send(**msg: Any) -> None:
        out.write(json.dumps(msg, default=str) + "\n")

    # stopped by the parent (its build failed): unwind, so the half-written stage folder is removed on the way out
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    _end_with_parent(parent)
    try:
        with join_transaction(Path(journal)):
            manifest, built = stage_function(target)(
                root, force=force == "1", progress=lambda f, m: send(progress=f, message=m))
        send(done={"built": built, "duration_s": manifest["duration_s"]})
    except BaseException as exc:  # the parent raises it again; its CLI, app or API says it in one line
        try:
            blob = base64.b64encode(pickle.dumps(exc)).decode()
        except Exception:
            blob = ""
        send(error={"pickle": blob, "type": type(exc).__name__, "message": str(exc)})
        out.close()
        sys.exit(1)
    out.close()
