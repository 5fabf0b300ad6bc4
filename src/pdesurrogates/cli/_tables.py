"""The one table style of the command line (rich), and quiet library logs.

Every command that prints results prints :func:`table` objects: a left-aligned title,
the first column left-aligned (the row names), the value columns right-aligned.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from contextlib import contextmanager

__all__ = ["fmt", "quiet_logs", "table"]


@contextmanager
def quiet_logs(quiet: bool):
    """With ``quiet``, the library's INFO messages (fit logs) are not shown."""
    logger = logging.getLogger("pdesurrogates")
    level = logger.level
    if quiet:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def table(
    title: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[str]],
    caption: str | None = None,
    min_width: int | None = None,
):
    """A rich table: ``columns`` headers, ``rows`` of strings, an optional ``caption``
    (notes) below; ``min_width`` (characters) keeps a narrow table's title and caption
    from wrapping."""
    from rich.table import Table

    out = Table(
        title=title,
        title_justify="left",
        caption=caption,
        caption_justify="left",
        min_width=min_width,
    )
    for i, c in enumerate(columns):
        out.add_column(c, justify="left" if i == 0 else "right")
    for r in rows:
        out.add_row(*r)
    return out


def fmt(value, spec: str = ".4g") -> str:
    """A number for a table cell; ``–`` for None or a non-finite value."""
    if value is None:
        return "–"
    v = float(value)
    return f"{v:{spec}}" if math.isfinite(v) else "–"
