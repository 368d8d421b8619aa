"""Ray's PBT and PB2 behind hpnas's searchers.

Ray's ``PopulationBasedTraining`` refuses any search algorithm, because a searcher that learns
from final scores would be misled by trials whose config PBT changed. hpnas pairs PBT and PB2
only with searchers that do not learn (random, grid, points: they draw the initial population;
:mod:`cluster.spec` enforces it), and needs its own search algorithm in place for the rest of
the service (results, resume, the trial budget). These subclasses skip that one check and are
otherwise Ray's. Ray is imported at module level so that they pickle by reference.
"""

from __future__ import annotations

from typing import Any

from ray.tune.schedulers import PopulationBasedTraining
from ray.tune.schedulers.pb2 import PB2

__all__ = ["SeededPb2", "SeededPbt"]


class _WithoutSearchAlg:
    """The controller as PBT's ``on_trial_add`` sees it: no search algorithm."""

    search_alg = None

    def __init__(self, controller: Any) -> None:
        self._controller = controller

    def __getattr__(self, name: str) -> Any:
        return getattr(self._controller, name)


class SeededPbt(PopulationBasedTraining):
    """Ray's PBT over an initial population drawn by a non-learning hpnas searcher."""

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        super().on_trial_add(_WithoutSearchAlg(tune_controller), trial)


class SeededPb2(PB2):
    """Ray's PB2 over an initial population drawn by a non-learning hpnas searcher."""

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        super().on_trial_add(_WithoutSearchAlg(tune_controller), trial)
