"""Saving and loading models: ``config.json`` + ``weights.safetensors``, never pickle.

A saved model is a directory::

    model/
      config.json          # format, package version, class name, init config, dtype, metadata
      weights.safetensors  # the state dict

A *run directory* (written by ``pdesurrogates train``) holds the model in ``model/``;
:func:`load` accepts either directory.

A model class takes part by being registered (:func:`register_model`) and by offering
``get_config() -> dict`` (JSON-serialisable keyword arguments of ``__init__``) and, when
``cls(**config)`` is not enough, a ``from_config`` classmethod. Models that hold other
models (ensembles, normalising wrappers) store them with :func:`model_spec` and rebuild
them with :func:`build_model`.

The built-in model classes need not be imported before :func:`load`: the table
:data:`BUILTIN_MODELS` maps each class name to the module that defines it, and
:func:`build_model` imports that module the first time it meets the name. Loading a
model therefore works in a fresh process, whatever was imported before.

Writes are atomic: the directory is assembled under a temporary name next to the target
and renamed into place, so a crash never leaves a half-written model at ``directory``.

For example:

>>> import tempfile, torch
>>> from pdesurrogates.io import register_model, save, load
>>> @register_model
... class Scale(torch.nn.Module):
...     def __init__(self, *, factor=2.0):
...         super().__init__()
...         self.factor = factor
...         self.w = torch.nn.Parameter(torch.tensor(factor))
...     def get_config(self):
...         return {"factor": self.factor}
...     def forward(self, x):
...         return self.w * x
>>> d = tempfile.mkdtemp()
>>> _ = save(Scale(factor=3.0), d + "/m")
>>> load(d + "/m")(torch.ones(1)).item()
3.0
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pdesurrogates._files import atomic_replace, unique_partial
from pdesurrogates._version import __version__
from pdesurrogates.errors import CheckpointError, ConfigError

if TYPE_CHECKING:  # torch is imported by the functions that need it: `import pdesurrogates`
    import torch  # stays light

__all__ = [
    "BUILTIN_MODELS",
    "DEFAULT_MAX_PARAMETERS",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MAX_PARAMETERS_ENV",
    "MODEL_DIR",
    "atomic_write_bytes",
    "atomic_write_text",
    "build_model",
    "estimate_parameters",
    "load",
    "model_directory",
    "model_spec",
    "parameter_limit",
    "read_config",
    "register_model",
    "registered_models",
    "save",
]

FORMAT_NAME = "pdesurrogates-model"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"

MODEL_DIR = "model"

#: Largest model :func:`load` builds, in stored elements (parameters and buffers), unless
#: ``max_parameters=`` or the environment variable :data:`MAX_PARAMETERS_ENV` says otherwise.
DEFAULT_MAX_PARAMETERS = 2_000_000_000
#: Environment variable holding the default limit of :func:`load` (an integer, e.g. ``4e9``).
MAX_PARAMETERS_ENV = "PDESURROGATES_MAX_PARAMETERS"
_DTYPES = ("float16", "bfloat16", "float32", "float64")

_REGISTRY: dict[str, type] = {}

#: Class name -> module that defines (and registers) it, for every built-in model class.
#: :func:`build_model` imports the module the first time it meets the name, so loading
#: does not depend on what was imported before.
BUILTIN_MODELS: dict[str, str] = {
    "ConjugateDirectionNet": "pdesurrogates.surrogates._dcdm_net",
    "CoKrigingGP": "pdesurrogates.surrogates._cokriging",
    "DeepONet": "pdesurrogates.surrogates._deeponet",
    "Ensemble": "pdesurrogates.surrogates._ensemble",
    "FNO": "pdesurrogates.surrogates._fno",
    "LearnedVCycle": "pdesurrogates.surrogates._dcdm_net",
    "MgNO": "pdesurrogates.surrogates._mgno",
    "MultiFidelityNet": "pdesurrogates.surrogates._mfnet",
    "NeuralIncompleteCholesky": "pdesurrogates.surrogates._neural_if",
    "NeuralAMG": "pdesurrogates.surrogates._learned_amg",
    "NormalizedModel": "pdesurrogates.surrogates._normalized",
    "Normalizer": "pdesurrogates.surrogates._normalizer",
}
# imported when a name is neither registered nor found through the table
_BUILTIN_PACKAGE = "pdesurrogates.surrogates"


def register_model(cls: type[torch.nn.Module]) -> type[torch.nn.Module]:
    """Class decorator: make ``cls`` loadable by :func:`load` under its class name."""
    name = cls.__name__
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise ValueError(
            f"a model class named {name!r} is already registered "
            f"({_REGISTRY[name].__module__}); give the new class another name"
        )
    _REGISTRY[name] = cls
    return cls


def registered_models() -> dict[str, type[torch.nn.Module]]:
    """A copy of the registry: class name -> class."""
    return dict(_REGISTRY)


def _lookup(name: str) -> type[torch.nn.Module] | None:
    """The registered class ``name``, importing its built-in module on first use."""
    cls = _REGISTRY.get(name)
    if cls is not None:
        return cls
    module = BUILTIN_MODELS.get(name)
    if module is not None:
        try:
            importlib.import_module(module)
        except ImportError:  # moved: the package import below registers every class
            pass
        if name not in _REGISTRY:
            importlib.import_module(_BUILTIN_PACKAGE)
    return _REGISTRY.get(name)


def model_spec(model: torch.nn.Module) -> dict[str, Any]:
    """JSON-serialisable ``{"class": name, "config": {...}}`` describing ``model``."""
    cls = type(model)
    if _REGISTRY.get(cls.__name__) is not cls:
        raise CheckpointError(
            f"cannot save a {cls.__module__}.{cls.__name__}: the class is not registered; "
            "decorate it with pdesurrogates.io.register_model"
        )
    get_config = getattr(model, "get_config", None)
    if get_config is None:
        raise CheckpointError(f"cannot save a {cls.__name__}: it has no get_config() method")
    config = get_config()
    try:
        json.dumps(config)
    except TypeError as exc:
        raise CheckpointError(
            f"{cls.__name__}.get_config() returned a value that is not JSON-serialisable: {exc}"
        ) from exc
    return {"class": cls.__name__, "config": config}


def build_model(spec: dict[str, Any]) -> torch.nn.Module:
    """Instantiate a model from a :func:`model_spec` dictionary (weights untouched).

    Any failure of the constructor on the stored config (a bad value, a wrong type) is
    a :class:`~pdesurrogates.errors.CheckpointError` chaining the original exception.
    """
    cls, name = _spec_class(spec)
    return _construct(cls, name, spec["config"])


def _spec_class(spec: Any) -> tuple[type, str]:
    if (
        not isinstance(spec, dict)
        or "class" not in spec
        or not isinstance(spec.get("config"), dict)
    ):
        raise CheckpointError(
            "a model spec must be a dict with keys 'class' and 'config' (a dict); got "
            + repr(spec)[:200]
        )
    name = spec["class"]
    cls = _lookup(name) if isinstance(name, str) else None
    if cls is None:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise CheckpointError(
            f"unknown model class {str(name)[:100]!r}; registered classes: {known}. "
            "Was it saved by a newer pdesurrogates, or by code that registers its own class? "
            "Import that code before loading."
        )
    return cls, name


_BUILD_ERRORS = (
    TypeError,
    ValueError,
    KeyError,
    IndexError,
    AttributeError,
    RuntimeError,
    OverflowError,
    MemoryError,
    NotImplementedError,
    RecursionError,
)


def _construct(cls: type, name: str, config: dict) -> torch.nn.Module:
    from_config = getattr(cls, "from_config", None)
    try:
        return from_config(config) if from_config else cls(**config)
    except CheckpointError:
        raise
    except _BUILD_ERRORS as exc:
        raise CheckpointError(f"cannot rebuild {name} from its saved config: {exc}") from exc


def estimate_parameters(spec: dict[str, Any]) -> int | None:
    """Elements (parameters and buffers) of the state dict a :func:`build_model` of
    ``spec`` would hold, computed without allocating them.

    A class may offer a classmethod ``estimate_parameters(config) -> int``; otherwise the
    model is built on PyTorch's ``meta`` device (shapes only, no memory). Returns ``None``
    when a class cannot be built on the meta device and has no estimate.

    Raises
    ------
    CheckpointError
        If the config is invalid for its class.
    """
    import torch

    cls, name = _spec_class(spec)
    estimate = getattr(cls, "estimate_parameters", None)
    if estimate is not None:
        try:
            return int(estimate(spec["config"]))
        except CheckpointError:
            raise
        except _BUILD_ERRORS as exc:
            raise CheckpointError(f"cannot rebuild {name} from its saved config: {exc}") from exc
    try:
        with torch.device("meta"):
            model = _construct(cls, name, spec["config"])
    except CheckpointError as exc:
        cause = exc.__cause__
        if isinstance(cause, RuntimeError | NotImplementedError) and "meta" in str(cause):
            return None  # needs real values to build: no estimate
        raise
    return sum(t.numel() for t in model.state_dict().values())


def parameter_limit(value: int | float | None = None) -> int:
    """The parameter limit of :func:`load`: ``value``, else the environment variable
    :data:`MAX_PARAMETERS_ENV`, else :data:`DEFAULT_MAX_PARAMETERS`."""
    source = "max_parameters"
    if value is None:
        text = os.environ.get(MAX_PARAMETERS_ENV)
        if text is None or not text.strip():
            return DEFAULT_MAX_PARAMETERS
        source = f"the environment variable {MAX_PARAMETERS_ENV}"
        try:
            value = float(text)
        except ValueError:
            raise ConfigError(
                f"{source} must be a number of parameters (e.g. 2e9), got {text!r}"
            ) from None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not value >= 1
        or value == float("inf")
    ):
        raise ConfigError(
            f"{source} must be a positive number of parameters (e.g. 2e9), got {value!r}"
        )
    return int(value)


def _model_dtype(model: torch.nn.Module) -> str | None:
    for t in list(model.parameters()) + list(model.buffers()):
        if t.is_floating_point():
            return str(t.dtype).removeprefix("torch.")
    return None


def save(
    model: torch.nn.Module, directory: str | os.PathLike, *, metadata: dict | None = None
) -> Path:
    """Save ``model`` to ``directory`` (created or atomically replaced).

    Parameters
    ----------
    model : torch.nn.Module
        A registered model with ``get_config()``.
    directory : path
        Target directory. An existing directory is replaced only once the new one is
        complete.
    metadata : dict, optional
        Extra JSON-serialisable information stored in ``config.json`` (training summary,
        data provenance, ...). Read it back with :func:`read_config`.

    Returns
    -------
    pathlib.Path
        The directory written.
    """
    from safetensors.torch import save_file

    directory = Path(directory)
    spec = model_spec(model)
    config = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "pdesurrogates_version": __version__,
        **spec,
        "dtype": _model_dtype(model),
        "metadata": metadata or {},
    }
    try:
        json.dumps(config)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"metadata for {directory} is not JSON-serialisable: {exc}") from exc
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(
        tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".partial", dir=directory.parent)
    )
    try:
        # copies: tied weights would otherwise share storage, which safetensors refuses
        state = {
            k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()
        }
        save_file(state, str(tmp / WEIGHTS_FILE), metadata={"format": FORMAT_NAME})
        from pdesurrogates._model_checks import file_sha256

        config["weights_sha256"] = file_sha256(tmp / WEIGHTS_FILE)
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True))
        for f in tmp.iterdir():
            _fsync_file(f)
        _replace_dir(tmp, directory)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return directory


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _replace_dir(src: Path, dst: Path) -> None:
    """Move directory ``src`` to ``dst``, replacing ``dst`` only after ``src`` is complete."""
    if dst.exists():
        old = dst.with_name(f".{dst.name}.old-{os.getpid()}")
        os.replace(dst, old)
        os.replace(src, dst)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(src, dst)


def read_config(directory: str | os.PathLike) -> dict[str, Any]:
    """Read and check ``config.json`` of a saved model (or run) directory.

    The file is read with bounded size (16 MiB) and nesting depth (64); its top-level
    keys are checked (format, version, ``class`` a string, ``config`` and ``metadata``
    objects, ``dtype`` a float dtype name).
    """
    from pdesurrogates._model_checks import check_top_level, read_json

    directory = model_directory(directory)
    cfg_path = directory / CONFIG_FILE
    if not cfg_path.is_file():
        raise CheckpointError(
            f"{directory}: missing {CONFIG_FILE}; this is not a saved pdesurrogates model"
        )
    config = read_json(cfg_path)
    found = config.get("format") if isinstance(config, dict) else None
    if found != FORMAT_NAME:
        raise CheckpointError(
            f"{cfg_path}: not a pdesurrogates model (format is {str(found)[:100]!r}, "
            f"expected {FORMAT_NAME!r})"
        )
    version = config.get("format_version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise CheckpointError(
            f"{cfg_path}: model format version {str(version)[:100]!r} is not supported "
            f"(this pdesurrogates reads version {FORMAT_VERSION}); upgrade pdesurrogates"
        )
    check_top_level(cfg_path, config, _DTYPES)
    return config


def _listing(directory: Path, limit: int = 8) -> str:
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in directory.iterdir())
    if not names:
        return "nothing (the directory is empty)"
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def model_directory(path: str | os.PathLike) -> Path:
    """The model directory of ``path``: ``path`` itself, or ``path/model`` for a run.

    Raises
    ------
    CheckpointError
        If ``path`` is neither a saved model (``config.json`` + ``weights.safetensors``)
        nor a run directory holding one in ``model/``; the message lists what it holds.
    """
    directory = Path(path)
    if not directory.is_dir():
        raise CheckpointError(
            f"{directory}: no such model directory; pass a directory written by "
            "pdesurrogates.save (it holds config.json and weights.safetensors) or a run "
            f"directory written by `pdesurrogates train` (it holds {MODEL_DIR}/)"
        )
    if (directory / CONFIG_FILE).is_file():
        return directory
    if (directory / MODEL_DIR / CONFIG_FILE).is_file():
        return directory / MODEL_DIR
    if (directory / WEIGHTS_FILE).is_file():
        raise CheckpointError(
            f"{directory}: missing {CONFIG_FILE} beside {WEIGHTS_FILE}; the save did not "
            "complete or the file was removed: re-save the model"
        )
    if (directory / "run.json").is_file():
        raise CheckpointError(
            f"{directory}: a training run without a finished model (no {MODEL_DIR}/"
            f"{CONFIG_FILE}); finish it with `pdesurrogates train ... --resume`"
        )
    raise CheckpointError(
        f"{directory}: neither a saved model nor a run directory. Found: "
        f"{_listing(directory)}. Expected {CONFIG_FILE} and {WEIGHTS_FILE} (a model saved "
        f"by pdesurrogates.save) or {MODEL_DIR}/ holding them (a run of `pdesurrogates train`)"
    )


def load(
    directory: str | os.PathLike,
    *,
    map_location: str | torch.device = "cpu",
    max_parameters: int | float | None = None,
) -> torch.nn.Module:
    """Rebuild a model saved with :func:`save`. Never unpickles.

    Everything is checked before memory is allocated: ``config.json`` against the
    constructor's signature and types, the size of the model it describes against
    ``max_parameters``, the weights file against the checksum stored at save time, and
    every tensor's name, dtype and shape in the safetensors header against the model.
    Floating weights stored in another floating dtype (e.g. float64 weights for a
    float32 model) are cast, with a note in the log.

    Parameters
    ----------
    directory : path
        The model directory, or a run directory holding it in ``model/``.
    map_location : str or torch.device
        Device of the returned model.
    max_parameters : int or float, optional
        Largest model built, in stored elements (parameters and buffers). Default: the
        environment variable ``PDESURROGATES_MAX_PARAMETERS``, else 2e9.

    Raises
    ------
    CheckpointError
        If the directory is missing, corrupt, truncated, of another format, names an
        unknown class, holds a config that does not fit its class, describes a model
        larger than ``max_parameters``, or holds weights that do not match the model.
        The message names the file and the key or tensor.
    """
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from pdesurrogates import _model_checks as checks
    from pdesurrogates._progress import logger

    limit = parameter_limit(max_parameters)
    directory = model_directory(directory)
    config = read_config(directory)
    cfg_path, weights = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"{directory}: missing {WEIGHTS_FILE}; the save did not complete")
    spec = {"class": config["class"], "config": config["config"]}
    checks.check_spec(spec, _lookup, str(cfg_path))
    try:
        n = estimate_parameters(spec)
    except CheckpointError as exc:
        raise CheckpointError(f"{cfg_path}: {exc}") from exc
    if n is not None and n > limit:
        raise CheckpointError(
            f"{cfg_path}: the {spec['class']} it describes would hold {n:,} parameters, more "
            f"than the limit of {limit:,}; if you trust this file, raise the limit with "
            f"load(..., max_parameters=...) or the environment variable {MAX_PARAMETERS_ENV}"
        )
    _verify_checksum(config, weights, checks)
    header = checks.read_header(weights)
    try:
        model = build_model(spec)
    except CheckpointError as exc:
        raise CheckpointError(f"{cfg_path}: {exc}") from exc
    if config.get("dtype"):
        model = model.to(getattr(torch, config["dtype"]))
    expected = model.state_dict()
    cast = checks.compare_header(weights, header, expected, spec["class"])
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
        raise CheckpointError(
            f"{weights}: cannot read the weights ({exc}); the file is corrupt or truncated, "
            "re-save the model"
        ) from exc
    if cast:
        stored = sorted({str(state[k].dtype).removeprefix("torch.") for k in cast})
        logger.warning(
            "%s: %d tensor(s) stored as %s (%s) cast to the %s's dtype",
            weights,
            len(cast),
            "/".join(stored),
            ", ".join(cast[:3]) + (", ..." if len(cast) > 3 else ""),
            spec["class"],
        )
        for name in cast:
            state[name] = state[name].to(expected[name].dtype)
    model.load_state_dict(state, strict=True)
    model.eval()
    return model.to(map_location)


def _verify_checksum(config: dict, weights: Path, checks) -> None:
    recorded = config.get("weights_sha256")
    if recorded is None:  # saved before checksums were recorded
        return
    try:
        found = checks.file_sha256(weights)
    except OSError as exc:
        raise CheckpointError(f"{weights}: cannot read the weights ({exc})") from exc
    if found != recorded:
        raise CheckpointError(
            f"{weights}: checksum mismatch (SHA-256 differs from the one recorded in "
            f"{CONFIG_FILE}): the file is corrupt or truncated, or was changed after saving; "
            "re-save the model"
        )


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a uniquely named file in the same directory, flushed
    to disk and renamed over ``path`` (:func:`pdesurrogates._files.atomic_replace`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = unique_partial(path)
    try:
        with open(tmp, "xb") as fh:
            fh.write(data)
        atomic_replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Text version of :func:`atomic_write_bytes` (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"))
