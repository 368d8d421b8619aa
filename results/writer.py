"""Results as Parquet: ``trials.parquet`` (one row per trial, from its start) and
``iterations.parquet``.

Schema (version :data:`SCHEMA_VERSION`, stored in each file's metadata under ``hpnas_schema``):

``trials.parquet``
    ``trial_id``, ``status`` (``complete``, ``pruned``, ``failed``, ``running``, ``stopped``: cut
    by the experiment's end before its first result; an interrupted search resumed runs it),
    ``searcher``,
    ``config/<name>`` per searched parameter (absent parameters are null), ``best_<metric>``,
    ``last_<metric>``, ``epochs`` (reports made), ``wall_s`` (trial seconds), ``error`` (text of
    the failure or null), ``checkpoint`` (path of the last checkpoint or null), and ``last/<key>``
    for every other metric the trial last reported.
``iterations.parquet/`` (a folder of part files since schema 2; a file before)
    ``trial_id``, ``iteration``, ``time_total_s``, ``timestamp`` and every key the trainable
    reported (for example ``val_acc``, ``val_loss``, ``train_loss``, ``epoch_s``).

``trials.parquet`` is rewritten whole and atomically (a temporary file, then ``os.replace``; one
object upload behind a URI, see :mod:`results.storage`), from an Arrow table of the ended trials'
rows, converted once each, and the rows of the trials still running; the new iteration rows are
appended as one more part file (:class:`results.parts.PartedTable`), so the rows written before
are never rewritten (bar a merge every :data:`results.parts.MAX_PARTS` parts). A flush happens
when a trial ends (past :data:`THROTTLE_AFTER_TRIALS` trials, at most every
:data:`MIN_FLUSH_INTERVAL_S` seconds and once per 20 times the last flush took, so writing stays a
small share of the driver's time however many trials there are; a pending one is written at a
later step of Tune's loop; a trial that Tune's last snapshot holds as ended but the files do not
is written from its last result when the experiment resumes) and at most every
``flush_every_s`` seconds while trials only report; a reader (or a crash) never sees a torn
file. Rows are keyed by trial id (and iteration), so a resumed experiment that
replays results never duplicates a row. ``pd.read_parquet`` is the analysis API;
:func:`results.load_results` reads both at once.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from ray.tune import Callback
from ray.tune.result import AUTO_RESULT_KEYS

from results.experiment import (
    SCHEMA_VERSION,
    ExperimentDir,
    plain,
    read_parquet,
    write_parquet,
)
from results.parts import PartedTable
from results.storage import Location, is_uri
from search.outcome import (
    ENDED,
    STOPPED,
    Status,
    classify,
    finite_metric,
    improves,
    never_reported,
)

__all__ = ["ResultsWriter"]

logger = logging.getLogger(__name__)

THROTTLE_AFTER_TRIALS = 200  # below it every ended trial is written at once (cheap anyway)
MIN_FLUSH_INTERVAL_S = 2.0  # past it, ended trials are written at most this often
_SKIP_KEYS = set(AUTO_RESULT_KEYS) | {
    "done", "trial_id", "experiment_tag", "should_checkpoint", "__duplicate__",
    "experiment_id",
}


def _scalar(value: Any) -> Any:
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


class ResultsWriter(Callback):
    """A Ray Tune callback that keeps the experiment's Parquet files current.

    Args:
        directory: the experiment directory.
        metric, mode: the searched metric (for ``best_``/``last_`` columns and statuses).
        max_epochs: the per-trial budget; trials ending before it count as pruned.
        searcher: the searcher's name, stored on every row.
        param_names: the space's parameters, so every row has every ``config/`` column in the
            space's order (null where inactive).
        flush_every_s: rewrite the files at most this often while trials only report.
    """

    def __init__(self, directory: str | Path | Location | ExperimentDir, *, metric: str,
                 mode: str, max_epochs: int, searcher: str, param_names: tuple[str, ...] = (),
                 flush_every_s: float = 10.0) -> None:
        self.experiment = ExperimentDir(directory)
        self.directory = self.experiment.location
        # Ray gives checkpoint paths without the scheme on a URI's filesystem: put it back.
        uri = self.directory.uri
        self._scheme = uri.split("://", 1)[0] + "://" if is_uri(uri) else ""
        self.metric = metric
        self.mode = mode
        self.max_epochs = max_epochs
        self.searcher = searcher
        self.param_names = param_names
        self.flush_every_s = flush_every_s
        self.trials: dict[str, dict[str, Any]] = {}
        self._table: pa.Table | None = None  # rows of ended trials, as written
        self._loose: dict[str, dict[str, Any]] = {}  # rows not in the table: running, just ended
        self.pending: list[dict[str, Any]] = []  # iteration rows not written yet
        self.written: set[tuple[str, int]] = set()  # (trial, iteration) of every row so far
        # PBT and PB2 give a running trial a new config: the config each trial last reported
        # with, and the trials whose config changed (their iteration rows carry it)
        self._configs: dict[str, Any] = {}
        self._changed: set[str] = set()
        self.iterations = PartedTable(self.experiment.iterations_file,
                                      metadata={b"hpnas_schema": SCHEMA_VERSION.encode()})
        self._last_flush = 0.0
        self._flush_s = 0.0  # how long the last flush took
        self._dirty = False
        self._ended = False  # a trial ended since the last flush
        self._reconciled = False

    def setup(self, **info: Any) -> None:
        """Called by Tune at the start of every ``fit``, a restored one included: start from
        the files the experiment has so far, so a resume neither loses nor repeats rows."""
        self.trials.clear()
        self.pending.clear()
        self.written.clear()
        self._reconciled = False
        trials_path = self.experiment.trials_file
        if trials_path.is_file():
            for row in read_parquet(trials_path).to_dict("records"):
                self.trials[row["trial_id"]] = {k: plain(v) for k, v in row.items()}
        self._rebuild_table()
        old = self.experiment.iterations_file
        if old.is_file():  # schema 1 kept the iterations in one file: they become the first part
            rows = read_parquet(old)
            old.fs.delete_file(old.path)
            self.iterations.open()
            self.iterations.append(pa.Table.from_pandas(rows, preserve_index=False))
        self.iterations.open()
        keys = self.iterations.read(["trial_id", "iteration"])
        if keys is not None:
            self.written = set(zip(keys.column("trial_id").to_pylist(),
                                   (int(i) for i in keys.column("iteration").to_pylist())))

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        if not self._reconciled:
            self._reconcile(trials)

    def _reconcile(self, trials: list) -> None:
        """Roll the files back to the restored experiment: a driver that died keeps rows of
        trials that started after Tune's last experiment snapshot, which the restored run (and
        its searcher, restored from the same snapshot) does not know; their budget is spent
        again on new trials, so their rows go, and every trial stays in the files once."""
        self._reconciled = True
        for trial in trials:  # ended in Tune's snapshot before a throttled flush wrote them
            if trial.trial_id not in self.trials and trial.status in ENDED and trial.last_result:
                self.on_trial_result(0, trials, trial, trial.last_result)
                self._finish(trial, error=trial.status == "ERROR")
        known = {t.trial_id for t in trials}
        orphans = {tid for tid in self.trials if tid not in known}
        if not orphans:
            return
        logger.warning("resume: %d trial(s) started after the last experiment snapshot and are "
                       "run again as new trials: %s", len(orphans), ", ".join(sorted(orphans)))
        for tid in orphans:
            del self.trials[tid]
        self._rebuild_table()
        self.pending = [r for r in self.pending if r["trial_id"] not in orphans]
        self.written = {k for k in self.written if k[0] not in orphans}
        rows = self.iterations.read()
        if rows is not None:  # the one rewrite of old rows: taking the orphans' out
            keep = pc.invert(pc.is_in(rows.column("trial_id"),
                                      value_set=pa.array(sorted(orphans))))
            self.iterations.rewrite(rows.filter(keep))
        self._dirty = True
        self.flush()

    def _rebuild_table(self) -> None:
        """Convert every row again at the next flush (after rows were dropped or reloaded)."""
        self._table = None
        self._loose = dict(self.trials)

    def _row(self, trial: Any) -> dict[str, Any]:
        """The trial's row, to be changed: it is (again) one of the rows converted at flush."""
        row = self.trials.get(trial.trial_id)
        if row is not None and trial.trial_id not in self._loose:  # in the table: runs again
            self._rebuild_table()
        if row is None:
            row = {"trial_id": trial.trial_id, "status": "running", "searcher": self.searcher}
            config = trial.config or {}
            for key in self.param_names:
                row[f"config/{key}"] = _scalar(config.get(key))
            for key, value in config.items():
                row.setdefault(f"config/{key}", _scalar(value))
            row.update({f"best_{self.metric}": None, f"last_{self.metric}": None, "epochs": 0,
                        "wall_s": 0.0, "error": None, "checkpoint": None})
            self.trials[trial.trial_id] = row
            self._loose[trial.trial_id] = row
        return row

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        """Every trial has a row from its start (one the experiment's end cuts before it
        reports is then ``stopped``); a trial that runs again (resumed after a cut, retried
        after an error) is ``running`` again."""
        row = self._row(trial)
        if row["status"] != "running":
            row["status"], row["error"] = "running", None
        self._dirty = True

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        row = self._row(trial)
        step = int(result.get("training_iteration", 0))
        it = {"trial_id": trial.trial_id, "iteration": step,
              "time_total_s": _scalar(result.get("time_total_s")),
              "timestamp": _scalar(result.get("timestamp"))}
        for key, value in result.items():
            if key not in _SKIP_KEYS and not isinstance(value, dict):
                it[key] = _scalar(value)
        config = result.get("config")  # what the trainable ran with (PBT may have changed it)
        if isinstance(config, dict):
            if config != self._configs.setdefault(trial.trial_id, config):
                self._config_changed(trial.trial_id, row, config)
            if trial.trial_id in self._changed:  # the hyperparameters' schedule, epoch by epoch
                it.update((f"config/{k}", _scalar(v)) for k, v in config.items())
                it["config_changes"] = row["config_changes"]
        # A resumed trial may report a step again: one row each. A trial PBT changed continues
        # another's checkpoint and may train a step again with its new config: a row each time.
        if (trial.trial_id, step) not in self.written or trial.trial_id in self._changed:
            self.written.add((trial.trial_id, step))
            self.pending.append(it)
        value = finite_metric(result, self.metric)
        if value is not None:
            row[f"last_{self.metric}"] = value
            if improves(value, row[f"best_{self.metric}"], self.mode):
                row[f"best_{self.metric}"] = value
        row["epochs"] = max(int(row["epochs"] or 0), step)
        row["wall_s"] = _scalar(result.get("time_total_s")) or row["wall_s"]
        for key, v in it.items():
            if key not in ("trial_id", "iteration", "timestamp", self.metric):
                row[f"last/{key}"] = v
        self._dirty = True
        if time.monotonic() - self._last_flush > self.flush_every_s:
            self.flush()

    def _config_changed(self, trial_id: str, row: dict[str, Any], config: Any) -> None:
        """A scheduler (PBT, PB2) changed a running trial's config: the trial's row holds the
        config it ends with, ``config_changes`` counts the changes."""
        self._configs[trial_id] = config
        self._changed.add(trial_id)
        for key, value in (config or {}).items():
            row[f"config/{key}"] = _scalar(value)
        row["config_changes"] = int(row.get("config_changes") or 0) + 1

    def _finish(self, trial: Any, error: bool, cut: bool = False) -> None:
        """Record how ``trial`` ended; ``cut``: the experiment ended (time budget, interrupt)
        while the trial ran, so one that never reported the metric is ``stopped``, not failed
        (one whose metric was NaN or infinite is failed: it diverged)."""
        row = self._row(trial)
        status = classify(trial.last_result, error=error, metric=self.metric,
                          max_epochs=self.max_epochs)
        row["status"], row["error"] = status.value, None  # a resumed trial ends again
        if error:
            row["error"] = _error_text(trial)
        elif cut and never_reported(trial.last_result, self.metric):
            row["status"] = STOPPED
            row["error"] = ("the experiment ended (time budget or interrupt) before the trial "
                            f"reported {self.metric!r}")
        elif status is Status.FAILED and not trial.last_result:
            row["error"] = "the trial ended before reporting any result"
        elif status is Status.FAILED:
            row["error"] = f"metric {self.metric!r} was missing or not finite"
        path = getattr(getattr(trial, "checkpoint", None), "path", None)
        row["checkpoint"] = f"{self._scheme}{path}" if path and self._scheme else path
        self._dirty = self._ended = True
        self._flush_if_due()

    def _flush_if_due(self) -> None:
        """Flush an ended trial's rows now; past :data:`THROTTLE_AFTER_TRIALS` trials, only
        if the last flush was :data:`MIN_FLUSH_INTERVAL_S` and 20 of its durations ago or more
        (else a later step of Tune's loop does it)."""
        due = len(self.trials) <= THROTTLE_AFTER_TRIALS or \
            time.monotonic() - self._last_flush >= max(MIN_FLUSH_INTERVAL_S, 20 * self._flush_s)
        if self._ended and due:
            self.flush()

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        self._flush_if_due()

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._finish(trial, error=False)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._finish(trial, error=True)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        if not self._reconciled:
            self._reconcile(trials)
        # Trials stopped by the time budget or an interrupt get no on_trial_complete from Tune.
        for trial in trials:
            row = self.trials.get(trial.trial_id)
            if row is not None and row["status"] == "running":
                self._finish(trial, error=trial.status == "ERROR", cut=True)
        self.flush()
        self.iterations.compact()

    def flush(self) -> None:
        """Write the trials file and append the new iteration rows, if anything changed."""
        if not self._dirty:
            return
        start = time.monotonic()
        self.directory.mkdir()
        if self.pending:  # the iterations first: a trials row never names rows not written
            self.iterations.append(_to_arrow(self.pending))
            self.pending = []
        write_parquet(self._trials_table(), self.experiment.trials_file)
        self._dirty = self._ended = False
        self._last_flush = time.monotonic()
        self._flush_s = self._last_flush - start

    def _trials_table(self) -> pa.Table:
        """Every trial's row, in the order trials started: the ended trials' rows join the
        Arrow table once; the running ones are converted at each flush."""
        ended = [r for r in self._loose.values() if r["status"] != "running"]
        if ended:
            self._table = _concat(self._table, _to_arrow(ended))
            for r in ended:
                del self._loose[r["trial_id"]]
        table = _concat(self._table, _to_arrow(list(self._loose.values())))
        if table is None:
            return pa.table({"trial_id": pa.array([], pa.string())})
        if self._loose and self._table is not None:  # running trials after the ended ones
            order = {tid: i for i, tid in enumerate(self.trials)}
            keys = pa.array([order[t] for t in table.column("trial_id").to_pylist()])
            table = table.take(pc.sort_indices(keys))
        return table


def _to_arrow(rows: list[dict[str, Any]]) -> pa.Table | None:
    """Rows (dicts, possibly with different keys) as one table, as pandas would type them."""
    if not rows:
        return None
    return pa.Table.from_pandas(pd.DataFrame(rows), preserve_index=False)


def _concat(first: pa.Table | None, second: pa.Table | None) -> pa.Table | None:
    """Both tables' rows; a column missing from one is null there, types are widened."""
    if first is None or second is None:
        return first if second is None else second
    try:
        return pa.concat_tables([first, second], promote_options="permissive")
    except (pa.ArrowTypeError, pa.ArrowInvalid):  # say a key reported as a number, then text
        clashes = {f.name for f in first.schema if f.name in second.schema.names
                   and second.schema.field(f.name).type != f.type}
        first, second = (_as_text(t, clashes) for t in (first, second))
        return pa.concat_tables([first, second], promote_options="permissive")


def _as_text(table: pa.Table, names: set[str]) -> pa.Table:
    for i, field in enumerate(table.schema):
        if field.name in names and not pa.types.is_null(field.type):
            table = table.set_column(i, field.name, pc.cast(table.column(i), pa.large_string()))
    return table


def _error_text(trial: Any) -> str:
    """The last line of the trial's error (the exception), or a generic note."""
    path = getattr(trial, "error_file", None)
    text = ""
    if path:
        try:
            text = Path(path).read_text(errors="replace")
        except OSError:
            text = ""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:1000] if lines else "the trial raised an error (see Ray's trial log)"
