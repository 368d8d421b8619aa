from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pyarrow.parquet as pq
import pytest

from results import SCHEMA_VERSION, ExperimentDir, leaderboard, load_results, storage
from results.writer import ResultsWriter

TRIALS_FILE, ITERATIONS_FILE = ExperimentDir.TRIALS_FILE, ExperimentDir.ITERATIONS_FILE

PARAMS = ("depth", "width_1", "lr")


def _trial(tid: str, config: dict, error_file: str | None = None):
    return SimpleNamespace(trial_id=tid, config=config, last_result={}, checkpoint=None,
                           error_file=error_file)


def _writer(directory: Path) -> ResultsWriter:
    writer = ResultsWriter(directory, metric="val_acc", mode="max", max_epochs=3,
                           searcher="optuna", param_names=PARAMS)
    writer.setup()  # Tune calls it at the start of every fit, restored ones included
    return writer


def _report(writer: ResultsWriter, trial, epoch: int, value: float) -> None:
    result = {"val_acc": value, "val_loss": 1 - value, "training_iteration": epoch,
              "time_total_s": float(epoch), "timestamp": 1000 + epoch, "pid": 1,
              "config": trial.config, "done": False}
    trial.last_result = result
    writer.on_trial_result(epoch, [], trial, result)


def _run_three(writer: ResultsWriter, tmp_path: Path) -> None:
    a = _trial("a", {"depth": 2, "width_1": 8, "lr": 0.1})
    b = _trial("b", {"depth": 1, "lr": 0.2})
    err = tmp_path / "error.txt"
    err.write_text("Traceback (most recent call last):\n  ...\nRuntimeError: CUDA out of memory\n")
    c = _trial("c", {"depth": 1, "lr": 0.3}, error_file=str(err))
    for e, v in enumerate((0.5, 0.7, 0.6), start=1):
        _report(writer, a, e, v)
    writer.on_trial_complete(3, [], a)
    _report(writer, b, 1, 0.4)
    writer.on_trial_complete(4, [], b)  # stopped at 1 of 3 epochs: pruned
    _report(writer, c, 1, 0.9)
    writer.on_trial_error(5, [], c)


def test_rows_statuses_and_columns(tmp_path):
    writer = _writer(tmp_path)
    _run_three(writer, tmp_path)
    trials, iterations = load_results(tmp_path)
    assert list(trials["trial_id"]) == ["a", "b", "c"]
    assert list(trials["status"]) == ["complete", "pruned", "failed"]
    assert list(trials["best_val_acc"]) == [0.7, 0.4, 0.9]
    assert list(trials["last_val_acc"]) == [0.6, 0.4, 0.9]
    assert list(trials["epochs"]) == [3, 1, 1]
    assert [c for c in trials.columns if c.startswith("config/")] == [
        "config/depth", "config/width_1", "config/lr"]
    assert pd.isna(trials.loc[1, "config/width_1"])  # inactive parameter is null
    assert trials.loc[2, "error"] == "RuntimeError: CUDA out of memory"
    assert len(iterations) == 5
    assert {"val_acc", "val_loss", "iteration", "time_total_s"} <= set(iterations.columns)
    assert "pid" not in iterations.columns and "config" not in iterations.columns


def test_schema_version_in_metadata(tmp_path):
    _run_three(_writer(tmp_path), tmp_path)
    files = [tmp_path / TRIALS_FILE, *sorted((tmp_path / ITERATIONS_FILE).glob("part-*"))]
    assert len(files) >= 3  # the trials file, the schema head and at least one part
    for path in files:
        meta = pq.read_schema(path).metadata
        assert meta[b"hpnas_schema"] == SCHEMA_VERSION.encode() == b"2"


def test_many_flushes_never_rewrite_the_rows_before_them(tmp_path):
    """Each flush appends the new iteration rows as one part file; the parts written before
    stay as they were (until a merge every MAX_PARTS parts), and pd.read_parquet reads the
    folder whole, every column of every part."""
    from results.parts import MAX_PARTS

    writer = _writer(tmp_path)
    folder = tmp_path / ITERATIONS_FILE
    stamps: dict[str, int] = {}
    ran = []
    for i in range(MAX_PARTS - 2):
        t = _trial(f"t{i}", {"depth": 1, "lr": 0.1})
        ran.append(t)
        _report(writer, t, 1, i / 100)
        if i == 5:  # a metric only later trials report: a new column
            writer.on_trial_result(2, [], t, {**t.last_result, "extra": 1.5,
                                              "training_iteration": 2})
        writer.on_trial_complete(1, [], t)
        for part in folder.glob("part-*.parquet"):
            stamps.setdefault(part.name, part.stat().st_mtime_ns)
    first = sorted(p.name for p in folder.glob("part-*.parquet"))[1]
    assert (folder / first).stat().st_mtime_ns == stamps[first]  # never written again
    assert len(list(folder.glob("part-*.parquet"))) == MAX_PARTS - 1  # head + a part a flush
    rows = pd.read_parquet(folder)
    assert len(rows) == MAX_PARTS - 1 and rows["extra"].notna().sum() == 1
    writer.on_experiment_end(ran)  # the end merges the parts
    assert len(list(folder.glob("part-*.parquet"))) == 2
    trials, iterations = load_results(tmp_path)
    assert len(iterations) == MAX_PARTS - 1 and len(trials) == MAX_PARTS - 2


def test_an_experiment_of_the_old_layout_is_read_and_resumed(tmp_path):
    """Schema 1 wrote iterations.parquet as one file: it is read as it is, and a resumed
    writer turns it into the first part of the folder."""
    from results import write_parquet

    write_parquet(pd.DataFrame([{"trial_id": "a", "status": "complete", "best_val_acc": 0.5}]),
                  tmp_path / TRIALS_FILE)
    write_parquet(pd.DataFrame([{"trial_id": "a", "iteration": 1, "val_acc": 0.5}]),
                  tmp_path / ITERATIONS_FILE)
    _, iterations = load_results(tmp_path)
    assert list(iterations["val_acc"]) == [0.5]
    resumed = _writer(tmp_path)
    b = _trial("b", {"depth": 1, "lr": 0.2})
    _report(resumed, b, 1, 0.25)
    resumed.on_trial_complete(1, [], b)
    assert (tmp_path / ITERATIONS_FILE).is_dir()
    trials, iterations = load_results(tmp_path)
    assert sorted(trials["trial_id"]) == ["a", "b"]
    assert sorted(iterations["trial_id"]) == ["a", "b"]


def test_resumed_writer_never_duplicates(tmp_path):
    _run_three(_writer(tmp_path), tmp_path)
    resumed = _writer(tmp_path)  # a restored experiment replays and adds results
    a = _trial("a", {"depth": 2, "width_1": 8, "lr": 0.1})
    _report(resumed, a, 3, 0.6)
    resumed.on_trial_complete(9, [], a)
    d = _trial("d", {"depth": 3, "lr": 0.01})
    _report(resumed, d, 1, 0.3)
    resumed.on_trial_complete(10, [], d)
    trials, iterations = load_results(tmp_path)
    assert sorted(trials["trial_id"]) == ["a", "b", "c", "d"]
    assert not trials["trial_id"].duplicated().any()
    assert not iterations.duplicated(["trial_id", "iteration"]).any()
    assert len(iterations) == 6


def test_trials_cut_by_the_time_budget_are_finished_at_the_end(tmp_path):
    writer = _writer(tmp_path)
    a = _trial("a", {"depth": 1, "lr": 0.1})
    _report(writer, a, 1, 0.5)
    a.status = "TERMINATED"  # Tune stops it without on_trial_complete
    writer.on_experiment_end([a])
    trials, _ = load_results(tmp_path)
    assert list(trials["status"]) == ["pruned"]


def test_a_trial_cut_before_its_first_result_is_stopped_and_runs_again_on_resume(tmp_path):
    """The experiment's end (an interrupt) cuts a trial that reported no value of the metric
    yet: it is ``stopped``, not failed; the resumed search runs it to the end, clean."""
    writer = _writer(tmp_path)
    a = _trial("a", {"depth": 1, "lr": 0.1})
    a.last_result = {"training_iteration": 1, "time_total_s": 1.0, "timestamp": 1001}
    writer.on_trial_result(1, [], a, a.last_result)  # a warm-up report without the metric
    a.status = "TERMINATED"
    writer.on_experiment_end([a])
    row = load_results(tmp_path)[0].set_index("trial_id").loc["a"]
    assert row["status"] == "stopped" and "before the trial reported 'val_acc'" in row["error"]

    resumed = _writer(tmp_path)
    a.status = "RUNNING"
    resumed.on_step_begin(0, [a])
    resumed.on_trial_start(0, [a], a)
    row = resumed.trials["a"]
    assert (row["status"], row["error"]) == ("running", None)
    _report(resumed, a, 2, 0.6)
    _report(resumed, a, 3, 0.7)
    resumed.on_trial_complete(3, [], a)
    row = load_results(tmp_path)[0].set_index("trial_id").loc["a"]
    assert (row["status"], row["error"], row["best_val_acc"]) == ("complete", None, 0.7)


def test_a_trial_has_a_row_from_its_start_and_is_stopped_if_cut_before_reporting(tmp_path):
    writer = _writer(tmp_path)
    a = _trial("a", {"depth": 2, "width_1": 8, "lr": 0.1})
    writer.on_trial_start(0, [a], a)
    writer.flush()
    trials = load_results(tmp_path)[0]
    assert list(zip(trials["trial_id"], trials["status"], trials["config/lr"])) == \
        [("a", "running", 0.1)]
    a.status = "TERMINATED"  # the time budget ran out before its first report
    writer.on_experiment_end([a])
    row = load_results(tmp_path)[0].set_index("trial_id").loc["a"]
    assert (row["status"], row["epochs"]) == ("stopped", 0)


def test_writes_are_atomic(tmp_path, monkeypatch):
    writer = _writer(tmp_path)
    _run_three(writer, tmp_path)
    before = (tmp_path / TRIALS_FILE).read_bytes()

    def crash(src, dst):  # the new bytes are written, then the machine dies before the rename
        assert Path(src).read_bytes().startswith(b"PAR1")
        raise OSError("disk full")

    monkeypatch.setattr(storage.os, "replace", crash)
    e = _trial("e", {"depth": 1, "lr": 0.5})
    with pytest.raises(OSError):
        _report(writer, e, 1, 0.2)
        writer.on_trial_complete(1, [], e)
    assert (tmp_path / TRIALS_FILE).read_bytes() == before  # the old file, whole
    assert pd.read_parquet(tmp_path / TRIALS_FILE).shape[0] == 3
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left


def test_results_behind_a_uri(tmp_path):
    uri = f"file://{tmp_path}/store"
    writer = _writer(uri)
    _run_three(writer, tmp_path)
    trials, iterations = load_results(uri)
    assert len(trials) == 3 and len(iterations) > 0
    assert (tmp_path / "store" / TRIALS_FILE).is_file()  # the same files, through pyarrow.fs
    where = storage.Location(uri)
    assert str(where / "x.yaml") == f"{uri}/x.yaml" and where.local == tmp_path / "store"


def test_leaderboard_orders_and_drops_failed(tmp_path):
    _run_three(_writer(tmp_path), tmp_path)
    trials, _ = load_results(tmp_path)
    board = leaderboard(trials, metric="val_acc", mode="max", top=5)
    assert list(board["trial_id"]) == ["a", "b"]
    assert "depth" in board.columns and "lr" in board.columns
    low = leaderboard(trials, metric="val_acc", mode="min", top=1)
    assert list(low["trial_id"]) == ["b"]


def test_load_results_on_a_non_experiment_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="not an hpnas experiment directory"):
        load_results(tmp_path)


def test_uri_options_stay_at_the_end_when_names_are_joined():
    where = storage.Location("s3://bucket/prefix/?region=us-east-1&endpoint_override=h:9000")
    child = where / "exp" / "trials.parquet"
    assert str(child) == "s3://bucket/prefix/exp/trials.parquet?region=us-east-1&endpoint_override=h:9000"
    assert child.path == "bucket/prefix/exp/trials.parquet"
    assert str((where / "exp").with_name("other")) == \
        "s3://bucket/prefix/other?region=us-east-1&endpoint_override=h:9000"


def test_resume_writes_a_trial_tune_saw_end_before_a_throttled_flush(tmp_path):
    """Tune's snapshot holds a trial as ended whose rows a throttled flush never wrote: the
    resumed writer writes it from its last result, once; a trial of the files that Tune's
    snapshot does not know is rolled back."""
    writer = _writer(tmp_path)
    a = _trial("a", {"depth": 2, "width_1": 8, "lr": 0.1})
    _report(writer, a, 1, 0.5)
    writer.on_trial_complete(1, [], a)
    orphan = _trial("orphan", {"depth": 1, "lr": 0.2})
    _report(writer, orphan, 1, 0.3)
    writer.flush()
    lost = _trial("lost", {"depth": 1, "lr": 0.4})  # ended, never written: the driver died
    lost.last_result = {"val_acc": 0.8, "training_iteration": 3, "time_total_s": 3.0}
    a.status, lost.status = "TERMINATED", "TERMINATED"

    resumed = _writer(tmp_path)
    resumed.on_step_begin(0, [a, lost])
    resumed.on_experiment_end([a, lost])
    trials, iterations = load_results(tmp_path)
    assert sorted(trials["trial_id"]) == ["a", "lost"]
    row = trials.set_index("trial_id").loc["lost"]
    assert (row["status"], row["best_val_acc"], row["epochs"]) == ("complete", 0.8, 3)
    assert sorted(zip(iterations["trial_id"], iterations["iteration"])) == [("a", 1), ("lost", 3)]


def test_trials_file_keeps_start_order_and_mixed_types(tmp_path):
    """Ended rows are converted once and joined with the running ones; the file lists trials
    in the order they started, and a key reported as a number by one trial and as text by
    another is written as text rather than failing."""
    writer = _writer(tmp_path)
    first, second, third = (_trial(t, {"depth": 1, "lr": 0.1}) for t in "xyz")
    _report(writer, first, 1, 0.5)
    _report(writer, second, 1, 0.6)
    writer.on_trial_result(1, [], second, {**second.last_result, "note": 3})
    writer.on_trial_complete(1, [], second)
    writer.flush()
    _report(writer, third, 3, 0.7)
    writer.on_trial_result(3, [], third, {**third.last_result, "note": "three"})
    writer.on_trial_complete(3, [], third)
    writer.flush()
    trials = pd.read_parquet(tmp_path / TRIALS_FILE)
    assert list(trials["trial_id"]) == ["x", "y", "z"]
    assert list(trials["status"]) == ["running", "pruned", "complete"]
    assert list(trials["last/note"].astype(object).where(trials["last/note"].notna(), None)) \
        == [None, "3", "three"]
