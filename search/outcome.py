"""How a trial ended, in words every room shares: complete, pruned or failed.

Ray-free (strategy cores, the results writer and the progress line all classify outcomes the same
way, and ``import search.evolution`` must not start importing Ray).
"""

from __future__ import annotations

import enum
import math
from typing import Any

__all__ = ["ENDED", "STOPPED", "TRAINING_ITERATION", "Status", "classify", "finite_metric",
           "improves", "never_reported"]

TRAINING_ITERATION = "training_iteration"
ENDED = ("TERMINATED", "ERROR")  # Tune's statuses of a trial that will not run again
# A trial the experiment's end (time budget, interrupt) cut before its first usable result: not
# failed, and never told to a searcher; the results and the progress line call it "stopped".
STOPPED = "stopped"


class Status(enum.Enum):
    """How a trial ended, as a strategy core sees it."""

    COMPLETE = "complete"
    PRUNED = "pruned"
    FAILED = "failed"


def finite_metric(result: dict[str, Any] | None, metric: str) -> float | None:
    """``result[metric]`` as a float when present and finite, else ``None``."""
    if not result:
        return None
    value = result.get(metric)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)  # numpy scalars, 0-d tensors
        except (TypeError, ValueError):
            return None
    value = float(value)
    return value if math.isfinite(value) else None


def never_reported(result: dict[str, Any] | None, metric: str) -> bool:
    """Whether a trial has not reported ``metric`` yet (cut by the experiment's end, it is
    :data:`STOPPED`; one that reported a NaN or infinite value is failed: it diverged)."""
    return metric not in (result or {})


def improves(value: float, best: Any, mode: str) -> bool:
    """Whether ``value`` beats ``best`` in ``mode`` (``best`` None or NaN: nothing yet)."""
    if best is None or (isinstance(best, float) and math.isnan(best)):
        return True
    return value > best if mode == "max" else value < best


def classify(
    result: dict[str, Any] | None, *, error: bool, metric: str, max_epochs: int | None
) -> Status:
    """The outcome of a finished trial: failed, pruned (stopped before its budget) or complete."""
    if error or finite_metric(result, metric) is None:
        return Status.FAILED
    iterations = (result or {}).get(TRAINING_ITERATION)
    if max_epochs is not None and isinstance(iterations, int) and iterations < max_epochs:
        return Status.PRUNED
    return Status.COMPLETE
