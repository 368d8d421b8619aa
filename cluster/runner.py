"""Connect to Ray (embedded or a cluster) and run an experiment as a Ray Tune ``Tuner``."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import yaml

from cluster.checkpoints import CheckpointJanitor
from cluster.metrics import MetricsExporter
from cluster.progress import ProgressPrinter
from cluster.resume import PairedSearchGenerator, SearcherSync, newest_session, restoring_from
from cluster.spec import ExperimentSpec, SpecError, load_saved
from cluster.tracking import tracking_callbacks
from results import ExperimentDir, Location, read_parquet
from results.writer import ResultsWriter
from search.pausing import PauseAwareLimiter
from search.schedulers import POPULATION_SCHEDULERS

__all__ = ["TUNE_ENV", "check_fresh", "connect", "resume_experiment", "run_experiment"]

logger = logging.getLogger(__name__)

# Tune's per-trial CSV/JSON/TensorBoard loggers cost time per result and duplicate our Parquet;
# trials must not chdir, so relative paths in settings keep their meaning.
# The experiment-state snapshot warning fires whenever trials checkpoint often (every epoch here).
TUNE_ENV = {
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    "RAY_AIR_NEW_OUTPUT": "0",  # with verbose=0 the old engine prints nothing; ours is the table
    "RAY_CHDIR_TO_TRIAL_DIR": "0",
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
    # A result without the metric fails that trial (our adapter), not the whole experiment.
    "TUNE_DISABLE_STRICT_METRIC_CHECKING": "1",
    # Ctrl-C is hpnas's (graceful_interrupt): Tune would end the run as if it had finished.
    "TUNE_DISABLE_SIGINT_HANDLER": "1",
}


class RunError(RuntimeError):
    """The experiment ran but could not go on (a searcher that only proposes invalid
    configs); its message is one line for the user."""


class _TuneHints(logging.Filter):
    """Drops Tune's own advice that does not apply to hpnas (``Tuner.restore(...)``: hpnas
    says ``hpnas resume DIR``; the list of incomplete trials: the results table has it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return "Tuner.restore" not in text and "Trials did not complete" not in text


def _tune_listens() -> bool:
    """Whether Tune's graceful-stop handler (SIGUSR1, installed when ``fit`` starts) is in."""
    return signal.getsignal(signal.SIGUSR1) not in (signal.SIG_DFL, signal.SIG_IGN, None)


@contextmanager
def graceful_interrupt() -> Iterator[threading.Event]:
    """Ctrl-C while an experiment starts or runs: the first sets the event and asks Tune to
    stop after saving the experiment state (Tune's own graceful stop, through its SIGUSR1
    handler, as soon as Tune listens); a second raises ``KeyboardInterrupt`` at once. The
    caller checks the event at safe points (before ``fit``; after it returns) and raises
    ``KeyboardInterrupt`` there, so no half-finished step (Ray's start-up) swallows it."""
    interrupted = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield interrupted
        return
    previous = signal.getsignal(signal.SIGINT)

    def forward_when_tune_listens() -> None:
        for _ in range(600):
            if _tune_listens():
                os.kill(os.getpid(), signal.SIGUSR1)
                return
            time.sleep(0.1)

    def handler(sig: int, frame: Any) -> None:
        if interrupted.is_set():
            raise KeyboardInterrupt
        interrupted.set()
        print("\nhpnas: stopping: saving the experiment state (Ctrl-C again to stop at once)",
              file=sys.stderr, flush=True)
        if _tune_listens():
            os.kill(os.getpid(), signal.SIGUSR1)
        else:  # Tune's fit may be starting: tell it once it listens
            threading.Thread(target=forward_when_tune_listens, daemon=True).start()

    signal.signal(signal.SIGINT, handler)
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)


def _fit(tuner: Any, interrupted: threading.Event) -> None:
    """``tuner.fit()`` unless an interrupt came first: ``KeyboardInterrupt`` once an
    interrupted search has saved its state, :class:`RunError` for a searcher that stalled."""
    from search.adapter import SearchStalled

    if interrupted.is_set():
        raise KeyboardInterrupt
    try:
        tuner.fit()
    except Exception as e:  # Tune wraps what its driver loop raised
        cause: BaseException | None = e
        while cause is not None and not isinstance(cause, SearchStalled):
            cause = cause.__cause__ or cause.__context__
        if cause is not None:
            raise RunError(str(cause)) from None
        raise
    if interrupted.is_set():
        raise KeyboardInterrupt


@contextmanager
def connect(address: str | None = None, *, dashboard: bool = True,
            num_cpus: int | None = None, code_dir: str | None = None) -> Iterator[Any]:
    """Ray for the experiment: ``address`` (or ``$RAY_ADDRESS``) joins a cluster, else an
    embedded local Ray whose dashboard listens on 127.0.0.1 only. Shut down on exit only if
    we started it here. ``code_dir``: a user's code folder, put on the embedded Ray's workers'
    ``PYTHONPATH`` (the modules the trainable imported travel with it by value anyway)."""
    import ray

    # A submitted job's driver already has these from the job's runtime environment, which Ray
    # refuses to merge with a second one naming the same variables.
    in_job = "RAY_JOB_CONFIG_JSON_ENV_VAR" in os.environ  # set by Ray's job supervisor
    os.environ.update(TUNE_ENV)
    # ResultGrid looks for Tune's own per-trial logs, which we turn off: Parquet replaces them.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    tune_logger = logging.getLogger("ray.tune.tune")
    if not any(isinstance(f, _TuneHints) for f in tune_logger.filters):
        tune_logger.addFilter(_TuneHints())
    address = address or os.environ.get("RAY_ADDRESS") or None
    if ray.is_initialized():
        yield ray
        return
    kwargs: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
    if address and address != "auto":
        probe_address(address)
    if address:
        kwargs["address"] = address
        if not in_job:
            kwargs["runtime_env"] = {"env_vars": dict(TUNE_ENV)}
    else:
        kwargs.update(address="local", include_dashboard=dashboard, dashboard_host="127.0.0.1",
                      num_cpus=num_cpus)
        if code_dir:
            path = os.pathsep.join(p for p in (code_dir, os.environ.get("PYTHONPATH")) if p)
            kwargs["runtime_env"] = {"env_vars": {"PYTHONPATH": path}}
    try:
        ray.init(**kwargs)
    except ConnectionError as e:
        raise SpecError(f"cannot connect to Ray at {address!r}: {e}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def probe_address(address: str, timeout_s: float = 5.0) -> None:
    """``SpecError`` unless something listens at ``address`` (HOST:PORT or ray://HOST:PORT):
    ``ray.init`` would otherwise retry an unreachable address for minutes."""
    if address.startswith(("http://", "https://")):
        raise SpecError(f"--address is {address!r}, the dashboard's HTTP address; `hpnas run` "
                        "joins the cluster at HEAD:6379 (the GCS), and `hpnas submit` takes "
                        "http://HEAD:8265.")
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise SpecError(f"--address is {address!r}, but must be HOST:PORT (e.g. 10.0.0.1:6379) "
                        "or ray://HOST:10001.")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise SpecError(f"cannot reach a Ray cluster at {address} ({e.strerror or e}); check "
                        "the head's address and port (6379 by default) and that it is up.") from None


def check_fresh(directory: Location | ExperimentDir) -> None:
    """``SpecError`` if ``directory`` already holds an experiment's results."""
    if ExperimentDir(directory).has_results():
        raise SpecError(f"experiment directory {directory} already holds results; pass another "
                        "--name (or --storage), or remove that directory.")


def _code_dir(spec: ExperimentSpec) -> str | None:
    return spec.user.code_dir if spec.user is not None else None


def save_spec(spec: ExperimentSpec, directory: Location) -> None:
    directory.mkdir()
    ExperimentDir(directory).spec_file.write_text(yaml.safe_dump(spec.raw, sort_keys=False))


def _trainable(spec: ExperimentSpec, trainable_fn: Callable[..., None] | None) -> Any:
    from ray import tune

    fn, kwargs = spec.trainable_fn()
    fn = trainable_fn or fn
    return tune.with_resources(tune.with_parameters(fn, **kwargs) if kwargs else fn,
                               {"cpu": spec.resources.cpus, "gpu": spec.resources.gpus})


def build_tuner(spec: ExperimentSpec, *, progress_interval_s: float = 15.0,
                quiet: bool = False, trainable_fn: Callable[..., None] | None = None,
                metrics: bool = True) -> Any:
    """The ``ray.tune.Tuner`` for ``spec`` (Ray must be initialised); ``metrics`` exports the
    ``hpnas_*`` metrics (:mod:`cluster.metrics`).

    ``trainable_fn`` replaces the registered trainable (benchmarks and tests use it); it is
    called as ``fn(config, settings=...)`` like every registered one.
    """
    from ray import tune

    trainable = _trainable(spec, trainable_fn)
    # The wrappers Tune would build from max_concurrent_trials are built here, so that
    # SearcherSync can hold them (and the searcher in them) across a restore.
    # PBT and PB2 train the whole population side by side (trials take turns on the resources,
    # paused at each perturbation); Hyperband's paused trials do not count (search.pausing).
    population = spec.scheduler in POPULATION_SCHEDULERS
    search_alg = PairedSearchGenerator(
        PauseAwareLimiter(spec.make_searcher(), max_concurrent=(
            spec.samples if population and spec.samples else spec.max_concurrent_trials)),
        experiment_dir=str(spec.directory))
    callbacks: list[Any] = [
        SearcherSync(search_alg),
        ResultsWriter(spec.directory, metric=spec.metric, mode=spec.mode,
                      max_epochs=spec.max_epochs, searcher=spec.searcher,
                      param_names=spec.space.names),
        # PBT continues a trial from the checkpoint another trial had at its last perturbation:
        # keep those until a snapshot is newer than the next one.
        CheckpointJanitor(spec.directory, keep_before_snapshot=(
            int(spec.scheduler_options.get("perturbation_interval_epochs", 2)) + 2
            if population else 2)),
    ]
    if metrics:
        callbacks.append(MetricsExporter(experiment=spec.name, metric=spec.metric,
                                         mode=spec.mode, max_epochs=spec.max_epochs))
    if not quiet:
        callbacks.append(ProgressPrinter(metric=spec.metric, mode=spec.mode,
                                         max_epochs=spec.max_epochs,
                                         interval_s=progress_interval_s))
    # Saved with Tune's experiment state like every callback here, so a resume keeps them.
    callbacks += tracking_callbacks(spec)
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=search_alg,
            scheduler=spec.make_scheduler(),
            num_samples=-1,  # the searcher says FINISHED after `samples` trials
            time_budget_s=spec.time_budget_s,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=spec.name,
            storage_path=spec.storage,
            callbacks=callbacks,
            verbose=0,
            failure_config=tune.FailureConfig(max_failures=spec.max_failures),
            # Every checkpoint is kept by Tune and deleted by CheckpointJanitor once no
            # experiment snapshot can need it, so a crash at any moment leaves resumable trials.
            checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
        ),
    )


def run_experiment(spec: ExperimentSpec, *, address: str | None = None, dashboard: bool = True,
                   progress_interval_s: float = 15.0, quiet: bool = False,
                   trainable_fn: Callable[..., None] | None = None,
                   resource_check: bool = True) -> Location:
    """Run ``spec`` to the end; returns the experiment directory (with its Parquet files).
    ``resource_check``: fail before launch when no node could hold a trial (turn it off on an
    autoscaling cluster whose GPU nodes do not exist yet)."""
    # Saved first, so an interrupt at any moment (Ray's start-up included) leaves a directory
    # that `hpnas resume` continues (before Tune's first snapshot: from the beginning).
    created = not spec.directory.is_dir()
    save_spec(spec, spec.directory)
    if spec.warm_start is not None and spec.warm_start.trials:
        print(f"hpnas: {spec.warm_start.note()}", file=sys.stderr, flush=True)
    try:
        with graceful_interrupt() as interrupted, \
                connect(address, dashboard=dashboard, code_dir=_code_dir(spec)) as ray:
            nodes = _alive_nodes(ray)
            if resource_check:
                check_resources(spec, [n["Resources"] for n in nodes])
            warning = storage_warning(spec.storage, {n["NodeManagerAddress"] for n in nodes})
            if warning:
                print(f"hpnas: warning: {warning}", file=sys.stderr, flush=True)
            if interrupted.is_set():  # during Ray's start-up: nothing of Tune's written yet
                raise KeyboardInterrupt
            tuner = build_tuner(spec, progress_interval_s=progress_interval_s, quiet=quiet,
                                trainable_fn=trainable_fn)
            _fit(tuner, interrupted)
    except SpecError:
        if created:  # refused before anything ran: leave no directory behind
            spec.directory.fs.delete_dir(spec.directory.path)
        raise
    return spec.directory


def resume_experiment(directory: Location, *, address: str | None = None,
                      dashboard: bool = True, retry_errored: bool = False,
                      trainable_fn: Callable[..., None] | None = None,
                      resource_check: bool = True, extend_by: int | None = None,
                      time_budget_s: float | None = None) -> Location:
    """Continue the experiment in ``directory`` after a crash, a kill or Ctrl-C.

    Tune restores its experiment state: finished trials stay finished, unfinished ones resume
    from their last checkpoint, errored ones are retried from theirs if ``retry_errored``; the
    searcher comes back with its saved state (Optuna's study, the evolution population with
    ages, controller weights, RNGs), and the results writer reloads the Parquet files, so every
    trial ends up in them once. Ray saves no scheduler state: the scheduler starts afresh with
    the unfinished trials (ASHA ranks them at its rungs again as they report, Hyperband puts
    them in new brackets).
    """
    from ray import tune

    spec = load_saved(directory, check_data=True)
    if extend_by is not None or time_budget_s is not None:
        if newest_session(directory) is None:
            raise SpecError(f"{directory} has no experiment snapshot (it was stopped in its "
                            "first seconds); continue it with `hpnas resume` first.")
        _save_extension(spec, directory, extend_by, time_budget_s)
    if newest_session(directory) is None:
        # Killed before Tune's first snapshot: nothing to continue, so start over in place
        # (rows written so far belong to trials no snapshot knows).
        print(f"hpnas: {directory} has no experiment snapshot yet (the run was stopped in its "
              "first seconds); starting it again from the beginning.", flush=True)
        ExperimentDir(directory).clear_results()
        if spec.warm_start is not None:  # a fresh searcher: seeded with the same trials again
            spec = load_saved(directory, check_data=True, read_warm_start=True)
        return run_experiment(spec, address=address, dashboard=dashboard,
                              trainable_fn=trainable_fn, resource_check=resource_check)
    with graceful_interrupt() as interrupted, \
            connect(address, dashboard=dashboard, code_dir=_code_dir(spec)) as ray:
        if resource_check:
            check_resources(spec, [n["Resources"] for n in _alive_nodes(ray)])
        tuner = tune.Tuner.restore(str(directory), trainable=_trainable(spec, trainable_fn),
                                   resume_unfinished=True, resume_errored=retry_errored,
                                   restart_errored=False)
        if time_budget_s is not None:
            # Ray 2.60 restores the tuner's settings with no way to change them (a finished
            # search cannot be given more time: ray-project/ray#42221); the budget is read from
            # here when fit() starts, and counts from then.
            local = getattr(tuner, "_local_tuner", None)
            if local is None:
                raise SpecError("--time-budget-s needs the driver on the cluster, not a "
                                "ray:// client; run `hpnas extend` there (or as a Ray job).")
            local._tune_config.time_budget_s = time_budget_s
        with restoring_from(str(directory), extend_by=extend_by):
            _fit(tuner, interrupted)
    return directory


def _save_extension(spec: ExperimentSpec, directory: Location, extend_by: int | None,
                    time_budget_s: float | None) -> None:
    """Record in ``hpnas.yaml`` what ``hpnas extend`` asked for: the trials the experiment
    will have and this session's time budget."""
    experiment = ExperimentDir(directory)
    raw = dict(spec.raw)
    have = len(read_parquet(experiment.trials_file)) if experiment.has_results() else 0
    if extend_by is not None:
        raw["samples"] = have + extend_by
    elif spec.samples is not None and have >= spec.samples:
        raise SpecError(f"{directory} has run all its {spec.samples} trials, so more time "
                        "alone adds nothing; give --samples N as well.")
    if time_budget_s is not None:
        raw["time_budget_s"] = time_budget_s
    experiment.spec_file.write_text(yaml.safe_dump(raw, sort_keys=False))


# Filesystems every node of a cluster can mount (network and cluster filesystems, FUSE mounts of
# object stores); anything else (ext4, xfs, tmpfs, overlay, ...) is taken as node-local.
_SHARED_FS = ("nfs", "nfs4", "cifs", "smb3", "smbfs", "lustre", "gpfs", "beegfs", "ceph",
              "glusterfs", "fuse.glusterfs", "afs", "9p", "virtiofs", "wekafs", "fuse")


def filesystem_type(path: str, mounts: str | None = None) -> str | None:
    """The type of the filesystem holding ``path`` (by the longest mount point in
    ``/proc/mounts``), or None where that is unknown."""
    if mounts is None:
        try:
            mounts = Path("/proc/mounts").read_text()
        except OSError:
            return None
    best, fstype = "", None
    target = os.path.abspath(path)
    for line in mounts.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        point = parts[1].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, fstype = point, parts[2]
    return fstype


def storage_warning(storage: str, node_ips: set[str], mounts: str | None = None) -> str | None:
    """What to tell a user whose multi-machine run writes to a node-local path (else None)."""
    if storage.startswith("file://"):
        storage = storage[len("file://"):]
    if len(node_ips) <= 1 or "://" in storage:
        return None
    fstype = filesystem_type(storage, mounts)
    if fstype is None or fstype.split(".")[0] in _SHARED_FS or fstype in _SHARED_FS:
        return None
    return (f"`storage` {storage} is on a node-local filesystem ({fstype}), but the cluster spans "
            f"{len(node_ips)} machines: trials on the other machines write their checkpoints "
            "to their own disks, where resuming, the schedulers and `hpnas evaluate` cannot "
            "find them. Give a path on a filesystem every node mounts (NFS, Lustre, ...).")


def _alive_nodes(ray: Any) -> list[dict[str, Any]]:
    return [n for n in ray.nodes() if n.get("Alive")]


def check_resources(spec: ExperimentSpec, nodes: list[dict[str, float]]) -> None:
    """``SpecError`` when no node (its resources in ``nodes``) could ever hold one trial: a
    trial's CPUs and GPUs must all come from one node."""
    cpus, gpus = spec.resources.cpus, spec.resources.gpus
    if any(n.get("CPU", 0) >= cpus and n.get("GPU", 0) >= gpus for n in nodes):
        return
    most_gpus = max((n.get("GPU", 0) for n in nodes), default=0)
    most_cpus = max((n.get("CPU", 0) for n in nodes), default=0)
    if gpus > most_gpus:
        raise SpecError(
            f"`resources.gpus` is {gpus:g} per trial, but no node of the Ray cluster has that "
            f"many (at most {most_gpus:g}, {sum(n.get('GPU', 0) for n in nodes):g} in all); "
            "ask for at most that many, pass --cpu-only (or set `resources.gpus: 0`) to run on "
            "CPUs, or --skip-resource-check if the cluster autoscales.")
    if cpus > most_cpus:
        raise SpecError(
            f"`resources.cpus` is {cpus:g} per trial, but no node of the Ray cluster has that "
            f"many (at most {most_cpus:g}); ask for at most that many per trial, or pass "
            "--skip-resource-check if the cluster autoscales.")
    shapes = ", ".join(sorted({f"{n.get('CPU', 0):g} CPUs + {n.get('GPU', 0):g} GPUs"
                               for n in nodes}))
    raise SpecError(
        f"a trial needs {cpus:g} CPUs and {gpus:g} GPUs on one node, but no node of the Ray "
        f"cluster has both (nodes: {shapes}); lower `resources.cpus` or `resources.gpus`.")
