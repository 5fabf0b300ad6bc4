"""fit_ensemble labels its members; a run without validation says once that it keeps the
last epoch."""

from __future__ import annotations

import logging

import torch
from _pairs import SmoothingPairs

from pdesurrogates._progress import ProgressBar
from pdesurrogates.surrogates import MgNO
from pdesurrogates.training import Trainer, fit_ensemble


class _Recorder(ProgressBar):
    """A disabled display that remembers every description it was given."""

    def __init__(self):
        super().__init__(enabled=False)
        self.seen: list[str] = []

    def add_task(self, description, *, total, completed=0):
        self.seen.append(description)
        return len(self.seen)

    def update(self, task, *, completed=None, total=None, description=None, info=None):
        if description is not None:
            self.seen.append(description)


def _build(seed):
    torch.manual_seed(seed)
    return MgNO(channels=4, levels=2, layers=1, base_resolution=16, projection_channels=4)


def _no_valid_notes(caplog):
    return [r for r in caplog.records if "keeps the weights of its last epoch" in r.message]


def test_members_are_labelled_in_progress_and_log(caplog):
    bar = _Recorder()
    train, valid = SmoothingPairs(8, seed=0), SmoothingPairs(4, seed=1)
    with caplog.at_level(logging.INFO, logger="pdesurrogates"):
        ens, hist = fit_ensemble(
            _build, 3, train, valid, epochs=1, batch_size=4, progress=bar, seed=5
        )
    assert len(ens) == 3 and len(hist) == 3
    members = [d for d in bar.seen if d.startswith("member ")]
    assert members == ["member 1/3", "member 1/3", "member 2/3", "member 3/3"]
    # each member's own bars (epochs, batches) were shown below its label
    assert bar.seen.index("member 2/3") < len(bar.seen) - 1
    starts = [r.getMessage() for r in caplog.records if r.getMessage().startswith("training")]
    assert starts == [f"training ensemble member {i}/3 (seed {4 + i})" for i in (1, 2, 3)]
    assert _no_valid_notes(caplog) == []  # there was validation data


def test_no_validation_is_said_once(caplog):
    train = SmoothingPairs(8, seed=0)
    with caplog.at_level(logging.INFO, logger="pdesurrogates"):
        fit_ensemble(_build, 2, train, None, epochs=1, batch_size=4, progress=False)
    notes = _no_valid_notes(caplog)
    assert len(notes) == 1 and "each of the 2 ensemble members" in notes[0].getMessage()
    caplog.clear()
    model = _build(0)
    with caplog.at_level(logging.INFO, logger="pdesurrogates"):
        trainer = Trainer(model, epochs=2, batch_size=4, progress=False)
        trainer.fit(train)
    assert len(_no_valid_notes(caplog)) == 1
    assert trainer.best_epoch is None  # the last epoch's weights are the model's
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="pdesurrogates"):
        Trainer(_build(0), epochs=1, batch_size=4, progress=False).fit(train, train)
    assert _no_valid_notes(caplog) == []
