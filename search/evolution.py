"""Aging (regularized) evolution, Real et al. 2019 ("Regularized Evolution for Image Classifier
Architecture Search", the AmoebaNet search).

The population holds the last ``population_size`` finished models, oldest first. As in the
paper's Algorithm 1, proposals are random until ``population_size`` models have *finished*
(with ``W`` workers, about ``population_size + W - 1`` random proposals: the ones made while the
first models train are random too); after that each proposal samples ``sample_size`` members at
random, takes the best of the sample as parent and proposes a one-step mutation of it
(``space.mutate``: an op or a hidden-state mutation on cell spaces). When a model finishes it
joins the population and the *oldest* member leaves, whatever its score: aging, not killing the
worst, is what regularizes the search against lucky noisy evaluations.

Asynchronous by construction: proposals are made while earlier children are still training
(their parents are whatever the population holds now), as on a cluster of workers. Failed trials
never join the population. With ``dedup``, a child already proposed is re-mutated (up to
``max_dedup_tries``, then a fresh random model), so no budget goes to repeats; a search longer
than the space has functions (10,000 trials of NAS-Bench-201's 5,773) proposes repeats once
random draws find nothing new, then with a few draws each (:meth:`Strategy.draw_unseen`).

Early-stopped trials (ASHA, the median rule) join the population with what they are: the
tournament compares members by ``(fidelity, score)`` (:mod:`search.fidelity`), so a model
stopped at epoch ``r`` loses to every member that trained further and is ranked by its epoch-``r``
score only against members stopped at the same epoch. With FIFO this is the score.

A warm start (:meth:`AgingEvolution.warm`) gives the initial population: another experiment's
trials, the most recent last (the newest ``population_size`` of them stay), count as finished,
so with ``population_size`` of them the first proposal is already a mutation; with ``dedup``
none of them is proposed again.

Example:
    >>> core = AgingEvolution(get_space("nb201"), EvolutionOptions(population_size=20,
    ...                       sample_size=5), seed=0)
    >>> config, handle = core.ask()
    >>> core.tell(handle, 71.3, Status.COMPLETE)
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from search.fidelity import FidelityStrategy, FidelityTracker, Key
from search.outcome import Status
from spaces import Space
from spaces.options import check_range

__all__ = ["AgingEvolution", "EvolutionOptions"]


@dataclass(frozen=True)
class EvolutionOptions:
    """Aging evolution (Real et al. 2019)."""

    population_size: int = 10  # models kept; proposals are random until this many finished
    sample_size: int = 10  # tournament size: the best of this many members is the parent
    dedup: bool = True  # never propose a config twice (re-mutate instead)

    def __post_init__(self) -> None:
        check_range("population_size", self.population_size, low=2)
        check_range("sample_size", self.sample_size, low=1, high=self.population_size)


class AgingEvolution(FidelityStrategy):
    """Aging evolution over a space (see the module docstring)."""

    max_dedup_tries = 50  # re-mutations of a repeated child before a fresh random model

    def __init__(self, space: Space, options: EvolutionOptions = EvolutionOptions(), *,
                 seed: int | None = None) -> None:
        self.space = space
        self.population_size = options.population_size
        self.sample_size = options.sample_size
        self.dedup = options.dedup
        self.rng = np.random.default_rng(seed)
        self.population: deque[tuple[dict[str, Any], Key]] = deque()
        self.pending: dict[int, dict[str, Any]] = {}
        self.seen: set[Hashable] = set()
        self.fidelity = FidelityTracker()
        self.asked = 0
        self.finished = 0  # trials told with a score (complete or pruned)

    def _fresh(self, make: Any) -> dict[str, Any]:
        """``make()`` until it gives an unseen config (when deduplicating)."""
        config = make()
        if self.dedup:
            for _ in range(self.USED_UP_DRAWS if self.used_up else self.max_dedup_tries):
                if self.space.canonical(config) not in self.seen:
                    break
                config = make()
            else:
                config = self.draw_unseen(lambda: self.space.sample(self.rng),
                                          lambda c: self.space.canonical(c) not in self.seen,
                                          first=config)
        return config

    def parent(self) -> dict[str, Any]:
        """Tournament selection: the best of ``sample_size`` random population members."""
        k = min(self.sample_size, len(self.population))
        picks = self.rng.choice(len(self.population), size=k, replace=False)
        best = max(picks, key=lambda i: self.population[int(i)][1])
        return self.population[int(best)][0]

    def ask(self) -> tuple[dict[str, Any], Hashable]:
        if self.finished < self.population_size or not self.population:
            config = self._fresh(lambda: self.space.sample(self.rng))
        else:
            parent = self.parent()
            config = self._fresh(lambda: self.space.mutate(parent, self.rng))
        self.asked += 1
        self.seen.add(self.space.canonical(config))
        self.pending[self.asked] = config
        return config, self.asked

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore a saved search, one saved by hpnas 0.2 included (scores, not keys)."""
        if "fidelity" not in state:
            state["population"] = deque((c, (math.inf, s)) for c, s in state["population"])
            state["finished"] = state["asked"] - len(state["pending"])
            state["fidelity"] = FidelityTracker()
        self.__dict__.update(state)
        self.seen = {self.space.upgrade_canonical(i) for i in self.seen}  # earlier hpnas' forms

    def tell(self, handle: Hashable, score: float | None, status: Status) -> None:
        config = self.pending.pop(handle, None)  # type: ignore[call-overload]
        if config is None or status is Status.FAILED or score is None:
            self.fidelity.forget(handle)
            return
        self._join(config, self.fidelity.key(handle, score, status))

    def warm(self, trials: Sequence[tuple[dict[str, Any], Key]]) -> None:
        """The initial population: ``trials`` join in order (the oldest dies first) and count
        as finished."""
        for config, key in trials:
            self.seen.add(self.space.canonical(config))
            self._join(dict(config), key)

    def _join(self, config: dict[str, Any], key: Key) -> None:
        self.finished += 1
        self.population.append((config, key))
        while len(self.population) > self.population_size:
            self.population.popleft()  # the oldest dies, not the worst
