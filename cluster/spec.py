"""The experiment file: YAML (``yaml.safe_load`` only) plus CLI overrides, validated before Ray.

Example ``experiment.yaml``::

    name: fmnist-cnn                # experiment directory name under `storage`
    trainable: cifar_cnn
    space: {name: cifar_cnn, overrides: {lr: {low: 0.002}}}   # or just `space: cifar_cnn`
    searcher: {name: optuna, sampler: tpe}                     # or just `searcher: optuna`
    scheduler: {name: asha, grace_period_epochs: 1, reduction_factor: 3}
    metric: val_acc                 # default: the trainable's
    mode: max
    samples: 20                     # trials; and/or time_budget_s
    max_concurrent_trials: 2
    resources: {cpus: 1, gpus: 0}   # per trial; gpus may be fractional
    data: {name: fashion_mnist, train_size: 10000, val_size: 2000}
    train: {epochs: 5, batch_size: 64}
    seed: 0
    storage: runs
    warm_start: runs/fmnist-cnn-v1  # start from that experiment's trials (cluster/warm_start.py)

Every mistake is one :class:`SpecError` line naming the field, what is allowed and the fix.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from cluster.tracking import parse_tracking, tracking_settings
from cluster.user_code import (
    DEFAULT_EXCLUDES,
    UserCodeError,
    UserTrainable,
    code_excludes,
    code_folder,
    is_reference,
    user_trainable,
)
from cluster.warm_start import WarmStart, load_warm_start
from results import ExperimentDir, Location, is_uri
from search.bohb import missing_bohb_packages
from search.registry import SCHEDULERS, SEARCHERS, make_scheduler, make_searcher
from search.schedulers import POPULATION_SCHEDULERS
from spaces import SPACES, Space, closest, get_space
from spaces.inline import compile_space
from spaces.options import check_range, parse_options
from trainables import TRAINABLE_INFO
from trainables.data import DatasetNotFound, locate
from trainables.text import check_corpus

__all__ = ["DEFAULT_STORAGE", "ExperimentSpec", "Resources", "SpecError", "load_saved",
           "load_spec", "spec_from_mapping"]

DEFAULT_STORAGE = "runs"  # experiments go to <storage>/<name>; before 0.2 the default was results


class SpecError(ValueError):
    """A problem with the experiment file or flags; its message is one line for the user."""


@dataclass(frozen=True)
class Resources:
    """Resources of one trial."""

    cpus: float = 1.0
    gpus: float = 0.0  # may be fractional: 0.25 packs four trials on one GPU

    def __post_init__(self) -> None:
        check_range("cpus", self.cpus, low=0, low_open=True)
        check_range("gpus", self.gpus, low=0)
        if self.gpus > 1 and self.gpus != int(self.gpus):
            raise ValueError(f"`gpus` is {self.gpus}, but above 1 must be a whole number.")


@dataclass(frozen=True)
class ExperimentSpec:
    """A validated experiment: what to train, over which space, how to search and where to write."""

    name: str
    trainable: str  # a built-in trainable's name, or a reference to the user's function
    space: Space
    settings: Any  # the trainable's settings record (e.g. CnnSettings); the user's `train:` dict
    max_epochs: int | None = None  # the per-trial budget in reports (None: unknown)
    user: UserTrainable | None = None  # the user's own trainable, if it is one
    searcher: str = "optuna"
    searcher_options: dict[str, Any] = field(default_factory=dict)
    scheduler: str = "asha"
    scheduler_options: dict[str, Any] = field(default_factory=dict)
    metric: str = "val_acc"
    mode: str = "max"
    samples: int | None = 20
    time_budget_s: float | None = None
    max_concurrent_trials: int = 2
    resources: Resources = field(default_factory=Resources)
    seed: int = 0
    storage: str = DEFAULT_STORAGE
    max_failures: int = 0
    tracking: tuple[Any, ...] = ()  # the trackers' option records (cluster.tracking)
    warm_start: WarmStart | None = None  # another experiment's trials the search starts from
    raw: dict[str, Any] = field(default_factory=dict)  # the resolved file, saved with results

    def trainable_fn(self) -> tuple[Callable[..., None], dict[str, Any]]:
        """The function Tune calls, and the keyword arguments it gets besides the config."""
        if self.user is not None:
            return self.user.load(), dict(self.settings)
        return TRAINABLE_INFO[self.trainable].fn, {"settings": dataclasses.asdict(self.settings)}

    @property
    def directory(self) -> Location:
        """``<storage>/<name>``: a local directory or a URI (``s3://...``), see
        :mod:`results.storage`."""
        return Location(self.storage) / self.name

    @property
    def experiment(self) -> ExperimentDir:
        return ExperimentDir(self.directory)

    def make_searcher(self) -> Any:
        return make_searcher(
            self.searcher, space=self.space, metric=self.metric, mode=self.mode, seed=self.seed,
            max_epochs=self.max_epochs, max_trials=self.samples, options=self.searcher_options,
            warm=self.warm_start.trials if self.warm_start else (),
        )

    def make_scheduler(self) -> Any:
        return make_scheduler(self.scheduler, metric=self.metric, mode=self.mode,
                              max_epochs=self.max_epochs, options=self.scheduler_options,
                              space=self.space)


_TOP_KEYS = (
    "name", "trainable", "space", "searcher", "scheduler", "metric", "mode", "samples",
    "time_budget_s", "max_concurrent_trials", "resources", "data", "train", "max_epochs",
    "code", "seed", "storage", "max_failures", "warm_start", "tracking",
)


def _named(value: Any, where: str, default: str) -> tuple[str, dict[str, Any]]:
    """``x`` or ``{name: x, ...options}`` -> (name, options)."""
    if value is None:
        return default, {}
    if isinstance(value, str):
        return value, {}
    if isinstance(value, Mapping):
        options = dict(value)
        name = options.pop("name", default)
        if not isinstance(name, str):
            raise SpecError(f"`{where}.name` is {name!r}, but must be a string.")
        return name, options
    raise SpecError(f"`{where}` is {value!r}, but must be a name or a mapping with `name`.")


def _choose(value: str, registry: Mapping[str, Any], where: str) -> str:
    if value not in registry:
        raise SpecError(
            f"`{where}` is {value!r}, but must be one of {', '.join(sorted(registry))}."
            f"{closest(value, list(registry))}"
        )
    return value


def _int(data: Mapping[str, Any], key: str, default: int | None, low: int,
         allow_none: bool = False) -> int | None:
    value = data.get(key, default)
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"`{key}` is {value!r}, but must be an integer >= {low}.")
    if value < low:
        raise SpecError(f"`{key}` is {value}, but must be >= {low}.")
    return value


def spec_from_mapping(data: Any, *, source: str = "experiment file", check_data: bool = True,
                      base_dir: str | Path | None = None,
                      read_warm_start: bool = True) -> ExperimentSpec:
    """Validate a parsed experiment mapping; ``SpecError`` on the first problem.

    ``base_dir``: what relative paths in the file (a trainable's file, ``code``) are relative
    to: the experiment file's folder (default: the current directory). ``read_warm_start``:
    read and check the trials of ``warm_start`` (with ``check_data``; a spec that will not
    start a search, or one whose data is checked on a cluster, skips them)."""
    if not isinstance(data, Mapping):
        raise SpecError(f"{source} must be a YAML mapping of settings, not {type(data).__name__}.")
    for key in data:
        if key not in _TOP_KEYS:
            raise SpecError(
                f"`{key}` is not a setting.{closest(str(key), _TOP_KEYS)} "
                f"Allowed: {', '.join(_TOP_KEYS)}."
            )
    try:
        return _build(dict(data), check_data, Path(base_dir or os.getcwd()),
                      read_warm_start=read_warm_start)
    except SpecError:
        raise
    except (ValueError, TypeError, ArithmeticError) as e:
        raise SpecError(str(e)) from None


@dataclass(frozen=True)
class _Trained:
    """What the ``trainable`` and its fields resolve to, built-in or the user's."""

    trainable: str
    space: Space
    settings: Any
    metric: str
    mode: str
    max_epochs: int | None
    user: UserTrainable | None = None
    saved: dict[str, Any] = field(default_factory=dict)  # resolved fields for hpnas.yaml


def _build(data: dict[str, Any], check_data: bool, base_dir: Path, *,
           read_warm_start: bool = True) -> ExperimentSpec:
    trainable = data.get("trainable")
    if not isinstance(trainable, str):
        raise SpecError(
            f"`trainable` is {trainable!r}, but must be one of {', '.join(sorted(TRAINABLE_INFO))}"
            ", or your own function as `module:function` or `file.py:function`."
        )
    trained = (_user_trainable(data, trainable, base_dir) if is_reference(trainable)
               else _builtin_trainable(data, trainable, check_data))
    space, metric, mode = trained.space, trained.metric, trained.mode
    _check_sampling(space)

    scheduler, scheduler_options = _named(data.get("scheduler"), "scheduler", "asha")
    _choose(scheduler, SCHEDULERS, "scheduler")
    searcher, searcher_options = _named(data.get("searcher"), "searcher",
                                        _PAIRED_SEARCHER.get(scheduler, "optuna"))
    _choose(searcher, SEARCHERS, "searcher")
    _check_pairing(searcher, scheduler, scheduler_options, trained)

    samples = _int(data, "samples", 20, 1, allow_none=True)
    budget = data.get("time_budget_s")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, float))
                               or not budget > 0 or budget == float("inf")):
        raise SpecError(f"`time_budget_s` is {budget!r}, but must be a number of seconds > 0.")
    if samples is None and budget is None:
        raise SpecError("`samples` is null and `time_budget_s` is not set: the search would "
                        "never end; set `samples: N` or `time_budget_s: SECONDS`.")
    if scheduler in POPULATION_SCHEDULERS and samples is None:
        raise SpecError(f"`samples` is null, but scheduler {scheduler!r} trains a population of "
                        "`samples` trials side by side; set `samples: N` (the population).")
    max_concurrent = _int(data, "max_concurrent_trials", 2, 1)
    seed = _int(data, "seed", 0, 0)
    if seed >= 2**32:  # type: ignore[operator]
        raise SpecError(f"`seed` is {seed}, but must be < 2**32.")
    max_failures = _int(data, "max_failures", 0, 0)

    resources = parse_options(Resources, data.get("resources"), "resources")

    name = data.get("name")
    if name is None:
        stem = trainable.rpartition(":")[2] if is_reference(trainable) else trainable
        name = f"{stem}-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise SpecError(f"`name` is {name!r}, but must be a folder name (no '/', not hidden).")
    storage = data.get("storage", DEFAULT_STORAGE)
    if not isinstance(storage, str) or not storage:
        raise SpecError(f"`storage` is {storage!r}, but must be a directory path or URI.")
    if is_uri(storage):
        try:
            Location(storage)
        except (ValueError, OSError, ImportError) as e:
            raise SpecError(f"`storage` is {storage!r}, which pyarrow cannot open ({e}); give a "
                            "path or a URI such as s3://bucket/prefix.") from None
    else:
        storage = str(Path(storage).expanduser().resolve())
        if check_data:  # on this machine; a submitted job's storage is the cluster's
            _check_writable(storage)
    # Packages are checked where the experiment runs (a submitted job's: on the cluster).
    tracking = parse_tracking(data.get("tracking"), check_installed=check_data,
                              local_storage=Location(storage).local is not None)

    spec = ExperimentSpec(
        name=name, trainable=trainable, space=space, settings=trained.settings,
        max_epochs=trained.max_epochs, user=trained.user, searcher=searcher,
        searcher_options=searcher_options, scheduler=scheduler,
        scheduler_options=scheduler_options, metric=metric, mode=mode, samples=samples,
        time_budget_s=float(budget) if budget is not None else None,
        max_concurrent_trials=max_concurrent, resources=resources, seed=seed,
        storage=storage, max_failures=max_failures, tracking=tracking,
    )
    # Build once to validate the searcher's and scheduler's options (cheap, no Ray started).
    spec.make_searcher()
    spec.make_scheduler()
    raw = {**{k: v for k, v in data.items() if k not in ("data", "train")},
           "name": name, "storage": storage, "metric": metric, "mode": mode,
           "searcher": data.get("searcher") or searcher,
           "scheduler": data.get("scheduler") or scheduler, **trained.saved}
    if tracking:  # paths resolved, so that a resume from elsewhere finds the same stores
        raw["tracking"] = tracking_settings(tracking)
    warm = None
    if data.get("warm_start") is not None:  # after the searcher's options: read last
        warm = load_warm_start(data["warm_start"], base_dir=base_dir, space=space,
                               metric=metric, mode=mode, searcher=searcher,
                               directory=spec.directory, read=check_data and read_warm_start)
        raw["warm_start"] = warm.saved()
    return dataclasses.replace(spec, raw=raw, warm_start=warm)


# The searcher a scheduler gets when the file names none: BOHB's model is its own searcher; PBT
# and PB2 change configs while trials train, so a searcher learning from final scores would learn
# from trials whose config is no longer the one it proposed.
_PAIRED_SEARCHER = {"bohb": "bohb", "pbt": "random", "pb2": "random"}
_POPULATION_SEARCHERS = ("random", "grid", "points")


def _check_pairing(searcher: str, scheduler: str, scheduler_options: Mapping[str, Any],
                   trained: _Trained) -> None:
    """``SpecError`` for a searcher and scheduler that do not work together, and for PBT
    mutations a built-in trainable cannot continue from another trial's checkpoint."""
    if (searcher == "bohb") != (scheduler == "bohb"):
        raise SpecError(f"`searcher` is {searcher!r} and `scheduler` is {scheduler!r}, but BOHB "
                        "is a pair: set both to bohb (the model proposes configs, its Hyperband "
                        "runs them), or neither.")
    if searcher == "bohb" and (missing := missing_bohb_packages()):
        raise SpecError(missing)
    if scheduler in POPULATION_SCHEDULERS and searcher not in _POPULATION_SEARCHERS:
        raise SpecError(f"`searcher` is {searcher!r}, but scheduler {scheduler!r} changes configs "
                        "while trials train, so a searcher learning from final scores would be "
                        "misled; use searcher random (the default with it), grid or points to "
                        "draw the initial population.")
    mutate = scheduler_options.get("mutate")
    if scheduler in POPULATION_SCHEDULERS and trained.user is None and isinstance(mutate, list):
        mutable = TRAINABLE_INFO[trained.trainable].mutable
        wrong = [n for n in mutate if n not in mutable and n in trained.space.names]
        if wrong:
            raise SpecError(
                f"`scheduler.mutate` names {', '.join(map(repr, wrong))}, but trainable "
                f"{trained.trainable!r} cannot continue another trial's checkpoint with a "
                f"different value of it (it shapes the model or the data); it can mutate: "
                f"{', '.join(mutable) or 'nothing (use asha, hyperband or bohb with it)'}.")


def _check_sampling(space: Space, draws: int = 32) -> None:
    """``SpecError`` if the space's own samples are not valid configs of it (a searcher would
    propose nothing but invalid configs)."""
    import numpy as np

    rng = np.random.default_rng(0)
    for _ in range(draws):
        try:
            space.validate(space.sample(rng))
        except ValueError as e:
            raise SpecError(f"`space`: a random config of it is invalid ({e}); check the ranges "
                            "and conditions.") from None


def _check_writable(storage: str) -> None:
    """``SpecError`` unless experiments can be written under the local folder ``storage``
    (created if missing): it is a file, or its nearest existing folder refuses a write."""
    import tempfile

    path = Path(storage)
    if path.exists() and not path.is_dir():
        raise SpecError(f"`storage` is {storage!r}, which is a file, but must be a folder for "
                        "experiment directories; give another path (default: runs).")
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise SpecError(f"`storage` is {storage!r}, but {existing} is a file; give a folder.")
    try:
        tempfile.TemporaryDirectory(dir=existing, prefix=".hpnas-probe-").cleanup()
    except OSError as e:
        raise SpecError(f"`storage` is {storage!r}, but {existing} cannot be written "
                        f"({e.strerror or e}); give a folder you can write to.") from None


def _builtin_trainable(data: Mapping[str, Any], trainable: str, check_data: bool) -> _Trained:
    """A registered trainable: its space (by name, with overrides), settings record and
    metric."""
    if trainable not in TRAINABLE_INFO:
        raise SpecError(
            f"`trainable` is {trainable!r}, but must be one of "
            f"{', '.join(sorted(TRAINABLE_INFO))}.{closest(trainable, list(TRAINABLE_INFO))} "
            "Your own function: `module:function` or `path/to/file.py:function` (e.g. "
            "model.py:fit).")
    info = TRAINABLE_INFO[trainable]
    for key in ("code", "max_epochs"):
        if key in data:
            raise SpecError(f"`{key}` is set, but only a trainable of your own takes it; "
                            f"{trainable!r} is built in"
                            + (" (its budget is `train.epochs`)." if key == "max_epochs"
                               else "."))
    space = _registered_space(data.get("space"), info.space, (info.space, *info.also_spaces),
                              trainable)

    metric = data.get("metric", info.metric)
    if not isinstance(metric, str) or not metric:
        raise SpecError(f"`metric` is {metric!r}, but must be a metric name such as {info.metric!r}.")
    if info.reports and metric not in info.reports:
        raise SpecError(f"`metric` is {metric!r}, but trainable {trainable!r} reports "
                        f"{', '.join(info.reports)}.{closest(metric, list(info.reports))}")
    mode = data.get("mode", info.mode if metric == info.metric else None)
    if mode not in ("max", "min"):
        raise SpecError(f"`mode` is {mode!r}, but must be 'max' or 'min'.")

    data_section = data.get("data")
    train = data.get("train") or {}
    if not isinstance(train, Mapping):
        raise SpecError(f"`train` is {train!r}, but must be a mapping of training settings.")
    train = dict(train)
    settings_fields = {f.name: f for f in dataclasses.fields(info.settings)}
    if data_section is not None:
        if "data" not in settings_fields:
            raise SpecError(f"`data` is set, but trainable {trainable!r} takes no dataset.")
        data_cls = typing.get_type_hints(info.settings)["data"]
        data_settings = parse_options(data_cls, data_section, "data")  # type: ignore[arg-type]
        if data_settings.root is not None:
            data_settings = dataclasses.replace(
                data_settings, root=str(Path(data_settings.root).expanduser().resolve()))
        train["data"] = data_settings
    settings = parse_options(info.settings, train, "train")
    needed = info.needs.get(metric)
    if needed is not None and getattr(settings, needed, None) is None:
        raise SpecError(f"`metric` is {metric!r}, but {trainable!r} reports it only with "
                        f"`train.{needed}` set (the file to score against); set it, or search "
                        f"{info.metric!r}.")
    if check_data and hasattr(settings, "data"):
        try:
            locate(settings.data)
        except DatasetNotFound as e:
            raise SpecError(str(e)) from None
    if check_data and hasattr(settings, "corpus"):
        check_corpus(settings.corpus)

    saved: dict[str, Any] = {
        "train": {k: v for k, v in dataclasses.asdict(settings).items() if k != "data"}}
    if hasattr(settings, "data"):
        saved["data"] = dataclasses.asdict(settings.data)
    return _Trained(trainable, space, settings, metric, mode, int(settings.epochs), saved=saved)


def _registered_space(value: Any, default: str, allowed: tuple[str, ...] | None,
                      trainable: str) -> Space:
    """``space: NAME`` or ``{name: NAME, overrides: {...}}``: a registered space, narrowed."""
    space_name, space_options = _named(value, "space", default)
    overrides = space_options.pop("overrides", None) or {}
    if space_options:
        raise SpecError(f"`space.{next(iter(space_options))}` is not an option; allowed: name, "
                        "overrides.")
    if not isinstance(overrides, Mapping):
        raise SpecError(f"`space.overrides` is {overrides!r}, but must be a mapping.")
    if allowed is not None and space_name in SPACES and space_name not in allowed:
        raise SpecError(f"`space` is {space_name!r}, but trainable {trainable!r} takes configs of "
                        f"{', '.join(allowed)}.")
    space = get_space(_choose(space_name, SPACES, "space"))
    try:
        return space.with_overrides(overrides)
    except (ValueError, TypeError) as e:
        raise SpecError(f"`space.overrides`: {e}") from None


def is_registered_space(value: Any) -> bool:
    """Whether a ``space:`` value names a registered space (else it is written inline)."""
    if isinstance(value, str):
        return True
    return isinstance(value, Mapping) and set(value) <= {"name", "overrides"} \
        and isinstance(value.get("name"), str) and value["name"] in SPACES


def _user_trainable(data: Mapping[str, Any], reference: str, base_dir: Path) -> _Trained:
    """The user's own function trainable: imported and checked now, with its inline space (or a
    registered one), its ``train:`` keywords and its epoch budget."""
    if "data" in data:
        raise SpecError("`data` is set, but a trainable of your own takes its dataset settings "
                        "in `train:` (they reach it as keyword arguments).")
    for key in ("metric", "mode"):
        if key not in data:
            raise SpecError(
                f"`{key}` is not set; a trainable of your own needs `metric` (a key it passes "
                "to ray.tune.report, e.g. val_acc) and `mode` (max or min).")
    metric, mode = data["metric"], data["mode"]
    if not isinstance(metric, str) or not metric:
        raise SpecError(f"`metric` is {metric!r}, but must be a key your trainable reports.")
    if mode not in ("max", "min"):
        raise SpecError(f"`mode` is {mode!r}, but must be 'max' or 'min'.")
    train = data.get("train") or {}
    if not isinstance(train, Mapping):
        raise SpecError(f"`train` is {train!r}, but must be a mapping (keyword arguments of "
                        "your trainable).")
    try:
        user = user_trainable(reference, code_folder(data.get("code"), base_dir))
        fn = user.load()
        user.check_call(fn, train)
    except UserCodeError as e:
        raise SpecError(str(e)) from None

    value = data.get("space")
    if value is None:
        raise SpecError("`space` is not set; a trainable of your own needs its space written "
                        "in the experiment file, e.g. `space: {lr: {float: [1.0e-4, 0.1], log: "
                        "true}, layers: {int: [1, 4]}, width: {choice: [16, 32], per: layers}}` "
                        "(see \"Search your own model\" in the README).")
    if is_registered_space(value):
        space = _registered_space(value, "", None, reference)
    elif isinstance(value, Mapping):
        space = compile_space(value)
    else:
        raise SpecError(f"`space` is {value!r}, but must be a mapping of parameters (see the "
                        "README's \"Search your own model\") or a registered space's name.")

    max_epochs = data.get("max_epochs", train.get("epochs"))
    if max_epochs is not None and (isinstance(max_epochs, bool)
                                   or not isinstance(max_epochs, int) or max_epochs < 1):
        where = "max_epochs" if "max_epochs" in data else "train.epochs"
        raise SpecError(f"`{where}` is {max_epochs!r}, but must be an integer >= 1 (the epochs "
                        "your trainable reports at most).")
    saved = {"train": dict(train), "max_epochs": max_epochs,
             "code": {"dir": user.code_dir, "exclude": code_excludes(data.get("code"))[
                 len(DEFAULT_EXCLUDES):]}}
    return _Trained(reference, space, dict(train), metric, mode, max_epochs, user=user,
                    saved=saved)


ENV_PREFIX = "env:"  # `env:NAME`: the experiment's YAML text is in $NAME (submitted jobs)


def read_yaml(path: str | Path | Location) -> Any:
    """``yaml.safe_load`` of ``path`` (a local path or URI) with a one-line error for a missing
    or malformed file. ``env:NAME`` (when no such file exists) reads the YAML text from the
    variable ``NAME``."""
    name = str(path)
    if not is_uri(name) and not Path(name).is_file() and name.startswith(ENV_PREFIX):
        text = os.environ.get(name[len(ENV_PREFIX):])
        if text is None:
            raise SpecError(f"experiment {name!r}: the variable {name[len(ENV_PREFIX):]} is not "
                            "set.")
        return _parse_yaml(text, name)
    where = Location(path)
    try:
        if not where.is_file():
            raise SpecError(f"experiment file {name!r} does not exist; pass the path of a YAML "
                            "file (see examples/).")
        text = where.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise SpecError(f"experiment file {name!r} cannot be read: {e}.") from None
    return _parse_yaml(text, name)


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (where the plain
    loader silently keeps the last)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:
                continue  # the base class reports unhashable keys
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"`{key}` is given twice (lines {seen[key].line + 1} and "
                    f"{key_node.start_mark.line + 1}); keep one", key_node.start_mark)
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def _parse_yaml(text: str, path: str) -> Any:
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # safe: a SafeLoader
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise SpecError(f"{path}{where}: malformed YAML ({problem}).") from None


def load_saved(experiment: ExperimentDir | Location | str, *,
               check_data: bool = False, read_warm_start: bool = False) -> ExperimentSpec:
    """The validated spec an experiment directory was run with (its saved ``hpnas.yaml``);
    ``SpecError`` when the directory holds none. ``read_warm_start``: read the trials of its
    ``warm_start`` again (only a search started over needs them: a resumed searcher's saved
    state holds them)."""
    experiment = ExperimentDir(experiment)
    if not experiment.is_experiment():
        raise SpecError(f"{experiment} is not an hpnas experiment directory (no "
                        f"{ExperimentDir.SPEC_FILE}); pass the directory `hpnas run` printed.")
    return spec_from_mapping(read_yaml(experiment.spec_file), source=str(experiment.spec_file),
                             check_data=check_data, read_warm_start=read_warm_start)


def load_spec(path: str | Path, overrides: Mapping[str, Any] | None = None, *,
              check_data: bool = True, cpu_only: bool = False) -> ExperimentSpec:
    """Read, override (CLI flags; ``None`` values are ignored) and validate an experiment file;
    ``cpu_only`` sets ``resources.gpus`` to 0."""
    data = read_yaml(path)
    if data is None:
        data = {}
    if isinstance(data, Mapping):
        data = {**data, **{k: v for k, v in (overrides or {}).items() if v is not None}}
        resources = data.get("resources") or {}
        if cpu_only and isinstance(resources, Mapping):
            data["resources"] = {**resources, "gpus": 0}
        # No name: a new directory per run, named after the file and the time.
        data.setdefault("name", f"{Path(path).stem}-{_dt.datetime.now():%Y%m%d-%H%M%S}")
    base = Path(path).parent if Location(path).local is not None and Path(path).is_file() \
        else Path.cwd()
    return spec_from_mapping(data, source=str(path), check_data=check_data, base_dir=base)
