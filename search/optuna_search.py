"""Optuna's samplers (TPE by default) over our define-by-run space, with honest trial states.

Ray's own ``OptunaSearch`` tells Optuna ``COMPLETE`` for a trial that ASHA stopped early, and
``COMPLETE`` with the last value for a trial that raised; a NaN makes ``study.tell`` fail and
leaves the trial RUNNING forever. Here the adapter classifies every outcome (see
:mod:`search.adapter`) and this core tells Optuna ``PRUNED`` (with the trial's intermediate values
already reported step by step, so TPE ranks it by its last value), ``FAIL`` or ``COMPLETE``.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Literal

import optuna

from search.outcome import Status
from search.strategy import Strategy
from spaces import Space

__all__ = ["OPTUNA_SAMPLERS", "OptunaOptions", "OptunaStrategy"]

logger = logging.getLogger(__name__)


def _tpe(seed: int | None) -> optuna.samplers.BaseSampler:
    # multivariate + group model the joint density over conditional (variable-depth) params.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True)


OPTUNA_SAMPLERS: dict[str, Callable[[int | None], optuna.samplers.BaseSampler]] = {
    "tpe": _tpe,
    "tpe_independent": lambda seed: optuna.samplers.TPESampler(seed=seed),
    "random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
    "cmaes": lambda seed: optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False),
    "nsga2": lambda seed: optuna.samplers.NSGAIISampler(seed=seed),
    "qmc": lambda seed: optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False),
}

@dataclass(frozen=True)
class OptunaOptions:
    """Optuna's sampler by name; TPE (multivariate, grouped for conditional spaces) by default."""

    sampler: Literal["tpe", "tpe_independent", "random", "cmaes", "nsga2", "qmc"] = "tpe"


_STATES = {
    Status.COMPLETE: optuna.trial.TrialState.COMPLETE,
    Status.PRUNED: optuna.trial.TrialState.PRUNED,
    Status.FAILED: optuna.trial.TrialState.FAIL,
}


class OptunaStrategy(Strategy):
    """Ask-and-tell over an in-memory Optuna study that maximises the adapter's score.

    Args:
        space: the space; its define-by-run function asks only the active parameters.
        options: the sampler, a key of :data:`OPTUNA_SAMPLERS` (``tpe`` is multivariate,
            grouped TPE; the record's type admits only those keys).
        seed: the sampler's seed.
    """

    def __init__(self, space: Space, options: OptunaOptions = OptunaOptions(), *,
                 seed: int | None = None) -> None:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.space = space
        self.sampler = options.sampler
        self.study = optuna.create_study(
            direction="maximize", sampler=OPTUNA_SAMPLERS[options.sampler](seed)
        )
        self.trials: dict[int, optuna.trial.Trial] = {}
        self.last_step: dict[int, int] = {}

    def ask(self) -> tuple[dict[str, Any], Hashable]:
        trial = self.study.ask()
        config = self.space.define_by_run(trial)
        self.trials[trial.number] = trial
        return config, trial.number

    def report(self, handle: Hashable, step: int, score: float) -> None:
        trial = self.trials.get(handle)  # type: ignore[call-overload]
        if trial is not None and step > self.last_step.get(trial.number, -1):
            trial.report(score, step)
            self.last_step[trial.number] = step

    def tell(self, handle: Hashable, score: float | None, status: Status) -> None:
        trial = self.trials.pop(handle, None)  # type: ignore[call-overload]
        if trial is None:
            return
        self.last_step.pop(trial.number, None)
        self.study.tell(
            trial, score if status is Status.COMPLETE else None, state=_STATES[status]
        )
