"""The schedulers' live queue picks what Ray's FIFO scan picks, without keeping finished trials."""

from __future__ import annotations

import random

import pytest
from ray.tune.experiment import Trial
from ray.tune.schedulers import FIFOScheduler

from search.live_queue import LiveAsha, LiveFifo, LiveMedian

STATUSES = (Trial.PENDING, Trial.RUNNING, Trial.PAUSED, Trial.TERMINATED, Trial.ERROR)


class FakeTrial:
    def __init__(self, i: int) -> None:
        self.trial_id = str(i)
        self.status = Trial.PENDING


class FakeController:
    def __init__(self) -> None:
        self.trials: list[FakeTrial] = []

    def get_trials(self) -> list[FakeTrial]:
        return self.trials


@pytest.mark.parametrize("seed", range(5))
def test_live_fifo_chooses_as_ray_fifo(seed: int) -> None:
    rng = random.Random(seed)
    controller, live, ray_fifo = FakeController(), LiveFifo(), FIFOScheduler()
    for step in range(400):
        if rng.random() < 0.3:
            trial = FakeTrial(step)
            controller.trials.append(trial)
            live.on_trial_add(controller, trial)
        for trial in controller.trials:  # statuses move on; finished trials stay finished
            if trial.status not in (Trial.TERMINATED, Trial.ERROR) and rng.random() < 0.2:
                trial.status = rng.choice(STATUSES)
        assert live.choose_trial_to_run(controller) is ray_fifo.choose_trial_to_run(controller)
    finished = sum(t.status in (Trial.TERMINATED, Trial.ERROR) for t in controller.trials)
    assert finished > 50
    assert len(live._queue()) == len(controller.trials) - finished


def test_live_schedulers_pickle_without_trials() -> None:
    from ray import cloudpickle as pickle  # as Tune pickles the tuner

    for scheduler in (LiveFifo(), LiveAsha(metric="m", mode="max", max_t=9),
                      LiveMedian(metric="m", mode="max")):
        controller = FakeController()
        trial = FakeTrial(0)
        controller.trials.append(trial)
        FIFOScheduler.on_trial_add(scheduler, controller, trial)  # the base hook: no checks
        scheduler._queue().append(trial)
        copy = pickle.loads(pickle.dumps(scheduler))
        assert copy._queue() == [] and type(copy) is type(scheduler)
