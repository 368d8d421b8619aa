"""Searchers and schedulers over the one space model, plus the results writer and reader."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal

from search.adapter import SpaceSearcher, Status, Strategy
from search.optuna_search import OPTUNA_SAMPLERS, OptunaStrategy
from search.random_search import RandomSearch
from search.schedulers import SCHEDULERS, make_scheduler
from spaces import Space, closest
from spaces.options import parse_options

__all__ = [
    "OPTUNA_SAMPLERS",
    "SCHEDULERS",
    "SEARCHERS",
    "SpaceSearcher",
    "Status",
    "Strategy",
    "make_scheduler",
    "make_searcher",
]


@dataclass(frozen=True)
class RandomOptions:
    """Uniform random search (no options)."""


@dataclass(frozen=True)
class OptunaOptions:
    """Optuna's sampler by name; TPE (multivariate, grouped for conditional spaces) by default."""

    sampler: Literal["tpe", "tpe_independent", "random", "cmaes", "nsga2", "qmc"] = "tpe"


@dataclass(frozen=True)
class SearcherEntry:
    """A registered searcher: its options record and the factory of its strategy core."""

    options: type
    build: Callable[[Space, Any, int | None], Strategy]


SEARCHERS: dict[str, SearcherEntry] = {
    "random": SearcherEntry(RandomOptions, lambda space, o, seed: RandomSearch(space, seed=seed)),
    "optuna": SearcherEntry(
        OptunaOptions, lambda space, o, seed: OptunaStrategy(space, sampler=o.sampler, seed=seed)
    ),
}


def make_searcher(
    name: str,
    *,
    space: Space,
    metric: str,
    mode: str,
    seed: int | None = None,
    max_epochs: int | None = None,
    max_trials: int | None = None,
    options: dict[str, Any] | None = None,
) -> SpaceSearcher:
    """A Ray Tune ``Searcher`` named ``name`` over ``space``.

    Example:
        >>> searcher = make_searcher("optuna", space=get_space("cifar_cnn"), metric="val_acc",
        ...                          mode="max", seed=0, max_epochs=10, max_trials=50)
    """
    if name not in SEARCHERS:
        raise ValueError(
            f"`searcher` is {name!r}, but must be one of {sorted(SEARCHERS)}."
            f"{closest(name, list(SEARCHERS))}"
        )
    entry = SEARCHERS[name]
    strategy = entry.build(space, parse_options(entry.options, options, "searcher"), seed)
    return SpaceSearcher(
        strategy, space=space, metric=metric, mode=mode, max_epochs=max_epochs,
        max_trials=max_trials, name=name,
    )
