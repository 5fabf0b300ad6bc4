"""Shared helpers for the benchmark scripts: peak memory, timing, result files.

Every benchmark runs its competitors side by side in one process, reports ratios
(ours / theirs) and peak memory, and writes ``benchmarks/results/<name>.json`` plus a
markdown table ``benchmarks/results/<name>.md``.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

RESULTS = Path(__file__).resolve().parent / "results"

__all__ = [
    "RESULTS",
    "PeakMemory",
    "Timer",
    "environment",
    "markdown_table",
    "peak_rss_mb",
    "write_results",
]


class PeakMemory:
    """Context manager measuring the peak resident set size above the starting RSS.

    A background thread samples the process RSS every ``interval`` seconds, so the figure
    covers memory allocated by numpy, torch, HDF5 and anything else (tracemalloc sees only
    Python allocations).

    Attributes after exit: ``peak_mb`` (peak RSS − RSS at entry, MiB) and ``peak_rss_mb``.
    """

    def __init__(self, interval: float = 0.005):
        self.interval = interval
        self._proc = psutil.Process(os.getpid())
        self.peak_mb = 0.0
        self.peak_rss_mb = 0.0

    def _run(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, self._proc.memory_info().rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        self._start = self._proc.memory_info().rss
        self._peak = self._start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self._proc.memory_info().rss)
        self.peak_mb = (self._peak - self._start) / 2**20
        self.peak_rss_mb = self._peak / 2**20


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds`` (wall clock, perf_counter)."""

    def __enter__(self) -> Timer:
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self._t0


def peak_rss_mb() -> float:
    """Peak resident set size of this process's own address space (MiB).

    Reads ``VmHWM`` from ``/proc/self/status`` (Linux). Unlike
    ``resource.getrusage(RUSAGE_SELF).ru_maxrss``, it starts afresh at ``exec``: a
    subprocess's ``ru_maxrss`` also counts its parent's RSS at the time of the fork, so a
    worker started from a 500 MB parent reports at least 500 MB whatever it does. Falls
    back to ``ru_maxrss`` where ``/proc`` is missing.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    scale = 2**20 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def environment() -> dict:
    """Machine and library facts stored with every result file."""
    import numpy
    import torch

    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "numpy": numpy.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def markdown_table(rows: list[dict], columns: list[str] | None = None) -> str:
    """Render a list of dicts as a markdown table (floats with 4 significant digits)."""
    if not rows:
        return ""
    columns = columns or list(rows[0])

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def write_results(
    name: str,
    data: dict,
    markdown: str,
    *,
    command: str | None = None,
    env: dict | None = None,
    results_dir: str | os.PathLike | None = None,
) -> Path:
    """Write ``results/<name>.json`` and ``results/<name>.md`` atomically.

    ``command`` (default: the command line that ran) is recorded in both files. ``env``
    replaces :func:`environment` (e.g. facts gathered in a worker process, so that the
    caller need not import torch); ``results_dir`` replaces ``benchmarks/results``
    (e.g. a temporary folder for a smoke run).
    """
    out = RESULTS if results_dir is None else Path(results_dir)
    out.mkdir(parents=True, exist_ok=True)
    command = command or " ".join(["python", *sys.argv])
    env = environment() if env is None else env
    payload = {"benchmark": name, "command": command, "environment": env, **data}
    md = f"# Benchmark: {name}\n\nCommand: `{command}`\n\n{markdown}"
    for suffix, text in ((".json", json.dumps(payload, indent=2, default=float)), (".md", md)):
        target = out / f"{name}{suffix}"
        fd, tmp = tempfile.mkstemp(dir=out, prefix=f".{name}", suffix=".partial")
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, target)
    return out / f"{name}.json"
