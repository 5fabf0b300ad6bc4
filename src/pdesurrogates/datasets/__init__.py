"""The ``pdesurrogates-h5`` dataset layer: schema, writer, reader, xarray view, importers.

Write with :class:`DatasetWriter` (or :func:`generate_dataset` for a per-sample simulator;
:func:`generate_darcy`, :func:`generate_helmholtz` and :func:`generate_navier_stokes` are
the PDE-family recipes), read with :func:`open_dataset` (a torch ``Dataset``) or
:func:`open_xarray`, check a file with :func:`validate` and summarise it with
:func:`describe`. Fields come out channel-first, ``(N, C, *grid)``
(:func:`to_channel_first` / :func:`from_channel_first` convert from / to the file's
layout); :class:`TimePairs` cuts time series into (history -> next states) pairs.
Foreign formats come in through the importer backends of
:mod:`pdesurrogates.datasets.backends` (:func:`import_dataset`, or one ``import_*``
function per format); a user's own arrays through :func:`from_arrays`,
:func:`from_xarray` and :func:`import_arrays`.

Importing this package does not import torch: :class:`FieldDataset`,
:class:`SourceDataset` and :func:`open_dataset` load it on first use.
"""

from __future__ import annotations

from typing import Any

from pdesurrogates.datasets._acoustics import generate_acoustics
from pdesurrogates.datasets._channels import (
    channel_first_shape,
    from_channel_first,
    to_channel_first,
)
from pdesurrogates.datasets._darcy import generate_darcy
from pdesurrogates.datasets._describe import describe, file_metadata
from pdesurrogates.datasets._generate import generate_dataset
from pdesurrogates.datasets._helmholtz import generate_helmholtz
from pdesurrogates.datasets._migrate import migrate
from pdesurrogates.datasets._ns import generate_navier_stokes
from pdesurrogates.datasets._schema import (
    SCHEMA_NAME,
    SCHEMA_VERSION,
    FieldSpec,
    ParamSpec,
    ValidationReport,
)
from pdesurrogates.datasets._time_pairs import (
    TimePairs,
    check_uniform_time,
    stack_time,
    unstack_time,
)
from pdesurrogates.datasets._validate import validate
from pdesurrogates.datasets._writer import DatasetWriter, contiguous_splits
from pdesurrogates.datasets._xarray import open_xarray
from pdesurrogates.datasets.backends import (
    guess_backend,
    import_dataset,
    list_backends,
)
from pdesurrogates.datasets.backends._arrays import (
    ArrayPlan,
    from_arrays,
    from_xarray,
    import_arrays,
)
from pdesurrogates.datasets.backends._fno_mat import import_fno_mat
from pdesurrogates.datasets.backends._neuralop_pt import import_neuralop_pt
from pdesurrogates.datasets.backends._pdebench import import_pdebench
from pdesurrogates.datasets.backends._well import import_the_well

__all__ = [
    "SCHEMA_NAME",
    "SCHEMA_VERSION",
    "ArrayPlan",
    "DatasetWriter",
    "FieldDataset",
    "FieldSpec",
    "ParamSpec",
    "SourceDataset",
    "TimePairs",
    "ValidationReport",
    "channel_first_shape",
    "check_uniform_time",
    "contiguous_splits",
    "describe",
    "file_metadata",
    "from_arrays",
    "from_channel_first",
    "from_xarray",
    "generate_acoustics",
    "generate_darcy",
    "generate_dataset",
    "generate_helmholtz",
    "generate_navier_stokes",
    "guess_backend",
    "import_arrays",
    "import_dataset",
    "import_fno_mat",
    "import_neuralop_pt",
    "import_pdebench",
    "import_the_well",
    "list_backends",
    "migrate",
    "open_dataset",
    "open_xarray",
    "stack_time",
    "to_channel_first",
    "unstack_time",
    "validate",
]


def __getattr__(name: str) -> Any:
    # the torch-based reader loads on first use, so the CLI's info/validate/import
    # commands start without torch
    if name == "FieldDataset":
        from pdesurrogates.datasets._reader import FieldDataset

        return FieldDataset
    if name == "SourceDataset":
        from pdesurrogates.datasets._open import SourceDataset

        return SourceDataset
    if name == "open_dataset":
        from pdesurrogates.datasets._open import open_dataset

        return open_dataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
