"""DARTS on the NAS-Bench-201 cell, on this CPU: cost of first/second order, collapse and remedies.

Every run searches the supernet (C=8, N=1 cells per stage, the NB201 skeleton) on a
Fashion-MNIST subset (half of the training split trains the weights, half the alphas), one
process per run with one torch thread. The first table gives seconds per search epoch and the
process's peak resident memory for first- and second-order DARTS. The second gives, per epoch,
the NAS-Bench-201 CIFAR-100 accuracy (table, seed-averaged) of the genotype derived at that
epoch, for plain first-order DARTS and its two remedies (DARTS+ early stop, DARTS- auxiliary
skip), and the derived cell's skip-connection count. Last, aging evolution gets the same
wall-clock as one plain DARTS run, training each proposed cell for real with the ``cell_cnn``
trainable on the same data (1 CPU, one trial at a time), and its best cell is looked up too.

    .venv/bin/python benchmarks/darts_nb201.py                   # about 10 minutes
    .venv/bin/python benchmarks/darts_nb201.py --epochs 6 --train-size 4000
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "fashion-mnist"
DEBIAN = Path("/usr/share/datasets/fashion-mnist")


def search(job: dict) -> dict:
    """One DARTS search in this (child) process; per-epoch records and peak RSS."""
    import torch

    from spaces.cells import nb201_space
    from spaces.tables import load_nb201
    from trainables.darts import DartsRun, DartsSettings, derive_genotype
    from trainables.data import DataSettings

    torch.set_num_threads(1)
    settings = DartsSettings(
        data=DataSettings(name="fashion_mnist", root=job["root"], train_size=job["train_size"],
                          val_size=job["val_size"]),
        epochs=job["epochs"], batch_size=64, channels=8, cells_per_stage=1,
        order=job["order"], remedy=job["remedy"], seed=job["seed"])
    table = load_nb201("cifar100")
    space = nb201_space()
    run = DartsRun(settings, torch.device("cpu"))
    records = []
    start = time.perf_counter()
    while run.epoch < settings.epochs and not run.stopped:
        t = time.perf_counter()
        run.train_epoch()  # xi, beta and the epoch counter move as in the trainable
        seconds = time.perf_counter() - t
        val_acc, _ = run.evaluate()
        current = derive_genotype(run.architect.alphas.detach())
        if settings.remedy == "early_stop" and current.count("skip_connect") >= settings.max_skip:
            run.stopped = True
        else:
            run.genotype = current
        records.append({"epoch": run.epoch, "seconds": seconds, "supernet_val_acc": val_acc,
                        "genotype": run.genotype,
                        "nb201": table.mean_val_acc(space.from_arch(run.genotype)),
                        "skips": run.genotype.count("skip_connect"),
                        "stopped": run.stopped})
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {**job, "records": records, "peak_mb": peak_mb,
            "wall_s": time.perf_counter() - start}


def evolution_same_wallclock(root: str, budget_s: float, train_size: int, val_size: int
                             ) -> tuple[int, float, str]:
    import pandas as pd

    from cluster.runner import connect, run_experiment
    from cluster.spec import spec_from_mapping
    from spaces.cells import nb201_space
    from spaces.tables import load_nb201

    with tempfile.TemporaryDirectory() as storage, connect(None, dashboard=False, num_cpus=1):
        spec = spec_from_mapping({
            "name": "evolution", "trainable": "cell_cnn",
            "searcher": {"name": "evolution", "population_size": 10, "sample_size": 3},
            "scheduler": "fifo", "samples": None, "time_budget_s": budget_s,
            "max_concurrent_trials": 1, "resources": {"cpus": 1}, "seed": 0,
            "data": {"name": "fashion_mnist", "root": root, "train_size": train_size // 2,
                     "val_size": val_size},
            "train": {"epochs": 2, "batch_size": 64, "channels": 8, "cells_per_stage": 1},
            "storage": storage})
        directory = run_experiment(spec, quiet=True)
        trials = pd.read_parquet(directory / "trials.parquet")
    done = trials.dropna(subset=["best_val_acc"])
    best = done.loc[done["best_val_acc"].idxmax()]
    space = nb201_space()
    cell = {k[len("config/"):]: best[k] for k in best.index if k.startswith("config/edge_")}
    return len(done), load_nb201("cifar100").mean_val_acc(cell), space.arch_string(cell)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--second-order-epochs", type=int, default=3)
    parser.add_argument("--train-size", type=int, default=8000)
    parser.add_argument("--val-size", type=int, default=1000)
    parser.add_argument("--root", default=None)
    parser.add_argument("--no-evolution", action="store_true")
    args = parser.parse_args()
    root = args.root or next((str(p) for p in (SHARED, DEBIAN) if p.is_dir()), None)
    if root is None:
        sys.exit(f"Fashion-MNIST not found in {SHARED} or {DEBIAN}; pass --root.")
    base = {"root": root, "train_size": args.train_size, "val_size": args.val_size, "seed": 0}
    jobs = [
        {**base, "order": "first", "remedy": "none", "epochs": args.epochs},
        {**base, "order": "first", "remedy": "aux_skip", "epochs": args.epochs},
        {**base, "order": "first", "remedy": "early_stop", "epochs": args.epochs},
        {**base, "order": "second", "remedy": "none", "epochs": args.second_order_epochs},
    ]
    with ProcessPoolExecutor(2) as pool:
        results = list(pool.map(search, jobs))
    print(f"# DARTS on the NB201 cell space: supernet C=8, N=1; Fashion-MNIST from {root}, "
          f"{args.train_size // 2} images train w and {args.train_size // 2} train alpha, "
          f"{args.val_size} validate; batch 64; 1 torch thread per run, 2 runs at a time")
    print("\n| order | seconds per epoch | peak RSS (MB) |\n|---|---:|---:|")
    for r in results:
        if r["remedy"] == "none":
            secs = sum(x["seconds"] for x in r["records"]) / len(r["records"])
            print(f"| {r['order']} | {secs:.1f} | {r['peak_mb']:.0f} |")
    first = [r for r in results if r["order"] == "first"]
    print("\nNAS-Bench-201 CIFAR-100 accuracy (%) of the genotype derived after each epoch "
          "(skip connections in the cell):\n")
    print("| epoch | " + " | ".join(f"{r['remedy']}" for r in first) + " |")
    print("|---:|" + "---:|" * len(first))
    for e in range(args.epochs):
        cells = []
        for r in first:
            if e < len(r["records"]):
                x = r["records"][e]
                cells.append(f"{x['nb201']:.2f} ({x['skips']})" + (" stop" if x["stopped"]
                                                                   else ""))
            else:
                cells.append("-")
        print(f"| {e + 1} | " + " | ".join(cells) + " |")
    for r in first:
        final = r["records"][-1]
        print(f"\n{r['remedy']}: final cell {final['genotype']} -> {final['nb201']:.2f} "
              f"after {r['wall_s']:.0f} s")
    if not args.no_evolution:
        budget = first[0]["wall_s"]
        n, acc, arch = evolution_same_wallclock(root, budget, args.train_size, args.val_size)
        print(f"\nAging evolution with the same wall-clock ({budget:.0f} s, 1 CPU, each cell "
              f"trained 2 epochs by cell_cnn): {n} cells trained, best {arch} -> {acc:.2f}")


if __name__ == "__main__":
    main()
