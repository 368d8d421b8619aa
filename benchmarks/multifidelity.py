"""Search with early stopping on real training, every method at one wall-clock budget: evolution
with and without ASHA, random search and Optuna TPE with ASHA (the default set), or with
``--schedulers`` the schedulers side by side: ASHA, Hyperband, BOHB and PBT.

Each method runs a real ``hpnas`` experiment (the seed CNN space, ``cifar_cnn``, on a
Fashion-MNIST subset, 2 trials at a time on 2 CPUs) for the same ``--budget-s`` seconds, for
each of ``--seeds`` seeds, one after another on an otherwise idle machine. The table gives, per
method, the mean over seeds of the trials finished (complete or stopped by ASHA; trials cut by
the budget are not counted) and of the best validation accuracy any trial reported, with each
seed's figures.

    .venv/bin/python benchmarks/multifidelity.py                    # 4 x 3 x 120 s
    .venv/bin/python benchmarks/multifidelity.py --budget-s 60 --seeds 1
    .venv/bin/python benchmarks/multifidelity.py --schedulers       # needs hpnas[bohb]
Data: ``--root`` (default: ../shared/data/fashion-mnist beside the checkout, else Debian's
/usr/share/datasets/fashion-mnist).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "fashion-mnist"
DEBIAN = Path("/usr/share/datasets/fashion-mnist")
ASHA = {"name": "asha", "grace_period_epochs": 1, "reduction_factor": 3}
METHODS = {  # name: (searcher, scheduler, samples: None for as many as the budget allows)
    "evolution + ASHA": ("evolution", ASHA, None),
    "evolution (FIFO)": ("evolution", "fifo", None),
    "random + ASHA": ("random", ASHA, None),
    "optuna TPE + ASHA": ("optuna", ASHA, None),
    "random + Hyperband": ("random", {"name": "hyperband", "reduction_factor": 3}, None),
    "BOHB": ("bohb", {"name": "bohb", "reduction_factor": 3}, None),
    # PBT trains one population (of 8) for the budget, exploiting every 2 epochs
    "random + PBT": ("random", {"name": "pbt", "mutate": ["lr", "optimizer"],
                                "perturbation_interval_epochs": 2}, 8),
}
DEFAULT = ["evolution + ASHA", "evolution (FIFO)", "random + ASHA", "optuna TPE + ASHA"]
SCHEDULERS = ["random + ASHA", "random + Hyperband", "BOHB", "random + PBT"]


def main() -> None:
    from cluster.runner import connect, run_experiment
    from cluster.spec import spec_from_mapping

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-s", type=float, default=120)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--root", default=None)
    parser.add_argument("--train-size", type=int, default=5000)
    parser.add_argument("--val-size", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--methods", nargs="+", default=None, choices=list(METHODS))
    parser.add_argument("--schedulers", action="store_true",
                        help=f"compare the schedulers: {', '.join(SCHEDULERS)}")
    parser.add_argument("--verbose", action="store_true", help="show each search's progress")
    args = parser.parse_args()
    root = args.root or next((str(p) for p in (SHARED, DEBIAN) if p.is_dir()), None)
    if root is None:
        sys.exit(f"Fashion-MNIST not found in {SHARED} or {DEBIAN}; pass --root.")
    methods = args.methods or (SCHEDULERS if args.schedulers else DEFAULT)
    results: dict[str, list[tuple[int, int, float]]] = {m: [] for m in methods}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as storage, connect(None, dashboard=False, num_cpus=2):
        for seed in range(args.seeds):
            for index, method in enumerate(methods):
                searcher, scheduler, samples = METHODS[method]
                spec = spec_from_mapping({
                    "name": f"method{index}-{seed}", "trainable": "cifar_cnn",
                    "searcher": searcher, "scheduler": scheduler,
                    "samples": samples, "time_budget_s": args.budget_s,
                    "max_concurrent_trials": 2, "seed": seed, "resources": {"cpus": 1},
                    "data": {"name": "fashion_mnist", "root": root,
                             "train_size": args.train_size, "val_size": args.val_size},
                    "train": {"epochs": args.epochs, "batch_size": 64}, "storage": storage})
                directory = run_experiment(spec, quiet=not args.verbose)
                path = directory / "trials.parquet"
                if not path.is_file():  # no trial reported within the budget
                    results[method].append((0, 0, float("nan")))
                    continue
                trials = pd.read_parquet(path)
                counts = trials["status"].value_counts()
                finished = int(counts.get("complete", 0) + counts.get("pruned", 0))
                results[method].append((finished, int(counts.get("complete", 0)),
                                        float(trials["best_val_acc"].max())))
    minutes = (time.perf_counter() - start) / 60
    print(f"# Fashion-MNIST ({args.train_size} train / {args.val_size} validation images from "
          f"{root}), seed CNN space (cifar_cnn), {args.epochs} epochs per full trial, ASHA "
          f"grace 1 epoch, ASHA/Hyperband/BOHB reduction factor 3, PBT population 8 mutating "
          f"lr and optimizer every 2 epochs, 2 trials training at a time on 2 CPUs, "
          f"{args.budget_s:.0f} s of wall clock per method and seed, {args.seeds} seed(s), "
          f"{minutes:.0f} min in all")
    print("\n| method | trials finished (mean) | of them complete | best val_acc (mean) | "
          "per seed: finished / best |\n|---|---:|---:|---:|---|")
    for method, rows in results.items():
        data = np.array(rows, dtype=float)
        per_seed = ", ".join(f"{int(f)} / {b:.4f}" for f, _, b in rows)
        print(f"| {method} | {data[:, 0].mean():.1f} | {data[:, 1].mean():.1f} | "
              f"{data[:, 2].mean():.4f} | {per_seed} |")


if __name__ == "__main__":
    main()
