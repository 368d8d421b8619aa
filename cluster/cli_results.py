"""``hpnas results``, ``hpnas report`` and ``hpnas evaluate``: parse, call, print."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cluster.cli_common import Flags, fail, print_leaderboard

__all__ = ["add_commands", "evaluate"]


def cmd_results(args: argparse.Namespace) -> int:
    import yaml

    from cluster.best import experiment_yaml, retrain_experiment
    from cluster.spec import SpecError, is_registered_space
    from results import ExperimentDir, Location, load
    from results.export import table_bytes

    experiments = [ExperimentDir(d) for d in args.directories]
    if args.format == "parquet" and not args.output:
        return fail("--format parquet writes a binary file; give it --output FILE.")
    if args.best_config and len(experiments) > 1:
        return fail("--best-config takes one experiment directory; give one DIR.")
    if args.best_config and args.format:
        return fail("--best-config and --format are separate exports; give one of them.")
    for flag, needs in (("iterations", "format"), ("output", "format"),
                        ("trial", "best_config"), ("epochs", "best_config"),
                        ("force", "best_config")):
        if getattr(args, flag) and not getattr(args, needs):
            return fail(f"--{flag} goes with --{needs.replace('_', '-')}; add it, or drop "
                        f"--{flag}.")
    try:
        if args.best_config:
            experiment, trial_id = retrain_experiment(
                experiments[0], trial_id=args.trial, epochs=args.epochs)
            if Location(args.best_config).is_file() and not args.force:
                return fail(f"--best-config {args.best_config} exists; pass --force to "
                            "overwrite it, or give another file.")
            Location(args.best_config).write_text(experiment_yaml(
                experiment, source=str(experiments[0]), trial_id=trial_id))
            space = experiment["space"]
            fixed = space["overrides"] if is_registered_space(space) else space
            print(f"trial {trial_id}: {yaml.safe_dump(fixed, default_flow_style=True).strip()}\n"
                  f"written to {args.best_config}; retrain with: hpnas run {args.best_config}")
            return 0
        if args.format:
            runs = load(*experiments, same_goal=False)
            table = runs.iterations if args.iterations else runs.trials
            data = table_bytes(table, args.format)
            if args.output:
                Location(args.output).write_bytes(data)
                print(f"{len(table)} rows written to {args.output}", file=sys.stderr)
            else:
                sys.stdout.write(data.decode())
            return 0
        for experiment in experiments:
            experiment.require()
            print_leaderboard(experiment, args.top)
    except BrokenPipeError:
        raise  # the reader of our output went away: cli.main ends quietly
    except (FileNotFoundError, SpecError, ValueError, OSError) as e:
        return fail(str(e))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from results import ExperimentDir, load
    from results.report import write_report

    experiments = [ExperimentDir(d) for d in args.directories]
    try:
        runs = load(*experiments)
    except (FileNotFoundError, ValueError, OSError) as e:
        return fail(str(e))
    if args.cost and args.cost not in runs.trials.columns:
        numeric = [c for c in runs.trials.columns if c.startswith("last/") or c == "wall_s"]
        return fail(f"--cost is {args.cost!r}, but the trials have no such column; numeric "
                    f"ones: {', '.join(numeric)}.")
    output = args.output
    if output is not None and Path(output).is_dir():
        return fail(f"-o is {output!r}, a folder, but must be the HTML file to write (e.g. "
                    f"{Path(output) / 'report.html'}).")
    if output is None:
        local = experiments[0].report_file.local
        output = local if len(experiments) == 1 and local is not None else "hpnas-report.html"
    path = write_report(runs, output, top=args.top, cost=args.cost, png_dir=args.png_dir)
    counts = runs.trials["status"].value_counts().to_dict()
    print(f"report of {len(experiments)} experiment(s), {len(runs.trials)} trials "
          f"({', '.join(f'{v} {k}' for k, v in sorted(counts.items()))}): {path}")
    return 0


def evaluate(experiment: Any, trial_id: str | None) -> int:
    """``hpnas evaluate``'s work and printout (also ``hpnas run --evaluate``)."""
    from cluster.best import evaluate_trial
    from cluster.spec import SpecError, load_saved

    try:
        metric = load_saved(experiment).metric
        result, row = evaluate_trial(experiment, trial_id)
    except (SpecError, FileNotFoundError) as e:
        return fail(str(e))
    print(f"test evaluation of trial {row['trial_id']} (last {metric} "
          f"{row[f'last_{metric}']:.4f}): " + ", ".join(f"{k} {v:.4f}" for k, v in result.items()
                                                        if isinstance(v, float)))
    print(f"written to {experiment.evaluation_file}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from results import ExperimentDir

    return evaluate(ExperimentDir(args.directory), args.trial)


def add_commands(sub: Any, flags: Flags) -> None:
    from results.export import FORMATS

    results = sub.add_parser(
        "results", help="an experiment's leaderboard; export its tables or best config",
        parents=[flags.top],
        description="Print the leaderboard of each experiment DIR (a path or URI, also while it "
                    "runs); or export the trials (or --iterations) of all of them as CSV, JSON "
                    "or Parquet, with `experiment` and `searcher` columns; or write the best "
                    "trial's config as an experiment file that `hpnas run` retrains.",
        epilog="examples: hpnas results runs/fmnist-cnn --top 5 | "
               "hpnas results runs/a runs/b --format csv --output trials.csv | "
               "hpnas results runs/fmnist-cnn --best-config best.yaml --epochs 20")
    results.add_argument("directories", nargs="+", metavar="DIR")
    results.add_argument("--format", choices=FORMATS,
                         help="export the table instead of printing the leaderboard")
    results.add_argument("--iterations", action="store_true",
                         help="export iterations.parquet's rows (one per epoch) instead of trials")
    results.add_argument("--output", help="file to export to (default: standard output)")
    results.add_argument("--best-config", metavar="FILE",
                         help="write the best trial's config as an experiment file to FILE")
    results.add_argument("--trial", help="with --best-config: this trial instead of the best")
    results.add_argument("--epochs", type=int,
                         help="with --best-config: train.epochs of the retraining run")
    results.add_argument("--force", action="store_true",
                         help="with --best-config: overwrite FILE if it exists")
    results.set_defaults(func=cmd_results)

    report = sub.add_parser(
        "report", help="an HTML page of plots comparing one or more experiments",
        parents=[flags.top],
        description="Write one self-contained HTML page (PNG plots embedded): best so far "
                    "against time and trials per experiment, learning curves, parallel "
                    "coordinates, fANOVA parameter importance, the Pareto front and the "
                    "leaderboard. Works while the experiments run.",
        epilog="example: hpnas report runs/nb201-evolution runs/nb201-random -o cmp.html")
    report.add_argument("directories", nargs="+", metavar="DIR")
    report.add_argument("-o", "--output", help="the HTML file (default: DIR/report.html for one "
                                               "local DIR, else ./hpnas-report.html)")
    report.add_argument("--cost", help="trials column the Pareto plot trades the metric against "
                                       "(default: last/params if reported, else wall_s)")
    report.add_argument("--png-dir", help="also write each plot as a PNG file here")
    report.set_defaults(func=cmd_report)

    evaluate = sub.add_parser(
        "evaluate", help="test metrics of the best (or a given) trial's final model",
        epilog="example: hpnas evaluate runs/fmnist-cnn")
    evaluate.add_argument("directory")
    evaluate.add_argument("--trial", help="trial id (default: the best trial)")
    evaluate.set_defaults(func=cmd_evaluate)
