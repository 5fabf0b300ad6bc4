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

__all__ = ["load_model_or_function", "propagate_from_files", "read_inputs"]


def read_inputs(path: str | os.PathLike) -> dict[str, Any]:
    """Read input distributions from a TOML file into scipy.stats frozen distributions.

    Each input is a table ``[inputs.<name>]`` (or a top-level ``[<name>]``) with ``dist``
    and its parameters, as accepted by :func:`pdesurrogates.uq.make_distribution`::

        [inputs.k]
        dist = "uniform"
        low = 0.5
        high = 2.0
    """
    from pdesurrogates.uq import make_distribution

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"inputs file {path} does not exist")
    try:
        doc = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    table = doc.get("inputs", doc)
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
    return out


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
    out: str | os.PathLike,
    *,
    method: str = "mc",
    seed: int = 0,
    batch_size: int = 4096,
    scheduler: str | None = None,
    sobol_base: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run :func:`pdesurrogates.uq.propagate` (and optionally Sobol') and write the results.

    Writes ``propagation.json`` (moments, standard errors, quantiles, KDE), ``outputs.npz``
    (input and output samples), ``propagation.png`` for a scalar output, and with
    ``sobol_base`` ``sobol.json`` and ``sobol.png``.

    Returns
    -------
    dict
        ``"written"``: name -> path of every file written; ``"result"``: the
        :class:`~pdesurrogates.uq.PropagationResult`; ``"sobol"``: the
        :class:`~pdesurrogates.uq.SobolResult` or None.
    """
    from pdesurrogates.io import atomic_write_bytes
    from pdesurrogates.uq import plots, propagate, sobol_indices

    fn = load_model_or_function(model)
    dists = read_inputs(inputs)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    common = dict(seed=seed, batch_size=batch_size, scheduler=scheduler, progress=progress)
    res = propagate(fn, dists, n_samples, method=method, **common)
    res.meta.update({"model": str(model), "inputs_file": str(inputs)})
    written = {"propagation": out / "propagation.json"}
    res.to_json(written["propagation"])
    buf = io.BytesIO()
    np.savez(buf, inputs=res.inputs, outputs=res.outputs, names=np.array(res.names))
    atomic_write_bytes(out / "outputs.npz", buf.getvalue())
    written["samples"] = out / "outputs.npz"
    if res.outputs is not None and res.outputs.ndim == 1:
        plots.plot_propagation(res).savefig(out / "propagation.png", dpi=120)
        written["figure"] = out / "propagation.png"
    sob = None
    if sobol_base:
        sob = sobol_indices(fn, dists, sobol_base, **common)
        written["sobol"] = out / "sobol.json"
        sob.to_json(written["sobol"])
        plots.plot_sobol(sob).savefig(out / "sobol.png", dpi=120)
        written["sobol_figure"] = out / "sobol.png"
    return {"written": written, "result": res, "sobol": sob}
