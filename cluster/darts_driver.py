"""The DARTS driver: supernet searches fanned out as Ray trials, then their derived cells.

``hpnas darts FILE`` runs one supernet (the ``darts`` trainable) per config of the ``darts``
space (order, remedy, seed; a grid by default) in parallel, tabulates each derived cell with its
NAS-Bench-201 accuracy, and can train the distinct cells for real with the ``cell_cnn``
trainable as a second experiment (``<name>-cells``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import pandas as pd

from cluster.spec import ExperimentSpec, SpecError, spec_from_mapping
from results import ExperimentDir
from results.report import DARTS_SETTINGS

__all__ = ["DEFAULTS", "UNDECIDED_MARGIN", "cells_directory", "cells_spec", "darts_spec",
           "derived_cells", "near_tie_note", "undecided", "usable_cells"]

# A grid over the `darts` space's order and remedy, at one seed, each supernet run out.
DEFAULTS: dict[str, Any] = {"trainable": "darts", "searcher": "grid", "scheduler": "fifo",
                            "space": {"name": "darts", "overrides": {"seed": {"high": 0}}}}


def darts_spec(data: Any, overrides: Mapping[str, Any], *, source: str) -> ExperimentSpec:
    """The supernets' experiment: ``data`` (the file) over :data:`DEFAULTS`, with the command
    line's ``overrides`` (``None`` values ignored); ``SpecError`` if it is not a DARTS one."""
    if not isinstance(data, Mapping):
        raise SpecError(f"{source} must be a YAML mapping of settings.")
    spec = spec_from_mapping({**DEFAULTS, **data,
                              **{k: v for k, v in overrides.items() if v is not None}},
                             source=source)
    if spec.trainable != "darts":
        raise SpecError(f"`trainable` is {spec.trainable!r}, but `hpnas darts` runs 'darts'; "
                        "use `hpnas run` for other trainables.")
    return spec


def cells_directory(spec: ExperimentSpec) -> ExperimentDir:
    """Where the derived cells' training goes: ``<storage>/<name>-cells``."""
    return ExperimentDir(spec.directory.with_name(f"{spec.name}-cells"))


def derived_cells(experiment: ExperimentDir) -> pd.DataFrame | None:
    """One row per supernet: its settings (remedy, order, seed), status and epochs, and the
    genotype it derived last with that cell's NAS-Bench-201 accuracy; None when no supernet
    finished an epoch."""
    trials, iterations = experiment.load()
    if "genotype" not in iterations.columns:
        return None
    last = iterations.sort_values("iteration").groupby("trial_id").tail(1)
    settings = [c for c in (*DARTS_SETTINGS, "status", "epochs") if c in trials.columns]
    searched = [c for c in ("genotype", "nb201_val_acc", "val_acc", "skip_count", "alpha_steps",
                            "param_free_share", "alpha_margin", "genotype_margin")
                if c in last.columns]
    table = trials.set_index("trial_id")[settings].join(last.set_index("trial_id")[searched])
    table.columns = [c.removeprefix("config/") for c in table.columns]
    return table


# Below this gap between an edge's two strongest ops, the derived cell is a near-tie there.
UNDECIDED_MARGIN = 0.01


def undecided(table: pd.DataFrame) -> pd.DataFrame:
    """The supernets whose derived cell was a near-tie on some edge when it was derived
    (``genotype_margin`` below :data:`UNDECIDED_MARGIN`; ``alpha_margin``, the last alphas',
    for results written before hpnas reported it): noise, not the search, picked an op there.
    A DARTS+ search stopped by its first epoch keeps the initial alphas' cell, always one."""
    column = next((c for c in ("genotype_margin", "alpha_margin") if c in table.columns), None)
    if column is None:
        return table.iloc[0:0]
    return table[table[column] < UNDECIDED_MARGIN]


def near_tie_note(table: pd.DataFrame) -> str | None:
    """What ``hpnas darts`` says about the :func:`undecided` cells of ``table``, if any."""
    ties = undecided(table)
    if ties.empty:
        return None
    note = (f"{len(ties)} of {len(table)} derived cells are near-ties (genotype_margin < "
            f"{UNDECIDED_MARGIN}: on some edge the two strongest ops' weights differed by less "
            "when the cell was derived), so noise chose an op there; more alpha steps "
            "(train.epochs, or a larger train.alpha_lr) let the search decide")
    remedy = ties["remedy"] if "remedy" in ties.columns else pd.Series(dtype=object)
    if (remedy == "beta_reg").any():
        note += "; beta_reg holds the alphas close together by design, so its margins stay small"
    if "epochs" in ties.columns:
        first = int(((remedy == "early_stop") & (ties["epochs"] == 1)).sum())
        if first:
            note += (f"; {first} early_stop (DARTS+) search(es) stopped at the first epoch and "
                     "kept the cell of the initial, untrained alphas")
    return note + "."


def usable_cells(table: pd.DataFrame) -> list[str]:
    """The distinct genotypes of the supernets that did not fail."""
    usable = table[(table["status"] != "failed") & table["genotype"].notna()]
    return sorted(set(usable["genotype"]))


def cells_spec(spec: ExperimentSpec, cells: list[str], *, epochs: int) -> ExperimentSpec:
    """The experiment that trains each of ``cells`` (arch strings) with ``cell_cnn`` for
    ``epochs`` epochs, on the supernets' data and channel settings."""
    return spec_from_mapping({
        "name": cells_directory(spec).name, "trainable": "cell_cnn",
        "searcher": {"name": "points", "points": cells}, "scheduler": "fifo",
        "samples": len(cells), "max_concurrent_trials": spec.max_concurrent_trials,
        "resources": dataclasses.asdict(spec.resources), "storage": spec.storage,
        "seed": spec.seed, "data": dataclasses.asdict(spec.settings.data),
        "train": {"epochs": epochs, "channels": spec.settings.channels,
                  "cells_per_stage": spec.settings.cells_per_stage}})
