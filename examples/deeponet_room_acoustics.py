"""Room acoustics with a neural operator: impulse responses for any source position.

A DeepONet learns the map from a sound source (a Gaussian pressure pulse at position
``x_s``) to the pressure ``p(x, t)`` everywhere in a rigid 2 m x 2 m room, from FDTD
simulations. Once trained, an impulse response at any receiver costs a fraction of a
millisecond instead of a full wave simulation.

Steps:

1. Simulate ``--n-sources`` source positions with the FDTD solver (fmax = 500 Hz,
   50 ms, 20 points per wavelength) into a dataset file.
2. Train a DeepONet on the training split (``pdesurrogates train deeponet`` does the same).
3. Score the held-out sources with the common UQ evaluator and the paper-style
   peak-normalised RMSE of the impulse responses; plot responses and field snapshots.
4. Move a source along a line, predict the responses at three receivers, compare with the
   FDTD solver and time both.

Run: ``python examples/deeponet_room_acoustics.py --out room_run`` (about 15 min on 2
cores; ``--smoke`` for a seconds-long run). Figures and JSON files go to ``--out``.
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

from pdesurrogates.datasets import generate_acoustics
from pdesurrogates.errors import TrainingError
from pdesurrogates.runs import refuse_existing_run
from pdesurrogates.solvers.reference import solve_wave
from pdesurrogates.training import DeepONetConfig, train_deeponet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("runs/deeponet_room_acoustics"),
        help="output directory (default: runs/deeponet_room_acoustics)",
    )
    parser.add_argument(
        "--out", dest="output", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )  # the old spelling of -o
    parser.add_argument("--smoke", action="store_true", help="tiny, seconds-long run")
    parser.add_argument("--n-sources", type=int, default=200, help="simulated sources")
    parser.add_argument("--epochs", type=int, default=400, help="training epochs")
    args = parser.parse_args()
    out = Path(args.output)
    try:  # before the simulation: the run of an earlier call is never replaced
        refuse_existing_run(out / "run")
    except TrainingError as e:
        raise SystemExit(f"error: {e}") from None
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)

    if args.smoke:
        sim = {"n_sources": 10, "duration": 0.01, "resolution": 16}
        config = DeepONetConfig(
            epochs=4, n_points=256, model={"width": 16, "depth": 2, "latent": 8}
        )
    else:
        sim = {"n_sources": args.n_sources, "duration": 0.05, "resolution": 32}
        config = DeepONetConfig(epochs=args.epochs)  # the default DeepONet and its training

    # 1. data: FDTD, source positions uniform at least 0.6 m from the walls
    data = out / "room.h5"
    t0 = time.perf_counter()
    generate_acoustics(
        data, dim=2, fmax=500.0, size=[2.0, 2.0], overwrite=True, progress=not args.smoke, **sim
    )
    print(f"simulated {sim['n_sources']} sources in {time.perf_counter() - t0:.1f} s")

    # 2 + 3. train, then score the test split (report.json, impulse_responses.png, ...)
    model, summary = train_deeponet(data, out / "run", config, progress=not args.smoke)
    test = summary["test"]
    print(
        f"trained in {summary['train_seconds']:.0f} s; held-out sources: field relative L2 "
        f"{test['rel_l2']:.3f}, impulse-response peak-normalised RMSE "
        f"{test['peak_normalised_rmse']:.3f}"
    )

    # 4. a source moving along a line, three receivers, DeepONet vs FDTD
    receivers = np.array([[0.3, 0.3], [1.0, 1.7], [1.7, 0.6]])
    times = model.native_times()  # the output grid of the data; its time basis is cached
    path = np.stack([np.linspace(0.7, 1.3, 7), np.full(7, 0.9)], axis=-1)
    basis = model.response_basis(receivers, times)  # the trunk once for these receivers
    t0 = time.perf_counter()
    predicted = model.impulse_response(path, basis=basis)  # (7, 3, T)
    t_net = (time.perf_counter() - t0) / len(path)
    # cold calls: a new source and a listener that moves too (no basis to reuse)
    t0 = time.perf_counter()
    for k, s in enumerate(path):
        model.impulse_response(s, receivers + np.array([0.02 * k, 0.0]), times)
    t_cold = (time.perf_counter() - t0) / len(path)
    t0 = time.perf_counter()
    reference = np.stack(
        [
            solve_wave(
                [2.0, 2.0],
                s,
                duration=sim["duration"],
                fmax=500.0,
                n_times=len(times),
                receivers=receivers,
                store_field=False,
                dtype=np.float32,
            ).responses
            for s in path
        ]
    )
    t_fdtd = (time.perf_counter() - t0) / len(path)
    peak = np.abs(reference).max(axis=-1, keepdims=True)
    pn_rmse = np.sqrt(np.mean(((predicted - reference) / peak) ** 2, axis=-1))
    print(
        f"moving source: {1e3 * t_net:.3f} ms per source (DeepONet, fixed receivers), "
        f"{1e3 * t_cold:.3f} ms (DeepONet, new receivers each call) vs {1e3 * t_fdtd:.1f} ms "
        f"(FDTD), peak-normalised RMSE {pn_rmse.mean():.3f}"
    )

    fig, axes = plt.subplots(len(receivers), 1, figsize=(7, 6), sharex=True)
    for r, ax in enumerate(axes):
        for k in (0, len(path) // 2, len(path) - 1):
            (line,) = ax.plot(1e3 * times, reference[k, r], lw=1.0)
            ax.plot(1e3 * times, predicted[k, r], "--", color=line.get_color(), lw=1.0)
        ax.set_ylabel("p (Pa)")
        ax.set_title(
            f"receiver {receivers[r].tolist()} m (solid FDTD, dashed DeepONet)", fontsize=9
        )
    axes[-1].set_xlabel("time (ms)")
    fig.tight_layout()
    fig.savefig(out / "moving_source.png", dpi=110)
    plt.close(fig)
    results = {
        "test": test,
        "train_seconds": summary["train_seconds"],
        "moving_source": {
            "deeponet_ms_per_source": 1e3 * t_net,
            "deeponet_cold_ms_per_source": 1e3 * t_cold,
            "fdtd_ms_per_source": 1e3 * t_fdtd,
            "peak_normalised_rmse": float(pn_rmse.mean()),
        },
    }
    (out / "results.json").write_text(json.dumps(results, indent=2, default=float))
    print(f"figures and results in {out}")


if __name__ == "__main__":
    main()
