"""Tokens, mutation and canonical forms on every space; the NAS-Bench-201 cell space and table."""

from __future__ import annotations

import itertools
import pickle

import numpy as np
import pytest
import yaml

from spaces import SPACES, Space, get_space
from spaces.cells import NB201_EDGES, NB201_OPS, edge_name
from spaces.inline import SPACE_SYNTAX, compile_space
from spaces.tables import NB201Table, load_nb201

# Every registered space, and one written in an experiment file (the documented syntax).
SPACES_UNDER_TEST = {**SPACES, "inline": compile_space(
    yaml.safe_load(SPACE_SYNTAX)["space"])}
SPACE_NAMES = [pytest.param(n, id=n) for n in sorted(SPACES_UNDER_TEST)]
BEST_C100 = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+"
             "|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|")


@pytest.mark.parametrize("name", SPACE_NAMES)
def test_token_round_trip(name):
    space = SPACES_UNDER_TEST[name]
    rng = np.random.default_rng(0)
    lengths = set()
    for _ in range(200):
        cfg = space.sample(rng)
        tokens = space.tokens(cfg)
        lengths.add(len(tokens))
        back = space.from_tokens(tokens)
        assert space.tokens(back) == tokens
        space.validate(back)
        # floats snap to their token grid; everything else round-trips exactly
        assert {k: v for k, v in back.items() if not isinstance(v, float)} == {
            k: v for k, v in cfg.items() if not isinstance(v, float)}
    if name.startswith("cifar_cnn"):
        assert len(lengths) > 3  # variable length with depth


@pytest.mark.parametrize("name", SPACE_NAMES)
def test_from_tokens_rejects_bad_sequences(name):
    space = SPACES_UNDER_TEST[name]
    tokens = space.tokens(space.sample(np.random.default_rng(1)))
    with pytest.raises(ValueError, match="ends before"):
        space.from_tokens(tokens[:-1])
    with pytest.raises(ValueError, match="longer than"):
        space.from_tokens((*tokens, 0))
    with pytest.raises(ValueError, match="outside"):
        space.from_tokens((99, *tokens[1:]))


@pytest.mark.parametrize("name", SPACE_NAMES)
def test_mutation_is_valid_and_changes_the_config(name):
    space = SPACES_UNDER_TEST[name]
    rng = np.random.default_rng(2)
    for _ in range(300):
        cfg = space.sample(rng)
        child = space.mutate(cfg, rng)
        space.validate(child)
        assert Space.canonical(space, child) != Space.canonical(space, cfg)  # the config changed


def test_cnn_depth_mutation_refills_and_drops_layers():
    space = get_space("cifar_cnn")
    rng = np.random.default_rng(3)
    seen_deeper = seen_shallower = False
    for _ in range(500):
        cfg = space.sample(rng)
        child = space.mutate(cfg, rng)
        if child["num_conv_layers"] > cfg["num_conv_layers"]:
            seen_deeper = True
            assert f"num_filter_{child['num_conv_layers'] - 1}" in child
        if child["num_conv_layers"] < cfg["num_conv_layers"]:
            seen_shallower = True
            assert f"num_filter_{cfg['num_conv_layers'] - 1}" not in child
    assert seen_deeper and seen_shallower


def test_resolution_space_searches_the_input_size():
    space = get_space("cifar_cnn_res")
    sizes = {space.sample(np.random.default_rng(s))["input_size"] for s in range(30)}
    assert sizes == {16, 24, 32}


def test_arch_string_round_trip_and_errors():
    space = get_space("nb201")
    cfg = space.from_arch(BEST_C100)
    assert cfg[edge_name(3, 0)] == "skip_connect" and space.arch_string(cfg) == BEST_C100
    assert space.from_arch(space.arch_string(cfg)) == cfg
    for bad, message in [
        ("|nor_conv_3x3~0|+|none~0|", "must have 3 '+'-separated nodes"),
        ("|nor_conv_3x3~0|+|none~0|+|none~0|none~1|none~2|", "node 2 must have 2 inputs"),
        ("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "'conv~0' must be 'OP~0'"),
        ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "'none~1' must be 'OP~0'"),
    ]:
        with pytest.raises(ValueError) as info:
            space.from_arch(bad)
        assert message in str(info.value)


def test_hidden_state_mutation_rewires_an_input():
    space = get_space("nb201")
    cfg = space.from_arch(BEST_C100)
    rng = np.random.default_rng(0)
    swaps = 0
    for _ in range(200):
        child = space.mutate(cfg, rng)
        changed = [k for k in cfg if cfg[k] != child[k]]
        assert len(changed) in (1, 2)
        if len(changed) == 2:  # a swap of two inputs of one node
            a, b = changed
            assert a.split("_")[1] == b.split("_")[1]
            assert (cfg[a], cfg[b]) == (child[b], child[a])
            swaps += 1
    assert 50 < swaps < 150


def test_nb201_table_lookups():
    table = load_nb201("cifar100")
    assert len(table) == 15625
    key, best = table.best()
    assert round(best, 2) == 73.49
    space = get_space("nb201")
    assert space.arch_string(table.config_of(key)) == BEST_C100
    outcome = table.sample(table.config_of(key), np.random.default_rng(0))
    assert set(outcome) == {"val_acc", "train_time_s", "latency_s", "params_mb"}
    assert abs(outcome["val_acc"] - best) < 1
    all_none = {edge_name(j, i): "none" for j in range(1, 4) for i in range(j)}
    assert table.mean_val_acc(all_none) < 5  # no path from input to output: chance level


def test_table_unpickler_refuses_code(tmp_path):
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"000000": print}))  # a global: unpickling it runs a lookup
    with pytest.raises(pickle.UnpicklingError, match="refusing to load"):
        NB201Table("cifar100", evil)
    with pytest.raises(ValueError, match="`dataset` is 'svhn'"):
        NB201Table("svhn")


def test_ops_and_edges_match_the_table_key():
    table = load_nb201("cifar10")
    cfg = {edge_name(j, i): NB201_OPS[(j + i) % 5] for j in range(1, 4) for i in range(j)}
    assert table.config_of(table.key(cfg)) == cfg


def test_cell_canonical_form_is_the_function_the_cell_computes():
    space = get_space("nb201")
    key = space.canonical
    best = space.from_arch(BEST_C100)
    # a branch into a node that feeds nothing, reordered sums, identities and dead inputs
    same = [
        ("|nor_conv_3x3~0|+|none~0|none~1|+|avg_pool_3x3~0|none~1|none~2|",
         "|avg_pool_3x3~0|+|none~0|none~1|+|avg_pool_3x3~0|none~1|none~2|"),  # node 1 unused
        ("|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|none~0|nor_conv_1x1~1|avg_pool_3x3~2|",
         "|nor_conv_1x1~0|+|nor_conv_3x3~0|none~1|+|none~0|avg_pool_3x3~1|nor_conv_1x1~2|"),
        ("|skip_connect~0|+|none~0|nor_conv_3x3~1|+|none~0|none~1|skip_connect~2|",
         "|none~0|+|nor_conv_3x3~0|none~1|+|none~0|none~1|skip_connect~2|"),  # x1 = x
        ("|none~0|+|none~0|nor_conv_3x3~1|+|nor_conv_1x1~0|none~1|none~2|",
         "|none~0|+|none~0|none~1|+|nor_conv_1x1~0|none~1|none~2|"),  # conv of nothing
    ]
    for a, b in same:
        assert key(space.from_arch(a)) == key(space.from_arch(b)), (a, b)
    different = [
        ("|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|none~0|nor_conv_1x1~1|avg_pool_3x3~2|",
         "|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|none~0|avg_pool_3x3~1|nor_conv_1x1~2|"),
        ("|skip_connect~0|+|none~0|none~1|+|nor_conv_3x3~0|nor_conv_3x3~1|none~2|",
         "|skip_connect~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|"),  # two convs of x
    ]
    for a, b in different:
        assert key(space.from_arch(a)) != key(space.from_arch(b)), (a, b)
    assert key(space.from_arch("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")) == "zero"
    cells = [dict(zip([edge_name(j, i) for j, i in NB201_EDGES], ops))
             for ops in itertools.product(NB201_OPS, repeat=len(NB201_EDGES))]
    assert len({key(c) for c in cells}) == 5773
    assert sum(key(c) == key(best) for c in cells) == 1  # the best cell has no twin
