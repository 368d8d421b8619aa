"""The NAS-with-RL controller, Zoph & Le 2017 ("Neural Architecture Search with Reinforcement
Learning"): an LSTM emits one token per decision, trained with REINFORCE.

Each step of the LSTM reads the embedding of the previous decision's token and emits a softmax
over the current decision's choices (each parameter has its own embedding table and output head,
so one controller serves any space, variable-depth ones included: the sequence follows the
space's conditions and ends when no decision is left). Logits are squashed as in Zoph & Le's code,
``c * tanh(logits / T)``.

Training is asynchronous: each finished trial is one REINFORCE step on its token sequence,
replayed through the current controller, with advantage ``(R - b) / s``, where ``b`` is an
exponential moving average of rewards (the baseline) and ``s`` a moving standard deviation (so
the learning rate does not depend on the metric's scale), plus an entropy bonus
(``entropy_weight``, the exploration setting) that keeps the policy from collapsing early. Failed
trials are not learned from.

No budget goes to repeats: a sampled architecture that was already evaluated (or one the space
says builds the same network, :meth:`spaces.Space.canonical`) is answered from
history (one REINFORCE step with its known reward, as if it had been run again; at most
``max_history_updates`` per proposal, so a converged controller stays cheap) and the controller
samples again; one still training is resampled. After ``max_repeat_tries`` repeats in a row the
controller has converged on what it knows, and the proposal is an unseen neighbour of its last
sample (one decision changed), else a uniformly random unseen architecture.

The reward ``R`` is the score while every trial runs its full budget (as published). Once a
scheduler stops a trial early, rewards become ranks (:mod:`search.fidelity`): a trial's reward
is the quantile of its ``(fidelity, score)`` among the last ``rank_window`` finished trials, so
an early-stopped trial counts as worse than the trials that survived its rung, and as its
rung-score ranks it among those stopped there; the baseline restarts on that scale.

A warm start (:meth:`ReinforceController.warm`) treats another experiment's trials as finished
samples: they join the history (so they are answered from it, never proposed again), the
baseline and scale start at their rewards' mean and variance, and the controller takes one
REINFORCE step on each, oldest first.

Example:
    >>> core = ReinforceController(get_space("nb201"), seed=0)
    >>> config, handle = core.ask()
    >>> core.tell(handle, 71.3, Status.COMPLETE)
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from search.fidelity import FidelityTracker, Key, RankReward, SequenceStrategy, rekeyed
from search.outcome import Status
from spaces import Param, Space
from spaces.options import check_range

__all__ = ["Controller", "ReinforceController", "RlOptions"]


@dataclass(frozen=True)
class RlOptions:
    """REINFORCE LSTM controller (Zoph & Le 2017)."""

    hidden: int = 64  # LSTM width
    lr: float = 0.03  # Adam learning rate of the controller
    baseline_decay: float = 0.8  # EMA decay of the reward baseline and scale
    entropy_weight: float = 1e-3  # entropy bonus
    tanh_constant: float = 2.5  # logits squashed to c * tanh(logits / temperature)
    temperature: float = 5.0
    rank_window: int = 200  # finished trials a rank reward is taken over (early stopping)

    def __post_init__(self) -> None:
        check_range("hidden", self.hidden, low=1)
        check_range("lr", self.lr, low=0, low_open=True)
        check_range("baseline_decay", self.baseline_decay, low=0, high=1)
        check_range("entropy_weight", self.entropy_weight, low=0)
        check_range("tanh_constant", self.tanh_constant, low=0, low_open=True)
        check_range("temperature", self.temperature, low=0, low_open=True)
        check_range("rank_window", self.rank_window, low=1)


class Controller(nn.Module):
    """An LSTM policy over a space's decisions (one embedding and one head per parameter)."""

    def __init__(self, space: Space, *, hidden: int = 64) -> None:
        super().__init__()
        self.hidden = hidden
        sizes = {p.name: len(p.grid()) for p in space.params}
        self.start = nn.Parameter(torch.zeros(1, hidden))
        self.embed = nn.ModuleDict({n: nn.Embedding(k, hidden) for n, k in sizes.items()})
        self.heads = nn.ModuleDict({n: nn.Linear(hidden, k) for n, k in sizes.items()})
        self.cell = nn.LSTMCell(hidden, hidden)

    def initial(self) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        zeros = torch.zeros(1, self.hidden)
        return self.start, (zeros, zeros)

    def logits(self, name: str, x: torch.Tensor,
               state: tuple[torch.Tensor, torch.Tensor]
               ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        h, c = self.cell(x, state)
        return self.heads[name](h)[0], (h, c)


class ReinforceController(SequenceStrategy):
    """REINFORCE over the :class:`Controller` (see the module docstring).

    Args:
        space: the space to search.
        options: controller width, learning rate, baseline decay, entropy bonus and logit
            squashing (:class:`RlOptions`).
        seed: controller initialisation and sampling.
    """

    max_repeat_tries = 10  # resamples of already-seen architectures before an unseen neighbour
    max_history_updates = 3  # of those, answered from history with an update (per proposal)

    def __init__(self, space: Space, options: RlOptions = RlOptions(), *,
                 seed: int | None = None) -> None:
        self.space = space
        self.rng = np.random.default_rng(seed)
        with torch.random.fork_rng(devices=[]):  # CPU only: never touch the driver's GPUs
            torch.manual_seed(int(self.rng.integers(2**31)))
            self.controller = Controller(space, hidden=options.hidden)
        self.optimizer = torch.optim.Adam(self.controller.parameters(), lr=options.lr)
        self.baseline_decay = options.baseline_decay
        self.entropy_weight = options.entropy_weight
        self.tanh_constant = options.tanh_constant
        self.temperature = options.temperature
        self.baseline: float | None = None
        self.scale: float | None = None
        self.pending: dict[int, tuple[int, ...]] = {}
        # by the space's canonical form, so an equivalent config counts as the same one
        self.in_flight: dict[Hashable, int] = {}  # configs training, and how many
        self.evaluated: dict[Hashable, Key] = {}  # finished configs, best key each
        self.fidelity = FidelityTracker()
        self.ranks = RankReward(options.rank_window)
        self.multi_fidelity = False  # a trial was stopped early: rewards are ranks
        self.asked = 0
        self.updates = 0
        self.repeats = 0  # samples answered from history or resampled
        self.by_canonical = True  # evaluated and in_flight are keyed by canonical form

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore a saved search, one saved by hpnas 0.2 included (no history kept then)."""
        if "evaluated" not in state:
            state.update(evaluated={}, fidelity=FidelityTracker(), ranks=RankReward(), multi_fidelity=False,
                         repeats=0)
        self.__dict__.update(state)
        if "by_canonical" not in state:  # hpnas 0.4 kept token sequences: re-key them
            self.evaluated = rekeyed(self.evaluated, self._ident)
            self._recount_in_flight()
            self.by_canonical = True

    def _squash(self, logits: torch.Tensor) -> torch.Tensor:
        return self.tanh_constant * torch.tanh(logits / self.temperature)

    @torch.no_grad()
    def _sample(self) -> dict[str, Any]:
        x, state = self.controller.initial()

        def choose(p: Param, _: dict[str, Any]) -> Any:
            nonlocal x, state
            logits, state = self.controller.logits(p.name, x, state)
            probs = torch.softmax(self._squash(logits), -1).double().numpy()
            token = int(self.rng.choice(len(probs), p=probs / probs.sum()))
            x = self.controller.embed[p.name](torch.tensor([token]))
            return p.grid()[token]

        return self.space.build(choose)

    def ask(self) -> tuple[dict[str, Any], Hashable]:
        answered = 0
        tokens: tuple[int, ...] = ()
        for _ in range(self.max_repeat_tries):
            tokens = self.space.tokens(self._sample())
            ident = self._ident(tokens)
            if ident in self.evaluated:  # answered from history: learn, spend no budget
                if answered < self.max_history_updates:
                    self._learn(tokens, self._reward(self.evaluated[ident], record=False))
                    answered += 1
            elif ident not in self.in_flight:
                break
            self.repeats += 1
        else:
            tokens = self._unseen(near=tokens)
            ident = self._ident(tokens)
        self.asked += 1
        self._start(self.asked, tokens, ident)
        return self.space.from_tokens(tokens), self.asked

    def _unseen(self, near: tuple[int, ...]) -> tuple[int, ...]:
        """An architecture neither evaluated nor training: a neighbour of ``near`` (the
        controller's repeated sample, one decision changed), else a uniformly random one."""
        def fresh(tokens: tuple[int, ...]) -> bool:
            ident = self._ident(tokens)
            return ident not in self.evaluated and ident not in self.in_flight

        for config in self.space.neighbours(self.space.from_tokens(near), self.rng):
            if fresh(tokens := self.space.tokens(config)):
                return tokens
        return self.draw_unseen(lambda: self.space.tokens(self.space.sample_grid(self.rng)),
                                fresh)

    def log_prob_entropy(self, tokens: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probability and entropy of a token sequence under the current controller."""
        config = self.space.from_tokens(tokens)
        params = self.space.active_params(config)
        x, state = self.controller.initial()
        log_prob = torch.zeros(())
        entropy = torch.zeros(())
        for p, token in zip(params, tokens):
            logits, state = self.controller.logits(p.name, x, state)
            log_probs = torch.log_softmax(self._squash(logits), -1)
            log_prob = log_prob + log_probs[token]
            entropy = entropy - (log_probs.exp() * log_probs).sum()
            x = self.controller.embed[p.name](torch.tensor([token]))
        return log_prob, entropy

    def _reward(self, key: Key, *, record: bool) -> float:
        """The score (full budgets) or the rank of ``key`` (once trials are stopped early)."""
        rank = self.ranks.add(key) if record else self.ranks.reward(key)
        return rank if self.multi_fidelity else key[1]

    def tell(self, handle: Hashable, score: float | None, status: Status) -> None:
        ended = self._end(handle)
        if ended is None:
            return
        tokens, ident = ended
        if status is Status.FAILED or score is None:
            self.fidelity.forget(handle)
            return
        if status is Status.PRUNED and not self.multi_fidelity:
            self.multi_fidelity = True  # from now on rewards are ranks: restart the baseline
            self.baseline = self.scale = None
        key = self.fidelity.key(handle, score, status)
        self.evaluated[ident] = max(key, self.evaluated.get(ident, key))
        self._learn(tokens, self._reward(key, record=True))

    def warm(self, trials: Sequence[tuple[dict[str, Any], Key]]) -> None:
        """REINFORCE on ``trials`` as finished samples, from a baseline at their mean reward."""
        if not trials:
            return
        samples = [(self.space.tokens(config), key) for config, key in trials]
        for tokens, key in samples:
            ident = self._ident(tokens)
            self.evaluated[ident] = max(key, self.evaluated.get(ident, key))
            self.ranks.add(key)
        if any(key[0] != math.inf for _, key in samples):
            self.multi_fidelity = True
        rewards = [self._reward(key, record=False) for _, key in samples]
        if self.baseline is None:
            self.baseline, self.scale = float(np.mean(rewards)), float(np.var(rewards))
        for (tokens, _), reward in zip(samples, rewards):
            self._learn(tokens, reward)

    def _learn(self, tokens: tuple[int, ...], reward: float) -> None:
        """One REINFORCE step on ``tokens`` with ``reward``."""
        if self.baseline is None:
            self.baseline, self.scale = reward, 0.0
        advantage = reward - self.baseline
        d = self.baseline_decay
        self.scale = d * self.scale + (1 - d) * advantage ** 2  # type: ignore[operator]
        self.baseline = d * self.baseline + (1 - d) * reward
        normalised = advantage / (np.sqrt(self.scale) + 1e-8) if self.scale else 0.0
        log_prob, entropy = self.log_prob_entropy(tokens)
        loss = -float(np.clip(normalised, -5, 5)) * log_prob - self.entropy_weight * entropy
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.updates += 1
