"""Safe writing of output files: input checks, exclusive write locks, atomic replacement.

Every command that writes a file follows the same three rules:

1. **No input is destroyed.** :func:`check_not_input` refuses an output that is one of the
   command's inputs, compared both by resolved path (symbolic links followed) and by
   identity on disk (device and inode: hard links too), ``--overwrite`` or not.
2. **One writer per destination.** :class:`WriteLock` creates ``<output>.lock`` with
   ``O_CREAT | O_EXCL`` before anything is written. The lock file records the holder (pid,
   host, start time, command, the partial file it writes). A second writer fails at once
   with a message naming the holder. A lock whose holder is dead (same host, pid gone or
   reused) is reported as stale with what to do: it is never taken over silently.
3. **The old file is replaced only by a complete new one.** Data go to a temporary file in
   the destination directory, which :func:`atomic_replace` flushes to disk and renames over
   the destination (then flushes the directory).

While a writer holds the lock it may use a deterministic temporary name (the dataset
writer uses ``<output>.partial``, so an interrupted run can be resumed): the lock makes
that name private to one writer. Writers without a lock use :func:`unique_partial`.

Ctrl-C during a long write is held back by :class:`DeferredInterrupt` and raised as
:class:`KeyboardInterrupt` at the next block boundary (:func:`check_interrupt`). Raised in
the middle of an HDF5 call it could land in a callback of the HDF5 library's object
registry, where Python prints and drops it, and the write would carry on to the end.

Examples
--------
>>> import os, tempfile
>>> from pdesurrogates._files import WriteLock, check_not_input
>>> d = tempfile.mkdtemp()
>>> out = os.path.join(d, "out.h5")
>>> with WriteLock(out, command="demo"):
...     os.path.exists(out + ".lock")
True
>>> os.path.exists(out + ".lock")
False
>>> check_not_input(out, [os.path.join(d, "in.h5")])  # a different file: fine
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterable
from contextlib import ContextDecorator
from pathlib import Path
from typing import Any

from pdesurrogates.errors import OutputError

__all__ = [
    "LOCK_SUFFIX",
    "DeferredInterrupt",
    "WriteLock",
    "atomic_replace",
    "check_interrupt",
    "check_not_input",
    "fsync_dir",
    "lock_path",
    "pid_alive",
    "read_lock",
    "same_file",
    "unique_partial",
]

LOCK_SUFFIX = ".lock"


# --- same-file checks ---------------------------------------------------------------------
def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether ``a`` and ``b`` name the same file: equal resolved paths, or (when both
    exist) the same device and inode, which also catches hard links."""
    pa, pb = Path(a), Path(b)
    try:
        if pa.resolve() == pb.resolve():
            return True
    except (OSError, RuntimeError):  # a symlink loop: compare identities below
        pass
    try:
        return os.path.samefile(pa, pb)
    except (OSError, ValueError):  # one of them does not exist (yet)
        return False


def check_not_input(
    output: str | os.PathLike,
    inputs: Iterable[str | os.PathLike | None],
    *,
    also: Iterable[str | os.PathLike] = (),
) -> None:
    """Raise :class:`OutputError` if ``output`` (or a sibling the writer will touch, given
    in ``also``: its partial and lock files) is one of ``inputs``."""
    targets = [Path(output), *(Path(p) for p in also)]
    for inp in inputs:
        if inp is None:
            continue
        for t in targets:
            if same_file(t, inp):
                which = "" if t == Path(output) else f" (its working file {t})"
                raise OutputError(
                    f"-o {output}{which} is the input {inp} of this command: writing there "
                    "would destroy the input (--overwrite does not change that). Choose "
                    "another output path"
                )


# --- atomic replacement ---------------------------------------------------------------------
def fsync_dir(directory: str | os.PathLike) -> None:
    """Flush a directory entry (a rename or a new file) to disk, where the OS allows it."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover (platforms without directory handles)
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def atomic_replace(tmp: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Flush the complete file ``tmp`` to disk and rename it over ``dest`` (same directory)."""
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, dest)
    fsync_dir(Path(dest).parent)
    return Path(dest)


def unique_partial(dest: str | os.PathLike) -> Path:
    """A fresh temporary name beside ``dest``: ``.<name>.<pid>.<random>.partial``."""
    dest = Path(dest)
    return dest.parent / f".{dest.name}.{os.getpid()}.{secrets.token_hex(4)}.partial"


# --- write locks ----------------------------------------------------------------------------
def lock_path(dest: str | os.PathLike) -> Path:
    """The lock file of a destination: ``<dest>.lock`` beside it."""
    return Path(str(dest) + LOCK_SUFFIX)


def _proc_start(pid: int) -> str | None:
    """The start time of a process (clock ticks since boot) where ``/proc`` tells it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def pid_alive(pid: int, proc_start: str | None = None) -> bool:
    """Whether process ``pid`` of this host runs (not a zombie, not a reused pid)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        pass
    except OSError:  # pragma: no cover
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X"):
            return False
    except (OSError, IndexError):
        pass
    if proc_start is not None:
        now = _proc_start(pid)
        if now is not None and now != proc_start:
            return False  # the pid was reused by another process
    return True


def read_lock(path: str | os.PathLike) -> dict[str, Any] | None:
    """The holder recorded in a lock file, or None when it is empty or unreadable."""
    try:
        info = json.loads(Path(path).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return info if isinstance(info, dict) else None


def _command() -> str:
    prog = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path("python")
    name = prog.parent.name if prog.name == "__main__.py" else prog.name  # python -m pkg
    argv = [name, *sys.argv[1:]]
    text = " ".join(argv)
    return text if len(text) <= 300 else text[:297] + "..."


class WriteLock:
    """Exclusive right to write ``dest``: the lock file ``<dest>.lock``, made with ``O_EXCL``.

    Parameters
    ----------
    dest : path-like
        The destination the lock protects.
    command : str, optional
        What the holder runs (recorded for the message a second writer gets).
    partial : path-like, optional
        The working file the holder writes (recorded in the lock file).

    A second :meth:`acquire` for the same destination, from any process, raises
    :class:`~pdesurrogates.errors.OutputError` naming the holder, or, when the holder is
    dead, saying the lock is stale and to remove the lock file. :meth:`release` removes the
    lock file only if it still holds this lock's token.
    """

    def __init__(
        self,
        dest: str | os.PathLike,
        *,
        command: str | None = None,
        partial: str | os.PathLike | None = None,
    ) -> None:
        self.dest = Path(dest)
        self.path = lock_path(dest)
        self.command = command or _command()
        self.partial = None if partial is None else str(partial)
        self.token = secrets.token_hex(8)
        self.held = False

    def acquire(self) -> WriteLock:
        if self.held:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "started_unix": time.time(),
            "proc_start": _proc_start(os.getpid()),
            "command": self.command,
            "dest": str(self.dest),
            "partial": self.partial,
            "token": self.token,
        }
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError as exc:
            raise self._held_error() from exc
        except OSError as exc:
            raise OutputError(
                f"{self.dest}: cannot create the lock file {self.path} ({exc}); check that "
                "the directory exists and is writable"
            ) from exc
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(json.dumps(info))
                fh.flush()
                os.fsync(fh.fileno())
        except BaseException:
            self.path.unlink(missing_ok=True)
            raise
        self.held = True
        return self

    def _held_error(self) -> OutputError:
        info = read_lock(self.path)
        if info is None:
            return OutputError(
                f"{self.dest}: the lock file {self.path} exists but is empty or damaged (a "
                "writer was starting, or was killed as it started). If no other run writes "
                f"{self.dest}, remove {self.path} and run again"
            )
        pid, host = info.get("pid"), info.get("host")
        holder = f"pid {pid} on host {host} (started {info.get('started')}: {info.get('command')})"
        if host == socket.gethostname() and isinstance(pid, int):
            if not pid_alive(pid, info.get("proc_start")):
                partial = info.get("partial")
                resume = (
                    f"; its unfinished {partial} is kept: continue it with --resume"
                    if partial and Path(partial).exists()
                    else ""
                )
                return OutputError(
                    f"{self.dest}: stale lock {self.path}: it was left by {holder}, which is "
                    f"no longer running (killed or crashed). Remove {self.path} and run "
                    f"again{resume}"
                )
        return OutputError(
            f"{self.dest}: is being written by {holder}; lock file {self.path}. Wait for "
            "that run to finish or choose another output path (if that run is over, remove "
            "the lock file)"
        )

    def release(self) -> None:
        """Remove the lock file if it is still this lock's."""
        if not self.held:
            return
        self.held = False
        info = read_lock(self.path)
        if info is not None and info.get("token") == self.token:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> WriteLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<WriteLock {self.path} {'held' if self.held else 'free'}>"


# --- Ctrl-C during long writes ----------------------------------------------------------------
_SIGINT = {"pending": False, "depth": 0}


def _hold_sigint(signum: int, frame: Any) -> None:
    if _SIGINT["pending"]:  # pressed again before a block boundary: stop at once
        raise KeyboardInterrupt
    _SIGINT["pending"] = True


def check_interrupt() -> None:
    """Raise :class:`KeyboardInterrupt` if Ctrl-C was pressed inside a
    :class:`DeferredInterrupt` block (call it between the blocks of a long loop)."""
    if _SIGINT["pending"] and threading.current_thread() is threading.main_thread():
        _SIGINT["pending"] = False
        raise KeyboardInterrupt


class DeferredInterrupt(ContextDecorator):
    """Within the block (or the decorated function), Ctrl-C (SIGINT) sets a flag instead
    of raising at once.

    The flag is raised as :class:`KeyboardInterrupt` by :func:`check_interrupt` (called
    between the blocks of a write loop) or, at the latest, when the block ends; a second
    Ctrl-C before that raises at once. Blocks nest. The handler is installed only in the
    main thread and only when Ctrl-C has Python's default handler (a caller that ignores
    or handles SIGINT itself keeps its handler); the old handler is restored on exit.

    Examples
    --------
    ``with DeferredInterrupt(): for block in blocks: write(block); check_interrupt()``
    stops after the block being written when Ctrl-C is pressed, with
    :class:`KeyboardInterrupt`, so the caller's clean-up (deleting or keeping a partial
    file) runs.
    """

    def _recreate_cm(self) -> DeferredInterrupt:  # a fresh state for each decorated call
        return type(self)()

    def __enter__(self) -> DeferredInterrupt:
        self._installed = False
        self._active = threading.current_thread() is threading.main_thread() and (
            _SIGINT["depth"] > 0 or signal.getsignal(signal.SIGINT) is signal.default_int_handler
        )
        if self._active:
            if _SIGINT["depth"] == 0:
                self._old = signal.signal(signal.SIGINT, _hold_sigint)
                self._installed = True
                _SIGINT["pending"] = False
            _SIGINT["depth"] += 1
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if not self._active:
            return
        _SIGINT["depth"] -= 1
        if self._installed:
            signal.signal(signal.SIGINT, self._old)
        if exc_type is None:
            check_interrupt()
        elif self._installed:
            _SIGINT["pending"] = False  # the block fails anyway
