"""Trainer: learning, early stopping, logs, checkpoints, bit-exact resume, errors."""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from _pairs import SmoothingPairs
from torch.utils.data import Dataset

import pdesurrogates
from pdesurrogates._progress import ProgressBar, TimeBudget
from pdesurrogates.errors import CheckpointError, TrainingError
from pdesurrogates.surrogates import MgNO, NormalizedModel
from pdesurrogates.training import FullBatch, Trainer, TrainingStep, rel_l2

ROOT = Path(__file__).resolve().parents[2]


def _mgno(seed=0):
    torch.manual_seed(seed)
    return MgNO(channels=6, levels=2, layers=1, base_resolution=16, projection_channels=8)


def test_loss_falls_and_history_is_logged(tmp_path):
    train, valid = SmoothingPairs(32, seed=0), SmoothingPairs(16, seed=1)
    model = _mgno()
    before = rel_l2(model(valid.a), valid.u).item()
    trainer = Trainer(
        model,
        loss="rel_l2",
        lr=2e-2,
        epochs=8,
        batch_size=8,
        out_dir=tmp_path,
        progress=False,
        metrics=("rel_l2", "rel_h1"),
    )
    history = trainer.fit(train, valid)
    assert len(history) == 8
    assert history[-1]["valid_rel_l2"] < before / 4
    assert history[-1]["train_loss"] < history[0]["train_loss"] / 2
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == list(range(1, 9))
    assert {"train_loss", "valid_loss", "valid_rel_l2", "valid_rel_h1", "lr", "time"} <= set(
        json.loads(lines[-1])
    )
    # the saved model is the best-validation one and reloads bit-exactly
    loaded = pdesurrogates.load(tmp_path / "model")
    best = min(history, key=lambda r: r["valid_loss"])
    assert trainer.best_epoch == best["epoch"]
    x = valid.a[:4]
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model.eval()(x), atol=0, rtol=0)
    assert (
        pdesurrogates.io.read_config(tmp_path / "model")["metadata"]["best_epoch"] == best["epoch"]
    )
    # evaluate() agrees with the logged validation metric of the restored best weights
    ev = trainer.evaluate(valid)
    assert ev["rel_l2"] == pytest.approx(best["valid_rel_l2"], rel=1e-6)


def test_normalisers_are_saved_with_the_model(tmp_path):
    from pdesurrogates.surrogates import Normalizer

    train = SmoothingPairs(16)
    model = NormalizedModel(
        _mgno(),
        input_normalizer=Normalizer(mean=0.0, std=1.0),
        output_normalizer=Normalizer(mean=1.0, std=0.3),
    )
    Trainer(model, epochs=1, batch_size=8, out_dir=tmp_path, progress=False).fit(train)
    loaded = pdesurrogates.load(tmp_path / "model")
    assert isinstance(loaded, NormalizedModel)
    assert float(loaded.output_normalizer.mean) == 1.0
    assert float(loaded.output_normalizer.std) == pytest.approx(0.3)
    with torch.no_grad():
        torch.testing.assert_close(loaded(train.a[:2]), model.eval()(train.a[:2]))


def test_early_stopping_restores_best_weights():
    train, valid = SmoothingPairs(16, seed=0), SmoothingPairs(8, seed=1)
    # a constant learning rate far too small to improve: validation stalls at once
    calls = []

    def loss(p, t):
        calls.append(1)
        return rel_l2(p, t) * 0 + rel_l2(p.detach(), t) + (p * 0).sum()

    trainer = Trainer(
        _mgno(),
        loss=loss,
        lr=1e-3,
        epochs=50,
        batch_size=8,
        patience=2,
        scheduler=None,
        progress=False,
    )
    history = trainer.fit(train, valid)
    assert len(history) == 3  # best at epoch 1, then 2 epochs without improvement
    assert trainer.stop_reason == "early_stopping"
    assert trainer.best_epoch == 1


def test_step_fn_for_point_models():
    """A custom step (here: a pointwise MLP on (x, a(x)) pairs) reuses the loop."""

    class Points(Dataset):
        def __len__(self):
            return 64

        def __getitem__(self, i):
            x = torch.rand(20, 1, generator=torch.Generator().manual_seed(i))
            return {"x": x, "y": torch.sin(3 * x)}

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(1, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))

    def step(model, batch):
        return model(batch["x"]), batch["y"]

    history = Trainer(
        net,
        loss="mse",
        lr=2e-2,
        epochs=80,
        batch_size=16,
        step_fn=step,
        progress=False,
        scheduler="cosine",
    ).fit(Points())
    assert history[-1]["train_loss"] < history[0]["train_loss"] / 10


def test_nan_in_batch_names_batch_and_indices():
    ds = SmoothingPairs(16)
    ds.a[5, 0, 3, 3] = float("nan")
    trainer = Trainer(_mgno(), epochs=1, batch_size=4, scheduler=None, progress=False, seed=0)
    with pytest.raises(TrainingError, match=r"NaN/Inf\) in a of batch \d+ .*indices \[.*5"):
        trainer.fit(ds)


def test_nan_loss_names_batch_and_cause():
    def loss(p, t):
        return (p - t).abs().mean() / 0.0 * 0.0

    trainer = Trainer(_mgno(), loss=loss, epochs=1, batch_size=4, progress=False)
    with pytest.raises(TrainingError, match=r"loss became non-finite .* batch 0 .*learning rate"):
        trainer.fit(SmoothingPairs(8))


def test_huge_finite_inputs_are_blamed_on_the_data_not_the_learning_rate():
    ds = SmoothingPairs(8)
    ds.a[2] = 3e38  # finite in float32, but its square overflows
    trainer = Trainer(_mgno(), epochs=1, batch_size=8, progress=False, seed=0)
    with pytest.raises(TrainingError, match=r"values as large as 3e\+38.*normalise the data"):
        trainer.fit(ds)


def test_bad_arguments_and_empty_dataset(tmp_path):
    with pytest.raises(ValueError, match="lr"):
        Trainer(_mgno(), lr=0)
    with pytest.raises(ValueError, match="scheduler"):
        Trainer(_mgno(), scheduler="step")
    with pytest.raises(ValueError, match="patience"):
        Trainer(_mgno(), patience=3, progress=False).fit(SmoothingPairs(8))
    with pytest.raises(TrainingError, match="empty"):
        Trainer(_mgno(), progress=False).fit(torch.utils.data.Subset(SmoothingPairs(4), []))
    with pytest.raises(TrainingError, match="no field 'coef'"):
        Trainer(_mgno(), input_key="coef", progress=False).fit(SmoothingPairs(4))
    with pytest.raises(CheckpointError, match="no checkpoint"):
        Trainer(_mgno(), out_dir=tmp_path, progress=False).fit(SmoothingPairs(4), resume=True)


def test_checkpoint_of_another_model_class_is_refused(tmp_path):
    Trainer(_mgno(), epochs=1, batch_size=8, out_dir=tmp_path, progress=False).fit(
        SmoothingPairs(8)
    )
    from pdesurrogates.surrogates import FNO

    other = FNO(n_modes=3, hidden_channels=4, n_layers=1)
    with pytest.raises(CheckpointError, match=r"checkpoint is of a MgNO model .* holds a FNO"):
        Trainer(other, epochs=2, out_dir=tmp_path, progress=False).fit(
            SmoothingPairs(8), resume=True
        )
    # a corrupt checkpoint is reported, not unpickled
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read the checkpoint"):
        Trainer(_mgno(), epochs=2, out_dir=tmp_path, progress=False).fit(
            SmoothingPairs(8), resume=True
        )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"epochs": 4}, "used epochs=2; this run asks for epochs=4"),
        ({"lr": 5e-3}, "used lr=0.001; this run asks for lr=0.005"),
        ({"scheduler": "cosine"}, "scheduler='onecycle'; this run asks for scheduler='cosine'"),
        ({"batch_size": 4}, "used batch_size=8"),
    ],
)
@pytest.mark.parametrize("old_format", [False, True])
def test_resume_with_another_schedule_is_refused(tmp_path, change, message, old_format):
    """A resumed run continues the checkpoint's schedule step by step: a different epoch
    count, learning rate, scheduler or batch size is refused by name (not a scheduler
    error deep in torch, nor a silent change); checkpoints without the stored settings
    are checked against their trainer configuration."""
    base = {"epochs": 2, "lr": 1e-3, "batch_size": 8, "scheduler": "onecycle"}
    Trainer(_mgno(), out_dir=tmp_path, progress=False, **base).fit(SmoothingPairs(8))
    if old_format:
        path = tmp_path / "checkpoint.pt"
        state = torch.load(path, weights_only=True)
        del state["schedule"]
        torch.save(state, path)
    with pytest.raises(CheckpointError, match=re.escape(message)):
        Trainer(_mgno(), out_dir=tmp_path, progress=False, **{**base, **change}).fit(
            SmoothingPairs(8), resume=True
        )
    # the same settings resume (a finished run is a no-op)
    t = Trainer(_mgno(), out_dir=tmp_path, progress=False, **base)
    assert len(t.fit(SmoothingPairs(8), resume=True)) == 2


_RUN = textwrap.dedent(
    """
    import sys, time, torch
    sys.path.insert(0, {tests!r})
    from _pairs import SmoothingPairs
    from pdesurrogates.surrogates import MgNO
    from pdesurrogates.training import Trainer
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = MgNO(channels=6, levels=2, layers=1, base_resolution=16, projection_channels=8)
    slow = sys.argv[2] == "slow"
    def loss(p, t):
        if slow:
            time.sleep(0.2)
        return ((p - t).flatten(1).norm(dim=1) / t.flatten(1).norm(dim=1)).mean()
    Trainer(model, loss=loss, lr=3e-3, epochs=4, batch_size=8, out_dir=sys.argv[1],
            progress=False, seed=3).fit(SmoothingPairs(32), SmoothingPairs(8, seed=1),
                                        resume=sys.argv[3] == "resume")
    """
)


def _script(tmp_path):
    path = tmp_path / "run.py"
    path.write_text(_RUN.format(tests=str(Path(__file__).parent)))
    return path


def _run(script, out, mode, resume):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(script), str(out), mode, resume],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )


def test_killed_run_resumes_to_identical_weights(tmp_path):
    """SIGKILL a run after its 2nd checkpoint, resume it: the final weights equal those of
    an uninterrupted run bit for bit."""
    script = _script(tmp_path)
    _run(script, tmp_path / "full", "fast", "fresh")

    out = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(out), "slow", "fresh"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            log = out / "metrics.jsonl"
            if log.is_file() and len(log.read_text().splitlines()) >= 2:
                break
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
        proc.stderr.close()
    done = len((out / "metrics.jsonl").read_text().splitlines())
    assert 2 <= done < 4, "the run was not killed part-way"
    assert not (out / "model").exists()
    _run(script, out, "fast", "resume")

    full = pdesurrogates.load(tmp_path / "full" / "model").state_dict()
    resumed = pdesurrogates.load(out / "model").state_dict()
    assert full.keys() == resumed.keys()
    for k in full:
        assert torch.equal(full[k], resumed[k]), k
    h_full = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    h_res = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [h["valid_loss"] for h in h_full] == [h["valid_loss"] for h in h_res]


def test_time_budget_stops_and_completes_the_schedule():
    trainer = Trainer(_mgno(), lr=1e-2, epochs=10_000, batch_size=8, max_time=2.0, progress=False)
    t0 = time.perf_counter()
    history = trainer.fit(SmoothingPairs(16))
    took = time.perf_counter() - t0
    assert trainer.stop_reason == "max_time"
    assert 2.0 <= history[-1]["time"] < 4.0 and took < 10
    assert len(history) < 10_000
    # the one-cycle schedule ran to its end within the budget
    assert history[-1]["lr"] < 1e-2 / 20
    assert trainer._time_lr(0.2) == pytest.approx(1e-2)
    assert trainer._time_lr(0.0) == pytest.approx(1e-3)
    assert trainer._time_lr(1.0) == pytest.approx(1e-5)


class _LeastSquares(TrainingStep):
    """``mean (model(x) - y)^2`` on a full batch ``(x, y)``."""

    def loss(self, model, batch):
        x, y = batch
        return (model(x) - y).square().mean(), len(x)


def _line_data():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(40, 3, generator=g, dtype=torch.float64)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]], dtype=torch.float64) + 0.25
    return x, y


@pytest.mark.parametrize("budget", [1e6, TimeBudget(None)], ids=["seconds", "unlimited"])
@pytest.mark.parametrize("scheduler", ["cosine", "onecycle"])
def test_epoch_cap_ends_the_schedule_of_a_timed_run(budget, scheduler):
    # a budget far beyond the epoch cap: the step count drives the schedule to its end
    x, y = _line_data()
    lr, min_lr, epochs = 1e-2, 1e-4, 10
    trainer = Trainer(
        torch.nn.Linear(3, 1).double(),
        step=_LeastSquares(),
        lr=lr,
        min_lr=min_lr,
        epochs=epochs,
        scheduler=scheduler,
        pct_start=0.3,
        max_time=budget,
        progress=False,
    )
    history = trainer.fit(FullBatch((x, y)))  # one step per epoch
    assert trainer.stop_reason == "epochs" and len(history) == epochs
    for h in history:  # the lr of the epoch's (only) step s = epoch - 1 of 10
        s = h["epoch"] - 1
        if scheduler == "cosine":
            want = min_lr + (lr - min_lr) * 0.5 * (1 + math.cos(math.pi * s / epochs))
        elif s <= 2:  # one-cycle: up to its peak at step 0.3 * 10 - 1, down to step 9
            want = lr / 10 + (lr - lr / 10) * 0.5 * (1 - math.cos(math.pi * s / 2))
        else:
            g = (s - 2) / 7
            want = lr / 1000 + (lr - lr / 1000) * 0.5 * (1 + math.cos(math.pi * g))
        assert h["lr"] == pytest.approx(want, rel=1e-6)
    assert history[-1]["lr"] < 0.1 * lr  # decayed, not left at the peak


class _SlowStart(SmoothingPairs):
    """SmoothingPairs whose first item takes ``delay`` seconds (a slow start-up)."""

    def __init__(self, delay):
        super().__init__(8)
        self.delay = delay

    def __getitem__(self, i):
        if self.delay:
            time.sleep(self.delay)
            self.delay = 0
        return super().__getitem__(i)


@pytest.mark.parametrize("scheduler", ["cosine", "onecycle"])
def test_timed_run_ended_by_epochs_does_not_depend_on_start_up_time(scheduler):
    """A generous budget is only a safety cap: the learning rates follow the step count,
    so a slow first batch does not change the weights."""

    def run(delay):
        torch.manual_seed(0)
        model = _mgno()
        Trainer(
            model, epochs=3, batch_size=4, scheduler=scheduler, max_time=60.0, progress=False
        ).fit(_SlowStart(delay))
        return model.state_dict()

    fast, slow = run(0.0), run(1.0)
    assert all(torch.equal(fast[k], slow[k]) for k in fast)


@pytest.mark.parametrize(
    ("steps", "pct"), [(20, 0.3), (7, 0.2), (1000, 0.25), (3, 0.3), (2, 0.2), (1, 0.2)]
)
def test_time_lr_on_the_step_grid_is_torchs_schedule(steps, pct):
    """At ``f = s / steps`` the budget's schedule gives the rate torch's schedulers use at
    step ``s`` (one-cycle peaks at step ``pct * steps - 1`` and ends at ``steps - 1``)."""
    from pdesurrogates.training._looptools import time_lr

    for name, make in {
        "onecycle": lambda o: torch.optim.lr_scheduler.OneCycleLR(
            o,
            max_lr=1e-2,
            total_steps=steps,
            pct_start=pct,
            div_factor=10.0,
            final_div_factor=100.0,
            cycle_momentum=False,
        ),
        "cosine": lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, steps, eta_min=1e-5),
    }.items():
        opt = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=1e-2)
        sched = make(opt)
        theirs = []
        for _ in range(steps):
            theirs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        ours = [time_lr(name, 1e-2, 1e-5, pct, s / steps, steps) for s in range(steps)]
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, err_msg=name)
    assert time_lr("onecycle", 1e-2, 0.0, pct, 1.0, steps) == pytest.approx(1e-5)


@pytest.mark.parametrize(
    ("scheduler", "epochs", "pct"),
    [("cosine", 3, 0.2), ("onecycle", 3, 0.2), ("onecycle", 5, 0.1), ("onecycle", 2, 0.2)],
)
def test_generous_budget_trains_like_no_budget(scheduler, epochs, pct):
    """A budget that never binds changes nothing: the same learning rates at every step
    (also with a one-cycle warm-up of one step or none: 2 steps per epoch)."""

    def run(max_time):
        torch.manual_seed(0)
        model = _mgno()
        trainer = Trainer(
            model, epochs=epochs, batch_size=4, scheduler=scheduler, max_time=max_time,
            pct_start=pct, progress=False,
        )  # fmt: skip
        history = trainer.fit(SmoothingPairs(8))
        return model.state_dict(), [h["lr"] for h in history]

    (untimed, lr_untimed), (timed, lr_timed) = run(None), run(600.0)
    np.testing.assert_allclose(lr_timed, lr_untimed, rtol=1e-12)
    for k in untimed:
        torch.testing.assert_close(timed[k], untimed[k], rtol=1e-6, atol=1e-9)


def test_schedule_fraction_follows_steps_and_never_moves_back():
    from pdesurrogates.training._looptools import Clock

    clock = Clock(None, 0.0, 10)
    # time within a step of the step count: the step count alone (start-up time ignored)
    assert clock.schedule_fraction(0, 0.05) == 0.0
    assert clock.schedule_fraction(3, 0.35) == pytest.approx(0.3)
    # time a step (here more than 5 %) ahead takes over, rescaled to end at the budget
    assert clock.schedule_fraction(1, 0.64) == pytest.approx(0.6)
    fine = Clock(None, 0.0, 1000)  # 1000 steps: the lead is 5 %
    assert fine.schedule_fraction(10, 0.04) == pytest.approx(0.01)
    assert fine.schedule_fraction(10, 0.525) == pytest.approx(0.5)
    assert fine.schedule_fraction(10, 1.0) == 1.0
    # a time fraction that falls back under the step count never moves the schedule back
    fr = [clock.schedule_fraction(s, t) for s, t in enumerate([0.0, 0.21, 0.29, 0.31, 0.5])]
    assert all(b >= a for a, b in itertools.pairwise(fr)), fr
    assert clock.schedule_fraction(9, 1.5) == 1.0


def test_numpy_time_budget_is_a_float_in_the_checkpoint(tmp_path):
    import numpy as np

    t = Trainer(_mgno(), epochs=1, max_time=np.int64(600), out_dir=tmp_path, progress=False)
    t.fit(SmoothingPairs(8))
    assert t.max_time == 600.0 and type(t.max_time) is float
    assert (tmp_path / "checkpoint.pt").is_file()
    with pytest.raises(ValueError, match="max_time"):
        Trainer(_mgno(), max_time="600")


def test_constant_learning_rate_run_resumes_with_more_epochs(tmp_path):
    """No schedule and no budget: the learning rate is constant, so a finished 2-epoch run
    resumed with epochs=4 equals a fresh 4-epoch run bit for bit."""

    def trainer(epochs, out):
        torch.manual_seed(0)
        return Trainer(
            _mgno(), epochs=epochs, batch_size=4, scheduler=None, out_dir=out, progress=False
        )

    fresh = trainer(4, tmp_path / "fresh")
    fresh.fit(SmoothingPairs(8))
    trainer(2, tmp_path / "run").fit(SmoothingPairs(8))
    resumed = trainer(4, tmp_path / "run")
    assert len(resumed.fit(SmoothingPairs(8), resume=True)) == 4
    a, b = fresh.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_full_batch_lbfgs_reaches_the_least_squares_solution():
    x, y = _line_data()
    model = torch.nn.Linear(3, 1).double()
    trainer = Trainer(
        model,
        step=_LeastSquares(),
        optimizer="lbfgs",
        lr=1.0,
        epochs=2,
        scheduler=None,
        optimizer_kwargs={"max_iter": 100, "tolerance_grad": 1e-14, "tolerance_change": 1e-20},
        progress=False,
    )
    history = trainer.fit(FullBatch((x, y)))
    assert len(history) == 2
    w = torch.linalg.lstsq(torch.cat([x, torch.ones(40, 1, dtype=x.dtype)], 1), y).solution
    torch.testing.assert_close(model.weight.detach()[0], w[:3, 0], atol=1e-8, rtol=0)
    torch.testing.assert_close(model.bias.detach(), w[3], atol=1e-8, rtol=0)


def test_params_subset_freezes_the_rest_and_validation_keeps_the_start():
    x, y = _line_data()
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Linear(3, 1)).double()
    first = [p.detach().clone() for p in model[0].parameters()]
    with ProgressBar(enabled=False) as bar:
        trainer = Trainer(
            model,
            step=_LeastSquares(),
            lr=1e-2,
            epochs=20,
            scheduler="cosine",
            min_lr=1e-3,
            params=model[1].parameters(),
            validate_start=True,
            valid_every=5,
            progress=bar,
            max_time=TimeBudget(60.0),
        )
        history = trainer.fit(FullBatch((x, y)), FullBatch((x, y)))
    for p, q in zip(model[0].parameters(), first, strict=True):
        assert torch.equal(p, q) and p.requires_grad  # untouched, and unfrozen afterwards
    assert [h["epoch"] for h in history if "valid_loss" in h] == [5, 10, 15, 20]
    assert trainer.initial_valid["loss"] > history[-1]["valid_loss"]
    assert trainer.best_epoch == 20
    with pytest.raises(ValueError, match="step_fn, not both"):
        Trainer(model, step=_LeastSquares(), step_fn=lambda m, b: b)
    with pytest.raises(ValueError, match="optimizer"):
        Trainer(model, optimizer="sgd")
