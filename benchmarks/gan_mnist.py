"""The conditional GAN on MNIST: the seed's configuration vs the best a fixed-budget search finds.

Both train on the same MNIST subset for the same number of epochs and are measured the same way
(``trainables/gan_metric.py``: Frechet distance to the real validation images in a cached
classifier's feature space, lower is better; conditional accuracy, the share of generated images
that classifier assigns to their conditioning label). The seed's configuration is the seed's
DCGAN (z 64, hidden 64, Adam 2e-4 with beta1 0.5, batch 128, concatenated one-hot). The search
is ``hpnas run`` over the ``gan`` space (sizes, both learning rates, beta1, batch, discriminator
steps, label smoothing, concat or AdaIN conditioning) with Optuna TPE and ASHA on the Frechet
distance, 2 trials at a time on this 2-core CPU, within a fixed time budget.

    .venv/bin/python benchmarks/gan_mnist.py                     # about 12 minutes
    .venv/bin/python benchmarks/gan_mnist.py --budget-s 300 --epochs 4
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(SHARED))
    parser.add_argument("--train-size", type=int, default=20000)
    parser.add_argument("--val-size", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--budget-s", type=float, default=540)
    args = parser.parse_args()
    if not Path(args.root).is_dir():
        sys.exit(f"MNIST not found at {args.root}; pass --root (a folder of the IDX files).")

    from cluster.runner import connect, run_experiment
    from cluster.spec import spec_from_mapping
    from trainables.data import DataSettings
    from trainables.gan import SEED_CONFIG, GanRun, GanSettings
    from trainables.gan_metric import QualityMeter

    data = DataSettings(name="mnist", root=args.root, train_size=args.train_size,
                        val_size=args.val_size)
    settings = GanSettings(data=data, epochs=args.epochs, eval_samples=2000)
    meter = QualityMeter.for_data(data, torch.device("cpu"))
    run = GanRun(SEED_CONFIG, settings, torch.device("cpu"))
    seed_rows = []
    for _ in range(args.epochs):
        start = time.perf_counter()
        run.train_epoch()
        seconds = time.perf_counter() - start
        seed_rows.append({"epoch": run.epoch, "seconds": seconds,
                          **meter.measure(run.sample, 2000, run.classes)})

    with tempfile.TemporaryDirectory() as storage, connect(None, dashboard=False, num_cpus=2):
        spec = spec_from_mapping({
            "name": "gan-search", "trainable": "gan", "searcher": "optuna",
            "scheduler": {"name": "asha", "grace_period_epochs": 2, "reduction_factor": 3},
            "samples": None, "time_budget_s": args.budget_s, "max_concurrent_trials": 2,
            "seed": 0, "data": {"name": "mnist", "root": args.root,
                                "train_size": args.train_size, "val_size": args.val_size},
            "train": {"epochs": args.epochs, "eval_samples": 2000}, "storage": storage})
        directory = run_experiment(spec, quiet=True)
        trials = pd.read_parquet(directory / "trials.parquet")
        iterations = pd.read_parquet(directory / "iterations.parquet")
    full = trials[trials["epochs"] == args.epochs]
    best = (full if not full.empty else trials).sort_values("last_fd").iloc[0]
    best_iter = iterations[(iterations["trial_id"] == best["trial_id"])].sort_values(
        "iteration").iloc[-1]
    config = {k[len("config/"):]: getattr(best[k], "item", lambda: best[k])()
              for k in best.index if k.startswith("config/")}

    print(f"# MNIST from {args.root}: {args.train_size} training / {args.val_size} validation "
          f"images, {args.epochs} epochs, this 2-core CPU. Quality of 2,000 generated images "
          "(labels uniform).")
    print("\n| run | epoch | seconds/epoch | Frechet distance | conditional accuracy |\n"
          "|---|---:|---:|---:|---:|")
    for r in seed_rows:
        print(f"| seed config | {r['epoch']} | {r['seconds']:.1f} | {r['fd']:.1f} | "
              f"{r['cond_acc']:.3f} |")
    print(f"| best of search | {int(best_iter['iteration'])} | {best_iter['epoch_s']:.1f} | "
          f"{best_iter['fd']:.1f} | {best_iter['cond_acc']:.3f} |")
    counts = trials["status"].value_counts().to_dict()
    print(f"\nSearch: {len(trials)} trials in {args.budget_s:.0f} s ({counts}); best config "
          f"{config}")


if __name__ == "__main__":
    main()
