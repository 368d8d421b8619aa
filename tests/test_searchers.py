"""Conformance suite: every registered searcher honours Ray's Searcher contract.

A new searcher is tested by being registered in ``search.SEARCHERS``.
"""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import pytest
from ray.tune.search import Searcher

from cluster.resume import reconcile
from search import SEARCHERS, Status, make_searcher
from spaces import get_space
from spaces.inline import compile_space

BUDGET = 3
# The seed's variable-depth space, narrowed so that its grid stays enumerable.
SPACE = get_space("cifar_cnn").with_overrides(
    {"num_conv_layers": {"high": 3}, "lr": {"grid_points": 3}})
# A space as a user writes it in an experiment file: variable depth, a per-layer choice, a
# parameter conditioned on another's value.
INLINE = compile_space({
    "num_conv_layers": {"int": [1, 3]},
    "filters": {"choice": [16, 32, 64], "per": "num_conv_layers"},
    "optimizer": ["Adam", "SGD"],
    "momentum": {"float": [0.5, 0.9], "when": {"optimizer": "SGD"}, "grid_points": 3},
    "lr": {"float": [1.0e-3, 1.0e-2], "log": True, "grid_points": 3},
})
SPACES_UNDER_TEST = {"cifar_cnn": SPACE, "inline": INLINE}
# The conformance suite: every registered searcher on every space above.
NAMES = [pytest.param(name, space, id=f"{name}-{space}") for name in sorted(SEARCHERS)
         for space in SPACES_UNDER_TEST]
POINTS = [SPACE.sample(np.random.default_rng(i)) for i in range(40)]


def _options(name: str, space: str) -> dict | None:
    if name == "points":
        sampled = SPACES_UNDER_TEST[space]
        return {"points": [sampled.sample(np.random.default_rng(i)) for i in range(40)]}
    return {"shuffle": True} if name == "grid" else None


def _make(name: str, seed: int = 0, max_trials: int | None = None, space: str = "cifar_cnn"):
    return make_searcher(name, space=SPACES_UNDER_TEST[space], metric="val_acc", mode="max",
                         seed=seed, max_epochs=BUDGET, max_trials=max_trials,
                         options=_options(name, space))


def _result(value: float, iteration: int = BUDGET) -> dict:
    return {"val_acc": value, "training_iteration": iteration}


def _drive(searcher, n: int, start: int = 0) -> list[dict]:
    """Suggest and complete ``n`` trials with a deterministic objective."""
    configs = []
    for i in range(start, start + n):
        cfg = searcher.suggest(f"t{i}")
        configs.append(cfg)
        searcher.on_trial_result(f"t{i}", _result(0.1, 1))
        searcher.on_trial_complete(f"t{i}", _result(cfg["lr"] * 50 + cfg["num_conv_layers"] / 10))
    return configs


@pytest.mark.parametrize("name,space", NAMES)
def test_suggestions_are_valid_configs(name, space):
    searcher = _make(name, space=space)
    for cfg in _drive(searcher, 15):
        SPACES_UNDER_TEST[space].validate(cfg)


@pytest.mark.parametrize("name,space", NAMES)
def test_same_seed_same_suggestions(name, space):
    assert _drive(_make(name, space=space, seed=3), 12) == \
        _drive(_make(name, space=space, seed=3), 12)
    if name != "points":  # a fixed list is the same for every seed by design
        assert _drive(_make(name, space=space, seed=3), 12) != \
            _drive(_make(name, space=space, seed=4), 12)


@pytest.mark.parametrize("name,space", NAMES)
def test_finished_after_max_trials(name, space):
    searcher = _make(name, space=space, max_trials=2)
    assert isinstance(searcher.suggest("a"), dict)
    assert isinstance(searcher.suggest("b"), dict)
    assert searcher.suggest("c") == Searcher.FINISHED


@pytest.mark.parametrize("name,space", NAMES)
def test_outcomes_are_classified(name, space):
    searcher = _make(name, space=space)
    for tid in "abcdefg":
        searcher.suggest(tid)
    searcher.on_trial_complete("a", _result(0.5))                     # full budget
    searcher.on_trial_complete("b", _result(0.4, iteration=1))       # stopped early by ASHA
    searcher.on_trial_complete("c", None, error=True)                # raised
    searcher.on_trial_complete("d", _result(0.9), error=True)        # raised after reporting
    searcher.on_trial_complete("e", _result(float("nan")))           # NaN metric
    searcher.on_trial_complete("f", _result(math.inf, iteration=1))  # inf metric
    searcher.on_trial_complete("g", {"training_iteration": 3})       # metric missing
    assert searcher.outcomes == {
        "a": Status.COMPLETE, "b": Status.PRUNED, "c": Status.FAILED, "d": Status.FAILED,
        "e": Status.FAILED, "f": Status.FAILED, "g": Status.FAILED,
    }
    assert not searcher.live


@pytest.mark.parametrize("name,space", NAMES)
def test_unknown_and_repeated_trial_ids_do_not_crash(name, space):
    searcher = _make(name, space=space)
    searcher.on_trial_result("ghost", _result(0.5))
    searcher.on_trial_complete("ghost", _result(0.5))
    searcher.suggest("a")
    searcher.on_trial_complete("a", _result(0.5))
    searcher.on_trial_complete("a", _result(0.5))  # a second completion is ignored
    searcher.on_trial_result("a", {"training_iteration": 2})  # metric missing in a result
    assert isinstance(searcher.suggest("b"), dict)


@pytest.mark.parametrize("name,space", NAMES)
def test_save_restore_continues_identically(name, space, tmp_path):
    original = _make(name, space=space, seed=5)
    _drive(original, 8)
    live = original.suggest("live")  # a trial in flight at the save
    path = tmp_path / "searcher.pkl"
    original.save(str(path))
    restored = _make(name, space=space, seed=99)
    restored.restore(str(path))
    assert restored.live.keys() == original.live.keys()
    restored.on_trial_complete("live", _result(0.3))
    original.on_trial_complete("live", _result(0.3))
    assert _drive(restored, 6, start=100) == _drive(original, 6, start=100)
    assert live is not None


@pytest.mark.parametrize("name,space", NAMES)
def test_picklable(name, space):
    searcher = _make(name, space=space)
    _drive(searcher, 3)
    clone = pickle.loads(pickle.dumps(searcher))
    assert _drive(clone, 3, start=10) == _drive(searcher, 3, start=10)


def test_grid_covers_every_depth_once_then_finishes():
    from search.grid import grid_configs

    space = get_space("cifar_cnn").with_overrides(
        {"num_conv_layers": {"high": 2}, "num_fc_layers": {"high": 1}, "optimizer": "SGD",
         "lr": {"grid_points": 2}})
    expected = (4 + 16) * 2
    configs = list(grid_configs(space))
    assert len(configs) == expected
    assert len({space.canonical(c) for c in configs}) == expected
    searcher = make_searcher("grid", space=space, metric="val_acc", mode="max")
    for i in range(expected):
        space.validate(searcher.suggest(str(i)))
    assert searcher.suggest("last") == Searcher.FINISHED


def test_points_accept_arch_strings_and_reject_bad_points():
    arch = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|"
    searcher = make_searcher("points", space=get_space("nb201"), metric="val_acc", mode="max",
                             options={"points": [arch]})
    assert get_space("nb201").arch_string(searcher.suggest("a")) == arch
    assert searcher.suggest("b") == Searcher.FINISHED
    with pytest.raises(ValueError, match=r"`points\[0\]`: `optimizer` is 'Adamax'"):
        make_searcher("points", space=SPACE, metric="val_acc", mode="max",
                      options={"points": [{**POINTS[0], "optimizer": "Adamax"}]})
    with pytest.raises(ValueError, match="`points` is empty"):
        make_searcher("points", space=SPACE, metric="val_acc", mode="max")


def test_optuna_tells_pruned_failed_and_complete():
    import optuna

    searcher = _make("optuna")
    for tid in "abc":
        searcher.suggest(tid)
    searcher.on_trial_result("a", _result(0.1, 1))
    # ASHA stops it at epoch 2; Tune does not pass that result to on_trial_result
    searcher.on_trial_complete("a", _result(0.2, 2))
    searcher.on_trial_complete("b", _result(float("nan")))
    searcher.on_trial_result("c", _result(0.3, 1))
    searcher.on_trial_complete("c", _result(0.6))
    states = [(t.state, t.value) for t in searcher.strategy.study.trials]
    assert states == [(optuna.trial.TrialState.PRUNED, 0.2),
                      (optuna.trial.TrialState.FAIL, None),
                      (optuna.trial.TrialState.COMPLETE, 0.6)]
    assert searcher.strategy.study.trials[0].intermediate_values == {1: 0.1, 2: 0.2}


@pytest.mark.parametrize("name,space", NAMES)
def test_invalid_proposal_is_skipped_not_fatal(name, space, monkeypatch):
    searcher = _make(name, space=space)
    real = searcher.strategy.ask
    monkeypatch.setattr(searcher.strategy, "ask", lambda: ({"bogus": 1}, "h"))
    monkeypatch.setattr(searcher.strategy, "tell", lambda *a: None)
    assert searcher.suggest("a") is None and not searcher.live
    monkeypatch.setattr(searcher.strategy, "ask", real)
    assert isinstance(searcher.suggest("b"), dict)


def test_a_searcher_that_only_proposes_invalid_configs_stops_with_one_line(monkeypatch):
    """No retrying without bound (a one-value float range once looped forever)."""
    from search.adapter import MAX_INVALID_IN_A_ROW, SearchStalled

    searcher = _make("random")
    monkeypatch.setattr(searcher.strategy, "ask", lambda: ({"bogus": 1}, "h"))
    for i in range(MAX_INVALID_IN_A_ROW - 1):
        assert searcher.suggest(f"t{i}") is None
    with pytest.raises(SearchStalled, match="invalid configs in a row") as info:
        searcher.suggest("last")
    assert len(str(info.value).splitlines()) == 1


def test_a_one_value_range_samples_that_value():
    space = get_space("cifar_cnn").with_overrides({"lr": {"low": 0.005, "high": 0.005}})
    rng = np.random.default_rng(0)
    for _ in range(20):
        config = space.sample(rng)
        assert config["lr"] == 0.005
        space.validate(config)
    (lr,) = [p for p in space.params if p.name == "lr"]
    assert lr.grid() == (0.005,)  # what grid, RL and Q-learning choose from


@pytest.mark.parametrize("name", sorted(set(SEARCHERS) - {"points"}))
def test_every_searcher_proposes_and_learns_in_a_space_with_a_one_value_range(name):
    """`lr: {low: 0.005, high: 0.005}` (log scale) once had `hpnas run` loop forever on
    "invalid config": every searcher proposes valid configs holding the value, and goes on
    after results."""
    space = get_space("cifar_cnn").with_overrides({"lr": {"low": 0.005, "high": 0.005},
                                                   "num_conv_layers": {"high": 1}})
    searcher = make_searcher(name, space=space, metric="val_acc", mode="max", seed=0,
                             max_epochs=BUDGET)
    for i in range(6):
        config = searcher.suggest(f"t{i}")
        assert isinstance(config, dict), (i, config)
        assert config["lr"] == 0.005
        space.validate(config)
        searcher.on_trial_complete(f"t{i}", _result(0.1 * i))


def test_min_mode_is_negated_for_the_core():
    searcher = make_searcher("optuna", space=get_space("cifar_cnn"), metric="loss",
                             mode="min", seed=0, max_epochs=1)
    searcher.suggest("a")
    searcher.on_trial_complete("a", {"loss": 0.25, "training_iteration": 1})
    assert searcher.strategy.study.trials[0].value == -0.25


@pytest.mark.parametrize("sampler", ["tpe", "tpe_independent", "random", "cmaes", "nsga2", "qmc"])
def test_optuna_samplers(sampler):
    searcher = make_searcher("optuna", space=get_space("cifar_cnn"), metric="val_acc",
                             mode="max", seed=0, max_epochs=BUDGET,
                             options={"sampler": sampler})
    for cfg in _drive(searcher, 12):
        get_space("cifar_cnn").validate(cfg)


def test_tpe_beats_random_on_a_smooth_objective():
    """TPE with 40 trials finds a better lr than random search does (same seeds, 5 repeats)."""
    def best(name: str, seed: int) -> float:
        searcher = _make(name, seed=seed)
        values = []
        for i in range(40):
            cfg = searcher.suggest(f"t{i}")
            value = -abs(math.log10(cfg["lr"]) + 2.2) - 0.05 * abs(cfg["num_conv_layers"] - 3)
            values.append(value)
            searcher.on_trial_complete(f"t{i}", _result(value))
        return max(values)

    tpe = sum(best("optuna", s) for s in range(5))
    rnd = sum(best("random", s) for s in range(5))
    assert tpe > rnd


def _trial(trial_id, status, result=None, config=None):
    from types import SimpleNamespace

    return SimpleNamespace(trial_id=trial_id, status=status, last_result=result or {},
                           metric_analysis={}, config=config or {})


def test_reconcile_abandons_trials_the_restored_experiment_never_had():
    # The searcher state is a snapshot newer than Tune's trials: it handed out c and d, and
    # counted them, but Tune restored only a (ended) and b (running).
    searcher = make_searcher("evolution", space=get_space("nb201"), metric="val_acc", mode="max",
                             seed=0, max_epochs=2, max_trials=4,
                             options={"population_size": 2, "sample_size": 1})
    for trial_id in "abcd":
        searcher.suggest(trial_id)
    searcher.on_trial_complete("a", {"val_acc": 0.5, "training_iteration": 2})
    assert searcher.suggest("e") == Searcher.FINISHED
    reconcile(searcher, [_trial("a", "TERMINATED"), _trial("b", "RUNNING")])
    assert set(searcher.live) == {"b"}
    assert len(searcher.strategy.pending) == 1  # c and d are no longer waited for
    assert [s for _, (_, s) in searcher.strategy.population] == [0.5]  # nothing learned from them
    assert searcher.suggested == 2
    assert searcher.suggest("e") not in (None, Searcher.FINISHED)  # their budget runs again
    assert searcher.suggest("f") not in (None, Searcher.FINISHED)
    assert searcher.suggest("g") == Searcher.FINISHED


def test_reconcile_replays_trials_an_older_searcher_state_never_handed_out():
    # The searcher state is older than Tune's trials: it handed out a; b and c were handed out
    # (and a and b ended) after it was saved.
    original = make_searcher("random", space=get_space("nb201"), metric="val_acc", mode="max",
                             seed=0, max_epochs=2, max_trials=5)
    configs = [original.suggest(t) for t in "abcd"]
    searcher = make_searcher("random", space=get_space("nb201"), metric="val_acc", mode="max",
                             seed=0, max_epochs=2, max_trials=5)
    searcher.suggest("a")
    # Tune hands restored trials over newest result first, not in creation order.
    reconcile(searcher, [
        _trial("c", "RUNNING", config=configs[2]),
        _trial("b", "TERMINATED", {"val_acc": 0.6, "training_iteration": 1}, configs[1]),
        _trial("a", "TERMINATED", {"val_acc": 0.7, "training_iteration": 2}, configs[0])])
    assert searcher.outcomes == {"a": Status.COMPLETE, "b": Status.PRUNED}
    assert set(searcher.live) == {"c"} and searcher.suggested == 3
    assert searcher.suggest("d") == configs[3]  # not a repeat of b's or c's config
    assert searcher.suggest("e") not in (None, Searcher.FINISHED)
    assert searcher.suggest("f") == Searcher.FINISHED


def test_a_trial_the_searcher_cannot_replay_is_not_replayed_again():
    searcher = make_searcher("random", space=get_space("nb201"), metric="val_acc", mode="max",
                             seed=0, max_epochs=2, max_trials=5)
    other = get_space("nb201").sample(np.random.default_rng(99))  # never proposed by seed 0
    trials = [_trial("x", "RUNNING", config=other)]
    reconcile(searcher, trials)
    assert searcher.live == {} and searcher.suggested == 1
    asked = searcher.strategy.rng.bit_generator.state
    reconcile(searcher, trials)  # a second resume
    assert searcher.strategy.rng.bit_generator.state == asked  # nothing asked again
    searcher.on_trial_complete("x", {"val_acc": 0.5, "training_iteration": 2})
    assert searcher.outcomes == {"x": Status.COMPLETE}  # its outcome is still recorded


def test_an_abandoned_point_is_proposed_again():
    points = [get_space("nb201").sample(np.random.default_rng(i)) for i in range(3)]
    searcher = make_searcher("points", space=get_space("nb201"), metric="val_acc", mode="max",
                             max_epochs=1, max_trials=3, options={"points": points})
    for trial_id in "abc":
        searcher.suggest(trial_id)
    assert searcher.suggest("x") == Searcher.FINISHED
    # Tune restored only a: b and c never ran, so their points must still run.
    reconcile(searcher, [_trial("a", "RUNNING", config=points[0])])
    assert searcher.suggest("d") == points[1]
    assert searcher.suggest("e") == points[2]
    assert searcher.suggest("f") == Searcher.FINISHED


def test_a_retried_trial_gets_its_new_outcome():
    searcher = make_searcher("random", space=get_space("nb201"), metric="val_acc", mode="max",
                             seed=0, max_epochs=2, max_trials=2)
    config = searcher.suggest("a")
    searcher.on_trial_complete("a", {"val_acc": 0.1, "training_iteration": 1}, error=True)
    reconcile(searcher, [_trial("a", "PENDING", config=config)])  # --retry-errored
    searcher.on_trial_complete("a", {"val_acc": 0.8, "training_iteration": 2})
    assert searcher.outcomes == {"a": Status.COMPLETE} and searcher.suggested == 1


def test_searcher_sync_frees_concurrency_slots_of_unknown_trials():
    from ray.tune.search import ConcurrencyLimiter, SearchGenerator

    from cluster.resume import SearcherSync

    searcher = make_searcher("random", space=get_space("nb201"), metric="val_acc", mode="max",
                             seed=0, max_epochs=2, max_trials=10)
    limiter = ConcurrencyLimiter(searcher, max_concurrent=2)
    generator = SearchGenerator(limiter)
    limiter.suggest("ghost1")
    limiter.suggest("ghost2")
    assert limiter.suggest("x") is None  # both slots held
    sync = SearcherSync(generator)
    sync.setup()
    # Tune restored one running trial the limiter never saw, and neither ghost.
    sync.on_step_begin(0, [_trial("r", "RUNNING")])
    assert limiter.live_trials == {"r"} and searcher.suggested == 1
    assert limiter.suggest("y") is not None  # one slot free again
    assert limiter.suggest("z") is None  # r and y hold the two
    sync.on_step_begin(1, [])  # once per run only
    assert limiter.live_trials == {"r", "y"}


@pytest.mark.parametrize("module", ["search.evolution", "search.rl", "search.qlearning",
                                    "search.random_search", "search.grid",
                                    "search.optuna_search", "search.registry", "search.outcome"])
def test_strategy_modules_import_without_ray(module):
    """The strategy cores and the outcome vocabulary are Ray-free: importing one in a fresh
    interpreter leaves `ray` out of sys.modules."""
    import subprocess
    import sys

    code = f"import sys, {module}; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "False", out.stderr


def test_draw_unseen_stops_paying_a_thousand_draws_once_the_space_is_used_up():
    from search.strategy import Strategy

    core, draws = Strategy(), []

    def draw() -> int:
        draws.append(1)
        return len(draws)

    assert core.draw_unseen(draw, lambda v: v == 5) == 5 and not core.used_up
    draws.clear()
    assert core.draw_unseen(draw, lambda v: False) == 1001 and core.used_up  # 1 + 1,000 draws
    draws.clear()
    core.draw_unseen(draw, lambda v: False)
    assert len(draws) == 1 + Strategy.USED_UP_DRAWS
    assert core.draw_unseen(draw, lambda v: True, first=0) == 0


def test_evolution_past_the_space_size_proposes_repeats_cheaply(monkeypatch):
    """Every NAS-Bench-201 cell function tried (a search longer than the space): a proposal
    is a repeat, and after the first the search draws only a few random cells for it."""
    import itertools

    from search.evolution import AgingEvolution
    from spaces.cells import NB201_EDGES, NB201_OPS, edge_name

    space = get_space("nb201")
    core = AgingEvolution(space, seed=0)
    core.seen = {space.canonical({edge_name(j, i): op for (j, i), op in zip(NB201_EDGES, ops)})
                 for ops in itertools.product(NB201_OPS, repeat=len(NB201_EDGES))}
    assert len(core.seen) == 5773
    draws = []
    real = type(space).sample
    monkeypatch.setattr(type(space), "sample", lambda self, rng: (draws.append(1),
                                                                  real(self, rng))[1])
    assert core.ask() is not None and core.used_up
    draws.clear()
    assert core.ask() is not None
    assert len(draws) <= 2 * (1 + core.USED_UP_DRAWS)
    restored = pickle.loads(pickle.dumps(core))
    del restored.__dict__["used_up"]  # saved by an hpnas without the flag: the class default
    assert restored.ask() is not None
