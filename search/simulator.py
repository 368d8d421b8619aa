"""Run any registered Searcher against a tabular benchmark, without Ray actors.

The same ``Searcher`` objects as in real runs are driven through Tune's calls (``suggest``,
``on_trial_result``, ``on_trial_complete``) by an event loop of ``workers`` simulated workers:
each proposal "trains" for the table's training time of that architecture, and completions are
delivered in simulated-time order, so a searcher sees exactly the asynchrony a cluster of that
many workers would give it. Thousands of evaluations run per second.

Example:
    >>> table = load_nb201("cifar100")
    >>> searcher = make_searcher("evolution", space=get_space("nb201"), metric="val_acc",
    ...                          mode="max", seed=0, max_epochs=1)
    >>> history = simulate(searcher, nb201_objective(table), workers=8, max_evals=500, seed=0)
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from ray.tune.search import Searcher

__all__ = ["Evaluation", "Objective", "incumbent_curve", "nb201_objective", "simulate"]

# (config, rng) -> (observed metric, true metric, training seconds)
Objective = Callable[[dict[str, Any], np.random.Generator], tuple[float, float, float]]


@dataclass(frozen=True)
class Evaluation:
    """One finished simulated trial."""

    index: int  # completion order, from 0
    finish_s: float  # simulated wall-clock at completion
    observed: float  # what the searcher was told
    true: float  # the noise-free value (seed-averaged accuracy on NAS-Bench-201)
    config: dict[str, Any]


def nb201_objective(table: Any) -> Objective:
    """NAS-Bench-201 look-ups: one seed's validation accuracy, the mean over seeds, and time."""

    def objective(config: dict[str, Any], rng: np.random.Generator
                  ) -> tuple[float, float, float]:
        outcome = table.sample(config, rng)
        return outcome["val_acc"], table.mean_val_acc(config), outcome["train_time_s"]

    return objective


def simulate(searcher: Searcher, objective: Objective, *, workers: int, max_evals: int,
             metric: str = "val_acc", seed: int = 0) -> list[Evaluation]:
    """Drive ``searcher`` for ``max_evals`` evaluations on ``workers`` simulated workers."""
    if workers < 1:
        raise ValueError(f"`workers` is {workers}, but must be >= 1.")
    rng = np.random.default_rng(seed)
    running: list[tuple[float, int, str, dict[str, Any], float, float]] = []
    history: list[Evaluation] = []
    launched = 0
    finished = False

    def launch(now: float) -> None:
        nonlocal launched, finished
        while len(running) < workers and not finished and launched < max_evals:
            trial_id = f"sim_{launched:06d}"
            config = searcher.suggest(trial_id)
            if config == Searcher.FINISHED:
                finished = True
                return
            if config is None:
                return
            observed, true, seconds = objective(config, rng)
            heapq.heappush(running, (now + seconds, launched, trial_id, config, observed, true))
            launched += 1

    launch(0.0)
    while running:
        now, _, trial_id, config, observed, true = heapq.heappop(running)
        result = {metric: observed, "training_iteration": 1}
        searcher.on_trial_result(trial_id, result)
        searcher.on_trial_complete(trial_id, result)
        history.append(Evaluation(len(history), now, observed, true, config))
        launch(now)
    if not finished and launched < max_evals:
        raise RuntimeError("the searcher proposed nothing while no trial was running; "
                           "it would wait forever.")
    return history


def incumbent_curve(history: list[Evaluation], mode: str = "max") -> np.ndarray:
    """After each evaluation, the true value of the best-*observed* config so far (what the
    search would return), not the best true value it happened to evaluate."""
    curve = np.empty(len(history))
    best_observed = None
    best_true = np.nan
    for i, e in enumerate(history):
        better = best_observed is None or (
            e.observed > best_observed if mode == "max" else e.observed < best_observed)
        if better:
            best_observed, best_true = e.observed, e.true
        curve[i] = best_true
    return curve
