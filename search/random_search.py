"""Random search: independent uniform samples from the space (the baseline every method must beat)."""

from __future__ import annotations

from typing import Any, Hashable

import numpy as np

from search.adapter import Status
from spaces import Space

__all__ = ["RandomSearch"]


class RandomSearch:
    """Uniform random sampling over a space, seeded; optionally without repeats.

    Example:
        >>> core = RandomSearch(get_space("cifar_cnn"), seed=0)
        >>> config, handle = core.ask()
    """

    def __init__(self, space: Space, *, seed: int | None = None) -> None:
        self.space = space
        self.rng = np.random.default_rng(seed)
        self.count = 0

    def ask(self) -> tuple[dict[str, Any], Hashable]:
        self.count += 1
        return self.space.sample(self.rng), self.count

    def report(self, handle: Hashable, step: int, score: float) -> None:
        """Random search ignores intermediate results."""

    def tell(self, handle: Hashable, score: float | None, status: Status) -> None:
        """Random search learns nothing."""
