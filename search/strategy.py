"""The interface of a strategy core: a Ray-free ask/tell search over a space.

A core proposes configurations (:meth:`Strategy.ask`) and learns from outcomes
(:meth:`Strategy.tell`); it knows nothing of Ray, trial ids or metric names, and always
maximises a *score* (the metric, negated when the experiment minimises it).
:class:`search.adapter.SpaceSearcher` adapts any core to Ray Tune's ``Searcher``.

Every core takes ``(space, options, *, seed)``: ``options`` is the searcher's option record
(a frozen dataclass that checks its own values once, when built), so the record read from an
experiment file is the constructor's input as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Hashable, TypeVar

from search.outcome import Status

if TYPE_CHECKING:
    from search.fidelity import Key

__all__ = ["Strategy"]

T = TypeVar("T")


class Strategy:
    """Base class of the strategy cores; its optional hooks have working defaults.

    When each hook is called:

    * ``ask()`` when Tune has room for a trial: ``(config, handle)``, or ``None`` when the core
      has nothing to propose right now (``exhausted`` then says whether it ever will again);
    * ``report(handle, step, score)`` for each intermediate result with a finite score;
    * ``tell(handle, score, status)`` exactly once per handle that ran, with the final score
      (``None`` when the trial failed);
    * ``abandon(handle)`` instead of ``tell`` for a proposal that never ran (a resumed
      experiment that never had that trial); the default tells the core it failed, so it
      learns no value from it;
    * ``warm(trials)`` at most once, before the first ``ask``, with another experiment's
      finished trials (a warm start): the core learns from them as if it had proposed them,
      never proposes them again and spends no budget on them. Every core implements it; the
      default refuses.
    """

    def ask(self) -> tuple[dict[str, Any], Hashable] | None:
        raise NotImplementedError

    def report(self, handle: Hashable, step: int, score: float) -> None:
        """Intermediate results; the default ignores them."""

    def pause(self, handle: Hashable) -> None:
        """A scheduler paused the trial (Hyperband, until its bracket catches up); the default
        ignores it."""

    def unpause(self, handle: Hashable) -> None:
        """The paused trial trains again; the default ignores it."""

    def tell(self, handle: Hashable, score: float | None, status: Status) -> None:
        raise NotImplementedError

    def warm(self, trials: Sequence[tuple[dict[str, Any], Key]]) -> None:
        """Learn from ``trials``, ``(config, key)`` pairs oldest first, each a valid config of
        the space with its ``(fidelity, score)`` key (:mod:`search.fidelity`)."""
        raise NotImplementedError(f"{type(self).__name__} cannot be warm-started.")

    def abandon(self, handle: Hashable) -> None:
        """A proposal that never ran; by default it counts as failed."""
        self.tell(handle, None, Status.FAILED)

    @property
    def exhausted(self) -> bool:
        """True once ``ask`` will never propose anything again (finite lists)."""
        return False

    # Random draws that look for a config not tried yet; once that many found none, the space
    # is (nearly) used up and later searches draw only USED_UP_DRAWS, so a search that runs
    # past the space's size (10,000 trials of NAS-Bench-201's 5,773 cell functions) does not
    # pay a thousand draws per proposal.
    UNSEEN_DRAWS = 1000
    USED_UP_DRAWS = 20
    used_up = False  # a class default: searches saved before it

    def draw_unseen(self, draw: Callable[[], T], fresh: Callable[[T], bool],
                    first: T | None = None) -> T:
        """``first`` (if given), then ``draw()``, until ``fresh`` accepts one; the last draw (a
        repeat) if none was."""
        value = draw() if first is None else first
        for _ in range(self.USED_UP_DRAWS if self.used_up else self.UNSEEN_DRAWS):
            if fresh(value):
                return value
            value = draw()
        self.used_up = True
        return value
