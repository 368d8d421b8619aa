"""Experiment tracking: every trial's config and reports in TensorBoard, MLflow or W&B.

``tracking:`` in the experiment file names the trackers, each with its options::

    tracking: tensorboard                    # or a list: [tensorboard, mlflow]
    tracking:                                # or a mapping of options
      mlflow: {tracking_uri: http://mlflow.internal:5000}
      wandb: {project: fmnist, mode: offline}

Each tracker is one of Ray Tune's logger callbacks (:mod:`cluster.trackers`), run by the driver.
Its package is optional (``pip install 'hpnas[mlflow]'``) and imported only when an experiment
asks for it; this module, which the experiment file's validation reads, imports none of them.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from spaces import closest
from spaces.options import parse_options

__all__ = ["MLFLOW_FOLDER", "TRACKERS", "MlflowOptions", "TensorboardOptions", "Tracker",
           "WandbOptions", "parse_tracking", "tracking_callbacks", "tracking_settings"]

MLFLOW_FOLDER = "mlflow"  # in the experiment directory: the default store and the parent run's id


@dataclass(frozen=True)
class TensorboardOptions:
    """TensorBoard event files in each trial's folder: ``tensorboard --logdir <experiment>``."""

    name: ClassVar[str] = "tensorboard"

    def callback(self, spec: Any) -> Any:
        from cluster.trackers import tensorboard_callback

        return tensorboard_callback(self, spec)


@dataclass(frozen=True)
class MlflowOptions:
    """MLflow runs: one parent run for the experiment, a child run per trial (its config as
    params, every report as metrics)."""

    name: ClassVar[str] = "mlflow"
    # An MLflow server (http://HOST:5000) or a store URI (sqlite:///path/mlflow.db); default:
    # a SQLite store in the experiment directory, <experiment>/mlflow/mlflow.db.
    tracking_uri: str | None = None
    experiment_name: str | None = None  # default: the experiment's name

    def __post_init__(self) -> None:
        uri = self.tracking_uri
        if uri is not None and (":" not in uri or uri.startswith(("/", ".", "file:"))):
            # A folder is MLflow's file store, which MLflow 3 refuses to write by default.
            raise ValueError(
                f"`tracking_uri` is {uri!r}, but must be a URI: http://HOST:5000 for an MLflow "
                "server, or sqlite:///path/to/mlflow.db for a local store (or leave it out for "
                "one in the experiment directory).")
        if uri is not None and uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
            # Relative to this directory, so that `hpnas resume` from elsewhere finds it again.
            path = Path(uri[len("sqlite:///"):]).expanduser().resolve()
            object.__setattr__(self, "tracking_uri", f"sqlite:///{path}")
        if self.experiment_name is not None and not self.experiment_name.strip():
            raise ValueError(f"`experiment_name` is {self.experiment_name!r}, but must be a "
                             "name (or leave it out for the experiment's name).")

    def callback(self, spec: Any) -> Any:
        from cluster.trackers import mlflow_callback

        return mlflow_callback(self, spec)


@dataclass(frozen=True)
class WandbOptions:
    """Weights & Biases runs, one per trial, grouped by experiment. Offline by default (no
    account or network needed): ``wandb sync`` uploads them later."""

    name: ClassVar[str] = "wandb"
    project: str | None = None  # default: the experiment's name
    mode: Literal["offline", "online", "disabled"] = "offline"
    entity: str | None = None  # your W&B user or team (online); default: your account's
    dir: str | None = None  # where W&B writes its files; default: the experiment directory

    def __post_init__(self) -> None:
        if self.dir is not None:
            object.__setattr__(self, "dir", str(Path(self.dir).expanduser().resolve()))

    def callback(self, spec: Any) -> Any:
        from cluster.trackers import wandb_callback

        return wandb_callback(self, spec)


@dataclass(frozen=True)
class Tracker:
    """A registered tracker: its option record (whose ``callback(spec)`` builds the Ray Tune
    callback), the module it writes with and its pip extra."""

    options: type
    module: str  # imported by the callback (checked before anything runs)
    extra: str  # pip install 'hpnas[extra]'


TRACKERS: dict[str, Tracker] = {
    "tensorboard": Tracker(TensorboardOptions, "tensorboardX", "tensorboard"),
    "mlflow": Tracker(MlflowOptions, "mlflow", "mlflow"),
    "wandb": Tracker(WandbOptions, "wandb", "wandb"),
}


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _entries(value: Any) -> list[tuple[str, Any]]:
    """``name``, ``[name, ...]`` (an item may be ``{name: options}``) or ``{name: options}``
    -> ``[(name, options), ...]``."""
    usage = ("must be a tracker's name, a list of them, or a mapping of names to options "
             f"(trackers: {', '.join(TRACKERS)})")
    if isinstance(value, str):
        return [(value, None)]
    if isinstance(value, Mapping):
        return list(value.items())
    if isinstance(value, (list, tuple)):
        entries: list[tuple[str, Any]] = []
        for item in value:
            if isinstance(item, Mapping) and len(item) == 1:
                entries.extend(item.items())
            elif isinstance(item, str):
                entries.append((item, None))
            else:
                raise ValueError(f"`tracking` holds {item!r}, but {usage}.")
        return entries
    raise ValueError(f"`tracking` is {value!r}, but {usage}.")


def parse_tracking(value: Any, *, local_storage: bool = True,
                   check_installed: bool = True) -> tuple[Any, ...]:
    """The option records of the trackers ``value`` (the ``tracking:`` setting) names.

    ``ValueError`` (one line: the mistake, what is allowed, the fix) for an unknown tracker or
    option, a tracker named twice, a tracker whose package is not installed (when
    ``check_installed``: the experiment runs here) and, when the experiment directory is behind
    a URI (``local_storage`` false), a tracker that would write its files there.
    """
    if value is None:
        return ()
    records: list[Any] = []
    for name, options in _entries(value):
        if name not in TRACKERS:
            raise ValueError(f"`tracking` names {name!r}, but the trackers are "
                             f"{', '.join(TRACKERS)}.{closest(str(name), list(TRACKERS))}")
        if any(r.name == name for r in records):
            raise ValueError(f"`tracking` names {name!r} twice; name each tracker once.")
        tracker = TRACKERS[name]
        record = parse_options(tracker.options, options, f"tracking.{name}")
        if check_installed and not _installed(tracker.module):
            raise ValueError(f"`tracking` names {name!r}, but {tracker.module} is not installed "
                             f"here; install it with: pip install 'hpnas[{tracker.extra}]' (in "
                             f"a checkout: pip install -e '.[{tracker.extra}]')")
        if not local_storage:
            _check_remote(record)
        records.append(record)
    return tuple(records)


def _check_remote(record: Any) -> None:
    """With the experiment directory behind a URI, MLflow and W&B need a place of their own."""
    if isinstance(record, MlflowOptions) and record.tracking_uri is None:
        raise ValueError("`tracking.mlflow.tracking_uri` is not set, but `storage` is a URI, "
                         "where MLflow's default local store cannot live; set it to your MLflow "
                         "server (http://HOST:5000) or a local sqlite:///path/mlflow.db.")
    if isinstance(record, WandbOptions) and record.dir is None:
        raise ValueError("`tracking.wandb.dir` is not set, but `storage` is a URI, where W&B "
                         "cannot write its run files; set it to a local folder.")


def tracking_settings(records: tuple[Any, ...]) -> dict[str, dict[str, Any]]:
    """``records`` as the ``tracking:`` mapping saved with the experiment (paths resolved)."""
    import dataclasses

    return {r.name: {k: v for k, v in dataclasses.asdict(r).items() if v is not None}
            for r in records}


def tracking_callbacks(spec: Any) -> list[Any]:
    """Ray Tune callbacks writing ``spec``'s trials (an :class:`~cluster.spec.ExperimentSpec`)
    to the trackers its ``tracking`` names; none when it names none."""
    return [record.callback(spec) for record in spec.tracking]
