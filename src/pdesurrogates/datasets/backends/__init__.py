"""Importer backends: one module per foreign format, found by a registry.

Each backend (:class:`ImporterBackend`) says whether a path looks like its format
(``guess_can_open``), opens it as a :class:`Source` and converts it with :func:`convert`.
The built-in ones are PDEBench (``pdebench``), The Well (``the-well``), FNO ``.mat``
(``fno-mat``) and neuraloperator ``.pt`` (``neuralop-pt``).

To add a format, write one module in this package that defines a subclass of
:class:`ImporterBackend` and binds an instance to ``BACKEND`` (test it with
:class:`pdesurrogates.testing.ImporterContract`). Nothing else changes: the registry
finds it, ``pdesurrogates import <name>`` gains a sub-command, and
:func:`pdesurrogates.datasets.open_dataset` reads such files in place.

Examples
--------
>>> from pdesurrogates.datasets.backends import get_backend, list_backends
>>> [b.name for b in list_backends()]
['fno-mat', 'neuralop-pt', 'pdebench', 'the-well']
>>> get_backend("pdebench").guess_can_open("no-such-file.hdf5")
False
"""

from __future__ import annotations

from pdesurrogates.datasets.backends._base import (
    ImporterBackend,
    Source,
    check_same_grid,
    check_storage,
    convert,
    fill_input_output,
    h5_read,
    numeric_attrs,
    open_source_h5,
)
from pdesurrogates.datasets.backends._registry import (
    get_backend,
    guess_backend,
    import_dataset,
    list_backends,
    register_backend,
    unknown_layout,
)

__all__ = [
    "ImporterBackend",
    "Source",
    "check_same_grid",
    "check_storage",
    "convert",
    "fill_input_output",
    "get_backend",
    "guess_backend",
    "h5_read",
    "import_dataset",
    "list_backends",
    "numeric_attrs",
    "open_source_h5",
    "register_backend",
    "unknown_layout",
]
