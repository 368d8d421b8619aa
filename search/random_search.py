"""Random search: independent uniform samples from the space (the baseline every method must beat)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Hashable

import numpy as np

from search.outcome import Status
from search.strategy import Strategy
from spaces import Space

__all__ = ["RandomOptions", "RandomSearch"]


@dataclass(frozen=True)
class RandomOptions:
    """Uniform random search (no options)."""


class RandomSearch(Strategy):
    """Uniform random sampling over a space, seeded.

    Example:
        >>> core = RandomSearch(get_space("cifar_cnn"), seed=0)
        >>> config, handle = core.ask()
    """

    def __init__(self, space: Space, options: RandomOptions = RandomOptions(), *,
                 seed: int | None = None) -> None:
        self.space = space
        self.rng = np.random.default_rng(seed)
        self.count = 0

    def ask(self) -> tuple[dict[str, Any], Hashable]:
        self.count += 1
        return self.space.sample(self.rng), self.count

    def tell(self, handle: Hashable, score: float | None, status: Status) -> None:
        """Random search learns nothing."""
