"""`hpnas extend DIR --samples N`: a finished search goes on with what its searcher learned,
and its results files grow."""

from __future__ import annotations

import pickle

import pandas as pd
import pytest
import yaml

from cluster.cli import main
from cluster.resume import SEARCHER_STATE, newest_session


def _searcher(directory):
    """The newest saved searcher state (a SpaceSearcher's attributes)."""
    prefix, suffix = SEARCHER_STATE
    with open(directory / f"{prefix}{newest_session(directory, SEARCHER_STATE)}{suffix}",
              "rb") as f:
        return pickle.load(f)


def _experiment(tmp_path, searcher):
    path = tmp_path / f"{searcher}.yaml"
    path.write_text(yaml.safe_dump({
        "name": searcher, "trainable": "nb201", "searcher": searcher, "scheduler": "fifo",
        "samples": 6, "max_concurrent_trials": 2, "seed": 2,
        "train": {"dataset": "cifar100"}, "storage": str(tmp_path / "runs")}))
    return path


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.parametrize("searcher", ["optuna", "evolution", "qlearning"])
def test_extend_keeps_what_the_searcher_learned_and_grows_the_results(tmp_path, local_ray,
                                                                     capsys, searcher):
    assert main(["run", str(_experiment(tmp_path, searcher)), "--progress-interval",
                 "1000"]) == 0
    directory = tmp_path / "runs" / searcher
    before = pd.read_parquet(directory / "trials.parquet")
    its_before = pd.read_parquet(directory / "iterations.parquet")
    assert len(before) == 6
    first = _searcher(directory)["strategy"]

    assert main(["extend", str(directory), "--time-budget-s", "60"]) == 2  # no trials left
    assert "has run all its 6 trials" in capsys.readouterr().err
    assert main(["extend", str(directory), "--samples", "4"]) == 0
    assert "extending" in capsys.readouterr().out
    after = pd.read_parquet(directory / "trials.parquet")
    assert len(after) == 10 and after["trial_id"].is_unique
    assert set(before["trial_id"]) < set(after["trial_id"])
    kept = after.set_index("trial_id").loc[before["trial_id"], before.columns[1:]]
    pd.testing.assert_frame_equal(kept.reset_index(drop=True),  # the first six as they were
                                  before.set_index("trial_id")[before.columns[1:]]
                                  .reset_index(drop=True), check_dtype=False)
    its_after = pd.read_parquet(directory / "iterations.parquet")
    assert len(its_after) == len(its_before) + 4
    assert yaml.safe_load((directory / "hpnas.yaml").read_text())["samples"] == 10

    grown = _searcher(directory)
    assert grown["suggested"] == 10 and grown["max_trials"] == 10
    core = grown["strategy"]
    if searcher == "optuna":  # one study: the first six trials and the new four
        assert len(core.study.trials) == 10
        assert [t.params for t in core.study.trials[:6]] == \
            [t.params for t in first.study.trials[:6]]
    elif searcher == "evolution":  # the population carried over and aged
        assert core.finished == 10 and core.asked == 10
        assert len(core.seen) == 10
    else:
        assert len(core.replay) >= len(first.replay) + 4
        assert core.q != first.q


def test_extend_refuses_what_it_cannot_extend(tmp_path, capsys):
    assert main(["extend", str(tmp_path), "--samples", "3"]) == 2
    assert "not an hpnas experiment directory" in capsys.readouterr().err
    assert main(["extend", str(tmp_path)]) == 2
    assert "--samples N" in capsys.readouterr().err
    assert main(["extend", str(tmp_path), "--samples", "0"]) == 2
    assert "must be >= 1" in capsys.readouterr().err
    # results of a newer schema
    (tmp_path / "hpnas.yaml").write_text("name: x\ntrainable: nb201\n")
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"trial_id": ["a"]}).replace_schema_metadata({b"hpnas_schema": b"9"})
    pq.write_table(table, tmp_path / "trials.parquet")
    assert main(["extend", str(tmp_path), "--samples", "3"]) == 2
    err = capsys.readouterr().err
    assert "schema 9" in err and "reads schemas 1, 2" in err and err.count("\n") == 1
