"""Trial schedulers: ASHA, the median stopping rule, and FIFO (run every trial out).

Each is an option record (checked once, when built) and a builder of Ray's own scheduler (in
:mod:`search.live_queue`'s subclasses, which choose the next trial without scanning them all);
:data:`search.registry.SCHEDULERS` registers them as it registers the searchers. Ray is imported
by the builders only, so the records can be read without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from spaces.options import check_range

__all__ = ["AshaOptions", "FifoOptions", "MedianOptions", "build_asha", "build_fifo",
           "build_median"]


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


def build_asha(o: AshaOptions, *, metric: str, mode: str, max_epochs: int | None) -> Any:
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


def build_median(o: MedianOptions, *, metric: str, mode: str, max_epochs: int | None) -> Any:
    from search.live_queue import LiveMedian

    return LiveMedian(
        time_attr="training_iteration", metric=metric, mode=mode,
        grace_period=o.grace_period_epochs, min_samples_required=o.min_samples_required,
    )


def build_fifo(o: FifoOptions, *, metric: str, mode: str, max_epochs: int | None) -> Any:
    from search.live_queue import LiveFifo

    return LiveFifo()
