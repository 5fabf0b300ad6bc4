"""Every shell and Python snippet in README.md and docs/guide/*.md runs, in order, on small sizes.

Each document runs in one fresh child process in its own empty directory: shell blocks
(``bash``/``sh``) go to ``bash -euo pipefail``; in a ``console`` block the ``$ `` lines (with
their ``\\`` continuations) are the commands and every other line is output, not run. Python
blocks are executed one after another in one namespace, so a later block sees the names an
earlier one defined, exactly as a reader who types them in would. A wrong attribute name or a
command out of order fails here.

A snippet can carry directives in HTML comments on the lines just above its fence (invisible in
the rendered docs)::

    <!-- snippet: shrink --n-samples 1000 => --n-samples 24; --resolution 64 => --resolution 16 -->
    <!-- snippet: file dists.toml -->        (the block is a file the later snippets read)
    <!-- snippet: setup pdebench-darcy -->   (run a named fixture below before the block)
    <!-- snippet: skip REASON -->            (not run; the reason is required)
    <!-- snippet: fails TEXT -->             (a shell block that must fail, printing TEXT)

A ``shrink`` whose left side is not in the block fails the test, so a rewrite cannot go stale
silently. Blocks in other languages (``text``, ``toml`` without ``file``, ...) are not run.

``pdesurrogates`` in a shell block is a shim that hands argv, cwd, environment and stdio to a
server forked from the child: each command runs ``pdesurrogates.cli.main`` in a fork of a
process that imported the package once, so a page with twenty commands does not pay twenty
cold starts (several seconds each).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs" / "guide").glob("*.md"))]
RUN_LANGS = {"bash": "bash", "sh": "bash", "shell": "bash", "console": "bash", "python": "python"}
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w+-]*)\s*$")
DIRECTIVE = re.compile(r"^\s*<!--\s*snippet:\s*(?P<verb>\w+)\s*(?P<arg>.*?)\s*-->\s*$")

# Named fixtures a snippet can ask for: tiny files in the real third-party layouts.
SETUPS = {
    "pdebench-darcy": textwrap.dedent(
        """
        import h5py, numpy as np
        _rng = np.random.default_rng(0)
        _x = ((np.arange(16) + 0.5) / 16).astype(np.float32)
        _bump = np.outer(np.sin(np.pi * _x), np.sin(np.pi * _x))
        _nu = _rng.choice([3.0, 12.0], size=(24, 16, 16)).astype(np.float32)
        with h5py.File("2D_DarcyFlow_beta1.0_Train.hdf5", "w") as _f:
            _f["nu"], _f["tensor"] = _nu, (_bump / _nu).astype(np.float32)[:, None]
            _f["x-coordinate"] = _f["y-coordinate"] = _x
            _f.attrs["beta"] = 1.0
        """
    ),
    "the-well-trl": textwrap.dedent(
        """
        import os, h5py, numpy as np
        _rng, _text = np.random.default_rng(1), h5py.string_dtype()
        for _split in ("train", "valid", "test"):
            _dir = f"datasets/turbulent_radiative_layer_2D/data/{_split}"
            os.makedirs(_dir, exist_ok=True)
            with h5py.File(f"{_dir}/trl_{_split}.hdf5", "w") as _f:
                _f.attrs.update({"dataset_name": "trl", "n_spatial_dims": 2,
                                 "n_trajectories": 2})
                _dims = _f.create_group("dimensions")
                _dims.attrs["spatial_dims"] = np.array(["x", "y"], dtype=_text)
                for _name, _n in (("time", 3), ("x", 8), ("y", 6)):
                    _d = _dims.create_dataset(_name, data=np.linspace(0, 1, _n))
                    _d.attrs.update({"sample_varying": False, "time_varying": _name == "time"})
                _g = _f.create_group("t0_fields")
                _g.attrs["field_names"] = np.array(["density"], dtype=_text)
                _d = _g.create_dataset("density", data=_rng.normal(size=(2, 3, 8, 6)))
                _d.attrs.update({"sample_varying": True, "time_varying": True})
                _d.attrs["dim_varying"] = np.array([True, True])
        """
    ),
    "fno-mat-darcy": textwrap.dedent(
        """
        import numpy as np, scipy.io
        _rng = np.random.default_rng(2)
        scipy.io.savemat("piececonst_r421_N1024_smooth1.mat",
                         {"coeff": _rng.choice([3.0, 12.0], size=(12, 15, 15)),
                          "sol": _rng.normal(size=(12, 15, 15))})
        """
    ),
    "neuralop-pt-darcy": textwrap.dedent(
        """
        import torch
        _g = torch.Generator().manual_seed(3)
        torch.save({"x": (torch.rand(12, 16, 16, generator=_g) > 0.5),
                    "y": torch.randn(12, 16, 16, generator=_g)}, "darcy_train_16.pt")
        """
    ),
    # the UQ guide's "your models and data": a truth file darcy.h5 (10 fields, 6 in the test
    # split) and stand-ins for a trained 4-member ensemble, a second model's report, held-out
    # calibration predictions, a saved 2-input MF-DNN (untrained) and its simulator
    "uq-stand-ins": textwrap.dedent(
        """
        import numpy as np, torch
        import pdesurrogates
        from pdesurrogates.datasets import DatasetWriter, FieldSpec
        from pdesurrogates.surrogates import MultiFidelityNet
        from pdesurrogates.uq import Prediction, evaluate as _evaluate, save_prediction
        _rng = np.random.default_rng(0)
        _a, _u = _rng.uniform(1, 2, size=(10, 12, 10)), _rng.normal(size=(10, 12, 10))
        with DatasetWriter("darcy.h5", n_samples=10, coords={"x": 12, "y": 10},
                           fields={"a": FieldSpec(("sample", "x", "y"), role="input"),
                                   "u": FieldSpec(("sample", "x", "y"), role="output")}) as _w:
            _w.write_batch(0, {"a": _a, "u": _u})
            _w.finalize(splits={"train": [0, 1, 2, 3], "test": [4, 5, 6, 7, 8, 9]})
        a_test, u_test = _a[4:], _u[4:]

        class _StandInEnsemble:
            def predict(self, a):
                _s = u_test + 0.3 * _rng.normal(size=(4, *u_test.shape))
                return Prediction(_s.mean(0), samples=_s)

        ensemble = _StandInEnsemble()
        save_prediction("pred.h5", ensemble.predict(a_test), field="u", like="darcy.h5",
                        split="test", data="darcy.h5")
        other = _evaluate(Prediction(mean=u_test + 0.1, std=np.full(u_test.shape, 0.3)), u_test)
        y_cal, y_test = _rng.normal(size=(40, 8)), _rng.normal(size=(20, 8))
        pred_cal = Prediction(mean=np.zeros((40, 8)), std=np.full((40, 8), 0.5))
        pred_test = Prediction(mean=np.zeros((20, 8)), std=np.full((20, 8), 0.5))
        torch.manual_seed(0)
        pdesurrogates.save(MultiFidelityNet(in_dim=2), "runs/mfnet")
        model = pdesurrogates.load("runs/mfnet")

        def simulator(x):
            return x[:, 0] * x[:, 1]
        """
    ),
    # MF-DNN training settings for seconds instead of minutes (`mf fit -c quick-mfdnn.toml`)
    "mfdnn-quick": textwrap.dedent(
        """
        open("quick-mfdnn.toml", "w").write(
            "[training]\\nadam_steps = 100\\nlbfgs_steps = 20\\nlm_steps = 0\\n"
            "joint = false\\nn_members = 2\\nkeep = 1\\nl2_grid = [1e-5]\\n"
        )
        """
    ),
    # the "your simulator" of the dataset-layer guide: 1-D heat equation, 64 points, 11 times
    "heat-solver": textwrap.dedent(
        """
        import numpy as np
        def my_solver(i):
            _x, _t = np.linspace(0, 1, 64), np.linspace(0, 1, 11)[:, None]
            kappa = 1e-3 * 100 ** (i / 100)
            u0 = np.sin(np.pi * _x)
            return u0, np.exp(-kappa * np.pi**2 * _t) * u0, kappa
        """
    ),
}


@dataclass
class Snippet:
    doc: str
    line: int
    lang: str
    code: str
    directives: list[tuple[str, str]] = field(default_factory=list)


def parse(path: Path) -> list[Snippet]:
    """The fenced blocks of one markdown file, with the directives just above each."""
    lines = path.read_text().splitlines()
    out, pending, i = [], [], 0
    while i < len(lines):
        m = DIRECTIVE.match(lines[i])
        if m:
            pending.append((m["verb"], m["arg"]))
            i += 1
            continue
        fence = FENCE.match(lines[i])
        if fence is None:
            if lines[i].strip():
                pending = []
            i += 1
            continue
        start, indent, body = i + 1, len(fence["indent"]), []  # 1-based line of the fence
        i += 1
        while i < len(lines) and not re.match(rf"^ {{0,{indent}}}```\s*$", lines[i]):
            body.append(lines[i][indent:])
            i += 1
        out.append(Snippet(path.name, start, fence["lang"].lower(), "\n".join(body), pending))
        pending = []
        i += 1
    return out


def console_commands(block: str) -> str:
    """The commands of a ``console`` block: its ``$ `` lines and their continuations."""
    out, more = [], False
    for line in block.splitlines():
        if more or line.startswith("$ "):
            out.append(line if more else line[2:])
            more = line.rstrip().endswith("\\")
    return "\n".join(out)


def steps(snippets: list[Snippet]) -> list[dict]:
    """What the child runs: shrunk code, fixture files, in document order."""
    out = []
    for s in snippets:
        where = f"{s.doc}:{s.line}"
        verbs = dict(s.directives)
        if "skip" in verbs:
            assert verbs["skip"], f"{where}: `snippet: skip` needs a reason"
            continue
        code = console_commands(s.code) if s.lang == "console" else s.code
        for verb, arg in s.directives:
            if verb == "shrink":
                for rule in filter(None, (r.strip() for r in arg.split(";"))):
                    old, _, new = (p.strip() for p in rule.partition("=>"))
                    assert old in code, f"{where}: shrink rule {old!r} matches nothing"
                    code = code.replace(old, new)
            elif verb == "setup":
                assert arg in SETUPS, f"{where}: unknown setup {arg!r}; known: {sorted(SETUPS)}"
                out.append({"kind": "python", "where": where, "code": SETUPS[arg]})
            elif verb == "fails":
                assert arg, f"{where}: `snippet: fails` needs the text the error prints"
            elif verb not in {"file", "skip"}:
                raise AssertionError(f"{where}: unknown snippet directive {verb!r}")
        if "file" in verbs:
            out.append({"kind": "file", "where": where, "name": verbs["file"], "code": code})
        elif s.lang in RUN_LANGS and code.strip():
            step = {"kind": RUN_LANGS[s.lang], "where": where, "code": code}
            if "fails" in verbs:
                assert step["kind"] == "bash", f"{where}: only a shell block can fail"
                step["fails"] = verbs["fails"]
            out.append(step)
    return out


CHILD = textwrap.dedent(
    """
    import atexit, json, os, signal, socket, subprocess, sys, traceback, types
    import matplotlib
    matplotlib.use("Agg")


    def serve(path, parent):
        # Run each `pdesurrogates` command in a fork of this process, which imported the
        # package (and torch, scipy, matplotlib) once: the same CLI entry point without a
        # cold start per command. The shim on PATH passes argv, cwd, env and its stdio.
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        srv = socket.socket(socket.AF_UNIX)
        srv.bind(path)
        srv.listen(16)
        import scipy.stats, torch, torch._dynamo, matplotlib.pyplot  # noqa: F401
        import pdesurrogates.cli, pdesurrogates.runs  # noqa: F401
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)
        srv.settimeout(1.0)
        while os.getppid() == parent:
            try:
                conn, _ = srv.accept()
            except socket.timeout:
                continue
            if os.fork():
                conn.close()
                continue
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            srv.close()
            conn.settimeout(None)
            data, fds, _, _ = socket.recv_fds(conn, 1 << 16, 3)
            while len(data) < 8 or len(data) < 8 + int.from_bytes(data[:8], "big"):
                data += conn.recv(1 << 16)
            req = json.loads(data[8:])
            for i, fd in enumerate(fds):
                os.dup2(fd, i)
                os.close(fd)
            os.chdir(req["cwd"])
            os.environ.clear()
            os.environ.update(req["env"])
            sys.argv = ["pdesurrogates", *req["argv"]]
            # spawned workers (dask) must not re-run this file as their __main__
            sys.modules["__main__"] = types.ModuleType("__main__")
            code = 1
            try:
                from pdesurrogates.cli import main
                code = main(req["argv"])
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                conn.sendall(int(code or 0).to_bytes(4, "big"))
                os._exit(0)
        os._exit(0)


    plan = json.load(open(sys.argv[1]))
    cli = os.environ.get("PDESURROGATES_SNIPPET_CLI")
    if cli and any(s["kind"] == "bash" for s in plan):
        parent = os.getpid()
        server = os.fork()
        if not server:
            serve(cli, parent)
        atexit.register(os.kill, server, signal.SIGKILL)
    ns = {"__name__": "__main__"}
    for step in plan:
        print(f"=== {step['where']} ({step['kind']})", flush=True)
        if step["kind"] == "file":
            open(step["name"], "w").write(step["code"] + "\\n")
        elif step["kind"] == "bash" and "fails" in step:
            r = subprocess.run(["bash", "-uo", "pipefail", "-c", step["code"]],
                               capture_output=True, text=True)
            print(r.stdout, r.stderr, sep="\\n", flush=True)
            said = " ".join((r.stdout + r.stderr).split())
            if not r.returncode or " ".join(step["fails"].split()) not in said:
                sys.exit(f"FAILED {step['where']}: expected a failure printing {step['fails']!r}")
        elif step["kind"] == "bash":
            r = subprocess.run(["bash", "-euo", "pipefail", "-c", step["code"]])
            if r.returncode:
                sys.exit(f"FAILED {step['where']}: exit {r.returncode}")
        else:
            try:
                exec(compile(step["code"], step["where"], "exec"), ns)
            except BaseException:
                traceback.print_exc()
                sys.exit(f"FAILED {step['where']}")
    """
)

# `pdesurrogates` on the PATH of the snippets: hands the command to the child's CLI server.
SHIM = textwrap.dedent(
    """
    import json, os, socket, sys
    s = socket.socket(socket.AF_UNIX)
    s.connect(os.environ["PDESURROGATES_SNIPPET_CLI"])
    req = {"argv": sys.argv[1:], "cwd": os.getcwd(), "env": dict(os.environ)}
    msg = json.dumps(req).encode()
    socket.send_fds(s, [len(msg).to_bytes(8, "big") + msg], [0, 1, 2])
    rc = b""
    while len(rc) < 4:
        chunk = s.recv(4 - len(rc))
        if not chunk:
            sys.exit("pdesurrogates: the snippet test's command server died")
        rc += chunk
    sys.exit(int.from_bytes(rc, "big"))
    """
)


def write_runner(tmp_path: Path) -> dict:
    """child.py, the ``pdesurrogates`` shim and the environment they run in."""
    (tmp_path / "child.py").write_text(CHILD)
    shim_dir = tmp_path / "bin"
    shim_dir.mkdir()
    shim = shim_dir / "pdesurrogates"
    shim.write_text(f"#!{sys.executable} -S" + SHIM)
    shim.chmod(0o755)
    path = [str(shim_dir), str(Path(sys.executable).parent), os.environ.get("PATH", "")]
    return {
        **os.environ,
        "PATH": os.pathsep.join(path),
        "PDESURROGATES_SNIPPET_CLI": str(tmp_path / "cli.sock"),
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])
        ),
    }


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_snippets_run_in_order(doc, tmp_path):
    plan = steps(parse(doc))
    if not plan:
        pytest.skip(f"{doc.name} has no runnable snippet")
    (tmp_path / "steps.json").write_text(json.dumps(plan))
    env = write_runner(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    r = subprocess.run(
        [sys.executable, str(tmp_path / "child.py"), str(tmp_path / "steps.json")],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, (
        f"{doc.name}: a snippet failed\n{r.stdout[-6000:]}\n{r.stderr[-6000:]}"
    )


def test_parser_reads_directives_and_rejects_stale_rewrites(tmp_path):
    md = tmp_path / "x.md"
    md.write_text(
        "text\n<!-- snippet: shrink 1000 => 10 -->\n```bash\necho 1000\n```\n"
        "<!-- snippet: file a.toml -->\n```toml\nk = 1\n```\n```text\nnot run\n```\n"
        "<!-- snippet: shrink 77 => 7 -->\n```python\nprint(1)\n```\n"
    )
    blocks = parse(md)
    assert [b.lang for b in blocks] == ["bash", "toml", "text", "python"]
    with pytest.raises(AssertionError, match="matches nothing"):
        steps(blocks)
    good = steps(blocks[:3])
    assert good == [
        {"kind": "bash", "where": "x.md:3", "code": "echo 10"},
        {"kind": "file", "where": "x.md:7", "name": "a.toml", "code": "k = 1"},
    ]


def test_console_blocks_run_their_commands_only(tmp_path):
    md = tmp_path / "c.md"
    md.write_text(
        "<!-- snippet: fails no such file -->\n```console\n$ cat a \\\n    b\nerror: no such file\n"
        "$ echo 2\n2\n```\n"
    )
    (step,) = steps(parse(md))
    assert step == {
        "kind": "bash",
        "where": "c.md:2",
        "code": "cat a \\\n    b\necho 2",
        "fails": "no such file",
    }
