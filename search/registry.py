"""The searchers and schedulers by name, registered the same way: an option record and a builder.

An experiment file names a searcher (``searcher: evolution`` or ``{name: evolution,
population_size: 50}``) and a scheduler alike; :func:`make_searcher` and :func:`make_scheduler`
look the name up, build the option record from the file's mapping (unknown keys, wrong types and
out-of-range values are one clear error each, checked once by the record) and hand the record to
the builder.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from search.bohb import BohbOptions, BohbStrategy
from search.evolution import AgingEvolution, EvolutionOptions
from search.fidelity import WarmTrial
from search.grid import GridOptions, GridSearch, PointsOptions, PointsSearch
from search.local_search import LocalSearch, LocalSearchOptions
from search.optuna_search import OptunaOptions, OptunaStrategy
from search.qlearning import QLearning, QLearningOptions
from search.random_search import RandomOptions, RandomSearch
from search.rl import ReinforceController, RlOptions
from search.schedulers import (
    AshaOptions,
    FifoOptions,
    HyperbandOptions,
    MedianOptions,
    Pb2Options,
    PbtOptions,
    build_asha,
    build_fifo,
    build_hyperband,
    build_median,
    build_pb2,
    build_pbt,
)
from spaces import Space, closest
from spaces.options import parse_options

__all__ = ["SCHEDULERS", "SEARCHERS", "Entry", "make_scheduler", "make_searcher"]


@dataclass(frozen=True)
class Entry:
    """A registered searcher or scheduler.

    ``build`` takes the option record: a searcher's as ``build(space, options, seed=...)`` (its
    strategy core's constructor), a scheduler's as ``build(options, metric=..., mode=...,
    max_epochs=..., space=...)``.
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
    "bohb": Entry(BohbOptions, BohbStrategy),
}

SCHEDULERS: dict[str, Entry] = {
    "asha": Entry(AshaOptions, build_asha),
    "median": Entry(MedianOptions, build_median),
    "fifo": Entry(FifoOptions, build_fifo),
    "hyperband": Entry(HyperbandOptions, build_hyperband),
    "bohb": Entry(HyperbandOptions, functools.partial(build_hyperband, name="bohb")),
    "pbt": Entry(PbtOptions, build_pbt),
    "pb2": Entry(Pb2Options, build_pb2),
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
    warm: Sequence[WarmTrial] = (),
) -> Any:
    """A Ray Tune ``Searcher`` (:class:`search.adapter.SpaceSearcher`) named ``name`` over
    ``space``, warm-started with ``warm`` (another experiment's finished trials, oldest first:
    learned from, never proposed again, not counted in ``max_trials``) when given.

    Example:
        >>> searcher = make_searcher("optuna", space=get_space("cifar_cnn"), metric="val_acc",
        ...                          mode="max", seed=0, max_epochs=10, max_trials=50)
    """
    from search.adapter import SpaceSearcher

    entry, record = _options(SEARCHERS, "searcher", name, options)
    searcher = SpaceSearcher(entry.build(space, record, seed=seed), space=space, metric=metric,
                             mode=mode, max_epochs=max_epochs, max_trials=max_trials, name=name)
    if warm:
        searcher.warm(warm)
    return searcher


def make_scheduler(name: str, *, metric: str, mode: str, max_epochs: int | None,
                   options: Mapping[str, Any] | None = None, space: Space | None = None) -> Any:
    """Ray's scheduler called ``name`` with ``options`` checked; ``ValueError`` on a mistake.
    ``space``: the search space (PBT and PB2 check the parameters they mutate against it)."""
    entry, record = _options(SCHEDULERS, "scheduler", name, options)
    return entry.build(record, metric=metric, mode=mode, max_epochs=max_epochs, space=space)
