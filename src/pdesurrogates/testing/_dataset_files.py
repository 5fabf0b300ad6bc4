"""Small ``pdesurrogates-h5`` files for tests and the fuzz drivers, in either schema version.

:func:`build_base` writes a valid file with :class:`~pdesurrogates.datasets.DatasetWriter`;
:func:`checksummed_copy` copies it with or without Fletcher32 checksums on every dataset, in
the current layout or in the version-1 layout (fields and parameters in groups, float32).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

__all__ = ["NX", "N_SAMPLES", "build_base", "checksummed_copy"]

N_SAMPLES, NX = 6, 5


def build_base(
    directory: str | os.PathLike, *, checksums: bool = True, version: int | None = None
) -> Path:
    """A small valid file (fields u(sample, x, y), v(sample, x, component), mask(x, y)).

    ``version`` 1 lays it out as the version-1 schema did (fields and params in groups,
    float32 fields); the default is the version the writer writes.
    """
    from pdesurrogates.datasets import DatasetWriter, FieldSpec, ParamSpec

    directory = Path(directory)
    raw = directory / "raw.h5"
    rng = np.random.default_rng(1234)
    x = np.linspace(0.0, 1.0, NX)
    with DatasetWriter(
        raw,
        n_samples=N_SAMPLES,
        coords={"x": x, "y": x[:4], "component": np.arange(2)},
        fields={
            "u": FieldSpec(("sample", "x", "y"), role="output", units="m"),
            "v": FieldSpec(("sample", "x", "component"), role="input"),
            "mask": FieldSpec(("x", "y"), role="coefficient"),
        },
        params={
            "nu": ParamSpec("uniform", bounds=(0.5, 2.0)),
            "k": ParamSpec("normal", loc=0.0, scale=1.0),
        },
        dataset_name="fuzz",
        pde="toy",
        source={"generator": "fuzz"},
        overwrite=True,
    ) as w:
        w.write_static("mask", rng.uniform(size=(NX, 4)))
        w.write_batch(
            0,
            {"u": rng.normal(size=(N_SAMPLES, NX, 4)), "v": rng.normal(size=(N_SAMPLES, NX, 2))},
            {"nu": rng.uniform(0.5, 2.0, N_SAMPLES), "k": rng.normal(size=N_SAMPLES)},
        )
        w.finalize(split=(0.5, 0.25, 0.25))
    out = directory / ("base.h5" if version is None else f"base-v{version}.h5")
    checksummed_copy(raw, out, checksums=checksums, version=version)
    raw.unlink()
    return out


def _create(
    dst: h5py.Group, name: str, ds: h5py.Dataset, checksums: bool = True, dtype=None
) -> h5py.Dataset:
    data = ds[()] if dtype is None else ds[()].astype(dtype)
    kwargs: dict[str, Any] = {}
    if data.ndim and data.size:  # scalars cannot be chunked, hence not checksummed
        kwargs = {"fletcher32": checksums, "chunks": ds.chunks or data.shape}
        if ds.compression:
            kwargs.update(compression=ds.compression, shuffle=ds.shuffle)
    new = dst.create_dataset(name, data=data, fillvalue=ds.fillvalue, **kwargs)
    for k, v in ds.attrs.items():
        if k not in ("DIMENSION_LIST", "REFERENCE_LIST", "CLASS", "NAME"):
            new.attrs[k] = v
    return new


def _to_v1(ds: h5py.Dataset) -> None:
    """Version-1 attributes: no ``kind``, a parameter's bounds in ``bounds``."""
    if "kind" in ds.attrs:
        del ds.attrs["kind"]
    if "dist_bounds" in ds.attrs:
        ds.attrs["bounds"] = ds.attrs["dist_bounds"]
        del ds.attrs["dist_bounds"]


def checksummed_copy(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    checksums: bool = True,
    version: int | None = None,
) -> None:
    """Copy a version-2 ``pdesurrogates-h5`` file with Fletcher32 checksums on every dataset
    (or, with ``checksums=False``, on none: the files written before checksums were added).

    Coordinates stay dimension scales attached to the fields and parameters. ``version=1``
    writes the version-1 layout (``/fields``, ``/params``, float32 fields, a boolean
    ``complete``), as the version-1 writer did.
    """
    from pdesurrogates.datasets._schema import DIM_ORDER, SCHEMA_VERSION

    version = SCHEMA_VERSION if version is None else version
    with h5py.File(src, "r") as f, h5py.File(dst, "w", track_order=True) as g:
        for k, v in f.attrs.items():
            g.attrs[k] = v
        if version == 1:
            g.attrs["schema_version"] = 1
            g.attrs["complete"] = True
            for k in ("Conventions", "title"):
                del g.attrs[k]
        scales = {}
        for name in DIM_ORDER:
            if name in f:
                scales[name] = _create(g, name, f[name], checksums)
                scales[name].make_scale(name)
        for group in ("field", "param"):
            gg = g.create_group(group + "s", track_order=True) if version == 1 else g
            members = [(k, v) for k, v in f.items() if v.attrs.get("kind") == group]
            for name, ds in members:
                dtype = np.float32 if version == 1 and group == "field" else None
                new = _create(gg, name, ds, checksums, dtype)
                if version == 1:
                    _to_v1(new)
                dims = (
                    [d.decode() if isinstance(d, bytes) else str(d) for d in ds.attrs["dims"]]
                    if "dims" in ds.attrs
                    else ["sample"]
                )
                for axis, d in enumerate(dims):
                    new.dims[axis].attach_scale(scales[d])
        for name, ds in f["splits"].items():
            _create(g.require_group("splits"), name, ds, checksums)
        for field, grp in f["stats"].items():
            for key, ds in grp.items():
                _create(g.require_group(f"stats/{field}"), key, ds, checksums)
        if version == 1:  # the statistics of the float32 values, as the v1 writer stored
            _restat(g)


def _restat(g: h5py.File) -> None:
    from pdesurrogates.datasets._stats import compute_stats

    train = g["splits/train"][()]
    for field in g["stats"]:
        ds = g[f"fields/{field}"]
        dims = tuple(d.decode() if isinstance(d, bytes) else str(d) for d in ds.attrs["dims"])
        for key, value in zip(("mean", "std"), compute_stats(ds, dims, train), strict=True):
            g[f"stats/{field}/{key}"][...] = value
