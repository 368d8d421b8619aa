"""The Ray Tune callbacks behind ``tracking:`` (:mod:`cluster.tracking`, which checks the
options): Ray's own TensorBoard, MLflow and W&B logger callbacks, run by the driver.

Imported only when an experiment tracks something: Ray's MLflow and W&B integrations import
their packages where they are installed.

The callbacks travel with Tune's saved experiment state, so ``hpnas resume`` (Tune's restore)
brings them back as they were built; what they create on the way (MLflow's parent run, the
trials' runs) they find again on disk or in the tracking store.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from ray.air.integrations.mlflow import MLflowLoggerCallback
from ray.air.integrations.wandb import WandbLoggerCallback, _WandbLoggingActor
from ray.tune.logger import TBXLoggerCallback

from cluster.tracking import MLFLOW_FOLDER, MlflowOptions, TensorboardOptions, WandbOptions
from results import Location

__all__ = ["FlushingWandbActor", "NestedMlflowCallback", "WandbCallback", "mlflow_callback",
           "tensorboard_callback", "wandb_callback"]

logger = logging.getLogger(__name__)

# Ray's bookkeeping in every result: no metric of the trial's (its config goes in as params).
_NOT_METRICS = frozenset({
    "config", "pid", "hostname", "node_ip", "timestamp", "date", "done", "trial_id",
    "experiment_tag", "experiment_id", "should_checkpoint", "checkpoint_dir_name",
    "time_since_restore", "iterations_since_restore", "timesteps_since_restore",
    "timesteps_total", "episodes_total",
})
_PARENT_TAG = "mlflow.parentRunId"  # MLflow's own: the UI nests a run under this one
_TRIAL_TAG = "trial_id"


def tensorboard_callback(options: TensorboardOptions, spec: Any) -> Any:
    """Ray's TensorBoardX logger: each trial's folder gets its event files (every numeric
    report under ``ray/tune/``, and its config as hparams once it ends)."""
    return TBXLoggerCallback()


class NestedMlflowCallback(MLflowLoggerCallback):
    """Ray's MLflow logger with one parent run per experiment and every trial a child of it.

    The parent run's id is kept in the experiment directory (``mlflow/parent-run-id``), so a
    resumed experiment logs under the same parent, and a resumed trial into its own child run
    again (found by its ``trial_id`` tag). Metrics are what the trial reports (and
    ``training_iteration``, ``time_total_s``, ``time_this_iter_s``), at the step of its
    training iteration; params are its config.
    """

    PARENT_FILE = "parent-run-id"

    def __init__(self, *, tracking_uri: str, experiment_name: str, folder: str,
                 artifact_location: str | None = None,
                 parent_params: dict[str, Any] | None = None) -> None:
        super().__init__(tracking_uri, experiment_name=experiment_name)
        self.folder = folder  # the experiment directory's mlflow folder (a path or URI)
        self.artifact_location = artifact_location
        self.parent_params = dict(parent_params or {})
        self.parent_run_id: str | None = None

    def setup(self, *args: Any, **kwargs: Any) -> None:
        # A new SQLite store announces its table creation at INFO level on the console.
        logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
        folder = Location(self.folder)
        if folder.local is not None:
            folder.mkdir()
        self.mlflow_util.setup_mlflow(
            tracking_uri=self.tracking_uri, registry_uri=self.registry_uri,
            experiment_name=self.experiment_name, tracking_token=self.tracking_token,
            artifact_location=self.artifact_location)
        self._trial_runs: dict[Any, str] = {}
        self._ended: set[Any] = set()  # trials whose run ended (Tune told us they ended)
        self.parent_run_id = self._parent_run()
        self.tags = {_PARENT_TAG: self.parent_run_id}

    def _client(self) -> Any:
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)

    def _parent_run(self) -> str:
        """The saved parent run (running again), or a new one whose id is saved."""
        from mlflow.exceptions import MlflowException

        client, saved = self._client(), Location(self.folder) / self.PARENT_FILE
        if saved.is_file():
            run_id = saved.read_text().strip()
            try:
                run = client.get_run(run_id)
            except MlflowException:
                run = None
            if run is not None and run.info.experiment_id == self.mlflow_util.experiment_id:
                client.update_run(run_id, status="RUNNING")
                return run_id
            logger.warning("MLflow run %s (saved in %s) is not in experiment %r; starting a "
                           "new parent run", run_id, saved, self.experiment_name)
        run = client.create_run(self.mlflow_util.experiment_id, run_name=self.experiment_name)
        for key, value in self.parent_params.items():
            client.log_param(run.info.run_id, key, value)
        saved.write_text(run.info.run_id)
        return run.info.run_id

    def log_trial_start(self, trial: Any) -> None:
        if trial not in self._trial_runs:
            self._trial_runs[trial] = self._child_run(trial)
        self._ended.discard(trial)
        run_id = self._trial_runs[trial]
        client = self._client()
        logged = client.get_run(run_id).data.params
        config = trial.config or {}
        fresh = {k: v for k, v in config.items() if k not in logged}
        if fresh:
            self.mlflow_util.log_params(run_id=run_id, params_to_log=fresh)
        for key, value in config.items():  # PBT changed it: MLflow params cannot change
            if key in logged and logged[key] != str(value):
                client.set_tag(run_id, f"config/{key}", str(value))

    def log_trial_end(self, trial: Any, failed: bool = False) -> None:
        self._ended.add(trial)
        super().log_trial_end(trial, failed=failed)

    def _child_run(self, trial: Any) -> str:
        """The trial's run under the parent: the one it had (a resumed trial), or a new one."""
        client = self._client()
        found = client.search_runs(
            [self.mlflow_util.experiment_id],
            filter_string=(f"tags.`{_PARENT_TAG}` = '{self.parent_run_id}' and "
                           f"tags.`{_TRIAL_TAG}` = '{trial.trial_id}'"),
            max_results=1)
        if found:
            client.update_run(found[0].info.run_id, status="RUNNING")
            return found[0].info.run_id
        tags = {**self.tags, "trial_name": str(trial), _TRIAL_TAG: trial.trial_id}
        return self.mlflow_util.start_run(run_name=str(trial), tags=tags).info.run_id

    def log_trial_result(self, iteration: int, trial: Any, result: dict[str, Any]) -> None:
        metrics = {k: v for k, v in result.items() if k not in _NOT_METRICS}
        super().log_trial_result(iteration, trial, metrics)

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        """The parent run ends FINISHED; after an interrupt (Tune stops the running trials
        without ending them; ``hpnas resume`` continues them), it and the runs of the trials
        still running end KILLED."""
        super().on_experiment_end(trials, **info)
        if self.parent_run_id is None:
            return
        client = self._client()
        unended = [run for trial, run in self._trial_runs.items() if trial not in self._ended]
        for run_id in unended:
            client.set_terminated(run_id, status="KILLED")
        client.set_terminated(self.parent_run_id, status="KILLED" if unended else "FINISHED")


def mlflow_callback(options: MlflowOptions, spec: Any) -> NestedMlflowCallback:
    """The MLflow callback of ``spec``: its store is ``options.tracking_uri``, or by default a
    SQLite database in the experiment directory (``mlflow/mlflow.db``, artifacts beside it)."""
    folder = spec.directory / MLFLOW_FOLDER
    uri, artifacts = options.tracking_uri, None
    if uri is None:
        local = folder.local
        if local is None:  # parse_tracking refuses this; a spec built by hand may not
            raise ValueError("`tracking.mlflow.tracking_uri` is not set, but `storage` is a URI.")
        uri, artifacts = f"sqlite:///{local / 'mlflow.db'}", (local / "artifacts").as_uri()
    params = {"trainable": spec.trainable, "searcher": spec.searcher,
              "scheduler": spec.scheduler, "metric": spec.metric, "mode": spec.mode,
              "samples": spec.samples, "time_budget_s": spec.time_budget_s,
              "max_concurrent_trials": spec.max_concurrent_trials, "seed": spec.seed,
              "experiment_dir": str(spec.directory)}
    return NestedMlflowCallback(
        tracking_uri=uri, experiment_name=options.experiment_name or spec.name,
        folder=str(folder), artifact_location=artifacts,
        parent_params={k: v for k, v in params.items() if v is not None})


class FlushingWandbActor(_WandbLoggingActor):
    """Ray's W&B logging actor (one per trial), whose ``run`` returns only once W&B's service
    process has written the run's files and exited.

    Ray kills the actor, and that process with it, as soon as ``run`` returns; ``wandb.finish``
    can return before the service has written an offline run's file, which then holds only
    its 7-byte header (seen on a loaded machine). ``wandb.teardown`` waits for the service."""

    def run(self) -> None:
        try:
            super().run()
        finally:
            self._wandb.teardown()


class WandbCallback(WandbLoggerCallback):
    """Ray's W&B logger (one W&B run per trial, in a logging actor beside the driver), which
    in offline mode needs no API key: Ray's setup asks for one unless ``WANDB_MODE`` says
    offline, so setup says so for its duration. Its actors finish writing before Ray kills
    them (:class:`FlushingWandbActor`)."""

    _logger_actor_cls = FlushingWandbActor

    def setup(self, *args: Any, **kwargs: Any) -> None:
        folder = self.kwargs.get("dir")
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
        mode = self.kwargs.get("mode")
        if mode not in ("offline", "disabled") or os.environ.get("WANDB_MODE"):
            super().setup(*args, **kwargs)
            return
        os.environ["WANDB_MODE"] = mode
        try:
            super().setup(*args, **kwargs)
        finally:
            os.environ.pop("WANDB_MODE", None)


def wandb_callback(options: WandbOptions, spec: Any) -> WandbCallback:
    """The W&B callback of ``spec``: project ``options.project`` (default: the experiment's
    name), the experiment's trials as one group, files under ``options.dir`` (default: the
    experiment directory, ``wandb/``). A resumed trial continues its W&B run online; offline,
    its continuation is a second run folder with the same run id."""
    local = spec.directory.local
    if options.dir is None and local is None:  # parse_tracking refuses this
        raise ValueError("`tracking.wandb.dir` is not set, but `storage` is a URI.")
    folder = options.dir or str(local)
    kwargs: dict[str, Any] = {"mode": options.mode, "dir": folder, "resume": "allow",
                              "reinit": "finish_previous"}
    if options.entity:
        kwargs["entity"] = options.entity
    return WandbCallback(project=options.project or spec.name, group=spec.name, **kwargs)
