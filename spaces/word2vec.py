"""Word2Vec's search space: the skip-gram settings the word2vec tool exposes."""

from __future__ import annotations

from spaces.space import Categorical, Float, Space

__all__ = ["word2vec_space"]


def word2vec_space() -> Space:
    return Space("word2vec", (
        Categorical("dim", (50, 100, 200)),
        Categorical("window", (2, 5, 8)),
        Categorical("negatives", (2, 5, 10)),
        Float("lr", 0.005, 0.1, log=True),
        Float("subsample", 1e-5, 1e-2, log=True),  # word2vec's -sample t
        Categorical("min_count", (2, 5, 10)),
        Categorical("batch_size", (256, 1024, 4096)),
    ))
