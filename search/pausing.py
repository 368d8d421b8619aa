"""Hyperband with a searcher that proposes trials one at a time, on fewer workers than a bracket.

Ray's Hyperband schedulers assume every trial exists from the start. hpnas's searchers propose
trials as workers free up (so a model can learn from earlier results), which breaks them in
three ways, each handled here:

* A bracket is "filled" while it holds its number of *live* trials, so once a bracket's trials
  have ended, later trials join that finished bracket again and train the full budget (measured
  with Ray's ``HyperBandScheduler``: 12 of 12 trials ran all 9 epochs), and a bracket that lost
  a trial (an error) waits for a replacement that never comes. Here a bracket is filled once it
  has *had* its number of trials; then the next bracket opens.
* A bracket's first trials reach the rung before its last ones exist. Ray's
  ``HyperBandForBOHB`` handles that (a trial at the rung pauses until the bracket is full, and a
  bracket is processed when nothing else can run, as at the end of a search) and runs the most
  exploratory bracket first, as Li et al.'s Algorithm 1 does: :class:`Hyperband` is that
  scheduler, with the bracket rule above, for every searcher (BOHB's included).
* Ray's ``ConcurrencyLimiter`` counts a paused trial as live, so with ``max_concurrent_trials``
  below a bracket's size the limiter hands out nothing new and the search stalls with every
  trial paused. :class:`PauseAwareLimiter` stops counting a trial while it is paused (the
  scheduler says so through ``on_pause``/``on_unpause``), so ``max_concurrent_trials`` bounds
  the *new* trials training at once; trials a halving resumes come on top of them (the
  cluster's resources are the hard bound).
* A restored experiment gives every trial to a scheduler built afresh: ended trials are kept
  out of its brackets (they would never report, and their bracket would never be halved).

Ray is imported at module level so that the classes pickle by reference.
"""

from __future__ import annotations

from typing import Any

from ray.tune.experiment import Trial
from ray.tune.schedulers import HyperBandForBOHB
from ray.tune.schedulers.hyperband import _Bracket
from ray.tune.search import ConcurrencyLimiter

__all__ = ["Hyperband", "PauseAwareLimiter"]


class PauseAwareLimiter(ConcurrencyLimiter):
    """``ConcurrencyLimiter`` whose count leaves out paused trials (see the module docstring)."""

    def _paused(self) -> set[str]:
        paused = self.__dict__.get("paused")
        if paused is None:
            paused = self.__dict__["paused"] = set()
        return paused

    def on_pause(self, trial_id: str) -> None:
        if trial_id in self.live_trials:
            self.live_trials.discard(trial_id)
            self._paused().add(trial_id)
        self.searcher.on_pause(trial_id)

    def on_unpause(self, trial_id: str) -> None:
        if trial_id in self._paused():
            self._paused().discard(trial_id)
            self.live_trials.add(trial_id)
        self.searcher.on_unpause(trial_id)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None,
                          error: bool = False) -> None:
        if trial_id in self._paused():  # stopped while it waited: still the searcher's to learn
            self._paused().discard(trial_id)
            self.live_trials.add(trial_id)
        super().on_trial_complete(trial_id, result=result, error=error)


class _BracketFilledOnce(_Bracket):
    """A bracket that is filled once it has *had* its number of trials, whatever became of them
    (Ray's counts the live ones: a bracket whose trials ended takes new ones, and one that lost
    a trial waits for a replacement that never comes)."""

    def filled(self) -> bool:
        return len(self._all_trials) >= self._n0


class Hyperband(HyperBandForBOHB):
    """Ray's ``HyperBandForBOHB`` with brackets filled once (see the module docstring)."""

    def _create_bracket(self, s: int) -> _Bracket:
        bracket = super()._create_bracket(s)
        bracket.__class__ = _BracketFilledOnce
        return bracket

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        # A restored experiment hands every trial to a scheduler built afresh; the ended ones
        # will never report, and in a bracket would keep it from ever being halved.
        if trial.status in (Trial.TERMINATED, Trial.ERROR):
            return
        super().on_trial_add(tune_controller, trial)

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        info = self._trial_info.get(trial)
        if info is None:  # ended before this scheduler saw it
            return
        bracket = info[0]
        if bracket.filled():
            super().on_trial_remove(tune_controller, trial)
        else:  # its other trials are still to come: halve once they are there
            bracket.cleanup_trial(trial)
