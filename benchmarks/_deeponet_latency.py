"""Latency-only mode of ``bench_deeponet.py``: 3D impulse responses vs the 3D FDTD.

No trained 3D model is stored and the latency of a forward pass does not depend on the
weight values, so each case builds a DeepONet of the benchmark's exact architecture (the
case's ``model`` config, the room, source region and pulse of its dataset), seeded and
untrained. The FDTD is the staggered solver (float32) on the grid that generates the
case's data or, when ``bench_deeponet.py`` has scored a trained rigid-cube model, on the
equal-fidelity grid of :func:`equal_fidelity_ppw`: the coarsest grid whose responses are
as accurate as the DeepONet's against the exact solution. Everything runs in this
process on one thread, in interleaved rounds (each round times every method once), so
slow phases of a shared machine hit all methods alike; the reported latency is the
median over rounds of per-round medians, and the speed-up is the median of the per-round
ratios. Each method is timed by the wall clock and by the CPU time of this thread
(:data:`CLOCKS`): on a loaded machine a 50 ms FDTD run loses many time slices to other
processes and a 0.1 ms call almost none, so the wall-clock ratio grows with the load;
the CPU-time ratio does not.

One impulse response = 5 receivers x 100 samples on the model's native time grid:

* cold: a new source and 5 new receivers every call (branch net, space net at the
  receivers, cached time basis, contraction), on the CPU path (numpy);
* cold, torch lean path: the same call through the torch kernels (the path used on
  other devices, and on the CPU before the numpy path);
* cold, off-grid times: the time net runs too;
* trunk basis cached: fixed receivers and times (:meth:`DeepONet.response_basis`);
* batched: 100 sources in one call with the cached basis, per response.
"""

from __future__ import annotations

import os
import statistics
import time
import warnings

import numpy as np
import torch

from pdesurrogates.solvers.reference import acoustics_setup, solve_room
from pdesurrogates.surrogates import DeepONet

from _common import median_time

#: points per wavelength of the FDTD grids scanned by :func:`equal_fidelity_ppw`
PPWS = (8, 9, 10, 11, 12, 13, 14, 16)


def _setup_and_model(cfg: dict, fmax: float, duration: float, seed: int = 0):
    with warnings.catch_warnings():  # 8 ppw: the data grid's dispersion warning is known
        warnings.simplefilter("ignore", UserWarning)
        setup = acoustics_setup(
            cfg["size"],
            fmax=fmax,
            duration=duration,
            resolution=cfg["resolution"],
            ppw=cfg["ppw"],
            geometry=cfg["geometry"],
            impedance=cfg["impedance"],
            margin=cfg["margin"],
        )
    room = None
    if setup.room is not None and setup.room.notch is not None:
        room = {"kind": "l-shape", "notch": list(setup.room.notch)}
    torch.manual_seed(seed)
    model = DeepONet(
        lengths=list(setup.lengths),
        duration=duration,
        c=setup.c,
        fmax=fmax,
        sigma=setup.sigma,
        source_bounds=[list(b) for b in setup.bounds],
        room=room,
        **cfg["model"],
    ).eval()
    return setup, model


def equal_fidelity_ppw(
    cfg: dict, target: float, *, fmax: float, duration: float, ppws=PPWS, n_sources: int = 6
) -> dict:
    """The coarsest 3D FDTD grid as accurate as the DeepONet, against the exact solution.

    On the rigid box of ``cfg`` (the one room with an exact modal solution), the FDTD
    responses at ``ppws`` points per wavelength are scored like the DeepONet's: the
    peak-normalised RMSE against :func:`modal_wave` at the stored receivers and times, for
    ``n_sources`` random sources of the data's source region. The chosen grid is the
    coarsest whose error, and that of every finer grid scanned, is at most ``target`` (the
    trained DeepONet's error against the exact solution): the error falls with the second
    power of the spacing but not monotonically from one grid to the next.
    """
    from pdesurrogates.solvers.reference import modal_wave
    from pdesurrogates.training import impulse_response_scores

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        setup = acoustics_setup(
            cfg["size"], fmax=fmax, duration=duration, resolution=cfg["resolution"], ppw=8.0
        )
    rng = np.random.default_rng(1)
    lo, hi = np.asarray(setup.bounds).T
    sources = rng.uniform(lo, hi, (n_sources, 3))
    receivers = np.asarray(setup.receivers)
    receivers = receivers[np.linspace(0, len(receivers) - 1, 64).round().astype(int)]
    exact = times = None
    errors = {}
    for ppw in ppws:
        runs = [
            solve_room(
                list(setup.lengths),
                s,
                duration=duration,
                fmax=fmax,
                sigma=setup.sigma,
                ppw=float(ppw),
                n_times=101,
                receivers=receivers,
                store_field=False,
                dtype=torch.float32,
                min_ppw=0.0,
            )
            for s in sources
        ]
        if exact is None:
            times = runs[0].times
            exact = np.stack(
                [
                    modal_wave(setup.lengths, s, sigma=setup.sigma, times=times, points=receivers)
                    for s in sources
                ]
            )
        fdtd = np.stack([r.responses for r in runs])
        errors[float(ppw)] = impulse_response_scores(fdtd, exact, times)["peak_normalised_rmse"]
    chosen = None  # the coarsest grid from which every finer grid is accurate enough
    for p in sorted(errors, reverse=True):
        if errors[p] > target:
            break
        chosen = p
    return {
        "target_pn_rmse_vs_exact": target,
        "fdtd_pn_rmse_vs_exact": errors,
        "ppw": max(errors) if chosen is None else chosen,
        "met": chosen is not None,
    }


def latency_3d(
    name: str,
    cfg: dict,
    *,
    fmax: float,
    duration: float,
    quick: bool,
    ppw: float | None = None,
    grid_label: str = "equal fidelity",
) -> dict:
    """Cold / cached / batched DeepONet latency and the FDTD, interleaved.

    The FDTD runs on the data grid, or at ``ppw`` points per wavelength when given (the
    equal-fidelity grid of :func:`equal_fidelity_ppw`, labelled ``grid_label``).
    """
    if os.environ.get("OMP_NUM_THREADS") != "1":  # numpy's BLAS would use more threads,
        # and the CPU time of this thread would miss their share of the cold call
        raise SystemExit("the latency mode times one thread: run it with OMP_NUM_THREADS=1")
    torch.set_num_threads(1)
    setup, model = _setup_and_model(cfg, fmax, duration)
    grid = {"cells": list(setup.cells)} if ppw is None else {"ppw": float(ppw)}
    rng = np.random.default_rng(0)
    lo, hi = np.asarray(setup.bounds).T
    n_cold = 400
    cand = rng.uniform(lo, hi, (20 * n_cold, 3))
    room = setup.room
    inside = cand if room is None else cand[room.contains(cand)]
    sources = inside[:n_cold]
    span = np.asarray(setup.lengths)
    cand = rng.uniform(0.05, 0.95, (40 * n_cold * 5, 3)) * span
    if room is not None:
        cand = cand[room.contains(cand)]
    cold_rec = cand[: n_cold * 5].reshape(n_cold, 5, 3)
    times = model.native_times()[:100]
    times_off = times + 0.5 * (times[1] - times[0])
    rec = cold_rec[0]
    calls = iter(range(10**9))
    plan = model._lean_plan()
    numpy_plan = plan["numpy"]

    def cold(t=times):
        i = next(calls) % n_cold
        return model.impulse_response(sources[i], cold_rec[i], t)

    def cold_torch():
        plan["numpy"] = None
        try:
            return cold()
        finally:
            plan["numpy"] = numpy_plan

    basis = model.response_basis(rec, times)
    many = sources[:100]

    def fdtd():
        return solve_room(
            setup.room if setup.room is not None else list(setup.lengths),
            sources[next(calls) % n_cold],
            duration=duration,
            fmax=fmax,
            sigma=setup.sigma,
            impedance=setup.impedance,
            **grid,
            n_times=101,
            receivers=rec,
            store_field=False,
            dtype=torch.float32,
            min_ppw=0.0,
        )

    methods = {
        "deeponet_cold": (cold, 200),
        "deeponet_cold_torch_lean": (cold_torch, 200),
        "deeponet_cold_off_grid_times": (lambda: cold(times_off), 50),
        "deeponet_cached_basis": (lambda: model.impulse_response(sources[0], basis=basis), 200),
        "deeponet_batched_per_ir": (lambda: model.impulse_response(many, basis=basis), 10),
        "fdtd_same_grid": (fdtd, 1),
    }
    for fn, _ in methods.values():  # warm-up (builds the lean plan, FDTD buffers)
        fn()
    out = fdtd()  # the grid the FDTD ran on
    fdtd_cells = [round(L / h) for L, h in zip(setup.lengths, out.spacing, strict=True)]
    rounds = {clock: {key: [] for key in methods} for clock in CLOCKS}
    for _ in range(2 if quick else 9):
        for key, (fn, repeats) in methods.items():
            per = 100 if key == "deeponet_batched_per_ir" else 1
            for clock, timer in CLOCKS.items():
                t = median_time(fn, 3 if quick else repeats, warmup=0, clock=timer)
                rounds[clock][key].append(t / per)
    wall, fd = rounds["wall"], rounds["wall"]["fdtd_same_grid"]
    ms = {key: 1e3 * statistics.median(v) for key, v in wall.items()}
    cpu_ms = {key: 1e3 * statistics.median(v) for key, v in rounds["cpu"].items()}

    def ratios(times: dict) -> dict:
        fd = times["fdtd_same_grid"]
        return {
            key: statistics.median(f / v for f, v in zip(fd, vals, strict=True))
            for key, vals in times.items()
        }

    return {
        "case": name,
        "model": {**cfg["model"], "parameters": sum(p.numel() for p in model.parameters())},
        "weights": "untrained, seeded (latency does not depend on the weight values)",
        "fdtd_grid": "data grid" if ppw is None else grid_label,
        "solver_cells": fdtd_cells,
        "solver_ppw": out.ppw,
        "rounds": len(fd),
        "latency_ms": ms,
        "speedup_fdtd_over_this": ratios(wall),
        "cpu_ms": cpu_ms,
        "speedup_fdtd_over_this_cpu": ratios(rounds["cpu"]),
    }


#: wall-clock time, and the CPU time of this thread (not inflated by time slices that other
#: processes take on a shared machine, which hit a 50 ms FDTD run far more than a 0.1 ms call)
CLOCKS = {"wall": time.perf_counter, "cpu": time.thread_time}

#: the note under the latency table of results/deeponet.md
LATENCY_NOTE = (
    "\nEach method is timed by the wall clock and by the CPU time of its thread. On a "
    "loaded machine a 50 ms FDTD run loses time slices to other processes that a 0.1 ms "
    "call does not, so the wall-clock ratio grows with the load (compare the FDTD's wall "
    "and CPU times); the CPU-time ratio is the one that does not depend on it.\n"
)

LABELS = {
    "deeponet_cold": "DeepONet, cold (new source and receivers), CPU numpy path",
    "deeponet_cold_torch_lean": "DeepONet, cold, torch lean path (previous CPU path)",
    "deeponet_cold_off_grid_times": "DeepONet, cold, times off the native grid",
    "deeponet_cached_basis": "DeepONet, trunk basis cached",
    "deeponet_batched_per_ir": "DeepONet, batch of 100 sources, per IR",
}  # the FDTD row's label names its grid (latency_rows)


def latency_rows(latency: list[dict]) -> list[dict]:
    """Markdown rows: one per case and method."""
    return [
        {
            "case": r["case"],
            "method": (
                f"FDTD float32, {r.get('fdtd_grid', 'data grid')} ({r['solver_ppw']:.1f} ppw)"
                if key[:4] == "fdtd"
                else LABELS[key]
            ),
            "ms per IR": ms,
            "FDTD / this, median of per-round ratios": r["speedup_fdtd_over_this"][key],
            "CPU ms per IR": r["cpu_ms"][key] if "cpu_ms" in r else "",
            "FDTD / this, CPU time": r["speedup_fdtd_over_this_cpu"][key] if "cpu_ms" in r else "",
        }
        for r in latency
        for key, ms in r["latency_ms"].items()
    ]


def fdtd_timing_3d() -> list[dict]:
    """Single-threaded staggered FDTD of a 2 m cube, impedance walls, 50 ms, one receiver."""
    torch.set_num_threads(1)
    rows = []
    for fmax, ppw in ((500.0, 8.0), (500.0, 12.0), (500.0, 20.0), (1000.0, 8.0), (1000.0, 12.0)):
        t0 = time.perf_counter()
        sol = solve_room(
            [2.0, 2.0, 2.0],
            [0.7, 0.8, 0.9],
            duration=0.05,
            fmax=fmax,
            ppw=ppw,
            impedance=7400.0,
            receivers=[[1.5, 1.5, 1.5]],
            store_field=False,
            dtype=torch.float32,
            min_ppw=0.0,
        )
        seconds = time.perf_counter() - t0
        nodes = [len(c) for c in sol.coords]
        rows.append({"fmax (Hz)": fmax, "ppw": ppw, "nodes": f"{nodes[0]}^3", "steps": sol.n_steps,
                     "seconds": seconds})  # fmt: skip
        print(rows[-1], flush=True)
    return rows
