"""`tracking:` in the experiment file: parsing, every bad input as one line, and real runs whose
TensorBoard events, MLflow runs and W&B offline runs are read back with each tool's own reader."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import yaml

from cluster import tracking
from cluster.cli import main
from cluster.runner import resume_experiment, run_experiment, save_spec
from cluster.spec import SpecError, spec_from_mapping
from cluster.tracking import MlflowOptions, TensorboardOptions, WandbOptions, parse_tracking


def _mapping(tmp_path: Path, **changes) -> dict:
    data = {"name": "tracked", "trainable": "nb201", "searcher": "random", "scheduler": "fifo",
            "samples": 3, "max_concurrent_trials": 2, "storage": str(tmp_path / "runs")}
    data.update(changes)
    return data


# ---------------------------------------------------------------- parsing (no Ray)

@pytest.mark.parametrize("value,expected", [
    pytest.param("tensorboard", (TensorboardOptions(),), id="name"),
    pytest.param(["tensorboard", "mlflow"], (TensorboardOptions(), MlflowOptions()), id="list"),
    pytest.param({"mlflow": {"tracking_uri": "http://mlflow.internal:5000"},
                  "wandb": {"project": "fm", "mode": "online"}},
                 (MlflowOptions(tracking_uri="http://mlflow.internal:5000"),
                  WandbOptions(project="fm", mode="online")), id="mapping"),
    pytest.param(["tensorboard", {"wandb": {"entity": "lab"}}],
                 (TensorboardOptions(), WandbOptions(entity="lab")), id="list-with-options"),
    pytest.param({"wandb": None}, (WandbOptions(),), id="mapping-no-options"),
    pytest.param(None, (), id="none"),
])
def test_parse_tracking_accepts_every_form(value, expected):
    assert parse_tracking(value) == expected


def test_parse_tracking_defaults_are_local_and_offline():
    (mlflow, wandb) = parse_tracking(["mlflow", "wandb"])
    assert mlflow.tracking_uri is None and mlflow.experiment_name is None
    assert wandb.mode == "offline" and wandb.project is None and wandb.dir is None


def test_relative_paths_are_resolved_and_saved_with_the_experiment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = spec_from_mapping(_mapping(tmp_path, tracking={
        "mlflow": {"tracking_uri": "sqlite:///store/mlflow.db"}, "wandb": {"dir": "wb"}}))
    mlflow, wandb = spec.tracking
    assert mlflow.tracking_uri == f"sqlite:///{tmp_path.resolve()}/store/mlflow.db"
    assert wandb.dir == str(tmp_path.resolve() / "wb")
    assert spec.raw["tracking"] == {
        "mlflow": {"tracking_uri": mlflow.tracking_uri}, "wandb": {"mode": "offline",
                                                                 "dir": wandb.dir}}
    saved = yaml.safe_load(yaml.safe_dump(spec.raw))  # what hpnas.yaml holds, read back
    assert spec_from_mapping(saved).tracking == spec.tracking


def test_no_tracking_means_no_callbacks(tmp_path):
    spec = spec_from_mapping(_mapping(tmp_path))
    assert spec.tracking == () and "tracking" not in spec.raw
    assert tracking.tracking_callbacks(spec) == []


BAD = [
    ("mlfow", ("`tracking` names 'mlfow', but the trackers are tensorboard, mlflow, wandb. "
               "Did you mean 'mlflow'?")),
    (["tensorboard", "neptune"], "`tracking` names 'neptune', but the trackers are"),
    ({"mlflow": {"tracking_url": "http://x:5000"}},
     ("`tracking.mlflow.tracking_url` is not an option. Did you mean 'tracking_uri'? Allowed: "
      "tracking_uri, experiment_name.")),
    ({"wandb": {"mode": "offlin"}}, ("`tracking.wandb.mode` is 'offlin', but must be one of "
                                     "'offline', 'online', 'disabled'.")),
    ({"wandb": {"project": 3}}, "`tracking.wandb.project` is 3, but must be a string or null."),
    ({"tensorboard": {"logdir": "tb"}}, "`tracking.tensorboard.logdir` is not an option."),
    ({"mlflow": {"tracking_uri": "mlruns"}}, ("`tracking.mlflow.tracking_uri` is 'mlruns', but "
                                              "must be a URI: http://HOST:5000")),
    ({"mlflow": {"tracking_uri": "file:///tmp/mlruns"}}, "is 'file:///tmp/mlruns', but must be"),
    ({"mlflow": "http://x:5000"}, ("`tracking.mlflow` is 'http://x:5000', but must be a "
                                   "mapping of options.")),
    (["mlflow", "mlflow"], "`tracking` names 'mlflow' twice; name each tracker once."),
    (3, "`tracking` is 3, but must be a tracker's name, a list of them, or a mapping"),
    ([["tensorboard"]], "`tracking` holds ['tensorboard'], but must be a tracker's name"),
]


@pytest.mark.parametrize("value,message", [pytest.param(v, m, id=m[:40]) for v, m in BAD])
def test_bad_tracking_is_one_line_naming_the_fix(tmp_path, value, message):
    with pytest.raises(SpecError) as error:
        spec_from_mapping(_mapping(tmp_path, tracking=value))
    assert message in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("value,message", [
    pytest.param("mlflow", "`tracking.mlflow.tracking_uri` is not set, but `storage` is a URI",
                 id="mlflow"),
    pytest.param("wandb", "`tracking.wandb.dir` is not set, but `storage` is a URI", id="wandb"),
])
def test_trackers_writing_files_need_a_local_place_when_storage_is_a_uri(value, message):
    with pytest.raises(ValueError, match=message):
        parse_tracking(value, local_storage=False)
    assert parse_tracking("tensorboard", local_storage=False) == (TensorboardOptions(),)
    assert parse_tracking({"mlflow": {"tracking_uri": "http://x:5000"},
                           "wandb": {"dir": "/tmp/wb"}}, local_storage=False)


@pytest.mark.parametrize("name,module", [pytest.param(n, t.module, id=n)
                                         for n, t in tracking.TRACKERS.items()])
def test_missing_package_is_one_line_with_the_pip_extra(tmp_path, monkeypatch, capsys, name,
                                                        module):
    monkeypatch.setattr(tracking, "_installed", lambda m: m != module)
    with pytest.raises(SpecError, match=rf"but {module} is not installed here; install it "
                                        rf"with: pip install 'hpnas\[{name}\]'"):
        spec_from_mapping(_mapping(tmp_path, tracking=name))
    # Checked where the experiment runs: a job submitted to a cluster is checked there.
    assert spec_from_mapping(_mapping(tmp_path, tracking=name), check_data=False).tracking

    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(_mapping(tmp_path, tracking=[name])))
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hpnas: error: `tracking` names") and "\n" not in err
    assert not (tmp_path / "runs").exists()  # refused before anything was written


def test_resume_without_the_package_is_one_line(tmp_path, monkeypatch, capsys):
    spec = spec_from_mapping(_mapping(tmp_path, tracking="mlflow"))
    save_spec(spec, spec.directory)
    monkeypatch.setattr(tracking, "_installed", lambda m: m != "mlflow")
    assert main(["resume", str(spec.directory), "--no-dashboard"]) == 2
    err = capsys.readouterr().err.strip()
    assert "pip install 'hpnas[mlflow]'" in err and "\n" not in err


# ---------------------------------------------------------------- real runs

def _fit(config, settings=None, marker=""):
    """Four epochs with a checkpoint each; given a ``marker`` path, the first trial to reach
    epoch 3 fails there once."""
    from trainables.loop import load_state, report_epoch

    state = load_state() or {"epoch": 0}
    for epoch in range(state["epoch"] + 1, 5):
        if marker and epoch == 3 and not Path(marker).exists():
            Path(marker).write_text("failed once")
            raise RuntimeError("synthetic crash at epoch 3")
        report_epoch({"val_acc": epoch / 10}, {"epoch": epoch})


def _trial_dirs(directory: Path) -> list[Path]:
    """The trials' folders that hold TensorBoard event files."""
    return [p for p in directory.iterdir() if any(p.glob("events.out.tfevents.*"))]


def _mlflow_runs(directory: Path, name: str):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{directory / 'mlflow' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(name)
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return client, parents, children


def _wandb_records(path: Path):
    """The records of a W&B run file (``run-<id>.wandb``): W&B's header, then LevelDB-log
    records (32 KiB blocks; 7-byte headers: CRC, length, type) holding W&B's protobufs."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    block, pos, pending = 32768, 7, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # the block's tail is padding
            pos += block - pos % block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        pending += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a whole record, or the last piece of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def _items(items) -> dict:
    """W&B's key/JSON-value items (a key may be given as its path) as a dict."""
    return {item.key or "/".join(item.nested_key): json.loads(item.value_json)
            for item in items}


@pytest.fixture
def no_tracking_env(monkeypatch):
    """MLflow's callback sets MLFLOW_TRACKING_URI in this process: put it back afterwards."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


class _Trial:
    """What Ray's logger callbacks read of a trial."""

    def __init__(self, trial_id: str, config: dict) -> None:
        self.trial_id, self.config = trial_id, config

    def __str__(self) -> str:
        return f"fit_{self.trial_id}"


def test_mlflow_interrupted_runs_end_killed_and_resume_logs_into_them(tmp_path,
                                                                      no_tracking_env):
    """Driven as Tune drives it, without Ray: an interrupt ends the parent and the running
    trial's run KILLED; the callback as Tune restores it (unpickled from its saved state)
    reopens the same parent and the trial's own run."""
    from ray import cloudpickle

    spec = spec_from_mapping(_mapping(tmp_path, tracking="mlflow"))
    saved = cloudpickle.dumps(tracking.tracking_callbacks(spec)[0])  # as Tune saves it
    running, done = _Trial("a_00000", {"lr": 0.1}), _Trial("a_00001", {"lr": 0.2})
    callback = cloudpickle.loads(saved)
    callback.setup()
    for trial in (running, done):
        callback.log_trial_start(trial)
        callback.log_trial_result(1, trial, {"val_acc": 0.5, "training_iteration": 1,
                                             "config": trial.config, "pid": 7, "done": False})
    callback.log_trial_end(done)
    callback.on_experiment_end([running, done])

    client, parents, children = _mlflow_runs(spec.directory.local, "tracked")
    status = {c.data.tags["trial_id"]: c.info.status for c in children}
    assert parents[0].info.status == "KILLED" and status == {"a_00000": "KILLED",
                                                             "a_00001": "FINISHED"}
    child = next(c for c in children if c.data.tags["trial_id"] == "a_00000")
    assert child.data.params == {"lr": "0.1"}
    assert set(child.data.metrics) == {"val_acc", "training_iteration"}  # no config, pid

    resumed = cloudpickle.loads(saved)
    resumed.setup()
    assert resumed.parent_run_id == parents[0].info.run_id
    again = _Trial("a_00000", {"lr": 0.1})  # Tune's restored trial: another object
    resumed.log_trial_start(again)
    resumed.log_trial_result(2, again, {"val_acc": 0.7, "training_iteration": 2})
    resumed.log_trial_end(again)
    resumed.on_experiment_end([again, done])
    client, parents, children = _mlflow_runs(spec.directory.local, "tracked")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert len(children) == 2 and {c.info.status for c in children} == {"FINISHED"}
    history = client.get_metric_history(child.info.run_id, "val_acc")
    assert [(m.step, m.value) for m in history] == [(1, 0.5), (2, 0.7)]


def test_mlflow_logs_a_config_pbt_changed_as_tags(tmp_path, no_tracking_env):
    """PBT restarts a trial with a new config: MLflow params cannot change, so the new values
    go to `config/<param>` tags and the run goes on."""
    spec = spec_from_mapping(_mapping(tmp_path, tracking="mlflow"))
    callback = tracking.tracking_callbacks(spec)[0]
    callback.setup()
    trial = _Trial("p_00000", {"lr": 0.1, "depth": 2})
    callback.log_trial_start(trial)
    trial.config = {"lr": 0.12, "depth": 2, "momentum": 0.9}  # exploited and perturbed
    callback.log_trial_start(trial)
    callback.log_trial_end(trial)
    callback.on_experiment_end([trial])
    _, _, children = _mlflow_runs(spec.directory.local, "tracked")
    assert children[0].data.params == {"lr": "0.1", "depth": "2", "momentum": "0.9"}
    assert children[0].data.tags["config/lr"] == "0.12"
    assert "config/depth" not in children[0].data.tags


@pytest.mark.ray
@pytest.mark.slow
def test_every_tracker_records_every_trial(tmp_path, local_ray, no_tracking_env):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    spec = spec_from_mapping(_mapping(tmp_path, tracking=["tensorboard", "mlflow", "wandb"]))
    directory = Path(run_experiment(spec, quiet=True, dashboard=False, trainable_fn=_fit))
    expected = [0.1, 0.2, 0.3, 0.4]

    # TensorBoard: an event file in each trial's folder, every report at its iteration.
    trial_dirs = _trial_dirs(directory)
    assert len(trial_dirs) == 3
    for trial_dir in trial_dirs:
        events = EventAccumulator(str(trial_dir))
        events.Reload()
        scalars = events.Scalars("ray/tune/val_acc")
        assert [e.step for e in scalars] == [1, 2, 3, 4]
        assert [e.value for e in scalars] == pytest.approx(expected)

    # MLflow: the default store in the experiment directory; one parent, a child per trial.
    client, parents, children = _mlflow_runs(directory, "tracked")
    assert len(parents) == 1 and len(children) == 3
    parent = parents[0]
    assert parent.info.status == "FINISHED" and parent.data.params["searcher"] == "random"
    assert (directory / "mlflow" / "parent-run-id").read_text() == parent.info.run_id
    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.info.status == "FINISHED"
        assert set(child.data.params) == set(spec.space.names)  # the trial's config
        history = client.get_metric_history(child.info.run_id, "val_acc")
        assert [m.step for m in history] == [1, 2, 3, 4]
        assert [m.value for m in history] == pytest.approx(expected)
        assert not any(key.startswith("config") for key in child.data.metrics)
    trial_ids = set(pd.read_parquet(directory / "trials.parquet")["trial_id"])
    assert {c.data.tags["trial_id"] for c in children} == trial_ids

    # W&B: offline runs under the experiment directory, project and group the experiment.
    files = sorted((directory / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 3
    for path in files:
        records = list(_wandb_records(path))
        run = next(r.run for r in records if r.WhichOneof("record_type") == "run")
        assert run.project == "tracked" and run.run_group == "tracked"
        config = _items(run.config.update)
        assert set(spec.space.names) <= set(config)
        history = [_items(r.history.item) for r in records
                   if r.WhichOneof("record_type") == "history"]
        assert [h.get("training_iteration") for h in history] == [1, 2, 3, 4], history
        assert [h["val_acc"] for h in history] == pytest.approx(expected)


# One trial's W&B logging actor, run in a fresh process that then does what Ray does when the
# actor's `run` returns: kill the process's children (W&B's service among them), then exit.
_WANDB_ACTOR_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from ray.air.integrations.wandb import _QueueItem
    from cluster.trackers import FlushingWandbActor

    class Queue:
        def __init__(self, items):
            self.items = list(items)

        def get(self):
            return self.items.pop(0)

    def children(pid):  # from /proc: every process whose parent is pid, and theirs
        found = []
        for entry in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            if parent == pid:
                found += [int(entry), *children(int(entry))]
        return found

    results = [(_QueueItem.RESULT, {"val_acc": e / 10, "training_iteration": e}) for e in (1, 2)]
    actor = FlushingWandbActor(logdir=sys.argv[1],
                               queue=Queue([*results, (_QueueItem.END, None)]), exclude=[],
                               to_config=[], project="p", group="g", name="t", mode="offline",
                               dir=sys.argv[1])
    actor.run()
    left = children(os.getpid())
    print(len(left), "processes left")
    for child in left:
        os.kill(child, signal.SIGKILL)
    os._exit(0)
""")


@pytest.mark.slow
def test_a_wandb_run_file_is_complete_when_its_logging_actor_returns(tmp_path):
    """Ray kills a trial's W&B actor, and W&B's service process with it, once the actor's
    `run` returns; by then the service must have written the run file and exited (Ray's own
    actor leaves it running, and on a loaded machine its file once held only its header)."""
    repo = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", _WANDB_ACTOR_SCRIPT, str(tmp_path)],
                          cwd=repo, env={**os.environ, "WANDB_MODE": "offline",
                                         "WANDB_SILENT": "true", "PYTHONPATH": str(repo)},
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == "0", done.stdout  # W&B's service exited before `run` returned
    files = list(tmp_path.glob("wandb/offline-run-*/run-*.wandb"))
    assert len(files) == 1
    records = list(_wandb_records(files[0]))
    assert any(r.WhichOneof("record_type") == "run" for r in records), files[0].stat().st_size
    history = [_items(r.history.item) for r in records
               if r.WhichOneof("record_type") == "history"]
    assert [h["val_acc"] for h in history] == pytest.approx([0.1, 0.2])


@pytest.mark.ray
@pytest.mark.slow
def test_resume_keeps_tracking_in_the_same_runs(tmp_path, local_ray, no_tracking_env):
    """A trial fails once at epoch 3; `hpnas resume --retry-errored` continues it from its
    epoch-2 checkpoint: under the same MLflow parent run, into the trial's own child run, and
    its TensorBoard events go on from step 3."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    marker = str(tmp_path / "failed-once")
    fn = lambda config, settings=None: _fit(config, settings, marker)
    spec = spec_from_mapping(_mapping(tmp_path, name="resumed", samples=2,
                                      max_concurrent_trials=1,
                                      tracking=["mlflow", "tensorboard"]))
    directory = Path(run_experiment(spec, quiet=True, dashboard=False, trainable_fn=fn))
    client, parents, children = _mlflow_runs(directory, "resumed")
    assert sorted(c.info.status for c in children) == ["FAILED", "FINISHED"]
    parent_id = parents[0].info.run_id

    resume_experiment(directory, dashboard=False, retry_errored=True, trainable_fn=fn)
    client, parents, children = _mlflow_runs(directory, "resumed")
    assert [p.info.run_id for p in parents] == [parent_id]
    assert parents[0].info.status == "FINISHED"
    assert len(children) == 2 and {c.info.status for c in children} == {"FINISHED"}
    for child in children:
        history = client.get_metric_history(child.info.run_id, "val_acc")
        assert [m.step for m in history] == [1, 2, 3, 4]  # the retried one: 1, 2 then 3, 4

    steps = []
    for trial_dir in _trial_dirs(directory):
        events = EventAccumulator(str(trial_dir))
        events.Reload()
        steps.append(sorted(e.step for e in events.Scalars("ray/tune/val_acc")))
    assert sorted(steps) == [[1, 2, 3, 4], [1, 2, 3, 4]]
