"""``mf adapt``: grow a two-level design by calling a built-in problem's simulators
(:func:`~pdesurrogates.surrogates.adaptive_cokriging`) into a multi-fidelity run
directory, the same layout as ``mf fit`` (:mod:`pdesurrogates.runs._mf`)::

    runs/NAME/
      run.json     # kind cokriging, method adaptive: budget, cost spent, final design
                   # sizes, test scores, and one record per iteration (history)
      model/       # pdesurrogates.save of the final CoKrigingGP
      fit.png      # the surrogate against its data and the truth
      test.h5      # high-fidelity test points (split "test")

so ``predict``, ``evaluate`` and ``uq propagate --model runs/NAME`` take it as they take
an ``mf fit`` run.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pdesurrogates._figures import save_figure
from pdesurrogates.io import atomic_write_text
from pdesurrogates.runs._mf import (
    _TARGET,
    FIT_FIGURE,
    TEST_FILE,
    _test_scores,
    plot_mf_fit,
    write_mf_test_data,
)
from pdesurrogates.runs._train import RUN_FILE, new_run_dir, refuse_existing_run

__all__ = ["adapt_mf_run"]


def adapt_mf_run(
    out_dir: str | os.PathLike,
    problem: str,
    *,
    budget: float = 60.0,
    costs: Sequence[float] = (1.0, 10.0),
    n_lo: int = 8,
    n_hi: int = 3,
    criterion: str = "variance",
    n_test: int = 2000,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Adaptive co-kriging on a built-in two-level ``problem`` into the run ``out_dir``.

    Starts from a nested design of ``n_lo``/``n_hi`` points and adds points where the
    cost-weighted predictive variance (``criterion="variance"``) or its integrated
    reduction (``"ivr"``) is largest until ``budget`` (simulator cost, the initial
    design included, ``costs`` per run of each level) is spent. Then scores the final
    model on ``n_test`` uniform high-fidelity test points (seed ``seed + 1000``).

    Returns
    -------
    dict
        The run record (``run.json``).
    """
    from pdesurrogates.io import save
    from pdesurrogates.solvers.reference import get_mf_problem
    from pdesurrogates.surrogates import adaptive_cokriging

    out_dir = Path(out_dir)
    refuse_existing_run(out_dir)
    p = get_mf_problem(problem)
    if p.n_levels != 2:
        raise ValueError(f"problem {problem!r} has {p.n_levels} levels; mf adapt handles 2")
    t0 = time.perf_counter()
    res = adaptive_cokriging(
        list(p.levels),
        p.bounds,
        initial=[n_lo, n_hi],
        costs=list(costs),
        budget=budget,
        criterion=criterion,
        seed=seed,
        progress=progress,
    )
    seconds = time.perf_counter() - t0
    d = p.bounds.shape[0]
    record: dict[str, Any] = {
        "kind": "cokriging",
        "method": "adaptive",
        "criterion": criterion,
        "problem": problem,
        "data": None,
        "budget": float(budget),
        "costs": [float(c) for c in costs],
        "spent": float(res.spent),
        "n_initial": [int(n_lo), int(n_hi)],
        "n_lo": len(res.ys[0]),
        "n_hi": len(res.ys[1]),
        "iterations": len(res.history),
        "in_dim": d,
        "input": [f"x{i}" for i in range(d)],
        "target": _TARGET,
        "ensemble": 1,
        "seed": seed,
        "fit_seconds": seconds,
        "bounds": p.bounds.tolist(),
    }
    xt = p.sample(n_test, seed=seed + 1000, method="uniform")
    yt = p.high(xt)
    pred = res.model.predict(xt)
    record.update(_test_scores(pred, yt))
    record["n_test"] = int(n_test)
    with new_run_dir(out_dir, f"mf adapt -o {out_dir}"):  # locked writes
        write_mf_test_data(out_dir / TEST_FILE, xt, yt, p.bounds, problem=problem)
        record["test_data"] = str((out_dir / TEST_FILE).resolve())
        save(
            res.model, out_dir / "model", metadata={k: v for k, v in record.items() if k != "input"}
        )
        title = (
            f"adaptive co-kriging ({criterion}) on {problem}: {record['n_lo']} low + "
            f"{record['n_hi']} high points, cost {res.spent:g}"
        )
        fig = plot_mf_fit(
            res.model.predict, res.xs, res.ys, p.bounds, problem=p, test=(xt, yt, pred), title=title
        )
        try:
            save_figure(fig, out_dir / FIT_FIGURE)
        finally:
            import matplotlib.pyplot as plt

            plt.close(fig)
        record["figure"] = FIT_FIGURE
        record["history"] = res.history
        atomic_write_text(out_dir / RUN_FILE, json.dumps(record, indent=2))
    return record
