"""Word2Vec vs gensim on all the text in ../shared/data: speed and embedding quality.

Corpus: the NLTK corpora (brown, abc, genesis, inaugural, movie_reviews, state_union, webtext,
treebank), the Gutenberg texts, the King James Bible and the ``text`` folder, tokenized once by
``trainables.text`` (nltk ``word_tokenize``, lower-cased) and given to both. Settings, both: skip-
gram, 100 dimensions, window 5, 5 negatives, min count 5, subsampling 1e-3, lr 0.025, 5 epochs.
gensim (a benchmark-only dependency: ``pip install gensim``) uses 2 worker threads, ours 2 Hogwild
worker threads (``workers=2``) on the CPU. Speed is corpus tokens x epochs / training seconds
for both (tokenizing and vocabulary building excluded). Quality, both with our evaluators:
WordSim-353 Spearman rho and Google analogy accuracy (3CosAdd over the 30,000 most frequent words).

    .venv/bin/pip install gensim && .venv/bin/python benchmarks/word2vec_gensim.py
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
NLTK = ["brown", "abc", "genesis", "inaugural", "movie_reviews", "state_union", "webtext",
        "treebank"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1024, 4096])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (ours; gensim is CPU-only)")
    args = parser.parse_args()
    data = Path(args.data)
    if not data.is_dir():
        sys.exit(f"{data} is missing: the benchmark reads the workplace's shared data folder.")
    os.environ["NLTK_DATA"] = str(data / "nltk_data")
    try:
        import gensim
    except ImportError:
        sys.exit("gensim is a benchmark-only dependency: .venv/bin/pip install gensim")
    import torch

    from trainables.text import CorpusSettings, load_sentences
    from trainables.word2vec import (
        Word2VecRun, Word2VecSettings, WordVectors, analogy_accuracy, wordsim_spearman,
    )

    files = [str(data / "gutenberg-nltk-2008-partial"), str(data / "bible-kjv"),
             *[str(p) for p in sorted((data / "text").iterdir())]]
    corpus = CorpusSettings(files=files, nltk=NLTK, heldout_fraction=0.0)
    start = time.perf_counter()
    sentences = load_sentences(corpus)
    tokens = sum(len(s) for s in sentences)
    print(f"# corpus: {len(sentences):,} sentences, {tokens:,} tokens, tokenized in "
          f"{time.perf_counter() - start:.0f} s; {torch.get_num_threads()} torch threads")
    wordsim = data / "word-eval" / "wordsim353.tsv"
    analogies = data / "word-eval" / "questions-words.txt"

    def quality(vectors: WordVectors) -> tuple[float, float]:
        return (wordsim_spearman(vectors, wordsim)[0],
                analogy_accuracy(vectors, analogies, 30000)[0])

    start = time.perf_counter()
    model = gensim.models.Word2Vec(sentences, vector_size=100, window=5, negative=5,
                                   min_count=5, sg=1, sample=1e-3, alpha=0.025, workers=2,
                                   epochs=args.epochs, seed=0)
    gensim_s = time.perf_counter() - start  # includes its vocabulary scan (a few seconds)
    g_vectors = WordVectors(list(model.wv.index_to_key), model.wv.vectors)
    g_ws, g_an = quality(g_vectors)

    settings = Word2VecSettings(corpus=corpus, epochs=args.epochs, workers=2)
    rate = lambda s: tokens * args.epochs / s  # noqa: E731
    rows = []
    for batch in args.batch_sizes:
        run = Word2VecRun({"dim": 100, "window": 5, "negatives": 5, "min_count": 5,
                           "subsample": 1e-3, "lr": 0.025, "batch_size": batch},
                          settings, torch.device(args.device), sentences=sentences)
        start = time.perf_counter()
        for _ in range(args.epochs):
            run.train_epoch()
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        rows.append((batch, time.perf_counter() - start, *quality(run.vectors())))
    print("\n| implementation | tokens/s | vs gensim | WordSim-353 rho | analogies (top 30k) |\n"
          "|---|---:|---:|---:|---:|")
    print(f"| gensim {gensim.__version__} skip-gram, 2 workers | {rate(gensim_s):,.0f} | 1.00 | "
          f"{g_ws:.3f} | {100 * g_an:.1f}% |")
    for batch, seconds, ws, an in rows:
        print(f"| hpnas word2vec ({args.device}), batch {batch} | {rate(seconds):,.0f} | "
              f"{gensim_s / seconds:.2f} | {ws:.3f} | {100 * an:.1f}% |")


if __name__ == "__main__":
    main()
