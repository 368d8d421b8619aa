"""Results analysis: the pandas API, `hpnas report`'s plots, and exports."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from cluster.cli import main
from results.analysis import best_so_far, best_trial, load, pareto_front
from results import ExperimentDir, write_parquet

from conftest import shared_data


def _experiment_dir(root: Path, name: str, searcher: str, trials: list[dict],
                    iterations: list[dict], metric: str = "val_acc", mode: str = "max") -> Path:
    directory = root / name
    directory.mkdir(parents=True)
    spec = {"name": name, "trainable": "nb201", "metric": metric, "mode": mode}
    if searcher is not None:
        spec["searcher"] = searcher
    (directory / ExperimentDir.SPEC_FILE).write_text(yaml.safe_dump(spec))
    written = (searcher.get("name") if isinstance(searcher, dict) else searcher) or "optuna"
    trials = [{**t, "searcher": written} for t in trials]  # as ResultsWriter writes it
    write_parquet(pd.DataFrame(trials), directory / "trials.parquet")
    write_parquet(pd.DataFrame(iterations), directory / "iterations.parquet")
    return directory


def _trial(trial_id, status, best, params=None, **config):
    return {"trial_id": trial_id, "status": status, "searcher": "x", "best_val_acc": best,
            "last_val_acc": best, "epochs": 1, "wall_s": 1.0, "error": None,
            "checkpoint": None, "last/params": params,
            **{f"config/{k}": v for k, v in config.items()}}


def _it(trial_id, iteration, timestamp, value, total=1.0):
    return {"trial_id": trial_id, "iteration": iteration, "timestamp": timestamp,
            "time_total_s": total, "val_acc": value}


@pytest.fixture
def two(tmp_path):
    a = _experiment_dir(
        tmp_path, "a", {"name": "evolution", "population_size": 4},
        [_trial("a1", "complete", 0.5, 100), _trial("a2", "pruned", 0.3, 50),
         _trial("a3", "complete", 0.7, 300), _trial("a4", "failed", None, 10),
         _trial("a5", "failed", None, 20)],
        [_it("a1", 1, 1010, 0.4, 10), _it("a1", 2, 1020, 0.5, 20), _it("a2", 1, 1015, 0.3, 15),
         _it("a3", 1, 1030, 0.6, 5), _it("a3", 2, 1040, 0.7, 15),
         _it("a5", 1, 1050, float("nan"), 3)])  # a5 diverged: its one report is NaN
    b = _experiment_dir(
        tmp_path, "b", "random",
        [_trial("b1", "complete", 0.6, 200), _trial("b2", "running", 0.65, 80)],
        [_it("b1", 1, 2005, 0.6, 5), _it("b2", 1, 2010, 0.65, 4)])
    return a, b


def test_load_tags_each_row_with_its_experiment_and_searcher(two):
    runs = load(*two)
    assert runs.metric == "val_acc" and runs.mode == "max" and runs.names == ["a", "b"]
    assert list(runs.trials.columns[:2]) == ["experiment", "searcher"]
    assert runs.trials.groupby("experiment")["searcher"].first().to_dict() == {
        "a": "evolution", "b": "random"}
    assert len(runs.trials) == 7 and len(runs.iterations) == 8
    assert best_trial(runs.trials, "val_acc", "max")["trial_id"] == "a3"
    assert best_trial(runs.trials, "val_acc", "min")["trial_id"] == "a2"


def test_the_default_searcher_and_optunas_sampler_are_named(tmp_path):
    plain = _experiment_dir(tmp_path, "plain", None, [_trial("p1", "complete", 0.1)],
                            [_it("p1", 1, 1, 0.1)])
    tpe = _experiment_dir(tmp_path, "tpe", {"name": "optuna", "sampler": "cmaes"},
                          [_trial("t1", "complete", 0.1)], [_it("t1", 1, 1, 0.1)])
    assert load(plain, tpe).trials["searcher"].tolist() == ["optuna", "optuna-cmaes"]


def test_a_search_whose_trials_all_failed_before_reporting_is_reported(tmp_path, capsys):
    failed = _experiment_dir(tmp_path, "failed", "random",
                             [_trial("f1", "failed", None), _trial("f2", "failed", None)], [])
    runs = load(failed)
    assert list(runs.iterations.columns[:4]) == ["experiment", "searcher", "trial_id",
                                                 "iteration"]
    assert best_so_far(runs, by="time").empty and best_so_far(runs).empty
    assert main(["report", str(failed), "-o", str(tmp_path / "r.html")]) == 0
    assert "2 trials (2 failed)" in capsys.readouterr().out


def test_all_failed_names_failed_and_stopped_trials_and_ignores_a_usable_one(tmp_path):
    from cluster.cli_common import all_failed

    def failed(tid, error):
        return {**_trial(tid, "failed", None), "error": error}

    mixed = _experiment_dir(tmp_path, "mixed", "random",
                            [failed("f1", "metric 'acc' was missing or not finite"),
                             _trial("s1", "stopped", None)], [])
    assert all_failed(mixed) == ("every trial failed (1; 1 stopped); the first error: "
                                 "metric 'acc' was missing or not finite")
    cut = _experiment_dir(tmp_path, "cut", "random", [_trial("s1", "stopped", None)], [])
    assert "no trial reported the metric before the experiment ended (1 stopped)" in \
        all_failed(cut)
    fine = _experiment_dir(tmp_path, "fine", "random",
                           [failed("f1", "boom"), _trial("s1", "stopped", None),
                            _trial("p1", "pruned", 0.4)], [])
    assert all_failed(fine) is None


def test_experiments_with_different_goals_do_not_share_an_axis(tmp_path, two):
    c = _experiment_dir(tmp_path, "c", "random", [_trial("c1", "complete", 0.1)],
                        [_it("c1", 1, 1, 0.1)], metric="val_loss", mode="min")
    with pytest.raises(ValueError, match="different goals"):
        load(two[0], c)
    assert load(two[0], c, same_goal=False).metric == "val_acc"
    with pytest.raises(FileNotFoundError, match="not an hpnas experiment directory"):
        load(tmp_path)


def test_pareto_front_keeps_only_undominated_trials(two):
    runs = load(*two)
    front = pareto_front(runs.trials, {"best_val_acc": "max", "last/params": "min"})
    # a3 (0.7, 300), b2 (0.65, 80), a2 (0.3, 50); a1 (0.5, 100) and b1 (0.6, 200) are beaten
    # by b2; a4 failed.
    assert list(front["trial_id"]) == ["a3", "b2", "a2"]
    with pytest.raises(ValueError, match="no column 'flops'"):
        pareto_front(runs.trials, {"flops": "min"})


def test_best_so_far_against_trials_and_time(two):
    runs = load(*two)
    by_trials = best_so_far(runs, by="trials")
    a = by_trials[by_trials["experiment"] == "a"]
    # ended in order a2 (1015), a1 (1020), a3 (1040), a5 (1050, failed: a trial spent, the
    # best carries over); a4 failed without reporting and has no time
    assert a["x"].tolist() == [1, 2, 3, 4] and a["best"].tolist() == [0.3, 0.5, 0.7, 0.7]
    by_time = best_so_far(runs, by="time")
    a = by_time[by_time["experiment"] == "a"]
    # the first trial started at 1010 - 10 = 1000
    assert a["x"].tolist() == [10, 15, 20, 30, 40]
    assert a["best"].tolist() == [0.4, 0.4, 0.5, 0.6, 0.7]
    b = by_time[by_time["experiment"] == "b"]
    assert b["x"].tolist() == [5, 10] and b["best"].tolist() == [0.6, 0.65]


def test_fanova_importance_finds_the_parameter_that_matters():
    from results.report import param_importance

    rng = np.random.default_rng(0)
    rows = []
    for i in range(40):
        lr, width, opt = rng.uniform(1e-3, 1e-1), int(rng.integers(1, 5)), rng.choice(["a", "b"])
        rows.append(_trial(f"t{i}", "complete", float(np.log10(lr) + 0.01 * rng.normal()),
                           lr=lr, width=width, opt=str(opt)))
    scores = param_importance(pd.DataFrame(rows), "val_acc", "max")
    assert scores.index[0] == "lr" and scores["lr"] > 0.8
    assert abs(scores.sum() - 1) < 1e-6
    with pytest.raises(ValueError, match="at least 4 complete trials"):
        param_importance(pd.DataFrame(rows[:3]), "val_acc", "max")


def _not_blank(png: bytes) -> bool:
    import io

    import matplotlib.image

    pixels = matplotlib.image.imread(io.BytesIO(png), format="png")[..., :3]
    colours = len(np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0))
    return float(pixels.std()) > 0.03 and colours > 20


def test_a_running_experiment_is_reported_as_a_snapshot(two, tmp_path, capsys):
    out = tmp_path / "running.html"
    assert main(["report", str(two[1]), "-o", str(out), "--cost", "flops"]) == 2
    assert "--cost is 'flops', but the trials have no such column" in capsys.readouterr().err
    assert not out.exists()
    assert main(["report", str(two[1]), "-o", str(out)]) == 0
    page = out.read_text()
    assert "still running" in page and len(re.findall(r"<img ", page)) == 6


def test_exports_as_csv_json_and_parquet(two, tmp_path, capsys):
    assert main(["results", *map(str, two), "--format", "csv"]) == 0
    csv = capsys.readouterr().out
    assert csv.splitlines()[0].startswith("experiment,searcher,trial_id,status")
    assert len(csv.strip().splitlines()) == 8
    assert main(["results", str(two[0]), "--format", "json", "--iterations"]) == 0
    text = capsys.readouterr().out
    records = json.loads(text)
    assert len(records) == 6 and records[0]["experiment"] == "a" and "\\/" not in text
    assert main(["results", str(two[0]), "--format", "json"]) == 0
    trials = json.loads(capsys.readouterr().out)
    assert trials[3]["trial_id"] == "a4" and trials[3]["best_val_acc"] is None  # NaN -> null
    out = tmp_path / "t.parquet"
    assert main(["results", *map(str, two), "--format", "parquet", "--output", str(out)]) == 0
    assert pd.read_parquet(out)["trial_id"].tolist() == ["a1", "a2", "a3", "a4", "a5", "b1",
                                                         "b2"]
    assert main(["results", str(two[0]), "--format", "parquet"]) == 2
    assert "give it --output FILE" in capsys.readouterr().err
    assert main(["results", str(two[0]), "--iterations"]) == 2
    assert "--iterations goes with --format" in capsys.readouterr().err
    assert main(["results", str(two[0]), "--epochs", "3"]) == 2
    assert "--epochs goes with --best-config" in capsys.readouterr().err




@pytest.fixture(scope="module")
def real_pair(tmp_path_factory, local_ray):
    """Two small real searches of the seed's CNN on a real Fashion-MNIST subset (Optuna TPE +
    ASHA, and random + ASHA)."""
    from cluster.runner import run_experiment
    from cluster.spec import spec_from_mapping

    tmp = tmp_path_factory.mktemp("report")
    root = shared_data("fashion-mnist")
    dirs = []
    for searcher in ("optuna", "random"):
        spec = spec_from_mapping({
            "name": f"cnn-{searcher}", "trainable": "cifar_cnn", "searcher": searcher,
            "scheduler": {"name": "asha", "grace_period_epochs": 1, "reduction_factor": 2},
            "samples": 6, "max_concurrent_trials": 2, "seed": 0,
            "space": {"name": "cifar_cnn", "overrides": {"num_conv_layers": {"high": 2}}},
            "data": {"name": "fashion_mnist", "root": str(root), "train_size": 400,
                     "val_size": 200, "test_size": 100},
            "train": {"epochs": 3, "batch_size": 50}, "storage": str(tmp / "results")})
        dirs.append(run_experiment(spec, quiet=True))
    return dirs


@pytest.mark.ray
@pytest.mark.slow
def test_report_of_two_real_searches_renders_every_plot(real_pair, tmp_path, capsys):
    out, pngs = tmp_path / "cmp.html", tmp_path / "png"
    assert main(["report", *map(str, real_pair), "-o", str(out), "--png-dir", str(pngs)]) == 0
    assert "report of 2 experiment(s), 12 trials" in capsys.readouterr().out
    page = out.read_text()
    images = re.findall(r'<img alt="(\w+)" src="data:image/png;base64,([^"]+)"', page)
    assert [name for name, _ in images] == ["best_so_far_time", "best_so_far_trials",
                                            "learning_curves", "parallel_coordinates",
                                            "importance", "pareto"]
    for name, data in images:
        png = base64.b64decode(data)
        assert png == (pngs / f"{name}.png").read_bytes()
        assert _not_blank(png), name
    assert "no importance yet" not in page and "cnn-optuna" in page and "cnn-random" in page
    curves = best_so_far(load(*real_pair), by="time")
    assert set(curves["searcher"]) == {"optuna", "random"}


@pytest.mark.ray
@pytest.mark.slow
def test_best_config_retrains_with_hpnas_run(real_pair, tmp_path, capsys):
    directory = real_pair[0]
    best = best_trial(load(directory).trials, "val_acc", "max")
    path = tmp_path / "best.yaml"
    assert main(["results", str(directory), "--best-config", str(path), "--epochs", "1"]) == 0
    experiment = yaml.safe_load(path.read_text())
    assert experiment["samples"] == 1 and experiment["train"]["epochs"] == 1
    assert main(["run", str(path), "--no-dashboard", "--storage", str(tmp_path / "retrain"),
                 "--progress-interval", "1000"]) == 0
    (retrain,) = (tmp_path / "retrain").iterdir()
    trials = pd.read_parquet(retrain / "trials.parquet")
    assert len(trials) == 1 and trials["status"].iloc[0] == "complete"
    for column in [c for c in best.index if c.startswith("config/")]:
        if pd.notna(best[column]):
            assert trials[column].iloc[0] == best[column], column
    assert main(["results", str(directory), "--best-config", str(path), "--trial", "nope"]) == 2
    assert "no such trial" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    assert main(["results", str(directory), "--best-config", str(bad), "--epochs", "0"]) == 2
    assert "the retraining experiment would be invalid: `train.epochs`" in capsys.readouterr().err
    assert not bad.exists()


def _slow_curve(config, settings=None):
    """Three 1.5-second epochs of a made-up learning curve, a checkpoint each."""
    import time

    from trainables.loop import load_state, report_epoch

    start = (load_state() or {"epoch": 0})["epoch"]
    width = float(sum(len(str(v)) for v in config.values()))
    for epoch in range(start + 1, 4):
        time.sleep(1.5)
        report_epoch({"val_acc": 1 - 1 / (epoch + width / 50), "params": width * 1000},
                     {"epoch": epoch})


@pytest.mark.ray
@pytest.mark.slow
def test_report_while_the_experiment_runs(tmp_path, local_ray, capsys):
    import threading
    import time

    from cluster.runner import run_experiment
    from cluster.spec import spec_from_mapping

    spec = spec_from_mapping({"name": "live", "trainable": "nb201", "searcher": "random",
                              "scheduler": "fifo", "samples": 6, "max_concurrent_trials": 2,
                              "storage": str(tmp_path / "results")})
    errors: list[BaseException] = []

    def run() -> None:
        try:
            run_experiment(spec, quiet=True, trainable_fn=_slow_curve)
        except BaseException as e:  # noqa: BLE001 - reported by the assertion below
            errors.append(e)

    driver = threading.Thread(target=run)
    driver.start()
    try:
        trials = spec.directory.local / "trials.parquet"
        deadline = time.monotonic() + 120
        # Mid-run: some trial has ended (the files exist) and the search is not over.
        while not (trials.exists() and driver.is_alive()
                   and (pd.read_parquet(trials)["status"] != "running").any()):
            assert time.monotonic() < deadline and driver.is_alive(), errors
            time.sleep(0.2)
        out = tmp_path / "live.html"
        assert main(["report", str(spec.directory), "-o", str(out)]) == 0
        assert driver.is_alive()  # the report was made while the search ran
    finally:
        driver.join(timeout=180)
    assert not errors, errors
    page = out.read_text()
    assert len(re.findall(r"<img ", page)) == 6
    done = len(pd.read_parquet(spec.directory.local / "trials.parquet"))
    reported = int(re.search(r"report of 1 experiment\(s\), (\d+) trials",
                             capsys.readouterr().out).group(1))
    assert 0 < reported <= done == 6


def test_best_config_of_a_widened_range_is_accepted_by_hpnas_run(tmp_path):
    import numpy as np

    from cluster.best import retrain_experiment
    from cluster.spec import spec_from_mapping

    directory = tmp_path / "wide"
    directory.mkdir()
    (directory / ExperimentDir.SPEC_FILE).write_text(yaml.safe_dump({
        "name": "wide", "trainable": "cifar_cnn", "searcher": "random",
        "space": {"name": "cifar_cnn", "overrides": {"lr": {"high": 0.1},
                                                     "num_filter_0": {"high": 128}}}}))
    row = _trial("w1", "complete", 0.9, lr=0.05, num_conv_layers=1, num_fc_layers=1,
                 num_filter_0=128, num_filter_1=None, optimizer="Adam")
    write_parquet(pd.DataFrame([{**row, "searcher": "random"}]), directory / "trials.parquet")
    experiment, trial_id = retrain_experiment(ExperimentDir(directory))
    assert trial_id == "w1"
    spec = spec_from_mapping(experiment, check_data=False)  # what `hpnas run` does with it
    config = spec.space.sample(np.random.default_rng(0))
    assert config == {"num_conv_layers": 1, "num_filter_0": 128, "num_fc_layers": 1,
                      "optimizer": "Adam", "lr": 0.05}
