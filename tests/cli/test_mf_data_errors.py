"""``mf fit --data FILE.npz``: bad arrays are named with the file, the array and the row."""

from __future__ import annotations

import numpy as np
import pytest

from pdesurrogates.cli import main
from pdesurrogates.solvers.reference import forrester


@pytest.fixture
def arrays():
    p = forrester()
    x_lo, x_hi = p.nested_design([12, 6], seed=0)
    return {"x_lo": x_lo, "y_lo": p.low(x_lo), "x_hi": x_hi, "y_hi": p.high(x_hi)}


def _fails(tmp_path, capsys, **arrays) -> str:
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    assert main(["mf", "fit", "--data", str(path), "-o", str(tmp_path / "run"), "-q"]) == 1
    assert not (tmp_path / "run").exists()
    err = " ".join(capsys.readouterr().err.split())
    assert f"{path}: " in err
    return err


@pytest.mark.parametrize(
    ("name", "row", "value"),
    [("y_hi", 3, np.nan), ("y_lo", 0, np.inf), ("x_hi", 4, np.nan), ("x_lo", 7, -np.inf)],
)
def test_nan_names_the_array_and_its_first_bad_row(tmp_path, capsys, arrays, name, row, value):
    bad = arrays[name].copy()
    bad[[row, row + 1]] = value  # the first of two bad rows is named
    err = _fails(tmp_path, capsys, **{**arrays, name: bad})
    assert f"{name} row {row} is NaN or infinite" in err
    assert "2 such row(s)" in err
    lv = name[-2:]
    assert f"remove those points from x_{lv} and y_{lv}" in err


def test_shapes_are_named(tmp_path, capsys, arrays):
    err = _fails(tmp_path, capsys, **{**arrays, "y_lo": arrays["y_lo"][:11]})
    assert "y_lo must have shape (12,), one output per row of x_lo; got (11,)" in err
    err = _fails(tmp_path, capsys, **{**arrays, "y_hi": np.stack([arrays["y_hi"]] * 2, 1)})
    assert "y_hi must have shape (6,), one output per row of x_hi; got (6, 2)" in err
    err = _fails(tmp_path, capsys, **{**arrays, "x_hi": np.hstack([arrays["x_hi"]] * 2)})
    assert "x_hi has 2 input column(s) and x_lo 1" in err
    err = _fails(tmp_path, capsys, **{**arrays, "x_lo": np.zeros((12, 1, 2))})
    assert "x_lo must have shape (n, d) or (n,); got (12, 1, 2)" in err
    err = _fails(tmp_path, capsys, **arrays, bounds=np.array([0.0, 1.0]))
    assert "bounds must have shape (1, 2)" in err
