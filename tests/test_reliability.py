"""Crashes: SIGKILL the driver mid-search, `hpnas resume`, and every trial is in the results once,
with the searcher continuing from its saved state."""

from __future__ import annotations

import glob
import os
import pickle
import signal
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from ray.tune.search import SearchGenerator, Searcher

from cluster.detached import signal_group, start_hpnas
from conftest import write_idx

pytestmark = [pytest.mark.ray, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = 16


FORGED = "9999-12-31_23-59-59"  # the session name of a forged later search state


def _searcher_state(directory: Path, missing_ok: bool = False) -> dict:
    """The searcher state Tune saved last in the experiment directory (one file per session,
    named by the session's start time; mtimes are not reliable, Tune re-syncs every file);
    ``missing_ok``: {} while there is none, or while it is being copied."""
    files = sorted(f for f in glob.glob(str(directory / "searcher-state-*.pkl"))
                   if FORGED not in f)
    if not files and missing_ok:
        return {}
    assert files, "Tune saved no searcher state"
    try:
        with open(files[-1], "rb") as f:
            return pickle.load(f)
    except EOFError:  # polled while Tune copies it to storage (not atomically)
        if missing_ok:
            return {}
        raise


def _trials(directory: Path) -> pd.DataFrame:
    path = directory / "trials.parquet"
    return pd.read_parquet(path) if path.is_file() else pd.DataFrame(columns=["status"])


def _forge_unpaired_search_state(directory: Path) -> None:
    """What a kill mid-copy can leave: the searcher state of a later session that handed out the
    whole budget and said it had finished, beside an older experiment snapshot."""
    import ray.cloudpickle as cloudpickle

    later = FORGED
    state = _searcher_state(directory)
    state = {**state, "suggested": SAMPLES, "live": {**state["live"], "ghost": object()}}
    (directory / f"searcher-state-{later}.pkl").write_bytes(cloudpickle.dumps(state))
    gen = sorted(glob.glob(str(directory / "search_gen_state-*.json")))[-1]
    with open(gen, "rb") as f:
        gen_state = cloudpickle.load(f)
    (directory / f"search_gen_state-{later}.json").write_bytes(
        cloudpickle.dumps({**gen_state, "finished": True}))


@pytest.mark.parametrize("searcher", ["optuna", "user"])
def test_sigkill_of_the_driver_then_resume_keeps_every_trial_once(tmp_path, searcher):
    """``optuna``: the built-in CNN, and a forged later search state beside the snapshot.
    ``user``: the example project's own trainable (it checkpoints each epoch) and the space
    written in its experiment file, searched by evolution (whose saved outcomes the resumed
    search must keep)."""
    root = write_idx(tmp_path / "fm", n_train=400, n_test=100)
    experiment = {
        "name": "kill", "trainable": "cifar_cnn", "searcher": searcher, "scheduler": "fifo",
        "samples": SAMPLES, "max_concurrent_trials": 2, "seed": 0,
        "space": {"name": "cifar_cnn", "overrides": {"num_conv_layers": {"high": 2}}},
        "data": {"name": "fashion_mnist", "root": str(root), "val_size": 100, "test_size": 100},
        "train": {"epochs": 2, "batch_size": 50}, "storage": str(tmp_path / "results")}
    if searcher == "user":
        experiment["searcher"] = {"name": "evolution", "population_size": 4, "sample_size": 2}
        example = ROOT / "examples" / "user_model"
        for key in ("data", "train", "space", "trainable"):
            del experiment[key]
        experiment.update({
            **{k: v for k, v in yaml.safe_load((example / "experiment.yaml").read_text()).items()
               if k in ("trainable", "metric", "mode", "space")},
            "code": str(example), "max_epochs": 2,
            "train": {"data_dir": str(root), "train_size": 300, "val_size": 100, "epochs": 2}})
    path = tmp_path / "kill.yaml"
    path.write_text(yaml.safe_dump(experiment, sort_keys=False))  # a space is in order
    directory = tmp_path / "results" / "kill"
    log = tmp_path / "hpnas.log"

    run = start_hpnas("run", str(path), "--no-dashboard", log=log)
    try:
        # Kill once Tune has snapshotted a searcher that learned from 2 trials (a snapshot is
        # taken about every 10 s), mid-search.
        deadline = time.monotonic() + 240
        while len(_searcher_state(directory, missing_ok=True).get("outcomes", {})) < 2:
            assert run.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        os.kill(run.pid, signal.SIGKILL)  # the driver dies mid-search, no cleanup
        run.wait()
    finally:
        signal_group(run)  # and the embedded Ray it started with it
    assert (_trials(directory)["status"] != "running").sum() < SAMPLES  # killed mid-search
    saved = _searcher_state(directory)
    if searcher == "optuna":
        _forge_unpaired_search_state(directory)

    resume = start_hpnas("resume", str(directory), "--no-dashboard", log=log)
    try:
        assert resume.wait(timeout=300) == 0, log.read_text()[-3000:]
    finally:
        signal_group(resume)
    after = _trials(directory)
    assert after["trial_id"].is_unique  # nothing duplicated
    assert len(after) == SAMPLES  # the searcher's budget went on, not from zero
    assert set(after["status"]) <= {"complete", "pruned"}, after[["status", "error"]].to_dict("records")
    # Nothing lost: every trial the restored snapshot knew ended is there with its outcome (those
    # that ended after the snapshot are rolled back and their budget is run again).
    known = set(saved["outcomes"])
    assert known and known <= set(after["trial_id"])
    iterations = pd.read_parquet(directory / "iterations.parquet")
    assert not iterations.duplicated(["trial_id", "iteration"]).any()
    # The resumed searcher continued from the state saved before the kill: what it had learned
    # then is still in its final state, unchanged, and it suggested exactly the budget.
    final = _searcher_state(directory)
    assert final["suggested"] == SAMPLES
    for trial_id, status in saved["outcomes"].items():
        assert final["outcomes"][trial_id] == status
    assert len(final["outcomes"]) > len(saved["outcomes"])
    if searcher == "optuna":  # the forged later state was not restored
        assert "the search state of session 9999-12-31_23-59-59 is newer" in log.read_text()


def generator(storage=None):
    """A random search of 4 NAS-Bench-201 trials behind a limiter, as hpnas restores it."""
    from ray.tune.search import ConcurrencyLimiter

    from cluster.resume import PairedSearchGenerator
    from search import make_searcher
    from spaces import get_space

    searcher = make_searcher("random", space=get_space("nb201"), metric="val_acc",
                             mode="max", seed=0, max_epochs=1, max_trials=4)
    return PairedSearchGenerator(ConcurrencyLimiter(searcher, max_concurrent=2),
                                 experiment_dir=storage)


def test_the_search_state_paired_with_the_snapshot_is_restored(tmp_path):
    """A later session's search state (it handed out the whole budget and said FINISHED) beside
    the snapshot of an earlier one: the earlier session's own search state is restored."""
    from cluster.resume import restoring_from

    storage, staging = tmp_path / "storage", tmp_path / "staging"
    storage.mkdir()
    staging.mkdir()
    early, late = "2026-01-01_10-00-00", "2026-01-01_11-00-00"
    (storage / f"experiment_state-{early}.json").write_text("{}")
    saved = generator()
    saved.searcher.suggest("a")  # session `early`: one trial handed out, snapshotted
    saved.save_to_dir(str(staging), session_str=early)
    for trial_id in "bcd":  # session `late`: the whole budget, then FINISHED; no snapshot
        saved.searcher.on_trial_complete(chr(ord(trial_id) - 1))
        saved.searcher.suggest(trial_id)
    assert saved.searcher.searcher.suggest("e") == Searcher.FINISHED
    saved._finished = True
    saved.save_to_dir(str(staging), session_str=late)

    restored = generator(str(storage))
    restored.restore_from_dir(str(staging))
    assert restored.searcher.searcher.suggested == 1 and restored.searcher.live_trials == {"a"}
    assert restored._finished is False
    # A copy of the experiment resumed elsewhere: the directory being restored decides, not the
    # one recorded when the experiment was built (whose copy went on to a later snapshot).
    original = tmp_path / "original"
    original.mkdir()
    (original / f"experiment_state-{late}.json").write_text("{}")
    copied = generator(str(original))
    with restoring_from(str(storage)):
        copied.restore_from_dir(str(staging))
    assert copied.searcher.searcher.suggested == 1
    # Without the pairing, Tune's own choice (the newest files) would have restored `late`.
    tune_choice = generator()
    SearchGenerator.restore_from_dir(tune_choice, str(staging))
    assert tune_choice.searcher.searcher.suggested == 4 and tune_choice._finished is True


@pytest.mark.parametrize("paired", [True, False])
def test_a_search_state_cut_short_by_a_kill_restores_a_fresh_searcher(tmp_path, capsys, paired):
    """Tune copies the search state to storage file by file, not atomically: a kill during the
    copy leaves a truncated pickle. The resumed run starts the searcher afresh (and replays the
    restored trials to it) instead of failing to unpickle."""
    storage, staging = tmp_path / "storage", tmp_path / "staging"
    storage.mkdir()
    staging.mkdir()
    session = "2026-01-01_10-00-00"
    if paired:
        (storage / f"experiment_state-{session}.json").write_text("{}")
    saved = generator()
    saved.searcher.suggest("a")
    saved.save_to_dir(str(staging), session_str=session)
    state = staging / f"searcher-state-{session}.pkl"
    state.write_bytes(state.read_bytes()[: len(state.read_bytes()) // 2])

    restored = generator(str(storage))
    restored.restore_from_dir(str(staging))
    assert restored.searcher.searcher.suggested == 0 and not restored.searcher.live_trials
    assert restored._finished is False
    assert f"searcher-state-{session}.pkl is cut short" in capsys.readouterr().out


def test_checkpoint_janitor_keeps_what_the_last_snapshot_can_name(tmp_path):
    from types import SimpleNamespace

    import pyarrow.fs as pafs

    from cluster.checkpoints import CheckpointJanitor

    janitor = CheckpointJanitor(tmp_path, snapshot_cache_s=0)  # the test moves time itself
    trial = SimpleNamespace(trial_id="t")
    snapshot = tmp_path / "experiment_state-x.json"
    made = []

    def register(i: int) -> None:
        path = tmp_path / "t" / f"checkpoint_{i:06d}"
        path.mkdir(parents=True)
        made.append(path)
        janitor.on_checkpoint(i, [], trial, SimpleNamespace(filesystem=pafs.LocalFileSystem(),
                                                            path=str(path)))

    def snapshot_at(t: float) -> None:  # the storage's clock, whatever this machine's says
        snapshot.write_text("{}")
        os.utime(snapshot, (t, t))

    for i in range(3):
        register(i)  # no snapshot yet: nothing may go
    assert all(p.exists() for p in made)
    snapshot_at(1000.0)  # a snapshot after checkpoints 0-2: it names 2 (or 1, if synced late)
    register(3)
    register(4)
    assert [p.exists() for p in made] == [False, True, True, True, True]
    snapshot_at(2000.0)  # a snapshot after all of them
    janitor.on_experiment_end([])
    assert [p.exists() for p in made] == [False, False, False, True, True]


def test_a_resumed_janitor_adopts_the_checkpoints_left_before_the_crash(tmp_path):
    from types import SimpleNamespace

    import pyarrow.fs as pafs
    from ray.tune import Checkpoint

    from cluster.checkpoints import CheckpointJanitor

    trial_dir = tmp_path / "t"
    made = [trial_dir / f"checkpoint_{i:06d}" for i in range(6)]
    for path in made:
        path.mkdir(parents=True)
    snapshot = tmp_path / "experiment_state-x.json"
    snapshot.write_text("{}")
    os.utime(snapshot, (1000.0, 1000.0))
    # The snapshot names checkpoint 3; 4 and 5 were written after it, before the crash.
    trial = SimpleNamespace(trial_id="t", status="RUNNING", checkpoint=Checkpoint(
        str(made[3]), filesystem=pafs.LocalFileSystem()))
    janitor = CheckpointJanitor(tmp_path, snapshot_cache_s=0)  # the test moves time itself
    janitor.setup()
    janitor.on_step_begin(0, [trial])
    assert all(p.exists() for p in made)  # no snapshot of this run yet
    os.utime(snapshot, (2000.0, 2000.0))
    janitor.collect()
    assert [p.exists() for p in made] == [False, False, True, True, True, True]
    # The trial ends at checkpoint 4 (written again by the resumed run): 5, left from before
    # the crash, names nothing and goes.
    trial.checkpoint = Checkpoint(str(made[4]), filesystem=pafs.LocalFileSystem())
    trial.status = "TERMINATED"
    janitor.on_experiment_end([trial])
    assert [p.exists() for p in made] == [False, False, True, True, True, False]


def test_a_resumed_tally_counts_the_trials_that_ended_before_the_crash():
    from types import SimpleNamespace

    from cluster.progress import TrialTally
    from search.outcome import Status

    def trial(trial_id, status, value, iteration):
        return SimpleNamespace(trial_id=trial_id, status=status,
                               last_result={"val_acc": value, "training_iteration": iteration},
                               metric_analysis={"val_acc": {"max": value + 0.1}})

    tally = TrialTally(metric="val_acc", mode="max", max_epochs=3)
    tally.setup()
    tally.on_step_begin(0, [trial("a", "TERMINATED", 0.5, 3), trial("b", "TERMINATED", 0.3, 1),
                            trial("c", "ERROR", float("nan"), 1), trial("d", "RUNNING", 0.9, 2)])
    assert tally.counts() == {Status.COMPLETE: 1, Status.PRUNED: 1, Status.FAILED: 1}
    assert tally.best == (1.0, "d") and not tally.running  # d is still running: not counted


EPOCHS = 6


def slow_epochs(config, settings=None):
    """Six 1-second epochs, a checkpoint each; says where it started and on which node."""
    import ray

    from trainables.loop import load_state, report_epoch

    marker = Path(config["marker"])
    state = load_state() or {"epoch": 0}
    start = state["epoch"]
    for epoch in range(start + 1, EPOCHS + 1):
        time.sleep(1.0)
        marker.write_text(str(epoch))
        report_epoch({"val_acc": epoch / EPOCHS, "epoch": epoch, "started_at": start,
                      "node": ray.get_runtime_context().get_node_id()}, {"epoch": epoch})


def test_a_lost_worker_node_restarts_its_trial_from_the_checkpoint_elsewhere(tmp_path, caplog):
    import logging
    import threading

    import ray

    from cluster.local_cluster import LocalCluster
    from cluster.runner import run_experiment
    from cluster.spec import spec_from_mapping

    marker = tmp_path / "epoch"
    spec = spec_from_mapping({
        "name": "lost", "trainable": "nb201", "searcher": "random", "scheduler": "fifo",
        "samples": 1, "max_concurrent_trials": 1, "max_failures": 2,
        "resources": {"cpus": 1, "gpus": 1}, "storage": str(tmp_path / "results")})
    tests = str(Path(__file__).resolve().parent)
    # The head has no GPU, so the trial runs on the worker, which is then lost.
    with LocalCluster(nodes=2, cpus_per_node=2, node_gpus=(0, 1), memory_gb=1.5,
                      include_dashboard=False) as cluster:
        ray.init(address=cluster.address, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": tests}})
        try:
            fn = lambda config, settings=None: slow_epochs(  # noqa: E731
                {**config, "marker": str(marker)}, settings)
            errors: list[BaseException] = []

            def run() -> None:
                try:
                    run_experiment(spec, quiet=True, trainable_fn=fn)
                except BaseException as e:
                    errors.append(e)

            caplog.set_level(logging.WARNING, logger="search.adapter")
            driver = threading.Thread(target=run)
            driver.start()
            deadline = time.monotonic() + 120
            while not (marker.exists() and int(marker.read_text() or 0) >= 3):
                assert time.monotonic() < deadline and driver.is_alive()
                time.sleep(0.1)
            (lost,) = cluster.workers()
            cluster.kill_node(lost)
            cluster.add_worker(gpus=1)
            driver.join(timeout=240)
            assert not driver.is_alive() and not errors, errors
        finally:
            ray.shutdown()
    trials = pd.read_parquet(tmp_path / "results" / "lost" / "trials.parquet")
    iterations = pd.read_parquet(tmp_path / "results" / "lost" / "iterations.parquet")
    assert len(trials) == 1 and trials["status"].iloc[0] == "complete"
    assert list(iterations["iteration"]) == list(range(1, EPOCHS + 1))  # each epoch once
    resumed = iterations[iterations["started_at"] > 0]
    assert len(resumed) > 0 and resumed["started_at"].min() >= 2  # from its checkpoint
    assert iterations["node"].nunique() == 2  # on another node
    # The searcher was told of the trial once, when it completed (not of the lost attempt).
    state = _searcher_state(tmp_path / "results" / "lost")
    assert state["suggested"] == 1
    assert [s.value for s in state["outcomes"].values()] == ["complete"]
    assert "unknown trial" not in caplog.text
