"""Seeded mutation fuzzing of saved model directories.

:func:`fuzz_models` saves a small model of every built-in family, then for each case
copies one of them, damages the copy (``config.json``: deleted keys, swapped types, huge
numbers, deep nesting, unicode, wrong class names, truncation; ``weights.safetensors``:
truncation, flipped bytes in the header and the data, dtype and shape edits in the
header; malicious pickles as the weights, the config or extra files) and calls
:func:`pdesurrogates.load` and a forward pass. Every case is reproducible from
``(seed, index)``.

Outcomes:

- ``rejected_clearly``: a :class:`~pdesurrogates.errors.CheckpointError` naming the
  case directory;
- ``accepted_correct``: loaded, and the outputs equal those of the model the (possibly
  edited) config describes with the original weights: for damaged weights alone, the
  original model's outputs;
- ``traceback``: any other exception; ``hang``: a case over ``hang_seconds``;
  ``silent_acceptance``: loaded with other outputs; ``pickle_executed``: a marker file
  written by a pickle appeared. ``crash`` stays 0 (the cases run in-process).
"""

from __future__ import annotations

import copy
import json
import pickle
import shutil
import struct
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

import pdesurrogates
from pdesurrogates import io
from pdesurrogates._model_checks import file_sha256
from pdesurrogates.errors import CheckpointError

__all__ = ["fuzz_models", "small_models"]

_BAD = ("traceback", "crash", "hang", "silent_acceptance", "pickle_executed")


def small_models() -> dict[str, tuple[torch.nn.Module, tuple]]:
    """A small model of every built-in family, with inputs for its forward pass."""
    from pdesurrogates import surrogates as s

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)

    def mgno(seed):
        torch.manual_seed(seed)
        return s.MgNO(channels=4, levels=2, layers=1, base_resolution=8)

    field = torch.randn(2, 1, 8, 8, generator=g)
    don = s.DeepONet(lengths=[2.0, 1.5], duration=0.01, fmax=500.0, width=8, depth=2, latent=4)
    xq = torch.cat([torch.rand(2, 5, 2, generator=g), 0.01 * torch.rand(2, 5, 1, generator=g)], -1)
    x_lo = np.linspace(0, 1, 8)[:, None]
    x_hi = x_lo[[0, 3, 5, 7]]

    def forrester(x):
        return (6 * x - 2) ** 2 * np.sin(12 * x - 4)

    ck = s.CoKrigingGP(n_restarts=1).fit(
        x_lo, 0.5 * forrester(x_lo) + 10 * x_lo - 5, x_hi, forrester(x_hi)
    )
    return {
        "MgNO": (mgno(0), (field,)),
        "FNO": (s.FNO(n_modes=3, hidden_channels=4, n_layers=1), (torch.randn(2, 1, 8, 8),)),
        "DeepONet": (don, (don.encode_source(torch.tensor([[0.7, 0.6], [1.1, 0.9]])).float(), xq)),
        "ConjugateDirectionNet": (s.ConjugateDirectionNet(dim=2, width=4), (field,)),
        "LearnedVCycle": (s.LearnedVCycle(dim=2, coarse_cells=4), (field,)),
        "NeuralIncompleteCholesky": (s.NeuralIncompleteCholesky(latent=4, rounds=1), _graph()),
        "NeuralAMG": (s.NeuralAMG(latent=4, rounds=1), _graph()[:4]),
        "MultiFidelityNet": (
            s.MultiFidelityNet(in_dim=3, n_levels=2, low_width=4, corr_width=4),
            (torch.rand(5, 3, generator=g),),
        ),
        "CoKrigingGP": (ck, (torch.rand(5, 1, generator=g, dtype=torch.float64),)),
        "Ensemble": (s.Ensemble([mgno(0), mgno(1)]), (field,)),
        "NormalizedModel": (
            s.NormalizedModel(
                mgno(2),
                input_normalizer=s.Normalizer(mean=1.0, std=2.0),
                output_normalizer=s.Normalizer(mean=-0.5, std=0.1),
            ),
            (field,),
        ),
        "Normalizer": (s.Normalizer(mean=[1.0], std=[3.0]), (field,)),
    }


def _graph() -> tuple:
    """The input tensors of a graph model for a small Poisson matrix."""
    from pdesurrogates.solvers import gallery
    from pdesurrogates.surrogates._neural_if import matrix_graph

    g = matrix_graph(gallery.poisson2d(4))
    return (g.node, g.edge, g.row, g.col, g.lower)


# ------------------------------------------------------------------------- pickles
class _Marker:
    """Unpickling this object creates the file ``path`` (it must never happen)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def _pickle(marker: Path) -> bytes:
    return pickle.dumps({"state_dict": _Marker(str(marker))}, protocol=2)


# ------------------------------------------------------------------ config mutations
def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path inside a JSON value."""
    out = []
    if isinstance(value, dict):
        for k, v in value.items():
            out.append((*prefix, k))
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.append((*prefix, i))
            out.extend(_paths(v, (*prefix, i)))
    return out


def _get(obj, path):
    for p in path:
        obj = obj[p]
    return obj


_SWAPS = [
    "text",
    "",
    [1, 2],
    [],
    {"a": 1},
    {},
    None,
    True,
    False,
    1.5,
    -1,
    0,
    [["MgNO"]],
    {"class": "MgNO", "config": {}},
]
_HUGE = [10**5, 10**6, 10**7, 10**9, 10**12, 10**19, 10**40, -(10**9), 1e300, 2**31, 2**63]
_NAMES = ["NoSuchModel", "", "torch.nn.Linear", "os.system", "__import__", "mgno", "MgNO ", "Ω"]


def _mutate_config(cfg: dict, rng, family_names: list[str]) -> tuple[dict | str, str]:
    """A mutated config (a dict, or raw text) and a description."""
    cfg = copy.deepcopy(cfg)
    paths = [p for p in _paths(cfg) if p[0] != "metadata"]
    kind = rng.choice(["delete", "swap", "huge", "deep", "unicode", "class", "text", "many"])
    path = paths[rng.integers(len(paths))]
    parent = _get(cfg, path[:-1])
    if kind == "delete" and isinstance(parent, dict):
        del parent[path[-1]]
        return cfg, f"config: delete {path}"
    if kind == "swap":
        value = copy.deepcopy(_SWAPS[rng.integers(len(_SWAPS))])
        parent[path[-1]] = value
        return cfg, f"config: {path} = {value!r}"
    if kind == "huge":
        ints = [p for p in paths if isinstance(_get(cfg, p), int | float)]
        path = ints[rng.integers(len(ints))] if ints else path
        value = _HUGE[rng.integers(len(_HUGE))]
        _get(cfg, path[:-1])[path[-1]] = value
        return cfg, f"config: {path} = {value!r}"
    if kind == "deep":
        depth = int(rng.choice([50, 70, 500, 5000, 200000]))
        nest = '"config": {"nest": ' + "[" * depth + "]" * depth + ", "
        text = json.dumps(cfg).replace('"config": {', nest, 1)
        return text, f"config: nesting of depth {depth}"
    if kind == "unicode":
        junk = "".join(chr(int(c)) for c in rng.integers(0x80, 0x2FFF, size=6))
        if isinstance(parent, dict):
            parent[junk] = parent.pop(path[-1])
        return cfg, f"config: key {path} renamed {junk!r}"
    if kind == "class":
        names = _NAMES + family_names
        cls_paths = [p for p in paths if p[-1] == "class"]
        path = cls_paths[rng.integers(len(cls_paths))]
        value = names[rng.integers(len(names))]
        _get(cfg, path[:-1])[path[-1]] = value
        return cfg, f"config: {path} = {value!r}"
    if kind == "many":
        spec = {"class": cfg["class"], "config": cfg["config"]}
        n = int(rng.choice([3, 2000, 20000]))
        cfg["class"], cfg["config"] = "Ensemble", {"members": [spec] * n}
        return cfg, f"config: ensemble of {n} copies"
    text = json.dumps(cfg)
    cut = int(rng.integers(len(text)))
    if rng.random() < 0.5:
        return text[:cut], f"config: truncated at {cut}"
    return text[:cut] + "\udcff\x00" + text[cut:], f"config: invalid bytes at {cut}"


# ----------------------------------------------------------------- weights mutations
def _split(raw: bytes) -> tuple[dict, bytes]:
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


def _join(header: dict, data: bytes) -> bytes:
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def _mutate_weights(raw: bytes, rng) -> tuple[bytes, str, bool]:
    """Mutated weight bytes, a description, and whether the checksum should be updated
    (an edit made consistently, as a hostile file would be)."""
    header, data = _split(raw)
    n_head = len(raw) - len(data)
    kind = rng.choice(["truncate", "flip_header", "flip_data", "dtype", "shape", "drop", "f64"])
    names = [k for k in header if k != "__metadata__"]
    name = names[rng.integers(len(names))]
    if kind == "truncate":
        cut = int(rng.integers(len(raw)))
        return raw[:cut], f"weights: truncated at {cut}", bool(rng.random() < 0.5)
    if kind in ("flip_header", "flip_data"):
        buf = bytearray(raw)
        lo, hi = (0, n_head) if kind == "flip_header" else (n_head, len(raw))
        if hi <= lo:
            lo, hi = 0, len(raw)
        where = [int(i) for i in rng.integers(lo, hi, size=int(rng.integers(1, 4)))]
        for i in where:
            buf[i] ^= 1 << int(rng.integers(8))
        # flipped data with a matching checksum is just other weights: corrupt data (no
        # new checksum) must be caught; a flipped header is checked even when re-hashed
        rehash = kind == "flip_header" and bool(rng.random() < 0.5)
        return bytes(buf), f"weights: bit flips at {where}", rehash
    entry = header[name]
    if kind == "dtype":
        new = str(rng.choice(["I32", "F16", "I64", "U8", "BOOL", "XX", "F64"]))
        entry["dtype"] = new
        return _join(header, data), f"weights: {name} dtype -> {new}", bool(rng.random() < 0.8)
    if kind == "shape":
        shape = list(entry["shape"])
        new = [int(np.prod(shape))] if len(shape) != 1 else [1, *shape]
        if rng.random() < 0.3:
            new = [*shape, 2]
        entry["shape"] = new
        return _join(header, data), f"weights: {name} shape {shape} -> {new}", True
    if kind == "drop":
        begin, end = entry["data_offsets"]
        del header[name]
        for e in header.values():
            if isinstance(e, dict) and "data_offsets" in e and e["data_offsets"][0] >= end:
                e["data_offsets"] = [o - (end - begin) for o in e["data_offsets"]]
        return _join(header, data[:begin] + data[end:]), f"weights: drop {name}", True
    # float64 copy of a float32 file, written consistently: accepted with a cast
    from safetensors.torch import load, save

    state = load(raw)
    state = {k: v.double() if v.dtype == torch.float32 else v for k, v in state.items()}
    return save(state), "weights: float32 tensors re-saved as float64", True


# ------------------------------------------------------------------------- one case
def _reference(spec: dict, dtype: str | None, state: dict, inputs: tuple):
    """Outputs of the model the (edited) config describes with the original weights."""
    model = io.build_model(spec)
    if dtype:
        model = model.to(getattr(torch, dtype))
    expected = model.state_dict()
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()})
    model.eval()
    return _run(model, inputs)


def _run(model, inputs):
    try:
        with torch.no_grad():
            return ("ok", model(*inputs))
    except Exception as exc:  # the forward pass of a valid model on these inputs
        return ("error", type(exc).__name__)


def _same(a, b) -> bool:
    if a[0] != b[0]:
        return False
    if a[0] == "error":
        return a[1] == b[1]
    x, y = a[1], b[1]
    return x.shape == y.shape and x.dtype == y.dtype and torch.equal(x.nan_to_num(), y.nan_to_num())


def _case(index, seed, originals, workdir, family_names):
    rng = np.random.default_rng([seed, index])
    family = family_names[index % len(family_names)]
    orig = originals[family]
    case = workdir / f"case{index:05d}"
    shutil.rmtree(case, ignore_errors=True)
    shutil.copytree(orig["dir"], case)
    marker = workdir / f"marker{index:05d}"
    cfg_path, w_path = case / "config.json", case / "weights.safetensors"
    config = json.loads(cfg_path.read_text())
    target = rng.choice(["config", "weights", "pickle"], p=[0.45, 0.4, 0.15])
    edited_config = False
    if target == "config":
        new, what = _mutate_config(config, rng, family_names)
        cfg_path.write_text(
            new if isinstance(new, str) else json.dumps(new), errors="surrogatepass"
        )
        edited_config = isinstance(new, dict)
        config = new if isinstance(new, dict) else config
    elif target == "weights":
        raw, what, rehash = _mutate_weights(w_path.read_bytes(), rng)
        w_path.write_bytes(raw)
        if rehash:
            config["weights_sha256"] = file_sha256(w_path)
            cfg_path.write_text(json.dumps(config))
    else:
        where = str(
            rng.choice(["weights.safetensors", "config.json", "checkpoint.pt", "model.pkl"])
        )
        (case / where).write_bytes(_pickle(marker))
        what = f"pickle as {where}"
        if where == "weights.safetensors" and rng.random() < 0.5:
            config["weights_sha256"] = file_sha256(w_path)
            cfg_path.write_text(json.dumps(config))
    start = time.perf_counter()
    try:
        model = pdesurrogates.load(case)
        got = _run(model, orig["inputs"])
        if not edited_config:
            want = orig["outputs"]
        else:
            spec = {"class": config["class"], "config": config["config"]}
            want = _reference(spec, config.get("dtype"), orig["state"], orig["inputs"])
        outcome = "accepted_correct" if _same(got, want) else "silent_acceptance"
    except CheckpointError as exc:
        outcome = "rejected_clearly" if str(case) in str(exc) else "traceback"
        what += f" -> {str(exc)[:200]}"
    except Exception as exc:  # anything else is a failure of the loader
        outcome = "traceback"
        what += f" -> {type(exc).__name__}: {str(exc)[:200]}"
    if time.perf_counter() - start > orig["hang_seconds"]:
        outcome = "hang"
    if marker.exists():
        outcome = "pickle_executed"
    shutil.rmtree(case, ignore_errors=True)
    return outcome, f"case {index} ({family}): {what}"


def fuzz_models(
    n_cases: int, seed: int, workdir, *, hang_seconds: float = 60.0, families=None
) -> dict:
    """Run ``n_cases`` mutated model directories through :func:`pdesurrogates.load`.

    Returns ``{"cases", "rejected_clearly", "accepted_correct", "traceback", "crash",
    "hang", "silent_acceptance", "pickle_executed", "examples"}`` where ``examples``
    maps each bad outcome to a few case descriptions (reproducible from seed and index).
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    originals = {}
    for name, (model, inputs) in small_models().items():
        if families is not None and name not in families:
            continue
        model.eval()
        directory = pdesurrogates.save(model, workdir / "originals" / name)
        originals[name] = {
            "dir": directory,
            "inputs": inputs,
            "outputs": _run(model, inputs),
            "state": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "hang_seconds": hang_seconds,
        }
    names = sorted(originals)
    counts = dict.fromkeys(("rejected_clearly", "accepted_correct", *_BAD), 0)
    examples: dict[str, list[str]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(n_cases):
            outcome, what = _case(i, seed, originals, workdir, names)
            counts[outcome] += 1
            if outcome in _BAD:
                examples.setdefault(outcome, [])
                if len(examples[outcome]) < 5:
                    examples[outcome].append(what)
    return {"cases": n_cases, **counts, "examples": examples}
