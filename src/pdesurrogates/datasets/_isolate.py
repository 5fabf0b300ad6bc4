"""Reading an untrusted file in a child process, so that a crash in HDF5 is only a message.

A damaged file can make HDF5 dereference garbage and kill the process (SIGSEGV). The
``info`` and ``validate`` commands therefore read the file in a child interpreter (the
same Python, a fresh process): its result or error comes back through a pipe, and a
child killed by a signal becomes :class:`DatasetError` "HDF5 crashed reading X: the file
is corrupt". Reading inside training stays in-process.
"""

from __future__ import annotations

import dataclasses
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pdesurrogates.errors as errors
from pdesurrogates.errors import DatasetError, PdeSurrogatesError

__all__ = ["run_isolated"]

# The functions a child may run, by name (nothing else is ever looked up).
# Each with the call that reads only the metadata (timed separately). The child imports
# them by name: this module never imports the readers it runs.
_TARGETS = {
    "validate": ("pdesurrogates.datasets._validate", "metadata_only"),
    "describe": ("pdesurrogates.datasets._describe", "metadata_only"),
}
# Test hook: make the child crash or hang before it reads anything ("abort", "segv", "hang").
_CRASH_ENV = "_PDESURROGATES_CHILD_CRASH"
#: Seconds the metadata of a file may take to read in the child (HDF5 can loop forever).
METADATA_TIMEOUT = 60.0
_CHILD_CODE = "from pdesurrogates.datasets._isolate import _child_main; _child_main()"


def run_isolated(
    target: str,
    path: str | os.PathLike,
    kwargs: dict[str, Any],
    *,
    metadata_timeout: float = METADATA_TIMEOUT,
    timeout: float | None = None,
) -> Any:
    """Run ``target(path, **kwargs)`` (``validate`` or ``describe``) in a child process.

    Returns what it returns; re-raises the package error it raised (same class and
    message). A child killed by a signal raises :class:`DatasetError` saying that HDF5
    crashed reading the file. Reading the metadata (structure, attributes) must finish
    within ``metadata_timeout`` seconds, since HDF5 can loop forever on a damaged heap;
    the whole call within ``timeout`` (default: no limit, a value scan takes as long as
    the file is large). A child over time is killed and the file reported.
    """
    if target not in _TARGETS:
        raise ValueError(f"run_isolated: unknown target {target!r}; use one of {sorted(_TARGETS)}")
    request = json.dumps({"target": target, "path": str(path), "kwargs": dict(kwargs)}).encode()
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[2])  # the directory holding pdesurrogates/
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD_CODE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            env=env,
        )
        try:
            reply = _talk(proc, request, path, metadata_timeout, timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stdout.close()
        err.seek(0)
        stderr = err.read()
    return _answer(proc.returncode, reply, stderr, path)


def _talk(proc, request: bytes, path, metadata_timeout: float, timeout: float | None) -> bytes:
    """Send the request; the reply bytes (without the heartbeat), bounded in time."""
    try:
        proc.stdin.write(request)
        proc.stdin.close()
    except BrokenPipeError:
        return b""
    start = time.monotonic()
    fd, data = proc.stdout.fileno(), b""
    while True:
        limit = metadata_timeout if not data else timeout
        left = None if limit is None else limit - (time.monotonic() - start)
        if left is not None and left <= 0:
            what = "its metadata" if not data else "it"
            raise DatasetError(
                f"{path}: reading {what} did not finish within {limit:g} s and was stopped; "
                "HDF5 is looping on a damaged file: the file is corrupt. Regenerate it or "
                "copy it again; do not open it in a training run"
            )
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return data[1:]
        data += chunk


def _answer(returncode: int, reply: bytes, stderr: bytes, path) -> Any:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        raise DatasetError(
            f"HDF5 crashed reading {path} ({name}): the file is corrupt. Regenerate it or "
            "copy it again; do not open it in a training run"
        )
    try:
        status, *payload = json.loads(reply)  # data only: nothing is unpickled
    except ValueError as exc:
        tail = stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise DatasetError(
            f"{path}: the reader process failed (exit code {returncode}"
            + (f": {' | '.join(tail)}" if tail else "")
            + "); the file may be corrupt. Run again with --debug for details"
        ) from exc
    if status == "ok":
        return _decode(payload[0])
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
    if crash == "hang":
        signal.pause()
    request = json.loads(sys.stdin.buffer.read())
    target, path, kwargs = request["target"], request["path"], request["kwargs"]
    module, metadata = _TARGETS[target]
    import importlib

    mod = importlib.import_module(module)
    func = getattr(mod, target)
    try:
        try:  # the metadata phase, bounded by the parent's clock
            getattr(mod, metadata)(path, **kwargs)
        finally:
            out.write(b"\x01")  # heartbeat: the metadata was read (or refused)
            out.flush()
        reply: list = ["ok", _encode(func(path, **kwargs))]
    except PdeSurrogatesError as exc:
        reply = ["error", type(exc).__name__, str(exc)]
    except Exception as exc:  # a bug, not a bad file: still a message, never a traceback
        reply = ["error", "DatasetError", f"{path}: cannot be read ({type(exc).__name__}: {exc})"]
    out.write(json.dumps(reply, default=_plain).encode())
    out.flush()


def _plain(value: Any) -> Any:
    """JSON form of the numpy scalars, arrays and bytes a report's attributes may hold."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return str(value)


def _encode(result: Any) -> dict[str, Any]:
    """A reader's result as JSON-ready data (a ValidationReport or a text)."""
    from pdesurrogates.datasets._schema import ValidationReport

    if isinstance(result, ValidationReport):
        return {"type": "ValidationReport", "value": dataclasses.asdict(result)}
    return {"type": "text", "value": str(result)}


def _decode(data: dict[str, Any]) -> Any:
    """The inverse of :func:`_encode` (tuples restored where the report has them)."""
    if data["type"] != "ValidationReport":
        return data["value"]
    from pdesurrogates.datasets._schema import ValidationReport

    value = dict(data["value"])
    value["fields"] = {k: tuple(v) for k, v in value["fields"].items()}
    value["shapes"] = {k: tuple(v) for k, v in value["shapes"].items()}
    return ValidationReport(**value)
