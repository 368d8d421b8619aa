"""Bookkeeping that stays flat as an experiment grows: the progress line off a terminal, the
report's plots of thousands of trials, the checkpoint clean-up's reads of the folder."""

from __future__ import annotations

import io
from types import SimpleNamespace

import numpy as np
import pandas as pd

from cluster.progress import ProgressPrinter


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _ended(printer: ProgressPrinter, n: int, clock: list[float]) -> None:
    for i in range(n):
        trial = SimpleNamespace(trial_id=f"t{i}", last_result={"val_acc": 0.5,
                                                               "training_iteration": 1})
        printer.on_trial_start(0, [], trial)
        clock[0] += 0.01
        printer.on_trial_complete(0, [], trial)


def test_progress_off_a_terminal_honours_the_interval():
    """3,000 trials ending in 30 s with a 15 s interval: a handful of lines, not 3,000."""
    clock = [0.0]
    stream = io.StringIO()
    printer = ProgressPrinter(metric="val_acc", mode="max", max_epochs=1, interval_s=15,
                              stream=stream, clock=lambda: clock[0])
    _ended(printer, 3000, clock)
    printer.on_experiment_end([])
    lines = stream.getvalue().splitlines()
    assert 2 <= len(lines) <= 4
    assert "finished 3000" in lines[-1]


def test_progress_on_a_terminal_redraws_one_live_line():
    clock = [0.0]
    stream = _Terminal()
    printer = ProgressPrinter(metric="val_acc", mode="max", max_epochs=1, interval_s=15,
                              stream=stream, clock=lambda: clock[0])
    _ended(printer, 300, clock)
    printer.on_experiment_end([])
    text = stream.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")  # one line, redrawn in place
    assert text.count("\r") > 5  # about every 0.2 s of the 3 s
    assert "finished 300" in text.rsplit("\r", 1)[-1]


def test_a_report_of_thousands_of_trials_draws_a_sample_and_says_so():
    from results.analysis import Experiments
    from results.report import MAX_DRAWN, drawn_trials, plot_learning_curves, \
        plot_parallel_coordinates

    rng = np.random.default_rng(0)
    n = 3000
    trials = pd.DataFrame({"experiment": "big", "searcher": "random",
                           "trial_id": [f"t{i}" for i in range(n)],
                           "status": "complete", "best_val_acc": rng.random(n),
                           "config/a": rng.random(n), "config/b": rng.integers(0, 5, n)})
    shown, note = drawn_trials(trials, "val_acc", "max")
    assert len(shown) == MAX_DRAWN and f"{MAX_DRAWN} of {n} trials drawn" in note
    best = trials.nlargest(MAX_DRAWN // 6, "best_val_acc")["trial_id"]
    assert set(best) <= set(shown["trial_id"])  # the best are always drawn
    iterations = pd.DataFrame({"experiment": "big", "searcher": "random",
                               "trial_id": np.repeat(trials["trial_id"], 2),
                               "iteration": np.tile([1, 2], n),
                               "val_acc": rng.random(2 * n)})
    runs = Experiments(trials, iterations, "val_acc", "max", {"big": {"trainable": "nb201"}})
    for plot in (plot_learning_curves, plot_parallel_coordinates):
        png = plot(runs)
        assert png.startswith(b"\x89PNG") and len(png) > 10_000


def test_the_checkpoint_janitor_reads_the_folder_at_most_every_half_second(tmp_path,
                                                                           monkeypatch):
    from cluster.checkpoints import CheckpointJanitor

    janitor = CheckpointJanitor(tmp_path)
    reads = []
    monkeypatch.setattr(janitor, "_read_last_snapshot", lambda: reads.append(1) or 0.0)
    for _ in range(1000):
        janitor._last_snapshot()
    assert len(reads) == 1


def test_the_last_line_counts_trials_cut_before_a_result_as_stopped_not_failed():
    """Ctrl-C (or the time budget) while two trials run: the one that reported ends as pruned,
    the one that had not reported yet is "stopped" (resume runs it), and nothing is failed."""
    from types import SimpleNamespace

    stream = io.StringIO()
    printer = ProgressPrinter(metric="val_acc", mode="max", max_epochs=3, interval_s=1e9,
                              stream=stream)
    early = SimpleNamespace(trial_id="early", status="RUNNING", last_result={})
    late = SimpleNamespace(trial_id="late", status="RUNNING",
                           last_result={"val_acc": 0.5, "training_iteration": 1})
    for trial in (early, late):
        printer.on_trial_start(0, [], trial)
    printer.on_trial_result(1, [], late, late.last_result)
    early.status = late.status = "TERMINATED"  # Tune's clean-up stops them
    printer.on_experiment_end([early, late])
    last = stream.getvalue().splitlines()[-1]
    assert "running 0 | finished 0 | pruned 1 | failed 0 | stopped 1 |" in last


def test_the_metrics_count_trials_cut_before_a_result_as_stopped_not_failed():
    from types import SimpleNamespace

    from cluster.metrics import METRIC_NAMES, MetricsExporter

    class Gauge:
        def __init__(self):
            self.value = None

        def set(self, value, tags):
            self.value = value

    exporter = MetricsExporter(experiment="x", metric="val_acc", mode="max", max_epochs=3)
    exporter._metrics = {name: Gauge() for name in METRIC_NAMES}
    early = SimpleNamespace(trial_id="early", status="RUNNING", last_result={})
    broken = SimpleNamespace(trial_id="broken", status="RUNNING", last_result={})
    for trial in (early, broken):
        exporter.on_trial_start(0, [], trial)
    broken.status = "ERROR"
    exporter.on_trial_error(1, [], broken)
    early.status = "TERMINATED"
    exporter.on_experiment_end([early, broken])
    values = {name: g.value for name, g in exporter._metrics.items()}
    assert values["hpnas_trials_stopped"] == 1 and values["hpnas_trials_failed"] == 1
    assert values["hpnas_trials_running"] == 0


def test_a_restored_line_from_before_the_stopped_count_and_a_budget_cut_trial():
    """A printer pickled by an earlier hpnas has no ``stopped`` set: ``setup`` (which Tune
    calls on restore) makes one; a trial the time budget cut before any report, adopted from
    the snapshot, is stopped, not failed."""
    printer = ProgressPrinter(metric="val_acc", mode="max", max_epochs=3, interval_s=1e9,
                              stream=io.StringIO())
    del printer.__dict__["stopped"]
    printer.setup()
    cut = SimpleNamespace(trial_id="cut", status="TERMINATED", last_result={})
    # reported other values, not the metric: stopped too, as trials.parquet counts it
    other = SimpleNamespace(trial_id="other", status="TERMINATED", last_result={"loss": 2.3})
    printer.on_step_begin(0, [cut, other])
    printer.on_experiment_end([cut, other])
    assert "failed 0 | stopped 2 |" in printer.line()
