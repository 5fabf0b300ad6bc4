"""Ctrl-C during a dataset write, and files another process holds open.

A SIGINT whose handler runs inside a weakref callback (h5py's object registry runs them
during every HDF5 call) raises a KeyboardInterrupt that Python prints and drops. The
writers hold Ctrl-C back while they write and raise it at the next block boundary.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import weakref

import h5py
import numpy as np
import pytest

import pdesurrogates.datasets._stats as stats_module
import pdesurrogates.datasets.backends._arrays as arrays_module
from pdesurrogates._files import DeferredInterrupt, check_interrupt
from pdesurrogates.datasets import (
    DatasetWriter,
    FieldSpec,
    generate_dataset,
    import_arrays,
    import_dataset,
    migrate,
    open_dataset,
    validate,
)
from pdesurrogates.datasets.backends._base import open_source_h5
from pdesurrogates.errors import DatasetError, SchemaError
from pdesurrogates.testing._fuzz_datasets import build_base
from pdesurrogates.uq import read_prediction_info


@pytest.fixture(autouse=True)
def _default_sigint():
    """Python's own Ctrl-C handler, whatever the test runner inherited (a background job
    starts with SIGINT ignored)."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


def _sigint_in_a_weakref_callback() -> None:
    """Deliver Ctrl-C while a weakref callback runs, where h5py's registry would run it."""

    class Handle:
        pass

    handle = Handle()
    ref = weakref.ref(handle, lambda _: signal.raise_signal(signal.SIGINT))
    del handle
    assert ref() is None


def test_deferred_interrupt_raises_at_the_boundary_and_restores_the_handler():
    steps = []
    with pytest.raises(KeyboardInterrupt), DeferredInterrupt():
        signal.raise_signal(signal.SIGINT)
        steps.append("after the signal")  # the block goes on
        with DeferredInterrupt():  # nested: the same flag
            steps.append("nested")
        steps.append("unreachable")  # the nested block's end is a boundary
    assert steps == ["after the signal", "nested"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    check_interrupt()  # the flag was consumed: nothing pending


def test_deferred_interrupt_a_second_ctrl_c_raises_at_once_and_the_end_raises_a_pending_one():
    with pytest.raises(KeyboardInterrupt), DeferredInterrupt():
        signal.raise_signal(signal.SIGINT)
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt), DeferredInterrupt():
        _sigint_in_a_weakref_callback()  # not lost: raised when the block ends
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_deferred_interrupt_keeps_a_handler_it_did_not_install():
    seen = []
    signal.signal(signal.SIGINT, lambda *a: seen.append("caller's handler"))
    with DeferredInterrupt():
        signal.raise_signal(signal.SIGINT)
        check_interrupt()  # no flag: the caller handles Ctrl-C itself
    assert seen == ["caller's handler"]
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with DeferredInterrupt():
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def _arrays_file(path, n=12):
    rng = np.random.default_rng(3)
    with h5py.File(path, "w") as f:
        f["coeff"] = rng.normal(size=(n, 6, 5))
        f["solution"] = rng.normal(size=(n, 6, 5))
    return path


def test_ctrl_c_in_an_hdf5_callback_stops_import_arrays_and_leaves_nothing(
    tmp_path, monkeypatch, caplog
):
    src = _arrays_file(tmp_path / "src.h5")
    out = tmp_path / "out.h5"
    monkeypatch.setattr(arrays_module, "_BLOCK_BYTES", 2 * 6 * 5 * 8 * 2)  # 2 samples a block
    real = DatasetWriter.write_batch
    starts = []

    def write_batch(self, start, *args, **kwargs):
        if start == 4:
            _sigint_in_a_weakref_callback()
        real(self, start, *args, **kwargs)
        starts.append(start)

    monkeypatch.setattr(DatasetWriter, "write_batch", write_batch)
    roles = {"coeff": "input", "solution": "target"}
    with caplog.at_level(logging.WARNING, "pdesurrogates"), pytest.raises(KeyboardInterrupt):
        import_arrays(src, out, roles)
    assert starts == [0, 2, 4]  # stopped after the block being written, not at the end
    assert sorted(os.listdir(tmp_path)) == ["src.h5"]  # no output, partial or lock
    assert f"nothing was written to {out}" in caplog.text
    monkeypatch.setattr(DatasetWriter, "write_batch", real)
    assert len(open_dataset(import_arrays(src, out, roles))) == 12  # the path is free


def _sample(index, seed):
    x = np.linspace(0.0, 1.0, 4)
    return {"u": np.sin((index + 1 + seed) * x)}, {}


def _generate(path, **kw):
    return generate_dataset(
        path,
        _sample,
        n_samples=6,
        coords={"x": 4},
        fields={"u": FieldSpec(("sample", "x"))},
        progress=False,
        **kw,
    )


def test_ctrl_c_while_dcdm_training_vectors_are_written_leaves_no_file(tmp_path, monkeypatch):
    """A Ctrl-C dropped inside h5py while the training vectors are written is raised
    after that sample's write, and the writer's clean-up leaves no output."""
    from pdesurrogates.solvers import gallery
    from pdesurrogates.training._dcdm import write_ritz_dataset

    real = DatasetWriter._array
    calls = []

    def array(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            _sigint_in_a_weakref_callback()
        return real(self, *args, **kwargs)

    monkeypatch.setattr(DatasetWriter, "_array", array)
    out = tmp_path / "ritz.h5"
    with pytest.raises(KeyboardInterrupt):
        write_ritz_dataset(out, gallery.dirichlet_box((8, 8)), n_samples=6, m=8)
    assert len(calls) == 3  # raised at the end of the third sample's write
    assert os.listdir(tmp_path) == []


def test_ctrl_c_while_a_generator_writes_keeps_a_resumable_partial(tmp_path, monkeypatch, caplog):
    out = tmp_path / "g.h5"
    real = DatasetWriter.write
    written = []

    def write(self, index, *args, **kwargs):
        if index == 3:
            _sigint_in_a_weakref_callback()
        real(self, index, *args, **kwargs)
        written.append(index)

    monkeypatch.setattr(DatasetWriter, "write", write)
    with caplog.at_level(logging.WARNING, "pdesurrogates"), pytest.raises(KeyboardInterrupt):
        _generate(out)
    assert written == [0, 1, 2, 3]
    assert sorted(os.listdir(tmp_path)) == ["g.h5.partial"]  # the lock is released
    assert "4 of 6 samples are kept" in caplog.text and "--resume" in caplog.text
    written.clear()
    _generate(out, resume=True)
    assert written == [4, 5]
    monkeypatch.setattr(DatasetWriter, "write", real)
    ref = _generate(tmp_path / "ref.h5")
    with h5py.File(out) as a, h5py.File(ref) as b:
        np.testing.assert_array_equal(a["u"][()], b["u"][()])


def test_ctrl_c_during_the_statistics_of_finalize_keeps_every_sample(tmp_path, monkeypatch):
    out = tmp_path / "g.h5"
    real = stats_module._read_rows

    def read_rows(ds, idx):
        _sigint_in_a_weakref_callback()
        return real(ds, idx)

    monkeypatch.setattr(stats_module, "_read_rows", read_rows)
    with pytest.raises(KeyboardInterrupt):
        _generate(out)
    assert sorted(os.listdir(tmp_path)) == ["g.h5.partial"]
    monkeypatch.setattr(stats_module, "_read_rows", real)
    calls = []
    monkeypatch.setattr(DatasetWriter, "write", lambda *a, **k: calls.append(a))
    report = validate(_generate(out, resume=True))  # finalize only: nothing written again
    assert calls == [] and report.n_samples == 6


def test_ctrl_c_during_migrate_keeps_the_original_and_leaves_no_copy(tmp_path, monkeypatch):
    path = build_base(tmp_path, version=1)
    before = path.read_bytes()
    real = h5py.Dataset.__setitem__
    copied = []

    def setitem(self, key, value):
        if self.name == "/u":
            copied.append(key)
            _sigint_in_a_weakref_callback()
        real(self, key, value)

    monkeypatch.setattr(h5py.Dataset, "__setitem__", setitem)
    with pytest.raises(KeyboardInterrupt):
        migrate(path)
    assert len(copied) == 1  # the one block of u was copied, then it stopped
    monkeypatch.setattr(h5py.Dataset, "__setitem__", real)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == [path.name]  # no copy, no lock
    assert migrate(path).changed and validate(path).n_samples == 6


# --- a file another process holds open -----------------------------------------------------
def test_a_file_held_open_by_another_process_is_named_as_such_not_as_corrupt(tmp_path):
    if os.environ.get("HDF5_USE_FILE_LOCKING", "").upper() == "FALSE":
        pytest.skip("HDF5 file locking is switched off in this environment")
    path = build_base(tmp_path)
    code = "import h5py, sys; f = h5py.File(sys.argv[1], 'a'); print('open', flush=True); "
    code += "sys.stdin.read()"
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        out = tmp_path / "out.h5"
        readers = (validate, open_dataset, open_source_h5, read_prediction_info)
        for read in (*readers, lambda p: import_dataset(p, out)):
            with pytest.raises(DatasetError) as info:
                read(path)
            message = str(info.value)
            assert message.startswith(f"{path}: is open in another process")
            assert "Wait for that process to finish" in message
            assert "corrupt" not in message and "truncated" not in message
        copy = tmp_path / "copy.h5"
        shutil.copyfile(path, copy)  # the other way out the message gives
        assert validate(copy).n_samples == 6
    finally:
        holder.stdin.close()
        assert holder.wait(timeout=60) == 0
        holder.stdout.close()
    assert validate(path).n_samples == 6


# --- statistics of a field that fails its own checks ----------------------------------------
@pytest.mark.parametrize("defect", ["dtype", "shape"])
def test_the_stats_of_an_invalid_field_are_not_called_orphans(tmp_path, defect):
    path = build_base(tmp_path)
    with h5py.File(path, "r+") as f:
        attrs = dict(f["u"].attrs)
        data = f["u"][()]
        del f["u"]
        data = (data * 1000).astype(np.int32) if defect == "dtype" else data[:, :-1]
        ds = f.create_dataset("u", data=data)
        for k, v in attrs.items():
            if k != "DIMENSION_LIST":
                ds.attrs[k] = v
    with pytest.raises(SchemaError) as info:
        validate(path)
    message = str(info.value)
    expected = "/u has dtype int32" if defect == "dtype" else "/u has shape (6, 4, 4)"
    assert expected in message
    assert "belongs to no field" not in message and "/stats/u" not in message


def test_a_filesystem_without_locks_is_named_as_such_not_as_a_held_file(tmp_path, monkeypatch):
    """HDF5 says "unable to lock file" for every failed lock; only errno 11 is another
    process holding the file. ENOLCK (e.g. NFS without a lock service) says how to read
    without locks."""
    import errno

    import pdesurrogates.datasets._schema as schema

    path = build_base(tmp_path)
    nolock = OSError(errno.ENOLCK, "Unable to synchronously open file (unable to lock file)")
    held = OSError(errno.EAGAIN, "Unable to synchronously open file (unable to lock file)")
    assert not schema.held_open(nolock) and schema.lock_failed(nolock)
    assert schema.held_open(held) and schema.lock_failed(held)

    def refuse(*args, **kwargs):
        raise nolock

    monkeypatch.setattr(schema.h5py, "File", refuse)
    with pytest.raises(DatasetError) as info:
        schema.open_h5(path)
    message = str(info.value)
    assert "HDF5_USE_FILE_LOCKING=FALSE" in message and "another process" not in message


def test_ctrl_c_during_the_value_scan_stops_after_the_block(tmp_path, monkeypatch):
    """The value check reads a file block by block; a held-back Ctrl-C is raised after
    the block being read, not after the whole file (migrate checks its copy this way)."""
    import pdesurrogates.datasets._validate as validate_module

    path = build_base(tmp_path)
    monkeypatch.setattr(validate_module, "_BLOCK_BYTES", 1)  # one sample a block
    real, reads = validate_module._read, []

    def read(*args, **kwargs):
        reads.append(1)
        if len(reads) == 2:
            _sigint_in_a_weakref_callback()
        return real(*args, **kwargs)

    monkeypatch.setattr(validate_module, "_read", read)
    with h5py.File(path) as f, pytest.raises(KeyboardInterrupt), DeferredInterrupt():
        validate_module.scan_values(f, path)
    assert len(reads) == 2  # of 6 samples a field
