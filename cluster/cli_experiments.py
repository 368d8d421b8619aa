"""``hpnas run``, ``hpnas darts``, ``hpnas resume`` and ``hpnas extend``: parse, call the runner,
print."""

from __future__ import annotations

import argparse
import os
from typing import Any

from cluster.cli_common import (
    Flags,
    all_failed,
    describe,
    fail,
    interrupted,
    print_leaderboard,
    run_failed,
)

__all__ = ["add_commands", "spec_from_args"]


def spec_from_args(args: argparse.Namespace, *, check_data: bool = True) -> Any:
    """The experiment file with the command line's overrides (``SpecError`` if bad)."""
    from cluster.spec import load_spec

    overrides = {"storage": args.storage, "name": args.name, "samples": args.samples,
                 "searcher": args.searcher, "scheduler": args.scheduler, "seed": args.seed,
                 "max_concurrent_trials": args.max_concurrent_trials,
                 "time_budget_s": args.time_budget_s}
    return load_spec(args.file, overrides, check_data=check_data, cpu_only=args.cpu_only)


def cmd_run(args: argparse.Namespace) -> int:
    from cluster.runner import check_fresh
    from cluster.spec import SpecError

    try:
        spec = spec_from_args(args)
        check_fresh(spec.directory)
    except SpecError as e:
        return fail(str(e))
    from cluster.best import draw_best
    from cluster.runner import RunError, run_experiment

    joined = args.address or os.environ.get("RAY_ADDRESS")
    where = (f"Ray cluster {joined}" if joined else "embedded Ray"
             + ("" if args.no_dashboard else "; dashboard on 127.0.0.1"))
    print(f"hpnas: {describe(spec)} ({where})", flush=True)
    try:
        directory = run_experiment(spec, address=args.address, dashboard=not args.no_dashboard,
                                   progress_interval_s=args.progress_interval,
                                   resource_check=not args.skip_resource_check)
    except SpecError as e:
        return fail(str(e))
    except RunError as e:
        return run_failed(str(e))
    except KeyboardInterrupt:
        return interrupted(spec.directory)
    failed = all_failed(directory)
    if failed is not None:
        return run_failed(f"{failed} (all results in {directory})")
    print_leaderboard(directory, args.top)
    drawn = draw_best(spec.experiment, spec)
    if drawn is not None:
        print(f"best trial {drawn[0]}'s samples: {drawn[1]}")
    if args.evaluate:
        from cluster.cli_results import evaluate

        return evaluate(spec.experiment, None)
    return 0


def cmd_darts(args: argparse.Namespace) -> int:
    """DARTS driver: supernets in parallel (a grid over the `darts` space), then their cells."""
    from cluster.darts_driver import (
        cells_directory,
        cells_spec,
        darts_spec,
        derived_cells,
        near_tie_note,
        usable_cells,
    )
    from cluster.runner import check_fresh
    from cluster.spec import SpecError, read_yaml

    overrides = {"storage": args.storage, "name": args.name,
                 "max_concurrent_trials": args.max_concurrent_trials}
    if args.train_cells < 0:
        return fail(f"`--train-cells` is {args.train_cells}, but must be >= 0 (0: lookup only).")
    try:
        spec = darts_spec(read_yaml(args.file), overrides, source=args.file)
        for directory in (spec.directory, cells_directory(spec).location):
            check_fresh(directory)
    except SpecError as e:
        return fail(str(e))
    from cluster.runner import RunError, run_experiment

    print(f"hpnas darts: {spec.name}: supernets for every config of the `darts` space grid, "
          f"{spec.max_concurrent_trials} at a time", flush=True)
    try:
        run_experiment(spec, address=args.address, dashboard=not args.no_dashboard,
                       progress_interval_s=args.progress_interval)
        table = derived_cells(spec.experiment)
        if table is None:
            print(f"\n{spec.directory}: no supernet finished an epoch; see `hpnas results "
                  f"{spec.directory}` for the errors.")
            return 1
        print(f"\n{spec.directory}: derived cells (NAS-Bench-201 accuracy is the table's "
              "seed-averaged validation accuracy of the cell):")
        print(table.to_string(float_format="{:.4g}".format, na_rep="-"))
        note = near_tie_note(table)
        if note:
            print(f"\n{note}")
        if not args.train_cells:
            return 0
        cells = usable_cells(table)
        if not cells:
            print("\nNo usable derived cell to train (every search failed).")
            return 1
        cell_spec = cells_spec(spec, cells, epochs=args.train_cells)
        print(f"\nTraining the {len(cells)} derived cells for {args.train_cells} epochs "
              f"(experiment {cell_spec.directory})", flush=True)
        cell_dir = run_experiment(cell_spec, address=args.address,
                                  dashboard=not args.no_dashboard,
                                  progress_interval_s=args.progress_interval)
    except SpecError as e:
        return fail(str(e))
    except RunError as e:
        return run_failed(str(e))
    except KeyboardInterrupt:
        return interrupted(spec.directory)
    print_leaderboard(cell_dir, len(cells))
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from results import ExperimentDir, NotAnExperiment

    experiment = ExperimentDir(args.directory)
    try:
        experiment.require()
    except NotAnExperiment as e:
        return fail(str(e))
    print(f"hpnas: resuming {experiment}"
          + (" (errored trials retried from their checkpoints)" if args.retry_errored else ""),
          flush=True)
    return _continue(experiment, args, retry_errored=args.retry_errored)


def _continue(experiment: Any, args: argparse.Namespace, **options: Any) -> int:
    """``resume_experiment`` with the command line's answer to each way it can end, then the
    leaderboard."""
    from cluster.runner import RunError, resume_experiment
    from cluster.spec import SpecError

    try:
        resume_experiment(experiment.location, address=args.address,
                          dashboard=not args.no_dashboard,
                          resource_check=not args.skip_resource_check, **options)
    except SpecError as e:
        return fail(str(e))
    except RunError as e:
        return run_failed(str(e))
    except KeyboardInterrupt:
        return interrupted(experiment)
    failed = all_failed(experiment)
    if failed is not None:
        return run_failed(f"{failed} (all results in {experiment})")
    print_leaderboard(experiment, args.top)
    return 0


def cmd_extend(args: argparse.Namespace) -> int:
    from results import READABLE_SCHEMAS, ExperimentDir, NotAnExperiment

    if args.samples is None and args.time_budget_s is None:
        return fail("give --samples N (trials to add) and/or --time-budget-s SECONDS.")
    if args.samples is not None and args.samples < 1:
        return fail(f"--samples is {args.samples}, but must be >= 1 (the trials to add).")
    if args.time_budget_s is not None and not args.time_budget_s > 0:
        return fail(f"--time-budget-s is {args.time_budget_s}, but must be > 0.")
    experiment = ExperimentDir(args.directory)
    try:
        experiment.require()
        schema = experiment.results_schema()
    except NotAnExperiment as e:
        return fail(str(e))
    except (OSError, ValueError) as e:
        return fail(f"{experiment.trials_file} cannot be read ({str(e).splitlines()[0]}).")
    if experiment.has_results() and schema not in READABLE_SCHEMAS:
        return fail(f"{experiment} holds results of schema {schema}, but this hpnas reads "
                    f"schemas {', '.join(READABLE_SCHEMAS)}; extend it with the hpnas version "
                    "that ran it.")
    more = [f"{args.samples} more trials"] if args.samples else []
    more += [f"a time budget of {args.time_budget_s:g} s"] if args.time_budget_s else []
    print(f"hpnas: extending {experiment}: {' and '.join(more)}", flush=True)
    return _continue(experiment, args, extend_by=args.samples, time_budget_s=args.time_budget_s)


def add_commands(sub: Any, flags: Flags) -> None:
    run = sub.add_parser(
        "run", help="run an experiment file",
        parents=[flags.overrides, flags.resource_check, flags.ray, flags.top, flags.progress],
        description="Run an experiment on an embedded local Ray (or --address to join a "
                    "cluster), then print the leaderboard.",
        epilog="example: hpnas run examples/fashion_mnist_cnn.yaml --samples 8 --name try1")
    run.add_argument("--evaluate", action="store_true",
                     help="after the search, report test metrics of the best final model")
    run.set_defaults(func=cmd_run)

    darts = sub.add_parser(
        "darts", help="run DARTS supernets in parallel and evaluate their derived cells",
        parents=[flags.ray, flags.progress],
        description="Run one DARTS search per config of the `darts` space (order, remedy, "
                    "seed; a grid by default) as Ray trials, print each derived cell with its "
                    "NAS-Bench-201 accuracy, and optionally train the cells for real.",
        epilog="example: hpnas darts examples/darts.yaml --train-cells 3")
    darts.add_argument("file", help="experiment YAML file (trainable: darts is the default)")
    darts.add_argument("--storage", help="results root directory (overrides `storage`)")
    darts.add_argument("--name", help="experiment name (overrides `name`)")
    darts.add_argument("--max-concurrent-trials", type=int, dest="max_concurrent_trials")
    darts.add_argument("--train-cells", type=int, default=0, metavar="EPOCHS",
                       help="train each derived cell with the cell_cnn trainable this many "
                            "epochs (0: table lookup only)")
    darts.set_defaults(func=cmd_darts)

    resume = sub.add_parser(
        "resume", help="continue an experiment after a crash, a kill or Ctrl-C",
        parents=[flags.ray, flags.resource_check, flags.top],
        description="Continue the experiment in DIR where it stopped: finished trials are kept, "
                    "unfinished ones resume from their last checkpoint, and the searcher "
                    "continues with its saved state.",
        epilog="example: hpnas resume runs/fashion_mnist_cnn-20261126-185418")
    resume.add_argument("directory", help="the experiment directory (or URI)")
    resume.add_argument("--retry-errored", action="store_true",
                        help="also retry trials that failed, from their last checkpoint")
    resume.set_defaults(func=cmd_resume)

    extend = sub.add_parser(
        "extend", help="continue a finished experiment with more trials or more time",
        parents=[flags.ray, flags.resource_check, flags.top],
        description="Grow the experiment in DIR: its searcher goes on from everything it "
                    "learned (Optuna's study, the evolution population, the controller, the "
                    "Q-table) for N more trials, and the results files are extended.",
        epilog="example: hpnas extend runs/fashion_mnist_cnn-20261126-185418 --samples 20")
    extend.add_argument("directory", help="the experiment directory (or URI)")
    extend.add_argument("--samples", type=int, help="trials to add")
    extend.add_argument("--time-budget-s", type=float, dest="time_budget_s",
                        help="wall-clock budget of this continuation, in seconds")
    extend.set_defaults(func=cmd_extend)
