"""``mf study``: propagate an input distribution through a fitted multi-fidelity model and
through the problem's high-fidelity function on the same samples, and compare.

Writes into one directory::

    study.json   # format pdesurrogates-mf-study: moments with standard errors (surrogate
                 # and truth), Wasserstein-1 and KS distances, the settings
    study.png    # the two output densities
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from pdesurrogates._figures import Quantity, save_figure
from pdesurrogates.io import atomic_write_text

__all__ = ["STUDY_FIGURE", "STUDY_FILE", "input_distributions", "run_mf_study", "study_moments"]

STUDY_FILE = "study.json"
STUDY_FIGURE = "study.png"
DISTRIBUTIONS = ("uniform", "normal")


def input_distributions(bounds, dist: str) -> dict[str, dict[str, Any]]:
    """Specs of independent inputs ``x0 ..`` on ``bounds``: ``"uniform"`` on the bounds,
    or ``"normal"`` centred with 1/6 of the width as std."""
    if dist == "uniform":
        return {
            f"x{i}": {"dist": "uniform", "low": float(lo), "high": float(hi)}
            for i, (lo, hi) in enumerate(bounds)
        }
    if dist == "normal":
        return {
            f"x{i}": {"dist": "normal", "mean": float((lo + hi) / 2), "std": float((hi - lo) / 6)}
            for i, (lo, hi) in enumerate(bounds)
        }
    raise ValueError(f"--dist must be one of {', '.join(DISTRIBUTIONS)}; got {dist!r}")


def study_moments(study) -> list[dict[str, Any]]:
    """One row per distribution and moment (mean, std, skewness, excess_kurtosis): the
    surrogate's and the truth's value with their Monte Carlo standard errors and the
    difference (both use the same input samples)."""
    from pdesurrogates.uq._propagate import MOMENTS

    rows = []
    for name, res in study.results.items():
        ref = res.reference
        for m in MOMENTS:
            s, t = float(getattr(res, m)), float(ref[m])
            rows.append(
                {
                    "distribution": name,
                    "moment": m,
                    "surrogate": s,
                    "se_surrogate": float(getattr(res, f"se_{m}")),
                    "truth": t,
                    "se_truth": float(ref[f"se_{m}"]),
                    "difference": s - t,
                }
            )
    return rows


def run_mf_study(
    model: str | os.PathLike,
    problem: str,
    out: str | os.PathLike,
    *,
    dist: str = "uniform",
    n_samples: int = 100_000,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """Compare the output distribution of a saved multi-fidelity model with the truth.

    Parameters
    ----------
    model : path
        A run directory of ``mf fit`` (or the model directory in it).
    problem : str
        Built-in problem whose highest level is the truth.
    out : path
        Directory for ``study.json`` and ``study.png`` (created).
    dist : {"uniform", "normal"}
        Input distribution on the problem's bounds.

    Returns
    -------
    dict
        The contents of ``study.json`` plus ``"study"`` (the
        :class:`~pdesurrogates.surrogates.MFStudyResult`) and ``"written"`` (paths).
    """
    import torch

    from pdesurrogates.io import load
    from pdesurrogates.solvers.reference import get_mf_problem
    from pdesurrogates.surrogates import mf_uq_study, plot_uq_study

    p = get_mf_problem(problem)
    inputs = input_distributions(p.bounds, dist)
    out = Path(out)
    if out.suffix in (".json", ".png"):
        raise ValueError(f"-o {out}: give a directory; {STUDY_FILE} and {STUDY_FIGURE} go in it")
    m = load(model)

    def surrogate(x):
        with torch.no_grad():
            return m(torch.as_tensor(np.asarray(x), dtype=torch.float64)).double().numpy()

    def truth(x):
        return p.levels[-1](np.asarray(x, dtype=np.float64))

    study = mf_uq_study(
        surrogate, truth, {dist: inputs}, n_samples=n_samples, seed=seed, progress=progress
    )
    doc = {
        "format": "pdesurrogates-mf-study",
        "version": 1,
        "model": str(Path(model).resolve()),
        "problem": problem,
        "distribution": dist,
        "inputs": inputs,
        "n_samples": int(n_samples),
        "seed": int(seed),
        "moments": study_moments(study),
        "summary": study.summary,
    }
    out.mkdir(parents=True, exist_ok=True)
    written = {"json": out / STUDY_FILE, "figure": out / STUDY_FIGURE}
    atomic_write_text(written["json"], json.dumps(doc, indent=2))
    output = Quantity("y", long_name=f"{problem} high-fidelity output y")
    save_figure(plot_uq_study(study, output=output), written["figure"])
    return {**doc, "study": study, "written": written}
