"""Uncertainty propagation from files: input distributions in TOML, a saved model or a
``module:function``; the code behind ``pdesurrogates uq propagate``."""

from __future__ import annotations

import importlib
import io
import os
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

from pdesurrogates.errors import ConfigError

__all__ = [
    "DEFAULT_PROPAGATE_DIR",
    "load_model_or_function",
    "output_quantity",
    "propagate_from_files",
    "read_inputs",
    "recorded_inputs",
]

#: where ``uq propagate`` writes without ``-o``
DEFAULT_PROPAGATE_DIR = Path("runs/propagate")
_OUTPUT_KEYS = ("name", "units", "long_name")


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"inputs file {path} does not exist")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc


def read_inputs(
    path: str | os.PathLike, names: list[str] | None = None, *, model: str = "the model"
) -> dict[str, Any]:
    """Read input distributions from a TOML file into scipy.stats frozen distributions.

    Each input is a table ``[inputs.<name>]`` (or a top-level ``[<name>]``) with ``dist``
    and its parameters, as accepted by :func:`pdesurrogates.uq.make_distribution`::

        [inputs.k]
        dist = "uniform"
        low = 0.5
        high = 2.0

    An optional ``[output]`` table names the output for tables and figures (see
    :func:`output_quantity`); it is never an input.

    The distributions come in the order of the file, or with ``names`` (the model's
    input names, :func:`recorded_inputs`) in that order: the file must then name exactly
    those inputs, in any order (a ``ConfigError`` names the missing and unknown ones).
    """
    from pdesurrogates.uq import make_distribution

    path = Path(path)
    doc = _read_toml(path)
    table = doc.get("inputs", {k: v for k, v in doc.items() if k != "output"})
    if not isinstance(table, dict) or not table:
        raise ConfigError(f"{path}: no inputs; add tables like [inputs.x] with dist = ...")
    out = {}
    for k, spec in table.items():
        if not isinstance(spec, dict):
            raise ConfigError(f"{path}: inputs.{k} must be a table with a 'dist' key")
        try:
            out[k] = make_distribution(spec, name=f"{path}: inputs.{k}")
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
    if names is None:
        return out
    missing = [n for n in names if n not in out]
    unknown = [k for k in out if k not in names]
    if missing or unknown:
        raise ConfigError(
            f"{path}: {model} takes the inputs {list(names)}; give exactly those tables "
            "[inputs.<name>] (in any order)"
            + (f"; missing {missing}" if missing else "")
            + (f"; unknown {unknown}" if unknown else "")
        )
    return {n: out[n] for n in names}


def recorded_inputs(spec: str | os.PathLike) -> list[str] | None:
    """The input names a saved model's run records, in the model's order (the ``input``
    list of ``run.json`` in the run directory ``spec``, or in its parent for
    ``RUN/model``, else of the model's metadata); None for a ``module:function`` or a
    model that records none."""
    import json

    from pdesurrogates.runs._train import RUN_FILE

    p = Path(spec)
    if not p.exists():
        return None
    for run in (p / RUN_FILE, p.parent / RUN_FILE if p.name == "model" else None):
        if run is not None and run.is_file():
            try:
                names = json.loads(run.read_text()).get("input")
            except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
                names = None
            break
    else:
        names = _model_metadata(str(p)).get("input")
    if isinstance(names, list) and names and all(isinstance(n, str) for n in names):
        return names
    return None


def output_quantity(inputs: str | os.PathLike, model: str | None = None):
    """What the propagated output is: a :class:`~pdesurrogates._figures.Quantity`.

    From the ``[output]`` table of the inputs file (``name``, ``units``, ``long_name``),
    else from a saved model's metadata (``target`` and ``target_units`` /
    ``target_long_name`` when its run recorded them), else ``"output"`` with unknown
    units::

        [output]
        name = "T"
        units = "K"
        long_name = "peak temperature"
    """
    from pdesurrogates._figures import Quantity

    path = Path(inputs)
    spec = _read_toml(path).get("output", {})
    if not isinstance(spec, dict) or set(spec) - set(_OUTPUT_KEYS):
        raise ConfigError(
            f"{path}: [output] takes only {', '.join(_OUTPUT_KEYS)} (strings); got {spec!r}"
        )
    meta = _model_metadata(model) if model is not None else {}
    name = spec.get("name") or meta.get("target") or "output"
    return Quantity(
        str(name),
        units=str(spec.get("units", meta.get("target_units", ""))),
        long_name=str(spec.get("long_name", meta.get("target_long_name", ""))),
    )


def _model_metadata(model: str) -> dict[str, Any]:
    """The metadata of a saved model directory (empty for a function)."""
    from pdesurrogates.errors import PdeSurrogatesError
    from pdesurrogates.io import read_config

    if not Path(model).exists():
        return {}
    try:
        meta = read_config(model).get("metadata", {})
    except (PdeSurrogatesError, OSError):
        return {}
    return meta if isinstance(meta, dict) else {}


def load_model_or_function(spec: str):
    """A saved model (its directory or a run directory), a ``module:function`` or a
    ``path/to/file.py:function``.

    A module is looked up on Python's import path (``sys.path``), which holds the current
    directory only in some ways of starting Python (``python -m``, not the installed
    ``pdesurrogates`` command); the file form always works.
    """
    from pdesurrogates.io import load

    p = Path(spec)
    if p.exists():
        model = load(p)
        model.eval()
        return model
    if ":" in spec:
        mod, _, attr = spec.rpartition(":")
        module = _import_file(spec, mod) if _is_file_spec(mod) else _import_module(spec, mod)
        try:
            fn = getattr(module, attr)
        except AttributeError as exc:
            raise ValueError(f"--model {spec!r}: {mod!r} has no {attr!r} ({exc})") from exc
        if not callable(fn):
            raise ValueError(f"--model {spec!r} is not callable")
        return fn
    raise FileNotFoundError(
        f"--model {spec!r}: no such directory; give a saved model directory, "
        "module:function or path/to/file.py:function"
    )


def _is_file_spec(mod: str) -> bool:
    return mod.endswith(".py") or "/" in mod or os.sep in mod


def _import_file(spec: str, path: str):
    import importlib.util

    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"--model {spec!r}: no file {file} (from {Path.cwd()})")
    name = f"_pdesurrogates_user_{file.stem}"
    loader = importlib.util.spec_from_file_location(name, file)
    if loader is None or loader.loader is None:
        raise ValueError(f"--model {spec!r}: {file} is not a Python file")
    module = importlib.util.module_from_spec(loader)
    try:
        loader.loader.exec_module(module)
    except Exception as exc:
        raise ValueError(f"--model {spec!r}: importing {file} failed ({exc})") from exc
    return module


def _import_module(spec: str, mod: str):
    import sys

    try:
        return importlib.import_module(mod)
    except ModuleNotFoundError as exc:
        top = mod.split(".")[0]
        if exc.name not in (mod, top):
            raise ValueError(f"--model {spec!r}: importing {mod!r} failed ({exc})") from exc
        cwd = Path.cwd()
        on_path = any(Path(p or ".").resolve() == cwd.resolve() for p in sys.path)
        attr = spec.rpartition(":")[2]
        raise ValueError(
            f"--model {spec!r}: no module named {mod!r} on Python's import path (sys.path); "
            f"the current directory {cwd} is {'' if on_path else 'not '}on it. Give the "
            f"file instead: --model path/to/{top}.py:{attr}"
            + ("" if on_path else ", or add its folder to PYTHONPATH")
        ) from exc
    except ImportError as exc:
        raise ValueError(f"--model {spec!r}: importing {mod!r} failed ({exc})") from exc


def propagate_from_files(
    model: str,
    inputs: str | os.PathLike,
    n_samples: int,
    out: str | os.PathLike = DEFAULT_PROPAGATE_DIR,
    *,
    method: str = "mc",
    seed: int = 0,
    batch_size: int = 4096,
    scheduler: str | None = None,
    sobol_base: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run :func:`pdesurrogates.uq.propagate` (and optionally Sobol') and write the results.

    Writes into the directory ``out`` ``propagation.json`` (moments with standard errors,
    among them ``excess_kurtosis``; quantiles; KDE; ``meta.output``: the output's name,
    units and long name), ``outputs.npz`` (input and output samples),
    ``propagation.png`` for a scalar output, and with ``sobol_base`` ``sobol.json`` and
    ``sobol.png``.

    Returns
    -------
    dict
        ``"written"``: name -> path of every file written; ``"result"``: the
        :class:`~pdesurrogates.uq.PropagationResult`; ``"sobol"``: the
        :class:`~pdesurrogates.uq.SobolResult` or None; ``"output"``: the output's
        :class:`~pdesurrogates._figures.Quantity` (:func:`output_quantity`).
    """
    from pdesurrogates.io import atomic_write_bytes
    from pdesurrogates.surrogates._mf_checks import quiet_box
    from pdesurrogates.uq import plots, propagate, sobol_indices

    out = Path(out)
    if out.suffix in (".json", ".png", ".npz"):
        raise ValueError(f"-o {out}: give a directory; propagation.json and figures go in it")
    fn = load_model_or_function(model)
    dists = read_inputs(inputs, recorded_inputs(model), model=f"--model {model}")
    output = output_quantity(inputs, model)
    out.mkdir(parents=True, exist_ok=True)
    common = dict(seed=seed, batch_size=batch_size, scheduler=scheduler, progress=progress)
    with quiet_box() as seen:  # one bounds warning for the whole sample, not per batch
        res = propagate(fn, dists, n_samples, method=method, **common)
    seen.warn()
    res.meta.update(
        {
            "model": str(model),
            "inputs_file": str(inputs),
            "output": {k: getattr(output, k) for k in _OUTPUT_KEYS},
        }
    )
    written = {"propagation": out / "propagation.json"}
    res.to_json(written["propagation"])
    buf = io.BytesIO()
    np.savez(buf, inputs=res.inputs, outputs=res.outputs, names=np.array(res.names))
    atomic_write_bytes(out / "outputs.npz", buf.getvalue())
    written["samples"] = out / "outputs.npz"
    if res.outputs is not None and res.outputs.ndim == 1:
        _save_and_close(plots.plot_propagation(res, output=output), out / "propagation.png")
        written["figure"] = out / "propagation.png"
    sob = None
    if sobol_base:
        with quiet_box() as seen:  # Sobol's own sample: many more points
            sob = sobol_indices(fn, dists, sobol_base, **common)
        seen.warn()
        written["sobol"] = out / "sobol.json"
        sob.to_json(written["sobol"])
        _save_and_close(plots.plot_sobol(sob), out / "sobol.png")
        written["sobol_figure"] = out / "sobol.png"
    return {"written": written, "result": res, "sobol": sob, "output": output}


def _save_and_close(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    from pdesurrogates._figures import save_figure

    try:
        save_figure(fig, path)
    finally:
        plt.close(fig)
