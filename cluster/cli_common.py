"""What every ``hpnas`` command shares: exit codes, the one-line error, the shared flags (argparse
parents, declared once) and the leaderboard printout."""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_INTERRUPTED", "Flags", "all_failed",
           "describe", "fail", "interrupted", "positive_int", "print_leaderboard", "run_failed"]

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def fail(message: str) -> int:
    print(f"hpnas: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


EXIT_FAILED = 1


def interrupted(directory: Any) -> int:
    print(f"hpnas: interrupted; continue with `hpnas resume {directory}`", file=sys.stderr)
    return EXIT_INTERRUPTED


def run_failed(message: str) -> int:
    """The experiment ran, but failed at run time: one line, exit 1."""
    print(f"hpnas: error: {message}", file=sys.stderr)
    return EXIT_FAILED


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"is {value}, but must be >= 1")
    return value


def all_failed(directory: Any) -> str | None:
    """When every trial of the experiment failed: a line with how many and the first error."""
    from results import ExperimentDir

    experiment = ExperimentDir(directory)
    if not experiment.has_results():
        return "no trial ran to its first report"
    trials, _ = experiment.load()
    if trials.empty or trials["status"].isin(["complete", "pruned", "running"]).any():
        return None
    failed = trials[trials["status"] == "failed"]
    if failed.empty:  # every trial was cut by the experiment's end before it reported
        return (f"no trial reported the metric before the experiment ended ({len(trials)} "
                "stopped); give it more time (`time_budget_s`)")
    first = failed["error"].dropna()
    cut = len(trials) - len(failed)
    return (f"every trial failed ({len(failed)}" + (f"; {cut} stopped" if cut else "")
            + f"); the first error: {first.iloc[0] if len(first) else 'unknown'}")


class Flags:
    """The flag groups several commands take, each an argparse parent parser."""

    def __init__(self) -> None:
        self.overrides = argparse.ArgumentParser(add_help=False)
        p = self.overrides
        p.add_argument("file", help="experiment YAML file")
        p.add_argument("--storage", help="results root directory (overrides `storage`)")
        p.add_argument("--name", help="experiment name (overrides `name`)")
        p.add_argument("--samples", type=int, help="number of trials (overrides `samples`)")
        p.add_argument("--searcher", help="searcher name (overrides `searcher`)")
        p.add_argument("--scheduler", help="scheduler name (overrides `scheduler`)")
        p.add_argument("--seed", type=int, help="seed (overrides `seed`)")
        p.add_argument("--max-concurrent-trials", type=int, dest="max_concurrent_trials")
        p.add_argument("--time-budget-s", type=float, dest="time_budget_s")
        p.add_argument("--cpu-only", action="store_true",
                       help="run every trial on CPUs (resources.gpus: 0) whatever the file asks")

        self.resource_check = argparse.ArgumentParser(add_help=False)
        self.resource_check.add_argument(
            "--skip-resource-check", action="store_true",
            help="launch even if no node can hold a trial yet (autoscaling clusters)")

        self.ray = argparse.ArgumentParser(add_help=False)
        self.ray.add_argument("--address", help="Ray cluster address to join, HOST:6379 "
                                                "(default: $RAY_ADDRESS, else an embedded local "
                                                "Ray)")
        self.ray.add_argument("--no-dashboard", action="store_true",
                              help="do not start the Ray dashboard with the embedded Ray")

        self.progress = argparse.ArgumentParser(add_help=False)
        self.progress.add_argument("--progress-interval", type=float, default=15.0,
                                   help="seconds between progress lines (default 15)")

        self.top = argparse.ArgumentParser(add_help=False)
        self.top.add_argument("--top", type=positive_int, default=10,
                              help="leaderboard rows (default 10)")

        self.job = argparse.ArgumentParser(add_help=False)
        self.job.add_argument("--address", help="the head's dashboard address, "
                                                "http://HEAD:8265 (default: $RAY_ADDRESS)")


def describe(spec: Any) -> str:
    data = getattr(spec.settings, "data", None)
    on_data = f" on {data.name}" if data else ""
    gpus = f", {spec.resources.gpus:g} GPU per trial" if spec.resources.gpus else ""
    return (f"{spec.name}: {spec.trainable}{on_data}, searcher {spec.searcher}, scheduler "
            f"{spec.scheduler}, {spec.samples or 'unbounded'} trials, "
            f"{spec.max_concurrent_trials} at a time{gpus}")


def print_leaderboard(directory: Any, top: int) -> None:
    """The experiment's trial counts and its ``top`` trials, as a table."""
    import pandas as pd

    from results import ExperimentDir, leaderboard

    experiment = ExperimentDir(directory)
    metric, mode = experiment.goal()
    trials, _ = experiment.load()
    board = leaderboard(trials, metric=metric, mode=mode, top=top)
    counts = trials["status"].value_counts().to_dict()
    print(f"\n{experiment}: {len(trials)} trials "
          f"({', '.join(f'{v} {k}' for k, v in sorted(counts.items()))}); "
          f"top {min(top, len(board))} by {metric} ({mode}):")
    with pd.option_context("display.width", 200, "display.max_columns", 30,
                           "display.float_format", "{:.4g}".format):
        print(board.to_string(index=False, na_rep="-") if not board.empty
              else "(no finished trials)")
    print(f"\nParquet: {experiment.trials_file}, {experiment.iterations_file}")
