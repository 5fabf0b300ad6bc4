"""Seeded mutation fuzzing of saved model directories (pdesurrogates.testing.fuzz_models)."""

from __future__ import annotations

import pytest

from pdesurrogates.testing import fuzz_models

BAD = ("traceback", "crash", "hang", "silent_acceptance", "pickle_executed")


def _check(result, n):
    assert result["cases"] == n
    assert result["rejected_clearly"] + result["accepted_correct"] == n, result["examples"]
    for outcome in BAD:
        assert result[outcome] == 0, (outcome, result["examples"])


def test_fuzz_models_small_budget(tmp_path):
    result = fuzz_models(40, seed=0, workdir=tmp_path)
    _check(result, 40)
    # the mix reaches both outcomes: corrupt directories refused, harmless edits accepted
    assert result["rejected_clearly"] >= 20 and result["accepted_correct"] >= 3


def test_fuzz_models_is_reproducible(tmp_path):
    a = fuzz_models(12, seed=3, workdir=tmp_path / "a", families=["MgNO", "Normalizer"])
    b = fuzz_models(12, seed=3, workdir=tmp_path / "b", families=["MgNO", "Normalizer"])
    assert a == b


@pytest.mark.slow
def test_fuzz_models_slow_budget(tmp_path):
    _check(fuzz_models(300, seed=1, workdir=tmp_path), 300)
