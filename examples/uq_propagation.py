"""A UQ study end to end: simulator -> ensemble surrogate -> judge -> conformal -> propagate.

The simulator is steady heat conduction in a rod, ``-(k(x) u')' = q`` on (0, 1) with
``u(0) = u(1) = 0``, solved by finite differences. It has three uncertain inputs:

* the log-conductivity level ``k0 ~ N(0, 0.3²)``;
* its spatial variation ``k1 ~ U(-0.5, 0.5)``, with ``k(x) = exp(k0 + k1 sin(πx))``;
* the heat source ``q ~ U(0.5, 1.5)``.

The quantity of interest is the mean temperature of the rod.

Steps:

1. Run the simulator on a Latin-hypercube design.
2. Train a 4-member ensemble of small MLPs (``surrogates.Ensemble``).
3. Judge it on held-out runs with ``uq.evaluate``.
4. Calibrate 90 % intervals with split conformal prediction.
5. Propagate the input uncertainty through the surrogate, compared with the simulator on the
   same samples.
6. Compute Sobol' indices of the surrogate and of the simulator.

Run: ``python examples/uq_propagation.py --out uq_study`` (``--smoke`` for a seconds-long
run). Figures and JSON files go to ``--out``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
from scipy import stats
from scipy.linalg import solve_banded

from pdesurrogates.surrogates import Ensemble
from pdesurrogates.uq import (
    conformalize,
    evaluate,
    metrics,
    plots,
    propagate,
    sample_inputs,
    sobol_indices,
)

INPUTS = {
    "k0": stats.norm(0.0, 0.3),
    "k1": stats.uniform(-0.5, 1.0),
    "q": stats.uniform(0.5, 1.0),
}
N_CELLS = 64


def simulator(k0: float, k1: float, q: float) -> float:
    """Mean temperature of the rod (second-order finite differences, ``N_CELLS`` intervals)."""
    h = 1.0 / N_CELLS
    xn = np.linspace(0.0, 1.0, N_CELLS + 1)  # grid nodes, boundaries included
    k = np.exp(k0 + k1 * np.sin(np.pi * xn))
    # unknowns at the N_CELLS - 1 interior nodes; conductivity at the midpoints
    kw, ke = 0.5 * (k[:-2] + k[1:-1]), 0.5 * (k[1:-1] + k[2:])
    ab = np.zeros((3, N_CELLS - 1))
    ab[0, 1:] = -ke[:-1]
    ab[1] = kw + ke
    ab[2, :-1] = -kw[1:]
    u = solve_banded((1, 1), ab, np.full(N_CELLS - 1, q * h * h))
    return float(u.sum() * h)  # trapezoid rule with u = 0 at both ends


def simulate_batch(x: np.ndarray) -> np.ndarray:
    return np.array([simulator(*row) for row in x])


class MLP(torch.nn.Module):
    def __init__(self, width: int = 32):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(3, width),
            torch.nn.SiLU(),
            torch.nn.Linear(width, width),
            torch.nn.SiLU(),
            torch.nn.Linear(width, 1),
        )
        self.register_buffer("x_mean", torch.zeros(3))
        self.register_buffer("x_std", torch.ones(3))
        self.register_buffer("y_mean", torch.zeros(()))
        self.register_buffer("y_std", torch.ones(()))

    def forward(self, x):
        z = (x - self.x_mean) / self.x_std
        return self.net(z)[:, 0] * self.y_std + self.y_mean


def train_member(x, y, seed: int, steps: int) -> MLP:
    torch.manual_seed(seed)
    model = MLP()
    xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    model.x_mean.copy_(xt.mean(0))
    model.x_std.copy_(xt.std(0))
    model.y_mean.copy_(yt.mean())
    model.y_std.copy_(yt.std())
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(seed)
    # bootstrap the training set so that the members disagree where data are thin
    idx_boot = torch.randint(0, len(xt), (len(xt),), generator=gen)
    xb, yb = xt[idx_boot], yt[idx_boot]
    for _ in range(steps):
        idx = torch.randint(0, len(xb), (min(64, len(xb)),), generator=gen)
        loss = torch.mean(((model(xb[idx]) - yb[idx]) / model.y_std) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def run(out: Path, *, smoke: bool = False) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    n_train, n_cal, n_test = (60, 60, 60) if smoke else (400, 300, 300)
    steps = 300 if smoke else 3000
    n_prop = 2_000 if smoke else 100_000
    n_sobol = 2**8 if smoke else 2**12

    # 1. simulations on a Latin hypercube
    x = sample_inputs(INPUTS, n_train + n_cal + n_test, method="lhs", seed=0)
    y = simulate_batch(x)
    tr, ca, te = np.split(np.arange(len(x)), [n_train, n_train + n_cal])

    # 2. an ensemble of MLPs
    ens = Ensemble([train_member(x[tr], y[tr], seed, steps) for seed in range(4)])

    def predict(rows):
        with torch.no_grad():
            return ens.predict(torch.tensor(rows, dtype=torch.float32)).numpy()

    # 3. judge it (one "field" per run: a scalar QoI, so y has shape (N,))
    p_test = predict(x[te])
    report = evaluate(p_test, y[te].astype(np.float32), meta={"name": "MLP ensemble"})
    print(report.summary())
    report.to_json(out / "uq_report.json")
    plots.plot_calibration(report).savefig(out / "calibration.png", dpi=120)
    plots.plot_pred_vs_true(p_test, y[te]).savefig(out / "pred_vs_true.png", dpi=120)

    # 4. split-conformal 90 % intervals calibrated on held-out runs
    cal = conformalize(predict(x[ca]), y[ca].astype(np.float32), level=0.9, mode="field")
    band = cal.apply(p_test)
    raw_cov = float(metrics.coverage(p_test, y[te], 0.9))
    conf_cov = float(metrics.coverage(band, y[te], 0.9))
    print(f"90% interval coverage on test runs: ensemble {raw_cov:.3f}, conformal {conf_cov:.3f}")

    # 5. propagate the input uncertainty through the surrogate (ensemble mean)
    res = propagate(
        ens,
        INPUTS,
        n_prop,
        method="lhs",
        seed=1,
        batch_size=4096,
        reference=simulate_batch,
    )
    print(res.summary())
    res.to_json(out / "propagation.json")
    plots.plot_propagation(res).savefig(out / "propagation.png", dpi=120)

    # 6. Sobol' indices: surrogate (cheap) and simulator (the check)
    s_sur = sobol_indices(ens, INPUTS, n_sobol, seed=2, n_bootstrap=100)
    s_sim = sobol_indices(simulate_batch, INPUTS, n_sobol, seed=2, n_bootstrap=100)
    print("surrogate", s_sur.summary(), "simulator", s_sim.summary(), sep="\n")
    s_sur.to_json(out / "sobol_surrogate.json")
    s_sim.to_json(out / "sobol_simulator.json")
    plots.plot_sobol(s_sur).savefig(out / "sobol.png", dpi=120)
    return {
        "report": report,
        "coverage_raw": raw_cov,
        "coverage_conformal": conf_cov,
        "propagation": res,
        "sobol_surrogate": s_sur,
        "sobol_simulator": s_sim,
    }


def _check_simulator() -> None:
    # constant conductivity: u = q x (1 - x) / (2k), mean = q / (12 k)
    got = simulator(0.2, 0.0, 1.3)
    exact = 1.3 / (12 * math.exp(0.2))
    assert abs(got - exact) < 1e-3 * exact, (got, exact)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("runs/uq_propagation"),
        help="output directory (default: runs/uq_propagation)",
    )
    parser.add_argument(
        "--out", dest="output", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )  # the old spelling of -o
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds")
    args = parser.parse_args()
    _check_simulator()
    run(args.output, smoke=args.smoke)
