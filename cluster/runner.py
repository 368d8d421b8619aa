"""Connect to Ray (embedded or a cluster) and run an experiment as a Ray Tune ``Tuner``."""

from __future__ import annotations

import dataclasses
import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import yaml

from cluster.progress import ProgressPrinter
from cluster.spec import SPEC_FILE, ExperimentSpec, SpecError
from search.results import ResultsWriter
from trainables import TRAINABLE_INFO

__all__ = ["connect", "run_experiment"]

logger = logging.getLogger(__name__)

# Tune's per-trial CSV/JSON/TensorBoard loggers cost time per result and duplicate our Parquet;
# trials must not chdir, so relative paths in settings keep their meaning.
# The experiment-state snapshot warning fires whenever trials checkpoint often (every epoch here).
_TUNE_ENV = {
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    "RAY_AIR_NEW_OUTPUT": "0",  # with verbose=0 the old engine prints nothing; ours is the table
    "RAY_CHDIR_TO_TRIAL_DIR": "0",
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
    # A result without the metric fails that trial (our adapter), not the whole experiment.
    "TUNE_DISABLE_STRICT_METRIC_CHECKING": "1",
}


@contextmanager
def connect(address: str | None = None, *, dashboard: bool = True,
            num_cpus: int | None = None) -> Iterator[Any]:
    """Ray for the experiment: ``address`` (or ``$RAY_ADDRESS``) joins a cluster, else an
    embedded local Ray whose dashboard listens on 127.0.0.1 only. Shut down on exit only if
    we started it here."""
    import ray

    os.environ.update(_TUNE_ENV)
    # ResultGrid looks for Tune's own per-trial logs, which we turn off: Parquet replaces them.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    address = address or os.environ.get("RAY_ADDRESS") or None
    if ray.is_initialized():
        yield ray
        return
    kwargs: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
    if address:
        kwargs.update(address=address, runtime_env={"env_vars": dict(_TUNE_ENV)})
    else:
        kwargs.update(address="local", include_dashboard=dashboard, dashboard_host="127.0.0.1",
                      num_cpus=num_cpus)
    try:
        ray.init(**kwargs)
    except ConnectionError as e:
        raise SpecError(f"cannot connect to Ray at {address!r}: {e}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def save_spec(spec: ExperimentSpec, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / SPEC_FILE).write_text(yaml.safe_dump(spec.raw, sort_keys=False))


def build_tuner(spec: ExperimentSpec, *, progress_interval_s: float = 15.0,
                quiet: bool = False, trainable_fn: Callable[..., None] | None = None) -> Any:
    """The ``ray.tune.Tuner`` for ``spec`` (Ray must be initialised).

    ``trainable_fn`` replaces the registered trainable (benchmarks and tests use it); it is
    called as ``fn(config, settings=...)`` like every registered one.
    """
    from ray import tune

    fn = trainable_fn or TRAINABLE_INFO[spec.trainable].fn
    trainable = tune.with_resources(
        tune.with_parameters(fn, settings=dataclasses.asdict(spec.settings)),
        {"cpu": spec.resources.cpus, "gpu": spec.resources.gpus},
    )
    callbacks: list[Any] = [
        ResultsWriter(spec.directory, metric=spec.metric, mode=spec.mode,
                      max_epochs=spec.max_epochs, searcher=spec.searcher,
                      param_names=spec.space.names)
    ]
    if not quiet:
        callbacks.append(ProgressPrinter(metric=spec.metric, mode=spec.mode,
                                         max_epochs=spec.max_epochs,
                                         interval_s=progress_interval_s))
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=spec.make_searcher(),
            scheduler=spec.make_scheduler(),
            num_samples=-1,  # the searcher says FINISHED after `samples` trials
            max_concurrent_trials=spec.max_concurrent_trials,
            time_budget_s=spec.time_budget_s,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=spec.name,
            storage_path=spec.storage,
            callbacks=callbacks,
            verbose=0,
            failure_config=tune.FailureConfig(max_failures=spec.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
        ),
    )


def run_experiment(spec: ExperimentSpec, *, address: str | None = None, dashboard: bool = True,
                   progress_interval_s: float = 15.0, quiet: bool = False,
                   trainable_fn: Callable[..., None] | None = None) -> Path:
    """Run ``spec`` to the end; returns the experiment directory (with its Parquet files)."""
    with connect(address, dashboard=dashboard) as ray:
        _check_resources(spec, ray)
        save_spec(spec, spec.directory)
        tuner = build_tuner(spec, progress_interval_s=progress_interval_s, quiet=quiet,
                            trainable_fn=trainable_fn)
        tuner.fit()
    return spec.directory


def _check_resources(spec: ExperimentSpec, ray: Any) -> None:
    """Fail before launch when no node could ever hold one trial."""
    total = ray.cluster_resources()
    if spec.resources.gpus > 0 and total.get("GPU", 0) < min(1.0, spec.resources.gpus):
        raise SpecError(
            f"`resources.gpus` is {spec.resources.gpus}, but the Ray cluster has "
            f"{total.get('GPU', 0):g} GPUs; set `resources.gpus: 0` to run on CPUs."
        )
    if spec.resources.cpus > total.get("CPU", 0):
        raise SpecError(
            f"`resources.cpus` is {spec.resources.cpus:g}, but the Ray cluster has "
            f"{total.get('CPU', 0):g} CPUs; ask for at most that many per trial."
        )
