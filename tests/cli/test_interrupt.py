"""Ctrl-C on a command: exit code 130 and one line saying so, never a silent success."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

import pdesurrogates.datasets.backends._arrays as arrays_module
from pdesurrogates.cli import main
from pdesurrogates.datasets import DatasetWriter

_LINE = (
    "interrupted (Ctrl-C): the command stopped before it finished (files are only put in "
    "place complete; rerun an interrupted generate or train with --resume to continue it)"
)


def _default_sigint_in_child() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a background runner may ignore it


def test_ctrl_c_stops_generate_with_130_and_keeps_the_resumable_partial(tmp_path):
    out = tmp_path / "d.h5"
    partial = tmp_path / "d.h5.partial"
    cmd = [sys.executable, "-m", "pdesurrogates", "generate", "darcy", "-o", str(out)]
    proc = subprocess.Popen(
        [*cmd, "-n", "3000", "-r", "64", "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint_in_child,
        env={**os.environ, "COLUMNS": "400"},  # long paths on one line
    )
    try:
        deadline = time.monotonic() + 120
        while not partial.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert partial.exists(), "the generator never started writing"
        time.sleep(0.5)  # inside the sample loop
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    text = " ".join(stderr.split())
    assert proc.returncode == 130, text
    assert text.endswith(_LINE)
    assert f"are kept in {partial}" in text and "--resume" in text
    assert "Traceback" not in text
    assert sorted(os.listdir(tmp_path)) == ["d.h5.partial"]  # no output, no lock
    with h5py.File(partial) as f:
        done = int(f["_written"][()].sum())
    assert 0 < done < 3000 and f"{done} of 3000 samples are kept" in text


def test_ctrl_c_during_import_arrays_returns_130_and_writes_nothing(
    tmp_path, monkeypatch, capsys, caplog
):
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        src = tmp_path / "src.h5"
        with h5py.File(src, "w") as f:
            f["a"] = np.ones((8, 6, 5))
            f["u"] = np.zeros((8, 6, 5))
        monkeypatch.setattr(arrays_module, "_BLOCK_BYTES", 2 * 6 * 5 * 8 * 2)  # 2 per block
        real = DatasetWriter.write_batch

        def write_batch(self, start, *args, **kwargs):
            if start == 2:
                signal.raise_signal(signal.SIGINT)  # Ctrl-C while the import runs
            real(self, start, *args, **kwargs)

        monkeypatch.setattr(DatasetWriter, "write_batch", write_batch)
        out = tmp_path / "out.h5"
        args = ["import", "arrays", str(src), "--input", "a", "--target", "u", "-o", str(out)]
        with caplog.at_level(logging.WARNING, "pdesurrogates"):
            assert main(args) == 130
    finally:
        signal.signal(signal.SIGINT, old)
    err = " ".join(capsys.readouterr().err.split())
    assert err.endswith(_LINE)
    assert f"nothing was written to {out}" in caplog.text
    assert sorted(os.listdir(tmp_path)) == ["src.h5"]


@pytest.mark.parametrize("args", [["--version"], ["validate", "--help"]])
def test_a_command_that_ends_normally_still_returns_0(args, capsys):
    assert main(args) == 0
    assert "interrupted" not in capsys.readouterr().err


def test_root_help_lists_the_exit_codes(capsys):
    assert main(["--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "Exit codes: 0 success, 1 error, 2 usage error, 130 interrupted (Ctrl-C)." in text
