"""Dataset generation: worker-count independence, interruption and --resume."""

from __future__ import annotations

import functools
import os

import h5py
import numpy as np
import pytest

from pdesurrogates.datasets import generate_dataset, validate
from pdesurrogates.errors import DatasetError, SchemaError
from pdesurrogates.solvers.reference import darcy_dataset_layout, darcy_sample


def _contents(path):
    with h5py.File(path) as f:
        out = {f"fields/{k}": v[()] for k, v in f.items() if v.attrs.get("kind") == "field"}
        out.update({f"splits/{k}": v[()] for k, v in f["splits"].items()})
        out.update(
            {f"stats/{k}/{s}": f[f"stats/{k}/{s}"][()] for k in f["stats"] for s in ("mean", "std")}
        )
        attrs = {k: v for k, v in f.attrs.items()}
    return out, attrs


def _assert_same_file(p, q):
    (a, aa), (b, ba) = _contents(p), _contents(q)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert {k: str(v) for k, v in aa.items()} == {k: str(v) for k, v in ba.items()}


def _darcy(path, n=12, r=16, **kw):
    return generate_dataset(
        path,
        functools.partial(darcy_sample, resolution=r),
        n_samples=n,
        seed=11,
        progress=False,
        source={"generator": "darcy", "resolution": r},
        **darcy_dataset_layout(r),
        **kw,
    )


def test_one_and_two_workers_write_identical_files(tmp_path):
    one = _darcy(tmp_path / "one.h5")
    two = _darcy(tmp_path / "two.h5", workers=2, chunk_size=2)
    _assert_same_file(one, two)
    validate(two)


class _Interrupt(RuntimeError):
    pass


def _failing_sample(index, seed, *, fail_at):
    if index == fail_at:
        raise _Interrupt(f"stopped at {index}")
    return darcy_sample(index, seed, resolution=16)


def test_interrupted_run_leaves_no_valid_file_and_resume_completes_it(tmp_path):
    target = tmp_path / "d.h5"
    with pytest.raises(_Interrupt):
        generate_dataset(
            target,
            functools.partial(_failing_sample, fail_at=7),
            n_samples=12,
            seed=11,
            progress=False,
            source={"generator": "darcy", "resolution": 16},
            **darcy_dataset_layout(16),
        )
    assert not target.exists()
    with pytest.raises(DatasetError, match=r"no such file.*--resume"):
        validate(target)
    with pytest.raises(SchemaError, match="incomplete"):
        validate(str(target) + ".partial")
    with h5py.File(str(target) + ".partial") as f:
        assert int(f["_written"][()].sum()) == 7
    calls = []

    def counting(index, seed):
        calls.append(index)
        return darcy_sample(index, seed, resolution=16)

    generate_dataset(
        target,
        counting,
        n_samples=12,
        seed=11,
        progress=False,
        resume=True,
        source={"generator": "darcy", "resolution": 16},
        **darcy_dataset_layout(16),
    )
    assert sorted(calls) == list(range(7, 12))  # only the missing samples were computed
    _assert_same_file(target, _darcy(tmp_path / "ref.h5"))
    assert not os.path.exists(str(target) + ".partial")


# SIGKILL of the real command at random points: tests/datasets/test_writer_safety.py
