"""Reference simulators, sparse problem gallery and (learned) linear solvers."""

from __future__ import annotations

__all__: list[str] = []
