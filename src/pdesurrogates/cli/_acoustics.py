"""Acoustics commands: ``generate acoustics1d|2d|3d`` and ``train deeponet``.

The commands are thin wrappers of :func:`pdesurrogates.datasets.generate_acoustics` and
:func:`pdesurrogates.training.train_deeponet`, imported when a command runs (so this
module does not import torch). ``train deeponet`` takes its defaults from
:class:`pdesurrogates.training.DeepONetConfig` (training) and
:class:`pdesurrogates.surrogates.DeepONet` (architecture); a flag overrides
``--config FILE.toml``, which overrides the defaults.
"""

from __future__ import annotations

from pathlib import Path

import typer

from pdesurrogates.cli._app import COMPRESSION, OVERWRITE, QUIET, generate_app, train_app
from pdesurrogates.cli._data import (
    RESUME,
    SCHEDULER,
    SPLIT,
    WORKERS,
    _identity,
    _parse_split,
    check_workers,
)
from pdesurrogates.errors import DatasetError

__all__ = ["train_deeponet_cmd"]


def _parse_floats(text: str | None, name: str) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise typer.BadParameter(f"{name} must be comma-separated numbers, got {text!r}") from None


_EXAMPLE_POINTS = {1: "0.3;1.7", 2: "0.5,0.5;1.5,0.4", 3: "0.5,0.5,1;1.5,0.4,1"}


def _parse_receivers(text: str | None, dim: int):
    if text is None:
        return None
    try:
        rec = [[float(v) for v in part.split(",")] for part in text.split(";") if part.strip()]
    except ValueError:
        rec = []
    if not rec or any(len(r) != dim for r in rec):
        raise typer.BadParameter(
            f"--receivers must be ';'-separated points of {dim} comma-separated coordinates "
            f"(m), e.g. {_EXAMPLE_POINTS[dim]}; got {text!r}"
        )
    return rec


def _generate_command(dim: int):
    def command(
        output: Path = typer.Option(..., "-o", "--output", help="Output file (.h5)."),
        n_sources: int = typer.Option(
            200 if dim < 3 else 800,
            "--n-samples",
            "-n",
            min=1,
            help="Samples: one source position each.",
        ),
        fmax: float = typer.Option(500.0, "--fmax", help="Maximum frequency (Hz)."),
        duration: float = typer.Option(0.05, "--duration", "-T", help="Response length (s)."),
        size: str = typer.Option(
            None, "--size", help="Room dimensions in m, comma-separated (default 2 m each)."
        ),
        margin: float = typer.Option(
            None, "--margin", help="Minimum source distance from the walls (m)."
        ),
        receivers: str = typer.Option(
            None, "--receivers", help="Receiver points 'x,y;x,y;...' in m (default: 5 points)."
        ),
        resolution: int = typer.Option(
            None, "--resolution", "-r", help="Cells per axis of the stored field."
        ),
        ppw: float = typer.Option(20.0, "--ppw", help="Solver points per wavelength at fmax."),
        n_times: int = typer.Option(None, "--n-times", help="Time samples (default 4 fmax T + 1)."),
        seed: int = typer.Option(0, "--seed", help="Base seed; source i uses (seed, i)."),
        workers: int = WORKERS,
        scheduler: str = SCHEDULER,
        resume: bool = RESUME,
        overwrite: bool = OVERWRITE,
        split: str = SPLIT,
        compression: str = COMPRESSION,
        quiet: bool = QUIET,
        geometry: str = typer.Option(
            "box", "--geometry", help="Room shape: box, or l-shape (3D: a quarter removed)."
        ),
        impedance: float = typer.Option(
            None, "--impedance", help="Wall impedance in Pa s/m (default: rigid walls)."
        ),
    ) -> None:
        from pdesurrogates.datasets._acoustics import generate_acoustics

        check_workers(workers, scheduler)
        before = _identity(output)
        path = generate_acoustics(
            output,
            dim=dim,
            n_sources=n_sources,
            fmax=fmax,
            duration=duration,
            size=_parse_floats(size, "--size"),
            margin=margin,
            receivers=_parse_receivers(receivers, dim),
            resolution=resolution,
            ppw=ppw,
            n_times=n_times,
            seed=seed,
            workers=workers,
            scheduler=scheduler,
            resume=resume,
            overwrite=overwrite,
            progress=not quiet,
            split=_parse_split(split),
            compression=compression,
            geometry=geometry,
            impedance=impedance,
        )
        if not (resume and before is not None and before == _identity(path)):
            typer.echo(f"wrote {path}")  # else the file was complete: the log says so

    room = {1: "tube [0, L]", 2: "room [0, Lx] x [0, Ly]", 3: "room (box or L-shape)"}[dim]
    command.__doc__ = (
        f"Generate {dim}D acoustics data: Gaussian pulses in a {room}, solved by FDTD.\n\n"
        "Each sample is one source position (uniform, --margin from the walls, stored in "
        "/params) with the pressure field p(time, x...) and the impulse responses "
        "ir(time, receiver). The solver runs at --ppw points per wavelength (a CFL and "
        "resolution check runs first); --workers starts a dask cluster. Walls are rigid "
        "unless --impedance Z (Pa s/m) is given; 3D rooms, impedance walls and --geometry "
        "l-shape use the staggered pressure-velocity FDTD, with receivers on a grid."
    )
    return command


generate_app.command("acoustics1d")(_generate_command(1))
generate_app.command("acoustics2d")(_generate_command(2))
generate_app.command("acoustics3d")(_generate_command(3))


# --------------------------------------------------------------------------- command
_DEFAULT = "default: DeepONetConfig"
_MODEL_DEFAULT = "default: the DeepONet default"


@train_app.command("deeponet")
def train_deeponet_cmd(
    data: Path = typer.Option(..., "--data", "-d", help="Acoustics dataset (.h5)."),
    output: Path = typer.Option(..., "-o", "--output", help="Run directory, e.g. runs/NAME."),
    config: Path = typer.Option(
        None, "--config", "-c", help="TOML file with tables [model] and [training]."
    ),
    ensemble: int = typer.Option(None, "--ensemble", "-k", min=1, help=f"Members ({_DEFAULT})."),
    epochs: int = typer.Option(None, "--epochs", min=1, help=f"Epochs ({_DEFAULT})."),
    batch_size: int = typer.Option(
        None, "--batch-size", min=1, help=f"Sources per step ({_DEFAULT})."
    ),
    points: int = typer.Option(
        None, "--points", min=1, help=f"(x, t) points per step ({_DEFAULT})."
    ),
    lr: float = typer.Option(None, "--lr", help=f"Peak learning rate ({_DEFAULT})."),
    width: int = typer.Option(None, "--width", help=f"Hidden width ({_MODEL_DEFAULT})."),
    depth: int = typer.Option(None, "--depth", help=f"Hidden layers ({_MODEL_DEFAULT})."),
    latent: int = typer.Option(None, "--latent", "-p", help=f"Latent width p ({_MODEL_DEFAULT})."),
    architecture: str = typer.Option(None, "--architecture", help="modified or mlp."),
    activation: str = typer.Option(None, "--activation", help="sin, tanh, gelu, silu, relu."),
    encoding: str = typer.Option(
        None, "--encoding", help="Trunk encoding: periodic, fourier, random or none."
    ),
    trunk: str = typer.Option(
        None,
        "--trunk",
        help="separable (space net x time net; fast impulse responses) or joint (one net "
        "of (x, t)).",
    ),
    rank: int = typer.Option(
        None, "--rank", min=1, help="Separable trunk: space x time terms per basis function."
    ),
    source_input: str = typer.Option(
        None, "--source-input", help="Branch input: pulse (sampled) or coordinates."
    ),
    seed: int = typer.Option(None, "--seed", help=f"Seed of initialisation and data ({_DEFAULT})."),
    max_time: float = typer.Option(
        None,
        "--max-seconds",
        help="Wall-clock budget (s) per member; the learning-rate schedule follows it and "
        "--epochs becomes an upper bound.",
    ),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Continue the run in OUTPUT (without it, a directory holding a run is refused).",
    ),
    no_eval: bool = typer.Option(False, "--no-eval", help="Skip the test-split evaluation."),
    quiet: bool = QUIET,
) -> None:
    """Train a DeepONet (source -> pressure p(x, t)) on an acoustics dataset.

    Writes OUTPUT/model (pdesurrogates.load), run.json, metrics.jsonl, checkpoints, summary.json
    (with the configuration used), and, unless --no-eval, report.json with the test-split
    scores (whole-field relative L2, peak-normalised RMSE of the impulse responses) and
    plots of predicted vs reference impulse responses and fields. --ensemble K trains K
    members (seeds seed..seed+K-1). An OUTPUT that already holds a run is refused
    unless --resume continues it. Unset flags take the value of --config, else the
    default of pdesurrogates.training.DeepONetConfig / pdesurrogates.surrogates.DeepONet.
    """
    flags = {
        "ensemble": ensemble,
        "epochs": epochs,
        "batch_size": batch_size,
        "n_points": points,
        "lr": lr,
        "seed": seed,
        "max_time": max_time,
        "width": width,
        "depth": depth,
        "latent": latent,
        "architecture": architecture,
        "activation": activation,
        "encoding": encoding,
        "trunk": trunk,
        "rank": rank,
        "source_input": source_input,
    }
    _run_train_deeponet(
        data, output, config, flags, resume=resume, evaluate=not no_eval, quiet=quiet
    )


def _run_train_deeponet(data, output, config_path, flags, *, resume, evaluate, quiet) -> None:
    from pdesurrogates.training import DeepONetConfig, train_deeponet

    if not Path(data).is_file():
        raise DatasetError(
            f"{data}: no such dataset file; create one with "
            "'pdesurrogates generate acoustics2d -o FILE'"
        )
    # without --config: the defaults, or on --resume the run's own settings
    config = None if config_path is None else DeepONetConfig.from_toml(config_path)
    overrides = {k: v for k, v in flags.items() if v is not None}  # unset flags keep config
    # the run guard, the resume check and run.json (predict / evaluate read it) are
    # train_deeponet's, as for a call from Python
    _model, summary = train_deeponet(
        data, output, config, progress=not quiet, evaluate=evaluate, resume=resume, **overrides
    )
    msg = f"trained in {summary['train_seconds']:.1f} s; model in {Path(output) / 'model'}"
    if "test" in summary:
        t = summary["test"]
        msg += (
            f"\ntest: field rel L2 {t['rel_l2']:.4f}, impulse-response peak-normalised RMSE "
            f"{t['peak_normalised_rmse']:.4f} ({t['n_sources']} sources)"
        )
    typer.echo(msg)
