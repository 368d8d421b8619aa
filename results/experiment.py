"""One experiment's directory: the one place that knows its layout and how its files are read.

``<storage>/<name>/`` (a local path or a URI, see :mod:`results.storage`) holds, besides Ray
Tune's own files:

==================== ===================================================================
``hpnas.yaml``        the validated experiment file, every default resolved (``metric`` and
                      ``mode`` always there)
``trials.parquet``    one row per trial (see :mod:`results.writer` for the columns)
``iterations.parquet`` one row per reported epoch
``evaluation.json``   ``hpnas evaluate``'s test metrics of the best trial
``best_grid.png``     a picture of the best trial's model, for trainables that draw one
``report.html``       ``hpnas report``'s default output for one local experiment
==================== ===================================================================

Parquet files carry the schema version (:data:`SCHEMA_VERSION`) in their metadata and are
written atomically (:meth:`results.storage.Location.write_bytes`).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from results.storage import Location
from spaces import Categorical, Integer, Space

__all__ = ["READABLE_SCHEMAS", "SCHEMA_VERSION", "ExperimentDir", "NotAnExperiment", "config_of", "goal_of",
           "load_results", "plain", "read_parquet", "write_parquet"]

SCHEMA_VERSION = "2"  # 2: iterations.parquet is a folder of part files (1: one file)
READABLE_SCHEMAS = tuple(str(v) for v in range(1, int(SCHEMA_VERSION) + 1))


class NotAnExperiment(FileNotFoundError):
    """A directory that is not an hpnas experiment, or has no results yet; one line."""


class ExperimentDir:
    """An experiment directory (a path or URI) and its files.

    Example:
        >>> exp = ExperimentDir("runs/fmnist-cnn")
        >>> trials, iterations = exp.load()
        >>> exp.settings()["metric"]
        'val_acc'
    """

    SPEC_FILE = "hpnas.yaml"
    TRIALS_FILE = "trials.parquet"
    ITERATIONS_FILE = "iterations.parquet"
    EVALUATION_FILE = "evaluation.json"
    PICTURE_FILE = "best_grid.png"
    REPORT_FILE = "report.html"

    def __init__(self, where: str | os.PathLike | Location | ExperimentDir) -> None:
        self.location = where.location if isinstance(where, ExperimentDir) else Location(where)

    def __str__(self) -> str:
        return str(self.location)

    def __repr__(self) -> str:
        return f"ExperimentDir({str(self.location)!r})"

    @property
    def name(self) -> str:
        return self.location.name

    @property
    def spec_file(self) -> Location:
        return self.location / self.SPEC_FILE

    @property
    def trials_file(self) -> Location:
        return self.location / self.TRIALS_FILE

    @property
    def iterations_file(self) -> Location:
        return self.location / self.ITERATIONS_FILE

    @property
    def evaluation_file(self) -> Location:
        return self.location / self.EVALUATION_FILE

    @property
    def picture_file(self) -> Location:
        return self.location / self.PICTURE_FILE

    @property
    def report_file(self) -> Location:
        return self.location / self.REPORT_FILE

    def is_experiment(self) -> bool:
        """Whether the directory holds a saved experiment file."""
        return self.spec_file.is_file()

    def has_results(self) -> bool:
        return self.trials_file.is_file()

    def results_schema(self) -> str | None:
        """The results schema version the trials file was written with (``None``: no trials
        file, or one hpnas did not write)."""
        if not self.has_results():
            return None
        metadata = pq.read_schema(pa.BufferReader(self.trials_file.read_bytes())).metadata
        return (metadata or {}).get(b"hpnas_schema", b"").decode() or None

    def require(self) -> ExperimentDir:
        """``self``, or :class:`NotAnExperiment` when there is no saved experiment file."""
        if not self.is_experiment():
            raise NotAnExperiment(f"{self} is not an hpnas experiment directory (no "
                                  f"{self.SPEC_FILE}); pass the directory `hpnas run` printed.")
        return self

    def settings(self) -> dict[str, Any]:
        """The saved experiment file as a mapping (validated when it was saved; the
        experiment's own spec reader, ``cluster.spec.load_saved``, validates it again)."""
        self.require()
        data = yaml.safe_load(self.spec_file.read_text())
        if not isinstance(data, dict):
            raise NotAnExperiment(f"{self.spec_file} is not an experiment file hpnas saved.")
        return data

    def goal(self) -> tuple[str, str]:
        """``(metric, mode)`` the experiment optimises (both always saved)."""
        return goal_of(self.settings(), self.spec_file)


    def load(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """``(trials, iterations)`` as they are on disk (a running experiment: so far)."""
        if not self.has_results():
            raise NotAnExperiment(
                f"{self} has no {self.TRIALS_FILE}: not an hpnas experiment directory, or no "
                "trial has finished yet.")
        return read_parquet(self.trials_file), self.load_iterations()

    def load_iterations(self) -> pd.DataFrame:
        """The iterations table: one file (schema 1) or the parts of a folder (schema 2; a
        row a merge had just copied is kept once)."""
        from results.parts import PartedTable

        where = self.iterations_file
        if where.is_file():
            return read_parquet(where)
        table = PartedTable(where).read() if where.is_dir() else None
        if table is None:
            return pd.DataFrame(columns=["trial_id", "iteration"])
        rows = table.to_pandas()
        rows = rows.drop_duplicates(["trial_id", "iteration"], keep="last")
        return rows.sort_values(["trial_id", "iteration"], kind="stable").reset_index(drop=True)

    def clear_results(self) -> None:
        """Delete the Parquet files (an experiment started over in place)."""
        for where in (self.trials_file, self.iterations_file):
            if where.is_file():
                where.fs.delete_file(where.path)
            elif where.is_dir():
                where.fs.delete_dir(where.path)


def load_results(directory: str | os.PathLike | Location | ExperimentDir
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(trials, iterations)`` DataFrames of one experiment directory (a path or URI)."""
    return ExperimentDir(directory).load()


def write_parquet(df: pd.DataFrame | pa.Table, path: str | Path | Location) -> None:
    """Write ``df`` (a DataFrame or an Arrow table) to ``path`` (a local path or URI)
    atomically, with the schema version in the file metadata."""
    table = df if isinstance(df, pa.Table) else pa.Table.from_pandas(df, preserve_index=False)
    table = table.replace_schema_metadata(
        {**(table.schema.metadata or {}), b"hpnas_schema": SCHEMA_VERSION.encode()}
    )
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    Location(path).write_bytes(sink.getvalue().to_pybytes())


def read_parquet(path: str | Path | Location) -> pd.DataFrame:
    return pq.read_table(pa.BufferReader(Location(path).read_bytes())).to_pandas()


def plain(value: Any) -> Any:
    """A pandas/numpy cell as a plain Python value; NaN as None."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def config_of(row: Mapping[str, Any], space: Space) -> dict[str, Any]:
    """The config a trials row was run with: the ``config/<name>`` cells of the parameters
    active under it, as the types the space takes (Parquet gives 32.0 for an integer column
    with nulls)."""
    config: dict[str, Any] = {}
    for param in space.params:  # in order, so conditions see the values they read
        value = plain(row.get(f"config/{param.name}"))
        if value is None or not space.is_active(param, config):
            continue
        if isinstance(param, Integer) and isinstance(value, float) and value.is_integer():
            value = int(value)
        elif isinstance(param, Categorical):
            value = next((c for c in param.choices if c == value
                          and isinstance(c, bool) == isinstance(value, bool)), value)
        config[param.name] = value
    return config


def goal_of(settings: Mapping[str, Any], where: Any) -> tuple[str, str]:
    """``(metric, mode)`` of a saved experiment file's mapping (read from ``where``)."""
    metric, mode = settings.get("metric"), settings.get("mode")
    if not isinstance(metric, str) or mode not in ("max", "min"):
        raise NotAnExperiment(f"{where} is not an experiment file hpnas saved (no `metric` "
                              "and `mode`).")
    return metric, mode
