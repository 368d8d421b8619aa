"""A compact live progress line instead of Ray's full config dump."""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, TextIO

from ray.tune import Callback

from search.outcome import (
    ENDED,
    STOPPED,
    Status,
    classify,
    finite_metric,
    improves,
    never_reported,
)

__all__ = ["ProgressPrinter", "TrialTally"]


class TrialTally(Callback):
    """Counts trials as they move (running, and complete/pruned/failed as the searchers classify
    them), the best metric value so far and each ended trial's seconds; ``changed`` is called
    after every update, with ``ended`` true when a trial has just ended."""

    def __init__(self, *, metric: str, mode: str, max_epochs: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.metric = metric
        self.mode = mode
        self.max_epochs = max_epochs
        self.clock = clock
        self.start = clock()
        self.running: set[str] = set()
        self.outcomes: dict[str, Status] = {}
        self._counts = {s: 0 for s in Status}  # of outcomes, kept as they change (not recounted)
        self.best: tuple[float, str] | None = None
        self.seconds: dict[str, float] = {}
        self.adopted = False
        self.stopped: set[str] = set()  # cut by the experiment's end before any usable result

    def setup(self, **info: Any) -> None:
        self.start = self.clock()  # a restored callback was pickled in another process
        self.adopted = False
        self.stopped = set()  # the trials cut at the last run's end run again, or are adopted

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        """On a resumed run, count the trials that ended before the crash and the best value
        any restored trial reported."""
        if self.adopted:
            return
        self.adopted = True
        for trial in trials:
            if trial.status == "TERMINATED" and never_reported(trial.last_result, self.metric):
                self.stopped.add(trial.trial_id)  # the experiment's end cut it before a result
            elif trial.status in ENDED and trial.trial_id not in self.outcomes:
                # The base class's bookkeeping only: a subclass's per-trial side effects (the
                # seconds histogram) happened in the run that saw the trial end.
                TrialTally._end(self, trial, error=trial.status == "ERROR")
            best = ((getattr(trial, "metric_analysis", None) or {}).get(self.metric)
                    or {}).get(self.mode)
            value = finite_metric({self.metric: best}, self.metric)
            if value is not None and self._better(value):
                self.best = (value, trial.trial_id)
        if trials:
            self.changed(ended=False)

    def changed(self, ended: bool) -> None:
        """Hook for subclasses."""

    def counts(self) -> dict[Status, int]:
        return dict(self._counts)

    def _record(self, trial_id: str, outcome: Status) -> None:
        previous = self.outcomes.get(trial_id)
        if previous is not None:  # a retried trial ends again
            self._counts[previous] -= 1
        self.outcomes[trial_id] = outcome
        self._counts[outcome] += 1

    def _better(self, value: float) -> bool:
        return improves(value, self.best[0] if self.best else None, self.mode)

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.running.add(trial.trial_id)
        self.changed(ended=False)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        self.running.add(trial.trial_id)
        value = finite_metric(result, self.metric)
        if value is not None and self._better(value):
            self.best = (value, trial.trial_id)
        self.changed(ended=False)

    def _end(self, trial: Any, error: bool) -> None:
        self.running.discard(trial.trial_id)
        self._record(trial.trial_id, classify(
            trial.last_result, error=error, metric=self.metric, max_epochs=self.max_epochs))
        seconds = (trial.last_result or {}).get("time_total_s")
        if isinstance(seconds, (int, float)):
            self.seconds[trial.trial_id] = float(seconds)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._end(trial, error=False)
        self.changed(ended=True)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._end(trial, error=True)
        self.changed(ended=True)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        for trial in trials:  # those the time budget or an interrupt cut get no on_trial_complete
            if trial.trial_id not in self.running:
                continue
            if trial.status != "ERROR" and never_reported(trial.last_result, self.metric):
                self.running.discard(trial.trial_id)  # cut before its first result: not failed
                self.stopped.add(trial.trial_id)
            else:
                self._end(trial, error=trial.status == "ERROR")
        self.changed(ended=True)


class ProgressPrinter(TrialTally):
    """Prints ``running/finished/pruned/failed, best so far, elapsed`` as trials move.

    On a terminal the line is redrawn in place as trials move (at most 5 times a second);
    elsewhere (a job's log, a file, a pipe) a line is printed at most every ``interval_s``
    seconds, so a search of thousands of trials does not write thousands of lines. The last line
    is printed when the experiment ends.
    """

    def __init__(self, *, metric: str, mode: str, max_epochs: int, interval_s: float = 15.0,
                 stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        super().__init__(metric=metric, mode=mode, max_epochs=max_epochs, clock=clock)
        self.interval_s = interval_s
        self.stream = stream
        self.last = -float("inf")

    def line(self) -> str:
        counts = self.counts()
        elapsed = int(self.clock() - self.start)
        best = (f"best {self.metric} {self.best[0]:.4f} ({self.best[1]})" if self.best
                else f"best {self.metric} -")
        return (f"[{elapsed // 3600:02d}:{elapsed // 60 % 60:02d}:{elapsed % 60:02d}] "
                f"running {len(self.running)} | finished {counts[Status.COMPLETE]} | "
                f"pruned {counts[Status.PRUNED]} | failed {counts[Status.FAILED]} | "
                + (f"{STOPPED} {len(self.stopped)} | " if self.stopped else "") + best)

    def changed(self, ended: bool) -> None:
        stream = self.stream or sys.stdout
        now = self.clock()
        live = stream.isatty()
        if now - self.last >= (0.2 if live else self.interval_s):
            if live:
                print(f"\r{self.line()}\033[K", end="", file=stream, flush=True)
            else:
                print(self.line(), file=stream, flush=True)
            self.last = now

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        super().on_experiment_end(trials, **info)
        stream = self.stream or sys.stdout
        print(f"\r{self.line()}\033[K" if stream.isatty() else self.line(), file=stream,
              flush=True)
