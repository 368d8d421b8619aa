"""The seed's Optuna study (its CNN space, TPE) on Fashion-MNIST, with and without ASHA.

The seed ran 30 minutes on CIFAR-100 (10 trials; with pruning, 13). Here the same search runs
through ``hpnas`` on a Fashion-MNIST subset, twice with the same time budget, seed, concurrency
and data: once with FIFO (every trial runs all its epochs) and once with ASHA (grace 1 epoch,
reduction factor 3). The table gives the trials finished and pruned and the best validation
accuracy each found, measured in this one run.

    .venv/bin/python benchmarks/seed_study.py                  # 2 x 4 minutes
    .venv/bin/python benchmarks/seed_study.py --budget-s 120   # quicker
Data: ``--root`` (default: ../shared/data/fashion-mnist beside the checkout, else Debian's
/usr/share/datasets/fashion-mnist).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pandas as pd

from cluster.runner import connect, run_experiment
from cluster.spec import spec_from_mapping

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "fashion-mnist"
DEBIAN = Path("/usr/share/datasets/fashion-mnist")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-s", type=float, default=240)
    parser.add_argument("--root", default=None)
    parser.add_argument("--train-size", type=int, default=10000)
    parser.add_argument("--val-size", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args()
    root = args.root or next((str(p) for p in (SHARED, DEBIAN) if p.is_dir()), None)
    if root is None:
        sys.exit(f"Fashion-MNIST not found in {SHARED} or {DEBIAN}; pass --root.")
    rows = []
    with tempfile.TemporaryDirectory() as storage, connect(None, dashboard=False, num_cpus=2):
        for scheduler in ("fifo", "asha"):
            spec = spec_from_mapping({
                "name": scheduler, "trainable": "cifar_cnn", "searcher": "optuna",
                "scheduler": ({"name": "asha", "grace_period_epochs": 1, "reduction_factor": 3}
                              if scheduler == "asha" else "fifo"),
                "samples": None, "time_budget_s": args.budget_s, "max_concurrent_trials": 2,
                "seed": 0, "resources": {"cpus": 1},
                "data": {"name": "fashion_mnist", "root": root, "train_size": args.train_size,
                         "val_size": args.val_size},
                "train": {"epochs": args.epochs, "batch_size": 64}, "storage": storage})
            directory = run_experiment(spec, quiet=True)
            trials = pd.read_parquet(directory / "trials.parquet")
            counts = trials["status"].value_counts()
            best = trials.loc[trials["best_val_acc"].idxmax()]
            rows.append((scheduler, len(trials), counts.get("complete", 0),
                         counts.get("pruned", 0), counts.get("failed", 0),
                         counts.get("stopped", 0), best["best_val_acc"], int(best["epochs"])))
    print(f"# Fashion-MNIST ({args.train_size} train / {args.val_size} validation images from "
          f"{root}), seed CNN space, Optuna TPE seed 0, {args.epochs} epochs per trial, "
          f"2 trials at a time on 2 CPUs, time budget {args.budget_s:.0f} s each")
    print("\n| scheduler | trials started | finished | pruned | failed | stopped before a report | "
          "best val_acc | its epochs |\n|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]} | {r[5]} | {r[6]:.4f} | {r[7]} |")


if __name__ == "__main__":
    main()
