"""The data commands: generate darcy, info, validate, --version and --help."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from pdesurrogates import __version__
from pdesurrogates.cli import main
from pdesurrogates.datasets import open_dataset


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"pdesurrogates {__version__}"


@pytest.mark.parametrize(
    "args", [[], ["generate"], ["generate", "darcy"], ["info"], ["validate"], ["migrate"]]
)
def test_help_on_every_data_command(args, capsys):
    assert main([*args, "--help"]) == 0
    out = capsys.readouterr().out
    assert "Usage:" in out


def test_console_script_runs():
    out = subprocess.run(
        [sys.executable, "-m", "pdesurrogates", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0 and "generate" in out.stdout


def test_generate_then_info(tmp_path, capsys):
    out = tmp_path / "d.h5"
    code = main(["generate", "darcy", "-n", "6", "-r", "16", "--seed", "3", "-q", "-o", str(out)])
    assert code == 0
    ds = open_dataset(out)
    assert len(ds) == 6 and ds.shape("a") == (1, 16, 16)
    assert {k: len(v) for k, v in ds.splits.items()} == {"train": 5, "valid": 1, "test": 0}
    capsys.readouterr()
    assert main(["info", str(out), "--check"]) == 0
    text = capsys.readouterr().out
    for expected in (
        "float32 a(sample, x, y)  shape (6, 16, 16)  role=input",
        "float32 u(sample, x, y)",
        "sample = 6",
        "complete: True",
        "NaN/Inf: none",
        "train: 5",
        '"variant": "smooth"',
    ):
        assert expected in text
    assert main(["validate", str(out)]) == 0
    assert "valid (6 samples" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["-r", "2"], "resolution 2 is not supported"),
        (["-r", "4096"], "resolution 4096 is not supported"),
        (["--variant", "bumpy"], "--variant must be one of"),
        (["--workers", "0"], "--workers must be >= 1"),
        (["--split", "0.5,0.5"], "--split must be three fractions"),
        (["-n", "0"], "-n"),
    ],
)
def test_generate_bad_arguments(tmp_path, capsys, args, message):
    code = main(["generate", "darcy", "-q", "-o", str(tmp_path / "x.h5"), *args])
    assert code != 0
    captured = capsys.readouterr()
    assert message in captured.err + captured.out
    assert "Traceback" not in captured.err
    assert not (tmp_path / "x.h5").exists()


def test_generate_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "d.h5"
    base = ["generate", "darcy", "-n", "2", "-r", "8", "-q", "-o", str(out)]
    assert main(base) == 0
    assert main(base) == 1
    assert "already exists" in capsys.readouterr().err
    assert main([*base, "--overwrite", "--seed", "9"]) == 0


def test_generate_resume_of_a_finished_file_does_nothing(tmp_path, capsys):
    out = tmp_path / "d.h5"
    base = ["generate", "darcy", "-n", "3", "-r", "8", "-q", "-o", str(out)]
    assert main(base) == 0
    st = out.stat()
    capsys.readouterr()
    assert main([*base, "--resume"]) == 0
    captured = capsys.readouterr()
    assert "already complete" in captured.err and "nothing to do" in captured.err
    assert "wrote" not in captured.out
    assert (out.stat().st_ino, out.stat().st_mtime_ns) == (st.st_ino, st.st_mtime_ns)
    assert main([*base, "--resume", "--seed", "4"]) == 1  # another run's file: not "done"
    assert "made with other arguments" in capsys.readouterr().err


def test_generate_refuses_a_locked_output_naming_the_holder(tmp_path, capsys):
    import os
    import socket

    from pdesurrogates._files import WriteLock

    out = tmp_path / "d.h5"
    with WriteLock(out, command="another generate"):
        assert main(["generate", "darcy", "-n", "2", "-r", "8", "-q", "-o", str(out)]) == 1
    err = capsys.readouterr().err.replace("\n", "")
    assert f"pid {os.getpid()} on host {socket.gethostname()}" in err
    assert "another generate" in err and not out.exists()


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no such file"),
        (b"garbage", "cannot open as HDF5"),
        ("foreign", "not a pdesurrogates-h5 file"),
        ("nan", "holds NaN"),
    ],
)
def test_bad_files_exit_nonzero_with_a_message(tmp_path, capsys, content, message):
    path = tmp_path / "bad.h5"
    if content == "foreign":
        with h5py.File(path, "w") as f:
            f["tensor"] = np.zeros((2, 3))
    elif content == "nan":
        assert main(["generate", "darcy", "-n", "2", "-r", "8", "-q", "-o", str(path)]) == 0
        with h5py.File(path, "r+") as f:
            f["u"][1, 2, 3] = np.nan
        capsys.readouterr()
    elif content is not None:
        path.write_bytes(content)
    for cmd in (["info", "--check", str(path)], ["validate", str(path)]):
        assert main(cmd) == 1
        err = capsys.readouterr().err
        assert message in err and str(path.name) in err
        assert "Traceback" not in err


def test_error_text_in_square_brackets_is_printed_verbatim(tmp_path, capsys):
    path = tmp_path / "[run 1].h5"
    assert main(["info", str(path)]) == 1
    assert "[run 1].h5: no such file" in capsys.readouterr().err


def _checked_file(tmp_path):
    from pdesurrogates.testing._fuzz_datasets import build_base

    return build_base(tmp_path)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda f: f.attrs.__setitem__("complete", "False"), "complete is 'False'"),
        (lambda f: f["stats/u/std"].__setitem__((), np.nan), "/stats/u/std holds nan"),
        (lambda f: f.attrs.__setitem__("schema_version", "abc"), "schema_version is 'abc'"),
    ],
)
def test_validate_and_info_report_schema_defects(tmp_path, capsys, edit, message):
    path = _checked_file(tmp_path)
    with h5py.File(path, "r+") as f:
        edit(f)
    for cmd in (["validate", str(path)], ["info", str(path)]):
        assert main(cmd) == 1
        err = capsys.readouterr().err
        assert message in err and path.name in err and "Traceback" not in err


def test_validate_deep_names_the_corrupt_sample(tmp_path, capsys):
    path = _checked_file(tmp_path)
    assert main(["validate", "--deep", str(path)]) == 0
    assert "deep check passed" in capsys.readouterr().out
    with h5py.File(path, "r") as f:
        offset = f["v"].id.get_chunk_info(2).byte_offset
    data = bytearray(path.read_bytes())
    data[offset + 3] ^= 0x01
    path.write_bytes(bytes(data))
    assert main(["validate", "--deep", str(path)]) == 1
    err = capsys.readouterr().err
    assert "sample 2 of field 'v'" in err and "is corrupt" in err and "Traceback" not in err


def test_validate_notes_a_file_without_checksums(tmp_path, capsys):
    path = tmp_path / "d.h5"
    assert main(["generate", "darcy", "-n", "2", "-r", "8", "-q", "-o", str(path)]) == 0
    with h5py.File(path) as f:
        checksummed = f["u"].fletcher32
    capsys.readouterr()
    assert main(["validate", str(path)]) == 0
    captured = capsys.readouterr()
    assert "valid (2 samples" in captured.out
    assert ("no checksums" in captured.err) != checksummed


@pytest.mark.parametrize("cmd", ["validate", "info"])
def test_a_crash_while_reading_is_reported(tmp_path, capsys, monkeypatch, cmd):
    path = _checked_file(tmp_path)
    monkeypatch.setenv("_PDESURROGATES_CHILD_CRASH", "segv")
    assert main([cmd, str(path)]) == 1
    err = capsys.readouterr().err
    assert f"HDF5 crashed reading {path}" in err and "the file is corrupt" in err


def test_a_fifo_is_refused(tmp_path, capsys):
    import os

    fifo = tmp_path / "pipe.h5"
    os.mkfifo(fifo)
    for cmd in (["validate", str(fifo)], ["info", str(fifo)]):
        assert main(cmd) == 1
        assert "FIFO" in capsys.readouterr().err


def test_info_on_a_huge_declared_coordinate_does_not_allocate(tmp_path, capsys):
    path = _checked_file(tmp_path)
    with h5py.File(path, "r+") as f:
        del f["x"]
        f.create_dataset("x", shape=(2**40,), dtype="f8", chunks=(1024,))
    assert main(["info", str(path)]) == 1
    assert "coordinate /x declares shape (1099511627776,) (8 TiB)" in capsys.readouterr().err


V1 = Path(__file__).parents[1] / "datasets" / "data" / "v1_small.h5"


def test_migrate_dry_run_then_in_place_then_current(tmp_path, capsys):
    path = tmp_path / "old.h5"
    shutil.copyfile(V1, path)
    assert main(["migrate", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would migrate" in out and "schema version 1 -> 2" in out
    assert path.read_bytes() == V1.read_bytes()
    assert main(["migrate", str(path)]) == 0
    assert f"migrated {path}" in capsys.readouterr().out
    assert main(["validate", str(path)]) == 0
    capsys.readouterr()
    assert main(["migrate", str(path)]) == 0
    assert "already at schema version 2; nothing to do" in capsys.readouterr().out


def test_migrate_refuses_a_locked_file(tmp_path, capsys):
    from pdesurrogates._files import WriteLock

    path = tmp_path / "old.h5"
    shutil.copyfile(V1, path)
    with WriteLock(path, command="a generator"):
        assert main(["migrate", str(path)]) != 0
    assert "is being written by" in capsys.readouterr().err
    assert path.read_bytes() == V1.read_bytes()


def test_info_says_what_the_stats_cover_and_words_the_nan_check(tmp_path, capsys):
    from pdesurrogates.datasets import DatasetWriter, FieldSpec

    path = tmp_path / "all.h5"
    with DatasetWriter(path, n_samples=3, coords={"x": 4},
                       fields={"u": FieldSpec(("sample", "x"))}) as w:  # fmt: skip
        w.write_batch(0, {"u": np.arange(12.0).reshape(3, 4)})
        w.finalize(splits={})
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "NaN/Inf: not checked (run with --check to scan every value)" in out
    assert "stats (mean, std over all 3 samples: the file has no train split):" in out
    assert "u: mean 5.5" in out  # the mean of 0..11
    assert "train split" in out and "(train split)" not in out
    assert main(["info", str(path), "--check"]) == 0
    assert "NaN/Inf: none (every value was scanned)" in capsys.readouterr().out
