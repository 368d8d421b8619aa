"""The ``hpnas`` command line: a thin layer over :mod:`cluster.spec` and :mod:`cluster.runner`.

Exit codes: 0 success; 1 the experiment ran but something failed at run time; 2 bad input
(experiment file, flags, data), reported as one line before any work starts; 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, Iterator, Sequence

__all__ = ["main"]

EXIT_BAD_INPUT = 2


def _fail(message: str) -> int:
    print(f"hpnas: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _check_fresh(directory: Any) -> None:
    """``SpecError`` if ``directory`` (a :class:`~search.storage.Location`) already holds an
    experiment's results."""
    from cluster.spec import SpecError

    if (directory / "trials.parquet").is_file():
        raise SpecError(f"experiment directory {directory} already holds results; pass another "
                        "--name (or --storage), or remove that directory.")


def _interrupted(directory: Any) -> int:
    print(f"\nhpnas: interrupted; results so far are in {directory}", file=sys.stderr)
    return 130


def _print_leaderboard(directory: Any, top: int) -> None:
    import pandas as pd

    from cluster.spec import SPEC_FILE, read_yaml
    from search.results import leaderboard, load_results

    spec = read_yaml(directory / SPEC_FILE) or {}
    trials, _ = load_results(directory)
    metric = spec.get("metric", "val_acc")
    mode = spec.get("mode", "max")
    board = leaderboard(trials, metric=metric, mode=mode, top=top)
    counts = trials["status"].value_counts().to_dict()
    print(f"\n{directory}: {len(trials)} trials "
          f"({', '.join(f'{v} {k}' for k, v in sorted(counts.items()))}); "
          f"top {min(top, len(board))} by {metric} ({mode}):")
    with pd.option_context("display.width", 200, "display.max_columns", 30,
                           "display.float_format", "{:.4g}".format):
        print(board.to_string(index=False, na_rep="-") if not board.empty
              else "(no finished trials)")
    print(f"\nParquet: {directory / 'trials.parquet'}, {directory / 'iterations.parquet'}")


def _load(args: argparse.Namespace, *, check_data: bool = True) -> Any:
    """The experiment file with the command line's overrides (``SpecError`` if bad)."""
    from cluster.spec import load_spec

    overrides = {"storage": args.storage, "name": args.name, "samples": args.samples,
                 "searcher": args.searcher, "scheduler": args.scheduler, "seed": args.seed,
                 "max_concurrent_trials": args.max_concurrent_trials,
                 "time_budget_s": args.time_budget_s}
    return load_spec(args.file, overrides, check_data=check_data, cpu_only=args.cpu_only)


def _describe(spec: Any) -> str:
    data = getattr(spec.settings, "data", None)
    on_data = f" on {data.name}" if data else ""
    gpus = f", {spec.resources.gpus:g} GPU per trial" if spec.resources.gpus else ""
    return (f"{spec.name}: {spec.trainable}{on_data}, searcher {spec.searcher}, scheduler "
            f"{spec.scheduler}, {spec.samples or 'unbounded'} trials, "
            f"{spec.max_concurrent_trials} at a time{gpus}")


def cmd_run(args: argparse.Namespace) -> int:
    from cluster.spec import SpecError

    try:
        spec = _load(args)
        _check_fresh(spec.directory)
    except SpecError as e:
        return _fail(str(e))
    from cluster.runner import run_experiment

    joined = args.address or os.environ.get("RAY_ADDRESS")
    print(f"hpnas: {_describe(spec)}"
          f"{f' (Ray cluster {joined})' if joined else ' (embedded Ray; dashboard on 127.0.0.1)'}",
          flush=True)
    try:
        directory = run_experiment(spec, address=args.address, dashboard=not args.no_dashboard,
                                   progress_interval_s=args.progress_interval,
                                   resource_check=not args.skip_resource_check)
    except SpecError as e:
        return _fail(str(e))
    except KeyboardInterrupt:
        return _interrupted(spec.directory)
    _print_leaderboard(directory, args.top)
    from trainables import TRAINABLE_INFO

    render = TRAINABLE_INFO[spec.trainable].render
    if render is not None:
        best = _best_trial(directory, spec, None)
        if best is not None:
            with _local_checkpoint(best[1]["checkpoint"]) as checkpoint, \
                    tempfile.TemporaryDirectory() as tmp:
                image = Path(tmp) / "best_grid.png"
                render(best[0], dataclasses.asdict(spec.settings), checkpoint, str(image))
                (directory / "best_grid.png").write_bytes(image.read_bytes())
            print(f"best trial {best[1]['trial_id']}'s samples: {directory / 'best_grid.png'}")
    if args.evaluate:
        return _evaluate(directory, None)
    return 0


@contextlib.contextmanager
def _local_checkpoint(checkpoint: str) -> Iterator[str]:
    """A local directory holding ``checkpoint`` (downloaded when it is behind a URI)."""
    from search.storage import Location, is_uri

    if not is_uri(checkpoint):
        yield checkpoint
        return
    with tempfile.TemporaryDirectory(prefix="hpnas-checkpoint-") as tmp:
        yield str(Location(checkpoint).download(tmp))


def _best_trial(directory: Any, spec: Any, trial_id: str | None) -> tuple[dict, Any] | None:
    """(config, row) of ``trial_id``, or of the best complete trial with a checkpoint (by its
    last metric value, the one its checkpoint holds); None if there is none."""
    from cluster.export import plain as _plain
    from search.results import load_results

    trials, _ = load_results(directory)
    last = f"last_{spec.metric}"
    candidates = trials[trials["checkpoint"].notna()]
    if trial_id is not None:
        candidates = candidates[candidates["trial_id"] == trial_id]
    else:
        complete = candidates[candidates["status"] == "complete"]
        candidates = complete if not complete.empty else candidates
        candidates = candidates.sort_values(last, ascending=spec.mode == "min")
    if candidates.empty:
        return None
    row = candidates.iloc[0]
    config = {k[len("config/"):]: _plain(v) for k, v in row.items()
              if k.startswith("config/") and _plain(v) is not None}
    return config, row


def cmd_darts(args: argparse.Namespace) -> int:
    """DARTS driver: supernets in parallel (a grid over the `darts` space), then their cells."""
    from cluster.spec import SpecError, read_yaml, spec_from_mapping

    defaults = {"trainable": "darts", "searcher": "grid", "scheduler": "fifo",
                "space": {"name": "darts", "overrides": {"seed": {"high": 0}}}}
    overrides = {"storage": args.storage, "name": args.name,
                 "max_concurrent_trials": args.max_concurrent_trials}
    if args.train_cells < 0:
        return _fail(f"`--train-cells` is {args.train_cells}, but must be >= 0 (0: lookup only).")
    try:
        data = read_yaml(args.file)
        if not isinstance(data, dict):
            raise SpecError(f"{args.file} must be a YAML mapping of settings.")
        spec = spec_from_mapping({**defaults, **data,
                                  **{k: v for k, v in overrides.items() if v is not None}})
        if spec.trainable != "darts":
            raise SpecError(f"`trainable` is {spec.trainable!r}, but `hpnas darts` runs 'darts'; "
                            "use `hpnas run` for other trainables.")
        for directory in (spec.directory, spec.directory.with_name(f"{spec.name}-cells")):
            _check_fresh(directory)
    except SpecError as e:
        return _fail(str(e))
    from cluster.runner import run_experiment
    from search.results import load_results

    print(f"hpnas darts: {spec.name}: supernets for every config of the `darts` space grid, "
          f"{spec.max_concurrent_trials} at a time", flush=True)
    try:
        directory = run_experiment(spec, address=args.address, dashboard=not args.no_dashboard,
                                   progress_interval_s=args.progress_interval)
        trials, iterations = load_results(directory)
        if "genotype" not in iterations.columns:
            print(f"\n{directory}: no supernet finished an epoch; see `hpnas results "
                  f"{directory}` for the errors.")
            return 1
        last = iterations.sort_values("iteration").groupby("trial_id").tail(1)
        table = trials.set_index("trial_id")[
            [c for c in ("config/order", "config/remedy", "config/seed", "status", "epochs")
             if c in trials.columns]].join(last.set_index("trial_id")[
                 [c for c in ("genotype", "nb201_val_acc", "val_acc", "skip_count")
                  if c in last.columns]])
        table.columns = [c.removeprefix("config/") for c in table.columns]
        print(f"\n{directory}: derived cells (NAS-Bench-201 accuracy is the table's "
              "seed-averaged validation accuracy of the cell):")
        print(table.to_string(float_format="{:.4g}".format, na_rep="-"))
        if not args.train_cells:
            return 0
        usable = table[(table["status"] != "failed") & table["genotype"].notna()]
        cells = sorted(set(usable["genotype"]))
        if not cells:
            print("\nNo usable derived cell to train (every search failed).")
            return 1
        cell_spec = spec_from_mapping({
            "name": f"{spec.name}-cells", "trainable": "cell_cnn",
            "searcher": {"name": "points", "points": cells}, "scheduler": "fifo",
            "samples": len(cells), "max_concurrent_trials": spec.max_concurrent_trials,
            "resources": dataclasses.asdict(spec.resources), "storage": spec.storage,
            "seed": spec.seed, "data": dataclasses.asdict(spec.settings.data),
            "train": {"epochs": args.train_cells, "channels": spec.settings.channels,
                      "cells_per_stage": spec.settings.cells_per_stage}})
        print(f"\nTraining the {len(cells)} derived cells for {args.train_cells} epochs "
              f"(experiment {cell_spec.directory})", flush=True)
        cell_dir = run_experiment(cell_spec, address=args.address,
                                  dashboard=not args.no_dashboard,
                                  progress_interval_s=args.progress_interval)
    except SpecError as e:
        return _fail(str(e))
    except KeyboardInterrupt:
        return _interrupted(spec.directory)
    _print_leaderboard(cell_dir, len(cells))
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    from cluster.jobs import submit_experiment
    from cluster.spec import SpecError, read_yaml
    from search.storage import is_uri

    try:
        # The data is checked on the cluster, where the job runs; the file is checked here.
        spec = _load(args, check_data=False)
        raw_storage = args.storage or (read_yaml(args.file) or {}).get("storage", "results")
        if isinstance(raw_storage, str) and not (is_uri(raw_storage)
                                                  or raw_storage.startswith("/")):
            raise SpecError(f"`storage` is {raw_storage!r}, a path relative to this machine; a "
                            "job writes on the cluster, so give an absolute path every node "
                            "sees or a URI (e.g. --storage /mnt/shared/hpnas or s3://b/hpnas).")
        job_id, address = submit_experiment(
            spec, args.address, upload=not args.no_upload,
            extra_args=["--skip-resource-check"] if args.skip_resource_check else [])
    except SpecError as e:
        return _fail(str(e))
    except (RuntimeError, ValueError) as e:  # the job server refused the job or its packages
        return _fail(f"the cluster did not accept the job: {str(e).splitlines()[0]}")
    at = f" --address {address}"
    print(f"hpnas: submitted {_describe(spec)}\n"
          f"job id: {job_id}\n"
          f"results (on the cluster): {spec.directory}\n"
          f"next:\n"
          f"  hpnas status {job_id}{at}\n"
          f"  hpnas logs {job_id}{at} --follow\n"
          f"  hpnas stop {job_id}{at}\n"
          f"  hpnas results {spec.directory}        # where that path is visible\n"
          f"  dashboard: {address}/#/jobs/{job_id}", flush=True)
    if args.wait:
        return _follow(args.address, job_id)
    return 0


def _on_job(address: str | None, job_id: str | None, action: Any) -> int:
    """``action(client)`` against the job server at ``address``; a bad address, an unknown job
    or a refused request is one line and exit 2."""
    import aiohttp

    from cluster.jobs import job_client
    from cluster.spec import SpecError

    try:
        return int(action(job_client(address)))
    except SpecError as e:
        return _fail(str(e))
    except (RuntimeError, aiohttp.ClientError) as e:
        return _fail(f"job {job_id}: {str(e).splitlines()[0] if str(e) else type(e).__name__}")


def _follow(address: str | None, job_id: str) -> int:
    """Stream the job's logs until it ends; 0 if it succeeded."""
    import asyncio

    def follow(client: Any) -> int:
        async def tail() -> None:
            async for lines in client.tail_job_logs(job_id):
                print(lines, end="", flush=True)

        asyncio.run(tail())
        status = client.get_job_status(job_id)
        print(f"hpnas: job {job_id} {status.value}")
        return 0 if status.value == "SUCCEEDED" else 1

    return _on_job(address, job_id, follow)


def cmd_status(args: argparse.Namespace) -> int:
    def every_job(client: Any) -> int:
        jobs = sorted(client.list_jobs(), key=lambda j: j.start_time or 0)
        rows = [j for j in jobs if (j.metadata or {}).get("hpnas_experiment")]
        if not rows:
            print("no hpnas jobs on this cluster")
        for j in rows:
            print(f"{j.submission_id}  {j.status.value:<9}  "
                  f"{j.metadata['hpnas_experiment']}  {j.metadata.get('hpnas_directory', '')}")
        return 0

    def one_job(client: Any) -> int:
        info = client.get_job_info(args.job)
        meta = info.metadata or {}
        print(f"job {args.job}: {info.status.value}"
              + (f" ({info.message})" if info.message else ""))
        if meta.get("hpnas_experiment"):
            print(f"experiment {meta['hpnas_experiment']}, results in "
                  f"{meta.get('hpnas_directory')}")
        return 0

    return _on_job(args.address, args.job, every_job if args.job is None else one_job)


def cmd_logs(args: argparse.Namespace) -> int:
    if args.follow:
        return _follow(args.address, args.job)

    def logs(client: Any) -> int:
        print(client.get_job_logs(args.job), end="")
        return 0

    return _on_job(args.address, args.job, logs)


def cmd_stop(args: argparse.Namespace) -> int:
    def stop(client: Any) -> int:
        stopped = client.stop_job(args.job)
        print(f"job {args.job}: " + ("stop requested; its results so far stay in its "
                                     "experiment directory" if stopped else "already ended"))
        return 0

    return _on_job(args.address, args.job, stop)


def cmd_resume(args: argparse.Namespace) -> int:
    from cluster.runner import resume_experiment
    from cluster.spec import SPEC_FILE, SpecError
    from search.storage import Location

    directory = Location(args.directory)
    if not (directory / SPEC_FILE).is_file():
        return _fail(f"{directory} is not an hpnas experiment directory (no {SPEC_FILE}); pass "
                     "the directory `hpnas run` printed.")
    print(f"hpnas: resuming {directory}"
          + (" (errored trials retried from their checkpoints)" if args.retry_errored else ""),
          flush=True)
    try:
        resume_experiment(directory, address=args.address, dashboard=not args.no_dashboard,
                          retry_errored=args.retry_errored,
                          resource_check=not args.skip_resource_check)
    except SpecError as e:
        return _fail(str(e))
    except KeyboardInterrupt:
        return _interrupted(directory)
    _print_leaderboard(directory, args.top)
    return 0


def cmd_results(args: argparse.Namespace) -> int:
    import yaml

    from cluster.export import best_config_experiment, experiment_yaml, table_bytes
    from cluster.spec import SPEC_FILE, SpecError
    from search.analysis import load
    from search.storage import Location

    directories = [Location(d) for d in args.directories]
    if args.format == "parquet" and not args.output:
        return _fail("--format parquet writes a binary file; give it --output FILE.")
    if args.best_config and len(directories) > 1:
        return _fail("--best-config takes one experiment directory; give one DIR.")
    if args.best_config and args.format:
        return _fail("--best-config and --format are separate exports; give one of them.")
    for flag, needs in (("iterations", "format"), ("output", "format"),
                        ("trial", "best_config"), ("epochs", "best_config")):
        if getattr(args, flag) and not getattr(args, needs):
            return _fail(f"--{flag} goes with --{needs.replace('_', '-')}; add it, or drop "
                         f"--{flag}.")
    try:
        if args.best_config:
            experiment, trial_id = best_config_experiment(
                directories[0], trial_id=args.trial, epochs=args.epochs)
            Location(args.best_config).write_text(experiment_yaml(
                experiment, source=str(directories[0]), trial_id=trial_id))
            fixed = experiment["space"]["overrides"]
            print(f"trial {trial_id}: {yaml.safe_dump(fixed, default_flow_style=True).strip()}\n"
                  f"written to {args.best_config}; retrain with: hpnas run {args.best_config}")
            return 0
        if args.format:
            runs = load(*directories, same_goal=False)
            table = runs.iterations if args.iterations else runs.trials
            data = table_bytes(table, args.format)
            if args.output:
                Location(args.output).write_bytes(data)
                print(f"{len(table)} rows written to {args.output}", file=sys.stderr)
            else:
                sys.stdout.write(data.decode())
            return 0
        for directory in directories:
            if not (directory / SPEC_FILE).is_file():
                return _fail(f"{directory} is not an hpnas experiment directory (no "
                             f"{SPEC_FILE}).")
            _print_leaderboard(directory, args.top)
    except (FileNotFoundError, SpecError, ValueError, OSError) as e:
        return _fail(str(e))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from search.analysis import load
    from search.report import write_report
    from search.storage import Location

    directories = [Location(d) for d in args.directories]
    try:
        runs = load(*directories)
    except (FileNotFoundError, ValueError, OSError) as e:
        return _fail(str(e))
    if args.cost and args.cost not in runs.trials.columns:
        numeric = [c for c in runs.trials.columns if c.startswith("last/") or c == "wall_s"]
        return _fail(f"--cost is {args.cost!r}, but the trials have no such column; numeric "
                     f"ones: {', '.join(numeric)}.")
    output = args.output
    if output is None:
        local = directories[0].local
        output = local / "report.html" if len(directories) == 1 and local is not None \
            else "hpnas-report.html"
    path = write_report(runs, output, top=args.top, cost=args.cost, png_dir=args.png_dir)
    counts = runs.trials["status"].value_counts().to_dict()
    print(f"report of {len(directories)} experiment(s), {len(runs.trials)} trials "
          f"({', '.join(f'{v} {k}' for k, v in sorted(counts.items()))}): {path}")
    return 0


def _evaluate(directory: Any, trial_id: str | None) -> int:
    from cluster.spec import SPEC_FILE, SpecError, read_yaml, spec_from_mapping
    from search.results import load_results
    from trainables import TRAINABLE_INFO

    try:
        spec = spec_from_mapping(read_yaml(directory / SPEC_FILE), check_data=True)
        trials, _ = load_results(directory)
    except (SpecError, FileNotFoundError) as e:
        return _fail(str(e))
    info = TRAINABLE_INFO[spec.trainable]
    if info.evaluate is None:
        return _fail(f"trainable {spec.trainable!r} has no test evaluation.")
    last = f"last_{spec.metric}"
    best = _best_trial(directory, spec, trial_id)
    if best is None:
        return _fail(f"{directory} has no trial with a checkpoint to evaluate"
                     + (f" (trial {trial_id!r} is not there or has none)." if trial_id else "."))
    config, row = best
    from trainables.loop import CheckpointError

    try:
        with _local_checkpoint(row["checkpoint"]) as checkpoint:
            result = info.evaluate(config, dataclasses.asdict(spec.settings), checkpoint)
    except CheckpointError as e:
        return _fail(str(e))
    result = {"trial_id": row["trial_id"], **result, "config": config}
    (directory / "evaluation.json").write_text(json.dumps(result, indent=2))
    print(f"test evaluation of trial {row['trial_id']} (last {spec.metric} "
          f"{row[last]:.4f}): " + ", ".join(f"{k} {v:.4f}" for k, v in result.items()
                                           if isinstance(v, float)))
    print(f"written to {directory / 'evaluation.json'}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from search.storage import Location

    return _evaluate(Location(args.directory), args.trial)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hpnas", description="Hyperparameter and architecture search on Ray Tune.")
    sub = parser.add_subparsers(dest="command", required=True)

    def experiment_flags(p: argparse.ArgumentParser) -> None:
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
        p.add_argument("--skip-resource-check", action="store_true",
                       help="launch even if no node can hold a trial yet (autoscaling clusters)")

    run = sub.add_parser(
        "run", help="run an experiment file",
        description="Run an experiment on an embedded local Ray (or --address to join a "
                    "cluster), then print the leaderboard.",
        epilog="example: hpnas run examples/fashion_mnist_cnn.yaml --samples 8 --name try1")
    experiment_flags(run)
    run.add_argument("--address", help="Ray cluster address to join, HOST:6379 (default: "
                                       "$RAY_ADDRESS, else an embedded local Ray)")
    run.add_argument("--no-dashboard", action="store_true",
                     help="do not start the Ray dashboard with the embedded Ray")
    run.add_argument("--top", type=int, default=10, help="leaderboard rows (default 10)")
    run.add_argument("--evaluate", action="store_true",
                     help="after the search, report test metrics of the best final model")
    run.add_argument("--progress-interval", type=float, default=15.0,
                     help="seconds between progress lines (default 15)")
    run.set_defaults(func=cmd_run)

    darts = sub.add_parser(
        "darts", help="run DARTS supernets in parallel and evaluate their derived cells",
        description="Run one DARTS search per config of the `darts` space (order, remedy, "
                    "seed; a grid by default) as Ray trials, print each derived cell with its "
                    "NAS-Bench-201 accuracy, and optionally train the cells for real.",
        epilog="example: hpnas darts examples/darts.yaml --train-cells 3")
    darts.add_argument("file", help="experiment YAML file (trainable: darts is the default)")
    darts.add_argument("--storage")
    darts.add_argument("--name")
    darts.add_argument("--max-concurrent-trials", type=int, dest="max_concurrent_trials")
    darts.add_argument("--address")
    darts.add_argument("--no-dashboard", action="store_true")
    darts.add_argument("--progress-interval", type=float, default=15.0)
    darts.add_argument("--train-cells", type=int, default=0, metavar="EPOCHS",
                       help="train each derived cell with the cell_cnn trainable this many "
                            "epochs (0: table lookup only)")
    darts.set_defaults(func=cmd_darts)

    resume = sub.add_parser(
        "resume", help="continue an experiment after a crash, a kill or Ctrl-C",
        description="Continue the experiment in DIR where it stopped: finished trials are kept, "
                    "unfinished ones resume from their last checkpoint, and the searcher "
                    "continues with its saved state.",
        epilog="example: hpnas resume results/fashion_mnist_cnn-20261126-185418")
    resume.add_argument("directory", help="the experiment directory (or URI)")
    resume.add_argument("--retry-errored", action="store_true",
                        help="also retry trials that failed, from their last checkpoint")
    resume.add_argument("--address", help="Ray cluster address to join (default: "
                                          "$RAY_ADDRESS, else an embedded local Ray)")
    resume.add_argument("--no-dashboard", action="store_true")
    resume.add_argument("--skip-resource-check", action="store_true")
    resume.add_argument("--top", type=int, default=10)
    resume.set_defaults(func=cmd_resume)

    submit = sub.add_parser(
        "submit", help="submit an experiment to a Ray cluster as a Ray job",
        description="Validate the experiment file here, then run it on the cluster as a Ray job "
                    "(Job Submission SDK; the project's packages travel in its runtime "
                    "environment). Prints the job id and the commands to follow it.",
        epilog="example: hpnas submit examples/nb201_evolution.yaml --address "
               "http://HEAD:8265 --storage /mnt/shared/hpnas")
    experiment_flags(submit)
    submit.add_argument("--address", help="the head's dashboard address, http://HEAD:8265 "
                                          "(default: $RAY_ADDRESS)")
    submit.add_argument("--no-upload", action="store_true",
                        help="use the hpnas installed on the cluster instead of uploading it")
    submit.add_argument("--wait", action="store_true",
                        help="follow the job's logs until it ends; exit 0 if it succeeded")
    submit.set_defaults(func=cmd_submit)

    for name, func, text in (("status", cmd_status, "a job's status (no JOB: every hpnas job)"),
                             ("logs", cmd_logs, "a job's driver output"),
                             ("stop", cmd_stop, "stop a running job")):
        p = sub.add_parser(name, help=text, description=text,
                           epilog=f"example: hpnas {name} raysubmit_XXXX --address "
                                  "http://HEAD:8265")
        p.add_argument("job", nargs="?" if name == "status" else None,
                       help="job id (as `hpnas submit` printed it)")
        p.add_argument("--address", help="the head's dashboard address, http://HEAD:8265 "
                                         "(default: $RAY_ADDRESS)")
        if name == "logs":
            p.add_argument("--follow", action="store_true", help="stream until the job ends")
        p.set_defaults(func=func)

    results = sub.add_parser(
        "results", help="an experiment's leaderboard; export its tables or best config",
        description="Print the leaderboard of each experiment DIR (a path or URI, also while it "
                    "runs); or export the trials (or --iterations) of all of them as CSV, JSON "
                    "or Parquet, with `experiment` and `searcher` columns; or write the best "
                    "trial's config as an experiment file that `hpnas run` retrains.",
        epilog="examples: hpnas results results/fmnist-cnn --top 5 | "
               "hpnas results results/a results/b --format csv --output trials.csv | "
               "hpnas results results/fmnist-cnn --best-config best.yaml --epochs 20")
    results.add_argument("directories", nargs="+", metavar="DIR")
    results.add_argument("--top", type=int, default=10)
    results.add_argument("--format", choices=("csv", "json", "parquet"),
                         help="export the table instead of printing the leaderboard")
    results.add_argument("--iterations", action="store_true",
                         help="export iterations.parquet's rows (one per epoch) instead of trials")
    results.add_argument("--output", help="file to export to (default: standard output)")
    results.add_argument("--best-config", metavar="FILE",
                         help="write the best trial's config as an experiment file to FILE")
    results.add_argument("--trial", help="with --best-config: this trial instead of the best")
    results.add_argument("--epochs", type=int,
                         help="with --best-config: train.epochs of the retraining run")
    results.set_defaults(func=cmd_results)

    report = sub.add_parser(
        "report", help="an HTML page of plots comparing one or more experiments",
        description="Write one self-contained HTML page (PNG plots embedded): best so far "
                    "against time and trials per experiment, learning curves, parallel "
                    "coordinates, fANOVA parameter importance, the Pareto front and the "
                    "leaderboard. Works while the experiments run.",
        epilog="example: hpnas report results/nb201-evolution results/nb201-random -o cmp.html")
    report.add_argument("directories", nargs="+", metavar="DIR")
    report.add_argument("-o", "--output", help="the HTML file (default: DIR/report.html for one "
                                               "local DIR, else ./hpnas-report.html)")
    report.add_argument("--top", type=int, default=10, help="leaderboard rows")
    report.add_argument("--cost", help="trials column the Pareto plot trades the metric against "
                                       "(default: last/params if reported, else wall_s)")
    report.add_argument("--png-dir", help="also write each plot as a PNG file here")
    report.set_defaults(func=cmd_report)

    evaluate = sub.add_parser(
        "evaluate", help="test metrics of the best (or a given) trial's final model",
        epilog="example: hpnas evaluate results/fmnist-cnn")
    evaluate.add_argument("directory")
    evaluate.add_argument("--trial", help="trial id (default: best complete trial)")
    evaluate.set_defaults(func=cmd_evaluate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*experimental.*")
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
