"""The shared Ray Searcher plumbing over a Ray-free strategy core.

A strategy core proposes configurations (``ask``) and learns from outcomes (``tell``); it knows
nothing of Ray, trial ids or metric names, and always maximises a *score* (the metric, negated
when ``mode="min"``). :class:`SpaceSearcher` adapts any core to Ray Tune's pull-based
``Searcher`` contract:

* ``suggest(trial_id)`` returns a config, or ``Searcher.FINISHED`` once ``max_trials`` configs
  were handed out (run Tune with ``num_samples=-1``);
* ``on_trial_complete`` classifies the outcome: ``FAILED`` for errored trials and for results
  whose metric is missing, NaN or infinite (a core never learns from a non-finite value);
  ``PRUNED`` for trials stopped before ``max_epochs`` iterations (schedulers such as ASHA stop
  trials without any flag, so the iteration count is compared with the budget); else
  ``COMPLETE``;
* unknown trial ids (a restored experiment gives restarted trials new ids) are ignored with one
  warning, never a crash;
* ``save``/``restore`` pickle the whole object: core state, live trials, RNGs, counters;
* ``reconcile(trials)`` makes a restored searcher agree with the trials Tune restored (see
  :mod:`search.resume`).
"""

from __future__ import annotations

import enum
import logging
import math
import pickle
from typing import Any, Hashable, Protocol

from ray.tune.search import Searcher

from spaces import Space

__all__ = ["ENDED", "SpaceSearcher", "Status", "Strategy", "finite_metric", "improves"]

logger = logging.getLogger(__name__)

TRAINING_ITERATION = "training_iteration"
ENDED = ("TERMINATED", "ERROR")  # Tune's statuses of a trial that will not run again


class Status(enum.Enum):
    """How a trial ended, as a strategy core sees it."""

    COMPLETE = "complete"
    PRUNED = "pruned"
    FAILED = "failed"


class Strategy(Protocol):
    """A Ray-free search strategy over a space.

    ``ask`` is called when Tune has room for a trial and returns ``(config, handle)`` or ``None``
    when it has nothing to propose right now. ``report`` is called for each intermediate result
    with a finite score; ``tell`` exactly once per handle with the final score (``None`` when
    failed). Scores are to be maximised.
    """

    def ask(self) -> tuple[dict[str, Any], Hashable] | None: ...

    def report(self, handle: Hashable, step: int, score: float) -> None: ...

    def tell(self, handle: Hashable, score: float | None, status: Status) -> None: ...


def finite_metric(result: dict[str, Any] | None, metric: str) -> float | None:
    """``result[metric]`` as a float when present and finite, else ``None``."""
    if not result:
        return None
    value = result.get(metric)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)  # numpy scalars, 0-d tensors
        except (TypeError, ValueError):
            return None
    value = float(value)
    return value if math.isfinite(value) else None


def improves(value: float, best: Any, mode: str) -> bool:
    """Whether ``value`` beats ``best`` in ``mode`` (``best`` None or NaN: nothing yet)."""
    if best is None or (isinstance(best, float) and math.isnan(best)):
        return True
    return value > best if mode == "max" else value < best


def classify(
    result: dict[str, Any] | None, *, error: bool, metric: str, max_epochs: int | None
) -> Status:
    """The outcome of a finished trial: failed, pruned (stopped before its budget) or complete."""
    if error or finite_metric(result, metric) is None:
        return Status.FAILED
    iterations = (result or {}).get(TRAINING_ITERATION)
    if max_epochs is not None and isinstance(iterations, int) and iterations < max_epochs:
        return Status.PRUNED
    return Status.COMPLETE


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

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self.max_trials is not None and self.suggested >= self.max_trials:
            return Searcher.FINISHED
        proposal = self.strategy.ask()
        if proposal is None:  # not now; or never again, for cores with a finite list
            return Searcher.FINISHED if getattr(self.strategy, "exhausted", False) else None
        config, handle = proposal
        try:
            self.space.validate(config)
        except ValueError as e:
            logger.warning("%s searcher proposed an invalid config (%s); skipped.", self.name, e)
            self.strategy.tell(handle, None, Status.FAILED)
            return None
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
            if trial_id in getattr(self, "unlearned", ()):  # see reconcile: record how it ended
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

    def _abandon(self, handle: Hashable) -> None:
        """Forget a proposal that never ran: the core takes it back (``abandon``, e.g. a fixed
        list re-queues it) or is told it failed, so it learns no value from it."""
        try:
            abandon = getattr(self.strategy, "abandon", None)
            if abandon is not None:
                abandon(handle)
            else:
                self.strategy.tell(handle, None, Status.FAILED)
        except Exception:  # a strategy's bug must not end the experiment and its results
            logger.exception("%s searcher failed to drop a proposal; going on.", self.name)

    def _same_config(self, config: dict[str, Any], trial_config: dict[str, Any] | None) -> bool:
        given = {k: v for k, v in (trial_config or {}).items() if k in self.space.names}
        return dict(config) == given

    def reconcile(self, trials: list) -> None:
        """Agree with Tune's restored ``trials`` (objects with ``trial_id``, ``status``,
        ``config`` and ``last_result``).

        Tune copies the experiment snapshot and the searcher state to storage as separate files,
        so a crash between the copies can restore a searcher a snapshot newer or older than the
        trials:

        * a live trial Tune does not know was handed out after the snapshot: its proposal is
          abandoned (:meth:`_abandon`);
        * a live trial Tune has already ended is completed with its last result;
        * trials Tune has that this (older) state never handed out are replayed: the core is
          asked once per such trial, and a proposal equal to one of their configs is tracked as
          that trial (and learned from when it ends). Cores whose proposals follow from their
          saved state (random search, grids and point lists, Optuna before it has learned)
          propose them again; where learning since changed the proposals, the unmatched
          proposals are abandoned and those trials run without the core learning from them;
        * an errored trial that Tune runs again (``--retry-errored``) is not learned from a
          second time (the core was told of the failure).

        A trial the core does not learn from has its outcome recorded when it ends, and is not
        replayed by a later resume. The budget spent is the number of trials Tune knows, so the
        experiment ends with ``max_trials`` trials either way.
        """
        by_id = {t.trial_id: t for t in trials}
        for trial_id in list(self.live):
            trial = by_id.get(trial_id)
            if trial is None:
                logger.warning("%s searcher: trial %s is not in the restored experiment (it "
                               "started after the last snapshot); abandoned.", self.name, trial_id)
                self._abandon(self.live.pop(trial_id))
            elif trial.status in ENDED:
                self.on_trial_complete(trial_id, trial.last_result, error=trial.status == "ERROR")
        unlearned = self.__dict__.setdefault("unlearned", set())
        unseen = []
        for trial in trials:
            if trial.trial_id in self.live or trial.trial_id in unlearned:
                continue
            if trial.trial_id in self.outcomes:
                if trial.status not in ENDED:  # errored, and run again
                    unlearned.add(trial.trial_id)
                continue
            unseen.append(trial)
        proposals = [p for p in (self.strategy.ask() for _ in unseen) if p is not None]
        for trial in unseen:
            match = next((p for p in proposals if self._same_config(p[0], trial.config)), None)
            if match is None:
                logger.warning("%s searcher: trial %s was handed out after the restored "
                               "searcher state was saved, and the searcher does not propose it "
                               "again; it runs without the searcher learning from it.",
                               self.name, trial.trial_id)
                unlearned.add(trial.trial_id)
                if trial.status in ENDED:
                    self.on_trial_complete(trial.trial_id, trial.last_result,
                                           error=trial.status == "ERROR")
                continue
            proposals.remove(match)
            self.live[trial.trial_id] = match[1]
            if trial.status in ENDED:
                self.on_trial_complete(trial.trial_id, trial.last_result,
                                       error=trial.status == "ERROR")
        for proposal in proposals:
            self._abandon(proposal[1])
        self.suggested = len(trials)

    @property
    def budget_left(self) -> bool:
        """Whether ``suggest`` can still hand out a trial."""
        return (self.max_trials is None or self.suggested < self.max_trials) and \
            not getattr(self.strategy, "exhausted", False)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.__dict__, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.__dict__.update(pickle.load(f))
