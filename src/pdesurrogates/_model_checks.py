"""Checks of a saved model directory before anything is built or loaded.

Used by :func:`pdesurrogates.io.load`; every failure is a
:class:`~pdesurrogates.errors.CheckpointError` naming the file, the key or tensor and what
was expected:

- :func:`read_json` reads ``config.json`` with bounded size and nesting depth;
- :func:`check_spec` checks a model spec (``{"class", "config"}``) against the
  constructor's signature and annotated types, recursively for nested models;
- :func:`read_header` reads the JSON header of ``weights.safetensors`` (bounded, with its
  offsets checked) and :func:`compare_header` compares it tensor by tensor with the state
  dict of the model built from the config;
- :func:`file_sha256` is the checksum that :func:`pdesurrogates.save` stores.

torch is imported only by the functions that need it.
"""

from __future__ import annotations

import collections.abc
import functools
import hashlib
import inspect
import json
import math
import struct
import types
import typing
from pathlib import Path
from typing import Any

from pdesurrogates.errors import CheckpointError

__all__ = [
    "MAX_CONFIG_BYTES",
    "MAX_HEADER_BYTES",
    "MAX_JSON_DEPTH",
    "check_spec",
    "check_top_level",
    "compare_header",
    "file_sha256",
    "json_depth",
    "read_header",
    "read_json",
]

#: Largest ``config.json`` read (bytes).
MAX_CONFIG_BYTES = 16 * 2**20
#: Deepest nesting of lists/objects accepted in ``config.json``.
MAX_JSON_DEPTH = 64
#: Most nested model specs in one list (ensemble members).
MAX_CHILDREN = 1024
#: Largest safetensors JSON header read (bytes).
MAX_HEADER_BYTES = 64 * 2**20

#: safetensors dtype code -> (torch dtype name, bytes per element)
ST_DTYPES: dict[str, tuple[str, int]] = {
    "F64": ("float64", 8),
    "F32": ("float32", 4),
    "F16": ("float16", 2),
    "BF16": ("bfloat16", 2),
    "I64": ("int64", 8),
    "I32": ("int32", 4),
    "I16": ("int16", 2),
    "I8": ("int8", 1),
    "U8": ("uint8", 1),
    "BOOL": ("bool", 1),
    "C64": ("complex64", 8),
}
_FLOATS = {"float64", "float32", "float16", "bfloat16"}


# ----------------------------------------------------------------------- config.json
def json_depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value (a scalar has depth 0), without recursion."""
    depth, stack = 0, [(value, 0)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            stack.extend((x, d + 1) for x in v.values())
            depth = max(depth, d + 1)
        elif isinstance(v, list):
            stack.extend((x, d + 1) for x in v)
            depth = max(depth, d + 1)
    return depth


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON (write numbers as finite values)")


def read_json(path: Path) -> Any:
    """Parse ``path`` as JSON with bounded size and nesting depth; no NaN/Infinity."""
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise CheckpointError(
                f"{path}: {size} bytes is larger than the {MAX_CONFIG_BYTES} bytes a model "
                "config may hold; this is not a config written by pdesurrogates.save"
            )
        raw = path.read_bytes()[: MAX_CONFIG_BYTES + 1]
        return _parse(path, raw.decode("utf-8"))
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise CheckpointError(
            f"{path}: corrupt JSON (not UTF-8: {exc}); re-save the model"
        ) from exc


def _parse(path: Path, text: str) -> Any:
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError as exc:
        raise CheckpointError(
            f"{path}: corrupt JSON (nested deeper than {MAX_JSON_DEPTH} levels); re-save the model"
        ) from exc
    except ValueError as exc:  # JSONDecodeError and the constants above
        raise CheckpointError(f"{path}: corrupt JSON ({exc}); re-save the model") from exc
    if json_depth(value) > MAX_JSON_DEPTH:
        raise CheckpointError(
            f"{path}: corrupt JSON (nested deeper than {MAX_JSON_DEPTH} levels); re-save the model"
        )
    return value


def check_top_level(cfg_path: Path, config: dict, dtypes: tuple[str, ...]) -> None:
    """Check the keys of ``config.json`` around the model spec."""
    checks = (
        ("class", lambda v: isinstance(v, str), "the model class name (a string)"),
        ("config", lambda v: isinstance(v, dict), "the constructor config (an object)"),
        ("metadata", lambda v: isinstance(v, dict), "an object"),
        ("dtype", lambda v: v is None or v in dtypes, f"null or one of {list(dtypes)}"),
        (
            "weights_sha256",
            lambda v: (
                isinstance(v, str) and len(v) == 64 and all(c in "0123456789abcdef" for c in v)
            ),
            "the SHA-256 of weights.safetensors (64 hex digits)",
        ),
    )
    for key, ok, expected in checks:
        if key in ("class", "config") and key not in config:
            raise CheckpointError(
                f"{cfg_path}: missing key {key!r} ({expected}); re-save the model"
            )
        if key in config and not ok(config[key]):
            raise CheckpointError(
                f"{cfg_path}: key {key!r} must be {expected}, got {repr(config[key])[:80]}"
            )


# ------------------------------------------------------------------- spec vs signature
def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


def _hint_name(hint: Any) -> str:
    if hint is type(None):
        return "null"
    if isinstance(hint, type):
        return "model spec" if _is_module(hint) else hint.__name__
    return str(hint).replace("typing.", "").replace("collections.abc.", "")


def _is_module(hint: Any) -> bool:
    import torch

    return isinstance(hint, type) and issubclass(hint, torch.nn.Module)


def _matches(value: Any, hint: Any, check_child, path: str) -> bool:
    """Does the JSON value ``value`` fit the annotation ``hint``? Unknown hints fit.

    A value annotated as an ``nn.Module`` is a nested model spec: ``check_child(value,
    path)`` checks it.
    """
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any or hint is inspect.Parameter.empty:
        return True
    if hint is None or hint is type(None):
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, h, check_child, path) for h in args)
    if origin is typing.Literal:
        return value in args
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if _is_module(hint):
        if not isinstance(value, dict):
            return False
        check_child(value, path)
        return True
    if origin in (list, tuple, collections.abc.Sequence) or hint in (
        list,
        tuple,
        collections.abc.Sequence,
    ):
        if not isinstance(value, list | tuple):
            return False
        if not args:
            return True
        item = args[0]
        if _is_module(item) and len(value) > MAX_CHILDREN:
            raise CheckpointError(
                f"{path}: {len(value)} nested models, more than the supported maximum of "
                f"{MAX_CHILDREN}"
            )
        return all(_matches(v, item, check_child, f"{path}[{i}]") for i, v in enumerate(value))
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    return True


@functools.lru_cache(maxsize=256)
def _signature(cls: type) -> tuple[dict[str, inspect.Parameter], dict[str, Any], bool]:
    sig = inspect.signature(cls.__init__)
    params = {
        n: p
        for n, p in list(sig.parameters.items())[1:]
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }
    var_kw = any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # unresolvable annotations: check names only
        hints = {}
    return params, hints, var_kw


def check_spec(spec: Any, lookup, where: str, key: str = "") -> None:
    """Check a model spec against its class's constructor, recursively.

    ``lookup(name)`` returns the registered class or ``None``; ``where`` names the file
    and ``key`` the position of ``spec`` inside it (``""`` for the top level).
    """
    at = f"{where}: {key + ': ' if key else ''}"
    if not isinstance(spec, dict) or not isinstance(spec.get("config"), dict):
        raise CheckpointError(
            f"{at}expected a model spec {{'class': name, 'config': {{...}}}}, got "
            f"{_describe(spec)}; re-save the model"
        )
    name = spec.get("class")
    cls = lookup(name) if isinstance(name, str) else None
    if cls is None:
        raise CheckpointError(f"{at}unknown model class {name!r}")
    config = spec["config"]
    params, hints, var_kw = _signature(cls)
    prefix = f"{key}.config" if key else "config"
    unknown = sorted(set(config) - set(params))
    if unknown and not var_kw:
        raise CheckpointError(
            f"{at}unknown key(s) {unknown} in the {name} config; {name} takes "
            f"{sorted(params)}; re-save the model with this pdesurrogates"
        )
    required = [n for n, p in params.items() if p.default is inspect.Parameter.empty]
    missing = [n for n in required if n not in config]
    if missing:
        raise CheckpointError(f"{at}missing required key(s) {missing} in the {name} config")
    for k, value in config.items():
        hint = hints.get(k, inspect.Parameter.empty)
        path = f"{prefix}.{k}"

        def child(v, p):
            check_spec(v, lookup, where, p)

        try:
            fits = _matches(value, hint, child, path)
        except CheckpointError as exc:
            if str(exc).startswith(where):
                raise
            raise CheckpointError(f"{where}: key {exc}") from exc
        if not fits:
            raise CheckpointError(
                f"{where}: key {path!r} of the {name} config: expected {_hint_name(hint)}, "
                f"got {_describe(value)}"
            )


# ------------------------------------------------------------------ weights.safetensors
def read_header(path: Path) -> dict[str, dict]:
    """The tensor table of a safetensors file: ``name -> {"dtype", "shape", ...}``.

    Checks the header length against the file size, the JSON, every dtype, shape and
    data offset (each tensor's byte count equals its shape times its element size, and
    the tensors tile the data section).
    """
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise CheckpointError(
                    f"{path}: truncated ({size} bytes; no safetensors header); re-save the model"
                )
            (n,) = struct.unpack("<Q", head)
            if n > min(size - 8, MAX_HEADER_BYTES):
                raise CheckpointError(
                    f"{path}: the header declares {n} bytes but the file holds {size - 8} "
                    f"after the length field (limit {MAX_HEADER_BYTES}); the file is corrupt "
                    "or truncated, re-save the model"
                )
            raw = fh.read(n)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read the weights ({exc})") from exc
    try:
        header = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise CheckpointError(
            f"{path}: corrupt safetensors header ({exc}); the file is corrupt, re-save the model"
        ) from exc
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: corrupt safetensors header (not a JSON object)")
    header.pop("__metadata__", None)
    _check_offsets(path, header, size - 8 - n)
    return header


def _check_offsets(path: Path, header: dict, data_bytes: int) -> None:
    spans = []
    for name, entry in header.items():
        bad = f"{path}: corrupt safetensors header: tensor {name!r}"
        if not isinstance(entry, dict) or entry.get("dtype") not in ST_DTYPES:
            raise CheckpointError(f"{bad} has an unknown dtype ({_describe(entry)})")
        shape, offs = entry.get("shape"), entry.get("data_offsets")
        if not (
            isinstance(shape, list)
            and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)
        ):
            raise CheckpointError(f"{bad} has an invalid shape {shape!r}")
        if not (
            isinstance(offs, list)
            and len(offs) == 2
            and all(isinstance(o, int) and not isinstance(o, bool) for o in offs)
            and 0 <= offs[0] <= offs[1] <= data_bytes
        ):
            raise CheckpointError(f"{bad} has data offsets {offs!r} outside the file")
        nbytes = math.prod(shape) * ST_DTYPES[entry["dtype"]][1]
        if offs[1] - offs[0] != nbytes:
            raise CheckpointError(
                f"{bad}: {entry['dtype']} {shape} needs {nbytes} bytes but its data spans "
                f"{offs[1] - offs[0]}"
            )
        spans.append(tuple(offs))
    end = 0
    for lo, hi in sorted(spans):
        if lo != end:
            raise CheckpointError(f"{path}: corrupt safetensors header: tensor data overlap/gap")
        end = hi
    if end != data_bytes:
        raise CheckpointError(
            f"{path}: {data_bytes - end} bytes after the last tensor; the file is corrupt"
        )


def compare_header(path: Path, header: dict[str, dict], expected: dict, cls_name: str) -> list:
    """Compare the tensor table with the built model's state dict ``expected``.

    Returns the names of floating tensors stored in another floating dtype (cast on load);
    raises for a missing or extra tensor, a wrong shape or a non-float/float mismatch.
    """
    missing = sorted(set(expected) - set(header))
    extra = sorted(set(header) - set(expected))
    if missing or extra:
        raise CheckpointError(
            f"{path}: weights do not match a {cls_name} built from config.json "
            f"(missing: {missing[:5]}, unexpected: {extra[:5]}); the weights belong to another "
            "model or the config was edited"
        )
    cast = []
    for name, t in expected.items():
        entry = header[name]
        if list(entry["shape"]) != list(t.shape):
            raise CheckpointError(
                f"{path}: tensor {name!r} has shape {entry['shape']} but a {cls_name} built "
                f"from config.json expects {list(t.shape)} (wrong shape)"
            )
        stored = ST_DTYPES[entry["dtype"]][0]
        want = str(t.dtype).removeprefix("torch.")
        if stored != want:
            if stored in _FLOATS and want in _FLOATS:
                cast.append(name)
            else:
                raise CheckpointError(
                    f"{path}: tensor {name!r} is stored as {entry['dtype']} ({stored}) but the "
                    f"model expects {want}; the file is corrupt or was edited, re-save the model"
                )
    return cast


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(2**20), b""):
            h.update(block)
    return h.hexdigest()
