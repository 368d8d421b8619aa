"""DARTS on the NAS-Bench-201 cell: does the search collapse, and do the remedies hold?

Each run searches the supernet (NAS-Bench-201's skeleton, C channels, N cells per stage) on real
images, one process per run with one torch thread, and after every epoch looks the derived cell
up in the NAS-Bench-201 CIFAR-100 table (the mean of the table's seeds, percent). Methods, all
first order: plain DARTS (``none``), DARTS+ (``early_stop``:
stop when the derived cell has 2 skip connections), DARTS- (``aux_skip``: an auxiliary skip
decaying from 1 towards 0) and beta-DARTS (``beta_reg``: the Beta-Decay regularisation); plain
DARTS also second-order (``--second-order``).

The default scale is this CPU's: CIFAR-10 (the JPEG copy in ``../shared/data``, converted once by
``benchmarks/cifar10_jpeg.py``) averaged down to 16x16 as ImageNet16-120 was made, C=4, N=1,
10,000 images training the weights and 10,000 the alphas, batch 64: about 157 alpha steps per
epoch, 20 epochs. The papers take about 20,000 alpha steps at Adam lr 3e-4 (50 epochs of ~390);
Adam moves an alpha by at most about its lr per step, so the CPU runs take fewer, larger steps:
``alpha_lr`` 3e-3 (the ablation ``--alpha-lr 3e-4`` shows the alphas barely leaving uniform).

It prints, first, alpha steps per second (each with its weight step; measured on one batch after
a warm-up) for first and second order at this scale, and first order at the dataset's own image
size; then per method and seed the final derived cell, its table
accuracy, the peak and final share of the alphas' softmax on parameter-free ops (``none``,
``skip_connect``, ``avg_pool_3x3``; 0.6 is uniform), and the minutes taken; then each method's
mean over seeds. ``--plot FILE`` writes the trajectories (table accuracy and parameter-free share
against alpha steps, a colour per method, a line per seed) as a PNG; ``--json FILE`` the per-epoch
records.

    .venv/bin/python benchmarks/darts_nb201.py                        # about 45 minutes
    .venv/bin/python benchmarks/darts_nb201.py --seeds 0 --epochs 6   # a quick look
    .venv/bin/python benchmarks/darts_nb201.py --device cuda          # the paper's schedule

``--device cuda`` runs the papers' schedule on a GPU: CIFAR-10 at 32x32, C=16, N=5, 24,500 +
24,500 images (1,000 held out to validate the supernet), 50 epochs (about 19,000 alpha steps),
``alpha_lr`` 3e-4; ``--jobs`` processes share the device.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

METHODS = ("none", "early_stop", "aux_skip", "beta_reg")
FREE_UNIFORM = 0.6  # three of NAS-Bench-201's five ops are parameter-free


def settings_for(job: dict):
    from trainables.darts import DartsSettings
    from trainables.data import DataSettings

    return DartsSettings(
        data=DataSettings(name=job["dataset"], root=job["root"], train_size=job["train_size"],
                          val_size=job["val_size"], image_size=job["image_size"]),
        epochs=job["epochs"], batch_size=job["batch_size"], channels=job["channels"],
        cells_per_stage=job["cells"], alpha_lr=job["alpha_lr"], order=job["order"],
        remedy=job["remedy"], beta_reg_weight=job["beta_reg_weight"],
        aux_skip_decay=job["aux_skip_decay"], weight_steps=job["weight_steps"],
        augment=job["augment"], seed=job["seed"],
        nb201_dataset="cifar100")


def search(job: dict) -> dict:
    """One DARTS search in this (child) process: a record per epoch."""
    import torch

    from spaces.cells import nb201_space
    from spaces.tables import load_nb201
    from trainables.darts import DartsRun, genotype_counts

    torch.set_num_threads(job["threads"])
    settings = settings_for(job)
    table, space = load_nb201("cifar100"), nb201_space()
    run = DartsRun(settings, torch.device(job["device"]))
    records = []
    start = time.perf_counter()
    while run.epoch < settings.epochs and not run.stopped:
        run.train_epoch()
        val_acc, _ = run.evaluate()
        run.update_genotype()
        metrics = run.alpha_metrics()
        counts = genotype_counts(run.genotype)
        records.append({
            "epoch": run.epoch, "alpha_steps": metrics["alpha_steps"],
            "seconds": time.perf_counter() - start, "supernet_val_acc": val_acc,
            "genotype": run.genotype, "stopped": run.stopped,
            "nb201": table.mean_val_acc(space.from_arch(run.genotype)),
            "param_free_share": metrics["param_free_share"],
            "param_free_ops": counts["param_free_ops"], "alpha_margin": metrics["alpha_margin"],
            "genotype_margin": run.genotype_margin,
            "skips": counts["skip_count"]})
    return {**job, "records": records, "wall_s": time.perf_counter() - start}


def steps_per_second(job: dict, steps: int = 20) -> float:
    """Alpha steps (each with its ``weight_steps`` weight steps) per second, after a warm-up."""
    import torch

    from trainables.darts import DartsRun

    torch.set_num_threads(job["threads"])
    run = DartsRun(settings_for({**job, "epochs": 1}), torch.device(job["device"]))
    batch = torch.arange(job["batch_size"], device=job["device"])

    def one() -> None:
        run.step([batch] * job["weight_steps"], batch)

    for _ in range(3):
        one()
    if job["device"] == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        one()
    if job["device"] == "cuda":
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - start)


def summary_rows(results: list[dict]) -> list[dict]:
    rows = []
    for r in results:
        recs = r["records"]
        final = recs[-1]
        rows.append({"method": f"{r['remedy']}" + ("" if r["order"] == "first" else " (2nd)"),
                     "seed": r["seed"], "cell": final["genotype"], "nb201": final["nb201"],
                     "peak_free": max(x["param_free_share"] for x in recs),
                     "final_free": final["param_free_share"], "skips": final["skips"],
                     "epochs": final["epoch"], "steps": final["alpha_steps"],
                     "minutes": r["wall_s"] / 60})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--second-order", default="none", metavar="METHODS",
                        help="methods also run second order, comma-separated (default: none, "
                        "i.e. plain DARTS; '' for no second-order runs)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--channels", type=int, help="C of the supernet (default 4; cuda: 16)")
    parser.add_argument("--alpha-lr", type=float)
    parser.add_argument("--beta-reg-weight", type=float, default=10.0)
    parser.add_argument("--aux-skip-decay", choices=("linear", "none"), default="linear")
    parser.add_argument("--weight-steps", type=int, default=1,
                        help="weight steps per alpha step (default 1, DARTS's alternation)")
    parser.add_argument("--augment", action="store_true",
                        help="random crop and flip of every batch (DARTS's CIFAR search code)")
    parser.add_argument("--dataset", choices=("cifar10", "fashion_mnist"), default="cifar10")
    parser.add_argument("--root", default=None, help="data.root (default: CIFAR-10 converted "
                        "from ../shared/data, or ../shared/data/fashion-mnist)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (on a GPU, "
                        "processes sharing it)")
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    gpu = args.device == "cuda"
    if args.dataset == "cifar10":
        import cifar10_jpeg

        root = args.root or str(cifar10_jpeg.convert())
    else:
        folder = Path(__file__).resolve().parents[2] / "shared" / "data" / "fashion-mnist"
        root = args.root or str(folder)
        if not Path(root).is_dir():
            sys.exit(f"Fashion-MNIST not found in {root}; pass --root.")
    base = {"dataset": args.dataset, "root": root, "device": args.device,
            "threads": 4 if gpu else 1, "batch_size": 64,
            "image_size": None if gpu else 16, "channels": args.channels or (16 if gpu else 4),
            "cells": 5 if gpu else 1, "train_size": None if gpu else 20000,
            "val_size": 1000 if gpu else 2000, "epochs": args.epochs or (50 if gpu else 20),
            "alpha_lr": args.alpha_lr or (3e-4 if gpu else 3e-3),
            "beta_reg_weight": args.beta_reg_weight, "aux_skip_decay": args.aux_skip_decay,
            "weight_steps": args.weight_steps, "augment": args.augment}
    methods = args.methods.split(",")
    unknown = set(methods) - set(METHODS)
    if unknown:
        sys.exit(f"unknown method(s) {sorted(unknown)}; choose from {', '.join(METHODS)}")
    second = [m for m in args.second_order.split(",") if m]
    unknown = set(second) - set(METHODS)
    if unknown:
        sys.exit(f"unknown --second-order method(s) {sorted(unknown)}; choose from "
                 f"{', '.join(METHODS)}")
    # The long second-order searches first, so the pool's workers finish together.
    jobs = [{**base, "order": order, "remedy": method, "seed": seed}
            for order, chosen in (("second", second), ("first", methods))
            for method in chosen for seed in args.seeds]

    print(f"# DARTS on the NAS-Bench-201 cell space ({args.device}): {args.dataset} from {root}"
          f"{' at 16x16' if base['image_size'] == 16 else ''}; supernet C={base['channels']}, "
          f"N={base['cells']}; train_size {base['train_size'] or 'all'} (half trains w, half "
          f"alpha), val {base['val_size']}; batch {base['batch_size']}; {base['epochs']} epochs; "
          f"alpha_lr {base['alpha_lr']:g}; {base['weight_steps']} weight step(s) per alpha "
          f"step; {'random crop and flip' if base['augment'] else 'no augmentation'}; "
          f"beta_reg_weight {base['beta_reg_weight']:g}; "
          f"{base['threads']} torch thread(s) per run, {args.jobs} run(s) at a time; "
          f"seeds {args.seeds}")
    print("\n| order | image size | alpha steps per second | 20,000 steps take (min) |\n"
          "|---|---|---:|---:|")
    sizes = [base["image_size"]] + ([None] if base["image_size"] is not None else [])
    for order, size in [("first", s) for s in sizes] + [("second", sizes[0])]:
        rate = steps_per_second({**base, "order": order, "remedy": "none", "seed": 0,
                                 "image_size": size})
        print(f"| {order} | {'as stored' if size is None else f'{size}x{size}'} | {rate:.1f} | "
              f"{20000 / rate / 60:.0f} |", flush=True)

    start = time.perf_counter()
    if args.jobs == 1:
        results = [search(job) for job in jobs]
    else:  # CUDA is set up in this process already: its children must not be forks
        context = multiprocessing.get_context("spawn" if gpu else None)
        with ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
            results = list(pool.map(search, jobs))
    print(f"\nAll {len(jobs)} searches: {(time.perf_counter() - start) / 60:.1f} min of wall "
          "time.\n")
    rows = summary_rows(results)
    print("| method | seed | final derived cell | NB201 CIFAR-100 | parameter-free share: peak "
          "| final | skips | epochs | alpha steps | minutes |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        cell = r["cell"].replace("|", "\\|")  # arch strings hold the table's separator
        print(f"| {r['method']} | {r['seed']} | `{cell}` | {r['nb201']:.2f} | "
              f"{r['peak_free']:.3f} | {r['final_free']:.3f} | {r['skips']} | {r['epochs']} | "
              f"{r['steps']} | {r['minutes']:.1f} |")
    print("\n| method | mean NB201 CIFAR-100 (seeds) | min | max | mean final parameter-free "
          "share |\n|---|---:|---:|---:|---:|")
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        accs = [r["nb201"] for r in mine]
        print(f"| {method} | {statistics.mean(accs):.2f} | {min(accs):.2f} | {max(accs):.2f} | "
              f"{statistics.mean(r['final_free'] for r in mine):.3f} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    if args.plot:
        import pandas as pd

        from results.report import plot_darts_trajectories

        curves = pd.DataFrame([
            {"group": f"{r['remedy']}{'' if r['order'] == 'first' else ' 2nd'}",
             "label": f"{r['remedy']} {r['order']} {r['seed']}", "alpha_steps": x["alpha_steps"],
             "nb201_val_acc": x["nb201"], "param_free_share": x["param_free_share"]}
            for r in results for x in r["records"]])
        args.plot.write_bytes(plot_darts_trajectories(
            curves, f"DARTS on {args.dataset} ({args.device}): derived cell's NB201 CIFAR-100 "
                    "accuracy and parameter-free share"))
        print(f"\nplot: {args.plot}")


if __name__ == "__main__":
    main()
