"""Train a DCDM direction network once, then solve Poisson systems of several sizes with it.

The second job of pdesurrogates: use a trained network to accelerate sparse SPD solves.

1. Generate training vectors: Ritz vectors of the 2D Dirichlet Laplacian (Lanczos),
   weighted toward the low end of the spectrum, stored once as a pdesurrogates-h5 file.
2. Train :class:`~pdesurrogates.surrogates.ConjugateDirectionNet` (a learned multigrid
   V-cycle) with the label-free DCDM loss.
3. Solve larger Dirichlet-box systems and a smoke domain (Neumann walls, open top, an
   obstacle) with :func:`~pdesurrogates.solvers.dcdm`, next to plain CG and an SPD
   learned V-cycle passed as ``M=`` to ``scipy.sparse.linalg.cg``.

Run: ``python examples/dcdm_poisson.py`` (about a minute) or ``--smoke`` (seconds); the
model and the training vectors go to ``-o/--output`` (default ``runs/dcdm_poisson``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import scipy.sparse.linalg as sla
import torch

import pdesurrogates
from pdesurrogates.solvers import LearnedPreconditioner, dcdm, gallery
from pdesurrogates.surrogates import ConjugateDirectionNet, LearnedVCycle
from pdesurrogates.training import train_dcdm, write_ritz_dataset


def scipy_cg_iterations(A, b, rtol, M=None):
    count = []
    _, info = sla.cg(A, b, rtol=rtol, M=M, callback=lambda xk: count.append(1))
    return len(count), info == 0


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny, seconds-long run")
    ap.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("runs/dcdm_poisson"),
        help="output directory (default: runs/dcdm_poisson)",
    )
    ap.add_argument(
        "--out", dest="output", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )  # the old spelling of -o
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if args.smoke:
        train_n, samples, lanczos, epochs, sizes = 16, 48, 30, 1, (16, 32)
    else:
        train_n, samples, lanczos, epochs, sizes = 64, 600, 300, 4, (64, 128, 256)
    out = args.output  # the run directory: model/ and ritz.h5
    out.mkdir(parents=True, exist_ok=True)

    # 1. training vectors, stored through the dataset layer
    train = gallery.dirichlet_box((train_n, train_n))
    data = write_ritz_dataset(out / "ritz.h5", train, samples, m=lanczos, seed=0)

    # 2. train once at one size
    torch.manual_seed(0)
    net = ConjugateDirectionNet(dim=2, width=8)
    t0 = time.perf_counter()
    hist = train_dcdm(net, train, str(data), epochs=epochs, progress=False)  # grid: the Problem
    print(f"trained on {train.shape} in {time.perf_counter() - t0:.1f} s, "
          f"DCDM loss {hist[0]['loss']:.3g} -> {hist[-1]['loss']:.3g}")  # fmt: skip
    pdesurrogates.save(net, out / "model")
    net = pdesurrogates.load(out)  # a run directory loads its model/

    # 3. solve at other sizes and on an unseen domain
    vcycle = LearnedVCycle(dim=2)  # SPD by construction: valid as M= in scipy's cg
    results = {}
    problems = [(f"dirichlet {n}x{n}", gallery.dirichlet_box((n, n))) for n in sizes]
    n = sizes[-1]
    problems.append(
        (f"smoke {n}x{n}", gallery.smoke_domain((n, n), obstacles=[((0.5, 0.35), 0.12)]))
    )
    for name, p in problems:
        b = gallery.random_rhs(p, seed=1)
        it_cg, _ = scipy_cg_iterations(p.A, b, 1e-6)
        res = dcdm(p, b, net, rtol=1e-6)
        M = LearnedPreconditioner(vcycle, p).aspreconditioner()
        it_vc, ok_vc = scipy_cg_iterations(p.A, b, 1e-6, M=M)
        true = np.linalg.norm(b - p.A @ res.x) / np.linalg.norm(b)
        print(f"{name:>18}: CG {it_cg:5d} it | DCDM {res.n_iter:4d} it (true rel. residual "
              f"{true:.1e}) | CG + learned V-cycle {it_vc:3d} it")  # fmt: skip
        results[name] = {"cg": it_cg, "dcdm": res.n_iter, "dcdm_converged": res.converged,
                         "vcycle_pcg": it_vc, "vcycle_converged": ok_vc}  # fmt: skip
    return results


if __name__ == "__main__":
    main()
