"""Ranking finished trials honestly when a scheduler stops most of them early.

Under ASHA (or the median rule) a trial stopped at epoch ``r`` has only a partial score: its
value at ``r`` is not comparable with a trained model's, and taking it as final teaches a
searcher that early-stopped architectures are as good as their epoch-``r`` accuracy says. The
rule every strategy here uses instead is the one the scheduler itself applies:

* a finished trial's **key** is ``(fidelity, score)``: a complete trial's fidelity is infinite,
  a pruned trial's is the last epoch it reported (0 if none);
* keys compare lexicographically: a trial that went further beats one stopped earlier whatever
  their scores (it survived a rung the other did not), and trials stopped at the same rung rank
  by their score there, which is what ASHA ranked them by;
* with FIFO (no trial pruned) every key is ``(inf, score)``: the ranking is the score's.

Strategies that need a number rather than an order (REINFORCE's reward, Q-learning's return)
use :class:`RankReward`: the key's quantile among the recently finished trials, in ``[0, 1]``.

A trial of another experiment (a warm start, :class:`WarmTrial`) gets a key by the same rule,
measured against this experiment's budget: it counts as complete when it ran at least
``max_epochs`` reports, else as stopped at the epoch it reached.

Ray-free, like the strategy cores that use it.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from search.outcome import Status
from search.strategy import Strategy

__all__ = ["FidelityStrategy", "FidelityTracker", "Key", "RankReward", "SequenceStrategy",
           "WarmTrial", "finished_key", "rekeyed"]

Key = tuple[float, float]  # (fidelity, score): compare lexicographically, larger is better


def rekeyed(table: Mapping[Hashable, Key], ident: Callable[[Hashable], Hashable]
            ) -> dict[Hashable, Key]:
    """``table``'s keys under the identities ``ident`` gives its entries, the best key where
    two entries become one (a saved search restored under this version's canonical forms)."""
    out: dict[Hashable, Key] = {}
    for entry, key in table.items():
        new = ident(entry)
        out[new] = max(key, out.get(new, key))
    return out


@dataclass(frozen=True)
class WarmTrial:
    """A finished (complete or early-stopped) trial of another experiment, as its results hold
    it: what a warm start seeds a search with (:meth:`search.strategy.Strategy.warm`).

    Example:
        >>> WarmTrial({"lr": 0.01}, value=0.91, epochs=3, complete=True).fidelity(5)
        3.0
    """

    config: dict[str, Any]
    value: float  # the metric's last reported value, as reported (not yet a maximised score)
    epochs: int  # the reports it made
    complete: bool  # it ran its own experiment's full budget
    trial_id: str = ""

    def fidelity(self, max_epochs: int | None) -> float:
        """The key's fidelity under a budget of ``max_epochs``: infinite when the trial ran at
        least that many epochs (budget unknown: when it completed), else the epochs it ran."""
        full = self.complete if max_epochs is None else self.epochs >= max_epochs
        return math.inf if full else float(self.epochs)


def finished_key(status: Status, last_step: int, score: float) -> Key:
    """A finished trial's key: complete, infinite fidelity; else the last epoch it reported."""
    return (math.inf if status is Status.COMPLETE else float(last_step), float(score))


class FidelityTracker:
    """The last epoch each live handle reported, turned into a key when it finishes."""

    def __init__(self) -> None:
        self.last_step: dict[Hashable, int] = {}

    def report(self, handle: Hashable, step: int) -> None:
        self.last_step[handle] = max(step, self.last_step.get(handle, 0))

    def key(self, handle: Hashable, score: float, status: Status) -> Key:
        """The finished handle's key (its step record is dropped)."""
        return finished_key(status, self.last_step.pop(handle, 0), score)

    def forget(self, handle: Hashable) -> None:
        self.last_step.pop(handle, None)


class RankReward:
    """A key's quantile among the last ``window`` finished keys (ties count half), so pruned
    and complete trials share one scale: 1 beats every recent trial, 0 loses to all."""

    def __init__(self, window: int = 200) -> None:
        if window < 1:
            raise ValueError(f"`window` is {window}, but must be >= 1.")
        self.window = window
        self.recent: deque[Key] = deque()
        self.sorted: list[Key] = []

    def add(self, key: Key) -> float:
        """Record ``key`` and return its reward among the window (itself included)."""
        self.recent.append(key)
        bisect.insort(self.sorted, key)
        if len(self.recent) > self.window:
            old = self.recent.popleft()
            del self.sorted[bisect.bisect_left(self.sorted, old)]
        return self.reward(key)

    def reward(self, key: Key) -> float:
        """``key``'s quantile among the window, without recording it."""
        if not self.sorted:
            return 0.5
        below = bisect.bisect_left(self.sorted, key)
        equal = bisect.bisect_right(self.sorted, key) - below
        return (below + 0.5 * equal) / len(self.sorted)


class FidelityStrategy(Strategy):
    """A strategy that ranks its finished trials by key: intermediate results only record how
    far each trial got (``self.fidelity``, which the subclass creates)."""

    fidelity: FidelityTracker

    def report(self, handle: Hashable, step: int, score: float) -> None:
        self.fidelity.report(handle, step)


class SequenceStrategy(FidelityStrategy):
    """A strategy whose proposals are token sequences of the space (RL, Q-learning): each
    pending trial's sequence by handle (``self.pending``), and how many trials of each config,
    by canonical form, are training (``self.in_flight``), so that two sequences that build the
    same network count as one."""

    space: Any  # spaces.Space
    pending: dict[int, tuple[int, ...]]
    in_flight: dict[Hashable, int]

    def _ident(self, tokens: tuple[int, ...]) -> Hashable:
        return self.space.canonical(self.space.from_tokens(tokens))

    def _recount_in_flight(self) -> None:
        """``in_flight`` from the pending trials (a search saved by an earlier hpnas)."""
        self.in_flight = {}
        for tokens in self.pending.values():
            ident = self._ident(tokens)
            self.in_flight[ident] = self.in_flight.get(ident, 0) + 1

    def _start(self, handle: int, tokens: tuple[int, ...], ident: Hashable) -> None:
        """``tokens`` (canonical form ``ident``) is proposed as trial ``handle``."""
        self.pending[handle] = tokens
        self.in_flight[ident] = self.in_flight.get(ident, 0) + 1

    def _end(self, handle: Hashable) -> tuple[tuple[int, ...], Hashable] | None:
        """Trial ``handle`` is over: its sequence and canonical form, or ``None`` (and its
        reports forgotten) when it is not one of this search's pending trials."""
        tokens = self.pending.pop(handle, None)  # type: ignore[call-overload]
        if tokens is None:
            self.fidelity.forget(handle)
            return None
        ident = self._ident(tokens)
        left = self.in_flight.pop(ident, 1) - 1
        if left:
            self.in_flight[ident] = left
        return tokens, ident
