"""Trial schedulers by name: ASHA, the median stopping rule, and FIFO (run every trial out)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ray.tune.schedulers import (
    AsyncHyperBandScheduler,
    FIFOScheduler,
    MedianStoppingRule,
    TrialScheduler,
)

from spaces.options import check_range, parse_options

__all__ = ["SCHEDULERS", "make_scheduler"]


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


def _asha(o: AshaOptions, metric: str, mode: str, max_epochs: int) -> TrialScheduler:
    if o.grace_period_epochs > max_epochs:
        raise ValueError(
            f"`grace_period_epochs` is {o.grace_period_epochs}, but must be <= the trial budget "
            f"of {max_epochs} epochs."
        )
    return AsyncHyperBandScheduler(
        time_attr="training_iteration", metric=metric, mode=mode, max_t=max_epochs,
        grace_period=o.grace_period_epochs, reduction_factor=o.reduction_factor,
        brackets=o.brackets,
    )


def _median(o: MedianOptions, metric: str, mode: str, max_epochs: int) -> TrialScheduler:
    return MedianStoppingRule(
        time_attr="training_iteration", metric=metric, mode=mode,
        grace_period=o.grace_period_epochs, min_samples_required=o.min_samples_required,
    )


def _fifo(o: FifoOptions, metric: str, mode: str, max_epochs: int) -> TrialScheduler:
    return FIFOScheduler()


SCHEDULERS: dict[str, tuple[type, Callable[..., TrialScheduler]]] = {
    "asha": (AshaOptions, _asha),
    "median": (MedianOptions, _median),
    "fifo": (FifoOptions, _fifo),
}


def make_scheduler(
    name: str, *, metric: str, mode: str, max_epochs: int, options: dict[str, Any] | None = None
) -> TrialScheduler:
    """The scheduler ``name`` with ``options`` validated; ``ValueError`` on any mistake."""
    from spaces import closest

    if name not in SCHEDULERS:
        raise ValueError(
            f"`scheduler` is {name!r}, but must be one of {sorted(SCHEDULERS)}."
            f"{closest(name, list(SCHEDULERS))}"
        )
    options_cls, build = SCHEDULERS[name]
    return build(parse_options(options_cls, options, "scheduler"), metric, mode, max_epochs)
