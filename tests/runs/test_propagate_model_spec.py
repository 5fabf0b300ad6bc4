"""`uq propagate --model`: module:function, path/to/file.py:function, and the hint when a
module is not on Python's import path."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from pdesurrogates.runs import load_model_or_function

SIM = "import numpy as np\n\ndef fn(x):\n    return np.sum(np.asarray(x) ** 2, axis=-1)\n"


def _without_cwd(monkeypatch, cwd: Path) -> None:
    keep = [p for p in sys.path if Path(p or ".").resolve() != cwd.resolve()]
    monkeypatch.setattr(sys, "path", keep)


def test_module_not_on_path_says_where_it_looked(tmp_path, monkeypatch):
    (tmp_path / "mysim_a.py").write_text(SIM)
    monkeypatch.chdir(tmp_path)
    _without_cwd(monkeypatch, tmp_path)
    with pytest.raises(ValueError) as err:
        load_model_or_function("mysim_a:fn")
    msg = " ".join(str(err.value).split())
    assert "no module named 'mysim_a' on Python's import path (sys.path)" in msg
    assert f"the current directory {tmp_path} is not on it" in msg
    assert "--model path/to/mysim_a.py:fn" in msg


def test_module_on_path_and_file_form_both_load(tmp_path, monkeypatch):
    (tmp_path / "mysim_b.py").write_text(SIM)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "mysim_c.py").write_text(SIM)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    x = np.array([[1.0, 2.0], [3.0, -1.0]])
    np.testing.assert_array_equal(load_model_or_function("mysim_b:fn")(x), [5.0, 10.0])
    fn = load_model_or_function("sub/mysim_c.py:fn")  # the file form needs no sys.path
    np.testing.assert_array_equal(fn(x), [5.0, 10.0])
    with pytest.raises(ValueError, match="has no 'nope'"):
        load_model_or_function("sub/mysim_c.py:nope")
    with pytest.raises(FileNotFoundError, match="no file"):
        load_model_or_function("sub/missing.py:fn")


def test_a_missing_dependency_of_the_module_is_not_blamed_on_the_path(tmp_path, monkeypatch):
    (tmp_path / "mysim_d.py").write_text("import not_a_real_package_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError, match="importing 'mysim_d' failed") as err:
        load_model_or_function("mysim_d:fn")
    assert "not_a_real_package_xyz" in str(err.value)
