"""Shared helpers for the benchmark scripts: peak memory, timing, result files.

Every benchmark runs its competitors side by side in one process, reports ratios
(ours / theirs) and peak memory, and writes ``benchmarks/results/<name>.json`` plus a
markdown table ``benchmarks/results/<name>.md``.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

RESULTS = Path(__file__).resolve().parent / "results"
_QUICK_DIR: list[str] = []  # the temporary results folder of a --quick run

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


def median_time(fn, repeats: int, warmup: int = 2, clock=time.perf_counter) -> float:
    """Median seconds of ``fn()`` over ``repeats`` calls, after ``warmup`` calls.

    ``clock`` is wall-clock time by default; ``time.thread_time`` gives the CPU time of
    the calling thread, which time slices lost to other processes do not inflate.
    """
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t0 = clock()
        fn()
        out.append(clock() - t0)
    return statistics.median(out)


def peak_rss_mb() -> float:
    """Peak resident set size of this process's own address space (MiB).

    Reads ``VmHWM`` from ``/proc/self/status`` (Linux). Unlike
    ``resource.getrusage(RUSAGE_SELF).ru_maxrss``, it starts afresh at ``exec``: a
    subprocess's ``ru_maxrss`` also counts its parent's RSS at the time of the fork, so a
    worker started from a 500 MB parent reports at least 500 MB whatever it does. Falls
    back to ``ru_maxrss`` where ``/proc`` is missing.
    """
    hwm = _proc_status_mib("VmHWM")
    if hwm is not None:
        return hwm
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
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
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


def quick_run() -> bool:
    """Whether this command line asked for ``--quick`` (argparse also takes ``--qui`` etc.)."""
    return any(len(a) >= 3 and "--quick".startswith(a.split("=")[0]) for a in sys.argv[1:])


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
    caller need not import torch); ``results_dir`` replaces ``benchmarks/results``.
    A ``--quick`` sanity run never replaces the committed results: without an explicit
    ``results_dir`` it writes into a new temporary folder and says where.
    """
    if results_dir is None and quick_run():
        if not _QUICK_DIR:  # one folder per process: incremental writes land together
            _QUICK_DIR.append(tempfile.mkdtemp(prefix=f"bench_{name}_quick_"))
        results_dir = _QUICK_DIR[0]
        print(f"--quick: results written to {results_dir}", file=sys.stderr)
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


# --- peak memory of one run, measured in a fresh process ---------------------------------

PEAK_TAG = "PEAK_RSS_JSON "


def fresh_process_peak(script, args, *, report: dict | None = None, timeout: float = 3600.0):
    """Peak memory of one run in a fresh Python process (MiB).

    Two halves of one protocol. The parent calls ``fresh_process_peak(script, args)``:
    it runs ``python script *args`` (``OMP_NUM_THREADS=1``) and returns the dict the
    worker reported. The worker (the same script, started with a worker flag) first does
    its imports and loads its inputs, calls ``base = fresh_process_peak(None, None)``,
    runs the measured code, then calls
    ``fresh_process_peak(None, None, report={"baseline_mib": base, ...})``, which prints
    ``baseline_mib``, ``peak_mib`` (absolute peak RSS of this process, ``VmHWM``) and
    ``delta_mib = peak_mib - baseline_mib`` (the memory the run needed above the process
    after imports and input load) plus the other keys of ``report``.

    The baseline call returns freed heap to the system (glibc ``malloc_trim``), resets the
    kernel's high-water mark to the current RSS (Linux ``/proc/self/clear_refs``) and
    returns that RSS, so neither a transient peak of the imports nor memory the loading
    freed hides the run's own (what is still counted low: a run's allocations that reuse
    free memory the allocator keeps below the top of its heap). Off Linux it falls back
    to ``ru_maxrss`` without a reset (then ``delta_mib`` is a lower bound). Unlike an RSS
    delta inside a long-lived process, memory the allocator kept
    from an earlier run does not hide the figure either.
    """
    import subprocess

    if script is None:
        # VmHWM, the high-water mark of this process's own memory map: ru_maxrss would also
        # hold the parent's peak, inherited through fork/vfork + exec
        peak = peak_rss_mb()
        if report is not None:
            out = {**report, "peak_mib": peak, "delta_mib": peak - float(report["baseline_mib"])}
            print(PEAK_TAG + json.dumps(out, default=float), flush=True)
            return out
        try:  # hand freed heap back first, so that the run's allocations show up in the RSS
            import ctypes

            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
        except OSError:
            return peak
        rss = _proc_status_mib("VmRSS")
        return peak if rss is None else rss
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(script), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(PEAK_TAG)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            f"memory worker {script} {' '.join(map(str, args))} failed (exit "
            f"{proc.returncode}):\n{proc.stderr[-2000:]}"
        )
    return json.loads(lines[-1][len(PEAK_TAG) :])


def _proc_status_mib(field: str) -> float | None:
    """``field`` (e.g. ``VmHWM``) of ``/proc/self/status`` in MiB; ``None`` off Linux."""
    try:
        with open("/proc/self/status") as fh:
            line = next(ln for ln in fh if ln.startswith(field + ":"))
    except (OSError, StopIteration):
        return None
    return float(line.split()[1]) / 1024
