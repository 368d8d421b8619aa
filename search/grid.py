"""Exhaustive and fixed-list searchers: every point of the space's grid, or given configs.

``grid`` walks the product of every active parameter's grid (categorical choices, integer
steps, ``grid_points`` floats), following conditions, so a variable-depth space yields each
depth's own sub-grid. ``points`` proposes a given list of configs (NAS-Bench-201 cells may be
given as arch strings), for example the genotypes DARTS derived. Both then say ``FINISHED``.
"""

from __future__ import annotations

from typing import Any, Hashable, Iterator, Sequence

import numpy as np

from search.adapter import Status
from spaces import CellSpace, Space

__all__ = ["GridSearch", "PointsSearch", "grid_configs"]

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


class _ListSearch:
    """Proposes ``self.configs`` in order, then is exhausted."""

    configs: list[dict[str, Any]]
    index: int = 0

    @property
    def exhausted(self) -> bool:
        return self.index >= len(self.configs) and not getattr(self, "requeued", None)

    def ask(self) -> tuple[dict[str, Any], Hashable] | None:
        requeued = getattr(self, "requeued", None)
        if requeued:  # proposals that never ran come first, in their order
            handle = requeued.pop(0)
            return dict(self.configs[handle - 1]), handle
        if self.exhausted:
            return None
        self.index += 1
        return dict(self.configs[self.index - 1]), self.index

    def abandon(self, handle: Hashable) -> None:
        """A proposal that never ran goes back in the queue."""
        requeued = self.__dict__.setdefault("requeued", [])
        requeued.append(handle)
        requeued.sort()

    def report(self, handle: Hashable, step: int, score: float) -> None:
        """Fixed lists learn nothing."""

    def tell(self, handle: Hashable, score: float | None, status: Status) -> None:
        """Fixed lists learn nothing."""


class GridSearch(_ListSearch):
    """Every grid point of the space, optionally shuffled (seeded)."""

    def __init__(self, space: Space, *, shuffle: bool = False, seed: int | None = None) -> None:
        configs = []
        for config in grid_configs(space):
            configs.append(config)
            if len(configs) > MAX_GRID:
                raise ValueError(f"space {space.name!r} has more than {MAX_GRID} grid points; "
                                 "narrow it with overrides, or use random or optuna.")
        if shuffle:
            np.random.default_rng(seed).shuffle(configs)  # type: ignore[arg-type]
        self.configs = configs
        self.index = 0


class PointsSearch(_ListSearch):
    """The given configs, validated up front (arch strings allowed on cell spaces)."""

    def __init__(self, space: Space, *, points: Sequence[Any], seed: int | None = None) -> None:
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
        self.configs = configs
        self.index = 0
