"""The example user project, examples/user_model/model.py: a plain Ray Tune trainable, no hpnas.

The model file is loaded by path (it is a user's file, not a package) and pickled by value, so
Ray's workers rebuild it without the examples folder on their path.
"""

from __future__ import annotations

import ast
import importlib.util
import itertools
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest
import ray.cloudpickle
import torch
from conftest import write_idx
from ray import tune

MODEL_FILE = Path(__file__).resolve().parents[1] / "examples" / "user_model" / "model.py"
# Three layers (a 5x5 conv in the middle) see the whole 28x28 image, which the planted classes
# (a bright square at a class-specific place) need under global average pooling. At lr 3e-3 and
# 1e-2 they reach val_acc 0.81-1.0 by epoch 4 over seeds 0-2 (0.70-1.0 at epoch 2).
ARCH = {"layers": 3, "op_1": "conv3", "width_1": 16, "op_2": "conv5", "width_2": 16,
        "op_3": "conv3", "width_3": 32}
# Every op, and a skip that needs a projection (8 -> 16 channels); small, for the direct tests.
SMALL_ARCH = {"layers": 3, "op_1": "sep3", "width_1": 8, "op_2": "conv3", "width_2": 8,
              "op_3": "skip", "width_3": 16}
SETTINGS = {"train_size": 400, "val_size": 200, "batch_size": 32}


def _load_model_file() -> ModuleType:
    spec = importlib.util.spec_from_file_location("user_model_example", MODEL_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


user_model = _load_model_file()
ray.cloudpickle.register_pickle_by_value(user_model)


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    return write_idx(tmp_path / "fmnist", n_train=600, n_test=10)


@pytest.fixture
def one_torch_thread():
    """fit called here runs in pytest's process; torch's default of one thread per core is
    many times slower when other processes share the cores (as a 1-CPU Ray trial would not)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_model_file_imports_no_hpnas():
    imported = set()
    for node in ast.walk(ast.parse(MODEL_FILE.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert {"torch", "ray"} <= imported
    assert not imported & {"spaces", "search", "trainables", "cluster", "results"}


@pytest.mark.ray
@pytest.mark.slow
def test_fit_runs_under_plain_tune_and_learns_the_planted_classes(local_ray, planted, tmp_path):
    epochs = 4
    trainable = tune.with_parameters(user_model.fit, data_dir=str(planted), epochs=epochs,
                                     **SETTINGS)
    tuner = tune.Tuner(
        trainable,
        param_space={"lr": tune.grid_search([3e-3, 1e-2]), "optimizer": "adam", **ARCH},
        run_config=tune.RunConfig(storage_path=str(tmp_path / "ray"), name="user_model",
                                  verbose=0),
    )
    results = tuner.fit()

    assert len(results) == 2
    for result in results:
        assert result.error is None
        # Every report came with a checkpoint (and conftest turns off Tune's CSV/JSON loggers,
        # so the kept checkpoints' metrics are the trial's history).
        history = [metrics for _, metrics in result.best_checkpoints]
        assert [m["epoch"] for m in history] == list(range(1, epochs + 1))
        assert all(0 <= m["val_acc"] <= 1 for m in history)
        assert result.checkpoint is not None
        assert history[-1]["val_acc"] > 0.6  # chance is 0.1


def test_fit_resumes_after_its_checkpoint_as_if_never_stopped(planted, tmp_path, monkeypatch,
                                                               one_torch_thread):
    config = {"lr": 0.01, "optimizer": "sgd", "momentum": 0.9, **SMALL_ARCH}
    reports: list[tuple[dict, Path]] = []
    numbers = itertools.count()

    def report(metrics: dict, checkpoint: tune.Checkpoint) -> None:
        # The trainable's folder vanishes after report, as Tune would have copied it by then.
        kept = tmp_path / f"checkpoint{next(numbers)}"
        shutil.copytree(checkpoint.path, kept)
        reports.append((metrics, kept))

    monkeypatch.setattr(tune, "report", report)
    monkeypatch.setattr(tune, "get_checkpoint", lambda: None)
    user_model.fit(config, data_dir=str(planted), epochs=3, **SETTINGS)
    straight = [metrics for metrics, _ in reports]

    reports.clear()
    user_model.fit(config, data_dir=str(planted), epochs=1, **SETTINGS)
    first_checkpoint = tune.Checkpoint.from_directory(reports[0][1])
    monkeypatch.setattr(tune, "get_checkpoint", lambda: first_checkpoint)
    user_model.fit(config, data_dir=str(planted), epochs=3, **SETTINGS)
    resumed = [metrics for metrics, _ in reports]

    assert [m["epoch"] for m in straight] == [m["epoch"] for m in resumed] == [1, 2, 3]
    for a, b in zip(straight, resumed, strict=True):
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-4)
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-4)


def test_fit_raises_floating_point_error_when_the_loss_diverges(planted, monkeypatch,
                                                               one_torch_thread):
    reported: list[dict] = []
    monkeypatch.setattr(tune, "report", lambda metrics, checkpoint: reported.append(metrics))
    monkeypatch.setattr(tune, "get_checkpoint", lambda: None)
    config = {"lr": 1e30, "optimizer": "sgd", **SMALL_ARCH}
    with pytest.raises(FloatingPointError, match="diverged"):
        user_model.fit(config, data_dir=str(planted), epochs=2, **SETTINGS)
    assert reported == []  # a NaN never reaches the searcher


def test_checkpoint_round_trip_keeps_weights_optimiser_and_epoch(tmp_path):
    config = {"lr": 0.01, "optimizer": "adam", **ARCH}
    torch.manual_seed(0)
    model = user_model.build_model(config)
    optimizer = user_model.make_optimizer(config, model.parameters())
    model(torch.randn(4, 1, 28, 28)).sum().backward()
    optimizer.step()  # so Adam has moment estimates to save
    user_model.save_checkpoint(tmp_path, model, optimizer, epoch=7)

    torch.manual_seed(1)
    fresh = user_model.build_model(config)
    fresh_optimizer = user_model.make_optimizer(config, fresh.parameters())
    assert user_model.load_checkpoint(tmp_path, fresh, fresh_optimizer) == 7
    saved, loaded = model.state_dict(), fresh.state_dict()
    assert saved.keys() == loaded.keys()
    assert all(torch.equal(saved[k], loaded[k]) for k in saved)
    moments = [s["exp_avg"] for s in fresh_optimizer.state_dict()["state"].values()]
    assert len(moments) == len(list(model.parameters()))
    assert any(m.abs().sum() > 0 for m in moments)


def test_missing_data_dir_names_the_folder_and_the_package(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist") as info:
        user_model.load_fashion_mnist(missing, train_size=10, val_size=10, seed=0)
    assert str(missing) in str(info.value)


@pytest.mark.parametrize("change,key", [
    pytest.param({"op_2": "conv7"}, "op_2", id="unknown-op"),
    pytest.param({"layers": 4}, "layers", id="too-deep"),
    pytest.param({"width_1": 12.5}, "width_1", id="fractional-width"),
    pytest.param({"optimizer": "rmsprop"}, "optimizer", id="unknown-optimizer"),
    pytest.param({"optimizer": "sgd", "momentum": 1.5}, "momentum", id="momentum-above-1"),
])
def test_invalid_config_is_refused_naming_the_key(change, key):
    config = {"lr": 0.01, "optimizer": "adam", **ARCH, **change}
    with pytest.raises(ValueError, match=f"`{key}` is"):
        model = user_model.build_model(config)
        user_model.make_optimizer(config, model.parameters())
