"""Reference simulators that generate training data and ground truth."""

from __future__ import annotations

__all__: list[str] = []
