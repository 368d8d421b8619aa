"""Trial schedulers: ASHA, the median stopping rule, FIFO (run every trial out), Hyperband,
BOHB's Hyperband, population-based training (PBT) and PB2.

Each is an option record (checked once, when built) and a builder of Ray's own scheduler (ASHA,
median and FIFO in :mod:`search.live_queue`'s subclasses, which choose the next trial without
scanning them all; Hyperband and BOHB's in :mod:`search.pausing`'s, which fill brackets from a
searcher that proposes trials one at a time; PBT and PB2 in :mod:`search.population`'s);
:data:`search.registry.SCHEDULERS` registers them as it registers the searchers. Ray is imported
by the builders only, so the records can be read without it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from spaces import Categorical, Float, Integer, Space
from spaces.options import check_range

__all__ = [
    "POPULATION_SCHEDULERS",
    "AshaOptions",
    "FifoOptions",
    "HyperbandOptions",
    "MedianOptions",
    "Pb2Options",
    "PbtOptions",
    "build_asha",
    "build_fifo",
    "build_hyperband",
    "build_median",
    "build_pb2",
    "build_pbt",
]

# Schedulers that change the configs of running trials (the searcher only proposes the initial
# population) and need the whole population started at once.
POPULATION_SCHEDULERS = ("pbt", "pb2")


@dataclass(frozen=True)
class AshaOptions:
    """ASHA (Li et al. 2020): promote the top 1/reduction_factor of each rung, asynchronously."""

    grace_period_epochs: int = 1  # every trial runs at least this many epochs
    reduction_factor: float = 3.0  # rungs at grace * rf^k epochs; keep the top 1/rf
    brackets: int = 1

    def __post_init__(self) -> None:
        check_range("grace_period_epochs", self.grace_period_epochs, low=1)
        check_range("reduction_factor", self.reduction_factor, low=1, low_open=True)
        check_range("brackets", self.brackets, low=1)


@dataclass(frozen=True)
class MedianOptions:
    """Stop a trial whose best result is below the median of others' running averages."""

    grace_period_epochs: int = 1
    min_samples_required: int = 3

    def __post_init__(self) -> None:
        check_range("grace_period_epochs", self.grace_period_epochs, low=1)
        check_range("min_samples_required", self.min_samples_required, low=1)


@dataclass(frozen=True)
class FifoOptions:
    """Run every trial to its full budget."""


def build_asha(o: AshaOptions, *, metric: str, mode: str, max_epochs: int | None,
               space: Space | None = None) -> Any:
    from search.live_queue import LiveAsha

    if max_epochs is None:
        raise ValueError("`max_epochs` is not set, but scheduler 'asha' stops trials at rungs "
                         "of epochs up to that budget; set `max_epochs: N` (the epochs your "
                         "trainable reports at most), or use `scheduler: median` or `fifo`.")
    if o.grace_period_epochs > max_epochs:
        raise ValueError(
            f"`grace_period_epochs` is {o.grace_period_epochs}, but must be <= the trial budget "
            f"of {max_epochs} epochs."
        )
    return LiveAsha(
        time_attr="training_iteration", metric=metric, mode=mode, max_t=max_epochs,
        grace_period=o.grace_period_epochs, reduction_factor=o.reduction_factor,
        brackets=o.brackets,
    )


def build_median(o: MedianOptions, *, metric: str, mode: str, max_epochs: int | None,
                 space: Space | None = None) -> Any:
    from search.live_queue import LiveMedian

    return LiveMedian(
        time_attr="training_iteration", metric=metric, mode=mode,
        grace_period=o.grace_period_epochs, min_samples_required=o.min_samples_required,
    )


def build_fifo(o: FifoOptions, *, metric: str, mode: str, max_epochs: int | None,
               space: Space | None = None) -> Any:
    from search.live_queue import LiveFifo

    return LiveFifo()


@dataclass(frozen=True)
class HyperbandOptions:
    """Hyperband (Li et al. 2018), and BOHB's (Falkner et al. 2018; with ``searcher: bohb``):
    brackets of successive halving, trials paused at each rung until the bracket's others catch
    up, the best 1/reduction_factor continued."""

    reduction_factor: float = 3.0

    def __post_init__(self) -> None:
        check_range("reduction_factor", self.reduction_factor, low=1, low_open=True)


@dataclass(frozen=True)
class PbtOptions:
    """Population-based training (Jaderberg et al. 2017): every ``perturbation_interval_epochs``
    a trial in the bottom ``quantile_fraction`` continues from a top trial's checkpoint with
    that trial's config, mutated (``mutate``: the parameters that may change)."""

    mutate: list = dataclasses.field(default_factory=list)  # parameter names
    perturbation_interval_epochs: int = 2
    quantile_fraction: float = 0.25
    resample_probability: float = 0.25  # else floats x0.8 or x1.2, choices/integers a step
    burn_in_epochs: int = 0

    def __post_init__(self) -> None:
        _check_names("mutate", self.mutate)
        check_range("perturbation_interval_epochs", self.perturbation_interval_epochs, low=1)
        check_range("quantile_fraction", self.quantile_fraction, low=0, high=0.5, low_open=True)
        check_range("resample_probability", self.resample_probability, low=0, high=1)
        check_range("burn_in_epochs", self.burn_in_epochs, low=0)


@dataclass(frozen=True)
class Pb2Options:
    """PB2 (Parker-Holder et al. 2020): PBT whose explore step is a GP bandit over the numeric
    parameters in ``mutate`` (within the space's bounds)."""

    mutate: list = dataclasses.field(default_factory=list)
    perturbation_interval_epochs: int = 2
    quantile_fraction: float = 0.25

    def __post_init__(self) -> None:
        _check_names("mutate", self.mutate)
        check_range("perturbation_interval_epochs", self.perturbation_interval_epochs, low=1)
        check_range("quantile_fraction", self.quantile_fraction, low=0, high=0.5, low_open=True)


def _check_names(key: str, names: Any) -> None:
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ValueError(f"`{key}` is {names!r}, but must be a list of the space's parameter "
                         "names that may change during training, e.g. [lr].")
    if len(set(names)) != len(names):
        raise ValueError(f"`{key}` names a parameter twice: {names}.")


def _need_epochs(name: str, max_epochs: int | None) -> int:
    if max_epochs is None:
        raise ValueError(f"`max_epochs` is not set, but scheduler {name!r} plans its rungs over "
                         "the trial budget in epochs; set `max_epochs: N` (the epochs your "
                         "trainable reports at most).")
    return max_epochs


def build_hyperband(o: HyperbandOptions, *, metric: str, mode: str, max_epochs: int | None,
                    space: Space | None = None, name: str = "hyperband") -> Any:
    """Hyperband for every searcher (``search/pausing.py``); ``name`` for the error message
    (the ``bohb`` scheduler is the same one, paired with BOHB's searcher)."""
    from search.pausing import Hyperband

    return Hyperband(time_attr="training_iteration", metric=metric, mode=mode,
                     max_t=_need_epochs(name, max_epochs), reduction_factor=o.reduction_factor)


def _mutated(name: str, names: list, space: Space | None) -> list[Any]:
    """The space's parameters named in ``mutate``; ``ValueError`` for a name it lacks or a
    conditional one (a mutation could set it where it is inactive)."""
    if space is None:
        raise ValueError(f"scheduler {name!r} needs the search space to mutate parameters.")
    params = []
    for n in names:
        if n not in space.names:
            raise ValueError(f"`scheduler.mutate` names {n!r}, which is not a parameter of the "
                             f"space; the space has: {', '.join(space.names)}.")
        p = space[n]
        if p.condition is not None:
            raise ValueError(f"`scheduler.mutate` names {n!r}, which is active only when "
                             f"{p.condition.param} {p.condition.op} {p.condition.value!r}; "
                             "only parameters every config has can be mutated.")
        params.append(p)
    return params


def _clip_into(params: list[Any]) -> Any:
    """PBT's explore multiplies floats by 0.8 or 1.2 and shifts integers without bounds: put the
    mutated values back into the space's ranges."""

    def explore(config: dict[str, Any]) -> dict[str, Any]:
        for p in params:
            value = config.get(p.name)
            if isinstance(p, Float) and value is not None:
                config[p.name] = float(min(max(value, p.low), p.high))
            elif isinstance(p, Integer) and value is not None:
                grid = p.grid()
                config[p.name] = min(grid, key=lambda v: abs(v - value))
        return config

    return explore


def build_pbt(o: PbtOptions, *, metric: str, mode: str, max_epochs: int | None,
              space: Space | None = None) -> Any:
    from ray import tune

    from search.population import SeededPbt

    params = _mutated("pbt", o.mutate, space)
    mutations = {p.name: (list(p.grid()) if isinstance(p, (Categorical, Integer))
                          else p.tune_domain(tune)) for p in params}
    return SeededPbt(
        time_attr="training_iteration", metric=metric, mode=mode,
        perturbation_interval=o.perturbation_interval_epochs, burn_in_period=o.burn_in_epochs,
        hyperparam_mutations=mutations, quantile_fraction=o.quantile_fraction,
        resample_probability=o.resample_probability, custom_explore_fn=_clip_into(params))


def build_pb2(o: Pb2Options, *, metric: str, mode: str, max_epochs: int | None,
              space: Space | None = None) -> Any:
    params = _mutated("pb2", o.mutate, space)
    for p in params:
        if isinstance(p, Categorical):
            raise ValueError(f"`scheduler.mutate` names {p.name!r}, a choice; PB2 models numeric "
                             "parameters only: use scheduler pbt, or mutate numbers.")
    try:
        import sklearn  # noqa: F401  (PB2's Gaussian process)

        from search.population import SeededPb2
    except ImportError as e:
        raise ValueError(f"scheduler 'pb2' needs scikit-learn ({e}); pip install scikit-learn, "
                         "or use scheduler pbt.") from None
    return SeededPb2(time_attr="training_iteration", metric=metric, mode=mode,
               perturbation_interval=o.perturbation_interval_epochs,
               hyperparam_bounds={p.name: [p.low, p.high] for p in params},
               quantile_fraction=o.quantile_fraction, custom_explore_fn=_clip_into(params))
