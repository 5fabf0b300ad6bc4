"""Reading an untrusted file in a child process, so that a crash in HDF5 is only a message.

A damaged file can make HDF5 dereference garbage and kill the process (SIGSEGV). The
``info`` and ``validate`` commands therefore read the file in a child interpreter (the
same Python, a fresh process): its result or error comes back through a pipe, and a
child killed by a signal becomes :class:`DatasetError` "HDF5 crashed reading X: the file
is corrupt". Reading inside training stays in-process.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pdesurrogates.errors as errors
from pdesurrogates.errors import DatasetError, PdeSurrogatesError

__all__ = ["run_isolated"]

# The functions a child may run, by name (nothing else is ever looked up).
_TARGETS = {
    "validate": ("pdesurrogates.datasets._validate", "validate"),
    "describe": ("pdesurrogates.datasets._describe", "describe"),
}
# Test hook: make the child crash before it reads anything ("abort" or "segv").
_CRASH_ENV = "_PDESURROGATES_CHILD_CRASH"
_CHILD_CODE = "from pdesurrogates.datasets._isolate import _child_main; _child_main()"


def run_isolated(
    target: str, path: str | os.PathLike, kwargs: dict[str, Any], *, timeout: float | None = None
) -> Any:
    """Run ``target(path, **kwargs)`` (``validate`` or ``describe``) in a child process.

    Returns what it returns; re-raises the package error it raised (same class and
    message). A child killed by a signal raises :class:`DatasetError` saying that HDF5
    crashed reading the file; a child that outlives ``timeout`` seconds is killed and
    reported as hanging.
    """
    if target not in _TARGETS:
        raise ValueError(f"run_isolated: unknown target {target!r}; use one of {sorted(_TARGETS)}")
    request = pickle.dumps((target, str(path), dict(kwargs)))
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[2])  # the directory holding pdesurrogates/
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD_CODE],
            input=request,
            capture_output=True,
            timeout=timeout,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise DatasetError(
            f"{path}: reading it did not finish within {timeout} s (the reader was stopped); "
            "the file is corrupt or too large for this check"
        ) from exc
    if proc.returncode < 0:
        try:
            name = signal.Signals(-proc.returncode).name
        except ValueError:
            name = f"signal {-proc.returncode}"
        raise DatasetError(
            f"HDF5 crashed reading {path} ({name}): the file is corrupt. Regenerate it or "
            "copy it again; do not open it in a training run"
        )
    try:
        status, *payload = pickle.loads(proc.stdout)  # our own child's reply
    except Exception as exc:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise DatasetError(
            f"{path}: the reader process failed (exit code {proc.returncode}"
            + (f": {' | '.join(tail)}" if tail else "")
            + "); the file may be corrupt. Run again with --debug for details"
        ) from exc
    if status == "ok":
        return payload[0]
    cls_name, message = payload
    cls = getattr(errors, cls_name, DatasetError)
    if not (isinstance(cls, type) and issubclass(cls, PdeSurrogatesError)):
        cls = DatasetError
    raise cls(message)


def _child_main() -> None:  # pragma: no cover - runs in the child process
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but the reply goes to the pipe
    crash = os.environ.get(_CRASH_ENV, "")
    if crash == "abort":
        os.abort()
    if crash == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    target, path, kwargs = pickle.loads(sys.stdin.buffer.read())
    module, name = _TARGETS[target]
    import importlib

    func = getattr(importlib.import_module(module), name)
    try:
        reply: tuple = ("ok", func(path, **kwargs))
    except PdeSurrogatesError as exc:
        reply = ("error", type(exc).__name__, str(exc))
    except Exception as exc:  # a bug, not a bad file: still a message, never a traceback
        reply = ("error", "DatasetError", f"{path}: cannot be read ({type(exc).__name__}: {exc})")
    out.write(pickle.dumps(reply))
    out.flush()
