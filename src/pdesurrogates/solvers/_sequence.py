"""Solve a sequence of related SPD systems, rebuilding the preconditioner or reusing it.

Simulations solve one system per time step, each a little different from the last (a
moving obstacle, a drifting coefficient). A preconditioner with an expensive setup (AMG,
a Galerkin multigrid hierarchy) can be rebuilt for every system, or reused while it still
converges quickly: :func:`solve_sequence` does either, with scipy's ``cg``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import numpy as np
import scipy.sparse.linalg as sla

__all__ = ["solve_sequence"]


def _cg(A, b, M, rtol, maxiter, x0=None) -> tuple[np.ndarray, int, bool]:
    count = [0]

    def cb(_):
        count[0] += 1

    x, info = sla.cg(A, b, x0=x0, rtol=rtol, M=M, maxiter=maxiter, callback=cb)
    if info > 0:  # scipy tests the residual at the start of the next step: the last one may
        # have converged; accepting it here spares a rebuild
        info = int(np.linalg.norm(b - A @ x) > rtol * np.linalg.norm(b))
    return x, count[0], info == 0


def solve_sequence(
    systems: Iterable,
    setup: Callable,
    *,
    reuse: bool = False,
    rtol: float = 1e-6,
    maxiter: int = 10_000,
    growth: float = 1.5,
    slack: int = 2,
    amortize: bool = True,
) -> list[dict]:
    """Solve ``(problem, b)`` pairs in order with preconditioned CG.

    Parameters
    ----------
    systems : iterable of (problem, b)
        ``problem`` is what ``setup`` takes (a gallery Problem or a matrix); its matrix is
        ``problem.A`` when it has one, else ``problem`` itself.
    setup : callable
        ``setup(problem) -> M``, a preconditioner (anything scipy's ``cg`` takes as ``M``).
    reuse : bool
        False: call ``setup`` for every system. True: keep ``M`` while it converges within
        ``cap = max(growth * k0, k0 + slack)`` iterations, ``k0`` the iterations of the
        system ``M`` was built for (solved from a zero start); past the cap, rebuild ``M``
        for the current system and continue CG from where it stopped (those iterations
        count too; ``k0`` keeps the count of the last build solved from zero, an estimate
        for the new one).
    amortize : bool
        With ``reuse``, also rebuild *before* a system once the iterations that the kept
        ``M`` has cost beyond ``k0`` on the systems since its build, at the measured seconds
        per iteration, add up to its measured setup time (rent until the rent paid equals
        the price of a rebuild: never more than twice the best rebuild schedule's overhead).
    rtol, maxiter
        CG stopping rule (scipy's recursive residual; a solve that reaches its iteration
        limit counts as converged when its true residual meets ``rtol``) and the iteration
        limit of one system.

    Returns
    -------
    list of dict
        Per system: ``iterations``, ``setup_s``, ``solve_s``, ``total_s``, ``rebuilt``
        (whether ``setup`` ran for it), ``converged`` and ``true_relres``.

    Examples
    --------
    >>> from pdesurrogates.solvers import gallery, jacobi
    >>> seq = [(p, gallery.random_rhs(p)) for p in gallery.moving_obstacles((16, 16), 3)]
    >>> out = solve_sequence(seq, lambda p: jacobi(p.A), reuse=True, amortize=False)
    >>> [r["rebuilt"] for r in out]  # the iteration cap alone (amortize uses timings)
    [True, False, False]
    """
    if growth < 1 or slack < 0:
        raise ValueError(f"growth must be >= 1 and slack >= 0; got {growth}, {slack}")
    out: list[dict] = []
    M, k0 = None, 0
    build_s = excess = 0.0  # setup seconds of M; iterations beyond k0 since its build
    its_total, solve_total = 0, 0.0
    for problem, b in systems:
        A = getattr(problem, "A", problem)
        if reuse and amortize and M is not None and its_total:
            if excess * solve_total / its_total >= build_s:
                M = None  # the kept M has cost as much as a rebuild: rebuild now
        setup_s = solve_s = 0.0
        rebuilt = False
        x, its, ok = None, 0, False
        if reuse and M is not None:
            cap = max(int(growth * k0), k0 + slack)
            t0 = time.perf_counter()
            x, its, ok = _cg(A, b, M, rtol, min(cap, maxiter))
            solve_s += time.perf_counter() - t0
            excess += max(its - k0, 0)
        if not ok:
            t0 = time.perf_counter()
            M = setup(problem)
            setup_s = build_s = time.perf_counter() - t0
            rebuilt, excess = True, 0.0
            t0 = time.perf_counter()
            x, more, ok = _cg(A, b, M, rtol, max(maxiter - its, 1), x0=x)
            solve_s += time.perf_counter() - t0
            if its == 0:  # solved from zero: the reference count of this M
                k0 = more
            its += more
        its_total += its
        solve_total += solve_s
        relres = float(np.linalg.norm(b - A @ x) / np.linalg.norm(b))
        out.append(
            {
                "iterations": its,
                "setup_s": setup_s,
                "solve_s": solve_s,
                "total_s": setup_s + solve_s,
                "rebuilt": rebuilt,
                "converged": bool(ok),
                "true_relres": relres,
            }
        )
    return out
