"""Cost and accuracy of the PDE-family generators (Darcy, Helmholtz, Navier–Stokes).

Cost: seconds per sample of each generator's ``*_sample`` function (what a dask worker
runs) at 64² and 128², in this process, single-threaded. Accuracy: the verification
numbers of each reference solver, recomputed here:

* Darcy and Helmholtz: max-norm errors against manufactured solutions on three grids and
  the observed orders;
* Navier–Stokes: the Taylor–Green decay against the Crank–Nicolson factor and against
  ``exp(-8π²νt)`` (time order), the time order on a forced random flow (errors against a
  16x finer step) and the spatial errors of an analytic flow at 8², 16², 32² against 64².

Run: ``python benchmarks/bench_generators.py`` (``--quick`` for a seconds-long check).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

from pdesurrogates.solvers.reference import (
    cell_centres,
    darcy_sample,
    fno_forcing,
    helmholtz_nodes,
    helmholtz_sample,
    ns_initial_vorticity,
    ns_sample,
    solve_darcy,
    solve_helmholtz,
    solve_navier_stokes,
)

from _common import markdown_table, write_results


def _orders(errors):
    e = np.asarray(errors)
    return [round(float(v), 3) for v in np.log2(e[:-1] / e[1:])]


def darcy_verification(resolutions=(32, 64, 128)):
    errors = []
    for r in resolutions:
        X, Y = np.meshgrid(cell_centres(r), cell_centres(r), indexing="ij")
        pi = np.pi
        u = np.sin(pi * X) * np.sin(pi * Y)
        a = 2 + np.sin(pi * X) * np.cos(2 * pi * Y)
        ax, ay = (
            pi * np.cos(pi * X) * np.cos(2 * pi * Y),
            -2 * pi * np.sin(pi * X) * np.sin(2 * pi * Y),
        )
        ux, uy = pi * np.cos(pi * X) * np.sin(pi * Y), pi * np.sin(pi * X) * np.cos(pi * Y)
        f = -(ax * ux + ay * uy) + 2 * pi**2 * a * u
        errors.append(float(np.abs(solve_darcy(a, f) - u).max()))
    return {"grids": list(resolutions), "max_errors": errors, "orders": _orders(errors)}


def helmholtz_verification(points=(17, 33, 65, 129)):
    A, B, PHI, OMEGA = 2.3, 1.7, 0.4, 2.0
    errors = []
    for n in points:
        x = helmholtz_nodes(n)
        X, Y = np.meshgrid(x, x, indexing="ij")
        u = np.cos(A * X + B * Y + PHI)
        c = 1 + 0.3 * np.sin(np.pi * X) * np.cos(np.pi * Y)
        f = (A**2 + B**2) * u - (OMEGA / c) ** 2 * u
        g = {
            "left": A * np.sin(B * x + PHI),
            "right": -A * np.sin(A + B * x + PHI),
            "bottom": B * np.sin(A * x + PHI),
            "top": -B * np.sin(A * x + B + PHI),
        }
        errors.append(float(np.abs(solve_helmholtz(c, OMEGA, f, g) - u).max()))
    return {"grids": list(points), "max_errors": errors, "orders": _orders(errors)}


def ns_verification():
    out = {}
    x = np.arange(16) / 16
    X, Y = np.meshgrid(x, x, indexing="ij")
    w0 = torch.tensor(np.sin(2 * np.pi * X) * np.sin(2 * np.pi * Y))
    nu, t_end = 0.05, 0.5
    lam = 8 * np.pi**2 * nu
    tg_cn, tg_exact = [], []
    for dt in (0.05, 0.025, 0.0125):
        w = solve_navier_stokes(w0, [t_end], nu=nu, cfl=math.inf, dt_max=dt)[-1]
        factor = ((1 - lam * dt / 2) / (1 + lam * dt / 2)) ** round(t_end / dt)
        tg_cn.append(float((w - factor * w0).abs().max()))
        tg_exact.append(float((w - np.exp(-lam * t_end) * w0).abs().max()))
    out["taylor_green"] = {
        "dt": [0.05, 0.025, 0.0125],
        "error_vs_cn_factor": tg_cn,
        "error_vs_exact": tg_exact,
        "orders": _orders(tg_exact),
    }
    s = 32
    w0 = torch.tensor(5 * ns_initial_vorticity(s, rng=np.random.default_rng(1)))
    run = {"nu": 1e-2, "forcing": fno_forcing(s), "cfl": math.inf}
    ref = solve_navier_stokes(w0, [1.0], dt_max=0.02 / 16, **run)[-1]
    errs = [
        float((solve_navier_stokes(w0, [1.0], dt_max=dt, **run)[-1] - ref).norm() / ref.norm())
        for dt in (0.02, 0.01, 0.005)
    ]
    out["forced_random_flow_time"] = {"dt": [0.02, 0.01, 0.005], "rel_l2": errs}
    out["forced_random_flow_time"]["orders"] = _orders(errs)

    def analytic(n):
        xs = np.arange(n) / n
        Xs, Ys = np.meshgrid(xs, xs, indexing="ij")
        t = 2 * np.pi
        return torch.tensor(
            np.sin(t * Xs) * np.exp(np.cos(t * Ys)) + 2 * np.exp(np.sin(t * Xs)) * np.cos(t * Ys)
        )

    run = {"nu": 1e-2, "cfl": math.inf, "dt_max": 2e-3}
    ref = solve_navier_stokes(analytic(64), [0.2], **run)[-1]
    errs = []
    for n in (8, 16, 32):
        r = ref[:: 64 // n, :: 64 // n]
        w = solve_navier_stokes(analytic(n), [0.2], **run)[-1]
        errs.append(float((w - r).abs().max() / r.abs().max()))
    out["spectral_space"] = {"grids": [8, 16, 32], "rel_max_errors": errs}
    return out


def _time(fn, repeats, warm_up=True):
    """(wall, CPU) seconds per call; CPU time is the robust figure on a shared machine."""
    if warm_up:
        fn(0)  # imports, FFT plans
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(1, repeats + 1):
        fn(i)
    return (time.perf_counter() - t0) / repeats, (time.process_time() - c0) / repeats


def costs(quick: bool):
    rows = []
    res = (16, 32) if quick else (64, 128)
    rep = 1 if quick else 3
    for r in res:
        for variant in ("smooth", "rough", "multiscale"):
            wall, cpu = _time(
                lambda i, v=variant, r=r: darcy_sample(i, 0, resolution=r, variant=v), rep
            )
            rows.append(_row(f"darcy {variant}", r, wall, cpu))
        wall, cpu = _time(lambda i, r=r: helmholtz_sample(i, 0, resolution=r), rep)
        rows.append(_row("helmholtz ω=1000", r, wall, cpu))
    for r in res:
        for nu in (1e-3, 1e-4):
            duration = 1.0 if quick else 50.0
            n_times = 3 if quick else 51
            wall, cpu = _time(
                lambda i, r=r, nu=nu, d=duration, n=n_times: ns_sample(
                    i, 0, resolution=r, nu=nu, duration=d, n_times=n
                ),
                1,
                warm_up=False,
            )
            name = f"navier-stokes ν={nu:g}, T={duration:g}, {n_times} frames"
            rows.append(_row(name, r, wall, cpu))
    return rows


def _row(name, r, wall, cpu):
    return {"generator": name, "grid": f"{r}²", "wall s/sample": wall, "CPU s/sample": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    verification = {
        "darcy": darcy_verification(),
        "helmholtz": helmholtz_verification(),
        "navier_stokes": ns_verification(),
    }
    rows = costs(args.quick)
    md = (
        "## Seconds per sample (one process, one thread)\n\n"
        "Wall time depends on the other jobs sharing the cores; CPU time much less so.\n\n"
        + markdown_table(rows)
    )
    md += "\n## Verification\n\n"
    for name in ("darcy", "helmholtz"):
        v = verification[name]
        md += (
            f"- {name}: max errors {', '.join(f'{e:.3e}' for e in v['max_errors'])} on "
            f"{v['grids']} points per side; orders {v['orders']}\n"
        )
    ns = verification["navier_stokes"]
    tg = ns["taylor_green"]
    md += (
        f"- navier-stokes Taylor-Green: error vs the Crank-Nicolson factor "
        f"{max(tg['error_vs_cn_factor']):.1e}; vs exp(-8π²νt) "
        f"{', '.join(f'{e:.3e}' for e in tg['error_vs_exact'])} at dt {tg['dt']}, "
        f"orders {tg['orders']}\n"
        f"- navier-stokes forced random flow: relative L2 time errors "
        f"{', '.join(f'{e:.3e}' for e in ns['forced_random_flow_time']['rel_l2'])}, "
        f"orders {ns['forced_random_flow_time']['orders']}\n"
        f"- navier-stokes spatial errors at 8², 16², 32² (vs 64²): "
        f"{', '.join(f'{e:.1e}' for e in ns['spectral_space']['rel_max_errors'])}\n"
    )
    write_results(
        "generators",  # --quick: into a temporary folder
        {"costs": rows, "verification": verification},
        md,
    )
    print(md)


if __name__ == "__main__":
    main()
