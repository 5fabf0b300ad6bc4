"""Data-parallel training with ``torchrun --nproc-per-node 2`` (DDP, gloo on CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import pdesurrogates

SCRIPT = textwrap.dedent(
    """
    import os, sys, torch
    sys.path.insert(0, {tests!r})
    from _pairs import SmoothingPairs
    from pdesurrogates.surrogates import MgNO
    from pdesurrogates.training import Trainer
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = MgNO(channels=6, levels=2, layers=1, base_resolution=16, projection_channels=8)
    batch = int(sys.argv[2])
    trainer = Trainer(model, lr=3e-3, epochs=2, batch_size=batch, out_dir=sys.argv[1],
                      progress=False, seed=5)
    trainer.fit(SmoothingPairs(32), SmoothingPairs(8, seed=1))
    # one short write per rank: atomic on the shared pipe, so the lines cannot interleave
    sys.stdout.write("rank " + os.environ.get("RANK", "-") + " done\\n")
    sys.stdout.flush()
    """
)


def test_two_process_ddp_matches_single_process_with_the_global_batch(tmp_path):
    """Two processes with batch 4 each see exactly the samples of one process with batch
    8 (DistributedSampler splits the same permutation), so the weights agree."""
    script = tmp_path / "train.py"
    script.write_text(SCRIPT.format(tests=str(Path(__file__).parent)))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ddp = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            str(script),
            str(tmp_path / "ddp"),
            "4",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert "rank 0 done" in ddp.stdout and "rank 1 done" in ddp.stdout
    single = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "single"), "8"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert single.returncode == 0, single.stderr[-3000:]

    a = pdesurrogates.load(tmp_path / "ddp" / "model").state_dict()
    b = pdesurrogates.load(tmp_path / "single" / "model").state_dict()
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-4, rtol=1e-3, msg=k)
    h_ddp = [json.loads(x) for x in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    h_one = [
        json.loads(x) for x in (tmp_path / "single" / "metrics.jsonl").read_text().splitlines()
    ]
    assert len(h_ddp) == len(h_one) == 2
    for r1, r2 in zip(h_ddp, h_one, strict=True):
        assert abs(r1["valid_loss"] - r2["valid_loss"]) < 1e-4 * r2["valid_loss"] + 1e-6
        assert abs(r1["train_loss"] - r2["train_loss"]) < 1e-4 * r2["train_loss"] + 1e-6
    # the checkpoint remembers the process count
    ckpt = torch.load(tmp_path / "ddp" / "checkpoint.pt", weights_only=True)
    assert ckpt["world_size"] == 2


def _torchrun_two(source: str, out_dir: Path, timeout: float) -> None:
    """Run the script ``source`` (``{tests}`` filled in) in two DDP processes with
    ``out_dir`` as its argument; it must succeed within ``timeout`` seconds."""
    script = out_dir / "script.py"
    script.write_text(source.format(tests=str(Path(__file__).parent)))
    run = subprocess.run(
        [
            *(sys.executable, "-m", "torch.distributed.run", "--standalone"),
            *("--nproc-per-node", "2", str(script), str(out_dir)),
        ],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert run.returncode == 0, run.stderr[-3000:]


TIMED = textwrap.dedent(
    """
    import json, os, sys, time, torch
    sys.path.insert(0, {tests!r})
    from _pairs import SmoothingPairs
    from pdesurrogates.surrogates import MgNO
    from pdesurrogates.training import Trainer

    class Uneven(SmoothingPairs):  # rank 1 is slower: its clock runs ahead of rank 0's
        def __getitem__(self, i):
            if os.environ.get("RANK") == "1":
                time.sleep(0.02)
            return super().__getitem__(i)

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = MgNO(channels=4, levels=2, layers=1, base_resolution=16, projection_channels=4)
    trainer = Trainer(model, lr=3e-3, epochs=10_000, batch_size=2, max_time=4.0,
                      progress=False, seed=5, scheduler="onecycle")
    history = trainer.fit(Uneven(8))
    out = os.path.join(sys.argv[1], "rank" + os.environ["RANK"])
    torch.save(model.state_dict(), out + ".pt")
    with open(out + ".json", "w") as f:
        json.dump({{"lr": [h["lr"] for h in history], "stop": trainer.stop_reason}}, f)
    """
)


def test_two_process_ddp_follows_one_time_schedule(tmp_path):
    """Under a time budget the processes stop at the same step and follow one schedule
    (their mean elapsed fraction), though one runs slower: the same learning rates and
    bit-identical weights on both."""
    _torchrun_two(TIMED, tmp_path, timeout=300)
    h0, h1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert h0["stop"] == h1["stop"] == "max_time"
    assert len(h0["lr"]) >= 2 and h0["lr"] == h1["lr"]
    assert h0["lr"][-1] < 3e-3 / 5  # the budget drove the schedule down
    w0, w1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    for k in w0:
        assert torch.equal(w0[k], w1[k]), k


EPOCH_END = textwrap.dedent(
    """
    import json, os, sys, torch
    sys.path.insert(0, {tests!r})
    from _pairs import SmoothingPairs
    from pdesurrogates._progress import TimeBudget
    from pdesurrogates.surrogates import MgNO
    from pdesurrogates.training import Trainer

    class Rank1Ends(TimeBudget):  # rank 1's budget runs out exactly as epoch 2 starts
        calls = 0

        def exhausted(self):  # asked at each epoch's start and before each of its 2 steps
            self.calls += 1
            return os.environ["RANK"] == "1" and self.calls >= 4

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = MgNO(channels=4, levels=2, layers=1, base_resolution=16, projection_channels=4)
    trainer = Trainer(model, epochs=5, batch_size=2, max_time=Rank1Ends(None),
                      progress=False, seed=5)
    history = trainer.fit(SmoothingPairs(8))
    tasks = "/proc/self/task"  # gloo's worker threads once the group is destroyed
    comms = [open(os.path.join(tasks, t, "comm")).read() for t in os.listdir(tasks)]
    out = os.path.join(sys.argv[1], "rank" + os.environ["RANK"] + ".json")
    with open(out, "w") as f:
        json.dump({{"epochs": len(history), "stop": trainer.stop_reason,
                   "gloo_threads": sum("gloo" in c for c in comms)}}, f)
    """
)


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux's /proc")
def test_two_process_ddp_stops_together_when_one_budget_ends_between_epochs(tmp_path):
    """The budget check at an epoch's start is agreed too: a process whose budget ran out
    there used to leave while the other waited in the next step's all-reduce (a hang).

    When ``fit`` returns, the process group it created is gone with its worker threads:
    left running (DDP's first import of torch._dynamo kept the group alive), they could
    abort the process at interpreter exit after training had succeeded."""
    _torchrun_two(EPOCH_END, tmp_path, timeout=120)
    for r in (0, 1):
        assert json.loads((tmp_path / f"rank{r}.json").read_text()) == {
            "epochs": 1,
            "stop": "max_time",
            "gloo_threads": 0,
        }
