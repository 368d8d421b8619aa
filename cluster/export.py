"""Exports of results: tables as CSV, JSON or Parquet, and a trial's config as an experiment file
that ``hpnas run`` retrains.
"""

from __future__ import annotations

import copy
import io
import json
import math
from typing import Any

import pandas as pd
import yaml

from cluster.spec import SPEC_FILE, SpecError, read_yaml, spec_from_mapping
from search.analysis import best_trial
from search.results import load_results
from search.storage import Location
from spaces import get_space
from spaces.space import Categorical, Float, Integer

__all__ = ["FORMATS", "best_config_experiment", "plain", "table_bytes"]

FORMATS = ("csv", "json", "parquet")


def plain(value: Any) -> Any:
    """A pandas/numpy cell as a plain Python value; NaN as None."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def table_bytes(df: pd.DataFrame, fmt: str) -> bytes:
    """``df`` as ``fmt`` (one of :data:`FORMATS`): CSV with a header, JSON as a list of records
    (NaN as null), or Parquet."""
    if fmt == "csv":
        return df.to_csv(index=False).encode()
    if fmt == "json":  # not DataFrame.to_json, which writes every "/" in a name as "\/"
        records = [{k: plain(v) for k, v in row.items()} for row in df.to_dict("records")]
        return json.dumps(records, indent=1, default=str).encode()
    if fmt == "parquet":
        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        return buf.getvalue()
    raise ValueError(f"--format is {fmt!r}, but must be one of {', '.join(FORMATS)}.")


def best_config_experiment(directory: Location, *, trial_id: str | None = None,
                           epochs: int | None = None) -> tuple[dict[str, Any], str]:
    """The experiment file (a mapping) that retrains one trial's config, and that trial's id.

    The trial is ``trial_id``, else the best non-failed trial by its best metric value. The
    file is the experiment's own (same trainable, data and training settings) with every
    active parameter of the trial fixed in ``space.overrides``, one sample, random search,
    FIFO, named ``<name>-retrain-<trial>``; ``epochs`` changes ``train.epochs``.
    """
    raw = read_yaml(directory / SPEC_FILE)
    spec = spec_from_mapping(raw, source=str(directory / SPEC_FILE), check_data=False)
    trials, _ = load_results(directory)
    if trial_id is not None:
        rows = trials[trials["trial_id"] == trial_id]
        if rows.empty:
            raise SpecError(f"--trial is {trial_id!r}, but {directory} has no such trial; "
                            f"its trials: {', '.join(trials['trial_id'].head(20))}.")
        row = rows.iloc[0]
    else:
        try:
            row = best_trial(trials, spec.metric, spec.mode)
        except ValueError as e:
            raise SpecError(f"{directory}: {e}; nothing to export.") from None
    values = {name: plain(row.get(f"config/{name}")) for name in spec.space.names}
    config: dict[str, Any] = {}
    for param in spec.space.params:  # in order, so conditions see the values they read
        value = values[param.name]
        if value is None or not spec.space.is_active(param, config):
            continue
        if isinstance(param, Integer):
            value = int(value)
        elif isinstance(param, Categorical):  # 32.0 read back from a column with nulls -> 32
            value = next((c for c in param.choices if c == value
                          and isinstance(c, bool) == isinstance(value, bool)), value)
        config[param.name] = value
    try:
        spec.space.validate(config)
    except ValueError as e:
        raise SpecError(f"trial {row['trial_id']}'s config does not fit the experiment's space "
                        f"({e}).") from None
    out = copy.deepcopy(raw)
    space = raw.get("space")
    space_name = space.get("name", spec.space.name) if isinstance(space, dict) else \
        (space or spec.space.name)
    overrides = dict((space or {}).get("overrides") or {}) if isinstance(space, dict) else {}
    base = get_space(space_name)
    for name, value in config.items():
        # A plain value is checked against the space's own range; outside it (a range the
        # experiment widened), fix the parameter by its bounds instead.
        param = base[name]
        if param.contains(value):
            overrides[name] = value
        elif isinstance(param, Float):
            overrides[name] = {"low": value, "high": value, "log": False}
        else:
            overrides[name] = {"low": value, "high": value}
    out.update(name=f"{spec.name}-retrain-{row['trial_id']}",
               space={"name": space_name, "overrides": overrides}, samples=1,
               searcher="random", scheduler="fifo", max_concurrent_trials=1)
    out.pop("time_budget_s", None)
    if epochs is not None:
        out["train"] = {**(out.get("train") or {}), "epochs": epochs}
    try:  # what `hpnas run` will check, so a bad --epochs fails here, before a file is written
        spec_from_mapping(out, source="--best-config", check_data=False)
    except SpecError as e:
        raise SpecError(f"the retraining experiment would be invalid: {e}") from None
    return out, str(row["trial_id"])


def experiment_yaml(experiment: dict[str, Any], *, source: str, trial_id: str) -> str:
    return (f"# Retrain trial {trial_id} of {source} (written by `hpnas results --best-config`).\n"
            f"# Run: hpnas run THIS_FILE\n"
            + yaml.safe_dump(experiment, sort_keys=False))
