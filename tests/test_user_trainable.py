"""A user's own trainable and a space written in the experiment file: bad input before Ray, the
example project searched end to end, run-time failures, results and tools."""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import yaml

from cluster.cli import main
from conftest import write_idx

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "user_model"

# A project of the user's: a trainable that reports a value computed from its config, fails
# on purpose for some configs, and checkpoints.
PROJECT = '''
import math
import os
import tempfile

from ray import tune

from helpers import score  # a sibling module of the user's


def fit(config, epochs=3, offset=0.0):
    if config["kind"] == "crash":
        raise RuntimeError("user code failed on purpose")
    start = 1
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            start = int(open(os.path.join(folder, "epoch")).read()) + 1
    for epoch in range(start, epochs + 1):
        value = score(config, epoch) + offset
        metrics = {"epoch": epoch}
        if config["kind"] == "nan":
            metrics["acc"] = math.nan
        elif config["kind"] != "silent":
            metrics["acc"] = value
        with tempfile.TemporaryDirectory() as folder:
            with open(os.path.join(folder, "epoch"), "w") as f:
                f.write(str(epoch))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))
'''
HELPERS = '''
def score(config, epoch):
    depth = config["depth"]
    widths = sum(config[f"w_{k}"] for k in range(1, depth + 1))
    return epoch * (config["lr"] * 10 + widths / 100)
'''
SPACE = {"lr": {"float": [0.01, 0.1], "log": True},
         "kind": ["ok", "ok2", "crash", "nan", "silent"],
         "depth": {"int": [1, 3]},
         "w": {"choice": [8, 16, 32], "per": "depth"},
         "momentum": {"float": [0.5, 0.9], "when": {"kind": "ok2"}}}


def _project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "train.py").write_text(textwrap.dedent(PROJECT))
    (folder / "helpers.py").write_text(textwrap.dedent(HELPERS))
    return folder


def _experiment(tmp_path: Path, **changes) -> dict:
    experiment = {"trainable": "train.py:fit", "metric": "acc", "mode": "max", "max_epochs": 3,
                  "train": {"epochs": 3, "offset": 0.5}, "space": SPACE, "samples": 10,
                  "searcher": "random", "scheduler": "fifo", "max_concurrent_trials": 2,
                  "seed": 1, "name": "mine", "storage": str(tmp_path / "runs")}
    experiment.update(changes)
    return experiment


def _write(folder: Path, experiment: dict, name: str = "experiment.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(experiment, sort_keys=False))
    return path


BAD = [
    ({"trainable": "nope.py:fit"}, "nope.py does not exist"),
    ({"trainable": "no_such_module_here:fit"}, "module 'no_such_module_here' is not in the code"),
    ({"trainable": "broken.py:fit"}, "importing broken failed: ModuleNotFoundError: No module "
                                     "named 'not_a_real_package'"),
    ({"trainable": "train.py:fitt"}, "has no 'fitt'. Did you mean 'fit'?"),
    ({"trainable": "train.py:math"}, "is a module, not a function"),
    ({"trainable": "noargs.py:fit"}, "takes no config"),
    ({"trainable": "train.py:fit", "train": {"batch": 3}}, "`train.batch` is set, but fit"),
    ({"trainable": "needs.py:fit", "train": None}, "needs 'data_dir', but `train` does not set it"),
    ({"trainable": "train.py"}, "Your own function: `module:function` or `path/to/file.py"),
    ({"metric": None}, "`metric` is not set; a trainable of your own needs"),
    ({"mode": None}, "`mode` is not set"),
    ({"mode": "maximise"}, "`mode` is 'maximise', but must be 'max' or 'min'"),
    ({"space": None}, "`space` is not set; a trainable of your own needs its space"),
    ({"space": {"lr": {"floot": [0.1, 1.0]}}}, "Did you mean 'float'?"),
    ({"space": {"lr": {"float": [0.1, 0.01]}}}, "`space.lr`"),
    ({"space": {"lr": {"float": [0.0, 0.1], "log": True}}}, "must be > 0 on a log scale"),
    ({"space": {"kind": []}}, "`space.kind.choices` is empty"),
    ({"space": {"w": {"int": [1, 4], "when": {"depth": {">=": 2}}}, "depth": {"int": [1, 3]}}},
     "defined before"),
    ({"space": {"depth": {"int": [1, 3]}, "w": {"int": [1, 4], "when": {"dpth": 2}}}},
     "Did you mean 'depth'?"),
    ({"scheduler": "asha", "max_epochs": None, "train": {"offset": 0.5}},
     "`max_epochs` is not set, but scheduler 'asha'"),
    ({"max_epochs": 0}, "`max_epochs` is 0, but must be an integer >= 1"),
    ({"code": "nowhere"}, "is not a folder"),
    ({"data": {"name": "fashion_mnist"}}, "takes its dataset settings in `train:`"),
]


@pytest.mark.parametrize("change,message", [pytest.param(c, m, id=m[:40]) for c, m in BAD])
def test_bad_user_experiment_is_one_line_before_ray(tmp_path, capsys, change, message):
    import ray

    folder = _project(tmp_path)
    (folder / "broken.py").write_text("import not_a_real_package\n")
    (folder / "noargs.py").write_text("def fit():\n    pass\n")
    (folder / "needs.py").write_text("def fit(config, data_dir):\n    pass\n")
    experiment = {k: v for k, v in {**_experiment(tmp_path), **change}.items() if v is not None}
    assert main(["run", str(_write(folder, experiment))]) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("hpnas: error: ")
    assert not ray.is_initialized()


def test_duplicate_keys_are_refused(tmp_path, capsys):
    folder = _project(tmp_path)
    path = folder / "e.yaml"
    path.write_text(yaml.safe_dump(_experiment(tmp_path)) + "metric: other\n")
    assert main(["run", str(path)]) == 2
    assert "`metric` is given twice" in capsys.readouterr().err


@pytest.mark.ray
@pytest.mark.slow
def test_user_trainable_runs_fails_honestly_and_resumes_nothing_twice(tmp_path, local_ray,
                                                                      capsys):
    """Plain Ray Tune code in its own folder: configs that crash, never report the metric or
    report NaN end as failed trials with their reason, the others complete; results, report
    and best-config work; evaluate says it needs a built-in trainable."""
    folder = _project(tmp_path)
    path = _write(folder, _experiment(tmp_path, samples=14))
    assert main(["run", str(path), "--progress-interval", "1000"]) == 0
    directory = tmp_path / "runs" / "mine"
    trials = pd.read_parquet(directory / "trials.parquet")
    assert len(trials) == 14 and trials["trial_id"].is_unique
    by_kind = trials.groupby("config/kind")["status"].agg(set).to_dict()
    assert by_kind == {"ok": {"complete"}, "ok2": {"complete"}, "crash": {"failed"},
                       "nan": {"failed"}, "silent": {"failed"}}
    errors = trials.set_index("config/kind")["error"]
    assert errors.loc[["crash"]].str.contains("user code failed on purpose").all()
    assert errors.loc[["nan"]].str.contains("not finite").all()
    assert errors.loc[["silent"]].str.contains("missing or not finite").all()
    ok = trials[trials["status"] == "complete"]
    for _, row in ok.iterrows():  # the sibling module's score, the `train:` offset
        depth = int(row["config/depth"])
        widths = sum(row[f"config/w_{k}"] for k in range(1, depth + 1))
        assert math.isclose(row["last_acc"], 3 * (row["config/lr"] * 10 + widths / 100) + 0.5)
        assert all(pd.isna(row[f"config/w_{k}"]) for k in range(depth + 1, 4))
    assert (ok["epochs"] == 3).all() and len(ok) >= 3
    capsys.readouterr()

    assert main(["results", str(directory), "--top", "3"]) == 0
    assert "top 3 by acc (max)" in capsys.readouterr().out
    assert main(["report", str(directory)]) == 0
    assert (directory / "report.html").stat().st_size > 10_000
    best = tmp_path / "best.yaml"
    assert main(["results", str(directory), "--best-config", str(best), "--epochs", "2"]) == 0
    retrain = yaml.safe_load(best.read_text())
    top = ok.sort_values("best_acc").iloc[-1]
    assert retrain["space"]["depth"] == int(top["config/depth"])
    assert retrain["max_epochs"] == 2 and retrain["train"]["epochs"] == 2
    assert retrain["trainable"] == "train.py:fit" and retrain["code"]["dir"] == str(folder)
    capsys.readouterr()
    assert main(["run", str(best), "--storage", str(tmp_path / "re"),
                 "--progress-interval", "1000"]) == 0
    again = pd.read_parquet(tmp_path / "re" / retrain["name"] / "trials.parquet")
    assert math.isclose(again["last_acc"].iloc[0],
                        top["last_acc"] - (top["config/lr"] * 10 + sum(
                            top[f"config/w_{k}"] for k in range(1, int(top["config/depth"]) + 1)
                        ) / 100))  # 2 epochs instead of 3
    assert main(["evaluate", str(directory)]) == 2
    assert "is your own; `hpnas evaluate` runs" in capsys.readouterr().err


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.parametrize("searcher", ["optuna", "evolution"])
def test_the_example_project_searches_with_asha(tmp_path, local_ray, searcher):
    """examples/user_model (a torch CNN of the user's, an inline conditional space) through
    the Python entry point, with ASHA, on a tiny Fashion-MNIST in the real file format."""
    from cluster import run

    data = write_idx(tmp_path / "fmnist", n_train=700, n_test=10)
    experiment = yaml.safe_load((EXAMPLE / "experiment.yaml").read_text())
    experiment["train"].update(data_dir=str(data), train_size=500, val_size=200, epochs=3)
    experiment.update(max_epochs=3, samples=6, searcher=searcher, name=f"ex-{searcher}",
                      storage=str(tmp_path / "runs"),
                      scheduler={"name": "asha", "grace_period_epochs": 1,
                                 "reduction_factor": 2})
    result = run(experiment, base_dir=EXAMPLE, quiet=True)
    trials, iterations = result.load()
    assert len(trials) == 6 and set(trials["status"]) <= {"complete", "pruned"}
    assert (trials["status"] == "pruned").any() and (trials["status"] == "complete").any()
    assert (trials.loc[trials["status"] == "pruned", "epochs"] < 3).all()
    assert {"config/op_1", "config/width_1", "config/layers"} <= set(trials.columns)
    assert trials["best_val_acc"].between(0, 1).all()  # learning: tests/test_user_model.py
    assert iterations.groupby("trial_id")["epoch"].max().sum() == trials["epochs"].sum()
    saved = json.loads(json.dumps(result.settings()))
    assert saved["code"]["dir"] == str(EXAMPLE) and saved["max_epochs"] == 3
