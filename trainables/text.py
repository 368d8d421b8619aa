"""Text corpora for Word2Vec: files or NLTK corpora, nltk tokenization, a vocabulary.

Tokenization uses nltk's ``word_tokenize`` when its ``punkt_tab`` data is installed (set
``NLTK_DATA``); otherwise the data-free ``wordpunct_tokenize``, said once in the log. NLTK
corpora are read by name through ``nltk.corpus`` (their own tokenization), also from
``NLTK_DATA``; nothing is downloaded.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from spaces.options import check_range
from spaces.space import closest

__all__ = ["CorpusSettings", "Vocabulary", "check_corpus", "load_sentences", "nltk_corpora",
           "tokenizer"]

logger = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def tokenizer() -> Callable[[str], list[str]]:
    """nltk's ``word_tokenize`` if ``punkt_tab`` is available, else ``wordpunct_tokenize``."""
    import nltk

    try:
        nltk.data.find("tokenizers/punkt_tab/english/")
        return nltk.word_tokenize
    except LookupError:
        logger.warning("nltk's punkt_tab data is not installed (NLTK_DATA=%s): tokenizing with "
                       "wordpunct_tokenize, which needs no data.", os.environ.get("NLTK_DATA"))
        return nltk.tokenize.wordpunct_tokenize


@dataclass(frozen=True)
class CorpusSettings:
    """Where the text comes from."""

    files: list = field(default_factory=list)  # text files or folders (every *.txt below)
    nltk: list = field(default_factory=list)  # NLTK corpus names, e.g. brown, gutenberg
    lowercase: bool = True
    heldout_fraction: float = 0.02  # sentences kept out of training for the held-out loss

    def __post_init__(self) -> None:
        if not self.files and not self.nltk:
            raise ValueError("`corpus` names no text: give `files` (paths) or `nltk` (corpus "
                             "names such as brown).")
        for f in self.files:
            if not isinstance(f, str) or not Path(f).expanduser().exists():
                raise ValueError(f"`corpus.files` names {f!r}, which does not exist.")
        known = nltk_corpora()
        for name in self.nltk:
            if name not in known:
                raise ValueError(f"`corpus.nltk` names {name!r}, which is not an NLTK corpus."
                                 f"{closest(str(name), known)}")
        check_range("heldout_fraction", self.heldout_fraction, low=0, high=0.5)


def nltk_corpora() -> list[str]:
    """The corpus names NLTK knows (whether or not their data is installed)."""
    import importlib

    corpus = importlib.import_module("nltk.corpus")  # the module itself, not nltk's lazy proxy
    return [n for n, v in vars(corpus).items() if "LazyCorpusLoader" in type(v).__name__]


def check_corpus(settings: CorpusSettings) -> None:
    """``ValueError`` naming an NLTK corpus whose data is not installed (before any trial)."""
    import nltk.data

    for name in settings.nltk:
        try:
            nltk.data.find(f"corpora/{name}")
        except LookupError:
            raise ValueError(f"NLTK corpus {name!r} is not installed under NLTK_DATA="
                             f"{os.environ.get('NLTK_DATA')!r}; point NLTK_DATA at a folder "
                             f"holding corpora/{name}.zip.") from None


def _file_paths(entries: Iterable[str]) -> list[Path]:
    paths: list[Path] = []
    for entry in entries:
        p = Path(entry).expanduser()
        paths += sorted(p.rglob("*.txt")) if p.is_dir() else [p]
    return paths


def _nltk_sentences(name: str) -> Iterable[list[str]]:
    import nltk.corpus

    try:
        reader = getattr(nltk.corpus, name)
        if hasattr(reader, "sents"):
            return reader.sents()
        return [reader.words()]
    except (LookupError, AttributeError) as e:
        raise ValueError(f"NLTK corpus {name!r} is not available under NLTK_DATA="
                         f"{os.environ.get('NLTK_DATA')!r} ({type(e).__name__}); point "
                         "NLTK_DATA at a folder holding corpora/" + name + ".zip.") from None


def load_sentences(settings: CorpusSettings) -> list[list[str]]:
    """Every sentence (a list of tokens) of the corpus, lower-cased if asked."""
    tokenize = tokenizer()
    sentences: list[list[str]] = []
    for path in _file_paths(settings.files):
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                tokens = tokenize(line)
                if tokens:
                    sentences.append(tokens)
    for name in settings.nltk:
        sentences += [list(s) for s in _nltk_sentences(name)]
    if settings.lowercase:
        sentences = [[t.lower() for t in s] for s in sentences]
    return sentences


class Vocabulary:
    """Words seen at least ``min_count`` times, most frequent first, with their counts."""

    def __init__(self, counts: dict[str, int]) -> None:
        self.words = sorted(counts, key=lambda w: (-counts[w], w))
        self.counts = [counts[w] for w in self.words]
        self.index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def build(cls, sentences: Iterable[list[str]], min_count: int = 5,
              max_size: int | None = None) -> Vocabulary:
        counter = Counter(t for s in sentences for t in s)
        kept = {w: c for w, c in counter.items() if c >= min_count}
        if max_size is not None and len(kept) > max_size:
            kept = dict(sorted(kept.items(), key=lambda kv: (-kv[1], kv[0]))[:max_size])
        if not kept:
            raise ValueError(f"no word occurs {min_count} or more times; lower `min_count`.")
        return cls(kept)

    def __len__(self) -> int:
        return len(self.words)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(dict(zip(self.words, self.counts))))

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        return cls(json.loads(Path(path).read_text()))
