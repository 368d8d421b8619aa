"""The simulator drives real Searcher objects; searchers learn on NAS-Bench-201."""

from __future__ import annotations

import numpy as np
import pytest
from ray.tune.search import Searcher

from search import SEARCHERS, make_searcher
from search.simulator import incumbent_curve, nb201_objective, simulate
from spaces import get_space
from spaces.tables import load_nb201

NAMES = [pytest.param(n, id=n) for n in sorted(SEARCHERS)]


def _searcher(name: str, seed: int, **kw):
    return make_searcher(name, space=get_space("nb201"), metric="val_acc", mode="max",
                         seed=seed, max_epochs=1, **kw)


def test_completions_arrive_in_simulated_time_order():
    history = simulate(_searcher("random", 0), nb201_objective(load_nb201("cifar100")),
                       workers=8, max_evals=200, seed=0)
    finish = [e.finish_s for e in history]
    assert len(history) == 200 and finish == sorted(finish)
    # with 8 workers the last completion comes far earlier than the sum of training times
    total = sum(load_nb201("cifar100").row(e.config)["train_time"][0] for e in history)
    assert finish[-1] < total / 4


def test_asynchrony_changes_what_the_searcher_sees():
    table = nb201_objective(load_nb201("cifar100"))
    one = simulate(_searcher("evolution", 0), table, workers=1, max_evals=60, seed=0)
    eight = simulate(_searcher("evolution", 0), table, workers=8, max_evals=60, seed=0)
    assert [e.config for e in one] != [e.config for e in eight]


def test_finished_searcher_ends_the_simulation():
    searcher = _searcher("random", 0, max_trials=7)
    history = simulate(searcher, nb201_objective(load_nb201("cifar100")), workers=3,
                       max_evals=100)
    assert len(history) == 7 and searcher.suggest("x") == Searcher.FINISHED


def test_a_searcher_that_waits_forever_is_reported():
    class Idle(Searcher):
        def suggest(self, trial_id):
            return None

    with pytest.raises(RuntimeError, match="wait forever"):
        simulate(Idle(metric="val_acc", mode="max"), lambda c, r: (1.0, 1.0, 1.0), workers=2,
                 max_evals=5)


def test_incumbent_is_the_best_observed_not_the_best_true():
    from search.simulator import Evaluation

    history = [Evaluation(0, 1, 70.0, 60.0, {}), Evaluation(1, 2, 69.0, 72.0, {}),
               Evaluation(2, 3, 71.0, 71.5, {})]
    assert list(incumbent_curve(history)) == [60.0, 60.0, 71.5]


@pytest.mark.parametrize(("name", "evals"),
                         [("optuna", 200), ("evolution", 200), ("rl", 100), ("qlearning", 200)])
def test_searchers_beat_random_search(name, evals):
    """Mean over 6 seeds of the true accuracy of the incumbent after ``evals`` evaluations (RL's
    controller costs about 50 ms a proposal, so it is held to the shorter budget)."""
    table = nb201_objective(load_nb201("cifar100"))

    def mean_final(searcher_name: str) -> float:
        finals = []
        for seed in range(6):
            history = simulate(_searcher(searcher_name, seed), table, workers=4,
                               max_evals=evals, seed=seed)
            finals.append(incumbent_curve(history)[-1])
        return float(np.mean(finals))

    assert mean_final(name) > mean_final("random") + 0.5


def test_the_benchmark_runs_a_searcher_with_given_options_and_rejects_bad_ones(capsys):
    import argparse
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # as test_data
    import nas_nb201 as bench

    parser = argparse.ArgumentParser()
    given = bench.parse_options(parser, ['qlearning={"q_lambda": 0}'], ["qlearning", "random"])
    assert given == {"qlearning": {"q_lambda": 0}}
    one_step = bench.run_one(("qlearning", 1, 0, 40, given["qlearning"], False))[3]
    default = bench.run_one(("qlearning", 1, 0, 40, None, False))[3]
    assert not np.array_equal(one_step, default)  # the option reached the searcher
    for bad, says in [('qlearning={"q_lamda": 0}', "Did you mean 'q_lambda'"),
                      ('qlearning={"q_lambda": 2}', "must be <= 1"),
                      ('rl={}', "one of the searchers run"),
                      ("qlearning=[1]", "expected a JSON object")]:
        with pytest.raises(SystemExit):
            bench.parse_options(parser, [bad], ["qlearning", "random"])
        assert says in capsys.readouterr().err


def test_the_benchmark_with_equal_times_changes_the_order_of_results_only_with_many_workers():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import nas_nb201 as bench

    def curve(workers: int, equal: bool) -> np.ndarray:
        return bench.run_one(("evolution", workers, 3, 60, None, equal))[3]

    # one worker: each result comes back before the next proposal, whatever it takes
    assert np.array_equal(curve(1, True), curve(1, False))
    # eight: with the table's times results come back out of order, with equal times they do not
    assert not np.array_equal(curve(8, True), curve(8, False))
