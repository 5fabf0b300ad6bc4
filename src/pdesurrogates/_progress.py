"""The package's one progress display and wall-clock budget.

Every long-running piece of work (training, data generation, import, Monte-Carlo
propagation, Gaussian-process fitting) reports through :class:`ProgressBar`, a thin layer
over :mod:`rich.progress` that writes to standard error and can be switched off, and
bounds its running time with :class:`TimeBudget`. Library messages go through the
``pdesurrogates`` :mod:`logging` logger (:data:`logger`); the command line shows them.

This module sits at the bottom of the package (beside :mod:`pdesurrogates.errors`) so that
every layer can use it.

Examples
--------
>>> with ProgressBar(enabled=False) as bar:
...     task = bar.add_task("samples", total=3)
...     for _ in range(3):
...         bar.advance(task, info="ok")
>>> budget = TimeBudget(None)
>>> budget.exhausted(), budget.fraction()
(False, 0.0)
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

__all__ = ["ProgressBar", "TimeBudget", "logger"]

logger = logging.getLogger("pdesurrogates")


class ProgressBar:
    """A rich progress display with one fixed layout, usable as a context manager.

    Columns: description, bar, ``done/total``, elapsed, remaining, and a free ``info``
    text (for example the current loss). With ``enabled=False`` every method is a no-op,
    so callers never branch on whether progress is shown.

    Parameters
    ----------
    enabled : bool
        Show the display. Library functions pass their ``progress=`` argument here.
    transient : bool
        Remove the display when it closes (for inner loops); the default keeps the final
        state on screen.
    """

    def __init__(self, *, enabled: bool = True, transient: bool = False) -> None:
        self.enabled = bool(enabled)
        self._rich = None
        if not self.enabled:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._rich = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
            console=Console(stderr=True),
            transient=transient,
        )

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> ProgressBar:
        if self._rich is not None:
            self._rich.start()
        return self

    def stop(self) -> None:
        if self._rich is not None:
            self._rich.stop()

    def __enter__(self) -> ProgressBar:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- tasks ----------------------------------------------------------------------
    def add_task(self, description: str, *, total: float | None, completed: float = 0) -> int:
        """Add a bar; returns its id (``-1`` when disabled)."""
        if self._rich is None:
            return -1
        return self._rich.add_task(description, total=total, completed=completed, info="")

    def advance(self, task: int, n: float = 1, *, info: str | None = None) -> None:
        """Advance ``task`` by ``n`` steps, optionally replacing its info text."""
        if self._rich is None:
            return
        if info is None:
            self._rich.update(task, advance=n)
        else:
            self._rich.update(task, advance=n, info=info)

    def update(
        self,
        task: int,
        *,
        completed: float | None = None,
        total: float | None = None,
        description: str | None = None,
        info: str | None = None,
    ) -> None:
        """Set any of the task's completed count, total, description and info text."""
        if self._rich is None:
            return
        fields: dict[str, Any] = {}
        if completed is not None:
            fields["completed"] = completed
        if total is not None:
            fields["total"] = total
        if description is not None:
            fields["description"] = description
        if info is not None:
            fields["info"] = info
        self._rich.update(task, **fields)

    def remove_task(self, task: int) -> None:
        if self._rich is not None:
            self._rich.remove_task(task)


class TimeBudget:
    """A wall-clock budget in seconds, started on construction.

    ``TimeBudget(None)`` never runs out. Training loops, GP fitting and studies call
    :meth:`exhausted` between steps and stop cleanly (with what they have) when it is.

    Parameters
    ----------
    seconds : float or None
        The budget; must be positive and finite when given.
    """

    def __init__(self, seconds: float | None) -> None:
        if seconds is not None:
            seconds = float(seconds)
            if not (math.isfinite(seconds) and seconds > 0):
                raise ValueError(
                    f"time budget must be a positive number of seconds or None, got {seconds!r}"
                )
        self.seconds = seconds
        self._start = time.perf_counter()

    def elapsed(self) -> float:
        """Seconds since the budget started."""
        return time.perf_counter() - self._start

    def remaining(self) -> float:
        """Seconds left (``inf`` without a budget, never negative)."""
        if self.seconds is None:
            return math.inf
        return max(0.0, self.seconds - self.elapsed())

    def exhausted(self) -> bool:
        """Whether the budget has run out."""
        return self.seconds is not None and self.elapsed() >= self.seconds

    def fraction(self) -> float:
        """Share of the budget used, in [0, 1] (0 without a budget)."""
        if self.seconds is None:
            return 0.0
        return min(1.0, self.elapsed() / self.seconds)
