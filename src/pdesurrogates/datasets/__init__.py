"""The ``pdesurrogates-h5`` dataset layer: schema, writer, reader, xarray view, normalisers."""

from __future__ import annotations

__all__: list[str] = []
