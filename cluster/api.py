"""hpnas from Python (a notebook, a script): run or resume an experiment, get its directory.

Example:
    >>> from cluster import run
    >>> experiment = run("examples/user_model/experiment.yaml", samples=4, quiet=True)
    >>> trials, iterations = experiment.load()          # pandas DataFrames
    >>> experiment = run({"trainable": "model.py:fit", "metric": "val_acc", "mode": "max",
    ...                   "max_epochs": 4, "space": {"lr": {"float": [1e-3, 1e-1], "log": True}}},
    ...                  base_dir="my_project")
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from cluster.runner import check_fresh, resume_experiment, run_experiment
from cluster.spec import ExperimentSpec, load_spec, spec_from_mapping
from results import ExperimentDir

__all__ = ["experiment_spec", "resume", "run"]


def experiment_spec(experiment: str | os.PathLike | Mapping[str, Any], *,
                    base_dir: str | os.PathLike | None = None, check_data: bool = True,
                    **overrides: Any) -> ExperimentSpec:
    """The validated experiment: a file's path (relative paths in it are relative to its
    folder) or a mapping of the same fields (relative to ``base_dir``, default the current
    directory), with ``overrides`` (the fields of the file, as the CLI's flags override them;
    ``None`` values are ignored). ``cluster.spec.SpecError`` on the first mistake."""
    if isinstance(experiment, Mapping):
        data = {**experiment, **{k: v for k, v in overrides.items() if v is not None}}
        return spec_from_mapping(data, source="experiment mapping", check_data=check_data,
                                 base_dir=Path(base_dir) if base_dir is not None else None)
    return load_spec(experiment, overrides, check_data=check_data)


def run(experiment: str | os.PathLike | Mapping[str, Any], *,
        base_dir: str | os.PathLike | None = None, address: str | None = None,
        quiet: bool = False, progress_interval_s: float = 15.0,
        **overrides: Any) -> ExperimentDir:
    """Run an experiment to the end, as ``hpnas run`` does, and return its directory
    (``.load()`` gives the trials and iterations DataFrames). Uses the Ray already
    initialised in this process, else starts an embedded one (or joins ``address``); prints the
    progress line unless ``quiet``."""
    spec = experiment_spec(experiment, base_dir=base_dir, **overrides)
    check_fresh(spec.directory)
    run_experiment(spec, address=address, quiet=quiet, progress_interval_s=progress_interval_s,
                   dashboard=False)
    return spec.experiment


def resume(directory: str | os.PathLike, *, address: str | None = None,
           retry_errored: bool = False) -> ExperimentDir:
    """Continue an experiment after a crash or an interrupt, as ``hpnas resume`` does."""
    experiment = ExperimentDir(directory).require()
    resume_experiment(experiment.location, address=address, dashboard=False,
                      retry_errored=retry_errored)
    return experiment
