from __future__ import annotations

import numpy as np
import optuna
import pytest

from spaces import Categorical, Condition, Float, Integer, Space, get_space


def test_cifar_cnn_space_matches_seed():
    space = get_space("cifar_cnn")
    assert space["num_conv_layers"].grid() == (1, 2, 3, 4)
    assert space["num_fc_layers"].grid() == (1, 2, 3)
    for i in range(4):
        assert space[f"num_filter_{i}"].grid() == (40, 48, 56, 64)
    for i in range(2):
        assert space[f"num_neurons_{i}"].grid() == (32, 48, 64)
    assert space["optimizer"].choices == ("Adam", "RMSprop", "SGD")
    assert (space["lr"].low, space["lr"].high, space["lr"].log) == (1e-3, 1e-2, True)
    assert "num_neurons_2" not in space.names  # 3 linear layers have 2 hidden widths


@pytest.mark.parametrize("convs,fcs", [(1, 1), (2, 3), (4, 2), (3, 1)])
def test_cnn_space_conditions_follow_depth(convs, fcs):
    space = get_space("cifar_cnn")
    partial = {"num_conv_layers": convs, "num_fc_layers": fcs}
    active = {p.name for p in space.active_params(partial)}
    assert {f"num_filter_{i}" for i in range(convs)} <= active
    assert not {f"num_filter_{i}" for i in range(convs, 4)} & active
    assert {f"num_neurons_{i}" for i in range(fcs - 1)} <= active
    assert not {f"num_neurons_{i}" for i in range(fcs - 1, 2)} & active


def test_sample_is_valid_and_seeded():
    space = get_space("cifar_cnn")
    a = [space.sample(np.random.default_rng(7)) for _ in range(3)]
    b = [space.sample(np.random.default_rng(7)) for _ in range(3)]
    assert a == b
    rng = np.random.default_rng(0)
    depths = set()
    for _ in range(200):
        cfg = space.sample(rng)
        space.validate(cfg)
        depths.add((cfg["num_conv_layers"], cfg["num_fc_layers"]))
    assert len(depths) == 12  # every depth combination is reachable


@pytest.mark.parametrize("config,message", [
    ({"num_conv_layers": 1, "num_fc_layers": 1, "optimizer": "SGD", "lr": 0.005},
     "missing the active parameter 'num_filter_0'"),
    ({"num_conv_layers": 1, "num_fc_layers": 1, "num_filter_0": 40, "num_filter_1": 40,
      "optimizer": "SGD", "lr": 0.005}, "sets 'num_filter_1', which is inactive"),
    ({"num_conv_layers": 1, "num_fc_layers": 1, "num_filter_0": 44, "optimizer": "SGD",
      "lr": 0.005}, "`num_filter_0` is 44, but must be an integer in [40, 64] with step 8"),
    ({"num_conv_layers": 1, "num_fc_layers": 1, "num_filter_0": 40, "optimizer": "Adagrad",
      "lr": 0.005}, "`optimizer` is 'Adagrad'"),
    ({"num_conv_layers": 1, "num_fc_layers": 1, "num_filter_0": 40, "optimizer": "SGD",
      "lr": 0.5}, "`lr` is 0.5, but must be a float in [0.001, 0.01]"),
    ({"num_conv_layers": 1, "num_fc_layers": 1, "num_filter_0": 40, "optimizer": "SGD",
      "lr": 0.005, "dropout": 0.1}, "unknown parameter 'dropout'"),
])
def test_validate_names_the_problem(config, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        get_space("cifar_cnn").validate(config)


def test_define_by_run_asks_only_active_params():
    space = get_space("cifar_cnn")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(30):
        trial = study.ask()
        cfg = space.define_by_run(trial)
        space.validate(cfg)
        assert set(trial.params) == set(cfg)
        assert cfg["num_filter_0"] in (40, 48, 56, 64)


def test_to_tune_domains_resolve_with_conditions():
    from ray import tune
    from ray.tune.search.variant_generator import generate_variants

    space = get_space("cifar_cnn")
    domains = space.to_tune(tune)
    np.random.seed(0)
    seen = 0
    for _ in range(20):
        _, cfg = next(generate_variants(domains))
        cfg = {k: v for k, v in cfg.items() if v is not None}
        space.validate(cfg)
        seen += cfg["num_conv_layers"]
    assert seen > 20  # not all depth 1


@pytest.mark.parametrize("make,message", [
    (lambda: Integer("x", 5, 1), "low 5 > high 1"),
    (lambda: Integer("x", 40, 62, step=8), "not a multiple of step 8; set high to 56"),
    (lambda: Integer("x", 1, 4, step=0), "`x.step` is 0, but must be >= 1"),
    (lambda: Float("x", 0.0, 1.0, log=True), "must be > 0 on a log scale"),
    (lambda: Float("x", 2.0, 1.0), "low 2.0 > high 1.0"),
    (lambda: Categorical("x", ()), "`x.choices` is empty"),
    (lambda: Condition("x", "=~", 1), "condition operator is '=~'"),
    (lambda: Space("s", (Integer("a", 1, 2, condition=Condition("b", ">=", 1)),
                         Integer("b", 1, 2))), "conditioned on 'b', which must be defined before"),
])
def test_bad_parameter_definitions(make, message):
    with pytest.raises((ValueError, TypeError), match=message.replace("[", r"\[")):
        make()


def test_overrides_narrow_fix_and_reject():
    space = get_space("cifar_cnn")
    narrowed = space.with_overrides({"lr": {"low": 0.002}, "optimizer": "SGD",
                                     "num_conv_layers": {"high": 2}})
    assert narrowed["lr"].low == 0.002 and narrowed["optimizer"].choices == ("SGD",)
    rng = np.random.default_rng(0)
    for _ in range(50):
        cfg = narrowed.sample(rng)
        assert cfg["optimizer"] == "SGD" and cfg["num_conv_layers"] <= 2
    assert space["lr"].low == 1e-3  # the registered space is untouched
    with pytest.raises(ValueError, match="does not have. Did you mean 'lr'"):
        space.with_overrides({"lrr": {"low": 0.1}})
    with pytest.raises(ValueError, match="takes only low, high, log"):
        space.with_overrides({"lr": {"step": 0.1}})
    with pytest.raises(ValueError, match="fixes 'optimizer' to 'Adamax'"):
        space.with_overrides({"optimizer": "Adamax"})


def test_canonical_is_hashable_and_order_free():
    space = get_space("cifar_cnn")
    cfg = space.sample(np.random.default_rng(1))
    shuffled = dict(reversed(list(cfg.items())))
    assert space.canonical(cfg) == space.canonical(shuffled)
    assert hash(space.canonical(cfg))


@pytest.mark.parametrize("name", ["nb201", "cifar_cnn"])
def test_neighbours_change_one_decision_each(name):
    space = get_space(name)
    rng = np.random.default_rng(3)
    config = space.sample_grid(rng)
    neighbours = list(space.neighbours(config, rng))
    active = space.active_params(config)
    assert len(neighbours) == sum(len(p.grid()) - 1 for p in active)
    assert len({Space.canonical(space, c) for c in neighbours}) == len(neighbours)
    for child in neighbours:
        space.validate(child)
        changed = [p.name for p in active if p.name in child and child[p.name] != config[p.name]]
        assert len(changed) == 1  # the one decision; others only appear or disappear with it
        assert Space.canonical(space, child) != Space.canonical(space, config)
