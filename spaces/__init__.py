"""Search spaces: parameters, conditions (variable depth) and encodings. No Ray, no torch."""

from __future__ import annotations

from typing import Callable

from spaces.cells import CellSpace, nb201_space
from spaces.cnn import cifar_cnn_res_space, cifar_cnn_space
from spaces.darts import darts_space
from spaces.gan import gan_space
from spaces.word2vec import word2vec_space
from spaces.space import Categorical, Condition, Float, Integer, Param, Space, closest

__all__ = [
    "SPACES",
    "Categorical",
    "CellSpace",
    "Condition",
    "Float",
    "Integer",
    "Param",
    "Space",
    "closest",
    "get_space",
]

_FACTORIES: dict[str, Callable[[], Space]] = {
    "cifar_cnn": cifar_cnn_space,
    "cifar_cnn_res": cifar_cnn_res_space,
    "nb201": nb201_space,
    "darts": darts_space,
    "gan": gan_space,
    "word2vec": word2vec_space,
}

SPACES: dict[str, Space] = {name: make() for name, make in _FACTORIES.items()}


def get_space(name: str) -> Space:
    """The registered space called ``name``; ``ValueError`` naming the close ones otherwise."""
    if name not in SPACES:
        raise ValueError(
            f"space is {name!r}, but must be one of {sorted(SPACES)}.{closest(name, list(SPACES))}"
        )
    return SPACES[name]
