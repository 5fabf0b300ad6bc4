"""One option vocabulary across every command, and errors that point to the right command."""

from __future__ import annotations

import collections
import subprocess
import sys

import pytest
import typer

from pdesurrogates.cli import app, main


def _commands():
    out = {}

    def walk(cmd, path):
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, [*path, name])
        else:
            out[" ".join(path)] = cmd

    walk(typer.main.get_command(app), [])
    return out


def _options(cmd):
    return [p for p in cmd.params if type(p).__name__.endswith("Option")]


COMMANDS = _commands()


def test_every_short_flag_has_one_meaning():
    meaning = collections.defaultdict(set)
    for cmd in COMMANDS.values():
        for opt in _options(cmd):
            longs = [o for o in opt.opts if o.startswith("--")]
            for o in opt.opts:
                if len(o) == 2:
                    meaning[o].add(longs[0] if longs else o)
    clashes = {k: sorted(v) for k, v in meaning.items() if len(v) > 1}
    assert not clashes, f"short flags with two meanings: {clashes}"


def test_output_quiet_and_seconds_are_spelled_one_way():
    bad = []
    for name, cmd in COMMANDS.items():
        for opt in _options(cmd):
            opts = set(opt.opts) | set(opt.secondary_opts)
            if "--out" in opts or "--output-dir" in opts:
                bad.append(f"{name}: {sorted(opts)} (use -o/--output)")
            if "--output" in opts and "-o" not in opts:
                bad.append(f"{name}: --output without -o")
            if "--quiet" in opts and "-q" not in opts:
                bad.append(f"{name}: --quiet without -q")
            if "--progress" in opts or "--no-progress" in opts:
                bad.append(f"{name}: --progress/--no-progress (use -q/--quiet)")
            if any("minute" in o or o.endswith("-time") for o in opts):
                bad.append(f"{name}: {sorted(opts)} (durations are given in seconds)")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("name", sorted(n for n in COMMANDS if n.startswith("train ")))
def test_train_commands_share_the_basic_flags(name):
    flags = {o for opt in _options(COMMANDS[name]) for o in opt.opts}
    for flag in ("-o", "--output", "--lr", "--batch-size", "-q", "--seed"):
        assert flag in flags, f"{name} lacks {flag}"
    # how long to train: passes over a data set, or steps on fresh random vectors
    assert flags & {"--epochs", "--steps"}, f"{name} says neither --epochs nor --steps"


def test_unknown_flag_names_the_command_that_takes_it(capsys):
    assert main(["train", "mgno", "--n-lo", "3"]) == 2
    err = capsys.readouterr().err
    assert "No such option: --n-lo" in err
    assert "'pdesurrogates mf fit'" in err


def test_debug_shows_the_traceback(tmp_path, capsys):
    missing = tmp_path / "missing.h5"
    assert main(["info", str(missing)]) == 1
    plain = capsys.readouterr().err
    assert "no such file" in plain and "Traceback" not in plain
    assert main(["--debug", "info", str(missing)]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_cli_import_does_not_import_torch():
    code = "import sys, pdesurrogates.cli; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["info", "--help"]])
def test_light_commands_start_without_torch(argv):
    code = (
        "import sys\nfrom pdesurrogates.cli import main\n"
        f"rc = main({argv!r})\nassert rc == 0, rc\nassert 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_an_unexpected_failure_is_one_line_unless_debug(monkeypatch, capsys):
    import pdesurrogates.cli._data as data_cli

    def boom(*args, **kwargs):
        raise KeyError("objects")

    monkeypatch.setattr("pdesurrogates.datasets.describe", boom)
    monkeypatch.setattr(data_cli, "describe", boom, raising=False)
    assert main(["info", "whatever.h5"]) == 1
    err = capsys.readouterr().err
    assert "unexpected KeyError" in err and "--debug" in err and "Traceback" not in err
    assert main(["--debug", "info", "whatever.h5"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_info_and_validate_on_a_file_start_without_torch(tmp_path):
    import numpy as np

    from pdesurrogates.datasets import DatasetWriter, FieldSpec

    path = tmp_path / "t.h5"
    x = np.linspace(0, 1, 4)
    with DatasetWriter(path, n_samples=2, coords={"x": x},
                       fields={"u": FieldSpec(dims=("sample", "x"))}) as w:  # fmt: skip
        for i in range(2):
            w.write(i, {"u": x * i})
        w.finalize(split=(0.5, 0.5, 0.0))
    code = (
        "import sys\nfrom pdesurrogates.cli import main\n"
        f"assert main(['info', {str(path)!r}]) == 0\n"
        f"assert main(['validate', {str(path)!r}]) == 0\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
