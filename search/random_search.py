"""Random search: independent uniform samples from the space (the baseline every method must beat).

After a warm start, a sample that is one of the other experiment's configs is drawn again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Hashable

import numpy as np

from search.outcome import Status
from search.strategy import Strategy
from spaces import Space

if TYPE_CHECKING:
    from search.fidelity import Key

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

    max_redraws = 1000  # draws that hit warm configs before the space counts as used up
    warm_configs: frozenset[Hashable] = frozenset()  # canonical forms; a class default
    used_up = False

    def __init__(self, space: Space, options: RandomOptions = RandomOptions(), *,
                 seed: int | None = None) -> None:
        self.space = space
        self.rng = np.random.default_rng(seed)
        self.count = 0

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "warm_configs" in state:  # forms saved by an earlier hpnas become this version's
            up = state["space"].upgrade_canonical
            state["warm_configs"] = frozenset(up(i) for i in state["warm_configs"])
        self.__dict__.update(state)

    @property
    def exhausted(self) -> bool:
        return self.used_up

    def warm(self, trials: Sequence[tuple[dict[str, Any], Key]]) -> None:
        """Never propose the configs of ``trials`` (random search learns nothing else)."""
        self.warm_configs = self.warm_configs | {self.space.canonical(c) for c, _ in trials}

    def ask(self) -> tuple[dict[str, Any], Hashable] | None:
        config = self.space.sample(self.rng)
        if self.warm_configs:
            for _ in range(self.max_redraws):
                if self.space.canonical(config) not in self.warm_configs:
                    break
                config = self.space.sample(self.rng)
            else:  # (nearly) every config of the space was run already
                self.used_up = True
                return None
        self.count += 1
        return config, self.count

    def tell(self, handle: Hashable, score: float | None, status: Status) -> None:
        """Random search learns nothing."""
