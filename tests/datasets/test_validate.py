"""The semantic validator, checksums, the one error surface and crash isolation."""

from __future__ import annotations

import os
import shutil
import threading

import h5py
import numpy as np
import pytest

from pdesurrogates.datasets import describe, open_dataset, open_xarray, validate
from pdesurrogates.errors import DatasetError, SchemaError
from pdesurrogates.testing._fuzz_datasets import DEFECTS, build_base, defects


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return build_base(tmp_path_factory.mktemp("base"))


@pytest.fixture
def copy(base, tmp_path):
    path = tmp_path / "d.h5"
    shutil.copyfile(base, path)
    return path


def test_the_base_file_is_valid_with_checksums(copy):
    report = validate(copy, deep=True)
    assert report.checksums and report.deep and report.n_samples == 6
    assert report.notes == []


@pytest.fixture(scope="module")
def base_v1(tmp_path_factory):
    return build_base(tmp_path_factory.mktemp("base1"), version=1)


@pytest.mark.parametrize("name", sorted(DEFECTS))
def test_every_schema_defect_is_reported(copy, name):
    _defect_is_reported(copy, *DEFECTS[name])


@pytest.mark.parametrize("name", sorted(defects(1)))
def test_every_schema_defect_of_a_version_1_file_is_reported(base_v1, tmp_path, name):
    copy = tmp_path / "d1.h5"
    shutil.copyfile(base_v1, copy)
    assert validate(copy, deep=True).n_samples == 6  # the version-1 layout itself is valid
    _defect_is_reported(copy, *defects(1)[name])


def _defect_is_reported(copy, edit, where):
    with h5py.File(copy, "r+") as f:
        edit(f)
    with pytest.raises(SchemaError) as info:
        validate(copy)
    message = str(info.value)
    assert str(copy) in message and where in message
    # opening for training refuses it too (the metadata checks run on open)
    with pytest.raises(DatasetError, match=str(copy)):
        open_dataset(copy)


def test_std_zero_is_a_note(copy):
    with h5py.File(copy, "r+") as f:
        f["stats/u/std"][()] = 0.0
    report = validate(copy)
    assert any("/stats/u/std is 0" in n and str(copy) in n for n in report.notes)


def test_schema_version_text_is_named(copy):
    with h5py.File(copy, "r+") as f:
        f.attrs["schema_version"] = "abc"
    with pytest.raises(SchemaError, match="schema_version is 'abc', not an integer"):
        validate(copy)


def test_huge_coordinate_is_refused_before_allocation(copy):
    with h5py.File(copy, "r+") as f:
        DEFECTS["coord-x-huge"][0](f)
    for call in (validate, describe, open_dataset):
        with pytest.raises(SchemaError, match=r"coordinate /x declares shape \(1099511627776,\)"):
            call(copy)


def _flip_chunk(path, field, sample):
    with h5py.File(path, "r") as f:
        ds = f[field]
        info = next(
            ds.id.get_chunk_info(i)
            for i in range(ds.id.get_num_chunks())
            if ds.id.get_chunk_info(i).chunk_offset[0] == sample
        )
    data = bytearray(path.read_bytes())
    data[info.byte_offset + 5] ^= 0x40
    path.write_bytes(bytes(data))


def test_a_flipped_data_byte_names_the_sample(copy):
    _flip_chunk(copy, "u", 4)
    with pytest.raises(DatasetError, match=r"sample 4 of field 'u' .* is corrupt") as info:
        validate(copy, deep=True)
    assert str(copy) in str(info.value)
    ds = open_dataset(copy)
    ds[3]
    with pytest.raises(DatasetError, match="cannot read sample 4 of field 'u'"):
        ds[4]


def test_files_without_checksums_open_with_a_note(tmp_path):
    path = build_base(tmp_path, checksums=False)
    report = validate(path)
    assert not report.checksums
    assert any("no checksums" in n for n in report.notes)
    assert len(open_dataset(path)) == 6
    # a flipped byte in a train sample: only the deep check sees it (statistics)
    with h5py.File(path, "r") as f:
        offset = f["u"].id.get_chunk_info(0).byte_offset
        high = f["u"].dtype.itemsize - 2  # a byte of the exponent / leading mantissa bits
    data = bytearray(path.read_bytes())
    data[offset + high] ^= 0x10
    path.write_bytes(bytes(data))
    validate(path)
    with pytest.raises(SchemaError, match=r"/stats/u/mean is .* train samples give"):
        validate(path, deep=True)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo")
def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.h5"
    os.mkfifo(fifo)
    errors = []

    def run():
        for call in (validate, describe, open_dataset, open_xarray):
            try:
                call(fifo)
            except DatasetError as exc:
                errors.append(str(exc))

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(20)
    assert not t.is_alive(), "a reader blocked on a FIFO"
    assert len(errors) == 4 and all("FIFO" in e and str(fifo) in e for e in errors)


def test_garbage_in_a_field_attribute_is_a_dataset_error(copy):
    with h5py.File(copy, "r+") as f:
        f["u"].attrs["dims"] = np.array([1.5, 2.5, 3.5])
    with pytest.raises(DatasetError, match=str(copy)):
        validate(copy)


@pytest.mark.parametrize("how", ["segv", "abort"])
def test_a_crashing_reader_is_reported_as_corrupt(copy, monkeypatch, how):
    monkeypatch.setenv("_PDESURROGATES_CHILD_CRASH", how)
    for call in (validate, describe):
        with pytest.raises(DatasetError, match=f"HDF5 crashed reading {copy}") as info:
            call(copy, isolate=True)
        assert "the file is corrupt" in str(info.value)


def test_isolated_validate_gives_the_same_report_and_errors(copy):
    assert validate(copy, isolate=True) == validate(copy)  # the whole report, through JSON
    with h5py.File(copy, "r+") as f:
        f["nu"][2] = 9.0
    with pytest.raises(SchemaError, match=r"/nu holds 9\.0 for sample 2"):
        validate(copy, isolate=True)


def test_a_hanging_reader_is_stopped(copy, monkeypatch):
    from pdesurrogates.datasets._isolate import run_isolated

    monkeypatch.setenv("_PDESURROGATES_CHILD_CRASH", "hang")
    with pytest.raises(DatasetError, match="did not finish within 3 s") as info:
        run_isolated("validate", copy, {}, metadata_timeout=3)
    assert str(copy) in str(info.value) and "the file is corrupt" in str(info.value)


def test_a_damaged_attribute_heap_that_makes_hdf5_loop(tmp_path):
    """Two bytes flipped in the global heap of the root attributes: HDF5 reads the
    'schema' attribute forever. The isolated validate stops it and names the file."""
    from pathlib import Path

    from pdesurrogates.datasets._isolate import run_isolated

    path = tmp_path / "heap.h5"
    shutil.copyfile(Path(__file__).parent / "data" / "heap_loop.h5", path)
    with pytest.raises(DatasetError, match="its metadata did not finish within 5 s") as info:
        run_isolated("validate", path, {}, metadata_timeout=5)
    assert str(path) in str(info.value)
