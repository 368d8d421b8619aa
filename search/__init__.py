"""Searchers and schedulers over the one space model, plus the results writer and reader."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Literal

from search.adapter import SpaceSearcher, Status, Strategy
from search.evolution import AgingEvolution
from search.grid import GridSearch, PointsSearch
from search.optuna_search import OPTUNA_SAMPLERS, OptunaStrategy
from search.qlearning import QLearning
from search.random_search import RandomSearch
from search.rl import ReinforceController
from search.schedulers import SCHEDULERS, make_scheduler
from spaces import Space, closest
from spaces.options import check_range, parse_options

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
class EvolutionOptions:
    """Aging evolution (Real et al. 2019)."""

    population_size: int = 20  # models kept; the first this many proposals are random
    sample_size: int = 10  # tournament size: the best of this many members is the parent
    dedup: bool = True  # never propose a config twice (re-mutate instead)

    def __post_init__(self) -> None:
        check_range("population_size", self.population_size, low=2)
        check_range("sample_size", self.sample_size, low=1, high=self.population_size)


@dataclass(frozen=True)
class RlOptions:
    """REINFORCE LSTM controller (Zoph & Le 2017)."""

    hidden: int = 64  # LSTM width
    lr: float = 0.01  # Adam learning rate of the controller
    baseline_decay: float = 0.9  # EMA decay of the reward baseline
    entropy_weight: float = 1e-3  # entropy bonus
    tanh_constant: float = 2.5  # logits squashed to c * tanh(logits / temperature)
    temperature: float = 5.0

    def __post_init__(self) -> None:
        check_range("hidden", self.hidden, low=1)
        check_range("lr", self.lr, low=0, low_open=True)
        check_range("baseline_decay", self.baseline_decay, low=0, high=1)
        check_range("entropy_weight", self.entropy_weight, low=0)
        check_range("tanh_constant", self.tanh_constant, low=0, low_open=True)
        check_range("temperature", self.temperature, low=0, low_open=True)


@dataclass(frozen=True)
class QLearningOptions:
    """MetaQNN epsilon-greedy Q-learning with experience replay (Baker et al. 2017)."""

    alpha: float = 0.1  # Q learning rate
    gamma: float = 1.0  # discount (MetaQNN: 1)
    epsilon_start: float = 1.0
    epsilon_end: float = 0.1
    random_trials: int = 30  # proposals at epsilon_start
    decay_trials: int = 70  # then linear decay to epsilon_end over this many
    replay_batch: int = 32  # episodes replayed per finished trial

    def __post_init__(self) -> None:
        check_range("alpha", self.alpha, low=0, high=1, low_open=True)
        check_range("gamma", self.gamma, low=0, high=1)
        check_range("epsilon_start", self.epsilon_start, low=0, high=1)
        check_range("epsilon_end", self.epsilon_end, low=0, high=1)
        check_range("random_trials", self.random_trials, low=0)
        check_range("decay_trials", self.decay_trials, low=0)
        check_range("replay_batch", self.replay_batch, low=1)


@dataclass(frozen=True)
class GridOptions:
    """Every grid point of the space (floats on their `grid_points` grid)."""

    shuffle: bool = False


@dataclass(frozen=True)
class PointsOptions:
    """A fixed list of configs (arch strings allowed on the nb201 space)."""

    points: list = dataclasses.field(default_factory=list)


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
    "evolution": SearcherEntry(
        EvolutionOptions,
        lambda space, o, seed: AgingEvolution(space, seed=seed, **dataclasses.asdict(o)),
    ),
    "rl": SearcherEntry(
        RlOptions,
        lambda space, o, seed: ReinforceController(space, seed=seed, **dataclasses.asdict(o)),
    ),
    "grid": SearcherEntry(
        GridOptions, lambda space, o, seed: GridSearch(space, shuffle=o.shuffle, seed=seed)),
    "points": SearcherEntry(
        PointsOptions, lambda space, o, seed: PointsSearch(space, points=o.points)),
    "qlearning": SearcherEntry(
        QLearningOptions,
        lambda space, o, seed: QLearning(space, seed=seed, **dataclasses.asdict(o)),
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
