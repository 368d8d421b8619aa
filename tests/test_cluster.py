"""On a local two-node test cluster started here (fake GPUs, stopped by handle): fractional GPU
placement, the hpnas metrics, `hpnas submit` as a Ray job, and clear errors for bad addresses."""

from __future__ import annotations

import os
import re
import socket
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
import yaml

from cluster.cli import main
from cluster.local_cluster import LocalCluster, free_port
from cluster.runner import storage_warning
from cluster.spec import spec_from_mapping

TESTS = str(Path(__file__).resolve().parent)


@pytest.fixture(scope="module")
def cluster():
    """Head + one worker, 2 fake GPUs and 4 CPUs each; metrics reported every second. Ray's
    default dashboard-agent port is held meanwhile, as another Ray on the machine would hold it
    (the job tests then show that the head's agent took a port of its own)."""
    saved = os.environ.get("RAY_metrics_report_interval_ms")
    os.environ["RAY_metrics_report_interval_ms"] = "1000"
    local = LocalCluster(nodes=2, cpus_per_node=4, gpus_per_node=2, memory_gb=1.5,
                         dashboard_port=free_port(), metrics_export_port=free_port())
    from ray.util import get_node_ip_address

    taken = socket.socket()  # bound as the agent binds: the node's address, SO_REUSEADDR
    taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        try:
            taken.bind((get_node_ip_address(), 52365))  # DEFAULT_DASHBOARD_AGENT_LISTEN_PORT
            taken.listen()
        except OSError:  # already held (another Ray here): the same condition
            pass
        local.start()
        yield local
    finally:
        local.stop()
        taken.close()
        if saved is None:
            os.environ.pop("RAY_metrics_report_interval_ms", None)
        else:
            os.environ["RAY_metrics_report_interval_ms"] = saved


def gpu_probe(config, settings=None):
    """Holds its GPU share for a while and reports what Ray gave it."""
    import ray
    from ray import tune

    start = time.time()
    time.sleep(3.0)
    tune.report({"val_acc": 0.5, "gpu_ids": ",".join(str(g) for g in ray.get_gpu_ids()),
                 "cuda_visible": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
                 "node": ray.get_runtime_context().get_node_id(), "start": start,
                 "end": time.time()})


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    best = now = 0
    for _, delta in events:
        now += delta
        best = max(best, now)
    return best


def _scrape(port: int, name: str, experiment: str, expected: float,
            timeout_s: float = 30.0) -> float | None:
    """The value of ``name`` tagged with ``experiment`` on the node's Prometheus endpoint, read
    until it is ``expected`` (exports lag the driver by a report interval) or time runs out."""
    pattern = re.compile(rf'^{name}\{{[^}}]*experiment="{experiment}"[^}}]*\}} (\S+)$', re.M)
    deadline = time.monotonic() + timeout_s
    value = None
    while time.monotonic() < deadline:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
        match = pattern.search(text.decode())
        value = float(match.group(1)) if match else None
        if value == expected:
            break
        time.sleep(1.0)
    return value


def test_fractional_gpus_and_metrics(cluster, tmp_path):
    import ray

    spec = spec_from_mapping({
        "name": "frac", "trainable": "nb201", "searcher": "random", "scheduler": "fifo",
        "samples": 8, "max_concurrent_trials": 8, "resources": {"cpus": 0.5, "gpus": 0.5},
        "storage": str(tmp_path)})
    from cluster.runner import run_experiment

    ray.init(address=cluster.address, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": TESTS}})
    try:
        run_experiment(spec, quiet=True, trainable_fn=gpu_probe)
        port = cluster.head_node.metrics_export_port
        assert _scrape(port, "ray_hpnas_trials_completed", "frac", 8) == 8
        assert _scrape(port, "ray_hpnas_trials_running", "frac", 0) == 0
        assert _scrape(port, "ray_hpnas_trials_stopped", "frac", 0) == 0
        assert _scrape(port, "ray_hpnas_best_metric", "frac", 0.5) == 0.5
        assert _scrape(port, "ray_hpnas_trial_seconds_count", "frac", 8) == 8
    finally:
        ray.shutdown()
    rows = pd.read_parquet(tmp_path / "frac" / "iterations.parquet")
    assert len(rows) == 8
    for row in rows.itertuples():
        assert len(row.gpu_ids.split(",")) == 1  # a half GPU is one device
        assert row.cuda_visible == row.gpu_ids  # and torch would see exactly that one
    per_gpu: dict[tuple[str, str], list] = {}
    for row in rows.itertuples():
        per_gpu.setdefault((row.node, row.gpu_ids), []).append((row.start, row.end))
    assert max(_max_overlap(v) for v in per_gpu.values()) <= 2  # 0.5 GPU: two at most
    assert _max_overlap([(r.start, r.end) for r in rows.itertuples()]) <= 8
    assert len(per_gpu) >= 2  # placed on more than one device


def test_gpu_request_on_a_cluster_without_enough_gpus_fails_before_launch(cluster, tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump({"name": "big", "trainable": "nb201", "searcher": "random",
                                    "samples": 2, "resources": {"gpus": 8},
                                    "storage": str(tmp_path)}))
    start = time.monotonic()
    assert main(["run", str(path), "--address", cluster.address]) == 2
    assert time.monotonic() - start < 60
    assert not (tmp_path / "big" / "trials.parquet").exists()


def test_submit_runs_a_job_to_completion(cluster, tmp_path, capsys):
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump({
        "name": "job", "trainable": "nb201", "searcher": "evolution", "scheduler": "fifo",
        "samples": 6, "max_concurrent_trials": 2, "storage": str(tmp_path / "results")}))
    assert main(["submit", str(path), "--address", cluster.dashboard_url, "--wait"]) == 0
    out = capsys.readouterr().out
    job_id = re.search(r"job id: (\S+)", out).group(1)
    assert f"hpnas logs {job_id}" in out and "SUCCEEDED" in out
    trials = pd.read_parquet(tmp_path / "results" / "job" / "trials.parquet")
    assert len(trials) == 6 and set(trials["status"]) == {"complete"}
    assert main(["status", job_id, "--address", cluster.dashboard_url]) == 0
    assert "SUCCEEDED" in capsys.readouterr().out
    assert main(["status", "--address", cluster.dashboard_url]) == 0
    assert job_id in capsys.readouterr().out
    assert main(["logs", job_id, "--address", cluster.dashboard_url]) == 0
    assert "top" in capsys.readouterr().out  # the job's leaderboard
    assert main(["stop", job_id, "--address", cluster.dashboard_url]) == 0
    assert "already ended" in capsys.readouterr().out


@pytest.mark.parametrize("argv, words", [
    (["status", "raysubmit_x", "--address", "http://127.0.0.1:{port}"], "cannot reach"),
    (["run", "{file}", "--address", "127.0.0.1:{port}"], "cannot reach a Ray cluster"),
    (["run", "{file}", "--address", "http://127.0.0.1:8265"], "dashboard's HTTP address"),
    (["submit", "{file}", "--address", "ray://127.0.0.1:{port}"], "http://HEAD:8265"),
    (["submit", "{file}", "--address", "http://127.0.0.1:{port}", "--storage", "rel"],
     "a path relative to this machine"),
    (["results", "{dir}"], "is not an hpnas experiment directory"),
])
def test_bad_addresses_fail_fast_with_a_clear_message(tmp_path, capsys, argv, words):
    path = tmp_path / "x.yaml"
    path.write_text(yaml.safe_dump({"trainable": "nb201", "samples": 1,
                                    "storage": str(tmp_path)}))
    port = free_port()  # nothing listens there
    argv = [a.format(port=port, file=path, dir=tmp_path) for a in argv]
    start = time.monotonic()
    assert main(argv) == 2
    assert time.monotonic() - start < 15
    assert words in capsys.readouterr().err


class _StartingJobServer:
    """A job client whose server answers "no agent" ``busy`` times, then takes the job; with
    ``lost``, the try that took it also failed to answer (the next try hears "already exists")."""

    def __init__(self, busy: int, lost: bool = False):
        self.busy, self.lost, self.ids = busy, lost, []

    def submit_job(self, submission_id, **job):
        self.ids.append(submission_id)
        if len(self.ids) <= self.busy:
            raise RuntimeError("Request failed with status code 500: No available agent to "
                               "submit job, please try again later..")
        if self.lost and len(self.ids) == self.busy + 1:
            raise RuntimeError("Request failed with status code 500: No available agent to "
                               "submit job, please try again later..")
        if self.lost:
            raise RuntimeError(f"Request failed with status code 400: Job with submission_id "
                               f"{submission_id} already exists. Please use a different "
                               f"submission_id.")
        return submission_id


def test_submit_waits_for_a_starting_job_agent_then_gives_up_with_rays_answer(capsys):
    from cluster.jobs import submit_when_agent_is_up

    now, naps = [0.0], []

    def sleep(s):
        naps.append(s)
        now[0] += s

    server = _StartingJobServer(busy=3)
    job_id = submit_when_agent_is_up(server, wait_s=60, sleep=sleep, clock=lambda: now[0],
                                     entrypoint="x")
    assert job_id == server.ids[0] and job_id.startswith("raysubmit_") and len(server.ids) == 4
    assert set(server.ids) == {job_id}  # one submission id: a retry cannot start a second job
    assert "job agent is not up yet; trying again for up to 60 s" in capsys.readouterr().err
    # The try that started the job lost its answer: the next one hears "already exists".
    server = _StartingJobServer(busy=1, lost=True)
    assert submit_when_agent_is_up(server, wait_s=60, sleep=sleep, clock=lambda: now[0],
                                   entrypoint="x") == server.ids[0]
    # No agent within the wait: Ray's own answer, after about wait_s.
    now[0], naps[:] = 0.0, []
    with pytest.raises(RuntimeError, match="No available agent"):
        submit_when_agent_is_up(_StartingJobServer(busy=10**6), wait_s=10, sleep=sleep,
                                clock=lambda: now[0], entrypoint="x")
    assert 10 <= sum(naps) <= 12
    # Any other refusal is not retried.
    class Refuses:
        def submit_job(self, submission_id, **job):
            raise RuntimeError("Request failed with status code 400: bad runtime_env")

    naps[:] = []
    with pytest.raises(RuntimeError, match="bad runtime_env"):
        submit_when_agent_is_up(Refuses(), wait_s=60, sleep=sleep, clock=lambda: now[0])
    assert naps == []


def test_resource_check_needs_one_node_that_holds_a_trial():
    from cluster.runner import check_resources
    from cluster.spec import SpecError

    def spec(cpus, gpus):
        return spec_from_mapping({"trainable": "nb201", "resources": {"cpus": cpus, "gpus": gpus}})

    nodes = [{"CPU": 4, "GPU": 2}, {"CPU": 8}]
    check_resources(spec(4, 2), nodes)
    check_resources(spec(8, 0), nodes)
    check_resources(spec(1, 0.25), nodes)
    with pytest.raises(SpecError, match=r"no node .*at most 2, 2 in all.*--cpu-only"):
        check_resources(spec(1, 3), nodes + [{"CPU": 4, "GPU": 0}])
    with pytest.raises(SpecError, match=r"8 CPUs and 1 GPUs on one node.*4 CPUs \+ 2 GPUs"):
        check_resources(spec(8, 1), nodes)  # the 8 CPUs and the GPU are on different nodes
    with pytest.raises(SpecError, match="at most 8"):
        check_resources(spec(9, 0), nodes)
    with pytest.raises(SpecError, match="no node .*at most 0"):
        check_resources(spec(1, 1), [{"CPU": 2}])


def test_storage_warning_for_node_local_paths_on_several_machines():
    mounts = ("/dev/sda1 / ext4 rw 0 0\n"
              "server:/export /mnt/shared nfs4 rw 0 0\n")
    two = {"10.0.0.1", "10.0.0.2"}
    assert "node-local filesystem (ext4)" in storage_warning("/home/u/results", two, mounts)
    assert storage_warning("/mnt/shared/results", two, mounts) is None
    assert storage_warning("/home/u/results", {"10.0.0.1"}, mounts) is None  # one machine


CONFIGS = Path(__file__).resolve().parents[1] / "cluster" / "configs"


def test_cluster_launcher_config_passes_rays_schema():
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load((CONFIGS / "aws-gpu.yaml").read_text())
    validate_config(prepare_config(config))  # as `ray up` does; raises on a schema violation
    gpu = config["available_node_types"]["gpu_worker"]
    assert gpu["node_config"]["InstanceType"].startswith(("g", "p"))
    assert any("hpnas" in c for c in config["setup_commands"])


def test_kuberay_rayjob_runs_hpnas_on_gpu_workers():
    job, claim = yaml.safe_load_all((CONFIGS / "kuberay-rayjob.yaml").read_text())
    assert (job["apiVersion"], job["kind"]) == ("ray.io/v1", "RayJob")
    assert job["spec"]["entrypoint"].startswith("hpnas run ")
    cluster_spec = job["spec"]["rayClusterSpec"]
    assert cluster_spec["rayVersion"] == "2.60.0"
    worker = cluster_spec["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == "1"
    mounts = {m["mountPath"] for m in worker["volumeMounts"]}
    assert "/mnt/shared" in mounts and job["spec"]["entrypoint"].count("/mnt/shared") == 1
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]


USER_TRAIN = '''
import time

import ray
from ray import tune

from helpers import value  # a sibling module: travels with the trainable


def fit(config, epochs=2):
    node = ray.get_runtime_context().get_node_id()
    for epoch in range(1, epochs + 1):
        time.sleep(1.0)  # long enough for two trials to overlap (they then need both nodes)
        tune.report({"score": value(config, epoch), "node": node})
'''


def _user_project(tmp_path: Path) -> Path:
    folder = tmp_path / "proj"
    (folder / "data").mkdir(parents=True)
    (folder / "train.py").write_text(USER_TRAIN)
    (folder / "helpers.py").write_text("def value(config, epoch):\n"
                                       "    return config['x'] * epoch\n")
    (folder / "data" / "big.bin").write_bytes(b"0" * 1024)
    experiment = {"name": "userjob", "trainable": "train.py:fit", "metric": "score",
                  "mode": "max", "max_epochs": 2, "space": {"x": {"float": [0.0, 1.0]}},
                  "searcher": "random", "scheduler": "fifo", "samples": 4,
                  "max_concurrent_trials": 2, "resources": {"cpus": 3},
                  "code": {"dir": ".", "exclude": ["data/"]},
                  "storage": str(tmp_path / "results")}
    (folder / "experiment.yaml").write_text(yaml.safe_dump(experiment, sort_keys=False))
    return folder


def test_user_code_ships_with_a_job_and_runs_on_every_node(cluster, tmp_path, capsys):
    """A user's trainable (with a sibling module) submitted as a job, and joined with
    `hpnas run --address`: trials of 3 CPUs on nodes of 4 run on both nodes."""
    from cluster.jobs import runtime_env
    from cluster.spec import load_spec

    folder = _user_project(tmp_path)
    spec = load_spec(folder / "experiment.yaml")
    env = runtime_env(spec)
    assert str(folder) in env["py_modules"] and "data/" in env["excludes"]
    assert "runs/" in env["excludes"]
    assert "shipped:proj" in env["env_vars"]["HPNAS_EXPERIMENT"]

    path = folder / "experiment.yaml"
    assert main(["submit", str(path), "--address", cluster.dashboard_url, "--wait"]) == 0
    assert "SUCCEEDED" in capsys.readouterr().out
    trials = pd.read_parquet(tmp_path / "results" / "userjob" / "trials.parquet")
    assert len(trials) == 4 and set(trials["status"]) == {"complete"}
    assert (trials["last_score"] == 2 * trials["config/x"]).all()

    assert main(["run", str(path), "--address", cluster.address, "--name", "userrun",
                 "--samples", "6", "--progress-interval", "1000"]) == 0
    iterations = pd.read_parquet(tmp_path / "results" / "userrun" / "iterations.parquet")
    assert iterations["node"].nunique() == 2  # the code reached a worker on the other node
