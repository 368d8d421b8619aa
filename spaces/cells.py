"""The NAS-Bench-201 cell space: 4 nodes, 6 edges, one of 5 ops on each edge.

Node ``j`` sums ``op(j, i)(node i)`` over every earlier node ``i``; node 0 is the cell input and
node 3 its output. A config names each edge's op (``edge_<j>_<i>``); its name is the
NAS-Bench-201 arch string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``, shared by the table lookup,
the cell network and DARTS' derived genotypes. Searchers tell configs apart by
:meth:`CellSpace.canonical`, the function the cell computes, so that two cells that build the
same network (a ``none`` edge's ops rearranged, a branch that never reaches the output) count as
one.

Mutations follow AmoebaNet (Real et al. 2019): an *op mutation* changes one edge's op; a
*hidden-state mutation* rewires an op to another input of its node. In this fully connected cell
that means swapping the ops on two incoming edges of one node (``none`` marks an absent input).

Example:
    >>> space = nb201_space()
    >>> cfg = space.from_arch("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+"
    ...                       "|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    >>> space.arch_string(space.mutate(cfg, np.random.default_rng(0)))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Hashable, Mapping

import numpy as np

from spaces.space import Categorical, Space

__all__ = ["NB201_EDGES", "NB201_OPS", "CellSpace", "edge_name", "nb201_space"]

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
ZERO_OP, IDENTITY_OP = "none", "skip_connect"  # an absent edge; an edge that copies its input
NB201_NODES = 4
# (to, from) in the arch string's order: node 1 from 0; node 2 from 0, 1; node 3 from 0, 1, 2.
NB201_EDGES = tuple((j, i) for j in range(1, NB201_NODES) for i in range(j))


def edge_name(to: int, source: int) -> str:
    return f"edge_{to}_{source}"


@dataclass(frozen=True)
class CellSpace(Space):
    """A cell space whose configs map each edge ``(to, from)`` to an op name."""

    nodes: int = NB201_NODES
    ops: tuple[str, ...] = NB201_OPS
    op_mutation_prob: float = 0.5  # else a hidden-state (input rewiring) mutation

    @property
    def edges(self) -> tuple[tuple[int, int], ...]:
        return tuple((j, i) for j in range(1, self.nodes) for i in range(j))

    def arch_string(self, config: Mapping[str, Any]) -> str:
        """The NAS-Bench-201 string of a config."""
        nodes = []
        for j in range(1, self.nodes):
            nodes.append("|" + "|".join(f"{config[edge_name(j, i)]}~{i}" for i in range(j)) + "|")
        return "+".join(nodes)

    def from_arch(self, arch: str) -> dict[str, Any]:
        """The config of a NAS-Bench-201 string; ``ValueError`` naming what is malformed."""
        nodes = arch.split("+") if isinstance(arch, str) else []
        if len(nodes) != self.nodes - 1:
            raise ValueError(f"arch {arch!r} must have {self.nodes - 1} '+'-separated nodes like "
                             "'|nor_conv_3x3~0|+|none~0|skip_connect~1|+|...~0|...~1|...~2|'.")
        config: dict[str, Any] = {}
        for j, node in enumerate(nodes, start=1):
            parts = [p for p in node.strip("|").split("|")]
            if len(parts) != j:
                raise ValueError(f"arch {arch!r}: node {j} must have {j} inputs, not {len(parts)}.")
            for i, part in enumerate(parts):
                op, _, source = part.partition("~")
                if source != str(i) or op not in self.ops:
                    raise ValueError(f"arch {arch!r}: {part!r} must be 'OP~{i}' with OP one of "
                                     f"{', '.join(self.ops)}.")
                config[edge_name(j, i)] = op
        return config

    def canonical(self, config: Mapping[str, Any]) -> Hashable:
        """The function the cell computes, written as an expression of its input ``x``: equal
        for configs that build the same network, so searchers never spend a trial on a cell
        equivalent to one already tried. ``none`` edges are dropped, ``skip_connect`` is the
        identity, a node's sum is order-free, and an op applied to a node that receives nothing
        gives nothing (up to a batch-norm constant); edges that do not reach the output drop
        out. The 15,625 NAS-Bench-201 cells compute 5,773 functions; ``arch_string`` is the
        config's own name."""
        node: list[str | None] = ["x"]
        for j in range(1, self.nodes):
            terms = sorted(node[i] if op == IDENTITY_OP else f"{op}({node[i]})"
                           for i in range(j)
                           if (op := config[edge_name(j, i)]) != ZERO_OP and node[i] is not None)
            node.append("[" + "+".join(terms) + "]" if len(terms) > 1 else
                        terms[0] if terms else None)
        return node[-1] or "zero"

    def upgrade_canonical(self, ident: Hashable) -> Hashable:
        """hpnas 0.4 named a cell by its arch string: that cell's function."""
        if isinstance(ident, str) and ident.startswith("|"):
            return self.canonical(self.from_arch(ident))
        return ident

    def mutate(self, config: Mapping[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        if rng.random() < self.op_mutation_prob:
            return super().mutate(config, rng)
        # hidden-state mutation: swap the ops of two differing inputs of one node
        def fits(edge: str, op: str) -> bool:  # overrides may narrow an edge's ops
            return self[edge].contains(op)

        candidates = [(j, a, b) for j in range(2, self.nodes) for a in range(j)
                      for b in range(a + 1, j)
                      if config[edge_name(j, a)] != config[edge_name(j, b)]
                      and fits(edge_name(j, a), config[edge_name(j, b)])
                      and fits(edge_name(j, b), config[edge_name(j, a)])]
        if not candidates:
            return super().mutate(config, rng)
        j, a, b = candidates[int(rng.integers(len(candidates)))]
        new = dict(config)
        new[edge_name(j, a)], new[edge_name(j, b)] = config[edge_name(j, b)], config[edge_name(j, a)]
        return new


def nb201_space() -> CellSpace:
    """NAS-Bench-201's 15,625-cell space."""
    params = tuple(Categorical(edge_name(j, i), NB201_OPS) for j, i in NB201_EDGES)
    return CellSpace("nb201", params)
