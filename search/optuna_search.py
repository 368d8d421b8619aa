"""Optuna's samplers (TPE by default) over our define-by-run space, with honest trial states.

Ray's own ``OptunaSearch`` tells Optuna ``COMPLETE`` for a trial that ASHA stopped early, and
``COMPLETE`` with the last value for a trial that raised; a NaN makes ``study.tell`` fail and
leaves the trial RUNNING forever. Here the adapter classifies every outcome (see
:mod:`search.adapter`) and this core tells Optuna ``PRUNED`` (with the trial's intermediate values
already reported step by step, so TPE ranks it by its last value), ``FAIL`` or ``COMPLETE``.

No budget goes to repeats. When the sampler proposes a config that already has a result, or is
still training (or one the space says builds the same model, :meth:`spaces.Space.canonical`), the
sampler's trial is told ``FAIL`` (so it adds no observation) and an unseen neighbour of that
config (one decision changed; else a random config neither run nor running) is enqueued and run
instead. A categorical architecture space needs it: on NAS-Bench-201 with 8 workers TPE spent a
fifth of its first 100 trials on repeats; continuous spaces rarely repeat.

A warm start adds another experiment's trials to the study (``study.add_trial``) with the
distributions the define-by-run function gives their active parameters: complete ones with their
score, early-stopped ones as ``PRUNED`` with their last value as the intermediate value of the
epoch they reached; they count as results, so they are not run again.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import optuna

from search.fidelity import Key, finished_key, rekeyed
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
        self.known: dict[Hashable, Key] = {}  # canonical config -> best key of its results
        self.running: dict[int, Hashable] = {}  # trial number -> canonical config, in flight
        self.rng = np.random.default_rng(seed)  # draws unseen configs

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "warm_keys" in state:  # saved by hpnas 0.6 or earlier: only warm trials were known
            state["known"] = state.pop("warm_keys")
        # forms saved by an earlier hpnas become this version's
        state["known"] = rekeyed(state.get("known", {}), state["space"].upgrade_canonical)
        state.setdefault("running", {})  # 0.6 and earlier: in-flight trials were not recorded
        self.__dict__.update(state)

    def ask(self) -> tuple[dict[str, Any], Hashable]:
        trial = self.study.ask()
        config = self.space.define_by_run(trial)
        ident = self.space.canonical(config)
        if ident in self.known or ident in self.running.values():
            # a repeat: no observation (FAIL), and an unseen neighbour of it runs instead
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            trial = self._ask_unseen(near=config)
            config = self.space.define_by_run(trial)
            ident = self.space.canonical(config)
        self.trials[trial.number] = trial
        self.running[trial.number] = ident
        return config, trial.number

    def _ask_unseen(self, near: dict[str, Any]) -> optuna.trial.Trial:
        """A trial of a config neither run nor running: a neighbour of ``near`` (the sampler's
        repeated proposal, one decision changed), else a random one (if one is found)."""
        in_flight = set(self.running.values())

        def fresh(config: dict[str, Any]) -> bool:
            ident = self.space.canonical(config)
            return ident not in self.known and ident not in in_flight

        config = next((c for c in self.space.neighbours(near, self.rng) if fresh(c)), None)
        if config is None:
            config = self.draw_unseen(lambda: self.space.sample(self.rng), fresh)
        self.study.enqueue_trial(config)
        return self.study.ask()

    def warm(self, trials: Sequence[tuple[dict[str, Any], Key]]) -> None:
        """Add ``trials`` to the study: complete ones with their score, stopped ones pruned."""
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
            self._known(self.space.canonical(params), key)

    def report(self, handle: Hashable, step: int, score: float) -> None:
        trial = self.trials.get(handle)  # type: ignore[call-overload]
        if trial is not None and step > self.last_step.get(trial.number, -1):
            trial.report(score, step)
            self.last_step[trial.number] = step

    def tell(self, handle: Hashable, score: float | None, status: Status) -> None:
        trial = self.trials.pop(handle, None)  # type: ignore[call-overload]
        if trial is None:
            return
        step = self.last_step.pop(trial.number, 0)
        ident = self.running.pop(trial.number, None)
        self.study.tell(
            trial, score if status is Status.COMPLETE else None, state=_STATES[status]
        )
        if status is not Status.FAILED and score is not None and ident is not None:
            self._known(ident, finished_key(status, step, score))

    def _known(self, ident: Hashable, key: Key) -> None:
        """Record a result of ``ident``; the best key stays (a rung reached beats a lower one)."""
        self.known[ident] = max(key, self.known.get(ident, key))
