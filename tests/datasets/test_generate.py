"""Dataset generation: worker-count independence, interruption and --resume."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from pdesurrogates.datasets import generate_dataset, open_dataset, validate
from pdesurrogates.errors import DatasetError, SchemaError
from pdesurrogates.solvers.reference import darcy_dataset_layout, darcy_sample


def _contents(path):
    with h5py.File(path) as f:
        out = {f"fields/{k}": v[()] for k, v in f["fields"].items()}
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


def test_killed_cli_run_resumes_to_the_same_file(tmp_path):
    """SIGKILL the real command mid-run, then --resume: same file as an uninterrupted run."""
    exe = [sys.executable, "-m", "pdesurrogates", "generate", "darcy", "-r", "32", "-n", "300"]
    target = tmp_path / "k.h5"
    partial = tmp_path / "k.h5.partial"
    proc = subprocess.Popen(
        [*exe, "--seed", "4", "-q", "-o", str(target)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            time.sleep(0.3)
            if partial.exists():
                try:
                    with h5py.File(partial, "r", locking=False) as f:
                        if int(f["_written"][()].sum()) >= 20:
                            break
                except (OSError, KeyError):
                    continue
        else:
            pytest.fail("the generator made no progress")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not target.exists()
    with pytest.raises(DatasetError):
        validate(target)
    resume = [*exe, "--seed", "4", "-q", "--resume", "-o", str(target)]
    refused = subprocess.run(resume, capture_output=True, text=True)
    assert refused.returncode == 1
    assert f"stale lock {target}.lock" in refused.stderr.replace("\n", "")
    assert f"pid {proc.pid}" in refused.stderr
    (tmp_path / "k.h5.lock").unlink()  # as the message says
    done = subprocess.run(resume, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    ref = subprocess.run(
        [*exe, "--seed", "4", "-q", "-o", str(tmp_path / "ref.h5")], capture_output=True, text=True
    )
    assert ref.returncode == 0, ref.stderr
    _assert_same_file(target, tmp_path / "ref.h5")
    assert len(open_dataset(target)) == 300
