"""The service around the searches: experiment files, the Tuner, jobs, the CLI, and the Python
entry points :func:`run` and :func:`resume` (loaded on first use, so ``import cluster.spec``
and the CLI's start-up stay light)."""

from __future__ import annotations

from typing import Any

__all__ = ["resume", "run"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from cluster import api

        return getattr(api, name)
    raise AttributeError(f"module 'cluster' has no attribute {name!r}")
