"""The run directory's guard: never an old run replaced, and a resumed run kept as it was.

Every function and command that trains into a run directory (``train_run``,
:func:`~pdesurrogates.training.train_deeponet`, ``pdesurrogates train ...``) writes
through :func:`new_run_dir`; those that continue runs compare the settings asked for with
the run's record (``run.json``) through :func:`resume_record`, before anything is written.
They are re-exported by :mod:`pdesurrogates.runs`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pdesurrogates._files import WriteLock, check_not_input
from pdesurrogates.errors import OutputError, TrainingError
from pdesurrogates.training._checkpoint import CONSTANT_RATE_FREE, METRICS_FILE

__all__ = [
    "RUN_FILE",
    "RUN_RECORDS",
    "ResumeRules",
    "new_run_dir",
    "read_run_record",
    "refuse_existing_run",
    "resume_record",
]

RUN_FILE = "run.json"
# what makes a directory an existing run: the run record, or a saved model in it or in
# its model/ (every `train` command writes one of these)
RUN_RECORDS = (RUN_FILE, "config.json", "model/config.json")


def refuse_existing_run(out_dir: str | os.PathLike, resume: bool | None = None) -> None:
    """Raise :class:`TrainingError` naming the record if ``out_dir`` holds a run.

    ``resume`` is None for a command without ``--resume``, else whether it was given (a
    given ``--resume``, ``resume=True`` in Python, lets the run continue). See
    :func:`new_run_dir`.
    """
    out_dir = Path(out_dir)
    found = [name for name in RUN_RECORDS if (out_dir / name).is_file()]
    if not found or resume:
        return
    what = f"{out_dir} already holds a run ({out_dir / found[0]})"
    if resume is None:
        raise TrainingError(f"{what}; choose another -o, or delete the directory to train it again")
    raise TrainingError(
        f"{what}; pass --resume (resume=True in Python) to continue it or choose another -o"
    )


@contextmanager
def new_run_dir(
    out_dir: str | os.PathLike,
    command: str | None = None,
    *,
    resume: bool | None = None,
    inputs: Sequence[str | os.PathLike | None] = (),
    lock: str | os.PathLike | None = None,
) -> Iterator[Path]:
    """The run directory of a training run: created, locked, and never an old run.

    Every ``pdesurrogates train ...`` command and every library function that trains
    into a run directory writes through this guard. A directory that already holds a run
    (one of :data:`RUN_RECORDS`: ``run.json``, or a saved model in it or in its
    ``model/``) is refused with a :class:`~pdesurrogates.errors.TrainingError` naming the
    file, unless the command continues runs (``resume`` not None) and ``resume`` is True.
    The check is made again under the lock, so two commands started together cannot both
    write.

    Parameters
    ----------
    out_dir : path
        The run directory (created with its parents).
    command : str, optional
        What runs (recorded in the lock file for a second writer's message; default: the
        process's command line).
    resume : bool or None
        None for a command without ``--resume``; else whether it was given.
    inputs : paths
        The command's input files: ``out_dir`` must be none of them.
    lock : path, optional
        The destination the lock protects (default ``out_dir/run.json``). A command that
        saves its model as ``out_dir`` itself passes ``out_dir``: its lock file is beside
        it, and a directory that is not empty is refused (the save would replace it).

    ``-o`` naming a file is refused (:class:`~pdesurrogates.errors.OutputError`).
    """
    out_dir = Path(out_dir)
    check_not_input(out_dir, inputs)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"-o {out_dir}: a file is in the way; a run is a directory")
    refuse_existing_run(out_dir, resume)
    saved_as_dir = lock is not None and Path(lock) == out_dir and out_dir.is_dir()
    inside = sorted(p.name for p in out_dir.iterdir()) if saved_as_dir else []
    if inside:
        more = ", ..." if len(inside) > 3 else ""
        raise OutputError(
            f"-o {out_dir} is not empty ({', '.join(inside[:3])}{more}); the model is saved "
            "as the directory itself, replacing what is in it: choose a new or empty directory"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    # one writer per run directory: a second `train` into it fails at once naming this one
    with WriteLock(out_dir / RUN_FILE if lock is None else lock, command=command):
        refuse_existing_run(out_dir, resume)
        yield out_dir


def read_run_record(out_dir: str | os.PathLike) -> dict | None:
    """``out_dir/run.json``, or None when there is none."""
    path = Path(out_dir) / RUN_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise TrainingError(
            f"{path}: cannot read the run record ({exc}); the run cannot be resumed: "
            "choose a new -o"
        ) from exc
    if not isinstance(record, dict):
        raise TrainingError(f"{path}: not a run record; the run cannot be resumed")
    return record


@dataclass(frozen=True)
class ResumeRules:
    """What of a family's run record must match on resume, and how the user names it.

    Parameters
    ----------
    keys : tuple of str
        The record's settings (top-level keys); the rest are results.
    flags : dict
        Dotted setting path -> how the user sets it (``"training.seed": "--seed"``).
    tables : dict
        Dotted prefix -> the config-file table, for settings without a flag
        (``"training.": "[training] "``).
    training : str
        Dotted prefix of the training settings (``scheduler``, ``epochs``, ...).
    """

    keys: tuple[str, ...]
    flags: Mapping[str, str] = field(default_factory=dict)
    tables: Mapping[str, str] = field(default_factory=dict)
    training: str = "training."

    def name(self, path: str) -> str:
        if path in self.flags:
            return self.flags[path]
        for prefix, table in self.tables.items():
            if path.startswith(prefix):
                return f"{table}{path[len(prefix) :]}"
        return path

    def may_change(self, old: Mapping, new: Mapping) -> set[str]:
        """Settings a resumed run may change: the early-stopping patience and the data
        workers always; with a constant learning rate (no scheduler, in the run and now)
        also the epochs and the time budget, which then only decide when it stops."""
        free = {"patience", "num_workers"}
        sched = self.training + "scheduler"
        if old.get(sched) is None and new.get(sched) is None:
            free |= set(CONSTANT_RATE_FREE)
        return {self.training + k for k in free}


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: value}


def _settings(record: Mapping, keys: Sequence[str]) -> dict[str, Any]:
    plain = json.loads(json.dumps({k: record[k] for k in keys if k in record}, default=float))
    return _flatten(plain)


def _epochs_done(out_dir: Path, members: int) -> list[int]:
    dirs = [out_dir] if members <= 1 else [out_dir / f"member_{i}" for i in range(members)]
    return [
        len((d / METRICS_FILE).read_text().splitlines()) if (d / METRICS_FILE).is_file() else 0
        for d in dirs
    ]


def resume_record(
    out_dir: str | os.PathLike,
    old: Mapping | None,
    new: Mapping,
    rules: ResumeRules,
    *,
    members: int = 1,
) -> dict:
    """Check a resumed run's settings ``new`` against the run's record ``old``.

    Every setting of ``rules.keys`` that differs is refused with one
    :class:`~pdesurrogates.errors.TrainingError` naming each (its flag or config key, the
    run's value and the one asked for), unless the run may change it on resume
    (:meth:`ResumeRules.may_change`). Returns ``new`` with the history of resumes: the
    earlier ones of ``old`` and this one (the epochs each member had done, the settings
    changed as ``[run's, now]``). With no ``old`` (a new run) returns ``new`` as it is.
    A partial ``new`` (e.g. ``{"kind": ...}``) checks only what it holds, to refuse early.
    """
    if old is None:
        return dict(new)
    run = Path(out_dir) / RUN_FILE
    keys = [k for k in rules.keys if k in new and k in old]  # a run of an older version
    # may lack a setting: what it did not record cannot be checked
    was, now = _settings(old, keys), _settings(new, keys)
    free = rules.may_change(was, now)
    changed, refused = {}, []
    for path in sorted(set(was) | set(now)):
        if was.get(path) == now.get(path):
            continue
        if path in free:
            changed[path] = [was.get(path), now.get(path)]
        else:
            refused.append(path)
    if refused:
        lines = [f"{rules.name(p)}: {_show(was.get(p))} in the run, {_show(now.get(p))} asked"
                 for p in refused]  # fmt: skip
        sched = was.get(rules.training + "scheduler")
        why = ""
        if sched is not None and any(
            p.removeprefix(rules.training) in CONSTANT_RATE_FREE for p in refused
        ):
            why = (
                f" (the run's {sched} learning-rate schedule was laid out for its epochs "
                "and time budget; only a run without a scheduler can change them)"
            )
        raise TrainingError(
            f"{run}: --resume continues the run as it was trained, and these settings differ "
            f"from it: {'; '.join(lines)}{why}. Omit them (or give the run's values) to "
            "continue it, or choose a new -o to train with them"
        )
    out = dict(new)
    entry = {
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "epochs_done": _epochs_done(Path(out_dir), members),
        "changed": changed,
    }
    out["resumes"] = [*old.get("resumes", []), entry]
    return out


def _show(value: Any) -> str:
    return "not set (the default)" if value is None else json.dumps(value)
