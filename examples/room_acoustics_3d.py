"""3D room acoustics with a neural operator: a cube or an L-shaped room with absorbing walls.

A DeepONet learns the map from a sound source (a Gaussian pressure pulse at ``x_s``) to
the pressure ``p(x, y, z, t)`` in a 2 m x 2 m x 2 m room with locally reacting walls
(Z = 7400 Pa s/m, 20 % absorption at normal incidence), from staggered FDTD simulations.
Once trained, impulse responses for a moving source cost a fraction of a millisecond.

Steps:

1. Simulate ``--n-sources`` source positions (fmax = 500 Hz, 50 ms) into a dataset file,
   or read ``--data``.
2. Train a DeepONet (``pdesurrogates train deeponet`` does the same), or load ``--model``.
3. Score held-out sources: peak-normalised RMSE, RMSE in Pa, Schroeder decay curves and
   early decay time (ISO 3382) of the predicted impulse responses.
4. Move a source along a line, predict responses at five receivers, compare with the
   FDTD solver and time both; plot responses, decay curves and field slices.

Run: ``python examples/room_acoustics_3d.py`` (``--geometry l-shape`` for the L-shaped
room; ``--smoke`` for a seconds-long run). Figures and ``results.json`` go to
``-o/--output`` (default ``runs/room_acoustics_3d``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

import pdesurrogates
from pdesurrogates.datasets import generate_acoustics
from pdesurrogates.errors import TrainingError
from pdesurrogates.runs import refuse_existing_run
from pdesurrogates.solvers.reference import Room, solve_room
from pdesurrogates.training import (
    DeepONetConfig,
    impulse_response_scores,
    load_source_fields,
    train_deeponet,
)
from pdesurrogates.training._acoustics3d_plots import (
    plot_decay_curves,
    plot_field_slices,
    plot_room_responses,
)

Z_WALL = 7400.0


def _data_and_model(args, out: Path):
    """Generate and train, or read the given dataset and model."""
    if args.data:
        data = Path(args.data)
    else:
        data = out / f"{args.geometry}.h5"
        sim = (
            {"n_sources": 6, "duration": 0.01, "resolution": 8, "ppw": 10.0}
            if args.smoke
            else {"n_sources": args.n_sources, "duration": 0.05, "resolution": 12, "ppw": 16.0}
        )
        t0 = time.perf_counter()
        generate_acoustics(
            data,
            dim=3,
            fmax=500.0,
            geometry=args.geometry,
            impedance=Z_WALL,
            margin=0.3 if args.geometry == "l-shape" else None,
            split=(0.5, 0.17, 0.33) if args.smoke else (0.8, 0.1, 0.1),
            overwrite=True,
            progress=not args.smoke,
            **sim,
        )
        print(f"simulated {sim['n_sources']} sources in {time.perf_counter() - t0:.1f} s")
    if args.model:
        return data, pdesurrogates.load(args.model)
    if args.smoke:
        tiny = {"width": 16, "depth": 2, "latent": 8}
        config = DeepONetConfig(epochs=2, n_points=256, model=tiny)
    else:
        # the recipe of benchmarks/bench_deeponet.py (pn-RMSE 0.017 in the cube): 800
        # sources at 16 ppw, 16 sources x 4096 entries per step, peak learning rate 1e-3
        config = DeepONetConfig(
            epochs=1_000_000,
            batch_size=16,
            n_points=4096,
            lr=1e-3,
            max_time=args.train_seconds,
            model={"width": 128, "depth": 3, "latent": 160},
        )
    model, summary = train_deeponet(data, out / "run", config, progress=not args.smoke)
    print(f"trained in {summary['train_seconds']:.0f} s (model in {out / 'run' / 'model'})")
    return data, model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "-o", "--output", type=Path, default=Path("runs/room_acoustics_3d"), help="output dir"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny, seconds-long run")
    parser.add_argument("--geometry", default="box", choices=["box", "l-shape"])
    parser.add_argument("--n-sources", type=int, default=800, help="simulated sources")
    parser.add_argument(
        "--train-seconds", type=float, default=1800.0, help="training budget (s, wall clock)"
    )
    parser.add_argument("--data", default=None, help="existing acoustics3d dataset")
    parser.add_argument("--model", default=None, help="existing trained model directory")
    args = parser.parse_args()
    out = Path(args.output)
    if not args.model:
        try:  # before the simulation: the run of an earlier call is never replaced
            refuse_existing_run(out / "run")
        except TrainingError as e:
            raise SystemExit(f"error: {e}; or pass --model {out / 'run' / 'model'}") from None
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    data, model = _data_and_model(args, out)

    # held-out sources: paper-style errors and room-acoustic measures at every receiver
    ds, info = load_source_fields(data, "test")
    setup = info["setup"]
    times = info["coords"]["time"]
    rec_all = np.asarray(setup["receivers"])
    sources = ds.sources.numpy().astype(np.float64)
    reference = info["ir"]  # (N, R, T): receivers are the channels
    predicted = model.impulse_response(sources, rec_all, times)
    scores = impulse_response_scores(predicted, reference, times)
    print(
        f"held-out sources: peak-normalised RMSE {scores['peak_normalised_rmse']:.4f}, "
        f"RMSE {scores['ir_rmse_pa']:.4f} Pa, decay curve within "
        f"{scores['edc_max_db']:.2f} dB, EDT error {100 * scores['edt_rel_mean']:.1f} %"
    )
    fig = plot_room_responses(times, reference[0], predicted[0], rec_all, source=sources[0])
    fig.savefig(out / "impulse_responses.png", dpi=110)
    plt.close(fig)
    fig = plot_decay_curves(times, reference[0], predicted[0], rec_all)
    fig.savefig(out / "decay_curves.png", dpi=110)
    plt.close(fig)
    coords = info["coords"]
    field_pred = model.predict_field(sources[0], [coords[a] for a in "xyz"], times)
    k = len(times)
    fig = plot_field_slices(
        coords,
        ds.fields_data[0, 0].numpy(),
        field_pred,
        [k // 10, k // 4, k // 2],
        at=sources[0][2],
    )
    fig.savefig(out / "field_slices.png", dpi=110)
    plt.close(fig)

    # a moving source, five receivers: DeepONet (cold calls) vs the FDTD that made the data
    room = Room.make(setup["room"]["kind"], setup["lengths"])
    receivers = rec_all[np.linspace(0, len(rec_all) - 1, 5).round().astype(int)]
    lo = np.array([b[0] for b in setup["source_bounds"]])
    path = np.stack(
        [lo[0] + np.linspace(0.0, 0.4, 5), np.full(5, lo[1] + 0.1), np.full(5, lo[2] + 0.2)], -1
    )
    t0 = time.perf_counter()
    moving = [model.impulse_response(s, receivers, times) for s in path]
    t_net = (time.perf_counter() - t0) / len(path)
    t0 = time.perf_counter()
    fdtd = [
        solve_room(
            room,
            s,
            duration=setup["duration"],
            fmax=setup["fmax"],
            impedance=setup["impedance"],
            cells=setup["solver_cells"],
            n_times=len(times),
            receivers=receivers,
            store_field=False,
            dtype=torch.float32,
            min_ppw=0,
        ).responses
        for s in path
    ]
    t_fdtd = (time.perf_counter() - t0) / len(path)
    moving_scores = impulse_response_scores(np.stack(moving), np.stack(fdtd), times)
    print(
        f"moving source: {1e3 * t_net:.3f} ms per source (DeepONet, cold) vs "
        f"{1e3 * t_fdtd:.0f} ms (FDTD): {t_fdtd / t_net:.0f}x; peak-normalised RMSE "
        f"{moving_scores['peak_normalised_rmse']:.4f}"
    )
    results = {
        "data": str(data),
        "room": setup["room"],
        "impedance": setup["impedance"],
        "test": scores,
        "moving_source": {
            "deeponet_ms_per_source": 1e3 * t_net,
            "fdtd_ms_per_source": 1e3 * t_fdtd,
            "speedup": t_fdtd / t_net,
            "scores": moving_scores,
        },
    }
    (out / "results.json").write_text(json.dumps(results, indent=2, default=float))
    print(f"figures and results in {out}")


if __name__ == "__main__":
    main()
