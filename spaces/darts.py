"""The settings a DARTS driver runs in parallel: bilevel order, collapse remedy, seed."""

from __future__ import annotations

from spaces.space import Categorical, Integer, Space

__all__ = ["darts_space"]


def darts_space() -> Space:
    """One DARTS search per config: first/second order, remedy, seed (grid-searched)."""
    return Space("darts", (
        Categorical("order", ("first", "second")),
        Categorical("remedy", ("none", "early_stop", "aux_skip", "beta_reg")),
        Integer("seed", 0, 9),
    ))
