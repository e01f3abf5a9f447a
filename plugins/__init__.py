"""loopkit's built-in plugins, each in a module of its own, using only the public API."""

from __future__ import annotations

__all__: list[str] = []
