"""Training runs of the neural-operator family (MgNO, FNO) on ``pdesurrogates-h5`` files.

A *run directory* holds everything about one trained surrogate::

    runs/NAME/
      run.json          # model kind, data file, input/target fields, all settings
      model/            # the trained model (NormalizedModel or Ensemble), pdesurrogates.save
      checkpoint.pt     # single model: last epoch (resume); ensembles: member_<i>/...
      metrics.jsonl     # per-epoch metrics (single model; ensembles: per member)

:func:`pdesurrogates.load` accepts the run directory as well as ``model/``.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pdesurrogates.errors import ConfigError, DatasetError, TrainingError
from pdesurrogates.io import atomic_write_text
from pdesurrogates.training import (
    RUN_FILE,
    RUN_RECORDS,
    OperatorConfig,
    ResumeRules,
    new_run_dir,
    read_run_record,
    refuse_existing_run,
    resume_record,
)

__all__ = [
    "MODEL_KINDS",
    "RUN_FILE",
    "RUN_RECORDS",
    "build_surrogate",
    "default_levels",
    "load_config",
    "new_run_dir",
    "refuse_existing_run",
    "resolve_fields",
    "train_run",
]

MODEL_KINDS = ("mgno", "fno")
_TABLES = ("model", "training", "data")
_DATA_KEYS = {
    "input": (str, list),
    "target": (str,),
    "ensemble": (int,),
    "history": (int,),
    "unroll": (int,),
}


def load_config(path: str | os.PathLike | Mapping | None) -> dict[str, Any]:
    """Read a run configuration with tables ``[model]``, ``[training]`` and ``[data]``.

    ``[model]`` holds the model's keyword arguments (checked when the model is built),
    ``[training]`` the settings of :class:`~pdesurrogates.training.OperatorConfig`
    (``loss``, ``lr``, ``epochs``, ``batch_size``, ``scheduler``, ``patience``, ``seed``,
    ``weight_decay``, ``grad_clip``, ``max_time``, ``num_workers``, ``pct_start``) and
    ``[data]`` the fields (``input`` = a name or list of names, ``target`` = a name,
    ``ensemble`` = K; for a time series ``history`` = states in, ``unroll`` = model calls
    per training sample).

    Parameters
    ----------
    path : path, mapping or None
        A TOML file, a mapping with the same tables (the ``training`` table may be an
        :class:`OperatorConfig`), or None for the defaults.

    Returns
    -------
    dict
        ``{"model": dict, "training": OperatorConfig, "data": dict}``.

    Raises
    ------
    ConfigError
        Unreadable TOML, an unknown table or key, or a value of the wrong type (the message
        names the file and the key).
    """
    if path is None:
        cfg, source = {}, "config"
    elif isinstance(path, Mapping):
        cfg, source = dict(path), "config"
    else:
        source = str(path)
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: no such config file")
        try:
            cfg = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    unknown = set(cfg) - set(_TABLES)
    if unknown:
        raise ConfigError(
            f"{source}: unknown table(s) {sorted(unknown)}; use the tables model, training and data"
        )
    training = cfg.get("training") or {}
    if not isinstance(training, OperatorConfig):
        training = OperatorConfig.from_mapping(training, source=source)
    data = dict(cfg.get("data") or {})
    for key, value in data.items():
        if key not in _DATA_KEYS:
            raise ConfigError(
                f"{source}: unknown key {key!r} in table 'data'; allowed: {sorted(_DATA_KEYS)}"
            )
        if not isinstance(value, _DATA_KEYS[key]) or isinstance(value, bool):
            raise ConfigError(
                f"{source}: data.{key} = {value!r} has the wrong type; expected "
                + " or ".join(t.__name__ for t in _DATA_KEYS[key])
            )
    return {"model": dict(cfg.get("model") or {}), "training": training, "data": data}


def _spatial_shape(ds, name: str) -> tuple[int, int]:
    spec = ds.fields[name]
    dims = [d for d in spec.dims if d not in ("sample", "component")]
    if dims != ["x", "y"] or spec.dims[0] != "sample":
        raise DatasetError(
            f"{ds.path}: field {name!r} has dims {spec.dims}; MgNO and FNO need "
            "(sample, x, y) or (sample, x, y, component) fields"
        )
    _, nx, ny = ds.shape(name)  # channel-first (C, X, Y)
    return int(nx), int(ny)


def _channels(ds, name: str) -> int:
    return int(ds.shape(name)[0])  # channel-first (C, X, Y): 1 for a scalar field


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
    from pdesurrogates.surrogates import FNO, MgNO, NormalizedModel, Normalizer

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
    # member initialisation is reproducible per seed; the caller's global RNG is untouched
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
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
    epochs: int | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    seed: int | None = None,
    resume: bool = False,
    progress: bool = True,
    device: str | None = None,
    history: int | None = None,
    unroll: int | None = None,
    resample: bool = False,
) -> dict[str, Any]:
    """Train an MgNO or FNO (or an ensemble of them) on the train split of ``data``.

    The validation split, when the file has one, drives model selection (the best epoch
    is kept) and early stopping (``patience``). ``epochs``, ``lr``, ``batch_size`` and ``seed``,
    when given, override the ``[training]`` table of ``config`` (whose defaults are those
    of :class:`~pdesurrogates.training.OperatorConfig`). Returns the run record also
    written to ``out_dir/run.json``.

    ``resume=True`` continues the run in ``out_dir`` (without it, a directory holding a
    run is refused). Without ``config`` it continues with the run's recorded settings;
    every setting given must be the run's (a differing one is refused naming it, its
    value in the run and the one asked, before anything is written), except those a
    resumed run may change (:meth:`~pdesurrogates.training.ResumeRules.may_change`:
    ``patience``; with no scheduler also ``epochs`` and ``max_time``). ``run.json``
    then records the settings used and, under ``resumes``, each resume (the epochs done
    before it and the settings it changed).

    A field with a ``time`` dim trains a step model instead (see
    :mod:`pdesurrogates.runs._series`): ``history`` states in, the next one out, unrolled
    ``unroll`` calls per sample (pushforward training when ``> 1``). A non-uniform time
    axis is refused (naming the file and field) unless ``resample`` interpolates it
    linearly onto a uniform one.
    """
    if kind not in MODEL_KINDS:
        raise ValueError(f"model kind must be one of {MODEL_KINDS}, got {kind!r}")
    cfg = load_config(config)
    asked = {"epochs": epochs, "lr": lr, "batch_size": batch_size, "seed": seed}
    training = cfg["training"].with_overrides(**asked)  # a bad value: before the directory
    with new_run_dir(
        out_dir, f"train {kind} -o {out_dir}", resume=resume, inputs=[data]
    ) as out_dir:
        old = read_run_record(out_dir) if resume else None
        resume_record(out_dir, old, {"kind": kind}, OPERATOR_RULES)  # before building it
        if old is not None and config is None:  # continue with the run's own settings
            cfg, resample = _run_config(old), resample or _resampled(old)
            training = cfg["training"].with_overrides(**asked)
        return _train_locked(kind, data, out_dir, training, cfg, ensemble, (resume, old),
                             progress, device, (history, unroll, resample))  # fmt: skip


#: How the settings of an operator run's record are named when a resume is refused.
OPERATOR_RULES = ResumeRules(
    keys=("kind", "data", "input", "target", "ensemble", "resolution", "n_train", "n_valid",
          "model", "training", "time_series"),
    flags={
        "kind": "the model (train mgno|fno)",
        "data": "--data",
        "input": "[data] input",
        "target": "[data] target",
        "ensemble": "--ensemble",
        "resolution": "--data (grid size)",
        "n_train": "--data (train samples)",
        "n_valid": "--data (valid samples)",
        "training.epochs": "--epochs",
        "training.lr": "--lr",
        "training.batch_size": "--batch-size",
        "training.seed": "--seed",
        "time_series.history": "--history",
        "time_series.unroll": "--unroll",
        "time_series.resampled": "--resample",
    },
    tables={"model.config.": "[model] ", "model.": "[model] ", "training.": "[training] ",
            "time_series.": "--data (time series) "},
)  # fmt: skip


def _run_config(record: Mapping) -> dict[str, Any]:
    """The configuration a run recorded (``load_config``'s layout): what a resume without
    ``--config`` continues with."""
    data = {"target": record["target"], "ensemble": record.get("ensemble", 1)}
    ts = record.get("time_series")
    if ts:
        data.update(history=ts["history"], unroll=ts["unroll"])
    else:
        data["input"] = list(record["input"])
    model = dict((record.get("model") or {}).get("config", {}))
    return {
        "model": model,
        "training": OperatorConfig.from_mapping(record["training"], source=RUN_FILE),
        "data": data,
    }


def _resampled(record: Mapping) -> bool:
    return bool((record.get("time_series") or {}).get("resampled"))


def _train_locked(kind, data, out_dir, training, cfg, ensemble, resumed, progress, device, hu):
    from pdesurrogates.datasets import open_dataset
    from pdesurrogates.runs._series import series_plan

    run_path = out_dir / RUN_FILE
    ds = open_dataset(data)
    plan = series_plan(
        ds, cfg["data"], history=hu[0], unroll=hu[1], loss=training.loss, resample=hu[2]
    )
    if plan is None:
        train = ds.split("train")
        splits = ds.splits
        valid = ds.split("valid") if "valid" in splits and len(splits["valid"]) else None
        inputs, target = resolve_fields(ds, cfg["data"].get("input"), cfg["data"].get("target"))
        n = _spatial_shape(ds, target)[0]
        in_ch, out_ch = sum(_channels(ds, f) for f in inputs), _channels(ds, target)
        stats_in, stats_out = _stats_vector(ds, inputs), _stats_vector(ds, [target])
    else:  # a step model on a time series: pairs "a" (history) -> "u" (next states)
        train, valid, target, n = plan.train, plan.valid, plan.target, plan.resolution
        inputs, in_ch, out_ch = [target], plan.in_channels, plan.out_channels
        stats_in, stats_out = plan.stats_in, plan.stats_out
    k = ensemble if ensemble is not None else cfg["data"].get("ensemble", 1)
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"ensemble size must be an integer >= 1, got {k!r}")

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

    try:
        probe = build(training.seed)
    except ValueError as exc:
        if "std = 0" not in str(exc):
            raise
        raise TrainingError(
            f"{data}: the target field {target!r} is constant over the train split "
            f"(train statistics: std = 0); there is nothing to learn. Check the field, or "
            f"choose another target ({exc})"
        ) from exc
    record = {
        "kind": kind,
        "data": str(Path(data).resolve()),
        "input": inputs,
        "target": target,
        "ensemble": k,
        "resolution": n,
        "model": probe.get_config()["model"],
        "training": training.to_dict(),
        "n_train": len(train),
        "n_valid": 0 if valid is None else len(valid),
        **({} if plan is None else plan.record),
    }
    # a resumed run: the settings must be the run's (refused before anything is written)
    resume, old = resumed
    record = resume_record(out_dir, old, record, OPERATOR_RULES, members=k)
    atomic_write_text(run_path, json.dumps(record, indent=2))
    record["histories"] = _fit(
        probe,
        build,
        k,
        train,
        valid,
        training,
        out_dir,
        resume,
        progress,
        device,
        inputs,
        target,
        record,
        plan,
    )
    last = [h[-1] for h in record["histories"] if h]
    record["summary"] = {
        key: float(np.mean([r[key] for r in last]))
        for key in ("train_loss", "valid_rel_l2", "valid_rel_h1", "valid_rel_l2_last")
        if last and all(key in r for r in last)
    }
    atomic_write_text(run_path, json.dumps(record, indent=2))
    return record


def _fit(
    probe,
    build,
    k,
    train,
    valid,
    training,
    out_dir,
    resume,
    progress,
    device,
    inputs,
    target,
    record,
    plan=None,
) -> list[list[dict]]:
    from pdesurrogates.training import Trainer, fit_ensemble

    kwargs = dict(
        input_key=inputs if plan is None else "a",
        target_key=target if plan is None else "u",
        step=None if plan is None else plan.step,
        progress=progress,
        device=device,
        metrics=("rel_l2", "rel_h1"),
        **training.trainer_kwargs(),
    )
    if valid is None:
        kwargs["patience"] = None
    if k == 1:
        trainer = Trainer(probe, seed=training.seed, out_dir=out_dir, **kwargs)
        has_ckpt = (out_dir / "checkpoint.pt").is_file()
        history = trainer.fit(train, valid, resume=resume and has_ckpt)
        record["best_epoch"] = [trainer.best_epoch]
        return [history]
    _, histories = fit_ensemble(
        build, k, train, valid, seed=training.seed, out_dir=out_dir, resume=resume, **kwargs
    )
    return histories
