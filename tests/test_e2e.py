"""End to end on a real local Ray: `hpnas run`, `hpnas results`, `hpnas evaluate`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from cluster.cli import main
from cluster.runner import run_experiment
from cluster.spec import spec_from_mapping

from conftest import write_idx

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def _experiment(tmp_path, **changes) -> dict:
    root = write_idx(tmp_path / "fm", n_train=500, n_test=100)
    spec = {"name": "e2e", "trainable": "cifar_cnn", "searcher": "optuna",
            "scheduler": {"name": "asha", "grace_period_epochs": 1, "reduction_factor": 2},
            "samples": 6, "max_concurrent_trials": 2, "seed": 0,
            "space": {"name": "cifar_cnn", "overrides": {"num_conv_layers": {"high": 2}}},
            "data": {"name": "fashion_mnist", "root": str(root), "val_size": 100,
                     "test_size": 100},
            "train": {"epochs": 3, "batch_size": 50}, "storage": str(tmp_path / "results")}
    spec.update(changes)
    return spec


def test_hpnas_run_writes_parquet_and_evaluates(tmp_path, local_ray, capsys):
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(_experiment(tmp_path)))
    assert main(["run", str(path), "--progress-interval", "1000"]) == 0
    out = capsys.readouterr().out
    assert "finished" in out and "top" in out
    directory = tmp_path / "results" / "e2e"
    trials = pd.read_parquet(directory / "trials.parquet")
    iterations = pd.read_parquet(directory / "iterations.parquet")
    assert len(trials) == 6 and trials["trial_id"].is_unique
    assert set(trials["status"]) <= {"complete", "pruned"}
    assert (trials["status"] == "complete").any()
    assert trials["config/num_conv_layers"].max() <= 2
    # one iteration row per epoch each trial ran, and epochs agree with statuses
    per_trial = iterations.groupby("trial_id")["iteration"].max()
    assert (per_trial.loc[trials["trial_id"]].to_numpy() == trials["epochs"].to_numpy()).all()
    assert (trials.loc[trials["status"] == "pruned", "epochs"] < 3).all()
    assert (trials.loc[trials["status"] == "complete", "epochs"] == 3).all()
    assert {"val_acc", "val_loss", "train_loss", "epoch_s", "params"} <= set(iterations.columns)
    assert trials["best_val_acc"].max() > 0.5  # planted classes are learnable
    # the searcher learned from pruned trials as PRUNED: status counts add up
    assert main(["results", str(directory), "--top", "3"]) == 0
    board = capsys.readouterr().out
    assert "top 3 by val_acc" in board
    assert main(["evaluate", str(directory)]) == 0
    evaluation = json.loads((directory / "evaluation.json").read_text())
    assert 0 <= evaluation["test_acc"] <= 1 and evaluation["config"]
    # a second run into the same directory is refused
    assert main(["run", str(path)]) == 2
    assert "already holds results" in capsys.readouterr().err
    # a corrupt checkpoint is one clear line, exit 2
    best = evaluation["trial_id"]
    trials = pd.read_parquet(directory / "trials.parquet").set_index("trial_id")
    (Path(trials.loc[best, "checkpoint"]) / "state.pt").write_bytes(b"not a checkpoint")
    assert main(["evaluate", str(directory), "--trial", best]) == 2
    err = capsys.readouterr().err
    assert "cannot be read" in err and "missing or corrupt" in err and len(err.splitlines()) == 1


def _flaky(config, settings=None):
    """A trainable that raises for SGD, reports NaN for RMSprop and trains otherwise."""
    from ray import tune

    if config["optimizer"] == "SGD":
        raise RuntimeError("synthetic failure")
    for epoch in range(1, 3):
        value = math.nan if config["optimizer"] == "RMSprop" else config["lr"] * 10 + epoch
        tune.report({"val_acc": value, "epoch": epoch})


def test_failing_trials_do_not_take_the_experiment_down(tmp_path, local_ray):
    spec = spec_from_mapping(_experiment(
        tmp_path, name="flaky", samples=9, scheduler="fifo", searcher="random",
        train={"epochs": 2}))
    directory = run_experiment(spec, quiet=True, trainable_fn=_flaky)
    trials = pd.read_parquet(directory / "trials.parquet")
    assert len(trials) == 9
    by_opt = trials.groupby("config/optimizer")["status"].agg(set).to_dict()
    assert by_opt == {"SGD": {"failed"}, "RMSprop": {"failed"}, "Adam": {"complete"}}
    sgd = trials[trials["config/optimizer"] == "SGD"]
    assert sgd["error"].str.contains("synthetic failure").all()
    nan = trials[trials["config/optimizer"] == "RMSprop"]
    assert nan["error"].str.contains("not finite").all()


@pytest.mark.parametrize("searcher", ["random", "optuna", "evolution", "rl", "qlearning"])
def test_nb201_search_through_ray(tmp_path, local_ray, searcher):
    spec = spec_from_mapping({
        "name": f"nb201-{searcher}", "trainable": "nb201", "searcher": searcher,
        "scheduler": "asha", "samples": 8, "max_concurrent_trials": 2, "seed": 1,
        "train": {"dataset": "cifar100"}, "storage": str(tmp_path)})
    directory = run_experiment(spec, quiet=True)
    trials = pd.read_parquet(directory / "trials.parquet")
    iterations = pd.read_parquet(directory / "iterations.parquet")
    assert len(trials) == 8 and set(trials["status"]) == {"complete"}
    assert trials["best_val_acc"].between(0, 100).all()
    assert trials["best_val_acc"].between(0.005, 1).all()  # one scale: [0, 1], not percent
    assert iterations["arch"].str.count(r"\+").eq(2).all()
    edges = [c for c in trials.columns if c.startswith("config/edge_")]
    assert len(edges) == 6


def test_storage_behind_a_uri_runs_and_evaluates(tmp_path, local_ray, capsys):
    """`storage: file:///...` goes through pyarrow.fs like s3:// would: Ray's checkpoints, our
    Parquet and experiment file, `hpnas results` and `hpnas evaluate` (which downloads the
    checkpoint)."""
    uri = f"file://{tmp_path}/store"
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(_experiment(tmp_path, samples=2, storage=uri,
                                               scheduler="fifo", train={"epochs": 1,
                                                                        "batch_size": 50})))
    assert main(["run", str(path), "--progress-interval", "1000"]) == 0
    trials = pd.read_parquet(tmp_path / "store" / "e2e" / "trials.parquet")
    assert len(trials) == 2 and trials["checkpoint"].str.startswith("file:///").all()
    assert (tmp_path / "store" / "e2e" / "hpnas.yaml").is_file()
    capsys.readouterr()
    assert main(["results", f"{uri}/e2e"]) == 0
    assert "2 trials" in capsys.readouterr().out
    assert main(["evaluate", f"{uri}/e2e"]) == 0
    assert "test_acc" in json.loads((tmp_path / "store" / "e2e" / "evaluation.json").read_text())
    assert main(["run", str(path)]) == 2  # the URI directory already holds results


def test_resume_before_the_first_snapshot_starts_over(tmp_path, local_ray, capsys):
    from cluster.runner import save_spec

    spec = spec_from_mapping({"name": "early", "trainable": "nb201", "searcher": "random",
                              "scheduler": "fifo", "samples": 4,
                              "storage": str(tmp_path / "results")})
    save_spec(spec, spec.directory)  # killed right after it wrote its experiment file
    assert main(["resume", str(spec.directory), "--no-dashboard"]) == 0
    assert "starting it again from the beginning" in capsys.readouterr().out
    trials = pd.read_parquet(spec.directory / "trials.parquet")
    assert len(trials) == 4 and set(trials["status"]) == {"complete"}


def _fails_once(config, settings=None, marker=""):
    """Four epochs, a checkpoint each; the first attempt raises after its second epoch."""
    from trainables.loop import load_state, report_epoch

    state = load_state() or {"epoch": 0}
    start = state["epoch"]
    for epoch in range(start + 1, 5):
        if epoch == 3 and not Path(marker).exists():
            Path(marker).write_text("failed once")
            raise RuntimeError("synthetic crash at epoch 3")
        report_epoch({"val_acc": epoch / 4, "started_at": start}, {"epoch": epoch})


def test_resume_retries_errored_trials_only_when_asked(tmp_path, local_ray):
    from cluster.runner import resume_experiment

    marker = str(tmp_path / "failed-once")
    fn = lambda config, settings=None: _fails_once(config, settings, marker)  # noqa: E731
    spec = spec_from_mapping({"name": "retry", "trainable": "nb201", "searcher": "random",
                              "scheduler": "fifo", "samples": 2, "max_concurrent_trials": 1,
                              "storage": str(tmp_path / "results")})
    directory = run_experiment(spec, quiet=True, trainable_fn=fn)
    trials = pd.read_parquet(directory / "trials.parquet").set_index("trial_id")
    assert sorted(trials["status"]) == ["complete", "failed"]
    failed = trials.index[trials["status"] == "failed"][0]
    assert "synthetic crash" in trials.loc[failed, "error"]

    resume_experiment(directory, dashboard=False, trainable_fn=fn)  # errored trials stay so
    assert pd.read_parquet(directory / "trials.parquet").set_index("trial_id").loc[
        failed, "status"] == "failed"

    resume_experiment(directory, dashboard=False, retry_errored=True, trainable_fn=fn)
    after = pd.read_parquet(directory / "trials.parquet").set_index("trial_id")
    assert len(after) == 2 and set(after["status"]) == {"complete"}
    iterations = pd.read_parquet(directory / "iterations.parquet")
    mine = iterations[iterations["trial_id"] == failed]
    assert list(mine["iteration"]) == [1, 2, 3, 4]  # each epoch once
    assert list(mine["started_at"]) == [0, 0, 2, 2]  # retried from its epoch-2 checkpoint
