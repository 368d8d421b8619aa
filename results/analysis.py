"""Analysis of finished (or running) experiments in pandas.

One or many experiment directories load into two DataFrames, each row tagged with its
``experiment`` (the directory's name) and ``searcher``, so several searches compare with a
``groupby``::

    from results import load, best_trial, pareto_front, best_so_far
    runs = load("runs/nb201-evolution", "runs/nb201-random")
    runs.trials                    # one row per trial (see results.writer for the columns)
    runs.iterations                # one row per reported epoch
    best_trial(runs.trials, "val_acc", "max")
    pareto_front(runs.trials, {"best_val_acc": "max", "last/params": "min"})
    best_so_far(runs, by="time")   # experiment, searcher, x (seconds), best

Files are read as they are on disk: an experiment still running loads its trials so far (its
Parquet files are replaced atomically, never torn).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from results.experiment import ExperimentDir, goal_of
from results.storage import Location

__all__ = ["Experiments", "best_so_far", "best_trial", "leaderboard", "load", "pareto_front"]


@dataclass
class Experiments:
    """Trials and iterations of one or more experiments, with what each optimised."""

    trials: pd.DataFrame
    iterations: pd.DataFrame
    metric: str
    mode: str
    specs: dict[str, dict] = field(default_factory=dict)  # experiment name -> its hpnas.yaml

    @property
    def names(self) -> list[str]:
        return list(self.specs)


def _searcher_name(spec: dict, trials: pd.DataFrame) -> str:
    """The searcher as the results name it, with Optuna's sampler when the file names one."""
    written = trials["searcher"].dropna() if "searcher" in trials.columns else pd.Series([])
    searcher = spec.get("searcher")
    name = str(written.iloc[0]) if len(written) else \
        str((searcher.get("name") if isinstance(searcher, dict) else searcher) or "unknown")
    sampler = searcher.get("sampler") if isinstance(searcher, dict) else None
    return f"{name}-{sampler}" if sampler and name == "optuna" else name


def load(*directories: str | Path | Location, same_goal: bool = True) -> Experiments:
    """Load experiment directories (paths or URIs) into one :class:`Experiments`.

    Raises ``FileNotFoundError`` for a directory without results, and (with ``same_goal``)
    ``ValueError`` when the experiments optimise different metrics (or the same one in different
    directions), which cannot share an axis; without it, ``metric`` and ``mode`` are the first
    experiment's.
    """
    if not directories:
        raise ValueError("no experiment directory given")
    trials, iterations, specs = [], [], {}
    for where in directories:
        directory = ExperimentDir(where)
        spec = directory.settings()
        goal_of(spec, directory.spec_file)
        name = str(spec.get("name") or directory.name)
        if name in specs:
            name = f"{name} ({directory})"
        specs[name] = spec
        t, i = directory.load()
        searcher = _searcher_name(spec, t)
        t = t.assign(experiment=name, searcher=searcher)
        i = i.assign(experiment=name, searcher=searcher)
        trials.append(t)
        iterations.append(i)
    goals = {(s["metric"], s["mode"]) for s in specs.values()}
    if len(goals) > 1 and same_goal:
        raise ValueError("the experiments optimise different goals ("
                         + ", ".join(f"{n}: {s.get('metric')} {s.get('mode')}"
                                     for n, s in specs.items())
                         + "); compare experiments that share metric and mode.")
    first = next(iter(specs.values()))
    metric, mode = first["metric"], first["mode"]
    front = ["experiment", "searcher"]

    def combine(frames: list[pd.DataFrame], key: list[str]) -> pd.DataFrame:
        columns = list(dict.fromkeys(front + key + [c for f in frames for c in f.columns]))
        full = [f for f in frames if not f.empty]
        df = pd.concat(full, ignore_index=True, sort=False) if full else pd.DataFrame()
        df = df.reindex(columns=columns)
        # A config column that is null throughout one experiment comes back as objects.
        for column in df.columns:
            if df[column].dtype == object and column.startswith("config/") and not any(
                    isinstance(v, bool) for v in df[column].dropna()):
                numbers = pd.to_numeric(df[column], errors="coerce")
                if numbers.notna().sum() == df[column].notna().sum():
                    df[column] = numbers
        return df

    return Experiments(combine(trials, ["trial_id", "status"]),
                       combine(iterations, ["trial_id", "iteration", "timestamp",
                                            "time_total_s"]), metric, mode, specs)


def best_trial(trials: pd.DataFrame, metric: str, mode: str, *,
               with_checkpoint: bool = False) -> pd.Series:
    """The best trial: the one, not failed, with the best ``best_<metric>`` (among those with
    a checkpoint, if ``with_checkpoint``; evaluations and pictures of "the best model" use its
    last checkpoint). ``ValueError`` if there is none. The leaderboard's first row."""
    column = f"best_{metric}"
    ok = trials[trials["status"] != "failed"].dropna(subset=[column]) \
        if column in trials.columns else trials.iloc[0:0]
    if with_checkpoint and not ok.empty:
        ok = ok.dropna(subset=["checkpoint"])
    if ok.empty:
        raise ValueError(f"no trial has a finite {metric!r}"
                         + (" and a checkpoint" if with_checkpoint else "") + " yet")
    return ok.loc[ok[column].idxmax() if mode == "max" else ok[column].idxmin()]


def leaderboard(trials: pd.DataFrame, *, metric: str, mode: str, top: int = 10) -> pd.DataFrame:
    """The ``top`` non-failed trials by their best ``metric``, with their configs."""
    best = f"best_{metric}"
    if best not in trials.columns:
        return pd.DataFrame()
    ok = trials[trials["status"] != "failed"].dropna(subset=[best])
    ok = ok.sort_values(best, ascending=mode == "min", kind="stable").head(top)
    config_cols = [c for c in ok.columns if c.startswith("config/")]
    extra = [c for c in ("last/params",) if c in ok.columns]
    board = ok[["trial_id", "status", best, "epochs", "wall_s", *extra, *config_cols]].copy()
    board.columns = [c.removeprefix("config/").removeprefix("last/") for c in board.columns]
    return board.dropna(axis=1, how="all")


def pareto_front(trials: pd.DataFrame, objectives: dict[str, str]) -> pd.DataFrame:
    """Trials no other trial beats on every objective (``{column: "max" | "min"}``), sorted by
    the first objective; failed trials and rows missing an objective are left out.

    Example: ``pareto_front(trials, {"best_val_acc": "max", "last/params": "min"})``.
    """
    missing = [c for c in objectives if c not in trials.columns]
    if missing:
        raise ValueError(f"no column {missing[0]!r} in the trials; columns: "
                         f"{', '.join(trials.columns)}")
    bad = {c: m for c, m in objectives.items() if m not in ("max", "min")}
    if bad:
        raise ValueError(f"objective modes must be 'max' or 'min', got {bad}")
    ok = trials[trials["status"] != "failed"].dropna(subset=list(objectives))
    # Maximise everything: negate the "min" columns.
    values = np.column_stack([ok[c].astype(float).to_numpy() * (1 if m == "max" else -1)
                              for c, m in objectives.items()]) if len(ok) else np.zeros((0, 1))
    keep = []
    for i, row in enumerate(values):
        dominated = np.any(np.all(values >= row, axis=1) & np.any(values > row, axis=1))
        keep.append(not dominated)
    first, mode = next(iter(objectives.items()))
    return ok[np.array(keep, dtype=bool)].sort_values(first, ascending=mode == "min",
                                                      kind="stable")


def best_so_far(runs: Experiments, by: Literal["trials", "time"] = "trials") -> pd.DataFrame:
    """The best metric value found so far, per experiment.

    ``by="trials"``: after each ended trial (ordered by when it last reported; ``x`` is 1, 2,
    ...), from the trials' best values; a failed trial that reported counts as a trial spent
    (the best carries over it), one that never reported has no time and is left out.
    ``by="time"``: after each reported epoch of any trial, ``x`` being seconds since the
    experiment's first trial started (wall time on the driver's clock, one-second resolution). Columns: ``experiment``, ``searcher``, ``x``, ``best``.
    """
    if by not in ("trials", "time"):
        raise ValueError(f"`by` is {by!r}, but must be 'trials' or 'time'")
    metric, mode = runs.metric, runs.mode
    frames = []
    its = runs.iterations
    for name in runs.names:
        mine = its[its["experiment"] == name] if "experiment" in its.columns else its.iloc[0:0]
        if metric not in mine.columns or "timestamp" not in mine.columns:
            continue
        reported = mine.dropna(subset=["timestamp"])  # a diverged trial reports NaN: it counts
        mine = reported.dropna(subset=[metric])
        if mine.empty:
            continue
        searcher = mine["searcher"].iloc[0]
        start = (reported["timestamp"] - reported["time_total_s"].fillna(0)).min()
        if by == "time":
            mine = mine.sort_values(["timestamp", "time_total_s"], kind="stable")
            x = (mine["timestamp"] - start).to_numpy(dtype=float)
            values = mine[metric].to_numpy(dtype=float, copy=True)
        else:
            trials = runs.trials[(runs.trials["experiment"] == name)
                                 & (runs.trials["status"].isin(["complete", "pruned", "failed"]))]
            ended = reported.groupby("trial_id")["timestamp"].max()
            trials = trials.assign(ended=trials["trial_id"].map(ended)).dropna(
                subset=["ended"]).sort_values("ended", kind="stable")
            x = np.arange(1, len(trials) + 1, dtype=float)
            values = trials[f"best_{metric}"].to_numpy(dtype=float, copy=True)
            values[(trials["status"] == "failed").to_numpy()] = np.nan
        filled = np.where(np.isnan(values), -np.inf if mode == "max" else np.inf, values)
        best = np.maximum.accumulate(filled) if mode == "max" else np.minimum.accumulate(filled)
        keep = np.isfinite(best)  # before the first finite value there is no best yet
        x, best = x[keep], best[keep]
        frames.append(pd.DataFrame({"experiment": name, "searcher": searcher, "x": x,
                                    "best": best}))
    if not frames:
        return pd.DataFrame(columns=["experiment", "searcher", "x", "best"])
    return pd.concat(frames, ignore_index=True)
