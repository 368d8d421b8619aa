"""Orchestration overhead: seconds per trial through hpnas vs a plain in-memory Optuna loop.

Both run the same ``cifar_cnn`` space with Optuna TPE (seed 0) and a trainable that does no
work: it reports one ``val_acc`` computed from the config and returns. hpnas runs the whole
service path: a local Ray (2 CPUs), Tune with ``max_concurrent_trials=2``, ASHA, our searcher
adapter, the Parquet results writer and the progress callback, ``reuse_actors=True``. The plain
loop is ``study.optimize`` over the same define-by-run space in this process.

Per-trial seconds = wall time of ``Tuner.fit`` (after Ray has started) / trials; Ray's start-up
is printed separately since it is paid once per experiment, not per trial.

    .venv/bin/python benchmarks/overhead.py --trials 100
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time

import optuna

from spaces import get_space


def objective_value(config: dict) -> float:
    return -abs(math.log10(config["lr"]) + 2.2) + 0.01 * config["num_conv_layers"]


def report_once(config: dict, settings: dict | None = None) -> None:
    from ray import tune

    tune.report({"val_acc": objective_value(config)})


def plain_optuna(trials: int) -> float:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = get_space("cifar_cnn")
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=0, multivariate=True))
    start = time.perf_counter()
    study.optimize(lambda t: objective_value(space.define_by_run(t)), n_trials=trials)
    return time.perf_counter() - start


def through_hpnas(trials: int, storage: str) -> tuple[float, float, int]:
    import ray

    from cluster.runner import build_tuner, connect
    from cluster.spec import spec_from_mapping

    spec = spec_from_mapping({
        "name": "overhead", "trainable": "cifar_cnn", "searcher": "optuna",
        "scheduler": {"name": "asha", "grace_period_epochs": 1}, "samples": trials,
        "max_concurrent_trials": 2, "train": {"epochs": 1}, "storage": storage,
        "data": {"name": "fashion_mnist"}}, check_data=False)
    start = time.perf_counter()
    with connect(None, dashboard=False, num_cpus=2):
        started = time.perf_counter()
        tuner = build_tuner(spec, quiet=True, trainable_fn=report_once)
        results = tuner.fit()
        fit = time.perf_counter() - started
        assert ray.is_initialized()
    return started - start, fit, len(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    args = parser.parse_args()
    plain = plain_optuna(args.trials)
    with tempfile.TemporaryDirectory() as storage:
        ray_start, fit, n = through_hpnas(args.trials, storage)
    print(f"# {args.trials} trials, cifar_cnn space, Optuna TPE seed 0, trainable reports once")
    print("\n| path | trials | total s | s per trial |\n|---|---:|---:|---:|")
    print(f"| plain Optuna loop (in-process) | {args.trials} | {plain:.2f} | "
          f"{plain / args.trials:.4f} |")
    print(f"| hpnas: Ray Tune + ASHA + searcher adapter + Parquet, concurrency 2 | {n} | "
          f"{fit:.2f} | {fit / n:.4f} |")
    print(f"\nRay start-up (once per experiment, not per trial): {ray_start:.1f} s; "
          f"hpnas overhead per trial beyond the plain loop: "
          f"{(fit / n) - plain / args.trials:.4f} s")


if __name__ == "__main__":
    main()
