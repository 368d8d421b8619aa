"""A newcomer's first hour: no hangs, honest exits on Ctrl-C and on runs where every trial
failed, metric names checked, filesystem mistakes as one line, fair defaults."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from cluster.cli import main
from cluster.detached import ROOT, signal_group, start_hpnas
from cluster.spec import SpecError, spec_from_mapping

# A user's trainable that takes its time (2 epochs of `seconds` each) and checkpoints.
SLOW = '''
import os
import tempfile
import time

from ray import tune


def fit(config, seconds=1.5, fail=False):
    if fail:
        raise ValueError("every trial fails here")
    start = 1
    if tune.get_checkpoint() is not None:
        with tune.get_checkpoint().as_directory() as folder:
            start = int(open(os.path.join(folder, "epoch")).read()) + 1
    for epoch in range(start, 3):
        time.sleep(seconds)
        with tempfile.TemporaryDirectory() as folder:
            with open(os.path.join(folder, "epoch"), "w") as f:
                f.write(str(epoch))
            tune.report({"acc": config["x"] * epoch, "epoch": epoch},
                        checkpoint=tune.Checkpoint.from_directory(folder))
'''


def _slow_experiment(tmp_path: Path, samples: int = 6, **train) -> Path:
    folder = tmp_path / "proj"
    folder.mkdir(exist_ok=True)
    (folder / "slow.py").write_text(SLOW)
    experiment = {"name": "slow", "trainable": "slow.py:fit", "metric": "acc", "mode": "max",
                  "max_epochs": 2, "train": train, "space": {"x": {"float": [0.0, 1.0]}},
                  "searcher": "random", "scheduler": "fifo", "samples": samples,
                  "max_concurrent_trials": 2, "storage": str(tmp_path / "runs")}
    path = folder / "slow.yaml"
    path.write_text(yaml.safe_dump(experiment, sort_keys=False))
    return path


def _wait(proc: subprocess.Popen, log: Path, timeout_s: float) -> int:
    try:
        return proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        signal_group(proc)
        pytest.fail(f"still running after {timeout_s} s:\n{log.read_text()[-3000:]}")


def _trials(directory: Path) -> pd.DataFrame:
    return pd.read_parquet(directory / "trials.parquet")


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.parametrize("moment", ["ray start-up", "first trials running"])
def test_ctrl_c_exits_130_and_the_directory_resumes(tmp_path, moment):
    """A real SIGINT to the run's process group (a terminal's Ctrl-C): exit 130, one line that
    says how to continue, and `hpnas resume DIR` finishes the search, each trial once."""
    path = _slow_experiment(tmp_path)
    directory = tmp_path / "runs" / "slow"
    log = tmp_path / "run.log"
    run = start_hpnas("run", str(path), "--no-dashboard", "--progress-interval", "1000",
                      log=log)
    try:
        if moment == "ray start-up":  # the experiment file is saved, Ray is starting
            deadline = time.monotonic() + 120
            while not (directory / "hpnas.yaml").is_file():
                assert run.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
        else:
            deadline = time.monotonic() + 120
            while "| finished 0 |" not in log.read_text():  # a trial runs, none has ended
                assert run.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        signal_group(run, signal.SIGINT)
        assert _wait(run, log, 120) == 130, log.read_text()[-3000:]
    finally:
        signal_group(run)
    text = log.read_text()
    assert f"hpnas: interrupted; continue with `hpnas resume {directory}`" in text
    assert "Traceback" not in text and "Tuner.restore" not in text
    assert "(embedded Ray)" in text and "dashboard on" not in text  # --no-dashboard: none
    assert (directory / "hpnas.yaml").is_file()
    if moment != "ray start-up":  # the trials it cut are not failed: the resume runs them
        last = [line for line in text.splitlines() if "| finished " in line][-1]
        assert "| failed 0 |" in last, text[-3000:]
        assert not directory.joinpath("trials.parquet").exists() or \
            (_trials(directory)["status"] != "complete").any() or len(_trials(directory)) < 6

    resume = start_hpnas("resume", str(directory), "--no-dashboard", log=log)
    try:
        assert _wait(resume, log, 240) == 0, log.read_text()[-3000:]
    finally:
        signal_group(resume)
    trials = _trials(directory)
    assert len(trials) == 6 and trials["trial_id"].is_unique
    assert set(trials["status"]) == {"complete"} and trials["error"].isna().all()
    iterations = pd.read_parquet(directory / "iterations.parquet")
    assert not iterations.duplicated(["trial_id", "iteration"]).any()


@pytest.mark.ray
@pytest.mark.slow
def test_a_run_where_every_trial_failed_exits_1_with_the_first_error(tmp_path, local_ray,
                                                                    capsys):
    path = _slow_experiment(tmp_path, samples=3, fail=True)
    assert main(["run", str(path), "--progress-interval", "1000"]) == 1
    err = capsys.readouterr().err
    assert "every trial failed (3); the first error: ValueError: every trial fails here" in err
    assert str(tmp_path / "runs" / "slow") in err


BASE = {"trainable": "cifar_cnn", "data": {"name": "fashion_mnist", "root": "/nowhere"}}


@pytest.mark.parametrize("change,message", [
    pytest.param({"metric": "accuracy", "mode": "max"},
                 "`metric` is 'accuracy', but trainable 'cifar_cnn' reports val_acc", id="metric"),
    pytest.param({"metric": "val_ac"}, "Did you mean 'val_acc'?", id="metric-typo-no-mode"),
    pytest.param({"space": {"name": "cifar_cnn", "overrides": {"num_filter_0": {"low": 0}}}},
                 "`num_filter_0.low` is 0, but must be >= 1", id="zero-filters"),
    pytest.param({"space": {"name": "cifar_cnn",
                            "overrides": {"num_neurons_0": {"low": -16, "high": 64}}}},
                 "`num_neurons_0.low` is -16, but must be >= 1", id="negative-neurons"),
    pytest.param({"trainable": "word2vec", "data": None,
                  "train": {"corpus": {"nltk": ["genesys"]}}},
                 "'genesys', which is not an NLTK corpus. Did you mean 'genesis'?", id="nltk"),
    pytest.param({"trainable": "word2vec", "data": None, "metric": "wordsim", "mode": "max",
                  "train": {"corpus": {"nltk": ["genesis"]}}},
                 "reports it only with `train.wordsim` set", id="wordsim-without-file"),
])
def test_values_that_would_crash_inside_trials_are_refused_up_front(change, message):
    experiment = {k: v for k, v in {**BASE, **change}.items() if v is not None}
    with pytest.raises(SpecError) as info:
        spec_from_mapping(experiment, check_data=False)
    assert message in str(info.value)


def test_filesystem_mistakes_are_one_line(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    for storage, message in ((afile, "which is a file, but must be a folder"),
                             ("/proc/hpnas-test", "cannot be written")):
        path = tmp_path / "s.yaml"
        path.write_text(yaml.safe_dump({"trainable": "nb201", "storage": str(storage)}))
        assert main(["run", str(path)]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["evaluate", str(empty)]) == 2
    assert "is not an hpnas experiment directory" in capsys.readouterr().err
    assert main(["report", str(empty), "-o", str(tmp_path)]) == 2  # the directory check first
    capsys.readouterr()
    for top in ("0", "-1"):
        with pytest.raises(SystemExit) as exit_info:
            main(["results", str(empty), "--top", top])
        assert exit_info.value.code == 2
        assert "must be >= 1" in capsys.readouterr().err


def test_report_to_a_folder_and_best_config_over_a_file_are_refused(tmp_path, capsys):
    from results import ExperimentDir, write_parquet

    directory = tmp_path / "exp"
    directory.mkdir()
    (directory / ExperimentDir.SPEC_FILE).write_text(yaml.safe_dump(
        {"name": "exp", "trainable": "nb201", "metric": "val_acc", "mode": "max"}))
    write_parquet(pd.DataFrame([{"trial_id": "t1", "status": "complete", "searcher": "random",
                                 "best_val_acc": 0.7, "last_val_acc": 0.7, "epochs": 1,
                                 "checkpoint": None, "error": None,
                                 **{f"config/edge_{j}_{i}": "skip_connect"
                                    for j, i in ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1),
                                                 (3, 2))}}]),
                  directory / "trials.parquet")
    assert main(["report", str(directory), "-o", str(tmp_path)]) == 2
    assert "a folder, but must be the HTML file" in capsys.readouterr().err
    best = tmp_path / "best.yaml"
    best.write_text("keep me")
    assert main(["results", str(directory), "--best-config", str(best)]) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert best.read_text() == "keep me"
    assert main(["results", str(directory), "--best-config", str(best), "--force"]) == 0
    assert "samples: 1" in best.read_text()


def test_results_piped_into_head_ends_quietly(tmp_path):
    from results import ExperimentDir, write_parquet

    directory = tmp_path / "exp"
    directory.mkdir()
    (directory / ExperimentDir.SPEC_FILE).write_text(yaml.safe_dump(
        {"name": "exp", "trainable": "nb201", "metric": "val_acc", "mode": "max"}))
    rows = [{"trial_id": f"t{i}", "status": "complete", "best_val_acc": i / 1000,
             "epochs": 1, "wall_s": 1.0} for i in range(500)]
    write_parquet(pd.DataFrame(rows), directory / "trials.parquet")
    pipeline = subprocess.run(
        f"{sys.executable} -m cluster.cli results {directory} --top 500 | head -2",
        shell=True, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert pipeline.stdout.splitlines()[1].startswith(f"{directory}: 500 trials")
    assert pipeline.stderr == ""


def test_fractions_of_the_training_split_are_accepted():
    from trainables.data import DataSettings

    assert DataSettings(name="mnist", train_size=0.01).train_size == 0.01
    with pytest.raises(ValueError, match="as a fraction must be < 1"):
        DataSettings(name="mnist", train_size=1.5)
