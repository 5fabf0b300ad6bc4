"""Property test of the schema round trip: whatever DatasetWriter writes, the readers
(:func:`open_dataset` and :func:`open_xarray`) give back the same arrays and attributes."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pdesurrogates.datasets import (
    DatasetWriter,
    FieldSpec,
    ParamSpec,
    open_dataset,
    open_xarray,
    to_channel_first,
    validate,
)

ROLES = ("input", "output", "state", "coefficient")
TEXT = st.text(alphabet="abcxyz_/ 0123", max_size=8)


@st.composite
def datasets(draw):
    n = draw(st.integers(2, 5))
    spatial = ("x", "y", "z")[: draw(st.integers(1, 3))]
    coords = {
        d: np.sort(draw(st.lists(st.floats(-5, 5), min_size=2, max_size=4, unique=True)))
        for d in spatial
    }
    if draw(st.booleans()):
        coords = {"time": np.arange(draw(st.integers(1, 3))) * 0.5, **coords}
    if draw(st.booleans()):
        coords["component"] = np.arange(draw(st.integers(1, 3)))
    fields = {}
    for k in range(draw(st.integers(1, 3))):
        dims = [d for d in coords if draw(st.booleans())] or [spatial[0]]
        static = k > 0 and draw(st.booleans())
        fields[f"f{k}"] = FieldSpec(
            dims=tuple(dims) if static else ("sample", *dims),
            role=draw(st.sampled_from(ROLES)),
            units=draw(TEXT),
            long_name=draw(TEXT),
        )
    params = {}
    for k in range(draw(st.integers(0, 2))):
        if draw(st.booleans()):
            params[f"p{k}"] = ParamSpec(dist="uniform", bounds=(-1.0, 2.0), units=draw(TEXT))
        else:
            params[f"p{k}"] = ParamSpec(dist="normal", loc=draw(st.floats(-3, 3)), scale=0.5)
    dtype = draw(st.sampled_from([np.float16, np.float32, np.float64, np.int32]))
    seed = draw(st.integers(0, 2**32 - 1))
    name = draw(TEXT)
    return n, coords, fields, params, dtype, seed, name


def _values(n, coords, fields, params, dtype, seed):
    rng = np.random.default_rng(seed)
    values = {}
    for name, spec in fields.items():
        shape = tuple(n if d == "sample" else len(coords[d]) for d in spec.dims)
        values[name] = (rng.normal(scale=100.0, size=shape)).astype(dtype)
    pvals = {name: rng.uniform(-1.0, 2.0, size=n) for name in params}
    return values, pvals


@settings(max_examples=30, deadline=None)
@given(datasets())
def test_written_files_read_back_exactly(case):
    n, coords, fields, params, dtype, seed, name = case
    values, pvals = _values(n, coords, fields, params, dtype, seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "prop.h5"
        with DatasetWriter(
            path,
            n_samples=n,
            coords=coords,
            fields=fields,
            params=params,
            dataset_name=name,
            pde="toy",
        ) as w:
            for key, spec in fields.items():
                if spec.dims[0] != "sample":
                    w.write_static(key, values[key])
            w.write_batch(
                0, {k: v for k, v in values.items() if fields[k].dims[0] == "sample"}, pvals
            )
            w.finalize(split=(0.5, 0.0, 0.5))
        report = validate(path)
        assert report.n_samples == n
        ds = open_dataset(path)
        # an empty long_name is stored as the field's name
        assert ds.fields == {k: replace(v, long_name=v.long_name or k) for k, v in fields.items()}
        # so is a parameter's (CF long_name for plain xarray and netCDF readers)
        assert ds.params == {k: replace(v, long_name=v.long_name or k) for k, v in params.items()}
        assert ds.attrs["dataset_name"] == name
        for d, c in coords.items():
            np.testing.assert_array_equal(ds.coords[d], c)
        for key, spec in fields.items():
            want = values[key].astype(np.float32)
            got = np.stack([ds[i][key].numpy() for i in range(n)])
            if spec.dims[0] != "sample":
                want = np.broadcast_to(want, (n, *want.shape))
            dims = spec.dims if spec.dims[0] == "sample" else ("sample", *spec.dims)
            np.testing.assert_array_equal(got, to_channel_first(want, dims))
        for key in params:
            np.testing.assert_array_equal(ds.param_values(key), pvals[key])
        ds.close()
        stored = np.float64 if np.dtype(dtype).kind == "i" else dtype  # dtype kept
        with open_xarray(path, load=True) as xds:
            for key, spec in fields.items():
                assert xds[key].dims == spec.dims
                assert xds[key].dtype == stored
                np.testing.assert_array_equal(xds[key].values, values[key].astype(stored))
            for key in params:
                np.testing.assert_array_equal(xds[f"param_{key}"].values, pvals[key])
            assert xds.attrs["dataset_name"] == name
