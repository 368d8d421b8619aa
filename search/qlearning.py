"""MetaQNN's Q-learning search, Baker et al. 2017 ("Designing Neural Network Architectures using
Reinforcement Learning").

A state is a partial config: the tokens of the decisions made so far (the space's conditions say
which decision comes next, so variable-depth spaces work unchanged); an action is the next
decision's token; the episode ends when no decision is left, with the trial's score as the only
reward. Actions are chosen epsilon-greedily from a Q-table; epsilon stays at ``epsilon_start``
for ``random_trials`` proposals, then falls linearly to ``epsilon_end`` over ``decay_trials``
(MetaQNN's schedule of 1.0 then 0.9 ... 0.1, made continuous). After every finished trial the
Q-table is updated on ``replay_batch`` episodes drawn from the replay memory (the newest always
among them), each replayed from its last step backwards:

    Q(s, a) <- (1 - alpha) Q(s, a) + alpha (r + gamma max_a' Q(s', a'))

with ``r`` the score at the last step and 0 before it. As in MetaQNN, a config already evaluated
is not run again: its stored score is replayed as a new episode and another proposal is drawn
(up to ``max_repeat_tries`` times). Unvisited state-actions start at the mean score seen so far.

Example:
    >>> core = QLearning(get_space("nb201"), seed=0)
    >>> config, handle = core.ask()
    >>> core.tell(handle, 71.3, Status.COMPLETE)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Hashable

import numpy as np

from search.outcome import Status
from search.strategy import Strategy
from spaces import Param, Space
from spaces.options import check_range

__all__ = ["QLearning", "QLearningOptions"]

State = tuple[int, ...]


@dataclass(frozen=True)
class QLearningOptions:
    """MetaQNN epsilon-greedy Q-learning with experience replay (Baker et al. 2017)."""

    alpha: float = 0.1  # Q learning rate
    gamma: float = 1.0  # discount (MetaQNN: 1)
    epsilon_start: float = 1.0
    epsilon_end: float = 0.1
    random_trials: int = 30  # proposals at epsilon_start
    decay_trials: int = 70  # then linear decay to epsilon_end over this many
    replay_batch: int = 32  # episodes replayed per finished trial

    def __post_init__(self) -> None:
        check_range("alpha", self.alpha, low=0, high=1, low_open=True)
        check_range("gamma", self.gamma, low=0, high=1)
        check_range("epsilon_start", self.epsilon_start, low=0, high=1)
        check_range("epsilon_end", self.epsilon_end, low=0, high=1)
        check_range("random_trials", self.random_trials, low=0)
        check_range("decay_trials", self.decay_trials, low=0)
        check_range("replay_batch", self.replay_batch, low=1)


class QLearning(Strategy):
    """Epsilon-greedy Q-learning with experience replay (see the module docstring)."""

    max_repeat_tries = 20  # proposals of already-evaluated configs replayed before giving up

    def __init__(self, space: Space, options: QLearningOptions = QLearningOptions(), *,
                 seed: int | None = None) -> None:
        self.space = space
        self.alpha = options.alpha
        self.gamma = options.gamma
        self.epsilon_start = options.epsilon_start
        self.epsilon_end = options.epsilon_end
        self.random_trials = options.random_trials
        self.decay_trials = options.decay_trials
        self.replay_batch = options.replay_batch
        self.rng = np.random.default_rng(seed)
        self.q: dict[tuple[State, int], float] = {}
        self.replay: list[tuple[State, float]] = []
        self.known: dict[State, float] = {}  # evaluated token sequences and their score
        self.pending: dict[int, State] = {}
        self.in_flight: set[State] = set()
        self.asked = 0
        self.reward_sum = 0.0

    @property
    def epsilon(self) -> float:
        """The exploration rate for the next proposal."""
        past = self.asked - self.random_trials
        if past < 0:
            return self.epsilon_start
        fraction = min(1.0, past / max(1, self.decay_trials))
        return self.epsilon_start + fraction * (self.epsilon_end - self.epsilon_start)

    def _q_init(self) -> float:
        return self.reward_sum / len(self.replay) if self.replay else 0.0

    def value(self, state: State, action: int) -> float:
        return self.q.get((state, action), self._q_init())

    def _episode(self) -> State:
        epsilon = self.epsilon
        tokens: list[int] = []

        def choose(p: Param, _: dict[str, Any]) -> Any:
            grid = p.grid()
            state = tuple(tokens)
            if self.rng.random() < epsilon:
                action = int(self.rng.integers(len(grid)))
            else:
                values = np.array([self.value(state, a) for a in range(len(grid))])
                best = np.flatnonzero(values == values.max())
                action = int(best[int(self.rng.integers(len(best)))])
            tokens.append(action)
            return grid[action]

        self.space.build(choose)
        return tuple(tokens)

    def ask(self) -> tuple[dict[str, Any], Hashable]:
        tokens = self._episode()
        for _ in range(self.max_repeat_tries):
            if tokens in self.known:
                self._learn(tokens, self.known[tokens])  # MetaQNN: reuse the stored result
            elif tokens not in self.in_flight:  # nor run a config twice at once
                break
            tokens = self._episode()
        self.asked += 1
        self.pending[self.asked] = tokens
        self.in_flight.add(tokens)
        return self.space.from_tokens(tokens), self.asked

    def _update(self, tokens: State, reward: float) -> None:
        """One backward pass of Q-updates over an episode."""
        sizes = [len(p.grid()) for p in self.space.active_params(self.space.from_tokens(tokens))]
        for t in range(len(tokens) - 1, -1, -1):
            state, action = tokens[:t], tokens[t]
            if t == len(tokens) - 1:
                target = reward
            else:
                nxt = tokens[: t + 1]
                target = self.gamma * max(self.value(nxt, a) for a in range(sizes[t + 1]))
            old = self.value(state, action)
            self.q[(state, action)] = (1 - self.alpha) * old + self.alpha * target

    def _learn(self, tokens: State, reward: float) -> None:
        self.replay.append((tokens, reward))
        self.reward_sum += reward
        batch = [len(self.replay) - 1]
        if len(self.replay) > 1:
            k = min(self.replay_batch - 1, len(self.replay) - 1)
            batch += list(self.rng.choice(len(self.replay) - 1, size=k, replace=False))
        for i in batch:
            self._update(*self.replay[int(i)])

    def tell(self, handle: Hashable, score: float | None, status: Status) -> None:
        tokens = self.pending.pop(handle, None)  # type: ignore[call-overload]
        if tokens is not None and tokens not in self.pending.values():
            self.in_flight.discard(tokens)
        if tokens is None or status is Status.FAILED or score is None:
            return
        self.known[tokens] = max(score, self.known.get(tokens, score))
        self._learn(tokens, score)
