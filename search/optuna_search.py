"""Optuna's samplers (TPE by default) over our define-by-run space, with honest trial states.

Ray's own ``OptunaSearch`` tells Optuna ``COMPLETE`` for a trial that ASHA stopped early, and
``COMPLETE`` with the last value for a trial that raised; a NaN makes ``study.tell`` fail and
leaves the trial RUNNING forever. Here the adapter classifies every outcome (see
:mod:`search.adapter`) and this core tells Optuna ``PRUNED`` (with the trial's intermediate values
already reported step by step, so TPE ranks it by its last value), ``FAIL`` or ``COMPLETE``.

A warm start adds another experiment's trials to the study (``study.add_trial``) with the
distributions the define-by-run function gives their active parameters: complete ones with their
score, early-stopped ones as ``PRUNED`` with their last value as the intermediate value of the
epoch they reached. When the sampler proposes one of those configs again, the trial is told the
known result at once (as Optuna's FAQ does for repeated configs) and the sampler asked again;
after ``max_repeat_tries`` repeats in a row, a random config no warm trial ran is proposed.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Hashable, Literal

import numpy as np
import optuna

from search.fidelity import Key, rekeyed
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


class _Replay:
    """A stand-in for an Optuna trial that answers the space's define-by-run calls with a given
    config's values and keeps the distribution each call names (so the distributions of a
    finished config come from the one define-by-run function, not a second spelling of it)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.distributions: dict[str, optuna.distributions.BaseDistribution] = {}

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        self.distributions[name] = optuna.distributions.CategoricalDistribution(choices)
        return self.config[name]

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1,
                    log: bool = False) -> int:
        self.distributions[name] = optuna.distributions.IntDistribution(low, high, log=log,
                                                                         step=step)
        return self.config[name]

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float:
        self.distributions[name] = optuna.distributions.FloatDistribution(low, high, log=log,
                                                                           step=step)
        return self.config[name]


class OptunaStrategy(Strategy):
    """Ask-and-tell over an in-memory Optuna study that maximises the adapter's score.

    Args:
        space: the space; its define-by-run function asks only the active parameters.
        options: the sampler, a key of :data:`OPTUNA_SAMPLERS` (``tpe`` is multivariate,
            grouped TPE; the record's type admits only those keys).
        seed: the sampler's seed.
    """

    max_repeat_tries = 20  # warm configs proposed in a row before a random unseen one
    # canonical config -> key of each warm trial (a class default: states saved before it)
    warm_keys: Mapping[Hashable, Key] = MappingProxyType({})

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
        self.rng = np.random.default_rng(seed)  # draws unseen configs after a warm start

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "warm_keys" in state:  # forms saved by an earlier hpnas become this version's
            state["warm_keys"] = rekeyed(state["warm_keys"], state["space"].upgrade_canonical)
        self.__dict__.update(state)

    def ask(self) -> tuple[dict[str, Any], Hashable]:
        trial = self.study.ask()
        config = self.space.define_by_run(trial)
        for repeats in range(1, self.max_repeat_tries + 1):
            key = self.warm_keys.get(self.space.canonical(config))
            if key is None:
                break
            self._tell_known(trial, key)  # a warm config: answered from its result, not rerun
            trial = self.study.ask() if repeats < self.max_repeat_tries else self._ask_unseen()
            config = self.space.define_by_run(trial)
        self.trials[trial.number] = trial
        return config, trial.number

    def _ask_unseen(self) -> optuna.trial.Trial:
        """A trial of a random config that no warm trial ran (if one is found)."""
        config = self.draw_unseen(lambda: self.space.sample(self.rng),
                                  lambda c: self.space.canonical(c) not in self.warm_keys)
        self.study.enqueue_trial(config)
        return self.study.ask()

    def warm(self, trials: Sequence[tuple[dict[str, Any], Key]]) -> None:
        """Add ``trials`` to the study: complete ones with their score, stopped ones pruned."""
        known = dict(self.warm_keys)
        for config, key in trials:
            replay = _Replay(config)
            params = self.space.define_by_run(replay)
            fidelity, score = key
            if fidelity == math.inf:
                trial = optuna.trial.create_trial(
                    params=params, distributions=replay.distributions, value=score)
            else:
                trial = optuna.trial.create_trial(
                    params=params, distributions=replay.distributions,
                    state=optuna.trial.TrialState.PRUNED,
                    intermediate_values={int(fidelity): score})
            self.study.add_trial(trial)
            ident = self.space.canonical(params)
            known[ident] = max(key, known.get(ident, key))
        self.warm_keys = known

    def _tell_known(self, trial: optuna.trial.Trial, key: Key) -> None:
        """Tell ``trial`` the result its config already has, as Optuna's FAQ does for repeats."""
        fidelity, score = key
        if fidelity == math.inf:
            self.study.tell(trial, score)
        else:
            trial.report(score, int(fidelity))
            self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)

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
