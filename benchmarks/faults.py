"""Fault injection: SIGKILL the driver of real searches at random moments, resume, and count.

For each searcher, ``--runs`` searches of ``--samples`` trials (the seed's CNN on a Fashion-MNIST
subset, 2 epochs each, FIFO, 2 at a time) are started with ``hpnas run``; the driver (and the
embedded Ray it started, by process group) is SIGKILLed at a random moment in
[``--min-kill``, ``--max-kill``] seconds, then ``hpnas resume`` continues it, itself killed again
with probability 1/2, until a resume finishes. Tune snapshots every second
(``TUNE_GLOBAL_CHECKPOINT_S=1``). Per run:

- survived: trials in the final ``trials.parquet`` that completed (or were pruned), of ``samples``;
- lost: trials the last snapshot before a kill knew as ended that are missing afterwards;
- duplicated: repeated trial ids, or repeated (trial, iteration) rows;
- failed: trials that ended failed (a resume that cannot find a checkpoint shows up here);
- short of budget: trials of ``samples`` that the finished search never ran;
- reconciled: times a resume found the searcher state and the trials out of step and
  reconciled them (a later session's search state skipped, a trial abandoned, or one left
  untracked), read from the log.

    .venv/bin/python benchmarks/faults.py
"""

from __future__ import annotations

import argparse
import glob
import os
import pickle
import random
import signal
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from cluster.detached import signal_group, start_hpnas



# What a resume prints when it reconciles the searcher with the restored trials.
_RECONCILED = ("is newer than the last experiment snapshot", "is not in the restored experiment",
               "was handed out after the restored searcher state")


def _known_ended(directory: Path) -> set[str]:
    """Trials the searcher in the newest snapshot had learned from."""
    files = sorted(glob.glob(str(directory / "searcher-state-*.pkl")))
    if not files:
        return set()
    with open(files[-1], "rb") as f:
        return set(pickle.load(f).get("outcomes", {}))


def one_run(searcher: str, seed: int, args: argparse.Namespace, tmp: Path) -> dict:
    rng = random.Random(seed)
    name = f"{searcher}-{seed}"
    experiment = {
        "name": name, "trainable": "cifar_cnn", "searcher": searcher, "scheduler": "fifo",
        "samples": args.samples, "max_concurrent_trials": 2, "seed": seed,
        "space": {"name": "cifar_cnn", "overrides": {"num_conv_layers": {"high": 2}}},
        "data": {"name": "fashion_mnist", "train_size": 1000, "val_size": 200},
        "train": {"epochs": 2, "batch_size": 100}, "storage": str(tmp / "results")}
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(experiment))
    directory = tmp / "results" / name
    log = tmp / f"{name}.log"
    faults, known = 0, set()
    command = ["run", str(path), "--no-dashboard"]
    while True:
        proc = start_hpnas(*command, log=log)
        kill_at = rng.uniform(args.min_kill, args.max_kill)
        may_kill = faults == 0 or rng.random() < 0.5
        start = time.monotonic()
        while proc.poll() is None and not (may_kill and time.monotonic() - start > kill_at):
            time.sleep(0.05)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            signal_group(proc)
            faults += 1
            known |= _known_ended(directory)
            # Killed before it wrote its experiment file (while Ray started): nothing to resume,
            # so run it again, as a user would.
            if (directory / "hpnas.yaml").is_file():
                command = ["resume", str(directory), "--no-dashboard"]
            continue
        signal_group(proc)
        if proc.returncode != 0:
            raise SystemExit(f"{name}: hpnas exited {proc.returncode}; see {log}")
        break
    trials = pd.read_parquet(directory / "trials.parquet")
    iterations = pd.read_parquet(directory / "iterations.parquet")
    text = log.read_text(errors="replace")
    reconciled = sum(text.count(m) for m in _RECONCILED)
    return {
        "searcher": searcher, "faults": faults, "trials": len(trials),
        "short": args.samples - len(trials),  # budget the finished search never ran
        "survived": int(trials["status"].isin(["complete", "pruned"]).sum()),
        "failed": int((trials["status"] == "failed").sum()),
        "lost": len(known - set(trials["trial_id"])),
        "duplicated": int(trials["trial_id"].duplicated().sum()
                          + iterations.duplicated(["trial_id", "iteration"]).sum()),
        "reconciled": reconciled,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--searchers", nargs="+", default=["evolution", "optuna", "random"])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--samples", type=int, default=12)
    parser.add_argument("--min-kill", type=float, default=4.0)
    parser.add_argument("--max-kill", type=float, default=14.0)
    parser.add_argument("--workdir", help="keep the experiments and logs here (default: a "
                                          "temporary folder, removed at the end)")
    parser.add_argument("--seeds", type=int, nargs="+", help="run these seeds (default: 0..runs-1)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.workdir or scratch
        Path(tmp).mkdir(parents=True, exist_ok=True)
        for searcher in args.searchers:
            for seed in args.seeds or range(args.runs):
                rows.append(one_run(searcher, seed, args, Path(tmp)))
                print(f"# {rows[-1]}", flush=True)
    table = pd.DataFrame(rows).groupby("searcher", sort=False).sum(numeric_only=True)
    table.loc["all"] = table.sum()
    print(f"\n{args.runs} searches per searcher, {args.samples} trials each; driver SIGKILLed at "
          f"random in [{args.min_kill:g}, {args.max_kill:g}] s, resumes killed again with "
          "probability 1/2.\n")
    print("| searcher | faults injected | trials | short of budget | survived | failed | lost | "
          "duplicated | reconciled |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for searcher, r in table.iterrows():
        print(f"| {searcher} | {r['faults']} | {r['trials']} | {r['short']} | {r['survived']} | "
              f"{r['failed']} | {r['lost']} | {r['duplicated']} | {r['reconciled']} |")


if __name__ == "__main__":
    main()
