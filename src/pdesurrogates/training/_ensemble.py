"""Train a deep ensemble: K members from different seeds, each with its own checkpoints."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pdesurrogates._progress import ProgressBar, logger
from pdesurrogates.io import load, read_config, save
from pdesurrogates.surrogates import Ensemble
from pdesurrogates.training._checkpoint import MODEL_DIR
from pdesurrogates.training._trainer import Trainer

__all__ = ["fit_ensemble"]


def fit_ensemble(
    build: Callable[[int], nn.Module],
    n_members: int,
    train_dataset,
    valid_dataset=None,
    *,
    seed: int = 0,
    out_dir: str | os.PathLike | None = None,
    resume: bool = False,
    **trainer_kwargs: Any,
) -> tuple[Ensemble, list[list[dict]]]:
    """Train ``n_members`` models and return them as an :class:`Ensemble`.

    Member ``i`` is built by ``build(seed + i)`` (which should seed its initialisation,
    e.g. with ``torch.manual_seed``) and trained by a :class:`Trainer` with
    ``seed=seed + i`` (its data order) in ``out_dir/member_<i>``. With ``resume=True``,
    finished members are loaded from disk and an interrupted one continues from its last
    checkpoint. The ensemble is saved to ``out_dir/model``.

    The progress display labels the member in training (``member 2/5``) above the
    member's own epoch bars, and the log says which member starts. Without validation
    data this is said once for the ensemble: every member keeps its last epoch.

    Parameters
    ----------
    build : callable
        ``build(member_seed) -> nn.Module``.
    n_members : int
        K >= 2.
    train_dataset, valid_dataset
        As for :meth:`Trainer.fit`.
    seed : int
        Seed of member 0.
    out_dir : path, optional
        Where member runs and the ensemble go.
    resume : bool
        Continue an interrupted run.
    **trainer_kwargs
        Passed to every member's :class:`Trainer`.

    Returns
    -------
    ensemble : Ensemble
    histories : list of list of dict
        Each member's training history.
    """
    if not isinstance(n_members, int) or n_members < 2:
        raise ValueError(f"fit_ensemble: n_members must be an integer >= 2, got {n_members!r}")
    if resume and out_dir is None:
        raise ValueError("fit_ensemble: resume=True needs out_dir")
    out = None if out_dir is None else Path(out_dir)
    bar, own_bar = _members_bar(trainer_kwargs.pop("progress", True))
    task = bar.add_task(f"member 1/{n_members}", total=n_members)
    if valid_dataset is None:
        logger.info(
            "no validation data: each of the %d ensemble members keeps the weights of its "
            "last epoch (no best-epoch selection; a 'valid' split selects the best one)",
            n_members,
        )
    members, histories = [], []
    try:
        for i in range(n_members):
            label = f"member {i + 1}/{n_members}"
            bar.update(task, completed=i, description=label)
            member_dir = None if out is None else out / f"member_{i}"
            done = member_dir is not None and (member_dir / MODEL_DIR / "config.json").is_file()
            if resume and done:
                logger.info("ensemble %s (seed %d): already trained, loaded", label, seed + i)
                model = load(member_dir / MODEL_DIR)
                meta = read_config(member_dir / MODEL_DIR)["metadata"]
                histories.append(meta.get("history", []))
                members.append(model)
                continue
            logger.info("training ensemble %s (seed %d)", label, seed + i)
            model = build(seed + i)
            trainer = Trainer(
                model, seed=seed + i, out_dir=member_dir, progress=bar, **trainer_kwargs
            )
            trainer.announce_last_epoch = False  # said once above for the whole ensemble
            has_ckpt = member_dir is not None and (member_dir / "checkpoint.pt").is_file()
            histories.append(trainer.fit(train_dataset, valid_dataset, resume=resume and has_ckpt))
            members.append(trainer.model)
        bar.update(task, completed=n_members, description=f"{n_members} members")
    finally:
        if own_bar:
            bar.stop()
        else:
            bar.remove_task(task)
    device = next(iter(members[0].parameters()), torch.empty(0)).device
    ensemble = Ensemble([m.to(device) for m in members]).eval()
    if out is not None and int(os.environ.get("RANK", "0")) == 0:
        save(
            ensemble,
            out / MODEL_DIR,
            metadata={"n_members": n_members, "seed": seed, "histories": histories},
        )
    return ensemble, histories


def _members_bar(progress) -> tuple[ProgressBar, bool]:
    """The display the members share: the caller's :class:`ProgressBar` or our own."""
    if isinstance(progress, ProgressBar):
        return progress, False
    show = bool(progress) and int(os.environ.get("RANK", "0")) == 0
    return ProgressBar(enabled=show).start(), True
