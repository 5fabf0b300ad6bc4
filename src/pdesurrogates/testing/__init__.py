"""Contract test mix-ins every surrogate and preconditioner must pass."""

from __future__ import annotations

__all__: list[str] = []
