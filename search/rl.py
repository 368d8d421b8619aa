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
the learning rate does not depend on the metric's scale), plus an entropy bonus that keeps the
policy from collapsing early. Failed trials are not learned from.

Example:
    >>> core = ReinforceController(get_space("nb201"), seed=0)
    >>> config, handle = core.ask()
    >>> core.tell(handle, 71.3, Status.COMPLETE)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Hashable

import numpy as np
import torch
from torch import nn

from search.outcome import Status
from search.strategy import Strategy
from spaces import Param, Space
from spaces.options import check_range

__all__ = ["Controller", "ReinforceController", "RlOptions"]


@dataclass(frozen=True)
class RlOptions:
    """REINFORCE LSTM controller (Zoph & Le 2017)."""

    hidden: int = 64  # LSTM width
    lr: float = 0.01  # Adam learning rate of the controller
    baseline_decay: float = 0.9  # EMA decay of the reward baseline and scale
    entropy_weight: float = 1e-3  # entropy bonus
    tanh_constant: float = 2.5  # logits squashed to c * tanh(logits / temperature)
    temperature: float = 5.0

    def __post_init__(self) -> None:
        check_range("hidden", self.hidden, low=1)
        check_range("lr", self.lr, low=0, low_open=True)
        check_range("baseline_decay", self.baseline_decay, low=0, high=1)
        check_range("entropy_weight", self.entropy_weight, low=0)
        check_range("tanh_constant", self.tanh_constant, low=0, low_open=True)
        check_range("temperature", self.temperature, low=0, low_open=True)


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


class ReinforceController(Strategy):
    """REINFORCE over the :class:`Controller` (see the module docstring).

    Args:
        space: the space to search.
        options: controller width, learning rate, baseline decay, entropy bonus and logit
            squashing (:class:`RlOptions`).
        seed: controller initialisation and sampling.
    """

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
        self.asked = 0
        self.updates = 0

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
        config = self._sample()
        self.asked += 1
        self.pending[self.asked] = self.space.tokens(config)
        return config, self.asked

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

    def tell(self, handle: Hashable, score: float | None, status: Status) -> None:
        tokens = self.pending.pop(handle, None)  # type: ignore[call-overload]
        if tokens is None or status is Status.FAILED or score is None:
            return
        if self.baseline is None:
            self.baseline, self.scale = score, 0.0
        advantage = score - self.baseline
        d = self.baseline_decay
        self.scale = d * self.scale + (1 - d) * advantage ** 2  # type: ignore[operator]
        self.baseline = d * self.baseline + (1 - d) * score
        normalised = advantage / (np.sqrt(self.scale) + 1e-8) if self.scale else 0.0
        log_prob, entropy = self.log_prob_entropy(tokens)
        loss = -float(np.clip(normalised, -5, 5)) * log_prob - self.entropy_weight * entropy
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.updates += 1
