"""The shared Ray Searcher plumbing over a Ray-free strategy core (:mod:`search.strategy`).

:class:`SpaceSearcher` adapts any core to Ray Tune's pull-based ``Searcher`` contract:

* ``suggest(trial_id)`` returns a config, or ``Searcher.FINISHED`` once ``max_trials`` configs
  were handed out or the core is exhausted (run Tune with ``num_samples=-1``);
* ``on_trial_complete`` classifies the outcome (:func:`search.outcome.classify`): ``FAILED`` for
  errored trials and for results whose metric is missing, NaN or infinite (a core never learns
  from a non-finite value); ``PRUNED`` for trials stopped before ``max_epochs`` iterations
  (schedulers such as ASHA stop trials without any flag, so the iteration count is compared
  with the budget); else ``COMPLETE``;
* unknown trial ids (a restored experiment gives restarted trials new ids) are ignored with one
  warning, never a crash;
* ``save``/``restore`` pickle the whole object: core state, live trials, RNGs, counters;
* ``warm(trials)`` seeds a new search with another experiment's finished trials (a warm start):
  each gets its ``(fidelity, score)`` key under this search's budget and mode, and the core
  learns from them (:meth:`search.strategy.Strategy.warm`); they are never handed out, so they
  spend none of ``max_trials``.

Making a restored searcher agree with the trials Tune restored is the resume's business
(:func:`cluster.resume.reconcile`).
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Sequence
from typing import Any, Hashable

from ray.tune.search import Searcher

from search.fidelity import WarmTrial
from search.outcome import TRAINING_ITERATION, Status, classify, finite_metric
from search.strategy import Strategy
from spaces import Space

__all__ = ["MAX_INVALID_IN_A_ROW", "SearchStalled", "SpaceSearcher"]

logger = logging.getLogger(__name__)

MAX_INVALID_IN_A_ROW = 100  # then the search stops with one line instead of asking forever


class SearchStalled(RuntimeError):
    """A searcher that only proposes invalid configs; its message is one line for the user."""


class SpaceSearcher(Searcher):
    """A Ray Tune ``Searcher`` over a :class:`~spaces.Space` driven by a strategy core.

    Args:
        strategy: the Ray-free core.
        space: the space the core searches (used to validate what the core proposes).
        metric: the result key to optimise.
        mode: ``"max"`` or ``"min"``.
        max_epochs: the per-trial iteration budget; trials ending earlier count as pruned.
        max_trials: hand out at most this many configs, then ``Searcher.FINISHED``.
        name: the searcher's registry name (for logs and results).
    """

    def __init__(
        self,
        strategy: Strategy,
        *,
        space: Space,
        metric: str,
        mode: str,
        max_epochs: int | None = None,
        max_trials: int | None = None,
        name: str = "",
    ) -> None:
        if mode not in ("max", "min"):
            raise ValueError(f"`mode` is {mode!r}, but must be 'max' or 'min'.")
        super().__init__(metric=metric, mode=mode)
        self.strategy = strategy
        self.space = space
        self.max_epochs = max_epochs
        self.max_trials = max_trials
        self.name = name
        self.suggested = 0
        self.live: dict[str, Hashable] = {}
        self.outcomes: dict[str, Status] = {}
        self.unlearned: set[str] = set()  # restored trials the core does not learn from
        self.invalid_in_a_row = 0
        self.warmed = 0  # trials of another experiment the core learned from
        self._warned_unknown = False

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict, **spec: Any
    ) -> bool:
        if config:
            return False  # this searcher owns its space; a param_space would be ignored
        self._metric = self._metric or metric
        self._mode = self._mode or mode
        return True

    def score(self, value: float) -> float:
        return value if self._mode == "max" else -value

    def warm(self, trials: Sequence[WarmTrial]) -> None:
        """Seed the core with ``trials`` (oldest first; valid configs of the space with finite
        values), once, before the first suggestion."""
        if self.suggested or self.warmed:
            raise RuntimeError("a searcher is warm-started once, before its first suggestion.")
        self.strategy.warm([(dict(t.config), (t.fidelity(self.max_epochs), self.score(t.value)))
                            for t in trials])
        self.warmed = len(trials)

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self.max_trials is not None and self.suggested >= self.max_trials:
            return Searcher.FINISHED
        proposal = self.strategy.ask()
        if proposal is None:  # not now; or never again, for cores with a finite list
            return Searcher.FINISHED if self.strategy.exhausted else None
        config, handle = proposal
        try:
            self.space.validate(config)
        except ValueError as e:
            self.strategy.tell(handle, None, Status.FAILED)
            self.invalid_in_a_row += 1
            if self.invalid_in_a_row >= MAX_INVALID_IN_A_ROW:
                raise SearchStalled(
                    f"the {self.name} searcher proposed {self.invalid_in_a_row} invalid configs "
                    f"in a row (the last: {e}); the space cannot be searched as given: check its "
                    "ranges and conditions.") from None
            if self.invalid_in_a_row == 1:
                logger.warning("%s searcher proposed an invalid config (%s); skipped.",
                               self.name, e)
            return None
        self.invalid_in_a_row = 0
        self.live[trial_id] = handle
        self.suggested += 1
        return dict(config)

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        handle = self.live.get(trial_id)
        value = finite_metric(result, self._metric)
        step = result.get(TRAINING_ITERATION)
        if handle is None or value is None or not isinstance(step, int):
            return
        self.strategy.report(handle, step, self.score(value))

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        handle = self.live.pop(trial_id, None)
        if handle is None:
            if trial_id in self.unlearned:  # see cluster.resume.reconcile: record how it ended
                self.outcomes[trial_id] = classify(result, error=error, metric=self._metric,
                                                   max_epochs=self.max_epochs)
            elif not self._warned_unknown:
                logger.warning(
                    "%s searcher: completion of trial %s, which it never handed out, ignored "
                    "(further ones are ignored silently).", self.name, trial_id
                )
                self._warned_unknown = True
            return
        status = classify(result, error=error, metric=self._metric, max_epochs=self.max_epochs)
        value = finite_metric(result, self._metric)
        self.outcomes[trial_id] = status
        step = (result or {}).get(TRAINING_ITERATION)
        if status is Status.PRUNED and value is not None and isinstance(step, int):
            # Tune skips on_trial_result for the result that made the scheduler stop the
            # trial: report it here, so the core ranks a pruned trial by its last value.
            self.strategy.report(handle, step, self.score(value))
        try:
            self.strategy.tell(
                handle, None if status is Status.FAILED else self.score(value), status  # type: ignore[arg-type]
            )
        except Exception:  # a strategy's bug must not end the experiment and its results
            logger.exception("%s searcher failed to learn from trial %s; going on.", self.name,
                             trial_id)

    def on_pause(self, trial_id: str) -> None:
        """Hyperband paused the trial until its bracket catches up (BOHB's model is told)."""
        handle = self.live.get(trial_id)
        if handle is not None:
            self.strategy.pause(handle)

    def on_unpause(self, trial_id: str) -> None:
        handle = self.live.get(trial_id)
        if handle is not None:
            self.strategy.unpause(handle)

    def abandon(self, handle: Hashable) -> None:
        """Forget a proposal that never ran: the core takes it back (:meth:`Strategy.abandon`:
        a fixed list re-queues it; by default it counts as failed, so nothing is learned)."""
        try:
            self.strategy.abandon(handle)
        except Exception:  # a strategy's bug must not end the experiment and its results
            logger.exception("%s searcher failed to drop a proposal; going on.", self.name)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.__dict__, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.__dict__.update(pickle.load(f))
