"""Results of experiments: the experiment directory, storage, Parquet, analysis, report, export.

Ray-free apart from :mod:`results.writer` (the Ray Tune callback that writes the Parquet files),
which is not imported here.

Example:
    >>> from results import load, best_trial
    >>> runs = load("runs/nb201-evolution", "runs/nb201-random")
    >>> best_trial(runs.trials, runs.metric, runs.mode)
"""

from __future__ import annotations

from results.analysis import (
    Experiments,
    best_so_far,
    best_trial,
    leaderboard,
    load,
    pareto_front,
)
from results.experiment import (
    READABLE_SCHEMAS,
    SCHEMA_VERSION,
    ExperimentDir,
    NotAnExperiment,
    config_of,
    load_results,
    plain,
    read_parquet,
    write_parquet,
)
from results.storage import Location, is_uri

__all__ = [
    "READABLE_SCHEMAS",
    "SCHEMA_VERSION",
    "ExperimentDir",
    "Experiments",
    "Location",
    "NotAnExperiment",
    "best_so_far",
    "best_trial",
    "config_of",
    "is_uri",
    "leaderboard",
    "load",
    "load_results",
    "pareto_front",
    "plain",
    "read_parquet",
    "write_parquet",
]
