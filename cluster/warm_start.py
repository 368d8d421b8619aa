"""``warm_start: DIR``: seed a new search with another experiment's finished trials.

The trials are DIR's complete and early-stopped ones with a finite metric, oldest first by the
time they ended (their last report). Before any work starts, DIR must be an hpnas experiment
whose results this version reads, optimising the same metric in the same direction, over
parameters of the same names; a config the new space does not admit (a range narrowed since,
say) is skipped and counted in :meth:`WarmStart.note`, as is a trial whose config a scheduler
changed while it trained (PBT: its value belongs to no one config); with every trial skipped
the warm start is refused. The searcher learns from the rest (:meth:`search.strategy.Strategy.warm`) without running them again.

Example::

    warm_start: runs/nb201-evolution              # relative to the experiment file's folder
    warm_start: {dir: runs/nb201-evolution, trials: [a1b2c_00003, a1b2c_00007]}   # just these

The saved ``hpnas.yaml`` records the second form, with the trials used, so an experiment started
over from the beginning is seeded with the same trials.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from results import (
    READABLE_SCHEMAS,
    ExperimentDir,
    Location,
    NotAnExperiment,
    config_of,
    is_uri,
)
from results.experiment import goal_of, plain
from search.fidelity import WarmTrial
from search.outcome import Status
from search.registry import SEARCHERS
from search.strategy import Strategy
from spaces import Space

__all__ = ["WarmStart", "load_warm_start"]

_FINISHED = (Status.COMPLETE.value, Status.PRUNED.value)


class WarmStartError(ValueError):
    """A ``warm_start`` that cannot be used; its message is one line for the user."""


@dataclass(frozen=True)
class WarmStart:
    """The trials an experiment's search starts from, and where they came from."""

    directory: str  # the other experiment's directory: an absolute path or a URI
    trials: tuple[WarmTrial, ...] = ()  # oldest first; empty until read
    trial_ids: tuple[str, ...] | None = None  # the trials used (or asked for); None: all
    skipped: int = 0  # finished trials left out: config not valid here, or changed by PBT
    skip_reason: str = ""  # the first of those trials' problem

    def saved(self) -> dict[str, Any]:
        """What ``hpnas.yaml`` records: the directory and the trials used."""
        if self.trial_ids is None:
            return {"dir": self.directory}
        return {"dir": self.directory, "trials": list(self.trial_ids)}

    def note(self) -> str:
        """One line for the user: how many trials seed the search, and how many were left out."""
        line = f"warm start: {len(self.trials)} trials of {self.directory} seed the search"
        if self.skipped:
            line += f"; {self.skipped} skipped (the first: {self.skip_reason})"
        return line + "."


def load_warm_start(value: Any, *, base_dir: Path, space: Space, metric: str, mode: str,
                    searcher: str, directory: Location, read: bool = True) -> WarmStart:
    """The ``warm_start`` setting checked and, if ``read``, its trials read from the other
    experiment; :class:`WarmStartError` (one line: what is wrong, what is allowed, the fix)
    otherwise. ``directory``: this experiment's own directory (never its own warm start)."""
    where, wanted = _parse(value, base_dir)
    given = str(value if isinstance(value, str) else value.get("dir"))
    shown = repr(given) if given == where else f"{given!r} ({where})"
    if getattr(SEARCHERS[searcher].build, "warm", Strategy.warm) is Strategy.warm:
        raise WarmStartError(f"`warm_start` is set, but searcher {searcher!r} cannot be "
                             "warm-started; use another searcher, or drop warm_start.")
    if Location(where) == directory:
        raise WarmStartError(f"`warm_start` is {shown}, this experiment's own directory; give "
                             "the directory of another experiment.")
    if not read:
        return WarmStart(where, trial_ids=wanted)
    experiment = ExperimentDir(where)
    _check_experiment(experiment, shown, metric, mode)
    trials = _read_trials(experiment, shown, metric)
    names = {c.removeprefix("config/") for c in trials.columns if c.startswith("config/")}
    if names != set(space.names):
        there = ", ".join(sorted(names - set(space.names))) or "none"
        here = ", ".join(sorted(set(space.names) - names)) or "none"
        raise WarmStartError(
            f"`warm_start` is {shown}, whose trials searched other parameters (only there: "
            f"{there}; only here: {here}); warm-start from an experiment over the same space "
            "(narrowed or widened ranges are fine: configs outside this space are skipped).")
    rows = _finished_rows(experiment, trials, shown, metric, wanted)
    warm: list[WarmTrial] = []
    skipped, reason = 0, ""
    for _, row in rows.iterrows():
        config = config_of(row, space)
        try:
            space.validate(config)
            if plain(row.get("config_changes")):  # PBT/PB2: its value is no one config's
                raise ValueError(f"trial {row['trial_id']}'s config changed while it trained")
        except ValueError as e:
            skipped, reason = skipped + 1, reason or str(e)
            continue
        warm.append(WarmTrial(config, value=float(row[f"last_{metric}"]),
                              epochs=int(row["epochs"]),
                              complete=row["status"] == Status.COMPLETE.value,
                              trial_id=str(row["trial_id"])))
    if not warm:
        raise WarmStartError(f"`warm_start` is {shown}, but none of its {skipped} finished "
                             f"trials can seed this search (the first: {reason}); widen this "
                             "experiment's space to hold them, or drop warm_start.")
    return WarmStart(where, tuple(warm), tuple(t.trial_id for t in warm), skipped, reason)


def _parse(value: Any, base_dir: Path) -> tuple[str, tuple[str, ...] | None]:
    """``DIR`` or ``{dir: DIR, trials: [ID, ...]}`` -> (the resolved directory, the ids)."""
    wanted: tuple[str, ...] | None = None
    if isinstance(value, Mapping):
        unknown = [k for k in value if k not in ("dir", "trials")]
        if unknown:
            raise WarmStartError(f"`warm_start.{unknown[0]}` is not an option; allowed: dir, "
                                 "trials.")
        ids = value.get("trials")
        if ids is not None:
            if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
                raise WarmStartError(f"`warm_start.trials` is {ids!r}, but must be a list of "
                                     "trial ids of that experiment (its trials.parquet's "
                                     "trial_id column).")
            wanted = tuple(ids)
        value = value.get("dir")
    if not isinstance(value, str) or not value:
        raise WarmStartError(
            f"`warm_start` is {value!r}, but must be the directory of an earlier hpnas "
            "experiment (e.g. runs/nb201-evolution), or {dir: DIR, trials: [TRIAL_ID, ...]}.")
    if is_uri(value):
        return value.rstrip("/"), wanted
    path = Path(value).expanduser()
    return str((path if path.is_absolute() else base_dir / path).resolve()), wanted


def _check_experiment(experiment: ExperimentDir, shown: str, metric: str, mode: str) -> None:
    """An hpnas experiment with results, optimising ``metric`` in ``mode``."""
    fix = "give the directory of an earlier experiment (the one `hpnas run` printed)"
    if not experiment.location.is_dir():
        raise WarmStartError(f"`warm_start` is {shown}, but no such directory exists; {fix}.")
    if not experiment.is_experiment():
        raise WarmStartError(f"`warm_start` is {shown}, which is not an hpnas experiment (no "
                             f"{ExperimentDir.SPEC_FILE}); {fix}.")
    try:
        their_metric, their_mode = goal_of(experiment.settings(), experiment.spec_file)
    except (NotAnExperiment, OSError, ValueError) as e:  # yaml errors are ValueErrors
        raise WarmStartError(f"`warm_start` is {shown}, whose {ExperimentDir.SPEC_FILE} "
                             f"cannot be used ({str(e).splitlines()[0]}); {fix}.") from None
    if (their_metric, their_mode) != (metric, mode):
        raise WarmStartError(
            f"`warm_start` is {shown}, an experiment that optimises {their_metric} "
            f"({their_mode}), but this one optimises {metric} ({mode}); warm-start from an "
            "experiment with the same metric and mode, or set `metric` and `mode` to match.")
    if not experiment.has_results():
        raise WarmStartError(f"`warm_start` is {shown}, which has no results yet (no "
                             f"{ExperimentDir.TRIALS_FILE}); let some of its trials finish "
                             "first, or drop warm_start.")


def _read_trials(experiment: ExperimentDir, shown: str, metric: str) -> pd.DataFrame:
    """The trials table, if written by a results schema this version reads."""
    try:
        table = pq.read_table(pa.BufferReader(experiment.trials_file.read_bytes()))
    except (OSError, pa.ArrowException) as e:
        raise WarmStartError(f"`warm_start` is {shown}, whose {ExperimentDir.TRIALS_FILE} "
                             f"cannot be read ({str(e).splitlines()[0]}).") from None
    version = (table.schema.metadata or {}).get(b"hpnas_schema", b"").decode() or None
    readable = f"hpnas {'reads' if len(READABLE_SCHEMAS) > 1 else 'reads only'} results " \
               f"schema{'s' if len(READABLE_SCHEMAS) > 1 else ''} {', '.join(READABLE_SCHEMAS)}"
    if version is None:
        raise WarmStartError(f"`warm_start` is {shown}, whose {ExperimentDir.TRIALS_FILE} has "
                             f"no hpnas results schema (not written by hpnas; {readable}); "
                             "give an experiment that hpnas ran.")
    if version not in READABLE_SCHEMAS:
        raise WarmStartError(f"`warm_start` is {shown}, whose results have schema {version}, "
                             f"but this {readable}; upgrade hpnas to the version that wrote "
                             "them, or give an experiment this version ran.")
    trials = table.to_pandas()
    missing = [c for c in ("trial_id", "status", "epochs", f"last_{metric}")
               if c not in trials.columns]
    if missing:
        raise WarmStartError(f"`warm_start` is {shown}, whose {ExperimentDir.TRIALS_FILE} "
                             f"lacks the columns {', '.join(missing)} (results schema "
                             f"{version} has them); give an experiment that hpnas ran.")
    return trials


def _finished_rows(experiment: ExperimentDir, trials: pd.DataFrame, shown: str, metric: str,
                   wanted: tuple[str, ...] | None) -> pd.DataFrame:
    """The complete and pruned rows with a finite metric (those in ``wanted``, if given),
    oldest first by their last report."""
    value = pd.to_numeric(trials[f"last_{metric}"], errors="coerce").astype(float)
    usable = trials["status"].isin(_FINISHED) & np.isfinite(value)
    if wanted is not None:
        ids = trials["trial_id"].astype(str)
        unknown = [i for i in wanted if i not in set(ids)]
        if unknown:
            raise WarmStartError(f"`warm_start.trials` names {unknown[0]!r}, which {shown} does "
                                 "not hold; list trial ids of its trials.parquet.")
        unfinished = [i for i in wanted if not usable[ids == i].any()]
        if unfinished:
            status = plain(trials.loc[ids == unfinished[0], "status"].iloc[0])
            raise WarmStartError(f"`warm_start.trials` names {unfinished[0]!r}, which ended "
                                 f"{status} (no usable {metric}); list complete or pruned "
                                 "trials.")
        usable &= ids.isin(wanted)
    if not usable.any():
        counts = ", ".join(f"{n} {s}" for s, n in trials["status"].value_counts().items())
        raise WarmStartError(f"`warm_start` is {shown}, which has no complete or pruned trial "
                             f"with a finite {metric} ({counts or 'no trials'}); give an "
                             "experiment with finished trials, or drop warm_start.")
    rows = trials[usable]
    iterations = experiment.load_iterations()
    if "timestamp" in iterations.columns and len(iterations):
        ended = iterations.groupby("trial_id")["timestamp"].max()
        order = rows["trial_id"].map(ended)
        rows = rows.assign(_ended=order).sort_values("_ended", kind="stable",
                                                     na_position="first")
    return rows
