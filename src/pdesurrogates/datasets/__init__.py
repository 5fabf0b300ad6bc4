"""The ``pdesurrogates-h5`` dataset layer: schema, writer, reader, xarray view.

Write with :class:`DatasetWriter` (or :func:`generate_dataset` for a per-sample simulator),
read with :func:`open_dataset` (a torch ``Dataset``) or :func:`open_xarray`, and check a
file with :func:`validate`.
"""

from __future__ import annotations

from pdesurrogates.datasets._acoustics import generate_acoustics
from pdesurrogates.datasets._generate import generate_dataset
from pdesurrogates.datasets._import_api import (
    import_fno_mat,
    import_neuralop_pt,
    import_pdebench,
    import_the_well,
)
from pdesurrogates.datasets._reader import FieldDataset, open_dataset
from pdesurrogates.datasets._schema import (
    SCHEMA_NAME,
    SCHEMA_VERSION,
    FieldSpec,
    ParamSpec,
    ValidationReport,
    validate,
)
from pdesurrogates.datasets._writer import DatasetWriter, contiguous_splits
from pdesurrogates.datasets._xarray import open_xarray

__all__ = [
    "SCHEMA_NAME",
    "SCHEMA_VERSION",
    "DatasetWriter",
    "FieldDataset",
    "FieldSpec",
    "ParamSpec",
    "ValidationReport",
    "contiguous_splits",
    "generate_acoustics",
    "generate_dataset",
    "import_fno_mat",
    "import_neuralop_pt",
    "import_pdebench",
    "import_the_well",
    "open_dataset",
    "open_xarray",
    "validate",
]
