"""Training runs on ``pdesurrogates-h5`` files: train, evaluate, predict.

A *run directory* holds everything about one trained surrogate::

    runs/NAME/
      run.json          # model kind, data file, input/target fields, all settings
      model/            # the trained model (NormalizedModel or Ensemble), pdesurrogates.save
      checkpoint.pt     # single model: last epoch (resume); ensembles: member_<i>/...
      metrics.jsonl     # per-epoch metrics (single model; ensembles: per member)

These functions are what the ``pdesurrogates train / evaluate / predict`` commands call.
"""

from __future__ import annotations

import json
import math
import os
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pdesurrogates.errors import ConfigError, DatasetError, TrainingError
from pdesurrogates.io import atomic_write_text

__all__ = [
    "MODEL_KINDS",
    "RUN_FILE",
    "build_surrogate",
    "load_config",
    "load_run",
    "predict_fields",
    "predict_run",
    "train_run",
]

RUN_FILE = "run.json"
MODEL_KINDS = ("mgno", "fno")

_TRAINING_KEYS = {
    "loss": str,
    "lr": float,
    "epochs": int,
    "batch_size": int,
    "scheduler": (str, type(None)),
    "patience": (int, type(None)),
    "seed": int,
    "weight_decay": float,
    "grad_clip": (float, type(None)),
    "max_time": (float, type(None)),
    "num_workers": int,
    "pct_start": float,
}
_RUN_KEYS = {"input": (str, list), "target": str, "ensemble": int}
DEFAULT_TRAINING = {
    "loss": "rel_l2",
    "lr": 1e-3,
    "epochs": 30,
    "batch_size": 8,
    "scheduler": "onecycle",
    "patience": None,
    "seed": 0,
    "weight_decay": 0.0,
    "grad_clip": 1.0,
}


def load_config(path: str | os.PathLike | None) -> dict[str, dict[str, Any]]:
    """Read a TOML run configuration with tables ``[model]``, ``[training]`` and ``[data]``.

    ``[model]`` holds the model's keyword arguments (checked when the model is built),
    ``[training]`` the :class:`Trainer` settings (``loss``, ``lr``, ``epochs``,
    ``batch_size``, ``scheduler``, ``patience``, ``seed``, ``weight_decay``, ``grad_clip``,
    ``max_time``, ``num_workers``, ``pct_start``) and ``[data]`` the fields (``input`` = a
    name or list of names, ``target`` = a name).

    Raises
    ------
    ConfigError
        Unreadable TOML, an unknown table or key, or a value of the wrong type (the message
        names the file and the key).
    """
    if path is None:
        return {"model": {}, "training": {}, "data": {}}
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        cfg = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    unknown = set(cfg) - {"model", "training", "data"}
    if unknown:
        raise ConfigError(
            f"{path}: unknown table(s) {sorted(unknown)}; use the tables model, training and data"
        )
    out = {k: dict(cfg.get(k, {})) for k in ("model", "training", "data")}
    for section, allowed in (("training", _TRAINING_KEYS), ("data", _RUN_KEYS)):
        for key, value in out[section].items():
            if key not in allowed:
                raise ConfigError(
                    f"{path}: unknown key {key!r} in table {section!r}; allowed: {sorted(allowed)}"
                )
            types = allowed[key] if isinstance(allowed[key], tuple) else (allowed[key],)
            if float in types and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
                out[section][key] = value
            if not isinstance(value, types) or isinstance(value, bool):
                raise ConfigError(
                    f"{path}: {section}.{key} = {value!r} has the wrong type; expected "
                    + " or ".join(t.__name__ for t in types)
                )
    return out


def _spatial_shape(ds, name: str) -> tuple[int, int]:
    spec = ds.fields[name]
    dims = [d for d in spec.dims if d not in ("sample", "component")]
    if dims != ["x", "y"] or spec.dims[0] != "sample":
        raise DatasetError(
            f"{ds.path}: field {name!r} has dims {spec.dims}; MgNO and FNO need "
            "(sample, x, y) or (sample, x, y, component) fields"
        )
    shape = ds.shape(name)
    return int(shape[0]), int(shape[1])


def _channels(ds, name: str) -> int:
    spec = ds.fields[name]
    return int(ds.shape(name)[-1]) if spec.dims[-1] == "component" else 1


def resolve_fields(ds, inputs=None, target=None) -> tuple[list[str], str]:
    """Input field names and the target field name (defaults from the field roles)."""
    fields = ds.fields
    if inputs is None:
        inputs = [k for k, s in fields.items() if s.role in ("input", "coefficient")]
        if not inputs:
            raise DatasetError(
                f"{ds.path}: no field has role 'input'; name the input field(s) with "
                "input = ... in the data table of the config"
            )
    elif isinstance(inputs, str):
        inputs = [inputs]
    if target is None:
        outs = [k for k, s in fields.items() if s.role == "output"]
        if len(outs) != 1:
            raise DatasetError(
                f"{ds.path}: cannot choose the target field (output fields: {outs}); set "
                "target = ... in the data table of the config"
            )
        target = outs[0]
    for name in [*inputs, target]:
        if name not in fields:
            raise DatasetError(f"{ds.path}: no field {name!r}; fields: {sorted(fields)}")
    shapes = {n: _spatial_shape(ds, n) for n in [*inputs, target]}
    if len(set(shapes.values())) != 1:
        raise DatasetError(f"{ds.path}: input and target fields differ in grid size: {shapes}")
    return list(inputs), target


def _stats_vector(ds, names: Sequence[str]) -> tuple[list[float], list[float]]:
    means, stds = [], []
    for name in names:
        mean, std = ds.stats(name)
        means += np.asarray(mean, dtype=np.float64).reshape(-1).tolist()
        stds += np.asarray(std, dtype=np.float64).reshape(-1).tolist()
    return means, stds


def default_levels(resolution: int, max_levels: int = 5) -> int:
    """Most multigrid levels (<= ``max_levels``) whose coarsest grid has >= 4 cells."""
    levels = 1
    while levels < max_levels and resolution % 2**levels == 0 and resolution // 2**levels >= 4:
        levels += 1
    return levels


def build_surrogate(
    kind: str,
    model_config: Mapping[str, Any],
    *,
    in_channels: int,
    out_channels: int,
    resolution: int,
    input_stats: tuple[Sequence[float], Sequence[float]] | None = None,
    output_stats: tuple[Sequence[float], Sequence[float]] | None = None,
    seed: int = 0,
) -> torch.nn.Module:
    """A :class:`NormalizedModel` around an MgNO or FNO built from ``model_config``."""
    from pdesurrogates.datasets import Normalizer
    from pdesurrogates.surrogates import FNO, MgNO, NormalizedModel

    if kind not in MODEL_KINDS:
        raise ValueError(f"model kind must be one of {MODEL_KINDS}, got {kind!r}")
    cfg = dict(model_config)
    cfg.setdefault("in_channels", in_channels)
    cfg.setdefault("out_channels", out_channels)
    if kind == "mgno":
        cfg.setdefault("base_resolution", resolution)
        cfg.setdefault("levels", default_levels(cfg["base_resolution"]))
        cls = MgNO
    else:
        cls = FNO
    torch.manual_seed(seed)  # member initialisation: reproducible per seed
    try:
        net = cls(**cfg)
    except TypeError as exc:
        raise ConfigError(f"model table for {kind}: {exc}") from exc

    def norm(stats):
        if stats is None:
            return None
        mean, std = stats
        return Normalizer(
            mean=mean[0] if len(mean) == 1 else list(mean),
            std=std[0] if len(std) == 1 else list(std),
        )

    return NormalizedModel(
        net, input_normalizer=norm(input_stats), output_normalizer=norm(output_stats)
    )


def train_run(
    kind: str,
    data: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    config: str | os.PathLike | Mapping | None = None,
    ensemble: int | None = None,
    resume: bool = False,
    progress: bool = True,
    device: str | None = None,
) -> dict[str, Any]:
    """Train an MgNO or FNO (or an ensemble of them) on the train split of ``data``.

    The validation split, when the file has one, drives model selection (the best epoch
    is kept) and early stopping (``patience``). Returns the run record also written to
    ``out_dir/run.json``.
    """
    from pdesurrogates.datasets import open_dataset
    from pdesurrogates.training._ensemble import fit_ensemble
    from pdesurrogates.training._trainer import Trainer

    if kind not in MODEL_KINDS:
        raise ValueError(f"model kind must be one of {MODEL_KINDS}, got {kind!r}")
    cfg = config if isinstance(config, Mapping) else load_config(config)
    cfg = {k: dict(cfg.get(k, {})) for k in ("model", "training", "data")}
    out_dir = Path(out_dir)
    run_path = out_dir / RUN_FILE
    if run_path.exists() and not resume:
        raise TrainingError(
            f"{out_dir} already holds a run; pass --resume to continue it or choose another -o"
        )
    ds = open_dataset(data)
    train = ds.split("train")
    splits = ds.splits
    valid = ds.split("valid") if "valid" in splits and len(splits["valid"]) else None
    inputs, target = resolve_fields(ds, cfg["data"].get("input"), cfg["data"].get("target"))
    n = _spatial_shape(ds, target)[0]
    k = ensemble if ensemble is not None else cfg["data"].get("ensemble", 1)
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"ensemble size must be an integer >= 1, got {k!r}")
    training = {**DEFAULT_TRAINING, **cfg["training"]}
    seed = int(training.pop("seed"))
    in_ch = sum(_channels(ds, f) for f in inputs)
    out_ch = _channels(ds, target)
    stats_in, stats_out = _stats_vector(ds, inputs), _stats_vector(ds, [target])

    def build(member_seed: int) -> torch.nn.Module:
        return build_surrogate(
            kind,
            cfg["model"],
            in_channels=in_ch,
            out_channels=out_ch,
            resolution=n,
            input_stats=stats_in,
            output_stats=stats_out,
            seed=member_seed,
        )

    probe = build(seed)
    record = {
        "kind": kind,
        "data": str(Path(data).resolve()),
        "input": inputs,
        "target": target,
        "ensemble": k,
        "resolution": n,
        "model": probe.get_config()["model"],
        "training": {**training, "seed": seed},
        "n_train": len(train),
        "n_valid": 0 if valid is None else len(valid),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_path, json.dumps(record, indent=2))
    trainer_kwargs = dict(
        input_key=inputs,
        target_key=target,
        progress=progress,
        device=device,
        metrics=("rel_l2", "rel_h1"),
        **training,
    )
    if valid is None:
        trainer_kwargs["patience"] = None
    if k == 1:
        trainer = Trainer(probe, seed=seed, out_dir=out_dir, **trainer_kwargs)
        has_ckpt = (out_dir / "checkpoint.pt").is_file()
        history = trainer.fit(train, valid, resume=resume and has_ckpt)
        record["histories"] = [history]
        record["best_epoch"] = [trainer.best_epoch]
    else:
        _, histories = fit_ensemble(
            build,
            k,
            train,
            valid,
            seed=seed,
            out_dir=out_dir,
            resume=resume,
            **trainer_kwargs,
        )
        record["histories"] = histories
    last = [h[-1] for h in record["histories"] if h]
    record["summary"] = {
        key: float(np.mean([r[key] for r in last]))
        for key in ("train_loss", "valid_rel_l2", "valid_rel_h1")
        if last and all(key in r for r in last)
    }
    atomic_write_text(run_path, json.dumps(record, indent=2))
    return record


def load_run(run_dir: str | os.PathLike) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The trained model of a run directory and its run record."""
    import pdesurrogates
    from pdesurrogates.errors import CheckpointError

    run_dir = Path(run_dir)
    run_path = run_dir / RUN_FILE
    if not run_path.is_file():
        raise CheckpointError(
            f"{run_dir}: not a training run (no {RUN_FILE}); pass the -o directory of "
            "`pdesurrogates train`"
        )
    try:
        record = json.loads(run_path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{run_path}: corrupt ({exc})") from exc
    if not (run_dir / "model").is_dir():
        raise CheckpointError(
            f"{run_dir}: training has not finished (no model/); resume it with "
            "`pdesurrogates train ... --resume`"
        )
    return pdesurrogates.load(run_dir / "model"), record


def _batches(ds, inputs, target, batch_size):
    from torch.utils.data import DataLoader

    from pdesurrogates.training._trainer import fields_to_channels

    component = {k: s.dims[-1] == "component" for k, s in ds.fields.items()}
    for batch in DataLoader(ds, batch_size=batch_size, shuffle=False):
        x = fields_to_channels(batch, inputs, component)
        y = fields_to_channels(batch, target, component) if target in batch else None
        yield x, y


@torch.no_grad()
def predict_fields(
    model: torch.nn.Module, ds, inputs, target, *, batch_size: int = 16
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """Run ``model`` over ``ds``: ``(mean, samples or None, truth or None, inputs)``, all
    channel-first ``(N, C, X, Y)`` (samples ``(K, N, C, X, Y)`` for ensembles)."""
    from pdesurrogates.surrogates import Ensemble

    model.eval()
    means, samples, truths, xs = [], [], [], []
    for x, y in _batches(ds, inputs, target, batch_size):
        if isinstance(model, Ensemble):
            s = model.member_outputs(x)
            samples.append(s)
            means.append(s.mean(0))
        else:
            means.append(model(x))
        xs.append(x)
        if y is not None:
            truths.append(y)
    if not means:
        raise DatasetError(f"{ds.path}: no samples to predict")
    mean = torch.cat(means)
    for t in (mean,):
        if not torch.isfinite(t).all():
            raise TrainingError("the model produced NaN/Inf predictions; retrain or check data")
    return (
        mean,
        torch.cat(samples, dim=1) if samples else None,
        torch.cat(truths) if truths else None,
        torch.cat(xs),
    )


def _select(ds, split: str | None):
    if split in (None, "all"):
        return ds
    return ds.split(split)


def predict_run(
    run_dir: str | os.PathLike,
    data: str | os.PathLike,
    output: str | os.PathLike,
    *,
    split: str | None = None,
    batch_size: int = 16,
    overwrite: bool = False,
) -> Path:
    """Predict the target field for every sample of ``data`` (or one split) and write a
    ``pdesurrogates-h5`` file with the inputs, the prediction (named as the target) and,
    for ensembles, its standard deviation ``<target>_std``."""
    from pdesurrogates.datasets import DatasetWriter, FieldSpec, open_dataset

    model, record = load_run(run_dir)
    ds = _select(open_dataset(data), split)
    inputs, target = record["input"], record["target"]
    for name in inputs:
        if name not in ds.fields:
            raise DatasetError(
                f"{ds.path}: the model needs input field {name!r}; fields: {sorted(ds.fields)}"
            )
    mean, samples, _, _ = predict_fields(model, ds, inputs, "__none__", batch_size=batch_size)
    tspec = ds.fields.get(target) or FieldSpec(dims=ds.fields[inputs[0]].dims, role="output")
    comp = tspec.dims[-1] == "component"
    fields = {name: ds.fields[name] for name in inputs}
    fields[target] = FieldSpec(
        dims=tspec.dims,
        role="output",
        units=tspec.units,
        long_name=(tspec.long_name or target) + f" (predicted by {record['kind']})",
    )
    std = None
    if samples is not None:
        std = samples.std(dim=0, correction=1)
        fields[target + "_std"] = FieldSpec(
            dims=tspec.dims,
            role="output",
            units=tspec.units,
            long_name=f"ensemble standard deviation of {target}",
        )

    def layout(t):  # (N, C, X, Y) -> the file's layout
        return torch.movedim(t, 1, -1) if comp else t[:, 0]

    coords = {k: v for k, v in ds.coords.items() if k != "sample"}
    if comp and "component" not in coords:
        coords["component"] = np.arange(mean.shape[1])
    n = len(ds)
    output = Path(output)
    with DatasetWriter(
        output,
        n_samples=n,
        coords=coords,
        fields=fields,
        dataset_name=f"{ds.attrs.get('dataset_name', '')} predictions",
        pde=str(ds.attrs.get("pde", "")),
        source={
            "generator": "pdesurrogates predict",
            "run": str(Path(run_dir).resolve()),
            "data": str(Path(data).resolve()),
            "split": split or "all",
        },
        overwrite=overwrite,
    ) as w:
        pred = layout(mean).cpu().numpy()
        sd = None if std is None else layout(std).cpu().numpy()
        for i in range(n):
            sample = ds[i]
            values = {name: sample[name].numpy() for name in inputs}
            values[target] = pred[i]
            if sd is not None:
                values[target + "_std"] = sd[i]
            w.write(i, values)
        w.finalize(splits={"test": np.arange(n)})
    return output


def summarize(values: Sequence[float]) -> dict[str, float]:
    """Mean, median, std, min, max of per-sample values."""
    v = np.asarray(values, dtype=np.float64)
    return {
        "mean": float(v.mean()),
        "median": float(np.median(v)),
        "std": float(v.std()),
        "min": float(v.min()),
        "max": float(v.max()),
        "n": int(v.size),
    }


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None
