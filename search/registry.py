"""The searchers and schedulers by name, registered the same way: an option record and a builder.

An experiment file names a searcher (``searcher: evolution`` or ``{name: evolution,
population_size: 50}``) and a scheduler alike; :func:`make_searcher` and :func:`make_scheduler`
look the name up, build the option record from the file's mapping (unknown keys, wrong types and
out-of-range values are one clear error each, checked once by the record) and hand the record to
the builder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from search.evolution import AgingEvolution, EvolutionOptions
from search.grid import GridOptions, GridSearch, PointsOptions, PointsSearch
from search.local_search import LocalSearch, LocalSearchOptions
from search.optuna_search import OptunaOptions, OptunaStrategy
from search.qlearning import QLearning, QLearningOptions
from search.random_search import RandomOptions, RandomSearch
from search.rl import ReinforceController, RlOptions
from search.schedulers import (
    AshaOptions,
    FifoOptions,
    MedianOptions,
    build_asha,
    build_fifo,
    build_median,
)
from spaces import Space, closest
from spaces.options import parse_options

__all__ = ["SCHEDULERS", "SEARCHERS", "Entry", "make_scheduler", "make_searcher"]


@dataclass(frozen=True)
class Entry:
    """A registered searcher or scheduler.

    ``build`` takes the option record: a searcher's as ``build(space, options, seed=...)`` (its
    strategy core's constructor), a scheduler's as ``build(options, metric=..., mode=...,
    max_epochs=...)``.
    """

    options: type
    build: Callable[..., Any]


SEARCHERS: dict[str, Entry] = {
    "random": Entry(RandomOptions, RandomSearch),
    "optuna": Entry(OptunaOptions, OptunaStrategy),
    "evolution": Entry(EvolutionOptions, AgingEvolution),
    "rl": Entry(RlOptions, ReinforceController),
    "grid": Entry(GridOptions, GridSearch),
    "points": Entry(PointsOptions, PointsSearch),
    "qlearning": Entry(QLearningOptions, QLearning),
    "local_search": Entry(LocalSearchOptions, LocalSearch),
}

SCHEDULERS: dict[str, Entry] = {
    "asha": Entry(AshaOptions, build_asha),
    "median": Entry(MedianOptions, build_median),
    "fifo": Entry(FifoOptions, build_fifo),
}


def _options(registry: Mapping[str, Entry], kind: str, name: str,
             options: Mapping[str, Any] | None) -> tuple[Entry, Any]:
    """The entry called ``name`` and its option record; ``ValueError`` naming the mistake."""
    if name not in registry:
        raise ValueError(f"`{kind}` is {name!r}, but must be one of {sorted(registry)}."
                         f"{closest(name, list(registry))}")
    entry = registry[name]
    return entry, parse_options(entry.options, options, kind)


def make_searcher(
    name: str,
    *,
    space: Space,
    metric: str,
    mode: str,
    seed: int | None = None,
    max_epochs: int | None = None,
    max_trials: int | None = None,
    options: Mapping[str, Any] | None = None,
) -> Any:
    """A Ray Tune ``Searcher`` (:class:`search.adapter.SpaceSearcher`) named ``name`` over
    ``space``.

    Example:
        >>> searcher = make_searcher("optuna", space=get_space("cifar_cnn"), metric="val_acc",
        ...                          mode="max", seed=0, max_epochs=10, max_trials=50)
    """
    from search.adapter import SpaceSearcher

    entry, record = _options(SEARCHERS, "searcher", name, options)
    return SpaceSearcher(entry.build(space, record, seed=seed), space=space, metric=metric,
                         mode=mode, max_epochs=max_epochs, max_trials=max_trials, name=name)


def make_scheduler(name: str, *, metric: str, mode: str, max_epochs: int | None,
                   options: Mapping[str, Any] | None = None) -> Any:
    """Ray's scheduler called ``name`` with ``options`` checked; ``ValueError`` on a mistake."""
    entry, record = _options(SCHEDULERS, "scheduler", name, options)
    return entry.build(record, metric=metric, mode=mode, max_epochs=max_epochs)
