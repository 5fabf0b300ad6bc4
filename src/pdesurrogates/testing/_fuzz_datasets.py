"""Fuzzing the dataset readers: mutated ``pdesurrogates-h5`` files, every outcome classified.

:func:`fuzz_datasets` writes small valid files with :class:`DatasetWriter` (then copies
them with Fletcher32 checksums on every dataset, see :func:`checksummed_copy`), mutates
them (truncations, byte flips in the superblock, the metadata and the data, and every
schema-level defect of :data:`DEFECTS`), and runs ``validate``, ``validate(deep=True)``,
``open_dataset`` + reading every sample, ``open_xarray`` and ``describe`` on each. The
readers run in a worker process, so a crash or a hang is observed, not suffered. Each case
is one of:

- ``rejected_clearly``: every reader raised a :class:`~pdesurrogates.errors.PdeSurrogatesError`
  naming the file, or accepted it with the original values;
- ``accepted_correct``: ``validate`` accepted it and every reader gave the original values;
- ``traceback``: some reader raised another exception, or an error not naming the file;
- ``crash``: the worker died, and the isolated ``validate`` did not report it as corrupt;
- ``hang``: a case took more than ``timeout`` seconds;
- ``silent_acceptance``: a reader accepted the file and returned other values.

Every case is reproducible from ``(seed, index)``.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pdesurrogates.testing._dataset_files import N_SAMPLES, NX, build_base, checksummed_copy

__all__ = [
    "DEFECTS",
    "build_base",
    "checksummed_copy",
    "defects",
    "fuzz_datasets",
    "run_readers",
]


def _reference(path: Path) -> dict[str, np.ndarray]:
    from pdesurrogates.datasets import open_dataset

    ds = open_dataset(path, dtype=None)
    try:
        ref = {f"fields/{k}": ds.load(k) for k in ds.field_names}
        ref["fields/mask"] = ref["fields/mask"][0]
        ref.update({f"params/{k}": ds.param_values(k) for k in ds.params})
        ref.update({k: ds.coords[k] for k in ("x", "y", "component")})
    finally:
        ds.close()
    return ref


# --- schema-level defects -----------------------------------------------------------
def _recreate(f: h5py.File, name: str, data, **attrs) -> None:
    old = dict(f[name].attrs) if name in f else {}
    if name in f:
        del f[name]
    f[name] = data
    for k, v in {**old, **attrs}.items():
        if k not in ("DIMENSION_LIST", "REFERENCE_LIST", "CLASS", "NAME"):
            f[name].attrs[k] = v


def _set(name: str, index, value) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        data = np.array(f[name][()], dtype=np.result_type(f[name].dtype, np.asarray(value)))
        data[index] = value
        _recreate(f, name, data)

    return edit


def _attr(obj: str, key: str, value) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        f[obj].attrs[key] = value

    return edit


def _replace(name: str, data) -> Callable[[h5py.File], None]:
    return lambda f: _recreate(f, name, data)


def _unwritten(path: str) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        old = f[path]
        data, attrs, chunks = old[()], dict(old.attrs), old.chunks
        del f[path]
        new = f.create_dataset(
            path, shape=data.shape, dtype=data.dtype, chunks=chunks, fillvalue=0.0, fletcher32=True
        )
        for i in (0, 1, 2, 4, 5):  # sample 3 is never written
            new[i] = data[i]
        for k, v in attrs.items():
            if k not in ("DIMENSION_LIST",):
                new.attrs[k] = v

    return edit


def _huge_coordinate(f: h5py.File) -> None:
    del f["x"]
    f.create_dataset("x", shape=(2**40,), dtype="f8", chunks=(1024,))


def _external(path: str) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        with h5py.File(Path(f.filename).with_suffix(".other.h5"), "w") as g:
            g["u"] = f[path][()]
        del f[path]
        f[path] = h5py.ExternalLink(Path(f.filename).with_suffix(".other.h5").name, "u")

    return edit


def _soft(path: str, target: str) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        del f[path]
        f[path] = h5py.SoftLink(target)

    return edit


def _group(path: str) -> Callable[[h5py.File], None]:
    return lambda f: (f.__delitem__(path), f.create_group(path))


def defects(version: int | None = None) -> dict[str, tuple[Callable[[h5py.File], None], str]]:
    """Schema-level defects of a file of ``version`` (default: the version written):
    name -> (edit on an ``r+`` h5py.File, text the error must hold)."""
    from pdesurrogates.datasets._schema import SCHEMA_VERSION, field_key, param_key

    v = SCHEMA_VERSION if version is None else version
    u, fv, mask = (field_key(v, k) for k in ("u", "v", "mask"))
    nu, k = param_key(v, "nu"), param_key(v, "k")
    bounds = "bounds" if v == 1 else "dist_bounds"
    return {
        "stats-std-nan": (_set("stats/u/std", (), np.nan), "/stats/u/std"),
        "stats-std-negative": (_set("stats/u/std", (), -1.0), "/stats/u/std"),
        "stats-std-inf": (_set("stats/u/std", (), np.inf), "/stats/u/std"),
        "stats-std-string": (_replace("stats/u/std", "one"), "/stats/u/std"),
        "stats-std-shape": (_replace("stats/u/std", np.ones(3)), "/stats/u/std"),
        "stats-vector-std-zero-nan": (_set("stats/v/std", 1, np.nan), "/stats/v/std"),
        "stats-vector-std-shape": (_replace("stats/v/std", np.ones(5)), "/stats/v/std"),
        "stats-mean-nan": (_set("stats/u/mean", (), np.nan), "/stats/u/mean"),
        "stats-mean-inf": (_set("stats/v/mean", 0, -np.inf), "/stats/v/mean"),
        "stats-mean-missing": (lambda f: f.__delitem__("stats/u/mean"), "/stats/u/mean"),
        "stats-unknown-field": (_replace("stats/w/mean", 0.0), "/stats/w"),
        "coord-x-nan": (_set("x", 2, np.nan), "coordinate /x"),
        "coord-x-inf": (_set("x", 0, np.inf), "coordinate /x"),
        "coord-x-duplicate": (_set("x", 1, 0.0), "coordinate /x"),
        "coord-x-unsorted": (_replace("x", np.array([0.0, 0.5, 0.25, 0.75, 1.0])), "coordinate /x"),
        "coord-y-complex": (_replace("y", np.arange(4) + 1j), "coordinate /y"),
        "coord-sample-duplicate": (_set("sample", 2, 1), "coordinate /sample"),
        "coord-sample-nan": (_set("sample", 4, np.nan), "coordinate /sample"),
        "coord-x-huge": (_huge_coordinate, "coordinate /x"),
        "complete-string-False": (_attr("/", "complete", "False"), "complete"),
        "complete-string-no": (_attr("/", "complete", "no"), "complete"),
        "complete-string-0": (_attr("/", "complete", "0"), "complete"),
        "complete-bytes-False": (_attr("/", "complete", np.bytes_(b"False")), "complete"),
        "complete-float": (_attr("/", "complete", 0.5), "complete"),
        "complete-false": (_attr("/", "complete", False), "incomplete"),
        "splits-duplicate": (_replace("splits/train", np.array([0, 1, 1])), "/splits/train"),
        "splits-overlap": (_replace("splits/valid", np.array([2, 3])), "/splits/train and"),
        "splits-empty-train": (_replace("splits/train", np.zeros(0, np.int64)), "/stats"),
        "splits-out-of-range": (_replace("splits/test", np.array([5, 6])), "/splits/test"),
        "splits-negative": (_replace("splits/test", np.array([-1])), "/splits/test"),
        "splits-float": (_replace("splits/test", np.array([5.0])), "/splits/test"),
        "splits-2d": (_replace("splits/test", np.array([[5]])), "/splits/test"),
        "splits-unknown-name": (_replace("splits/extra", np.array([5])), "/splits/extra"),
        "params-nan": (_set(nu, 1, np.nan), f"/{nu}"),
        "params-inf": (_set(k, 0, np.inf), f"/{k}"),
        "params-below-bounds": (_set(nu, 2, 0.1), f"/{nu}"),
        "params-above-bounds": (_set(nu, 5, 7.0), f"/{nu}"),
        "params-complex": (_set(nu, 0, 1.0 + 2.0j), f"/{nu}"),
        "params-string": (_replace(nu, np.array([b"a"] * N_SAMPLES)), f"/{nu}"),
        "params-bounds-nan": (_attr(nu, bounds, np.array([np.nan, 2.0])), f"/{nu}"),
        "params-shape": (_replace(k, np.zeros(N_SAMPLES + 1)), f"/{k}"),
        "params-dist-unknown": (_attr(k, "dist", "cauchy"), f"/{k}"),
        "field-soft-link": (_soft(u, f"/{fv}"), f"/{u}"),
        "field-external-link": (_external(u), f"/{u}"),
        "field-unwritten-chunk": (_unwritten(u), "sample 3"),
        "field-complex": (_replace(fv, np.zeros((N_SAMPLES, NX, 2), complex)), f"/{fv}"),
        "field-int": (_replace(fv, np.zeros((N_SAMPLES, NX, 2), int)), f"/{fv}"),
        "field-no-dims": (lambda f: f[u].attrs.__delitem__("dims"), f"/{u}"),
        "field-bad-role": (_attr(u, "role", "target"), f"/{u}"),
        "field-group": (_group(mask), f"/{mask}"),
        "schema-version-abc": (_attr("/", "schema_version", "abc"), "schema_version"),
        "schema-version-float": (_attr("/", "schema_version", 1.5), "schema_version"),
        "schema-version-99": (_attr("/", "schema_version", 99), "schema_version"),
        "n-samples-string": (_attr("/", "n_samples", "six"), "n_samples"),
        "n-samples-zero": (_attr("/", "n_samples", 0), "n_samples"),
        "spatial-dims-wrong": (_attr("/", "spatial_dims", np.array([b"y", b"x"])), "spatial_dims"),
        "missing-n-spatial-dims": (
            lambda f: f.attrs.__delitem__("n_spatial_dims"),
            "n_spatial_dims",
        ),
        "no-schema": (lambda f: f.attrs.__delitem__("schema"), "not a pdesurrogates-h5"),
    }


#: The defects of a file of the version the writer writes.
DEFECTS = defects()


# --- byte-level mutations -----------------------------------------------------------
def _raw_ranges(path: Path) -> list[tuple[int, int]]:
    """Byte ranges of the raw data of every dataset (chunks and contiguous storage)."""
    ranges: list[tuple[int, int]] = []

    def visit(_name, obj):
        if not isinstance(obj, h5py.Dataset) or obj.size == 0:
            return
        if obj.chunks is None:
            off = obj.id.get_offset()
            if off is not None:
                ranges.append((off, off + obj.id.get_storage_size()))
            return
        for i in range(obj.id.get_num_chunks()):
            info = obj.id.get_chunk_info(i)
            ranges.append((info.byte_offset, info.byte_offset + info.size))

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return sorted(ranges)


def _mutate(path: Path, kind: str, rng: np.random.Generator) -> str:
    data = bytearray(path.read_bytes())
    if kind == "truncate":
        cut = int(rng.integers(0, len(data)))
        path.write_bytes(bytes(data[:cut]))
        return f"truncated to {cut} of {len(data)} bytes"
    raw = _raw_ranges(path)
    if kind == "data":
        lo, hi = raw[int(rng.integers(len(raw)))]
        offsets = rng.integers(lo, hi, size=int(rng.integers(1, 3)))
    elif kind == "superblock":
        offsets = rng.integers(0, 96, size=int(rng.integers(1, 3)))
    elif kind == "heap":  # the global heap holding variable-length attribute strings
        starts = [i for i in range(len(data) - 4) if data[i : i + 4] == b"GCOL"] or [0]
        start = starts[int(rng.integers(len(starts)))]
        offsets = start + rng.integers(0, 64, size=2)
    else:  # metadata: anywhere outside raw data
        inside = np.zeros(len(data), dtype=bool)
        for lo, hi in raw:
            inside[lo:hi] = True
        free = np.flatnonzero(~inside)
        offsets = free[rng.integers(0, len(free), size=int(rng.integers(1, 4)))]
    for off in offsets:
        data[int(off) % len(data)] ^= int(rng.integers(1, 256))
    path.write_bytes(bytes(data))
    return f"{kind} bytes flipped at {sorted(int(o) for o in offsets)}"


def make_case(base: Path, workdir: Path, seed: int, index: int) -> tuple[Path, str]:
    """Write case ``index`` of ``seed`` into ``workdir``; returns its path and description."""
    rng = np.random.default_rng([seed, index])
    path = workdir / f"case-{seed}-{index}.h5"
    shutil.copyfile(base, path)
    kinds = ["schema", "truncate", "data", "metadata", "superblock", "heap"]
    kind = kinds[int(rng.choice(len(kinds), p=[0.4, 0.1, 0.15, 0.2, 0.05, 0.1]))]
    if kind == "schema":
        names = sorted(DEFECTS)
        name = names[int(rng.integers(len(names)))] if index >= len(names) else names[index]
        with h5py.File(path, "r+") as f:
            DEFECTS[name][0](f)
        return path, f"schema defect {name}"
    return path, _mutate(path, kind, rng)


# --- running the readers ------------------------------------------------------------
def run_readers(path: str | os.PathLike, ref: dict[str, np.ndarray]) -> dict[str, Any]:
    """Run every reader on ``path``: per reader "ok", "wrong", "rejected", "unclear" or
    "traceback" (with the message)."""
    from pdesurrogates.datasets import describe, open_dataset, open_xarray, validate
    from pdesurrogates.errors import PdeSurrogatesError

    path = str(path)

    def read_all():
        ds = open_dataset(path, dtype=None)
        try:
            got = {
                f"fields/{k}": np.stack([ds[i][k].numpy() for i in range(len(ds))])
                for k in ds.field_names
            }
            got.update({f"params/{k}": ds.param_values(k) for k in ds.params})
            got.update({k: v for k, v in ds.coords.items() if k != "sample"})
            return got
        finally:
            ds.close()

    def read_xarray():
        from pdesurrogates.datasets import to_channel_first

        with open_xarray(path, load=True) as x:
            got = {}  # channel-first, like the reference read by open_dataset
            for k in ("u", "v", "mask"):
                if k in x:
                    v, dims = x[k].values, tuple(x[k].dims)
                    if dims[:1] == ("sample",):
                        got[f"fields/{k}"] = to_channel_first(v, dims)
                    else:  # a field without a sample axis: as one sample
                        got[f"fields/{k}"] = to_channel_first(v[None], ("sample", *dims))[0]
            got.update(
                {f"params/{k}": x[f"param_{k}"].values for k in ("nu", "k") if f"param_{k}" in x}
            )
            return got

    readers = {
        "validate": lambda: validate(path) and None,
        "validate_deep": lambda: validate(path, deep=True) and None,
        "open_dataset": read_all,
        "open_xarray": read_xarray,
        "describe": lambda: describe(path) and None,
    }
    out: dict[str, Any] = {}
    for name, func in readers.items():
        try:
            got = func()
        except PdeSurrogatesError as exc:
            out[name] = ("rejected" if path in str(exc) else "unclear", str(exc)[:300])
            continue
        except BaseException as exc:
            out[name] = ("traceback", f"{type(exc).__name__}: {exc}"[:300])
            continue
        out[name] = ("ok", "") if got is None or _same(got, ref) else ("wrong", _diff(got, ref))
    return out


def _same(got: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> bool:
    for k, v in got.items():
        want = ref[k]
        if k == "fields/mask":
            want = want if v.shape == want.shape else np.broadcast_to(want, v.shape)
        if np.shape(v) != np.shape(want) or not np.array_equal(v, want):
            return False
    return set(got) <= set(ref)


def _diff(got, ref) -> str:
    """The names whose values differ from the reference."""
    return ", ".join(k for k in got if not _same({k: got[k]}, ref))


def _worker() -> None:  # pragma: no cover - runs in the worker process
    out = sys.stdout
    sys.stdout = sys.stderr
    import pdesurrogates.datasets._open
    import pdesurrogates.datasets._xarray  # noqa: F401 - imported before the first case

    out.write("ready\n")
    out.flush()
    ref = None
    for line in sys.stdin:
        req = json.loads(line)
        if ref is None:
            with np.load(req["ref"]) as z:
                ref = {k: z[k] for k in z.files}
        result = run_readers(req["path"], ref)
        out.write(json.dumps(result) + "\n")
        out.flush()


class _Worker:
    """A reader process fed one case at a time; restarted after a crash or a hang."""

    def __init__(self) -> None:
        src = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
        env.setdefault("OMP_NUM_THREADS", "1")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from pdesurrogates.testing._fuzz_datasets import _worker; _worker()",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        self.buf = b""
        if self._line(120.0) != b"ready":  # imports are not part of a case's time
            raise RuntimeError("the fuzz worker did not start")

    def run(self, path: Path, ref: Path, timeout: float) -> dict[str, Any] | str:
        """The readers' results, or "crash" / "hang"."""
        try:
            self.proc.stdin.write(
                (json.dumps({"path": str(path), "ref": str(ref)}) + "\n").encode()
            )
            self.proc.stdin.flush()
        except BrokenPipeError:
            return "crash"
        line = self._line(timeout)
        return line if isinstance(line, str) else json.loads(line)

    def _line(self, timeout: float) -> bytes | str:
        """The next line from the worker, or "crash" / "hang"."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                self.close()
                return "hang"
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    self.proc.wait()
                    return "crash"
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            try:
                pipe.close()
            except OSError:  # a dead reader's pipe
                pass


def classify(results: dict[str, Any]) -> str:
    """The outcome of one case from the readers' results (see the module docstring)."""
    states = {k: v[0] for k, v in results.items()}
    if any(s in ("traceback", "unclear") for s in states.values()):
        return "traceback"
    if any(s == "wrong" for s in states.values()):
        return "silent_acceptance"
    if all(s == "ok" for s in states.values()):
        return "accepted_correct"
    if states["validate"] == "ok" and states["validate_deep"] == "ok":
        return "accepted_correct"  # valid; a reader refusing it is not a loss of data
    return "rejected_clearly"


def fuzz_datasets(
    n_cases: int, seed: int, workdir: str | os.PathLike, *, timeout: float = 10.0
) -> dict[str, Any]:
    """Run ``n_cases`` mutated files through every reader; counts by outcome.

    Returns ``{"cases", "rejected_clearly", "accepted_correct", "traceback", "crash",
    "hang", "silent_acceptance", "isolated_crashes", "isolated_hangs", "by_kind", "examples"}``;
    ``isolated_crashes`` / ``isolated_hangs`` count files that crashed HDF5 / made it loop
    in the worker (the in-process readers) and that the isolated ``validate`` (what
    ``pdesurrogates validate`` runs) reported as corrupt: those count as rejected clearly.
    """
    from pdesurrogates.datasets._isolate import run_isolated
    from pdesurrogates.errors import PdeSurrogatesError

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    base = build_base(workdir)
    ref_path = workdir / "reference.npz"
    np.savez(ref_path, **_reference(base))
    counts = dict.fromkeys(
        (
            "rejected_clearly",
            "accepted_correct",
            "traceback",
            "crash",
            "hang",
            "silent_acceptance",
            "isolated_crashes",
            "isolated_hangs",
        ),
        0,
    )
    by_kind: dict[str, dict[str, int]] = {}
    examples: dict[str, list[str]] = {}
    worker = _Worker()
    try:
        for index in range(n_cases):
            path, what = make_case(base, workdir, seed, index)
            result = worker.run(path, ref_path, timeout)
            if isinstance(result, str):
                worker.close()
                worker = _Worker()
                outcome = result
                try:  # what `pdesurrogates validate` does with it
                    run_isolated("validate", path, {"deep": True}, metadata_timeout=timeout)
                except PdeSurrogatesError as exc:
                    if str(path) in str(exc):
                        counts["isolated_" + ("crashes" if result == "crash" else "hangs")] += 1
                        outcome = "rejected_clearly"
                detail = result
            else:
                outcome = classify(result)
                detail = json.dumps({k: v for k, v in result.items() if v[0] != "ok"})[:600]
            counts[outcome] += 1
            kind = what.split(" ")[0] if not what.startswith("schema") else "schema"
            by_kind.setdefault(kind, {}).setdefault(outcome, 0)
            by_kind[kind][outcome] += 1
            if outcome not in ("rejected_clearly", "accepted_correct"):
                examples.setdefault(outcome, [])
                if len(examples[outcome]) < 5:
                    examples[outcome].append(f"(seed={seed}, index={index}) {what}: {detail}")
            path.unlink(missing_ok=True)
            path.with_suffix(".other.h5").unlink(missing_ok=True)
    finally:
        worker.close()
    return {"cases": n_cases, **counts, "by_kind": by_kind, "examples": examples}
