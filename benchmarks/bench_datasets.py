"""Read throughput of FieldDataset vs raw h5py, and Darcy generation throughput.

Reads: 2,000 samples of two float32 fields (``a``, ``u``) at 64² and 256², one epoch in
batches of 32, sequential and shuffled order. Competitors, in one process:

* ``raw h5py``: ``f["a"][i:i+32]`` slices (sorted fancy indexing when shuffled),
  on the same file, whose fields carry Fletcher32 checksums as every file we write does;
* ``raw h5py, no checksums``: the same reads of a copy of the fields without the checksum
  filter, which states what verifying the checksums costs;
* ``FieldDataset`` through a ``torch.utils.data.DataLoader`` (``FieldDataset.loader``,
  batch 32) with 0 and 2 persistent worker processes; the timed epoch is the second one,
  as in training (worker start-up is paid once per run, not per epoch).

For shuffled order the raw baseline reads each sample with its own slice and stacks them
(h5py's fancy indexing is also reported; it is much slower).

Files are read from the page cache (each layout is read once before timing), so the
figures are CPU/decoding cost, not disk speed. Generation: Darcy samples per second with
1 and 2 dask workers.

Run: ``python benchmarks/bench_datasets.py`` (``--quick`` for a seconds-long check).
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from pdesurrogates.datasets import DatasetWriter, FieldSpec, generate_dataset, open_dataset
from pdesurrogates.solvers.reference import darcy_dataset_layout, darcy_sample

from _common import PeakMemory, markdown_table, write_results

BATCH = 32


def make_file(path: Path, n: int, res: int) -> Path:
    rng = np.random.default_rng(0)
    x = (np.arange(res) + 0.5) / res
    spec = FieldSpec(dims=("sample", "x", "y"))
    with DatasetWriter(
        path, n_samples=n, coords={"x": x, "y": x}, fields={"a": spec, "u": spec}
    ) as w:
        base = rng.standard_normal((2, res, res)).astype(np.float32)
        for i in range(n):
            w.write(i, {"a": base[0] + i, "u": base[1] - i})
        w.finalize()
    return path


def plain_copy(path: Path) -> Path:
    """The fields of ``path`` in a file without the Fletcher32 filter (same chunks)."""
    out = path.with_name(path.stem + "_plain.h5")
    with h5py.File(path, "r") as src, h5py.File(out, "w") as dst:
        for name in ("a", "u"):
            d = src[name]
            dst.create_dataset(name, data=d[()], chunks=d.chunks)
    return out


def batches(n: int, shuffle: bool, seed: int = 0) -> list[np.ndarray]:
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    return [order[k : k + BATCH] for k in range(0, n, BATCH)]


def raw_h5py(path: Path, n: int, shuffle: bool, how: str = "slice") -> float:
    """Raw h5py: a slice per batch (sequential); fancy indexing or a loop (shuffled)."""
    t0 = time.perf_counter()
    total = 0
    with h5py.File(path, "r") as f:
        a, u = f["a"], f["u"]
        for idx in batches(n, shuffle):
            if not shuffle:
                xa, xu = a[idx[0] : idx[-1] + 1], u[idx[0] : idx[-1] + 1]
            elif how == "fancy":
                idx = np.sort(idx)
                xa, xu = a[idx], u[idx]
            else:
                idx = np.sort(idx)
                xa, xu = np.stack([a[i] for i in idx]), np.stack([u[i] for i in idx])
            total += xa.nbytes + xu.nbytes
    return total / (time.perf_counter() - t0)


def field_dataset(path: Path, n: int, shuffle: bool, workers: int) -> float:
    """FieldDataset through a DataLoader (same batches as raw h5py), one epoch."""
    ds = open_dataset(path)
    order = [int(i) for b in batches(n, shuffle) for i in b]
    loader = ds.loader(sampler=order, batch_size=BATCH, num_workers=workers)
    for _ in loader:  # start the (persistent) workers: training runs many epochs
        pass
    t0 = time.perf_counter()
    total = 0
    for batch in loader:
        total += batch["a"].numel() * 4 + batch["u"].numel() * 4
    rate = total / (time.perf_counter() - t0)
    del loader
    ds.close()
    return rate


def bench_reads(tmp: Path, n: int, resolutions, repeats: int) -> list[dict]:
    rows = []
    for res in resolutions:
        path = make_file(tmp / f"r{res}.h5", n, res)
        plain = plain_copy(path)
        raw_h5py(path, n, False)  # warm the page cache
        raw_h5py(plain, n, False)
        for shuffle in (False, True):
            raw = max(raw_h5py(path, n, shuffle) for _ in range(repeats))
            raw_plain = max(raw_h5py(plain, n, shuffle) for _ in range(repeats))
            fancy = raw_h5py(path, n, shuffle, "fancy") if shuffle else raw
            for workers in (0, 2):
                with PeakMemory() as mem:
                    ours = max(field_dataset(path, n, shuffle, workers) for _ in range(repeats))
                rows.append(
                    {
                        "resolution": f"{res}²",
                        "order": "shuffled" if shuffle else "sequential",
                        "workers": workers,
                        "raw h5py MB/s": raw / 1e6,
                        "raw h5py, no checksums MB/s": raw_plain / 1e6,
                        "raw fancy-index MB/s": fancy / 1e6,
                        "FieldDataset MB/s": ours / 1e6,
                        "ratio (ours/raw)": ours / raw,
                        "ratio (ours/raw, no checksums)": ours / raw_plain,
                        "peak MB (ours)": mem.peak_mb,
                    }
                )
                print(rows[-1], flush=True)
        path.unlink()
        plain.unlink()
    return rows


def bench_generation(tmp: Path, n: int, res: int) -> list[dict]:
    rows = []
    layout = darcy_dataset_layout(res)
    fn = functools.partial(darcy_sample, resolution=res)
    for workers in (1, 2):
        out = tmp / f"gen{workers}.h5"
        t0 = time.perf_counter()
        generate_dataset(out, fn, n_samples=n, workers=workers, progress=False, **layout)
        dt = time.perf_counter() - t0
        rows.append(
            {
                "resolution": f"{res}²",
                "workers": workers,
                "samples": n,
                "seconds (incl. cluster start)": dt,
                "samples/s": n / dt,
            }
        )
        print(rows[-1], flush=True)
        out.unlink()
    base = rows[0]["samples/s"]
    for r in rows:
        r["speed-up"] = r["samples/s"] / base
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, seconds")
    args = parser.parse_args()
    n = 256 if args.quick else 2000
    resolutions = (64,) if args.quick else (64, 256)
    repeats = 1 if args.quick else 3
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        reads = bench_reads(tmp, n, resolutions, repeats)
        gen = bench_generation(tmp, 40 if args.quick else 2000, 64)
    md = f"## Read throughput, batch 32, one epoch (best of {repeats} runs)\n\n"
    md += markdown_table(reads)
    md += "\n## Darcy generation throughput\n\n" + markdown_table(gen)
    worst = min(r["ratio (ours/raw)"] for r in reads if r["workers"] == 0)
    plain = min(r["ratio (ours/raw, no checksums)"] for r in reads if r["workers"] == 0)
    cost = [r["raw h5py MB/s"] / r["raw h5py, no checksums MB/s"] for r in reads]
    md += (
        f"\nIn-process (workers=0), worst FieldDataset / raw h5py ratio on the same "
        f"checksummed file: {worst:.2f} (target >= 0.8); against raw h5py on a file without "
        f"checksums: {plain:.2f}. Verifying the Fletcher32 checksums costs raw h5py "
        f"{1 - max(cost):.0%}-{1 - min(cost):.0%} of its throughput.\n"
    )
    write_results(
        "datasets",
        {
            "n_samples": n,
            "batch_size": BATCH,
            "reads": reads,
            "generation": gen,
            "worst_read_ratio": worst,
            "worst_read_ratio_vs_unchecksummed": plain,
        },
        md,
    )
    print(md)


if __name__ == "__main__":
    main()
