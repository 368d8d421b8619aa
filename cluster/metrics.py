"""The service's own metrics, exported through ``ray.util.metrics``.

They live in the driver (a Tune callback), are tagged with the experiment's name (and the best
value with the metric's name), and reach the dashboard's Metrics view and Prometheus like Ray's
own, with Ray's ``ray_`` prefix:

| Prometheus name | kind | what |
|---|---|---|
| ``ray_hpnas_trials_running`` | gauge | trials running now |
| ``ray_hpnas_trials_completed`` | gauge | trials that ran their full budget |
| ``ray_hpnas_trials_pruned`` | gauge | trials stopped early by the scheduler |
| ``ray_hpnas_trials_failed`` | gauge | trials that raised or never reported the metric |
| ``ray_hpnas_trials_stopped`` | gauge | trials the experiment's end (Ctrl-C, the time budget) cut before their first result |
| ``ray_hpnas_best_metric`` | gauge | best value of the searched metric so far |
| ``ray_hpnas_trial_seconds`` | histogram | wall seconds of each ended trial |

Counts are gauges set from the driver's tally; after ``hpnas resume`` they include the trials
that ended before the crash.
"""

from __future__ import annotations

from typing import Any

from cluster.progress import TrialTally
from search.outcome import Status

__all__ = ["METRIC_NAMES", "MetricsExporter"]

METRIC_NAMES = ("hpnas_trials_running", "hpnas_trials_completed", "hpnas_trials_pruned",
                "hpnas_trials_failed", "hpnas_trials_stopped", "hpnas_best_metric",
                "hpnas_trial_seconds")
_SECONDS_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200]


class MetricsExporter(TrialTally):
    """Sets the ``hpnas_*`` metrics from the trial tally as trials move."""

    def __init__(self, *, experiment: str, metric: str, mode: str, max_epochs: int) -> None:
        super().__init__(metric=metric, mode=mode, max_epochs=max_epochs)
        self.experiment = experiment
        self._metrics: dict[str, Any] | None = None
        self._last_set = -float("inf")

    def _make(self) -> dict[str, Any]:
        from ray.util.metrics import Gauge, Histogram

        keys = ("experiment",)
        gauges = {name: Gauge(name, description=text, tag_keys=keys) for name, text in (
            ("hpnas_trials_running", "hpnas: trials running now"),
            ("hpnas_trials_completed", "hpnas: trials that ran their full budget"),
            ("hpnas_trials_pruned", "hpnas: trials stopped early by the scheduler"),
            ("hpnas_trials_failed", "hpnas: trials that failed"),
            ("hpnas_trials_stopped", "hpnas: trials the experiment's end cut before a result"))}
        gauges["hpnas_best_metric"] = Gauge(
            "hpnas_best_metric", description="hpnas: best value of the searched metric so far",
            tag_keys=("experiment", "metric"))
        gauges["hpnas_trial_seconds"] = Histogram(
            "hpnas_trial_seconds", description="hpnas: wall seconds of each ended trial",
            boundaries=_SECONDS_BUCKETS, tag_keys=keys)
        return gauges

    def setup(self, **info: Any) -> None:
        super().setup(**info)
        self._metrics = self._make()
        self.changed(ended=False)

    def changed(self, ended: bool) -> None:
        # Prometheus scrapes every few seconds: setting the gauges more than twice a second
        # would only cost the driver time.
        now = self.clock()
        if self._metrics is None or now - self._last_set < 0.5:
            return
        self._last_set = now
        tags = {"experiment": self.experiment}
        m = self._metrics
        m["hpnas_trials_running"].set(len(self.running), tags=tags)
        counts = self.counts()
        m["hpnas_trials_completed"].set(counts[Status.COMPLETE], tags=tags)
        m["hpnas_trials_pruned"].set(counts[Status.PRUNED], tags=tags)
        m["hpnas_trials_failed"].set(counts[Status.FAILED], tags=tags)
        m["hpnas_trials_stopped"].set(len(self.stopped), tags=tags)
        if self.best is not None:
            m["hpnas_best_metric"].set(self.best[0], tags={**tags, "metric": self.metric})

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self._last_set = -float("inf")  # the final counts, whenever the last update was
        super().on_experiment_end(trials, **info)

    def _end(self, trial: Any, error: bool) -> None:
        super()._end(trial, error)
        seconds = self.seconds.get(trial.trial_id)
        if self._metrics is not None and seconds is not None:
            self._metrics["hpnas_trial_seconds"].observe(
                seconds, tags={"experiment": self.experiment})
