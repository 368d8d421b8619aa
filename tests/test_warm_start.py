"""`warm_start: DIR`: a search seeded with another experiment's finished trials.

Per searcher, the warm trials change what it proposes and are never proposed again; every bad
`warm_start` is one line before any work starts; end to end, a second experiment warm-started
from a first runs only new trials.
"""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from ray.tune.search import Searcher

from cluster.cli import main
from cluster.spec import SpecError, load_saved, spec_from_mapping
from results import ExperimentDir, write_parquet
from search import SEARCHERS, Strategy, WarmTrial, make_searcher
from search.registry import Entry
from spaces import get_space
from spaces.inline import compile_space

NB201 = get_space("nb201")
# Six decisions of four values, no conditions: a mutation changes exactly one of them.
FLAT = compile_space({f"d{i}": {"choice": ["a", "b", "c", "d"]} for i in range(6)})
# Conditional parameters (Optuna's distributions of the active ones only).
CNN = get_space("cifar_cnn").with_overrides({"num_conv_layers": {"high": 3}})
# Searchers whose core has no warm start yet: their test fails once they get one (strict).
NOT_YET: dict[str, str] = {}


def _registered(*skip: str) -> list:
    return [pytest.param(name, id=name, marks=[pytest.mark.xfail(
        strict=True, reason=NOT_YET[name])] if name in NOT_YET else [])
        for name in sorted(SEARCHERS) if name not in skip]


def _warm(space, n: int, seed: int = 0, best: int | None = None) -> list[WarmTrial]:
    """``n`` distinct complete trials of ``space``; trial ``best`` (default: the last) scores
    highest."""
    rng = np.random.default_rng(seed)
    configs: dict = {}
    while len(configs) < n:
        config = space.sample(rng)
        configs.setdefault(space.canonical(config), config)
    best = n - 1 if best is None else best
    return [WarmTrial(c, value=0.9 if i == best else 0.1 + 0.5 * i / n, epochs=1,
                      complete=True, trial_id=f"w{i}")
            for i, c in enumerate(configs.values())]


def _make(name: str, space=NB201, warm=(), seed: int = 0, max_trials=None, max_epochs=1,
          mode: str = "max", options=None):
    if name == "points" and options is None:
        options = {"points": [space.sample(np.random.default_rng(i)) for i in range(30)]}
    return make_searcher(name, space=space, metric="val_acc", mode=mode, seed=seed,
                         max_epochs=max_epochs, max_trials=max_trials, options=options,
                         warm=warm)


def _drive(searcher, n: int) -> list[dict]:
    """Up to ``n`` suggestions, each completed with a made-up value."""
    configs = []
    for i in range(n):
        config = searcher.suggest(f"t{i}")
        if config is None or config == Searcher.FINISHED:
            break
        configs.append(config)
        searcher.on_trial_complete(f"t{i}", {"val_acc": 0.3 + 0.01 * (i % 7),
                                             "training_iteration": 1})
    return configs


# -- every searcher ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", _registered())
def test_every_searcher_core_implements_warm(name):
    assert SEARCHERS[name].build.warm is not Strategy.warm


@pytest.mark.parametrize("name", _registered("bohb"))
def test_warm_configs_are_never_proposed_again(name):
    warm = _warm(NB201, 40)
    done = {NB201.canonical(t.config) for t in warm}
    options = None
    if name == "points":  # half of the points were run already (or their equivalents)
        new: dict = {}
        rng = np.random.default_rng(100)
        while len(new) < 10:
            config = NB201.sample(rng)
            if NB201.canonical(config) not in done:
                new.setdefault(NB201.canonical(config), config)
        options = {"points": [t.config for t in warm[:10]] + list(new.values())}
    searcher = _make(name, warm=warm, options=options)
    configs = _drive(searcher, 40)
    assert len(configs) >= 10
    assert not [c for c in configs if NB201.canonical(c) in done]
    if name == "points":
        assert len(configs) == 10  # the ten points not run yet, then FINISHED


@pytest.mark.parametrize("name", _registered("bohb", "points"))
def test_warm_trials_do_not_count_toward_samples(name):
    searcher = _make(name, warm=_warm(NB201, 30), max_trials=4)
    assert len(_drive(searcher, 10)) == 4
    assert searcher.suggest("t99") == Searcher.FINISHED
    assert searcher.warmed == 30


@pytest.mark.parametrize("name", _registered("bohb", "points"))
def test_warm_started_searcher_saves_and_restores(name, tmp_path):
    searcher = _make(name, warm=_warm(NB201, 20))
    _drive(searcher, 3)
    searcher.save(str(tmp_path / "state.pkl"))
    expected = _drive(searcher, 3)
    restored = _make(name)
    restored.restore(str(tmp_path / "state.pkl"))
    assert restored.warmed == 20
    assert [NB201.canonical(c) for c in _drive(restored, 3)] == \
        [NB201.canonical(c) for c in expected]


def test_warm_state_pickles():
    core = _make("rl", warm=_warm(NB201, 5)).strategy
    assert pickle.loads(pickle.dumps(core)).updates == 5


def test_a_searcher_is_warm_started_once_before_it_suggests():
    searcher = _make("random", warm=_warm(NB201, 3))
    with pytest.raises(RuntimeError, match="once"):
        searcher.warm(_warm(NB201, 3, seed=1))
    cold = _make("random")
    cold.suggest("t0")
    with pytest.raises(RuntimeError, match="before its first suggestion"):
        cold.warm(_warm(NB201, 3))


# -- keys: budget and mode ----------------------------------------------------------------------


def test_warm_keys_follow_this_budget_and_mode():
    trials = [WarmTrial({"d": 1}, value=0.5, epochs=3, complete=True),
              WarmTrial({"d": 2}, value=0.4, epochs=2, complete=False),
              WarmTrial({"d": 3}, value=0.3, epochs=5, complete=False)]
    assert [t.fidelity(3) for t in trials] == [math.inf, 2.0, math.inf]
    assert [t.fidelity(5) for t in trials] == [3.0, 2.0, math.inf]  # a longer budget now
    assert [t.fidelity(None) for t in trials] == [math.inf, 2.0, 5.0]
    core = _make("evolution", space=FLAT, mode="min", max_epochs=3,
                 warm=[WarmTrial(FLAT.sample(np.random.default_rng(0)), value=0.25, epochs=2,
                                 complete=False)]).strategy
    assert core.population[0][1] == (2.0, -0.25)  # minimised: the score is negated


# -- per searcher ------------------------------------------------------------------------------


def test_evolution_first_proposal_mutates_the_warm_best():
    warm = _warm(FLAT, 10, best=3)
    options = {"population_size": 10, "sample_size": 10}  # the tournament sees everyone
    searcher = _make("evolution", space=FLAT, warm=warm, options=options)
    assert searcher.strategy.finished == 10 and len(searcher.strategy.population) == 10
    best = warm[3].config
    for i in range(3):  # each proposal one decision away from the best (while it leads)
        child = searcher.suggest(f"t{i}")
        assert sum(child[k] != best[k] for k in best) == 1
    cold = _make("evolution", space=FLAT, options=options)
    firsts = [cold.suggest(f"t{i}") for i in range(3)]
    assert any(sum(c[k] != best[k] for k in best) != 1 for c in firsts)  # random, cold


def test_evolution_keeps_the_newest_warm_trials_as_its_population():
    warm = _warm(FLAT, 15)
    core = _make("evolution", space=FLAT, warm=warm,
                 options={"population_size": 10, "sample_size": 5}).strategy
    assert [c for c, _ in core.population] == [t.config for t in warm[5:]]
    assert core.finished == 15


def test_evolution_with_fewer_warm_trials_samples_until_the_population_is_full():
    core = _make("evolution", space=FLAT, warm=_warm(FLAT, 4),
                 options={"population_size": 10, "sample_size": 5}).strategy
    assert core.finished == 4  # six more must finish before mutation starts


def test_optuna_study_holds_the_warm_trials_with_their_distributions():
    rng = np.random.default_rng(0)
    configs = [CNN.sample(rng) for _ in range(12)]
    warm = [WarmTrial(c, value=0.1 * i, epochs=3, complete=True) for i, c in enumerate(configs)]
    warm.append(WarmTrial(configs[0], value=0.05, epochs=1, complete=False))  # stopped early
    study = _make("optuna", space=CNN, warm=warm, max_epochs=3).strategy.study
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 13
    assert [t.state.name for t in trials].count("COMPLETE") == 12
    assert trials[-1].state.name == "PRUNED" and trials[-1].intermediate_values == {1: 0.05}
    for trial, config in zip(trials, configs):
        assert trial.params == config  # only the active parameters, as define-by-run asks
        assert set(trial.distributions) == set(config)
    assert study.best_value == pytest.approx(1.1)


def test_optuna_proposes_differently_after_a_warm_start():
    warm = _warm(CNN, 20)
    warm_first = _make("optuna", space=CNN, warm=warm, max_epochs=1).suggest("t0")
    cold_first = _make("optuna", space=CNN, max_epochs=1).suggest("t0")
    assert warm_first != cold_first


def test_local_search_climbs_from_the_best_warm_config():
    warm = _warm(FLAT, 12, best=5)
    searcher = _make("local_search", space=FLAT, warm=warm, options={"initial": 10})
    core = searcher.strategy
    assert core.centre == FLAT.canonical(warm[5].config) and core.climbs == 1
    first = searcher.suggest("t0")
    assert sum(first[k] != warm[5].config[k] for k in first) == 1  # a neighbour of the best


def test_rl_controller_learns_from_the_warm_samples():
    warm = _warm(NB201, 30)
    core = _make("rl", warm=warm).strategy
    cold = _make("rl").strategy
    assert core.updates == 30 and len(core.evaluated) == 30
    assert cold.updates == 0 and core.baseline is not None
    changed = [not torch.equal(a, b) for a, b in zip(core.controller.parameters(),
                                                    cold.controller.parameters())]
    assert any(changed)


def test_rl_rewards_are_ranks_when_a_warm_trial_was_stopped_early():
    warm = _warm(NB201, 6)
    warm.append(WarmTrial(NB201.sample(np.random.default_rng(9)), value=0.99, epochs=1,
                          complete=False))
    core = _make("rl", warm=warm, max_epochs=3).strategy
    assert core.multi_fidelity and 0 <= core.baseline <= 1


def test_qlearning_replays_the_warm_episodes():
    warm = _warm(NB201, 30)
    core = _make("qlearning", warm=warm).strategy
    cold = _make("qlearning").strategy
    assert len(core.replay) == 30 and len(core.known) == 30 and core.q
    assert not cold.q and not cold.replay
    assert core.epsilon < cold.epsilon  # warm episodes count as models evaluated


def test_random_search_ends_when_every_config_was_run_already():
    tiny = compile_space({"a": ["x", "y"], "b": [1, 2]})
    everything = [WarmTrial({"a": a, "b": b}, value=0.5, epochs=1, complete=True)
                  for a in ("x", "y") for b in (1, 2)]
    searcher = _make("random", space=tiny, warm=everything[:3])
    assert all(c == {"a": "y", "b": 2} for c in _drive(searcher, 5))
    assert _make("random", space=tiny, warm=everything).suggest("t0") == Searcher.FINISHED


def test_grid_leaves_out_the_warm_configs():
    tiny = compile_space({"a": ["x", "y"], "b": [1, 2]})
    warm = [WarmTrial({"a": "x", "b": 2}, value=0.5, epochs=1, complete=True)]
    assert _drive(_make("grid", space=tiny, warm=warm), 10) == [
        {"a": "x", "b": 1}, {"a": "y", "b": 1}, {"a": "y", "b": 2}]


# -- the experiment file ----------------------------------------------------------------------


def _experiment(tmp_path: Path, name: str = "new", **changes) -> dict:
    data = {"name": name, "trainable": "nb201", "searcher": "evolution", "scheduler": "fifo",
            "samples": 3, "max_concurrent_trials": 2, "seed": 0,
            "storage": str(tmp_path / "runs")}
    data.update(changes)
    return data


def _source(tmp_path: Path, n: int = 6, *, name: str = "old", statuses=None, saved=None,
            columns=None, schema: str | None = "2", configs=None) -> Path:
    """A finished experiment's directory, written as hpnas writes it (without running it):
    ``n`` trials, ended in reverse order of their ids."""
    spec = spec_from_mapping(_experiment(tmp_path, name=name))
    directory = Path(spec.storage) / name
    directory.mkdir(parents=True)
    (directory / "hpnas.yaml").write_text(yaml.safe_dump({**spec.raw, **(saved or {})}))
    configs = configs or [t.config for t in _warm(NB201, n, seed=7)]
    statuses = statuses or ["complete"] * n
    rows = []
    for i, (config, status) in enumerate(zip(configs, statuses)):
        row = {"trial_id": f"old_{i:05d}", "status": status, "searcher": "random",
               **{f"config/{k}": config.get(k) for k in (columns or NB201.names)},
               "best_val_acc": None if status == "failed" else 0.5 + 0.01 * i,
               "last_val_acc": None if status == "failed" else 0.5 + 0.01 * i,
               "epochs": 0 if status == "failed" else 1, "wall_s": 1.0, "error": None}
        rows.append(row)
    table = pd.DataFrame(rows)
    if schema is None:
        import pyarrow as pa
        import pyarrow.parquet as pq
        pq.write_table(pa.Table.from_pandas(table, preserve_index=False),
                       directory / "trials.parquet")
    else:
        write_parquet(table, directory / "trials.parquet")
        if schema != "2":
            import pyarrow.parquet as pq
            written = pq.read_table(directory / "trials.parquet")
            pq.write_table(written.replace_schema_metadata({b"hpnas_schema": schema.encode()}),
                           directory / "trials.parquet")
    iterations = pd.DataFrame({"trial_id": [r["trial_id"] for r in rows],
                               "iteration": 1, "timestamp": list(range(n, 0, -1))})
    write_parquet(iterations, directory / "iterations.parquet")
    return directory


def test_warm_start_reads_the_finished_trials_oldest_first(tmp_path):
    source = _source(tmp_path, statuses=["complete", "failed", "pruned", "complete",
                                         "running", "complete"])
    spec = spec_from_mapping(_experiment(tmp_path, warm_start=str(source)))
    warm = spec.warm_start
    assert [t.trial_id for t in warm.trials] == ["old_00005", "old_00003", "old_00002",
                                                 "old_00000"]  # by the time they ended
    assert [t.complete for t in warm.trials] == [True, True, False, True]
    assert warm.trials[0].value == pytest.approx(0.55)
    assert spec.raw["warm_start"] == {"dir": str(source), "trials": [
        "old_00005", "old_00003", "old_00002", "old_00000"]}
    assert spec.make_searcher().warmed == 4


def test_warm_start_is_relative_to_the_experiment_file(tmp_path, monkeypatch):
    _source(tmp_path)
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(_experiment(tmp_path, warm_start="runs/old")))
    monkeypatch.chdir("/")
    from cluster.spec import load_spec
    spec = load_spec(path)
    assert spec.warm_start.directory == str(tmp_path / "runs" / "old")
    assert len(spec.warm_start.trials) == 6


def test_configs_outside_a_narrowed_space_are_skipped_and_counted(tmp_path):
    configs = [t.config for t in _warm(NB201, 8, seed=3)]
    source = _source(tmp_path, n=8, configs=configs)
    kept = [c for c in configs if c["edge_1_0"] != "none"]
    spec = spec_from_mapping(_experiment(tmp_path, warm_start=str(source), space={
        "name": "nb201", "overrides": {"edge_1_0": {"choices": [
            "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]}}}))
    assert 0 < len(kept) < 8  # the seed gives some of each
    assert len(spec.warm_start.trials) == len(kept)
    assert spec.warm_start.skipped == 8 - len(kept)
    assert "skipped" in spec.warm_start.note() and "edge_1_0" in spec.warm_start.note()


def test_a_trial_whose_config_pbt_changed_is_skipped(tmp_path):
    source = _source(tmp_path)
    table = pd.read_parquet(source / "trials.parquet")
    table["config_changes"] = [None, 2, None, None, None, None]
    write_parquet(table, source / "trials.parquet")
    warm = spec_from_mapping(_experiment(tmp_path, warm_start=str(source))).warm_start
    assert "old_00001" not in [t.trial_id for t in warm.trials] and len(warm.trials) == 5
    assert warm.skipped == 1 and "changed while it trained" in warm.note()


def test_listed_trials_only(tmp_path):
    source = _source(tmp_path)
    spec = spec_from_mapping(_experiment(tmp_path, warm_start={
        "dir": str(source), "trials": ["old_00001", "old_00004"]}))
    assert [t.trial_id for t in spec.warm_start.trials] == ["old_00004", "old_00001"]


def test_a_saved_experiment_does_not_read_its_warm_start_again(tmp_path):
    source = _source(tmp_path)
    spec = spec_from_mapping(_experiment(tmp_path, warm_start=str(source)))
    spec.directory.mkdir()
    ExperimentDir(spec.directory).spec_file.write_text(yaml.safe_dump(spec.raw))
    (source / "trials.parquet").unlink()  # gone: resuming, results and evaluate do not care
    assert load_saved(spec.directory, check_data=True).warm_start.trials == ()
    with pytest.raises(SpecError, match="no results yet"):  # a search started over would
        load_saved(spec.directory, check_data=True, read_warm_start=True)


BAD = [
    (lambda tmp: str(tmp / "nowhere"), ("but no such directory exists; give the directory of an "
                                        "earlier experiment")),
    (lambda tmp: str(tmp), "which is not an hpnas experiment (no hpnas.yaml)"),
    (lambda tmp: str(_source(tmp, saved={"metric": "val_loss", "mode": "min"})),
     ("an experiment that optimises val_loss (min), but this one optimises val_acc (max); "
      "warm-start from an experiment with the same metric and mode")),
    (lambda tmp: str(_source(tmp, saved={"mode": "min"})), "optimises val_acc (min), but"),
    (lambda tmp: _without_results(tmp), "which has no results yet (no trials.parquet)"),
    (lambda tmp: str(_source(tmp, schema="3")), ("whose results have schema 3, but this hpnas "
                                                 "reads results schemas 1, 2; upgrade hpnas")),
    (lambda tmp: str(_source(tmp, schema=None)), ("has no hpnas results schema (not written by "
                                                  "hpnas")),
    (lambda tmp: str(_source(tmp, columns=[*NB201.names[1:], "lr"])),
     ("whose trials searched other parameters (only there: lr; only here: edge_1_0); "
      "warm-start from an experiment over the same space")),
    (lambda tmp: str(_source(tmp, n=2, statuses=["failed", "running"])),
     "which has no complete or pruned trial with a finite val_acc (1 failed, 1 running)"),
    (lambda tmp: {"dir": str(_source(tmp)), "trials": ["old_00099"]},
     "`warm_start.trials` names 'old_00099', which"),
    (lambda tmp: {"dir": str(_source(tmp, n=2, statuses=["complete", "failed"])),
                  "trials": ["old_00001"]}, "names 'old_00001', which ended failed"),
    (lambda tmp: {"dir": str(_source(tmp)), "trial": ["old_00001"]},
     "`warm_start.trial` is not an option; allowed: dir, trials."),
    (lambda tmp: 3, ("`warm_start` is 3, but must be the directory of an earlier hpnas "
                     "experiment")),
    (lambda tmp: str(tmp / "runs" / "new"), "this experiment's own directory"),
]


def _without_results(tmp: Path) -> str:
    source = _source(tmp)
    (source / "trials.parquet").unlink()
    return str(source)


@pytest.mark.parametrize("make,message", BAD, ids=[
    "missing", "not-hpnas", "metric", "mode", "no-results", "newer-schema", "no-schema",
    "other-space", "nothing-finished", "unknown-trial", "failed-trial", "bad-key", "bad-type",
    "itself"])
def test_bad_warm_start_is_one_line(tmp_path, make, message):
    with pytest.raises(SpecError) as e:
        spec_from_mapping(_experiment(tmp_path, warm_start=make(tmp_path)))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_a_warm_start_none_of_whose_configs_fit_is_refused(tmp_path):
    config = {**NB201.sample(np.random.default_rng(0)), "edge_1_0": "none"}
    narrowed = {"name": "nb201", "overrides": {"edge_1_0": {"choices": ["skip_connect"]}}}
    with pytest.raises(SpecError, match="but none of its 1 finished trials can seed this search "
                                        r"\(the first: `edge_1_0` is 'none'"):
        spec_from_mapping(_experiment(tmp_path, space=narrowed, warm_start=str(
            _source(tmp_path, n=1, configs=[config]))))


def test_a_searcher_without_warm_start_is_refused(tmp_path, monkeypatch):
    class Cold(Strategy):
        def __init__(self, space, options, *, seed=None):
            pass

    monkeypatch.setitem(SEARCHERS, "random", Entry(SEARCHERS["random"].options, Cold))
    with pytest.raises(SpecError, match="searcher 'random' cannot be warm-started"):
        spec_from_mapping(_experiment(tmp_path, searcher="random",
                                      warm_start=str(_source(tmp_path))))


def test_hpnas_run_refuses_a_bad_warm_start_before_any_work(tmp_path, capsys):
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(_experiment(tmp_path, warm_start="runs/missing")))
    assert main(["run", str(path), "--no-dashboard"]) == 2
    err = capsys.readouterr().err
    assert "`warm_start` is" in err and "no such directory" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "runs" / "new").exists()


# -- end to end ---------------------------------------------------------------------------------


# Eight cells: three edges of two ops each, the other three fixed.
SMALL = {"name": "nb201", "overrides": {
    "edge_1_0": {"choices": ["skip_connect", "nor_conv_1x1"]},
    "edge_2_0": {"choices": ["nor_conv_1x1", "nor_conv_3x3"]},
    "edge_2_1": {"choices": ["avg_pool_3x3", "skip_connect"]},
    "edge_3_0": "nor_conv_3x3", "edge_3_1": "none", "edge_3_2": "skip_connect"}}


@pytest.mark.ray
@pytest.mark.slow
def test_a_warm_started_experiment_runs_only_new_trials(tmp_path, local_ray, capsys):
    from cluster.runner import run_experiment, save_spec

    first = run_experiment(spec_from_mapping(_experiment(
        tmp_path, name="first", searcher="random", samples=4, space=SMALL)), quiet=True)
    old = pd.read_parquet(first / "trials.parquet")
    edges = [c for c in old.columns if c.startswith("config/")]
    old_configs = {tuple(r) for r in old[edges].itertuples(index=False)}
    assert len(old) == 4 and set(old["status"]) == {"complete"}

    # the whole grid, less what the first experiment ran
    second = run_experiment(spec_from_mapping(_experiment(
        tmp_path, name="second", searcher="grid", samples=8, space=SMALL,
        warm_start=str(first))), quiet=True)
    assert "warm start: 4 trials of" in capsys.readouterr().err
    new = pd.read_parquet(second / "trials.parquet")
    new_configs = {tuple(r) for r in new[edges].itertuples(index=False)}
    assert len(new) == 8 - len(old_configs) == len(new_configs)
    assert not new_configs & old_configs and len(new_configs | old_configs) == 8
    assert not set(new["trial_id"]) & set(old["trial_id"])
    saved = yaml.safe_load((second / "hpnas.yaml").read_text())["warm_start"]
    assert saved["dir"] == str(first) and sorted(saved["trials"]) == sorted(old["trial_id"])

    # stopped before its first snapshot: `hpnas resume` starts over, seeded again
    spec = spec_from_mapping(_experiment(tmp_path, name="third", searcher="grid", samples=8,
                                         space=SMALL, warm_start=str(first)))
    save_spec(spec, spec.directory)
    assert main(["resume", str(spec.directory), "--no-dashboard"]) == 0
    assert "warm start: 4 trials of" in capsys.readouterr().err
    third = pd.read_parquet(spec.directory / "trials.parquet")
    assert {tuple(r) for r in third[edges].itertuples(index=False)} == new_configs

    # retraining its best trial is one fixed config: the warm start is left out
    best = tmp_path / "best.yaml"
    assert main(["results", str(second), "--best-config", str(best)]) == 0
    assert "warm_start" not in yaml.safe_load(best.read_text())


def test_bohb_learns_from_warm_trials_and_feeds_complete_ones_at_the_full_budget():
    """Stopped warm trials are results at the epoch they reached; complete ones wait for the
    full budget, which the first trial of the search to complete gives."""
    cnn = get_space("cifar_cnn")
    rng = np.random.default_rng(0)
    warm = []
    for i in range(40):  # a higher lr scores higher; stopped at epoch 1, or complete
        config = cnn.sample(rng)
        warm.append(WarmTrial(config, value=config["lr"] * 10, epochs=1 if i % 4 else 3,
                              complete=not i % 4, trial_id=f"w{i}"))

    def lrs(searcher):
        return [searcher.suggest(f"t{i}")["lr"] for i in range(15)]

    options = {"random_fraction": 0.0}
    cold = make_searcher("bohb", space=cnn, metric="val_acc", mode="max", seed=1,
                         max_epochs=3, options=options)
    warmed = make_searcher("bohb", space=cnn, metric="val_acc", mode="max", seed=1,
                           max_epochs=3, options=options, warm=warm)
    assert np.mean(lrs(warmed)) > np.mean(lrs(cold))
    core = warmed.strategy
    assert len(core.warm_complete) == 10 and 1 in core.bohb.bohber.configs
    for epoch in (1, 2, 3):
        warmed.on_trial_result("t0", {"val_acc": 0.5, "training_iteration": epoch})
    warmed.on_trial_complete("t0", {"val_acc": 0.5, "training_iteration": 3})
    assert core.warm_complete == [] and len(core.bohb.bohber.configs[3]) == 11
