"""How the driver's bookkeeping scales with the number of trials.

Runs a real hpnas search through Ray Tune in this process (the driver) and prints:

* seconds per 1,000 ended trials across the run (the first and last 1,000 compared);
* the driver's time split: wall time of the search, and the time spent inside each of hpnas's
  own callbacks (results writer, checkpoint clean-up, progress line, dashboard metrics, searcher
  reconciliation) and the searcher's hooks, measured by timing every call of every hook
  (deterministic instrumentation, not sampling);
* the driver's peak memory (``ru_maxrss``) and CPU time;
* how long reading the finished experiment takes: ``results.load``, ``hpnas results`` and
  ``hpnas report``.

The default is the issue's workload: 10,000 NAS-Bench-201 table lookups (the ``nb201``
trainable, one report each) searched by aging evolution, 2 at a time. ``--trainable epochs
--epochs 50 --trials 2000`` instead runs a trainable that reports 50 epochs at once (100,000
iteration rows) to measure the results writer on long trials.

Usage:
    .venv/bin/python benchmarks/scale.py                       # 10,000 trials (minutes)
    .venv/bin/python benchmarks/scale.py --trials 2000 --trainable epochs --epochs 50
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HOOKS = ("setup", "on_step_begin", "on_step_end", "on_trial_start", "on_trial_result",
         "on_trial_complete", "on_trial_error", "on_checkpoint", "on_experiment_end",
         "on_trial_save", "on_trial_restore")
SEARCHER_HOOKS = ("suggest", "on_trial_result", "on_trial_complete")


def instrument(cls: type, names: tuple[str, ...], label: str,
               spent: collections.Counter, cpu: collections.Counter) -> None:
    """Time every call of ``cls``'s methods ``names`` (those it defines or inherits from
    hpnas, not Tune's no-op defaults): wall seconds into ``spent[label]``, the driver thread's
    CPU seconds into ``cpu[label]`` (wall includes waiting for a core the trials hold)."""
    for name in names:
        method = getattr(cls, name, None)
        owner = next((k for k in cls.__mro__ if name in vars(k)), None)
        if method is None or owner is None or owner.__module__.startswith("ray."):
            continue

        def timed(self: Any, *args: Any, _method: Callable = method, **kwargs: Any) -> Any:
            start, start_cpu = time.perf_counter(), time.thread_time()
            try:
                return _method(self, *args, **kwargs)
            finally:
                spent[label] += time.perf_counter() - start
                cpu[label] += time.thread_time() - start_cpu

        setattr(cls, name, timed)


def epochs_trainable(config: dict, epochs: int = 50) -> None:
    """Reports ``epochs`` epochs at once: a stand-in for long trials (run as a user
    trainable, ``scale.py:epochs_trainable``)."""
    from ray import tune

    for epoch in range(1, epochs + 1):
        tune.report({"val_acc": config["x"] * epoch / epochs, "epoch": epoch})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--searcher", default="evolution")
    parser.add_argument("--trainable", choices=("nb201", "epochs"), default="nb201")
    parser.add_argument("--epochs", type=int, default=50, help="reports per --trainable epochs")
    args = parser.parse_args()

    from cluster.checkpoints import CheckpointJanitor
    from cluster.metrics import MetricsExporter
    from cluster.progress import ProgressPrinter
    from cluster.resume import SearcherSync
    from cluster.runner import build_tuner, connect, save_spec
    from cluster.spec import spec_from_mapping
    from results import load
    from results.report import write_report
    from results.writer import ResultsWriter
    from search.adapter import SpaceSearcher

    spent: collections.Counter = collections.Counter()
    cpu: collections.Counter = collections.Counter()
    for cls, label in ((ResultsWriter, "results writer"), (CheckpointJanitor, "checkpoints"),
                       (ProgressPrinter, "progress line"), (MetricsExporter, "metrics"),
                       (SearcherSync, "searcher sync")):
        instrument(cls, HOOKS, label, spent, cpu)
    instrument(SpaceSearcher, SEARCHER_HOOKS, "searcher", spent, cpu)

    ended: list[float] = []
    original = ResultsWriter._finish

    def finish(self: Any, trial: Any, error: bool) -> None:
        ended.append(time.perf_counter())
        original(self, trial, error)

    ResultsWriter._finish = finish  # type: ignore[method-assign]

    with tempfile.TemporaryDirectory(prefix="hpnas-scale-") as tmp:
        experiment: dict[str, Any] = {
            "name": "scale", "searcher": args.searcher, "scheduler": "fifo",
            "samples": args.trials, "max_concurrent_trials": args.concurrency, "seed": 0,
            "storage": tmp}
        if args.trainable == "nb201":
            experiment.update(trainable="nb201", train={"dataset": "cifar100"})
        else:
            experiment.update(trainable="scale.py:epochs_trainable", metric="val_acc",
                              mode="max", max_epochs=args.epochs,
                              train={"epochs": args.epochs},
                              space={"x": {"float": [0.0, 1.0]}})
        spec = spec_from_mapping(experiment, base_dir=Path(__file__).resolve().parent)
        with connect(dashboard=False, num_cpus=args.concurrency):
            save_spec(spec, spec.directory)
            tuner = build_tuner(spec, progress_interval_s=30)
            usage = resource.getrusage(resource.RUSAGE_SELF)
            start = time.perf_counter()
            tuner.fit()
            wall = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_SELF)
        process_cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
        peak_mb = after.ru_maxrss / 1024

        read_start = time.perf_counter()
        runs = load(spec.directory)
        load_s = time.perf_counter() - read_start
        from cluster.cli_common import print_leaderboard

        read_start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            print_leaderboard(spec.directory, 10)
        results_s = time.perf_counter() - read_start
        read_start = time.perf_counter()
        write_report(runs, Path(tmp) / "report.html")
        report_s = time.perf_counter() - read_start
        rows = len(runs.iterations)

    marks = [start, *ended]
    reports = args.epochs if args.trainable == "epochs" else 1
    print(f"\n{len(ended)} trials ({args.trainable}, {reports} "
          f"report(s) each, {rows} iteration rows), searcher {args.searcher}, "
          f"{args.concurrency} at a time; wall {wall:.1f} s")
    print("\n| trials | seconds for these 1,000 |\n|---|---:|")
    per_k = []
    for k in range(1000, len(ended) + 1, 1000):
        per_k.append(marks[k] - marks[k - 1000])
        print(f"| {k - 999}-{k} | {per_k[-1]:.1f} |")
    if len(per_k) >= 2:
        print(f"\nlast 1,000 / first 1,000: {per_k[-1] / per_k[0]:.2f}x (the first 1,000 include "
              "starting the trial actors)")
    if len(per_k) >= 3:
        print(f"last 1,000 / second 1,000: {per_k[-1] / per_k[1]:.2f}x; slowest 1,000 after the "
              f"first / second 1,000: {max(per_k[1:]) / per_k[1]:.2f}x")
    total, total_cpu = sum(spent.values()), sum(cpu.values())
    print("\n| driver time in | wall seconds | share of wall | CPU seconds | share of driver CPU |"
          "\n|---|---:|---:|---:|---:|")
    for label, seconds in spent.most_common():
        print(f"| {label} | {seconds:.2f} | {seconds / wall:.1%} | {cpu[label]:.2f} | "
              f"{cpu[label] / process_cpu:.1%} |")
    print(f"| hpnas's callbacks and searcher, all | {total:.2f} | {total / wall:.1%} | "
          f"{total_cpu:.2f} | {total_cpu / process_cpu:.1%} |")
    print(f"\ndriver CPU {process_cpu:.1f} s over {wall:.1f} s wall; peak driver memory (ru_maxrss) "
          f"{peak_mb:.0f} MB")
    print(f"reading the finished experiment: results.load {load_s:.2f} s, hpnas results "
          f"{results_s:.2f} s, hpnas report {report_s:.2f} s")


if __name__ == "__main__":
    main()
