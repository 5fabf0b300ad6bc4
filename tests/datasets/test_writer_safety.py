"""Safe writes: outputs never destroy inputs, one writer per path, stale locks reported,
checksummed chunks, and no partial or wrong file after a kill at a random point."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from pdesurrogates._files import WriteLock, check_not_input, lock_path, same_file
from pdesurrogates.datasets import DatasetWriter, FieldSpec, generate_darcy, validate
from pdesurrogates.errors import DatasetError, OutputError

HOST = socket.gethostname()
X = np.linspace(0.0, 1.0, 6, dtype=np.float32)


def _toy(path, n=4, shift=0.0, finalize=True, **kw):
    w = DatasetWriter(
        path,
        n_samples=n,
        coords={"x": X},
        fields={"u": FieldSpec(dims=("sample", "x")), "m": FieldSpec(dims=("x",))},
        source={"generator": "toy", "shift": shift},
        **kw,
    )
    with w:
        w.write_static("m", X)
        for i in range(n):
            w.write(i, {"u": X * (i + 1) + shift})
        if finalize:
            w.finalize(split=(0.5, 0.25, 0.25))
    return w


def _flip(path, offset, mask=0x10):
    """Flip one bit (Fletcher32 cannot tell a 16-bit word 0x0000 from 0xFFFF: flip bits)."""
    with open(path, "r+b") as fh:
        fh.seek(offset)
        b = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([b[0] ^ mask]))


def _u(path):
    with h5py.File(path, "r") as f:
        return f["u"][()]


# --- same-file checks -------------------------------------------------------------------------
def test_same_file_sees_through_symlinks_hard_links_and_relative_paths(tmp_path, monkeypatch):
    a = tmp_path / "a.pt"
    a.write_bytes(b"data")
    (tmp_path / "sym.pt").symlink_to(a)
    os.link(a, tmp_path / "hard.pt")
    monkeypatch.chdir(tmp_path)
    for other in ("sym.pt", "hard.pt", "./a.pt", tmp_path / "sub" / ".." / "a.pt"):
        assert same_file(other, a), other
    assert not same_file(tmp_path / "b.pt", a)
    with pytest.raises(OutputError, match=r"-o hard\.pt is the input .*a\.pt.*--overwrite"):
        check_not_input("hard.pt", [a])
    with pytest.raises(OutputError, match=r"its working file .*a\.pt"):
        check_not_input(tmp_path / "x.h5", [a], also=[a])  # e.g. the input is x.h5.partial
    check_not_input(tmp_path / "new.h5", [a, None])
    assert a.read_bytes() == b"data"


# --- write locks ------------------------------------------------------------------------------
def test_second_lock_fails_at_once_naming_the_holder(tmp_path):
    dest = tmp_path / "d.h5"
    with WriteLock(dest, command="first writer") as first:
        info = json.loads(lock_path(dest).read_text())
        assert info["pid"] == os.getpid() and info["host"] == HOST
        t0 = time.monotonic()
        with pytest.raises(OutputError, match=rf"being written by pid {os.getpid()} on host "):
            WriteLock(dest).acquire()
        assert time.monotonic() - t0 < 1.0
        assert first.held and lock_path(dest).exists()
    assert not lock_path(dest).exists()


def _dead_holder(dest):
    """Take the lock in a child process that then dies without releasing it."""
    code = (
        "import os, sys; from pdesurrogates._files import WriteLock; "
        "WriteLock(sys.argv[1], command='killed writer', partial=sys.argv[1] + '.partial')"
        ".acquire(); os._exit(0)"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(dest)], check=True)
    return proc


def test_a_dead_holders_lock_is_reported_stale_and_never_stolen(tmp_path):
    dest = tmp_path / "d.h5"
    _dead_holder(dest)
    pid = json.loads(lock_path(dest).read_text())["pid"]
    (tmp_path / "d.h5.partial").write_bytes(b"")
    with pytest.raises(OutputError) as err:
        WriteLock(dest).acquire()
    msg = str(err.value)
    assert f"stale lock {lock_path(dest)}" in msg and f"pid {pid} on host {HOST}" in msg
    assert "killed writer" in msg and f"Remove {lock_path(dest)}" in msg and "--resume" in msg
    assert json.loads(lock_path(dest).read_text())["pid"] == pid  # still there
    lock_path(dest).unlink()  # what the message says to do
    with WriteLock(dest):
        pass


def test_a_reused_pid_and_an_empty_lock_file_are_reported(tmp_path):
    dest = tmp_path / "d.h5"
    info = {"pid": os.getpid(), "host": HOST, "proc_start": "-1", "command": "old"}
    lock_path(dest).write_text(json.dumps(info))  # our pid, but another process's start time
    with pytest.raises(OutputError, match="stale lock"):
        WriteLock(dest).acquire()
    lock_path(dest).write_text("")
    with pytest.raises(OutputError, match=r"empty or damaged.*remove"):
        WriteLock(dest).acquire()


def test_release_leaves_another_writers_lock_alone(tmp_path):
    dest = tmp_path / "d.h5"
    lock = WriteLock(dest).acquire()
    lock_path(dest).write_text(json.dumps({"pid": 1, "host": HOST, "token": "someone else"}))
    lock.release()
    assert lock_path(dest).exists()


# --- the dataset writer -----------------------------------------------------------------------
def test_writer_holds_the_lock_until_closed(tmp_path):
    p = tmp_path / "w.h5"
    w = DatasetWriter(p, n_samples=2, coords={"x": X}, fields={"u": FieldSpec(("sample", "x"))})
    with pytest.raises(OutputError, match=rf"pid {os.getpid()} on host {HOST}"):
        DatasetWriter(p, n_samples=2, coords={"x": X}, fields={"u": FieldSpec(("sample", "x"))})
    assert w.partial.exists()  # the refused writer did not touch the holder's partial file
    w.close()
    assert not lock_path(p).exists() and w.partial.exists()
    _toy(p, n=2, resume=False)
    assert not lock_path(p).exists() and not w.partial.exists()


def test_overwrite_replaces_the_old_file_only_when_the_new_one_is_complete(tmp_path):
    p = tmp_path / "o.h5"
    _toy(p, shift=0.0)
    old = _u(p)
    w = DatasetWriter(
        p,
        n_samples=4,
        coords={"x": X},
        fields={"u": FieldSpec(("sample", "x"))},
        overwrite=True,
    )
    w.write(0, {"u": X * 7})
    validate(p)
    np.testing.assert_array_equal(_u(p), old)
    w.abort()
    validate(p)
    np.testing.assert_array_equal(_u(p), old)
    assert not w.partial.exists() and not lock_path(p).exists()
    _toy(p, shift=1.0, overwrite=True)
    np.testing.assert_array_equal(_u(p), old + 1.0)


def test_writer_refuses_an_output_that_is_one_of_its_inputs(tmp_path):
    p = tmp_path / "in.h5"
    _toy(p)
    before = p.read_bytes()
    os.link(p, tmp_path / "alias.h5")
    for out, inputs in ((p, [p]), (tmp_path / "alias.h5", [p]), (tmp_path / "q.h5", [f"{p}"])):
        if out == tmp_path / "q.h5":
            os.symlink(p, tmp_path / "q.h5.partial")  # the working file would be the input
        with pytest.raises(OutputError, match="is the input"):
            DatasetWriter(
                out,
                n_samples=1,
                coords={"x": X},
                fields={"u": FieldSpec(("sample", "x"))},
                overwrite=True,
                inputs=inputs,
            )
    assert p.read_bytes() == before
    assert not lock_path(p).exists()


def test_fields_are_checksummed_and_a_flipped_byte_fails_its_read(tmp_path):
    p = tmp_path / "c.h5"
    _toy(p, compression="gzip")
    with h5py.File(p, "r") as f:
        assert f["u"].fletcher32 and f["m"].fletcher32
        assert f["u"].chunks == (1, len(X)) and f["u"].compression == "gzip"
        info = f["u"].id.get_chunk_info(2)
    _flip(p, info.byte_offset + 1)
    with h5py.File(p, "r") as f:
        np.testing.assert_array_equal(f["u"][1], X * 2)
        with pytest.raises(OSError):
            f["u"][2]


def test_resume_rewrites_a_chunk_that_fails_its_checksum(tmp_path):
    p = tmp_path / "r.h5"
    _toy(p, finalize=False)
    partial = tmp_path / "r.h5.partial"
    with h5py.File(partial, "r") as f:
        info = f["u"].id.get_chunk_info(1)
    _flip(partial, info.byte_offset + 5)
    w = DatasetWriter(
        p,
        n_samples=4,
        coords={"x": X},
        fields={"u": FieldSpec(dims=("sample", "x")), "m": FieldSpec(dims=("x",))},
        source={"generator": "toy", "shift": 0.0},
        resume=True,
    )
    with w:
        assert w.missing().tolist() == [1]
        w.write(1, {"u": X * 2})
        w.finalize(split=(0.5, 0.25, 0.25))
    np.testing.assert_array_equal(_u(p), np.stack([X * (i + 1) for i in range(4)]))


def test_resume_of_a_finished_file_does_nothing(tmp_path, caplog):
    p = generate_darcy(tmp_path / "d.h5", n_samples=3, resolution=8, seed=2, progress=False)
    st = p.stat()
    with caplog.at_level("INFO", logger="pdesurrogates"):
        again = generate_darcy(p, n_samples=3, resolution=8, seed=2, progress=False, resume=True)
    assert again == p and "already complete" in caplog.text
    assert (p.stat().st_ino, p.stat().st_mtime_ns) == (st.st_ino, st.st_mtime_ns)
    assert not lock_path(p).exists()
    with pytest.raises(DatasetError, match=r"other arguments.*--overwrite without --resume"):
        generate_darcy(p, n_samples=3, resolution=8, seed=3, progress=False, resume=True)
    assert p.stat().st_ino == st.st_ino


# --- two writers, real processes --------------------------------------------------------------
def _cli(*args):
    return [sys.executable, "-m", "pdesurrogates", *map(str, args)]


def _seed_of(path):
    with h5py.File(path, "r") as f:
        return json.loads(f.attrs["source"])["seed"]


def test_two_writers_one_path_one_success_with_its_own_data(tmp_path):
    out = tmp_path / "same.h5"
    procs = {}
    for seed in (1, 2):
        cmd = _cli("generate", "darcy", "-n", 2000, "-r", 16, "--seed", seed, "-q", "-o", out)
        procs[seed] = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        # the second starts 0.3 s after the first began writing (interpreter start-up
        # times vary too much on a loaded machine to count from the launch)
        deadline = time.monotonic() + 60
        while not lock_path(out).exists() and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(0.3)
    results = {s: (p.wait(timeout=120), *p.communicate()) for s, p in procs.items()}
    won = [s for s, (rc, _, _) in results.items() if rc == 0]
    assert len(won) == 1, results
    winner, loser = won[0], 3 - won[0]
    rc, out_text, err = results[loser]
    assert rc == 1 and "wrote" not in out_text
    assert f"being written by pid {procs[winner].pid} on host {HOST}" in err.replace("\n", "")
    assert f"wrote {out}" in results[winner][1]
    assert _seed_of(out) == winner  # the success message means the file holds its data
    validate(out)
    assert not lock_path(out).exists()


# --- kills at random points -------------------------------------------------------------------
def _kill_at(cmd, trigger, delay):
    """Run ``cmd``; once ``trigger`` exists, SIGKILL it after ``delay`` more seconds unless it
    finished first. Returns (pid, killed)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not trigger.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    try:
        rc = proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)
        return proc.pid, True
    assert rc == 0, cmd
    return proc.pid, False


def _delay(seed, index, lo, hi):
    return float(np.random.default_rng([seed, index]).uniform(lo, hi))


def _values(path):
    with h5py.File(path, "r") as f:
        out = {}
        f.visititems(lambda k, v: out.update({k: v[()]}) if isinstance(v, h5py.Dataset) else None)
        out["source"] = f.attrs["source"]
    return out


def _assert_same_values(p, q):
    a, b = _values(p), _values(q)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def _run(argv, capsys):
    from pdesurrogates.cli import main

    code = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return code, cap.out + cap.err


def _clear_stale_lock(out, pid, argv, capsys):
    """A rerun is refused naming the dead holder; remove the lock as the message says.

    Returns where the kill landed: before the writer took its lock, or while it held it.
    """
    if not lock_path(out).exists():  # killed before the writer started or after it finished
        return "no lock held"
    code, text = _run(argv, capsys)
    assert code == 1
    text = text.replace("\n", "")
    assert f"stale lock {lock_path(out)}" in text and f"pid {pid} on host {HOST}" in text, text
    assert f"Remove {lock_path(out)}" in text
    lock_path(out).unlink()
    return "while writing"


GEN = ("generate", "darcy", "-n", 200, "-r", 16, "--seed", 5, "-q")


@pytest.fixture(scope="module")
def darcy_ref(tmp_path_factory):
    from pdesurrogates.cli import main

    out = tmp_path_factory.mktemp("ref") / "ref.h5"
    assert main([str(a) for a in (*GEN, "-o", out)]) == 0
    return out


def _kill_generate(tmp_path, darcy_ref, capsys, seed, index):
    out = tmp_path / f"g{index}.h5"
    delay = _delay(seed, index, 0.0, 0.8)
    pid, killed = _kill_at(_cli(*GEN, "-o", out), lock_path(out), delay)
    if killed:
        if out.exists():  # killed after the rename: the file is the complete one
            _assert_same_values(out, darcy_ref)
        partial = tmp_path / f"g{index}.h5.partial"
        if partial.exists():
            with pytest.raises(DatasetError):
                validate(partial)
        resume = [*GEN, "-o", out, "--resume"]
        state = _clear_stale_lock(out, pid, resume, capsys)
        code, text = _run(resume, capsys)
        assert code == 0, text
    _assert_same_values(out, darcy_ref)
    assert not lock_path(out).exists()
    return state if killed else "finished"


def _pt_source(path):
    import torch

    g = torch.Generator().manual_seed(0)
    torch.save({"x": torch.rand(600, 48, 48, generator=g), "y": torch.rand(600, 48, 48)}, path)


@pytest.fixture(scope="module")
def pt_ref(tmp_path_factory):
    from pdesurrogates.cli import main

    d = tmp_path_factory.mktemp("pt")
    _pt_source(d / "src.pt")
    assert main(["import", "neuralop-pt", str(d / "src.pt"), "-o", str(d / "ref.h5"), "-q"]) == 0
    return d


def _kill_import(tmp_path, pt_ref, capsys, seed, index):
    import shutil

    out = tmp_path / f"i{index}.h5"
    shutil.copy(pt_ref / "ref.h5", out)
    with h5py.File(out, "r+") as f:  # an existing older file, to be replaced by --overwrite
        f["u"][0] = 0.0
    old = _values(out)
    argv = ["import", "neuralop-pt", pt_ref / "src.pt", "-o", out, "--overwrite", "-q"]
    argv += ["--compression", "gzip"]  # slower: a wider window to kill in
    pid, killed = _kill_at(_cli(*argv), lock_path(out), _delay(seed, index, 0.0, 0.6))
    if killed:
        validate(out)  # the old file, intact, or (killed after the rename) the new one
        now, new = _values(out), _values(pt_ref / "ref.h5")
        assert any(all(np.array_equal(now[k], v[k]) for k in v) for v in (old, new))
        state = _clear_stale_lock(out, pid, argv, capsys)
        code, text = _run(argv, capsys)
        assert code == 0, text
    _assert_same_values(out, pt_ref / "ref.h5")
    assert not lock_path(out).exists()
    return state if killed else "finished"


TRAIN_CFG = "[model]\nchannels = 4\nlayers = 1\nprojection_channels = 4\n[training]\n"
TRAIN_CFG += "epochs = 15\nbatch_size = 8\nlr = 3e-3\n"


@pytest.fixture(scope="module")
def train_ref(tmp_path_factory):
    from pdesurrogates.cli import main

    d = tmp_path_factory.mktemp("train")
    gen = ["generate", "darcy", "-n", "24", "-r", "16", "-q", "-o", str(d / "d.h5")]
    assert main(gen) == 0
    (d / "cfg.toml").write_text(TRAIN_CFG)
    assert main(_train_argv(d, d / "ref")) == 0
    return d


def _train_argv(d, out):
    return ["train", "mgno", "--data", str(d / "d.h5"), "-c", str(d / "cfg.toml"), "-o", str(out)]


def _weights(run):
    from safetensors.numpy import load_file

    return load_file(run / "model" / "weights.safetensors")


def _kill_train(tmp_path, train_ref, capsys, seed, index):
    from pdesurrogates.training._checkpoint import read_checkpoint

    out = tmp_path / f"run{index}"
    argv = [*_train_argv(train_ref, out), "-q"]
    trigger = out / "checkpoint.pt"  # the first epoch is done
    _, killed = _kill_at(_cli(*argv), trigger, _delay(seed, index, 0.0, 0.5))
    state = "finished"
    if killed:
        state = "checkpointed" if (out / "checkpoint.pt").exists() else "before a checkpoint"
        if (out / "model").exists():  # written only after the last epoch, atomically
            ref = _weights(train_ref / "ref")
            assert all(np.array_equal(v, ref[k]) for k, v in _weights(out).items())
        if (out / "checkpoint.pt").exists():  # the previous or the new one, never torn
            read_checkpoint(out / "checkpoint.pt", None)
        lock = out / "run.json.lock"  # the run directory's write lock, left by the kill
        if lock.exists():
            code, text = _run([*argv, "--resume"], capsys)
            text = text.replace("\n", "")
            assert code == 1 and f"stale lock {lock}" in text and f"Remove {lock}" in text, text
            lock.unlink()
        code, text = _run([*argv, "--resume"], capsys)
        assert code == 0, text
    ref, got = _weights(train_ref / "ref"), _weights(out)
    assert ref.keys() == got.keys()
    for k in ref:  # bit-identical to the uninterrupted run
        np.testing.assert_array_equal(got[k], ref[k], err_msg=k)
    return state


def test_killed_generate_leaves_no_file_and_resumes_to_the_same_values(tmp_path, darcy_ref, capsys):
    assert _kill_generate(tmp_path, darcy_ref, capsys, seed=0, index=0) in KILL_STATES


def test_killed_import_keeps_the_old_file_and_reruns_to_the_same_values(tmp_path, pt_ref, capsys):
    assert _kill_import(tmp_path, pt_ref, capsys, seed=0, index=0) in KILL_STATES


def test_killed_training_resumes_to_bit_identical_weights(tmp_path, train_ref, capsys):
    assert _kill_train(tmp_path, train_ref, capsys, seed=0, index=0) in KILL_STATES


KILL_STATES = {"finished", "no lock held", "while writing", "checkpointed", "before a checkpoint"}


@pytest.mark.slow
@pytest.mark.parametrize("index", range(1, 9))
def test_kills_at_many_random_points(tmp_path, darcy_ref, pt_ref, train_ref, capsys, index):
    states = [
        _kill_generate(tmp_path, darcy_ref, capsys, seed=1, index=index),
        _kill_import(tmp_path, pt_ref, capsys, seed=1, index=index),
        _kill_train(tmp_path, train_ref, capsys, seed=1, index=index),
    ]
    print("kills landed:", states)
