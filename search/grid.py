"""Exhaustive and fixed-list searchers: every point of the space's grid, or given configs.

``grid`` walks the product of every active parameter's grid (categorical choices, integer
steps, ``grid_points`` floats), following conditions, so a variable-depth space yields each
depth's own sub-grid. ``points`` proposes a given list of configs (NAS-Bench-201 cells may be
given as arch strings), for example the genotypes DARTS derived. Both then say ``FINISHED``.
After a warm start, the configs another experiment ran are left out of the list.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Hashable, Iterator

import numpy as np

from search.outcome import Status
from search.strategy import Strategy
from spaces import CellSpace, Space

if TYPE_CHECKING:
    from search.fidelity import Key

__all__ = ["GridOptions", "GridSearch", "PointsOptions", "PointsSearch", "grid_configs"]

MAX_GRID = 100_000


def grid_configs(space: Space) -> Iterator[dict[str, Any]]:
    """Every config on the space's grid, in space order (conditions respected)."""
    params = space.params

    def walk(i: int, partial: dict[str, Any]) -> Iterator[dict[str, Any]]:
        if i == len(params):
            yield dict(partial)
            return
        p = params[i]
        if not space.is_active(p, partial):
            yield from walk(i + 1, partial)
            return
        for value in p.grid():
            partial[p.name] = value
            yield from walk(i + 1, partial)
            del partial[p.name]

    return walk(0, {})


@dataclass(frozen=True)
class GridOptions:
    """Every grid point of the space (floats on their `grid_points` grid)."""

    shuffle: bool = False


@dataclass(frozen=True)
class PointsOptions:
    """A fixed list of configs (arch strings allowed on the nb201 space)."""

    points: list = dataclasses.field(default_factory=list)


class _ListSearch(Strategy):
    """Proposes ``self.configs`` of ``space`` in order, then is exhausted."""

    def __init__(self, configs: list[dict[str, Any]], space: Space) -> None:
        self.space = space
        self.configs = configs
        self.index = 0
        self.requeued: list[int] = []

    @property
    def exhausted(self) -> bool:
        return self.index >= len(self.configs) and not self.requeued

    def ask(self) -> tuple[dict[str, Any], Hashable] | None:
        if self.requeued:  # proposals that never ran come first, in their order
            handle = self.requeued.pop(0)
            return dict(self.configs[handle - 1]), handle
        if self.exhausted:
            return None
        self.index += 1
        return dict(self.configs[self.index - 1]), self.index

    def warm(self, trials: Sequence[tuple[dict[str, Any], Key]]) -> None:
        """Leave the configs of ``trials`` out of those not yet proposed."""
        done = {self.space.canonical(config) for config, _ in trials}
        self.configs[self.index:] = [c for c in self.configs[self.index:]
                                     if self.space.canonical(c) not in done]

    def abandon(self, handle: Hashable) -> None:
        """A proposal that never ran goes back in the queue."""
        self.requeued.append(handle)  # type: ignore[arg-type]
        self.requeued.sort()

    def tell(self, handle: Hashable, score: float | None, status: Status) -> None:
        """Fixed lists learn nothing."""


class GridSearch(_ListSearch):
    """Every grid point of the space, optionally shuffled (seeded)."""

    def __init__(self, space: Space, options: GridOptions = GridOptions(), *,
                 seed: int | None = None) -> None:
        configs = []
        for config in grid_configs(space):
            configs.append(config)
            if len(configs) > MAX_GRID:
                raise ValueError(f"space {space.name!r} has more than {MAX_GRID} grid points; "
                                 "narrow it with overrides, or use random or optuna.")
        if options.shuffle:
            np.random.default_rng(seed).shuffle(configs)  # type: ignore[arg-type]
        super().__init__(configs, space)


class PointsSearch(_ListSearch):
    """The given configs, validated up front (arch strings allowed on cell spaces)."""

    def __init__(self, space: Space, options: PointsOptions = PointsOptions(), *,
                 seed: int | None = None) -> None:
        points = options.points
        if not points:
            raise ValueError("`points` is empty, but must list at least one config.")
        configs = []
        for i, point in enumerate(points):
            if isinstance(point, str) and isinstance(space, CellSpace):
                point = space.from_arch(point)
            if not isinstance(point, dict):
                raise ValueError(f"`points[{i}]` is {point!r}, but must be a config mapping"
                                 f"{' or an arch string' if isinstance(space, CellSpace) else ''}.")
            try:
                space.validate(point)
            except ValueError as e:
                raise ValueError(f"`points[{i}]`: {e}") from None
            configs.append(dict(point))
        super().__init__(configs, space)
