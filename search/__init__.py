"""Searchers and schedulers over the one space model.

The strategy cores (:mod:`search.evolution`, :mod:`search.rl`, ...) and the outcome vocabulary
(:mod:`search.outcome`) import no Ray; Ray comes in with the adapter (:mod:`search.adapter`)
and the schedulers' builders. The registries and factories below load on first use, so
``import search.evolution`` stays Ray-free.
"""

from __future__ import annotations

from typing import Any

from search.outcome import Status
from search.strategy import Strategy

__all__ = [
    "OPTUNA_SAMPLERS",
    "SCHEDULERS",
    "SEARCHERS",
    "SpaceSearcher",
    "Status",
    "Strategy",
    "WarmTrial",
    "make_scheduler",
    "make_searcher",
]

_LAZY = {
    "OPTUNA_SAMPLERS": "search.optuna_search",
    "SCHEDULERS": "search.registry",
    "SEARCHERS": "search.registry",
    "make_scheduler": "search.registry",
    "make_searcher": "search.registry",
    "SpaceSearcher": "search.adapter",
    "WarmTrial": "search.fidelity",
}


def __getattr__(name: str) -> Any:
    import importlib

    if name not in _LAZY:
        raise AttributeError(f"module 'search' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)
