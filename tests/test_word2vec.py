"""Word2Vec: a real skip-gram with negative sampling, its evaluators, tokenizer and export."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from trainables import text
from trainables.text import CorpusSettings, Vocabulary
from trainables.word2vec import (
    Word2VecRun, Word2VecSettings, WordVectors, analogy_accuracy, make_pairs, wordsim_spearman,
)

CLUSTERS = {"animal": ["cat", "dog", "horse", "cow", "sheep"],
            "color": ["red", "green", "blue", "yellow", "purple"],
            "number": ["one", "two", "three", "four", "five"]}


def planted_sentences(n: int = 3000, seed: int = 0) -> list[list[str]]:
    """Sentences drawn within one cluster each, plus shared filler words."""
    rng = np.random.default_rng(seed)
    names = list(CLUSTERS)
    sentences = []
    for _ in range(n):
        words = CLUSTERS[names[rng.integers(3)]]
        sentences.append([str(w) for w in rng.choice(words, size=6)] + ["the", "and"])
    return sentences


def _run(tmp_path, workers=1, **config) -> Word2VecRun:
    settings = Word2VecSettings(corpus=CorpusSettings(files=[str(tmp_path)],
                                                      heldout_fraction=0.05), epochs=3,
                                workers=workers)
    return Word2VecRun({"dim": 16, "window": 3, "min_count": 1, "subsample": 0,
                        "batch_size": 256, **config}, settings, torch.device("cpu"),
                       sentences=planted_sentences())


def test_pairs_respect_window_and_sentences():
    ids = torch.arange(6)
    sentence = torch.tensor([0, 0, 0, 1, 1, 1])
    centre, context = make_pairs(ids, sentence, 2, torch.Generator().manual_seed(0))
    for c, o in zip(centre.tolist(), context.tolist()):
        assert sentence[c] == sentence[o] and 1 <= abs(c - o) <= 2
    full_c, _ = make_pairs(ids, torch.zeros(6, dtype=torch.int64), 1,
                           torch.Generator().manual_seed(0))
    assert len(full_c) == 10  # window 1: both directions of 5 neighbours


# Hogwild threads need batches that rarely share a row: with this 17-word vocabulary that means
# small batches (two concurrent batches of 256 pairs update every row at once, doubling the step).
@pytest.mark.parametrize("workers, batch_size", [(1, 256), (2, 32)])
def test_loss_decreases_stays_positive_and_recovers_clusters(tmp_path, workers, batch_size):
    run = _run(tmp_path, workers=workers, batch_size=batch_size)
    assert run.workers == workers
    before = run.heldout_loss()
    losses = [run.train_epoch() for _ in range(3)]
    after = run.heldout_loss()
    assert all(x > 0 for x in losses) and after > 0
    assert losses[-1] < losses[0] and after < before
    vectors = run.vectors()
    for name, words in CLUSTERS.items():
        for w in words:
            neighbours = [n for n, _ in vectors.k_most_similar(w, 4)]
            assert set(neighbours) <= set(words), (w, neighbours)


def test_one_worker_is_reproducible_and_workers_must_be_positive(tmp_path):
    a, b = _run(tmp_path), _run(tmp_path)
    a.train_epoch()
    b.train_epoch()
    assert torch.equal(a.model.inp.weight, b.model.inp.weight)
    with pytest.raises(ValueError, match="workers"):
        Word2VecSettings(workers=0)


def test_full_softmax_mode_learns_too(tmp_path):
    run = _run(tmp_path)
    run.settings = Word2VecSettings(corpus=run.settings.corpus, epochs=3, loss="softmax")
    before = run.heldout_loss()
    run.train_epoch()
    assert 0 < run.heldout_loss() < before


def test_evaluators_on_hand_made_files(tmp_path):
    vectors = WordVectors(["king", "queen", "man", "woman", "apple"], np.array(
        [[1, 1, 0], [1, -1, 0], [0, 1, 0.1], [0, -1, 0.1], [0, 0, 1]], dtype=np.float32))
    sim = tmp_path / "ws.tsv"
    sim.write_text("Word 1\tWord 2\tHuman (mean)\nking\tqueen\t8\nman\twoman\t7\n"
                   "king\tapple\t1\nqueen\tunknownword\t5\n")
    rho, coverage = wordsim_spearman(vectors, sim)
    assert coverage == 0.75 and -1 <= rho <= 1
    questions = tmp_path / "q.txt"
    questions.write_text(": family\nman woman king queen\nwoman man queen king\n"
                         "man woman king apple\nman woman king zebra\n")
    acc, asked = analogy_accuracy(vectors, questions, top_n=5)
    assert asked == 3 and acc == pytest.approx(2 / 3)
    acc_top2, asked_top2 = analogy_accuracy(vectors, questions, top_n=2)
    assert asked_top2 == 0 and np.isnan(acc_top2)


def test_word2vec_format_round_trip(tmp_path):
    vectors = WordVectors(["a", "b"], np.array([[0.5, -1.0], [2.0, 0.25]], dtype=np.float32))
    path = tmp_path / "v.txt"
    vectors.save_word2vec_format(path)
    assert path.read_text().splitlines()[0] == "2 2"
    back = WordVectors.load_word2vec_format(path)
    assert back.words == ["a", "b"] and np.allclose(back.vectors, vectors.vectors)


def test_vocabulary_min_count_and_save_load(tmp_path):
    vocab = Vocabulary.build([["a", "b", "a"], ["a", "c", "b"]], min_count=2)
    assert vocab.words == ["a", "b"] and vocab.counts == [3, 2]
    vocab.save(tmp_path / "v.json")
    assert Vocabulary.load(tmp_path / "v.json").words == ["a", "b"]
    with pytest.raises(ValueError, match="lower `min_count`"):
        Vocabulary.build([["a"]], min_count=2)


def test_tokenizer_falls_back_without_punkt(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("NLTK_DATA", str(tmp_path))
    import nltk

    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])
    text.tokenizer.cache_clear()
    try:
        with caplog.at_level(logging.WARNING):
            tokenize = text.tokenizer()
        assert "wordpunct_tokenize" in caplog.text
        assert tokenize("Don't stop.") == ["Don", "'", "t", "stop", "."]
    finally:
        text.tokenizer.cache_clear()


def test_missing_corpus_and_files_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="names no text"):
        CorpusSettings()
    with pytest.raises(ValueError, match="does not exist"):
        CorpusSettings(files=[str(tmp_path / "nope.txt")])


@pytest.mark.ray
@pytest.mark.slow
def test_hpnas_run_word2vec(tmp_path, local_ray):
    from cluster.cli import main

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(" ".join(s) for s in planted_sentences(1500)))
    path = tmp_path / "w2v.yaml"
    path.write_text(yaml.safe_dump({
        "name": "w2v", "trainable": "word2vec", "searcher": "random", "scheduler": "asha",
        "samples": 2, "max_concurrent_trials": 2,
        "space": {"name": "word2vec", "overrides": {"min_count": 2, "dim": 50}},
        "train": {"corpus": {"files": [str(corpus)]}, "epochs": 2},
        "storage": str(tmp_path / "results")}))
    assert main(["run", str(path), "--progress-interval", "1000"]) == 0
    iterations = pd.read_parquet(tmp_path / "results" / "w2v" / "iterations.parquet")
    assert {"heldout_loss", "train_loss", "words_per_s"} <= set(iterations.columns)
    assert (iterations["heldout_loss"] > 0).all()


def test_hand_written_step_equals_autograd_and_sgd(tmp_path):
    import copy

    run = _run(tmp_path, dim=8)
    torch.nn.init.normal_(run.model.out.weight, 0, 0.1)
    reference = copy.deepcopy(run.model)
    centre, context = torch.tensor([0, 1, 2, 1]), torch.tensor([3, 4, 0, 4])
    state = run.generator.get_state()
    negatives = run._negatives(4)
    run.generator.set_state(state)  # the step draws the same negatives
    loss = run._sgns_step(centre, context, 0.1)
    expected = reference.ns_loss(centre, context, negatives)
    expected.backward()
    torch.optim.SGD(reference.parameters(), lr=0.1).step()
    assert float(loss) == pytest.approx(float(expected))
    assert torch.allclose(run.model.inp.weight, reference.inp.weight, atol=1e-6)
    assert torch.allclose(run.model.out.weight, reference.out.weight, atol=1e-6)


def test_heldout_loss_compares_configs_fairly(tmp_path):
    """The default search metric does not depend on the trial's own `negatives` or `window`:
    the same vectors score the same (the loss used to sum the trial's own noise terms, so
    negatives=2 scored 2.1 and negatives=10 scored 3.5 with everything else fixed)."""
    few = _run(tmp_path, negatives=2, window=2)
    many = _run(tmp_path, negatives=10, window=8)
    many.model.load_state_dict(few.model.state_dict())
    assert few.heldout_loss() == pytest.approx(many.heldout_loss(), rel=1e-6)
    few.train_epoch()
    assert few.heldout_loss() != pytest.approx(many.heldout_loss(), rel=1e-3)
