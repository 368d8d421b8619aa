"""Word2Vec: skip-gram with negative sampling (Mikolov et al. 2013), batched on the device.

The seed's version fed two embeddings to ``CrossEntropyLoss`` (its loss went to -183 and it
learned nothing). This is the real model: input and output embeddings; for each (centre,
context) pair, ``-log sigmoid(u_c . v_o) - sum_k log sigmoid(-u_c . v_k)`` over ``negatives``
words drawn from the unigram distribution to the power 0.75; frequent words subsampled each epoch
with word2vec's keep probability ``(sqrt(f / t) + 1) t / f``; a dynamic window (each centre draws
its window size in ``1..window``); pairs never cross a sentence boundary. ``loss: softmax`` uses
the full softmax instead, for tiny vocabularies. Pairs are generated as tensors, one window
offset at a time, never by a Python loop over pairs. Optimisation as in word2vec: plain SGD on
the summed loss of a batch with the learning rate decaying linearly to ``lr * 1e-4``; on a CPU,
``workers`` threads step through their share of the batches on the shared embeddings without
locks (Hogwild, as word2vec and gensim do).

Evaluation (the search metrics): Spearman correlation with WordSim-353's human scores, accuracy on
the Google analogy questions by 3CosAdd restricted to the ``analogy_top_n`` most frequent words
(as the word2vec tool does), and the negative-sampling loss on held-out sentences, which needs
no external data.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from spaces.options import check_range, parse_options
from trainables.loop import setup_device, train_epochs
from trainables.text import CorpusSettings, Vocabulary, load_sentences

__all__ = ["SkipGram", "Word2VecSettings", "WordVectors", "analogy_accuracy", "train_word2vec",
           "wordsim_spearman"]


class SkipGram(nn.Module):
    """Input (centre) and output (context) embeddings, initialised as word2vec does."""

    def __init__(self, vocab_size: int, dim: int) -> None:
        super().__init__()
        self.inp = nn.Embedding(vocab_size, dim, sparse=True)
        self.out = nn.Embedding(vocab_size, dim, sparse=True)
        nn.init.uniform_(self.inp.weight, -0.5 / dim, 0.5 / dim)
        nn.init.zeros_(self.out.weight)

    def ns_loss(self, centre: torch.Tensor, context: torch.Tensor, negatives: torch.Tensor
                ) -> torch.Tensor:
        """Summed negative-sampling loss of a batch of pairs (negatives: (B, k))."""
        u = self.inp(centre)
        pos = (u * self.out(context)).sum(-1)
        neg = torch.bmm(self.out(negatives), u.unsqueeze(-1)).squeeze(-1)
        return -(F.logsigmoid(pos).sum() + F.logsigmoid(-neg).sum())

    def softmax_loss(self, centre: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.inp(centre) @ self.out.weight.T, context, reduction="sum")


def make_pairs(ids: torch.Tensor, sentence: torch.Tensor, window: int,
               generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(centre, context) index tensors for a token stream with a dynamic window."""
    reach = torch.randint(1, window + 1, (len(ids),), generator=generator).to(ids.device)
    centres, contexts = [], []
    for offset in range(1, window + 1):
        same = sentence[:-offset] == sentence[offset:]
        forward = same & (reach[:-offset] >= offset)  # centre i, context i + offset
        backward = same & (reach[offset:] >= offset)  # centre i + offset, context i
        centres += [ids[:-offset][forward], ids[offset:][backward]]
        contexts += [ids[offset:][forward], ids[:-offset][backward]]
    return torch.cat(centres), torch.cat(contexts)


class WordVectors:
    """Trained input vectors with their words: similarity queries and the word2vec text format."""

    def __init__(self, words: list[str], vectors: np.ndarray) -> None:
        self.words = list(words)
        self.index = {w: i for i, w in enumerate(self.words)}
        self.vectors = np.asarray(vectors, dtype=np.float32)
        norms = np.linalg.norm(self.vectors, axis=1, keepdims=True)
        self.unit = self.vectors / np.maximum(norms, 1e-8)

    def k_most_similar(self, word: str, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` words of highest cosine similarity to ``word`` (itself excluded)."""
        if word not in self.index:
            raise KeyError(f"{word!r} is not in the vocabulary.")
        sims = self.unit @ self.unit[self.index[word]]
        sims[self.index[word]] = -np.inf
        best = np.argsort(-sims)[:k]
        return [(self.words[i], float(sims[i])) for i in best]

    def save_word2vec_format(self, path: str | Path) -> None:
        with open(path, "w", encoding="utf-8") as f:
            f.write(f"{len(self.words)} {self.vectors.shape[1]}\n")
            for w, v in zip(self.words, self.vectors):
                f.write(w + " " + " ".join(f"{x:.6f}" for x in v) + "\n")

    @classmethod
    def load_word2vec_format(cls, path: str | Path) -> WordVectors:
        with open(path, encoding="utf-8") as f:
            n, dim = (int(x) for x in f.readline().split())
            words, rows = [], []
            for line in f:
                parts = line.rstrip("\n").split(" ")
                words.append(parts[0])
                rows.append([float(x) for x in parts[1:dim + 1]])
        if len(words) != n:
            raise ValueError(f"{path}: header says {n} words, found {len(words)}.")
        return cls(words, np.array(rows, dtype=np.float32))


def wordsim_spearman(vectors: WordVectors, path: str | Path) -> tuple[float, float]:
    """(Spearman rho, share of pairs covered) on a WordSim-style TSV (word1, word2, score)."""
    from scipy.stats import spearmanr

    human, model, total = [], [], 0
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        parts = line.strip().split("\t")
        if len(parts) < 3 or line.startswith("#"):
            continue
        try:
            score = float(parts[2])
        except ValueError:
            continue  # a header
        total += 1
        a, b = parts[0].lower(), parts[1].lower()
        if a in vectors.index and b in vectors.index:
            human.append(score)
            model.append(float(vectors.unit[vectors.index[a]] @ vectors.unit[vectors.index[b]]))
    if len(human) < 2:
        return float("nan"), len(human) / max(1, total)
    return float(spearmanr(human, model).statistic), len(human) / max(1, total)


def analogy_accuracy(vectors: WordVectors, path: str | Path, top_n: int = 30000
                     ) -> tuple[float, int]:
    """(accuracy, questions asked) by 3CosAdd over the ``top_n`` most frequent words; like the
    word2vec tool, questions with a word outside them are skipped."""
    n = min(top_n, len(vectors.words))
    index = {w: i for i, w in enumerate(vectors.words[:n])}
    unit = torch.from_numpy(vectors.unit[:n])
    questions = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.startswith(":") or not line.strip():
            continue
        words = line.lower().split()
        if len(words) == 4 and all(w in index for w in words):
            questions.append([index[w] for w in words])
    if not questions:
        return float("nan"), 0
    q = torch.tensor(questions)
    correct = 0
    for chunk in q.split(1024):
        target = unit[chunk[:, 1]] - unit[chunk[:, 0]] + unit[chunk[:, 2]]
        sims = target @ unit.T
        sims.scatter_(1, chunk[:, :3], -math.inf)  # never answer with a question word
        correct += int((sims.argmax(1) == chunk[:, 3]).sum())
    return correct / len(questions), len(questions)


@dataclass(frozen=True)
class Word2VecSettings:
    """Corpus, evaluation files and fixed training settings."""

    corpus: CorpusSettings = field(default_factory=lambda: CorpusSettings(nltk=["brown"]))
    wordsim: str | None = None  # WordSim-353 TSV; its Spearman rho is reported as `wordsim`
    analogies: str | None = None  # Google analogy file; accuracy reported as `analogy_acc`
    analogy_top_n: int = 30000
    epochs: int = 5
    max_vocab: int | None = None
    loss: Literal["negative_sampling", "softmax"] = "negative_sampling"
    # Threads updating the shared embeddings without locks ("Hogwild", as word2vec and gensim
    # do); None: the trial's CPU count on a CPU when the vocabulary is large enough that
    # concurrent batches rarely touch the same rows (>= 20 x batch_size words), else 1; 1 on a
    # GPU. 1 gives bit-reproducible runs.
    workers: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        check_range("epochs", self.epochs, low=1)
        if self.workers is not None:
            check_range("workers", self.workers, low=1)
        check_range("analogy_top_n", self.analogy_top_n, low=1)
        for name in ("wordsim", "analogies"):
            value = getattr(self, name)
            if value is not None and not Path(value).expanduser().is_file():
                raise ValueError(f"`{name}` is {value!r}, which is not a file.")


# The held-out loss (the default search metric) is measured the same way for every config.
HELDOUT_WINDOW = 5
HELDOUT_NEGATIVES = 5

DEFAULT_CONFIG = {"dim": 100, "window": 5, "negatives": 5, "lr": 0.025, "subsample": 1e-3,
                  "min_count": 5, "batch_size": 1024}


class Word2VecRun:
    """Vocabulary, token streams on the device, the model, the word2vec SGD schedule."""

    def __init__(self, config: dict[str, Any], settings: Word2VecSettings,
                 device: torch.device, sentences: list[list[str]] | None = None) -> None:
        self.config = {**DEFAULT_CONFIG, **config}
        self.settings, self.device = settings, device
        sentences = sentences if sentences is not None else load_sentences(settings.corpus)
        rng = np.random.default_rng(settings.seed)
        held = rng.random(len(sentences)) < settings.corpus.heldout_fraction
        train = [s for s, h in zip(sentences, held) if not h]
        heldout = [s for s, h in zip(sentences, held) if h]
        self.vocab = Vocabulary.build(train, int(self.config["min_count"]), settings.max_vocab)
        self.ids, self.sentence = self._stream(train)
        self.held_ids, self.held_sentence = self._stream(heldout)
        counts = torch.tensor(self.vocab.counts, dtype=torch.float64)
        freq = counts / counts.sum()
        t = float(self.config["subsample"])
        self.keep = ((torch.sqrt(freq / t) + 1) * t / freq).clamp(max=1).float().to(device) if (
            t > 0) else torch.ones(len(counts), device=device)
        self.noise = (counts ** 0.75 / (counts ** 0.75).sum()).float().to(device)
        # word2vec's unigram table: drawing an index into it is much cheaper than multinomial
        table_size = max(1_000_000, 20 * len(counts))
        self.noise_table = torch.repeat_interleave(
            torch.arange(len(counts)), (self.noise.cpu().double() * table_size).round().long()
        ).to(device)
        self.sign = torch.tensor([1.0] + [-1.0] * int(self.config["negatives"]), device=device)
        self.generator = torch.Generator().manual_seed(settings.seed)
        torch.manual_seed(settings.seed)
        self.model = SkipGram(len(self.vocab), int(self.config["dim"])).to(device)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=float(self.config["lr"]))
        self.epoch = 0
        self.words_done = 0

    def _stream(self, sentences: list[list[str]]) -> tuple[torch.Tensor, torch.Tensor]:
        ids, sent = [], []
        for i, s in enumerate(sentences):
            kept = [self.vocab.index[t] for t in s if t in self.vocab.index]
            ids += kept
            sent += [i] * len(kept)
        return (torch.tensor(ids, dtype=torch.int64, device=self.device),
                torch.tensor(sent, dtype=torch.int64, device=self.device))

    def _negatives(self, n: int, generator: torch.Generator | None = None,
                   k: int | None = None) -> torch.Tensor:
        k = int(self.config["negatives"]) if k is None else k
        draws = torch.randint(len(self.noise_table), (n * k,),
                              generator=generator or self.generator)
        return self.noise_table.index_select(0, draws.to(self.device)).view(n, k)

    def loss(self, centre: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        if self.settings.loss == "softmax":
            return self.model.softmax_loss(centre, context)
        return self.model.ns_loss(centre, context, self._negatives(len(centre)))

    @torch.no_grad()
    def _sgns_step(self, centre: torch.Tensor, context: torch.Tensor, lr: float,
                   generator: torch.Generator | None = None) -> torch.Tensor:
        """One SGD step on the summed negative-sampling loss, written out by hand: the same
        update autograd and SGD would make, without building sparse gradient tensors.

        The context word and its negatives are one (B, k + 1) block of output rows, so a step
        is two row gathers, two row scatters and a few element-wise ops. With ``sign`` +1 for
        the context and -1 for a negative and ``z = sign * u . v``, the loss is ``-log
        sigmoid(z)`` and minus its gradient in the score is ``sign * sigmoid(-z)``. Rows are
        gathered with ``index_select`` and scores summed element-wise: on the CPU both are
        several times faster than advanced indexing and ``bmm`` for these shapes."""
        w_in, w_out = self.model.inp.weight, self.model.out.weight
        dim = w_in.shape[1]
        negatives = self._negatives(len(centre), generator)
        targets = torch.cat([context[:, None], negatives], 1).view(-1)
        u = w_in.index_select(0, centre)
        t = w_out.index_select(0, targets).view(len(centre), -1, dim)
        z = (t * u[:, None, :]).sum(-1) * self.sign
        g = torch.sigmoid(-z) * (self.sign * lr)  # -d loss / d score, times lr
        w_in.index_add_(0, centre, torch.bmm(g[:, None, :], t).squeeze(1))
        w_out.index_add_(0, targets, (g[..., None] * u[:, None, :]).view(-1, dim))
        # log(sigmoid) as two vectorised ops (F.logsigmoid is 5x slower at this size); the
        # clamp keeps the log finite where a score underflows
        return -torch.sigmoid(z).clamp_(min=1e-30).log_().sum()

    @property
    def workers(self) -> int:
        if self.settings.loss != "negative_sampling" or self.device.type != "cpu":
            return 1
        if self.settings.workers is not None:
            return self.settings.workers
        if len(self.vocab) < 20 * int(self.config["batch_size"]):
            return 1  # concurrent batches would update the same rows: stale, doubled steps
        return max(1, torch.get_num_threads())

    def train_epoch(self) -> float:
        """One epoch; the mean loss per pair."""
        keep = torch.rand(len(self.ids), generator=self.generator).to(self.device) < self.keep[
            self.ids]
        centre, context = make_pairs(self.ids[keep], self.sentence[keep],
                                     int(self.config["window"]), self.generator)
        order = torch.randperm(len(centre), generator=self.generator).to(self.device)
        centre, context = centre.index_select(0, order), context.index_select(0, order)
        batch = int(self.config["batch_size"])
        steps = max(1, math.ceil(len(centre) / batch))
        total_steps = self.settings.epochs * steps
        lr0 = float(self.config["lr"])

        def lr_at(step: int) -> float:  # word2vec's linear decay over all epochs
            return lr0 * max(1e-4, 1 - (self.epoch * steps + step) / total_steps)

        if self.workers > 1:
            total = self._hogwild_epoch(centre, context, batch, steps, lr_at)
        else:
            total = torch.zeros((), device=self.device)
            for step in range(steps):
                part = slice(step * batch, (step + 1) * batch)
                total += self._step(centre[part], context[part], lr_at(step))
        self.epoch += 1
        self.words_done += int(keep.sum())
        return float(total) / max(1, len(centre))

    def _step(self, centre: torch.Tensor, context: torch.Tensor, lr: float,
              generator: torch.Generator | None = None) -> torch.Tensor:
        if self.settings.loss == "negative_sampling":
            return self._sgns_step(centre, context, lr, generator)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        loss = self.loss(centre, context)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def _hogwild_epoch(self, centre: torch.Tensor, context: torch.Tensor, batch: int,
                       steps: int, lr_at: Any) -> torch.Tensor:
        """The epoch's batches split into ``workers`` contiguous runs, each stepped by its own
        thread on the shared weights without locks; torch ops release the GIL, and each op
        runs single-threaded, which for these small ops is faster than intra-op threads."""
        workers = min(self.workers, steps)
        seeds = torch.randint(2**62, (workers,), generator=self.generator).tolist()
        totals = [torch.zeros(()) for _ in range(workers)]
        errors: list[BaseException] = []

        def work(w: int) -> None:
            generator = torch.Generator().manual_seed(seeds[w])
            lo, hi = w * steps // workers, (w + 1) * steps // workers
            try:
                for j, step in enumerate(range(lo, hi)):
                    part = slice(step * batch, (step + 1) * batch)
                    # every thread is about as far through its run: global progress ~ j * workers
                    totals[w] += self._sgns_step(centre[part], context[part],
                                                 lr_at(j * workers), generator)
            except BaseException as e:  # re-raised in the calling thread
                errors.append(e)

        threads_before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            threads = [threading.Thread(target=work, args=(w,), daemon=True)
                       for w in range(workers)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        finally:
            torch.set_num_threads(threads_before)
        if errors:
            raise errors[0]
        return sum(totals, torch.zeros(()))

    @torch.no_grad()
    @torch.no_grad()
    def heldout_loss(self) -> float:
        """Mean loss per pair on held-out sentences, with the same pairs (window
        :data:`HELDOUT_WINDOW`) and the same number of noise words (:data:`HELDOUT_NEGATIVES`)
        for every config, so configs compare fairly: the trial's own ``window`` and
        ``negatives`` would change what is summed (more negatives, more terms, a larger loss
        whatever the vectors' quality)."""
        if len(self.held_ids) < 2:
            return float("nan")
        gen = torch.Generator().manual_seed(12345)
        centre, context = make_pairs(self.held_ids, self.held_sentence, HELDOUT_WINDOW, gen)
        total = 0.0
        for i in range(0, len(centre), 8192):
            c, o = centre[i:i + 8192], context[i:i + 8192]
            if self.settings.loss == "softmax":
                total += float(self.model.softmax_loss(c, o))
            else:
                total += float(self.model.ns_loss(
                    c, o, self._negatives(len(c), gen, k=HELDOUT_NEGATIVES)))
        return total / max(1, len(centre))

    def vectors(self) -> WordVectors:
        return WordVectors(self.vocab.words, self.model.inp.weight.detach().cpu().numpy())

    def state(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "generator": self.generator.get_state(),
                "epoch": self.epoch, "words_done": self.words_done,
                "vocab": dict(zip(self.vocab.words, self.vocab.counts))}

    def load(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.generator.set_state(state["generator"])
        self.epoch, self.words_done = int(state["epoch"]), int(state["words_done"])


def evaluate_vectors(vectors: WordVectors, settings: Word2VecSettings) -> dict[str, float]:
    metrics: dict[str, float] = {}
    if settings.wordsim:
        metrics["wordsim"], metrics["wordsim_coverage"] = wordsim_spearman(vectors,
                                                                           settings.wordsim)
    if settings.analogies:
        acc, asked = analogy_accuracy(vectors, settings.analogies, settings.analogy_top_n)
        metrics["analogy_acc"], metrics["analogy_questions"] = acc, float(asked)
    return metrics


def train_word2vec(config: dict[str, Any],
                   settings: dict[str, Any] | Word2VecSettings | None = None) -> None:
    """Ray Tune trainable: skip-gram with negative sampling, one report per epoch with
    ``heldout_loss``, ``train_loss``, ``words_per_s`` and, when their files are given,
    ``wordsim`` (Spearman rho) and ``analogy_acc``."""
    if not isinstance(settings, Word2VecSettings):
        settings = parse_options(Word2VecSettings, settings or {}, "train")
    run = Word2VecRun(config, settings, setup_device())

    def one_epoch() -> dict[str, Any]:
        start = time.perf_counter()
        before = run.words_done
        train_loss = run.train_epoch()
        seconds = time.perf_counter() - start
        return {"heldout_loss": run.heldout_loss(), "train_loss": train_loss,
                "epoch": run.epoch, "epoch_s": seconds,
                "words_per_s": (run.words_done - before) / seconds,
                "vocab_size": len(run.vocab), **evaluate_vectors(run.vectors(), settings)}

    train_epochs(run, settings.epochs, one_epoch)
