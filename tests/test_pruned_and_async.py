"""How each architecture searcher treats trials stopped early, and the asynchronous rules
(aging evolution's first population, RL's and Q-learning's repeats, local search's climb)."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from search import Status
from search.evolution import AgingEvolution, EvolutionOptions
from search.fidelity import FidelityTracker, RankReward
from search.local_search import LocalSearch, LocalSearchOptions
from search.qlearning import QLearning, QLearningOptions
from search.rl import ReinforceController
from spaces import get_space

NB201 = get_space("nb201")
BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def _finish(core, handle, score, status, step=None):
    if step is not None:
        core.report(handle, step, score)
    core.tell(handle, score, status)


def test_keys_rank_by_fidelity_then_score():
    tracker = FidelityTracker()
    tracker.report("a", 1)
    tracker.report("a", 3)
    assert tracker.key("a", 0.9, Status.PRUNED) == (3.0, 0.9)
    assert tracker.key("b", 0.1, Status.COMPLETE) == (math.inf, 0.1)
    assert (3.0, 0.9) < (9.0, 0.2) < (math.inf, 0.1)  # further beats a better early score
    ranks = RankReward(window=3)
    assert ranks.add((1.0, 0.5)) == 0.5
    assert ranks.add((math.inf, 0.1)) == 0.75  # above the pruned one
    assert ranks.add((1.0, 0.9)) == pytest.approx(0.5)
    assert ranks.add((1.0, 0.2)) == pytest.approx(1 / 6)  # the window keeps the last 3
    assert len(ranks.sorted) == 3


def test_evolution_ranks_a_pruned_member_below_a_complete_one():
    core = AgingEvolution(NB201, EvolutionOptions(population_size=2, sample_size=2), seed=0)
    (good, h1), (_, h2) = core.ask(), core.ask()
    _finish(core, h1, 60.0, Status.COMPLETE, step=3)
    _finish(core, h2, 70.0, Status.PRUNED, step=1)  # higher epoch-1 score, stopped there
    assert core.parent() == good
    keys = sorted(k for _, k in core.population)
    assert keys == [(1.0, 70.0), (math.inf, 60.0)]


def test_evolution_is_random_until_population_size_trials_finished(monkeypatch):
    core = AgingEvolution(NB201, EvolutionOptions(population_size=3, sample_size=2), seed=0)
    mutated = []
    original = type(NB201).mutate
    monkeypatch.setattr(type(NB201), "mutate",
                        lambda self, c, rng: mutated.append(c) or original(self, c, rng))
    handles = [core.ask()[1] for _ in range(6)]  # six workers start before anything finishes
    for h in handles[:2]:
        _finish(core, h, 50.0, Status.COMPLETE)
    core.ask()  # two finished: still random
    core.tell(handles[2], None, Status.FAILED)  # a failure does not count
    core.ask()
    assert not mutated
    _finish(core, handles[3], 55.0, Status.COMPLETE)
    core.ask()  # three finished: now a child of the tournament's winner
    assert mutated and core.finished == 3


def test_rl_answers_repeats_from_history_and_ranks_pruned_trials(monkeypatch):
    core = ReinforceController(NB201, seed=0)
    config, handle = core.ask()
    _finish(core, handle, 70.0, Status.COMPLETE)
    assert not core.multi_fidelity and core.updates == 1
    known = NB201.tokens(config)
    samples = iter([config, config, config])  # the controller keeps sampling the known cell
    monkeypatch.setattr(core, "_sample", lambda: next(samples, NB201.from_tokens(
        tuple((t + 1) % 5 for t in known))))
    new, h2 = core.ask()
    assert NB201.tokens(new) != known  # no budget spent on it again
    assert core.updates == 4 and core.repeats == 3  # three answers from history (the most)
    _finish(core, h2, 80.0, Status.PRUNED, step=1)
    assert core.multi_fidelity  # rewards are ranks from now on
    assert core.evaluated[NB201.canonical(new)] == (1.0, 80.0)
    assert core._reward((1.0, 80.0), record=False) < core._reward((math.inf, 70.0), record=False)


def test_rl_does_not_propose_a_cell_still_training(monkeypatch):
    core = ReinforceController(NB201, seed=0)
    config, _ = core.ask()
    other = NB201.sample(np.random.default_rng(5))
    samples = iter([config, other])
    monkeypatch.setattr(core, "_sample", lambda: next(samples))
    assert core.ask()[0] == other


def test_qlearning_never_caches_a_pruned_score_as_final(monkeypatch):
    core = QLearning(NB201, seed=0)
    config, handle = core.ask()
    tokens = NB201.tokens(config)
    _finish(core, handle, 90.0, Status.PRUNED, step=1)
    ident = NB201.canonical(config)
    assert ident not in core.known and core.stopped[ident] == (1.0, 90.0)
    replays = len(core.replay)
    episodes = iter([tokens])
    monkeypatch.setattr(core, "_episode", lambda repeats=0: next(episodes, (0, 1, 2, 3, 4, 0)))
    again, h2 = core.ask()
    assert NB201.tokens(again) != tokens  # not run again: its rank was replayed instead
    assert len(core.replay) == replays + 1 and core.replay[-1] == (tokens, (1.0, 90.0))
    _finish(core, h2, 60.0, Status.COMPLETE, step=3)
    assert core.known[NB201.canonical(again)] == (math.inf, 60.0)
    assert core._reward((1.0, 90.0)) < core._reward((math.inf, 60.0))


def test_qlearning_states_are_shared_between_architectures():
    core = QLearning(NB201, seed=0)
    a = (0, 1, 2, 3, 4, 0)
    b = (4, 3, 2, 3, 4, 1)  # another cell through the same (edge 3, op 3) state
    core._learn(a, (math.inf, 70.0))
    core._learn(b, (math.inf, 71.0))
    names = NB201.names
    shared = [k for k in core.q if k[0] == (names[3], 3)]
    assert {k[1] for k in shared} == {names[4]}  # one entry both episodes updated
    assert len(core.q) < 2 * len(a)


@pytest.mark.parametrize(("q_lambda", "first"), [(0.0, 0.8), (0.9, 0.26), (1.0, 0.2)])
def test_qlearning_backs_up_q_lambda_returns(q_lambda, first):
    """One episode with reward 0.2 whose last state has another action worth 0.8: the one-step
    update (lambda 0) carries the 0.8 back to the first decision; Q(lambda) mostly the 0.2."""
    core = QLearning(NB201, QLearningOptions(alpha=1.0, q_lambda=q_lambda), seed=0)
    episode = (0, 1, 2, 3, 4, 0)
    steps = core._steps(episode)
    last_state, last_param, _, _ = steps[-1]
    core.q[(last_state, last_param, 3)] = 0.8
    core._update(episode, 0.2)
    assert core.q[steps[-1][:3]] == pytest.approx(0.2)
    assert core.q[steps[-2][:3]] == pytest.approx((1 - q_lambda) * 0.8 + q_lambda * 0.2)
    assert core.q[steps[0][:3]] == pytest.approx(first)


def test_qlearning_restored_from_an_older_version_keeps_the_one_step_update():
    core = QLearning(NB201, seed=0)
    state = core.__dict__.copy()
    del state["q_lambda"]
    old = QLearning.__new__(QLearning)
    old.__setstate__(state)
    assert old.q_lambda == 0.0


def test_qlearning_saved_without_its_step_memo_continues_the_same():
    core = QLearning(NB201, seed=0)
    for i in range(12):
        _, handle = core.ask()
        _finish(core, handle, 60.0 + i % 5, Status.COMPLETE, step=1)
    assert core.__dict__["steps_memo"]  # replay filled it
    saved = pickle.dumps(core)
    restored = pickle.loads(saved)
    assert "steps_memo" not in restored.__dict__
    for i in range(6):
        (a, ha), (b, hb) = core.ask(), restored.ask()
        assert a == b
        _finish(core, ha, 61.0 + i, Status.COMPLETE, step=1)
        _finish(restored, hb, 61.0 + i, Status.COMPLETE, step=1)
    assert restored.q == core.q


def _table_score(config) -> float:
    """A deterministic landscape: conv3x3 (op index 3) on more edges is better."""
    return float(sum(NB201.tokens(config)[i] == 3 for i in range(6)))


def _climb(core, workers: int, trials: int) -> tuple[float, list]:
    """``trials`` results of :func:`_table_score` on ``workers`` workers, oldest first; asserts
    that no proposal repeats (or is equivalent to) an earlier one. The best score and the
    trials still running."""
    seen, live = set(), []
    best = -1.0
    for _ in range(trials):
        while len(live) < workers:
            config, handle = core.ask()
            ident = NB201.canonical(config)
            assert ident not in seen
            seen.add(ident)
            live.append((handle, config))
        handle, config = live.pop(0)
        score = _table_score(config)
        best = max(best, score)
        _finish(core, handle, score, Status.COMPLETE)
    return best, live


@pytest.mark.parametrize("workers", [1, 4])
def test_local_search_climbs_without_repeats(workers):
    core = LocalSearch(NB201, LocalSearchOptions(initial=3), seed=0)
    best, _ = _climb(core, workers, 120)
    assert best == 6.0 and core.moves >= 3  # climbed to the optimum of this landscape


def test_local_search_restarts_at_a_local_optimum():
    core = LocalSearch(NB201, LocalSearchOptions(initial=1, max_neighbours=4), seed=0)
    _, h = core.ask()
    _finish(core, h, 10.0, Status.COMPLETE)
    for _ in range(4):  # every neighbour is worse
        _, h = core.ask()
        _finish(core, h, 1.0, Status.COMPLETE)
    assert core.centre is None and core.climbs == 1  # restarting from random configs
    _, h = core.ask()
    _finish(core, h, 5.0, Status.COMPLETE)
    assert core.climbs == 2


def test_local_search_prefers_a_neighbour_that_trained_further():
    core = LocalSearch(NB201, LocalSearchOptions(initial=1, max_neighbours=2), seed=0)
    _, h = core.ask()
    _finish(core, h, 50.0, Status.PRUNED, step=1)
    centre = core.centre
    _, h1 = core.ask()
    _, h2 = core.ask()
    _finish(core, h1, 40.0, Status.COMPLETE, step=3)  # lower score, but a full budget
    _finish(core, h2, 90.0, Status.PRUNED, step=1)
    assert core.centre != centre and core.results[core.centre] == (math.inf, 40.0)


def test_rl_proposes_a_neighbour_of_a_converged_controllers_favourite(monkeypatch):
    core = ReinforceController(NB201, seed=0)
    config, handle = core.ask()
    _finish(core, handle, 70.0, Status.COMPLETE)
    monkeypatch.setattr(core, "_sample", lambda: config)  # every sample repeats it
    new, _ = core.ask()
    assert core.updates == 1 + core.max_history_updates
    changed = [a != b for a, b in zip(NB201.tokens(new), NB201.tokens(config))]
    assert sum(changed) == 1  # one decision changed, not a random cell


TWINS = ("|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|none~0|nor_conv_1x1~1|avg_pool_3x3~2|",
         "|nor_conv_1x1~0|+|nor_conv_3x3~0|none~1|+|none~0|avg_pool_3x3~1|nor_conv_1x1~2|")


def test_rl_and_qlearning_answer_an_equivalent_cell_from_history(monkeypatch):
    """A cell that builds the same network as an evaluated one costs no trial (two configs, one
    canonical form)."""
    first, twin = (NB201.from_arch(a) for a in TWINS)
    fresh = NB201.from_arch(BEST)
    rl = ReinforceController(NB201, seed=0)
    monkeypatch.setattr(rl, "_sample", iter([first, twin, fresh]).__next__)
    _, handle = rl.ask()
    _finish(rl, handle, 70.0, Status.COMPLETE)
    assert rl.ask()[0] == fresh and rl.repeats == 1
    q = QLearning(NB201, seed=0)
    episodes = iter([NB201.tokens(first), NB201.tokens(twin), NB201.tokens(fresh)])
    monkeypatch.setattr(q, "_episode", lambda repeats=0: next(episodes))
    _, handle = q.ask()
    _finish(q, handle, 70.0, Status.COMPLETE)
    replays = len(q.replay)
    assert q.ask()[0] == fresh
    assert q.replay[replays] == (NB201.tokens(twin), (math.inf, 70.0))  # learned, not run


def test_rl_and_qlearning_restore_searches_keyed_by_token_sequences():
    """hpnas 0.4 kept evaluated configs by token sequence: a restored search re-keys them."""
    config = NB201.from_arch(TWINS[0])
    for core, table in [(ReinforceController(NB201, seed=0), "evaluated"),
                        (QLearning(NB201, seed=0), "known")]:
        state = dict(core.__dict__)
        state.pop("by_canonical")
        state[table] = {NB201.tokens(config): (math.inf, 70.0)}
        restored = type(core).__new__(type(core))
        restored.__setstate__(state)
        assert getattr(restored, table) == {NB201.canonical(config): (math.inf, 70.0)}


def test_searches_saved_with_arch_string_identities_are_re_keyed():
    """hpnas 0.4 named a cell by its arch string; a restored search knows it by its function,
    so a cell evaluated before the upgrade (or its twin) is not proposed again."""
    from search.optuna_search import OptunaStrategy
    from search.random_search import RandomSearch

    cell, twin = (NB201.from_arch(a) for a in TWINS)
    old, new = NB201.arch_string(cell), NB201.canonical(twin)

    def restore(core, **old_state):
        state = {k: v for k, v in core.__dict__.items() if k != "by_canonical"}
        restored = type(core).__new__(type(core))
        restored.__setstate__({**state, **old_state})
        return restored

    assert restore(AgingEvolution(NB201, seed=0), seen={old}).seen == {new}
    assert restore(RandomSearch(NB201, seed=0), warm_configs=frozenset({old})).warm_configs == {new}
    assert restore(OptunaStrategy(NB201, seed=0),
                   warm_keys={old: (math.inf, 70.0)}).known == {new: (math.inf, 70.0)}
    local = restore(LocalSearch(NB201, seed=0), configs={old: cell},
                    results={old: (math.inf, 70.0)}, centre=old, neighbours=[old], queue=[])
    assert local.configs == {new: cell} and local.results == {new: (math.inf, 70.0)}
    assert local.centre == new and local.neighbours == [new]
    for core in (AgingEvolution(NB201, seed=0), LocalSearch(NB201, seed=0)):
        core.ask()
        again = pickle.loads(pickle.dumps(core))  # this version's saves restore unchanged
        assert again.__dict__.keys() == core.__dict__.keys()
        assert getattr(again, "seen", None) == getattr(core, "seen", None)
        assert getattr(again, "configs", None) == getattr(core, "configs", None)


@pytest.mark.parametrize("workers", [1, 8])
def test_optuna_spends_no_trial_on_a_repeat_and_learns_nothing_from_one(workers):
    """TPE converges on a few NAS-Bench-201 cells and proposes them again; a proposal equal (or
    equivalent) to a finished or running config is replaced by an unseen one, and the
    sampler's own trial for it is told FAIL, so the study holds one observation per run."""
    import optuna

    from search.optuna_search import OptunaStrategy

    core = OptunaStrategy(NB201, seed=0)
    _, live = _climb(core, workers, 120)
    states = [t.state for t in core.study.trials]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 120
    assert states.count(optuna.trial.TrialState.FAIL) > 0  # the sampler did repeat itself
    assert len(core.known) == 120 and len(core.running) == len(live)


def test_optuna_replaces_a_repeat_by_a_neighbour_and_keeps_the_best_key():
    from search.optuna_search import OptunaStrategy

    core = OptunaStrategy(NB201, seed=0)
    best = NB201.from_arch(BEST)
    core.warm([(best, (1.0, 50.0))])  # stopped at epoch 1 in another experiment
    core.study.enqueue_trial(best)  # the sampler proposes it again
    config, handle = core.ask()
    assert NB201.canonical(config) != NB201.canonical(best)
    assert sum(a != b for a, b in zip(NB201.tokens(config), NB201.tokens(best))) == 1
    core.study.enqueue_trial(config)  # and then the one still running
    again, _ = core.ask()
    assert NB201.canonical(again) not in {NB201.canonical(best), NB201.canonical(config)}
    _finish(core, handle, 70.0, Status.PRUNED, step=3)
    assert core.known[NB201.canonical(config)] == (3.0, 70.0)
    core.warm([(config, (1.0, 90.0))])  # a lower rung does not replace what this run reached
    assert core.known[NB201.canonical(config)] == (3.0, 70.0)
    restored = pickle.loads(pickle.dumps(core))
    assert restored.known == core.known and restored.running == core.running
