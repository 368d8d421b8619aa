"""Hyperband, BOHB, PBT and PB2: options, pairing rules, pausing, and what PBT needs from a
trainable (continuing another config's checkpoint with its own hyperparameters)."""

from __future__ import annotations

import io
import math
import pickle

import pytest
import torch
from conftest import write_idx

from cluster.spec import SpecError, spec_from_mapping
from search import make_scheduler, make_searcher
from search.pausing import PauseAwareLimiter
from spaces import get_space
from trainables.cnn import CnnSettings, cnn_run
from trainables.data import DataSettings
from trainables.gan import SEED_CONFIG, GanRun, GanSettings


def _through_bytes(state):
    buffer = io.BytesIO()  # as a real checkpoint is
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


# -- PBT: a run continues another config's checkpoint with its own hyperparameters ---------

CNN = {"num_conv_layers": 2, "num_fc_layers": 2, "num_filter_0": 40, "num_filter_1": 40,
       "num_neurons_0": 32, "optimizer": "Adam", "lr": 0.003}


def _cnn(tmp_path, config, **settings):
    root = write_idx(tmp_path / "fm", n_train=400, n_test=100)
    s = CnnSettings(data=DataSettings(name="fashion_mnist", root=str(root), val_size=100),
                    epochs=3, batch_size=32, **settings)
    return cnn_run(config, s, torch.device("cpu"))


@pytest.mark.parametrize("schedule", ["constant", "warmup_cosine"])
def test_cnn_continues_a_donor_checkpoint_with_its_own_lr(tmp_path, schedule):
    donor = _cnn(tmp_path, CNN, lr_schedule=schedule)
    donor.train_epoch()
    state = _through_bytes(donor.state())
    fresh = _cnn(tmp_path, {**CNN, "lr": 0.001}, lr_schedule=schedule)
    expected_factor = donor.optimizer.param_groups[0]["lr"] / 0.003  # the schedule at this step
    fresh.load(state)
    assert fresh.epoch == donor.epoch == 1
    for a, b in zip(donor.model.parameters(), fresh.model.parameters()):
        assert torch.equal(a, b)  # the donor's weights
    group = fresh.optimizer.param_groups[0]
    assert group["lr"] == pytest.approx(0.001 * expected_factor)  # its own lr, at the step
    assert fresh.scheduler.base_lrs == [0.001]
    moments = fresh.optimizer.state[next(iter(fresh.model.parameters()))]
    assert int(moments["step"]) > 0  # the donor's Adam moments came along
    fresh.train_epoch()
    assert fresh.epoch == 2


def test_cnn_continues_a_donor_of_another_optimiser_with_fresh_moments(tmp_path):
    donor = _cnn(tmp_path, CNN)
    donor.train_epoch()
    state = _through_bytes(donor.state())
    fresh = _cnn(tmp_path, {**CNN, "optimizer": "SGD", "lr": 0.01})
    fresh.load(state)
    assert type(fresh.optimizer).__name__ == "SGD" and not fresh.optimizer.state
    assert fresh.optimizer.param_groups[0]["lr"] == pytest.approx(0.01)
    for a, b in zip(donor.model.parameters(), fresh.model.parameters()):
        assert torch.equal(a, b)
    assert math.isfinite(fresh.train_epoch())  # trains on


@pytest.fixture
def tiny_mnist(tmp_path, monkeypatch):
    monkeypatch.setenv("HPNAS_CACHE", str(tmp_path / "cache"))
    root = write_idx(tmp_path / "mnist", n_train=256, n_test=100)
    return DataSettings(name="mnist", root=str(root), val_size=100)


def test_gan_continues_a_donor_checkpoint_with_its_own_rates_and_betas(tiny_mnist):
    settings = GanSettings(data=tiny_mnist, epochs=2, eval_samples=100)
    donor = GanRun({**SEED_CONFIG, "batch_size": 64}, settings, torch.device("cpu"))
    donor.train_epoch()
    state = _through_bytes(donor.state())
    mutated = {**SEED_CONFIG, "batch_size": 64, "lr_g": 1e-4, "lr_d": 5e-4, "beta1": 0.9}
    fresh = GanRun(mutated, settings, torch.device("cpu"))
    fresh.load(state)
    assert fresh.epoch == 1
    for a, b in zip(donor.gen.parameters(), fresh.gen.parameters()):
        assert torch.equal(a, b)
    assert fresh.opt_g.param_groups[0]["lr"] == 1e-4
    assert fresh.opt_d.param_groups[0]["lr"] == 5e-4
    assert fresh.opt_g.param_groups[0]["betas"][0] == 0.9
    assert fresh.opt_g.state  # the donor's moment estimates
    fresh.train_epoch()
    assert fresh.epoch == 2


# -- options and pairing --------------------------------------------------------------------

def _spec(**fields):
    return spec_from_mapping({"trainable": "nb201", "samples": 8, **fields})


def test_bohb_pairs_with_its_searcher_by_default():
    spec = _spec(scheduler="bohb")
    assert (spec.searcher, spec.scheduler) == ("bohb", "bohb")
    assert spec.raw["searcher"] == "bohb"
    with pytest.raises(SpecError, match="BOHB is a pair"):
        _spec(scheduler="bohb", searcher="optuna")
    with pytest.raises(SpecError, match="BOHB is a pair"):
        _spec(scheduler="asha", searcher="bohb")


def test_bohb_without_its_packages_is_one_line(monkeypatch):
    from search import bohb

    real_import = __import__

    def no_hpbandster(name, *args, **kwargs):
        if name == "hpbandster":
            raise ImportError("No module named 'hpbandster'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr("builtins.__import__", no_hpbandster)
    assert "pip install 'hpnas[bohb]'" in bohb.missing_bohb_packages()
    with pytest.raises(SpecError, match=r"hpnas\[bohb\]") as e:
        _spec(scheduler="bohb")
    assert "\n" not in str(e.value)


def test_pbt_takes_random_by_default_and_refuses_learning_searchers():
    spec = spec_from_mapping({"trainable": "cifar_cnn", "samples": 4,
                              "scheduler": {"name": "pbt", "mutate": ["lr"]}}, check_data=False)
    assert spec.searcher == "random"
    with pytest.raises(SpecError, match="changes configs while trials train"):
        spec_from_mapping({"trainable": "cifar_cnn", "samples": 4, "searcher": "evolution",
                           "scheduler": {"name": "pbt", "mutate": ["lr"]}}, check_data=False)


@pytest.mark.parametrize("scheduler,message", [
    ({"name": "pbt", "mutate": ["num_conv_layers"]}, "cannot continue another trial's checkpoint"),
    ({"name": "pbt", "mutate": ["lrr"]}, "not a parameter of the space"),
    ({"name": "pbt"}, "must be a list of the space's parameter names"),
    ({"name": "pbt", "mutate": ["lr"], "quantile": 0.2}, "not an option"),
    ({"name": "pbt", "mutate": ["lr"], "perturbation_interval_epochs": 0}, ">= 1"),
    ({"name": "pb2", "mutate": ["optimizer"]}, "numeric parameters only"),
    ({"name": "hyperband", "reduction_factor": 1}, "> 1"),
])
def test_bad_scheduler_options_are_one_line(scheduler, message):
    with pytest.raises(SpecError, match=message) as e:
        spec_from_mapping({"trainable": "cifar_cnn", "samples": 4, "scheduler": scheduler},
                          check_data=False)
    assert "\n" not in str(e.value)


def test_pbt_needs_a_population():
    with pytest.raises(SpecError, match="population"):
        spec_from_mapping({"trainable": "cifar_cnn", "samples": None, "time_budget_s": 60,
                           "scheduler": {"name": "pbt", "mutate": ["lr"]}}, check_data=False)


def test_pbt_keeps_mutations_inside_the_space():
    space = get_space("cifar_cnn")
    pbt = make_scheduler("pbt", metric="val_acc", mode="max", max_epochs=9, space=space,
                         options={"mutate": ["lr"], "resample_probability": 0.0})
    config = {"lr": space["lr"].high}
    for _ in range(20):  # x1.2 from the top would leave the range
        config = pbt._custom_explore_fn({"lr": config["lr"] * 1.2})
        assert space["lr"].low <= config["lr"] <= space["lr"].high


# -- BOHB's model and Hyperband's pauses ----------------------------------------------------

def test_bohb_searcher_proposes_valid_configs_of_a_conditional_space_and_learns():
    space = get_space("cifar_cnn")
    searcher = make_searcher("bohb", space=space, metric="val_acc", mode="max", seed=0,
                             max_epochs=9, options={"random_fraction": 0.0})
    lrs = []
    for i in range(40):
        config = searcher.suggest(str(i))
        space.validate(config)
        lrs.append(config["lr"])
        for epoch in (1, 2, 3):  # a higher lr scores higher
            searcher.on_trial_result(str(i), {"val_acc": config["lr"] * 10,
                                              "training_iteration": epoch})
        searcher.on_trial_complete(str(i), {"val_acc": config["lr"] * 10,
                                            "training_iteration": 3})
    early, late = sum(lrs[:10]) / 10, sum(lrs[-10:]) / 10
    assert late > early  # the model moved towards what scored well
    restored = pickle.loads(pickle.dumps(searcher))
    space.validate(restored.suggest("x"))


def test_pause_aware_limiter_does_not_count_paused_trials():
    space = get_space("nb201")
    limiter = PauseAwareLimiter(make_searcher("random", space=space, metric="val_acc",
                                              mode="max", seed=0), max_concurrent=2)
    assert limiter.suggest("a") and limiter.suggest("b")
    assert limiter.suggest("c") is None  # two live
    limiter.on_pause("a")
    assert limiter.suggest("c")  # a waits for its bracket: room for another
    limiter.on_unpause("a")
    assert limiter.suggest("d") is None
    limiter.on_pause("b")
    limiter.on_trial_complete("b", {"val_acc": 0.5, "training_iteration": 1})
    assert limiter.searcher.outcomes["b"] is not None  # a stopped paused trial is still told


# -- end to end through `hpnas run`, on a user trainable that checkpoints ---------------------

PROJECT = '''
import json
import os
import tempfile

from ray import tune


def fit(config, epochs=6):
    """Progress is the sum of the learning rates it trained with: a trial that continues a
    better trial's checkpoint keeps that trial's progress."""
    state = {"epoch": 0, "w": 0.0}
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            with open(os.path.join(folder, "state.json")) as f:
                state = json.load(f)
    while state["epoch"] < epochs:
        state["epoch"] += 1
        state["w"] += config["lr"] + 0.01 * config["depth"]
        with tempfile.TemporaryDirectory() as folder:
            with open(os.path.join(folder, "state.json"), "w") as f:
                json.dump(state, f)
            tune.report({"acc": state["w"], "lr_used": config["lr"]},
                        checkpoint=tune.Checkpoint.from_directory(folder))
'''


def _user_run(tmp_path, name, scheduler, samples, epochs, **changes):
    from cluster.cli import main

    folder = tmp_path / "project"
    folder.mkdir(exist_ok=True)
    (folder / "train.py").write_text(PROJECT)
    experiment = {"trainable": "train.py:fit", "metric": "acc", "mode": "max",
                  "max_epochs": epochs, "train": {"epochs": epochs},
                  "space": {"lr": {"float": [0.01, 1.0], "log": True}, "depth": {"int": [1, 3]}},
                  "samples": samples, "scheduler": scheduler, "max_concurrent_trials": 2,
                  "seed": 3, "name": name, "storage": str(tmp_path / "runs"), **changes}
    path = folder / f"{name}.yaml"
    import yaml

    path.write_text(yaml.safe_dump(experiment, sort_keys=False))
    assert main(["run", str(path), "--progress-interval", "1000"]) == 0
    import pandas as pd

    directory = tmp_path / "runs" / name
    return (pd.read_parquet(directory / "trials.parquet"),
            pd.read_parquet(directory / "iterations.parquet"))


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.parametrize("scheduler", ["hyperband", "bohb"])
def test_hyperband_and_bohb_run_brackets_with_fewer_workers_than_a_bracket(
        tmp_path, local_ray, scheduler):
    """9 epochs, reduction factor 3: brackets of 3, 5 and 9 trials on 2 concurrent trials (the
    paused ones waiting for their bracket), some stopped at a rung, every trial in the results."""
    trials, iterations = _user_run(tmp_path, scheduler, scheduler, samples=12, epochs=9)
    assert len(trials) == 12 and trials["trial_id"].is_unique
    assert set(trials["status"]) <= {"complete", "pruned"}
    assert (trials["status"] == "pruned").any() and (trials["status"] == "complete").any()
    rungs = set(trials.loc[trials["status"] == "pruned", "epochs"])
    assert rungs <= {1, 3}  # Hyperband's rungs for 9 epochs and factor 3
    assert (trials["epochs"] == 1).sum() >= 3  # the 9-trial bracket filled before halving
    assert trials["searcher"].iloc[0] == ("bohb" if scheduler == "bohb" else "optuna")
    assert iterations.groupby("trial_id")["iteration"].max().sum() == trials["epochs"].sum()


@pytest.mark.ray
@pytest.mark.slow
def test_pbt_exploits_checkpoints_and_records_the_schedule(tmp_path, local_ray):
    trials, iterations = _user_run(
        tmp_path, "pbt", {"name": "pbt", "mutate": ["lr"], "perturbation_interval_epochs": 2,
                          "quantile_fraction": 0.5}, samples=4, epochs=6)
    assert len(trials) == 4 and set(trials["status"]) == {"complete"}
    assert trials["searcher"].iloc[0] == "random"
    changed = trials[trials["config_changes"].fillna(0) > 0]
    assert len(changed) >= 1  # the bottom half continued the top half's checkpoints
    for _, row in changed.iterrows():
        its = iterations[iterations["trial_id"] == row["trial_id"]].sort_values(
            ["config_changes", "iteration"], na_position="first", kind="stable")
        assert row["config/lr"] == its["lr_used"].iloc[-1]  # the row holds the final config
        after = its.dropna(subset=["config/lr"])
        assert (after["config/lr"] == after["lr_used"]).all()  # it trained with its new lr
        assert after["config_changes"].max() == row["config_changes"]
        assert 0.01 <= row["config/lr"] <= 1.0
    # a trial that exploited ended ahead of what its own first lr alone would give
    first = iterations[iterations["config_changes"].isna()].sort_values("iteration").groupby(
        "trial_id")["lr_used"].first()
    gains = [row["last_acc"] > 6 * (first[row["trial_id"]] + 0.01 * row["config/depth"]) + 1e-9
             for _, row in changed.iterrows()]
    assert any(gains)


class _FakeTrial:
    def __init__(self, trial_id, status):
        self.trial_id, self.status = trial_id, status


def test_hyperband_keeps_ended_trials_of_a_restored_experiment_out_of_its_brackets():
    from ray.tune.experiment import Trial

    from search.pausing import Hyperband

    scheduler = Hyperband(time_attr="training_iteration", metric="acc", mode="max", max_t=9,
                          reduction_factor=3)
    ended = [_FakeTrial(f"e{i}", Trial.TERMINATED if i % 2 else Trial.ERROR) for i in range(5)]
    waiting = [_FakeTrial(f"w{i}", Trial.PENDING) for i in range(4)]
    for trial in ended + waiting:
        scheduler.on_trial_add(None, trial)
    assert set(scheduler._trial_info) == set(waiting)
    bracket = scheduler._trial_info[waiting[0]][0]
    assert bracket._n0 == 9 and not bracket.filled()  # 4 of its 9: it waits for 5 more
    scheduler.on_trial_remove(None, ended[0])  # an ended trial it never took: ignored
    scheduler.on_trial_error(None, waiting[0])  # one of its own errs before the bracket is full
    assert waiting[0] not in bracket._live_trials and not bracket.is_being_processed
    for i in range(5):
        scheduler.on_trial_add(None, _FakeTrial(f"n{i}", Trial.PENDING))
    assert bracket.filled() and len(bracket._all_trials) == 9
    scheduler.on_trial_add(None, _FakeTrial("next", Trial.PENDING))
    assert scheduler._state["bracket"] is not bracket  # the next bracket opened


def test_configspace_conversion_keeps_every_condition():
    from search.bohb import to_configspace
    from spaces.space import Categorical, Condition, Float, Integer, Space

    space = Space("t", (
        Categorical("bn", (True, False)),
        Float("drop", 0.0, 0.5, condition=Condition("bn", "==", True)),
        Float("x", 0.1, 1.0, condition=Condition("bn", "!=", True)),
        Integer("d", 1, 4), Integer("w", 8, 32, step=8, condition=Condition("d", ">=", 2)),
        Float("k", 1.0, 1.0), Float("z", 0.0, 1.0, condition=Condition("k", ">", 0.5))))
    text = str(to_configspace(space, 0).conditions)
    assert "drop | bn == 'True'" in text and "x | bn == 'False'" in text
    assert "w | d in {2, 3, 4}" in text and "z |" not in text  # k > 0.5 always holds
    searcher = make_searcher("bohb", space=space, metric="m", mode="max", seed=0, max_epochs=3)
    seen = set()
    for i in range(30):
        config = searcher.suggest(str(i))
        space.validate(config)
        seen.add(("drop" in config, config["bn"]))
    assert seen == {(True, True), (False, False)}  # drop exactly when bn
    never = Space("n", (Categorical("bn", (True, False)),
                        Float("y", 0.0, 1.0, condition=Condition("bn", "==", "yes")),
                        Float("y2", 0.0, 1.0, condition=Condition("y", ">", 0.5))))
    assert list(to_configspace(never)) == ["bn"]  # never active, nor what depends on it
