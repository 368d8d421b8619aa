"""Architecture search on NAS-Bench-201 CIFAR-100: every searcher, many seeds, 1 and 8 workers.

Each searcher (the registered ``Searcher`` objects, default options unless ``--options``) runs
in the simulator (``search/simulator.py``) against the NAS-Bench-201 CIFAR-100 table: each
evaluation is told one training seed's validation accuracy (drawn at random) and takes that
cell's table training time of simulated wall-clock (``--equal-times``: one simulated second
each, so results come back in the order proposed), with ``W`` simulated workers. After 50,
100, 200 and 500 evaluations the table gives the *true* (seed-averaged) validation accuracy of
the best architecture found so far (the best by what the searcher was told), mean and standard
deviation over the seeds. The best possible is 73.49.

It also measures the wall time per evaluation through the simulator and through a real
``hpnas run`` with the ``nb201`` trainable on a local Ray (``--real``).

    .venv/bin/python benchmarks/nas_nb201.py                        # 50 seeds, 2 processes
    .venv/bin/python benchmarks/nas_nb201.py --seeds 10 --searchers random evolution
    .venv/bin/python benchmarks/nas_nb201.py --seeds 100 --first-seed 1000 --real 0
    .venv/bin/python benchmarks/nas_nb201.py --workers 8 --evals 100 --searchers qlearning \
        --options 'qlearning={"q_lambda": 0}' --real 0
    .venv/bin/python benchmarks/nas_nb201.py --workers 8 --evals 100 --equal-times --real 0
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

CHECKPOINTS = (50, 100, 200, 500)
SEARCHERS = ("random", "optuna", "evolution", "rl", "qlearning", "local_search")


def run_one(args: tuple[str, int, int, int, dict, bool]
            ) -> tuple[str, int, int, np.ndarray, float]:
    """One search: (searcher, workers, seed, max_evals, options, equal_times) -> incumbent curve
    and seconds."""
    import torch

    from search import make_searcher
    from search.simulator import incumbent_curve, nb201_objective, simulate
    from spaces import get_space
    from spaces.tables import load_nb201

    torch.set_num_threads(1)
    name, workers, seed, evals, options, equal_times = args
    searcher = make_searcher(name, space=get_space("nb201"), metric="val_acc", mode="max",
                             seed=seed, max_epochs=1, options=options)
    objective = nb201_objective(load_nb201("cifar100"))
    if equal_times:  # every evaluation takes one simulated second: results in proposal order
        table_objective = objective

        def objective(config: dict, rng: np.random.Generator) -> tuple[float, float, float]:
            observed, true, _ = table_objective(config, rng)
            return observed, true, 1.0

    start = time.perf_counter()
    history = simulate(searcher, objective, workers=workers, max_evals=evals, seed=seed)
    seconds = time.perf_counter() - start
    return name, workers, seed, incumbent_curve(history), seconds


def real_run(trials: int) -> tuple[float, int]:
    """Seconds per trial of ``hpnas run`` with the nb201 trainable (evolution, concurrency 2)."""
    from cluster.runner import build_tuner, connect
    from cluster.spec import spec_from_mapping

    with tempfile.TemporaryDirectory() as storage:
        spec = spec_from_mapping({
            "name": "nb201", "trainable": "nb201", "searcher": "evolution",
            "scheduler": "fifo", "samples": trials, "max_concurrent_trials": 2,
            "storage": storage})
        with connect(None, dashboard=False, num_cpus=2):
            tuner = build_tuner(spec, quiet=True)
            start = time.perf_counter()
            results = tuner.fit()
            return time.perf_counter() - start, len(results)


def ceiling(table, draws: int, seed: int = 0) -> float:
    """The mean true accuracy of the best-*observed* cell if every cell of the table were
    evaluated once (one random training seed each), over ``draws`` repetitions: what the
    benchmark's measure gives a search that evaluates everything."""
    rng = np.random.default_rng(seed)
    seeds = [np.asarray(row["val_acc"], dtype=float) for row in table._rows.values()]
    means = np.array([table._mean[k] for k in table._rows])
    sizes = np.array([len(s) for s in seeds])
    flat = np.concatenate(seeds)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    picks = [flat[starts + rng.integers(0, sizes)] for _ in range(draws)]
    return float(np.mean([means[int(np.argmax(p))] for p in picks]))


def parse_options(parser: argparse.ArgumentParser, given: list[str], searchers: list[str]
                  ) -> dict[str, dict]:
    """``SEARCHER=JSON`` arguments as {searcher: options}, checked before any search runs."""
    from search import make_searcher
    from spaces import get_space

    options: dict[str, dict] = {}
    for item in given:
        name, sep, text = item.partition("=")
        if not sep or name not in searchers:
            parser.error(f"--options {item!r}: expected SEARCHER=JSON with SEARCHER one of "
                         f"the searchers run ({', '.join(searchers)})")
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            parser.error(f"--options {item!r}: not JSON ({exc})")
        if not isinstance(value, dict):
            parser.error(f"--options {item!r}: expected a JSON object of options, e.g. "
                         f"'qlearning={{\"q_lambda\": 0}}'")
        try:  # the registry's own check: unknown names and bad values fail here
            make_searcher(name, space=get_space("nb201"), metric="val_acc", mode="max",
                          options=value)
        except (TypeError, ValueError) as exc:
            parser.error(f"--options {item!r}: {exc}")
        options[name] = value
    return options


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--first-seed", type=int, default=0,
                        help="seeds first-seed .. first-seed + seeds - 1 (1000 for fresh ones)")
    parser.add_argument("--evals", type=int, default=500)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--searchers", nargs="+", default=list(SEARCHERS))
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--real", type=int, default=100,
                        help="trials of the real hpnas run (0 to skip)")
    parser.add_argument("--options", action="append", default=[], metavar="SEARCHER=JSON",
                        help="a searcher's options, as in an experiment file's "
                             "searcher.options, e.g. 'qlearning={\"q_lambda\": 0}'; repeatable")
    parser.add_argument("--equal-times", action="store_true",
                        help="every evaluation takes the same simulated time instead of the "
                             "table's training time, so with W workers results come back in "
                             "the order proposed, each W - 1 proposals late")
    args = parser.parse_args()
    options = parse_options(parser, args.options, args.searchers)

    from spaces.tables import load_nb201

    best = load_nb201("cifar100").best()[1]
    jobs = [(s, w, seed, args.evals, options.get(s), args.equal_times) for s in args.searchers
            for w in args.workers for seed in range(args.first_seed, args.first_seed + args.seeds)]
    curves: dict[tuple[str, int], list[np.ndarray]] = {}
    seconds: dict[str, list[float]] = {}
    start = time.perf_counter()
    with ProcessPoolExecutor(args.processes) as pool:
        for name, workers, _, curve, secs in pool.map(run_one, jobs, chunksize=4):
            curves.setdefault((name, workers), []).append(curve)
            seconds.setdefault(name, []).append(secs / len(curve))
    total = time.perf_counter() - start
    marks = [c for c in CHECKPOINTS if c <= args.evals]
    print(f"# NAS-Bench-201 CIFAR-100 validation accuracy (%) of the best-observed architecture, "
          f"true (seed-averaged) value, mean +- std over {args.seeds} seeds (from "
          f"{args.first_seed}); best possible "
          f"{best:.2f}. Each evaluation sees one random training seed. Simulator, "
          f"{len(jobs)} searches in {total:.0f} s on {args.processes} processes.")
    if args.equal_times:
        print("# --equal-times: every evaluation takes one simulated second (results come back "
              "in the order proposed).")
    for name, opts in options.items():
        print(f"# {name} options: {json.dumps(opts)} (the rest default)")
    header = " | ".join(f"{m} evals" for m in marks)
    print(f"\n| searcher | workers | {header} |\n|---|---:|" + "---:|" * len(marks))
    for (name, workers), cs in curves.items():
        data = np.stack(cs)
        cells = " | ".join(f"{data[:, m - 1].mean():.2f} +- {data[:, m - 1].std():.2f}"
                           for m in marks)
        print(f"| {name} | {workers} | {cells} |")
    if ("random", args.workers[0]) in curves:
        print(f"\nAgainst random search (same workers), at each budget: difference of the means "
              f"+- its standard error (sqrt(se1^2 + se2^2), se = std / sqrt({args.seeds})).")
        print(f"\n| searcher | workers | {header} |\n|---|---:|" + "---:|" * len(marks))
        for (name, workers), cs in curves.items():
            if name == "random" or ("random", workers) not in curves:
                continue
            data, base = np.stack(cs), np.stack(curves[("random", workers)])
            cells = " | ".join(
                f"{data[:, m - 1].mean() - base[:, m - 1].mean():+.2f} +- "
                f"{np.hypot(data[:, m - 1].std(), base[:, m - 1].std()) / np.sqrt(len(cs)):.2f}"
                for m in marks)
            print(f"| {name} | {workers} | {cells} |")
    print("\n| searcher | simulator ms per evaluation (suggest + complete + lookup) |\n|---|---:|")
    for name, s in seconds.items():
        print(f"| {name} | {1000 * np.mean(s):.2f} |")
    print(f"\nCeiling of this measure: a search that evaluated all "
          f"{len(load_nb201('cifar100')._rows):,} cells once would report a cell of true "
          f"accuracy {ceiling(load_nb201('cifar100'), 200):.2f} on average (200 draws of the "
          f"training seeds): seed noise makes the best-observed cell often not the best one.")
    if args.real:
        secs, n = real_run(args.real)
        print(f"\nReal `hpnas run` (nb201 trainable, evolution, fifo, 2 concurrent, local Ray): "
              f"{n} trials in {secs:.1f} s = {secs / n:.3f} s per evaluation")


if __name__ == "__main__":
    main()
