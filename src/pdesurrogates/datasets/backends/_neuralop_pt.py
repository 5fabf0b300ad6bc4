"""neuraloperator ``.pt`` files as an importer backend.

Read with ``torch.load(weights_only=True)`` (never a full unpickle), memory mapped when
the file uses the zip format: tensors are paged in as they are copied, not loaded whole.
``x`` -> ``a`` (input), ``y`` -> ``u`` (output; ``(N, T, X)`` trajectories keep their time
axis), one-element tensors such as ``visc`` -> parameters. The grid is not stored: we
write the uniform grid ``linspace(0, 1, n)`` and say so in the ``source`` attribute.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pdesurrogates.datasets._schema import ParamSpec
from pdesurrogates.datasets.backends._base import ImporterBackend, Source, fill_input_output
from pdesurrogates.datasets.backends._registry import unknown_layout
from pdesurrogates.errors import DatasetError

__all__ = ["BACKEND", "NeuralopPtBackend", "PtSource", "import_neuralop_pt"]

_LAYOUTS = {"neuralop-pt": "neuraloperator .pt: a dict with tensors 'x' and 'y' (and e.g. 'visc')"}


class PtSource(Source):
    """A neuraloperator ``.pt`` file: a dict with tensors ``x`` (input) and ``y`` (output)."""

    layout = "neuralop-pt"

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__(path)
        import torch

        if not self.path.exists():
            raise DatasetError(f"{self.path}: no such file")
        if self.path.is_dir():
            raise DatasetError(f"{self.path}: is a directory, expected a .pt file")
        self.info = {"format": "torch.save dict"}
        mmap = zipfile.is_zipfile(self.path)
        try:
            obj = torch.load(self.path, map_location="cpu", weights_only=True, mmap=mmap)
        except pickle.UnpicklingError as exc:
            raise DatasetError(
                f"{self.path}: holds objects other than tensors and plain containers, which "
                f"we never unpickle ({str(exc).splitlines()[0]}). Re-save it as a dict of "
                "tensors"
            ) from exc
        except (RuntimeError, EOFError, OSError, ValueError) as exc:
            size = self.path.stat().st_size
            raise DatasetError(
                f"{self.path}: cannot read as a torch file ({size} bytes; "
                f"{str(exc).splitlines()[0]}). The file is truncated, corrupt or not a .pt file"
            ) from exc
        if not isinstance(obj, dict) or not all(
            isinstance(obj.get(k), torch.Tensor) for k in ("x", "y")
        ):
            if isinstance(obj, dict):
                found = "dict with keys " + str(
                    {
                        k: tuple(v.shape) if hasattr(v, "shape") else type(v).__name__
                        for k, v in obj.items()
                    }
                )
            else:
                found = type(obj).__name__
            raise unknown_layout(self.path, found, _LAYOUTS, backend="neuralop-pt")
        self.x, self.y = obj["x"], obj["y"]
        fill_input_output(
            self, tuple(self.x.shape), tuple(self.y.shape), time_last=False, where="'x'/'y'"
        )
        self.info["dtypes"] = {"x": str(self.x.dtype), "y": str(self.y.dtype)}
        self.aliases = {"x": ["a"], "y": ["u"]}
        for k, v in obj.items():
            if k in ("x", "y") or not isinstance(v, torch.Tensor) or v.numel() != 1:
                continue
            self.params[k] = ParamSpec(dist="discrete", long_name=f"file entry {k}")
            self.param_values[k] = np.full(self.n_samples, float(v.reshape(())))
        self.pde = "neuraloperator " + self.path.stem

    def read(self, start, stop, names):
        import torch

        out = {}
        for name in names:
            t = (self.x if name == "a" else self.y)[start:stop]
            if t.dtype == torch.bfloat16:  # no numpy equivalent; exact in float32
                t = t.float()
            out[name] = t.numpy().astype(np.float32)
        return out

    def close(self) -> None:
        self.x = self.y = None


class NeuralopPtBackend(ImporterBackend):
    """Convert a neuraloperator .pt file (a dict of x, y tensors).

    Loaded with weights_only=True: x becomes a, y becomes u, one-element tensors (e.g.
    visc) become params.
    """

    name = "neuralop-pt"
    layouts = _LAYOUTS
    source_help = "A neuraloperator .pt file (dict of x, y tensors)."

    def guess_can_open(self, path: str | os.PathLike) -> bool:
        p = Path(path)
        return p.suffix.lower() == ".pt" and p.is_file()

    def open_source(self, path, layout=None, *, reopen=False) -> Source:
        return PtSource(path)


BACKEND = NeuralopPtBackend()


def import_neuralop_pt(
    src: str | os.PathLike,
    output: str | os.PathLike,
    *,
    fields: Sequence[str] | None = None,
    limit: int | None = None,
    overwrite: bool = False,
    compression: str | None = None,
    progress: bool = True,
) -> Path:
    """Convert a neuraloperator ``.pt`` file (a dict of ``x``, ``y`` tensors) to our schema.

    Loaded with ``torch.load(weights_only=True)`` (memory-mapped for zip-format files).
    ``x`` -> ``a`` (input; booleans become 0.0/1.0), ``y`` -> ``u`` (output; ``(N, T,
    X)`` trajectories keep their time axis), one-element tensors such as ``visc`` ->
    parameters. The grid is not stored: a uniform ``linspace(0, 1, n)`` is written.

    Parameters are as for :func:`import_pdebench`.
    """
    return BACKEND.import_file(
        src,
        output,
        fields=fields,
        limit=limit,
        overwrite=overwrite,
        compression=compression,
        progress=progress,
    )
