"""Local search, White et al. 2021 ("Local Search is State of the Art for Neural Architecture
Search Benchmarks"): hill-climbing over the one-change neighbourhood, with random restarts.

A climb starts from the best of ``initial`` random configs. Every neighbour of the current centre
(each config that changes one active decision to another of its values; at most
``max_neighbours`` of them, drawn at random when there are more) is proposed; once all have
been handed out, the search moves to the best finished neighbour if it beats the centre (with
one worker that is best improvement, as published) and climbs on from there; once all have
finished and none beats the centre, the centre is a local optimum and the search restarts from
new random configs. A config is never evaluated twice.

Asynchronous: with many workers the last neighbours of a centre are still training when the
others are done; the search then moves as soon as a finished neighbour beats the centre (the
best of those finished), rather than leave workers idle, and while none does, idle workers get
random configs, which count towards the next restart's ``initial`` configs.

Under early stopping (ASHA, the median rule) configs are compared by ``(fidelity, score)``
(:mod:`search.fidelity`): a neighbour stopped at an early rung never beats a centre that trained
further, and a stopped centre is beaten by any neighbour that survived its rung.

A warm start (:meth:`LocalSearch.warm`) makes another experiment's results known: the first
climb starts from the best of them (no random ``initial`` configs first), and none of them is
proposed again.

Example:
    >>> core = LocalSearch(get_space("nb201"), LocalSearchOptions(initial=10), seed=0)
    >>> config, handle = core.ask()
    >>> core.tell(handle, 71.3, Status.COMPLETE)
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from search.fidelity import FidelityStrategy, FidelityTracker, Key, rekeyed
from search.outcome import Status
from spaces import Space
from spaces.options import check_range

__all__ = ["LocalSearch", "LocalSearchOptions"]


@dataclass(frozen=True)
class LocalSearchOptions:
    """Best-improvement local search with random restarts (White et al. 2021)."""

    initial: int = 10  # random configs a climb starts from (the best of them)
    max_neighbours: int = 100  # neighbours evaluated per centre (a random subset past it)

    def __post_init__(self) -> None:
        check_range("initial", self.initial, low=1)
        check_range("max_neighbours", self.max_neighbours, low=1)


class LocalSearch(FidelityStrategy):
    """Hill-climbing with random restarts (see the module docstring)."""

    def __init__(self, space: Space, options: LocalSearchOptions = LocalSearchOptions(), *,
                 seed: int | None = None) -> None:
        self.space = space
        self.initial = options.initial
        self.max_neighbours = options.max_neighbours
        self.rng = np.random.default_rng(seed)
        self.configs: dict[Hashable, dict[str, Any]] = {}  # every config proposed, by identity
        self.results: dict[Hashable, Key] = {}  # finished (not failed) configs and their key
        self.failed: set[Hashable] = set()
        self.pending: dict[int, Hashable] = {}
        self.fidelity = FidelityTracker()
        self.starts: list[Hashable] = []  # random configs not yet used to start a climb
        self.centre: Hashable | None = None
        self.queue: list[Hashable] = []  # the centre's neighbours not yet proposed
        self.neighbours: list[Hashable] = []  # all of the centre's neighbours
        self.asked = 0
        self.climbs = 0  # climbs started (restarts + 1)
        self.moves = 0  # improving moves made

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore a saved search, its identities in this version's canonical forms (hpnas 0.4
        named a cell by its arch string; the upgrade leaves current forms as they are)."""
        self.__dict__.update(state)
        up = self.space.upgrade_canonical
        configs: dict[Hashable, dict[str, Any]] = {}
        for ident, config in self.configs.items():
            configs.setdefault(up(ident), config)
        self.configs, self.results = configs, rekeyed(self.results, up)
        self.failed = {up(i) for i in self.failed}
        self.pending = {h: up(i) for h, i in self.pending.items()}
        self.starts, self.queue = [up(i) for i in self.starts], [up(i) for i in self.queue]
        self.neighbours = [up(i) for i in self.neighbours]
        self.centre = None if self.centre is None else up(self.centre)

    # -- proposals -----------------------------------------------------------------------

    def _new(self, config: dict[str, Any]) -> Hashable | None:
        """Register ``config``; ``None`` if it was proposed before."""
        ident = self.space.canonical(config)
        if ident in self.configs:
            return None
        self.configs[ident] = config
        return ident

    def _random(self) -> Hashable:
        for _ in range(1000):
            ident = self._new(self.space.sample(self.rng))
            if ident is not None:
                self.starts.append(ident)
                return ident
        raise RuntimeError("local search found no unseen config in 1,000 random draws; "
                           "the space is exhausted.")

    def _neighbourhood(self, centre: Hashable) -> list[Hashable]:
        found: list[Hashable] = []
        for config in self.space.neighbours(self.configs[centre], self.rng):
            ident = self._new(config)
            if ident is not None:
                found.append(ident)
            if len(found) >= self.max_neighbours:
                break
        return found

    def _climb_from(self, centre: Hashable) -> None:
        self.centre = centre
        self.neighbours = self._neighbourhood(centre)
        self.queue = list(self.neighbours)

    def _advance(self) -> None:
        """Start a climb, move, or restart, as far as the finished results allow."""
        while True:
            if self.centre is None:
                ready = [s for s in self.starts if s in self.results]
                if len(ready) < self.initial:
                    return
                start = max(ready, key=lambda s: self.results[s])
                self.starts = [s for s in self.starts if s not in ready]
                self.climbs += 1
                self._climb_from(start)
                continue
            if self.queue:
                return
            done = [n for n in self.neighbours if n in self.results]
            best = max(done, key=lambda n: self.results[n], default=None)
            if best is not None and self.results[best] > self.results[self.centre]:
                self.moves += 1  # the best finished neighbour; the others still training
                self._climb_from(best)  # would leave workers idle until they end
                continue
            if any(n not in self.results and n not in self.failed for n in self.neighbours):
                return
            self.centre = None  # a local optimum: restart from random configs
            self.neighbours, self.queue = [], []

    def ask(self) -> tuple[dict[str, Any], Hashable]:
        self._advance()
        if self.centre is not None and self.queue:
            ident = self.queue.pop()
        else:  # starting a climb, or waiting for the centre's last neighbours
            ident = self._random()
        self.asked += 1
        self.pending[self.asked] = ident
        return dict(self.configs[ident]), self.asked

    # -- results -------------------------------------------------------------------------

    def tell(self, handle: Hashable, score: float | None, status: Status) -> None:
        ident = self.pending.pop(handle, None)  # type: ignore[call-overload]
        if ident is None:
            return
        if status is Status.FAILED or score is None:
            self.fidelity.forget(handle)
            self.failed.add(ident)
            if ident in self.starts:
                self.starts.remove(ident)
        else:
            self.results[ident] = self.fidelity.key(handle, score, status)
        self._advance()

    def warm(self, trials: Sequence[tuple[dict[str, Any], Key]]) -> None:
        """``trials`` become known results; the best of them is the first climb's centre."""
        known = []
        for config, key in trials:
            ident = self.space.canonical(config)
            self.configs.setdefault(ident, dict(config))
            self.results[ident] = max(key, self.results.get(ident, key))
            known.append(ident)
        if known and self.centre is None:
            self.climbs += 1
            self._climb_from(max(known, key=lambda i: self.results[i]))

    def abandon(self, handle: Hashable) -> None:
        """A proposal that never ran is proposed again later (not counted as failed)."""
        ident = self.pending.pop(handle, None)  # type: ignore[call-overload]
        if ident is None:
            return
        self.fidelity.forget(handle)
        if ident in self.neighbours and self.centre is not None:
            self.queue.append(ident)
        elif ident in self.starts:
            self.starts.remove(ident)
            del self.configs[ident]
