"""Scaling across a local two-node test cluster with fake GPUs, and the driver's bookkeeping cost.

Part 1: a trainable that holds its GPU slot for ``--hold`` seconds (a sleep, then one report) is
run through the full hpnas path (``run_experiment``: searcher, scheduler, Parquet writer, metrics)
on a fresh two-node :class:`~cluster.local_cluster.LocalCluster` whose fake GPUs are split across
the nodes, for 1, 2, 4 and 8 GPUs at 1 GPU per trial and for 8 GPUs at 0.5 GPU per trial, with
``--rounds`` trials per slot and ``max_concurrent_trials`` = slots. Two rates per setting:

- end to end: trials / wall seconds of the whole fit, actor start-up included;
- steady state: trials ended while every slot was busy (from the moment the last slot got its
  first trial to the start of the last trial), per second of that window. On this 2-core machine
  the slots' actor processes take seconds each to start, which is a property of packing 16 fake
  GPUs onto 2 cores, not of the scheduler; the steady-state rate is the scheduler's.

Scaling efficiency at k GPUs = rate(k) / (k x rate(1)); the scheduler overhead per trial is the
slot-seconds not spent holding: (window x slots - trials x hold) / trials.

Part 2: ``--trials`` (1,000) trials that report once and return, on an embedded Ray with
``--bookkeeping-slots`` concurrent slots: trials per second the driver sustains.

    .venv/bin/python benchmarks/cluster_scaling.py
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def hold(config, settings=None):
    """Holds its slot for ``config['hold']`` seconds, then reports once."""
    from ray import tune

    start = time.time()
    time.sleep(float(config.get("hold_s", 0.0)))
    tune.report({"val_acc": 0.5, "start": start, "end": time.time()})


def _spec(name: str, storage: str, samples: int, slots: int, gpus: float, cpus: float):
    from cluster.spec import spec_from_mapping

    return spec_from_mapping({
        "name": name, "trainable": "nb201", "searcher": "random", "scheduler": "fifo",
        "samples": samples, "max_concurrent_trials": slots,
        "resources": {"cpus": cpus, "gpus": gpus}, "storage": storage})


def _steady(rows, slots: int) -> tuple[float, float]:
    """(trials per second while every slot was busy, the window's seconds)."""
    starts = sorted(rows["start"])
    first_per_slot = starts[:slots]
    w0, w1 = max(first_per_slot), max(starts)
    ended = ((rows["end"] > w0) & (rows["end"] <= w1)).sum()
    return (ended / (w1 - w0) if w1 > w0 else float("nan")), w1 - w0


def scaling(args: argparse.Namespace) -> list[tuple]:
    import pandas as pd
    import ray

    from cluster.local_cluster import LocalCluster
    from cluster.runner import run_experiment

    rows = []
    for gpus_total, per_trial in [(1, 1.0), (2, 1.0), (4, 1.0), (8, 1.0), (8, 0.5)]:
        slots = int(gpus_total / per_trial)
        samples = slots * args.rounds
        node_gpus = (math.ceil(gpus_total / 2), gpus_total // 2)
        with tempfile.TemporaryDirectory() as tmp, LocalCluster(
                nodes=2, cpus_per_node=8, node_gpus=node_gpus, memory_gb=2.0,
                include_dashboard=False) as cluster:
            ray.init(address=cluster.address, log_to_driver=False)
            try:
                spec = _spec("scaling", tmp, samples, slots, per_trial, 0.25)
                fn = lambda config, settings=None: hold({"hold_s": args.hold})  # noqa: E731
                start = time.perf_counter()
                run_experiment(spec, quiet=True, trainable_fn=fn)
                wall = time.perf_counter() - start
            finally:
                ray.shutdown()
            it = pd.read_parquet(Path(tmp) / "scaling" / "iterations.parquet")
        done = len(it)
        rate, window = _steady(it, slots)
        overhead = (window * slots - rate * window * args.hold) / max(1, rate * window)
        rows.append((gpus_total, per_trial, slots, done, wall, done / wall, rate, overhead))
        print(f"# {gpus_total} GPUs x {per_trial} per trial: {done} trials, {wall:.1f} s",
              flush=True)
    return rows


def bookkeeping(args: argparse.Namespace) -> tuple[int, float]:
    import ray

    from cluster.runner import run_experiment

    with tempfile.TemporaryDirectory() as tmp:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            spec = _spec("bookkeeping", tmp, args.trials, args.bookkeeping_slots, 0.0,
                         2 / args.bookkeeping_slots)
            fn = lambda config, settings=None: hold({"hold_s": 0.0})  # noqa: E731
            start = time.perf_counter()
            run_experiment(spec, quiet=True, trainable_fn=fn)
            wall = time.perf_counter() - start
        finally:
            ray.shutdown()
    return args.trials, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hold", type=float, default=6.0, help="seconds a trial holds its slot")
    parser.add_argument("--rounds", type=int, default=6, help="trials per slot")
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--bookkeeping-slots", type=int, default=4)
    parser.add_argument("--skip-scaling", action="store_true")
    args = parser.parse_args()

    rows = [] if args.skip_scaling else scaling(args)
    if rows:
        base_e2e, base_steady = rows[0][5], rows[0][6]
        print(f"\nHold {args.hold:g} s per trial, {args.rounds} trials per slot; two-node local "
              "cluster, fake GPUs split across the nodes; full hpnas path (random searcher, "
              "FIFO, Parquet, metrics).\n")
        print("| GPUs | GPU per trial | slots | trials | wall s | trials/min (end to end) | "
              "efficiency | trials/min (steady) | efficiency | overhead s/trial |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for gpus, per, slots, done, wall, e2e, steady, overhead in rows:
            print(f"| {gpus} | {per:g} | {slots} | {done} | {wall:.1f} | {60 * e2e:.1f} | "
                  f"{e2e / (slots * base_e2e):.2f} | {60 * steady:.1f} | "
                  f"{steady / (slots * base_steady):.2f} | {overhead:.3f} |")
    trials, wall = bookkeeping(args)
    print(f"\nDriver bookkeeping: {trials} trials that report once and return, "
          f"{args.bookkeeping_slots} at a time on an embedded Ray: {wall:.1f} s, "
          f"{trials / wall:.1f} trials/s ({1000 * wall / trials:.1f} ms per trial).")


if __name__ == "__main__":
    main()
