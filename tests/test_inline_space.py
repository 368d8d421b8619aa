"""spaces.inline: a hand-written ``space:`` mapping compiles to a Space every searcher can use."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import optuna
import pytest
import yaml

from spaces.inline import SPACE_SYNTAX, compile_space
from spaces.space import Categorical, Condition, Float, Integer

EXAMPLE_YAML = """
space:
  lr: {float: [1.0e-4, 1.0e-1], log: true}
  optimizer: [adam, sgd, rmsprop]
  kind: {choice: [a, b, c]}
  layers: {int: [1, 4]}
  width: {int: [16, 256], step: 16, per: layers}
  op: {choice: [conv3, conv5, sep3, skip], per: layers}
  momentum: {float: [0.5, 0.99], when: {optimizer: sgd}}
  nesterov: {choice: [true, false], when: {optimizer: [sgd, rmsprop]}}
  units_3: {int: [8, 64], when: {layers: {">=": 3}}}
  dropout: 0.1
"""
EXAMPLE = yaml.safe_load(EXAMPLE_YAML)["space"]


def test_compile_space_example_order_types_and_conditions():
    space = compile_space(EXAMPLE, name="example")
    assert space.name == "example"
    assert space.names == (
        "lr", "optimizer", "kind", "layers", "width_1", "width_2", "width_3", "width_4",
        "op_1", "op_2", "op_3", "op_4", "momentum", "nesterov", "units_3", "dropout")
    assert space["lr"] == Float("lr", 1e-4, 1e-1, log=True)
    assert space["optimizer"] == Categorical("optimizer", ("adam", "sgd", "rmsprop"))
    assert space["kind"] == Categorical("kind", ("a", "b", "c"))
    assert space["layers"] == Integer("layers", 1, 4)
    assert space["width_1"] == Integer("width_1", 16, 256, step=16)
    assert space["width_3"].condition == Condition("layers", ">=", 3)
    assert space["op_4"] == Categorical(
        "op_4", ("conv3", "conv5", "sep3", "skip"), condition=Condition("layers", ">=", 4))
    assert space["momentum"].condition == Condition("optimizer", "==", "sgd")
    assert space["nesterov"].condition == Condition("optimizer", "in", ("sgd", "rmsprop"))
    assert space["nesterov"].choices == (True, False)
    assert space["units_3"].condition == Condition("layers", ">=", 3)
    assert space["dropout"] == Categorical("dropout", (0.1,))


def test_compile_space_per_skips_conditions_up_to_low():
    space = compile_space({"depth": {"int": [2, 6], "step": 2},
                           "w": {"float": [0.0, 1.0], "per": "depth"}})
    assert space.names == ("depth", "w_1", "w_2", "w_3", "w_4", "w_5", "w_6")
    assert [space[f"w_{k}"].condition for k in (1, 2)] == [None, None]
    assert space["w_3"].condition == Condition("depth", ">=", 3)
    assert {p.name for p in space.active_params({"depth": 4})} == {
        "depth", "w_1", "w_2", "w_3", "w_4"}


def test_space_syntax_compiles():
    space = compile_space(yaml.safe_load(SPACE_SYNTAX)["space"])
    assert "width_4" in space.names and "width" not in space.names


def test_compile_space_samples_validate_and_respect_conditions():
    space = compile_space(EXAMPLE)
    rng = np.random.default_rng(0)
    depths = Counter()
    optimizers = Counter()
    for _ in range(500):
        cfg = space.sample(rng)
        space.validate(cfg)
        depths[cfg["layers"]] += 1
        optimizers[cfg["optimizer"]] += 1
        for k in range(1, 5):
            assert (f"width_{k}" in cfg) == (cfg["layers"] >= k)
            assert (f"op_{k}" in cfg) == (cfg["layers"] >= k)
        assert ("width_4" in cfg) == (cfg["layers"] == 4)
        assert ("units_3" in cfg) == (cfg["layers"] >= 3)
        assert ("momentum" in cfg) == (cfg["optimizer"] == "sgd")
        assert ("nesterov" in cfg) == (cfg["optimizer"] in ("sgd", "rmsprop"))
        assert cfg["dropout"] == 0.1
        assert cfg["width_1"] % 16 == 0
    assert set(depths) == {1, 2, 3, 4}  # both sides of every "iff" above were exercised
    assert set(optimizers) == {"adam", "sgd", "rmsprop"}


def test_compile_space_mutate_keeps_configs_valid():
    space = compile_space(EXAMPLE)
    rng = np.random.default_rng(1)
    depth_changes = 0
    for _ in range(300):
        cfg = space.sample(rng)
        child = space.mutate(cfg, rng)
        space.validate(child)
        assert child != cfg
        depth_changes += child["layers"] != cfg["layers"]
    assert depth_changes > 0  # a depth mutation adds or drops width_k / op_k and stays valid


def test_compile_space_define_by_run_with_optuna():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = compile_space(EXAMPLE)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    depths = set()
    for _ in range(40):
        trial = study.ask()
        cfg = space.define_by_run(trial)
        space.validate(cfg)
        assert set(trial.params) == set(cfg)
        depths.add(cfg["layers"])
        study.tell(trial, cfg["lr"])
    assert len(depths) > 1


def test_grid_configs_yields_each_depths_sub_grid():
    from search.grid import grid_configs

    space = compile_space({
        "depth": {"int": [1, 3]},
        "width": {"choice": [8, 16], "per": "depth"},
        "act": ["relu", "gelu"],
        "lr": {"float": [0.01, 0.1], "log": True, "grid_points": 3},
        "momentum": {"float": [0.8, 0.9], "grid_points": 2, "when": {"act": "relu"}},
    })
    configs = list(grid_configs(space))
    for cfg in configs:
        space.validate(cfg)
    # depth d: 2**d widths x (relu: 3 lr x 2 momentum + gelu: 3 lr) = 2**d * 9
    assert Counter(cfg["depth"] for cfg in configs) == {1: 18, 2: 36, 3: 72}
    assert len({space.canonical(cfg) for cfg in configs}) == 126


def _raises(data, error, fragment):
    with pytest.raises(error) as info:
        compile_space(data)
    message = str(info.value)
    assert "\n" not in message
    assert fragment in message, message
    return message


BASE = {"optimizer": ["adam", "sgd"], "layers": {"int": [1, 4]}, "lr": {"float": [0.001, 0.1]}}


def _with(**params):
    return {**BASE, **params}


BAD = [
    # the top level and the names
    pytest.param(["lr"], TypeError, "`space` is ['lr'], but must be a mapping", id="not-mapping"),
    pytest.param({}, ValueError, "`space` is empty, but must define at least one",
                 id="empty-space"),
    pytest.param({"learning-rate": 0.1}, ValueError, "'learning-rate', but must have a name of "
                 "letters, digits and `_`", id="name-dash"),
    pytest.param({"": 0.1}, ValueError, "parameter name '', but", id="name-empty"),
    pytest.param({"lambda": 0.1}, ValueError, "not a Python keyword", id="name-keyword"),
    pytest.param({"2lr": 0.1}, ValueError, "starts with a letter", id="name-digit-first"),
    pytest.param({1: 0.1}, TypeError, "parameter name 1, but", id="name-not-string"),
    # values and type keys
    pytest.param({"lr": None}, ValueError, "`space.lr` is None, but must be a value, a list of "
                 "choices or a mapping with one of the keys float, int, choice; write a fixed "
                 "value as `lr: 0.1`", id="null"),
    pytest.param({"lr": {}}, ValueError, "`space.lr` is {}, but must be a value", id="empty-map"),
    pytest.param({"lr": float("nan")}, ValueError, "a fixed value must be finite", id="nan"),
    pytest.param({"lr": {1, 2}}, TypeError, "`space.lr` is {1, 2}, but must be a value",
                 id="set-value"),
    pytest.param({"lr": {"flaot": [0, 1]}}, ValueError, "must have one of the keys float, int, "
                 "choice. Did you mean 'float'?", id="no-type-key"),
    pytest.param({"lr": {"float": [0, 1], "int": [0, 1]}}, ValueError,
                 "`space.lr` has the keys float and int, but must have exactly one",
                 id="two-type-keys"),
    pytest.param({"lr": {"float": [0.1, 1.0], "lgo": True}}, ValueError, "`space.lr.lgo` is "
                 "True, but a `float` parameter takes only the keys float, log, grid_points, "
                 "per, when. Did you mean 'log'?", id="unknown-key"),
    pytest.param({"n": {"int": [1, 4], "log": True}}, ValueError, "an `int` parameter takes "
                 "only the keys int, step, per, when", id="int-with-log"),
    # ranges
    pytest.param({"lr": {"float": 0.1}}, TypeError, "`space.lr.float` is 0.1, but must be a "
                 "two-element list [low, high]", id="range-not-list"),
    pytest.param({"n": {"int": [1, 2, 3]}}, ValueError, "`space.n.int` is [1, 2, 3], but must "
                 "be a two-element list", id="range-three"),
    pytest.param({"lr": {"float": ["a", 1.0]}}, TypeError, "`space.lr.low` is 'a', but must be "
                 "a number.", id="float-bound-string"),
    pytest.param({"lr": {"float": ["1e-4", 0.1]}}, TypeError, "YAML reads 1e-4 as a string, "
                 "write it with a dot: 0.0001", id="float-bound-yaml-exponent"),
    pytest.param({"lr": {"float": [0.1, 0.001]}}, ValueError, "`space.lr` has low 0.1 > high "
                 "0.001; swap them.", id="float-low-gt-high"),
    pytest.param({"n": {"int": [4, 1]}}, ValueError, "`space.n` has low 4 > high 1; swap them.",
                 id="int-low-gt-high"),
    pytest.param({"lr": {"float": [0.0, 0.1], "log": True}}, ValueError, "`space.lr.low` is "
                 "0.0, but must be > 0 on a log scale", id="log-low-zero"),
    pytest.param({"lr": {"float": [0.1, 1.0], "log": "yes"}}, TypeError, "`space.lr.log` is "
                 "'yes', but must be true or false.", id="log-not-bool"),
    pytest.param({"lr": {"float": [0.1, 1.0], "grid_points": 1}}, ValueError,
                 "`space.lr.grid_points` is 1, but must be an integer >= 2.", id="grid-points"),
    pytest.param({"n": {"int": [1, 4.5]}}, TypeError, "`space.n.high` is 4.5, but must be an "
                 "integer.", id="int-bound-float"),
    pytest.param({"n": {"int": [1, 4], "step": 0}}, ValueError, "`space.n.step` is 0, but must "
                 "be >= 1.", id="step-zero"),
    pytest.param({"n": {"int": [16, 250], "step": 16}}, ValueError, "is not a multiple of step "
                 "16; set high to 240.", id="step-not-multiple"),
    # choices
    pytest.param({"opt": []}, ValueError, "`space.opt.choices` is empty", id="empty-list"),
    pytest.param({"opt": {"choice": []}}, ValueError, "`space.opt.choices` is empty",
                 id="empty-choice"),
    pytest.param({"opt": {"choice": "adam"}}, TypeError, "`space.opt.choice` is 'adam', but "
                 "must be a list of values", id="choice-not-list"),
    pytest.param({"opt": ["adam", "sgd", "adam"]}, ValueError, "lists 'adam' twice; remove one.",
                 id="duplicate-choice"),
    pytest.param({"opt": [["adam"]]}, TypeError, "`space.opt.choices` holds ['adam'], but "
                 "choices must be strings, numbers or booleans.", id="nested-choice"),
    pytest.param({"opt": ["adam", None]}, TypeError, "holds None", id="null-choice"),
    # per
    pytest.param(_with(w={"int": [8, 64], "per": "layres"}), ValueError, "`space.w.per` names "
                 "'layres', but there is no such earlier parameter. Did you mean 'layers'?",
                 id="per-unknown"),
    pytest.param({"w": {"int": [8, 64], "per": "layers"}, "layers": {"int": [1, 4]}},
                 ValueError, "it must be defined before w", id="per-later"),
    pytest.param({"layers": {"int": [1, 4], "per": "layers"}}, ValueError,
                 "cannot depend on itself", id="per-self"),
    pytest.param(_with(w={"int": [8, 64], "per": 3}), TypeError, "`space.w.per` names 3, but "
                 "must name an earlier parameter", id="per-not-string"),
    pytest.param(_with(w={"int": [8, 64], "per": "optimizer"}), ValueError, "must name an "
                 "`int` parameter; optimizer is one of ['adam', 'sgd']", id="per-categorical"),
    pytest.param(_with(w={"int": [8, 64], "per": "lr"}), ValueError, "must name an `int` "
                 "parameter; lr is a float", id="per-float"),
    pytest.param({"depth": 3, "w": {"int": [8, 64], "per": "depth"}}, ValueError, "but depth "
                 "is the fixed value 3; `per` needs an int range", id="per-on-fixed-source"),
    pytest.param(_with(op={"choice": ["conv3"], "per": "layers"}), ValueError, "op is the fixed "
                 "value 'conv3', the same in every layer; drop `per`", id="per-fixed-value"),
    pytest.param(_with(extra={"int": [1, 3], "when": {"optimizer": "sgd"}},
                       w={"int": [8, 64], "per": "extra"}), ValueError,
                 "extra is itself conditional (when optimizer == 'sgd')", id="per-conditional"),
    pytest.param({"layers": {"int": [0, 3]}, "w": {"int": [8, 64], "per": "layers"}},
                 ValueError, "layers starts at 0; `per` needs low >= 1", id="per-low-zero"),
    pytest.param(_with(w={"int": [8, 64], "per": "layers"}, w_2=16), ValueError,
                 "makes w_1 .. w_4, but 'w_2' is also a parameter; rename one",
                 id="per-clash-later"),
    pytest.param(_with(w_4=16, w={"int": [8, 64], "per": "layers"}), ValueError,
                 "'w_4' is also a parameter", id="per-clash-earlier"),
    pytest.param(_with(w={"int": [8, 64], "per": "layers", "when": {"optimizer": "sgd"}}),
                 ValueError, "has both `per` and `when`, but may have only one",
                 id="per-and-when"),
    # when
    pytest.param(_with(m={"float": [0.5, 0.9], "when": "sgd"}), TypeError, "`space.m.when` is "
                 "'sgd', but must be a one-key mapping", id="when-not-mapping"),
    pytest.param(_with(m={"float": [0.5, 0.9], "when": {"optimizer": "sgd", "layers": 2}}),
                 ValueError, "but must have exactly one key", id="when-two-keys"),
    pytest.param(_with(m={"float": [0.5, 0.9], "when": {"optimiser": "sgd"}}), ValueError,
                 "no such earlier parameter. Did you mean 'optimizer'?", id="when-unknown"),
    pytest.param({"m": {"float": [0.5, 0.9], "when": {"optimizer": "sgd"}},
                  "optimizer": ["adam", "sgd"]}, ValueError,
                 "optimizer is defined after m; it must be defined before m", id="when-later"),
    pytest.param(_with(w={"int": [8, 64], "per": "layers"},
                       m={"float": [0.5, 0.9], "when": {"w": {">=": 32}}}), ValueError,
                 "`per` turned it into w_1 .. w_4; name one of those", id="when-per-source"),
    pytest.param(_with(m={"float": [0.5, 0.9], "when": {"optimizer": "sgdd"}}), ValueError,
                 "'sgdd' is not a value of optimizer, which is one of ['adam', 'sgd']. Did you "
                 "mean 'sgd'?", id="when-impossible-value"),
    pytest.param(_with(m={"float": [0.5, 0.9], "when": {"optimizer": ["sgd", "rmsprop"]}}),
                 ValueError, "'rmsprop' is not a value of optimizer", id="when-in-impossible"),
    pytest.param(_with(m={"float": [0.5, 0.9], "when": {"optimizer": []}}), ValueError,
                 "the list of values is empty", id="when-empty-list"),
    pytest.param(_with(m={"float": [0.5, 0.9], "when": {"optimizer": None}}), TypeError,
                 "compares with None", id="when-null"),
    pytest.param(_with(m={"float": [0.5, 0.9], "when": {"optimizer": [["sgd"]]}}), TypeError,
                 "compares with ['sgd']", id="when-nested-list"),
    pytest.param(_with(m={"float": [0.5, 0.9], "when": {"layers": {"=>": 3}}}), ValueError,
                 "the operator must be one of == != >= > <= < in. Did you mean '>='?",
                 id="when-bad-operator"),
    pytest.param(_with(m={"float": [0.5, 0.9], "when": {"layers": {">=": 2, "<": 4}}}),
                 ValueError, "an operator mapping must have exactly one key",
                 id="when-two-operators"),
    pytest.param(_with(m={"float": [0.5, 0.9], "when": {"optimizer": {"in": "sgd"}}}),
                 TypeError, "`in` must be followed by a list", id="when-in-not-list"),
    pytest.param(_with(m={"float": [0.5, 0.9], "when": {"layers": {">=": "3"}}}), TypeError,
                 "`>=` must compare with a number", id="when-order-string"),
    pytest.param(_with(m={"float": [0.5, 0.9], "when": {"optimizer": {">": 1}}}), ValueError,
                 "optimizer is one of ['adam', 'sgd'], and `>` needs numbers",
                 id="when-order-categorical"),
    pytest.param(_with(m={"float": [0.5, 0.9], "when": {"layers": {">=": 5}}}), ValueError,
                 "layers is an integer in [1, 4] with step 1, so it never holds",
                 id="when-never-holds"),
    pytest.param(_with(m={"float": [0.5, 0.9], "when": {"layers": True}}), ValueError,
                 "True is not a value of layers", id="when-bool-for-int"),
    pytest.param(_with(m={"float": [0.5, 0.9], "when": {"layers": 7}}), ValueError,
                 "7 is not a value of layers, which is an integer in [1, 4]",
                 id="when-out-of-range"),
    pytest.param(_with(m={"float": [0.5, 0.9], "when": {"lr": 0.01}}), ValueError,
                 "lr is a float, which `==` almost never matches", id="when-float-equality"),
    pytest.param(_with(m={"float": [0.5, 0.9], "when": {"m": 0.6}}), ValueError,
                 "cannot depend on itself", id="when-self"),
]


@pytest.mark.parametrize("data,error,fragment", BAD)
def test_compile_space_rejects_bad_input(data, error, fragment):
    _raises(data, error, fragment)


def test_compile_space_rejects_the_unlisted_in_value_of_a_near_example():
    """The `in` values must all be possible: rmsprop is not an optimizer unless it is listed."""
    data = yaml.safe_load(EXAMPLE_YAML.replace("[adam, sgd, rmsprop]", "[adam, sgd]"))["space"]
    message = _raises(data, ValueError, "`space.nesterov.when`")
    assert re.search(r"'rmsprop' is not a value of optimizer", message)


@pytest.mark.parametrize("name,error", [pytest.param("", ValueError, id="empty"),
                                        pytest.param(3, TypeError, id="int")])
def test_compile_space_rejects_bad_name(name, error):
    with pytest.raises(error, match="`name` is"):
        compile_space({"lr": 0.1}, name=name)


def test_compile_space_accepts_conditions_on_generated_and_fixed_values():
    space = compile_space(_with(
        w={"int": [8, 64], "step": 8, "per": "layers"},
        wide={"choice": [True, False], "when": {"w_2": {">": 32}}},
        fixed={"choice": [0.9], "when": {"optimizer": "sgd"}},
        flag=[True, False],
        gate={"int": [1, 2], "when": {"flag": True}},
        lr_small={"int": [1, 2], "when": {"lr": {"<": 0.01}}},
    ))
    assert space["wide"].condition == Condition("w_2", ">", 32)
    assert space["fixed"] == Categorical("fixed", (0.9,), condition=Condition(
        "optimizer", "==", "sgd"))
    assert space["gate"].condition == Condition("flag", "==", True)
    assert not space["wide"].condition.holds({"layers": 1})  # w_2 absent: wide inactive
    rng = np.random.default_rng(3)
    for _ in range(100):
        space.validate(space.sample(rng))
