"""MetaQNN's Q-learning search, Baker et al. 2017 ("Designing Neural Network Architectures using
Reinforcement Learning").

States are shared between architectures, as in MetaQNN (whose states are layer descriptors that
many networks pass through): the state after a decision is *that decision and the value chosen
there* (for a cell, the edge and its op; for a layer space, the layer's parameter, such as
``width_2`` or ``kernel_3``, which carries its depth, and its value); the start state is empty.
An action is the next active decision's value; the space's conditions say which decision comes
next, so variable-depth spaces work unchanged. The episode ends when no decision is left, with
the trial's reward as the only reward. Actions are chosen epsilon-greedily from the Q-table.

Schedule: epsilon stays at ``epsilon_start`` for ``random_trials`` proposals, then falls
linearly to ``epsilon_end`` over ``decay_trials`` (MetaQNN: 1.0 for 1,500 of 3,500 models, then
0.9, 0.8 ... 0.1 in steps; here made continuous and sized for budgets of about a hundred
evaluations). After every finished trial the Q-table is updated on ``replay_batch`` episodes
drawn from the replay memory (the newest always among them), each replayed from its last step
backwards with Peng's Q(lambda) return (Peng and Williams 1996):

    G_T = r,   G_t = gamma ((1 - lambda) max_a' Q(s_t+1, a') + lambda G_t+1)
    Q(s_t, a_t) <- (1 - alpha) Q(s_t, a_t) + alpha G_t

with ``r`` the trial's reward (given at the last step only). ``lambda`` 0 is MetaQNN's one-step
update, ``Q <- (1 - alpha) Q + alpha (r + gamma max Q')``: with ``gamma`` 1 it makes each
Q-value the best reward seen through that state-action, and with one noisy evaluation per
architecture that best is mostly luck, so the greedy policy chases lucky paths. The default 0.9
mixes in the episode's own reward, so a state-action's value is mostly the rewards of the
architectures that passed through it. Unvisited state-actions start at the mean reward seen so
far (MetaQNN starts them at 0.5, a middling accuracy).

As in MetaQNN, a config already evaluated to its full budget (or one the space says builds the
same network, :meth:`spaces.Space.canonical`) is not run again: its stored
reward is replayed as a new episode and another proposal is drawn, with epsilon raised a step
towards 1 at each repeat (so a greedy policy that knows its favourite config moves away from it
rather than replaying it forever); after ``max_repeat_tries`` repeats, a uniformly random
unseen config. A config that was stopped early is never cached
as if its score were final: re-proposing it replays its *rank* (below), and a config still
training is not proposed twice at once.

The reward is a rank (:mod:`search.fidelity`): the quantile of a trial's ``(fidelity, score)``
among the last ``rank_window`` finished trials, recomputed whenever an episode is replayed. With
full budgets that is the score's quantile (a few disastrous architectures do not dominate the
Q-values' means, which raw accuracies let them do); under early stopping, a trial stopped at a
rung counts as worse than those that survived it.

A warm start (:meth:`QLearning.warm`) adds another experiment's trials as episodes: each goes
into the replay memory and updates the Q-table as a finished trial would, is never proposed
again, and counts in the epsilon schedule as a model evaluated (so a search warm-started with
``random_trials + decay_trials`` of them starts at ``epsilon_end``).

Departures from the paper: Q(lambda) returns (``q_lambda`` 0 restores the paper's update);
rank rewards; continuous epsilon schedule sized for small budgets; mean-reward
initialisation.

Example:
    >>> core = QLearning(get_space("nb201"), seed=0)
    >>> config, handle = core.ask()
    >>> core.tell(handle, 71.3, Status.COMPLETE)
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from search.fidelity import FidelityTracker, Key, RankReward, SequenceStrategy, rekeyed
from search.outcome import Status
from spaces import Param, Space
from spaces.options import check_range

__all__ = ["QLearning", "QLearningOptions"]

Tokens = tuple[int, ...]
State = tuple[str, int] | None  # (the last decision's parameter, its token); None at the start


@dataclass(frozen=True)
class QLearningOptions:
    """MetaQNN epsilon-greedy Q-learning over shared states, with experience replay."""

    alpha: float = 0.3  # Q learning rate
    gamma: float = 1.0  # discount (MetaQNN: 1)
    q_lambda: float = 0.9  # Peng's Q(lambda) return; 0: MetaQNN's one-step update
    epsilon_start: float = 1.0
    epsilon_end: float = 0.1
    random_trials: int = 10  # proposals at epsilon_start
    decay_trials: int = 50  # then linear decay to epsilon_end over this many
    replay_batch: int = 32  # episodes replayed per finished trial
    rank_window: int = 200  # finished trials a rank reward is taken over (early stopping)

    def __post_init__(self) -> None:
        check_range("alpha", self.alpha, low=0, high=1, low_open=True)
        check_range("gamma", self.gamma, low=0, high=1)
        check_range("q_lambda", self.q_lambda, low=0, high=1)
        check_range("epsilon_start", self.epsilon_start, low=0, high=1)
        check_range("epsilon_end", self.epsilon_end, low=0, high=1)
        check_range("random_trials", self.random_trials, low=0)
        check_range("decay_trials", self.decay_trials, low=0)
        check_range("replay_batch", self.replay_batch, low=1)
        check_range("rank_window", self.rank_window, low=1)


class QLearning(SequenceStrategy):
    """Epsilon-greedy Q-learning over shared states (see the module docstring)."""

    max_repeat_tries = 20  # proposals of already-evaluated configs replayed before giving up
    warmed = 0  # episodes of a warm start (a class default: states saved before it exist)
    q_lambda = 0.0  # searches saved by hpnas 0.5 and earlier keep their one-step update

    def __init__(self, space: Space, options: QLearningOptions = QLearningOptions(), *,
                 seed: int | None = None) -> None:
        self.space = space
        self.alpha = options.alpha
        self.gamma = options.gamma
        self.q_lambda = options.q_lambda
        self.epsilon_start = options.epsilon_start
        self.epsilon_end = options.epsilon_end
        self.random_trials = options.random_trials
        self.decay_trials = options.decay_trials
        self.replay_batch = options.replay_batch
        self.rng = np.random.default_rng(seed)
        self.q: dict[tuple[State, str, int], float] = {}
        self.replay: list[tuple[Tokens, Key]] = []  # (episode, its key): rewards from keys
        # by the space's canonical form, so an equivalent config counts as the same one
        self.known: dict[Hashable, Key] = {}  # configs evaluated to the full budget
        self.stopped: dict[Hashable, Key] = {}  # configs stopped early, and how far they got
        self.pending: dict[int, Tokens] = {}
        self.in_flight: dict[Hashable, int] = {}  # configs training, and how many
        self.by_canonical = True
        self.fidelity = FidelityTracker()
        self.ranks = RankReward(options.rank_window)
        self.asked = 0
        self.reward_sum = 0.0

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("steps_memo", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore a saved search, one saved by hpnas 0.2 included (prefix states, raw scores:
        its Q-table is dropped and relearned from its replay memory at the next update)."""
        if "stopped" not in state:
            state.update(q={}, replay=[(t, (math.inf, r)) for t, r in state["replay"]],
                         known={t: (math.inf, r) for t, r in state["known"].items()},
                         stopped={}, fidelity=FidelityTracker(), ranks=RankReward())
            for _, key in state["replay"]:
                state["ranks"].add(key)
        self.__dict__.update(state)
        if "by_canonical" not in state:  # hpnas 0.4 kept token sequences: re-key them
            self.known = rekeyed(self.known, self._ident)
            self.stopped = rekeyed(self.stopped, self._ident)
            self._recount_in_flight()
            self.by_canonical = True

    @property
    def epsilon(self) -> float:
        """The exploration rate for the next proposal."""
        past = self.asked + self.warmed - self.random_trials
        if past < 0:
            return self.epsilon_start
        fraction = min(1.0, past / max(1, self.decay_trials))
        return self.epsilon_start + fraction * (self.epsilon_end - self.epsilon_start)

    def _q_init(self) -> float:
        return self.reward_sum / len(self.replay) if self.replay else 0.0

    def value(self, state: State, param: str, action: int) -> float:
        return self.q.get((state, param, action), self._q_init())

    def _steps(self, tokens: Tokens) -> list[tuple[State, str, int, int]]:
        """``(state, parameter, action, choices)`` of each decision of an episode (memoized:
        replay revisits the same episodes; the memo is not saved with the search)."""
        memo = self.__dict__.setdefault("steps_memo", {})
        steps = memo.get(tokens)
        if steps is None:
            params = self.space.active_params(self.space.from_tokens(tokens))
            state: State = None
            steps = []
            for p, token in zip(params, tokens):
                steps.append((state, p.name, token, len(p.grid())))
                state = (p.name, token)
            memo[tokens] = steps
        return steps

    def _episode(self, repeats: int = 0) -> Tokens:
        epsilon = self.epsilon
        epsilon += (1 - epsilon) * repeats / self.max_repeat_tries  # away from a known config
        tokens: list[int] = []
        state: State = None

        def choose(p: Param, _: dict[str, Any]) -> Any:
            nonlocal state
            grid = p.grid()
            if self.rng.random() < epsilon:
                action = int(self.rng.integers(len(grid)))
            else:
                values = np.array([self.value(state, p.name, a) for a in range(len(grid))])
                best = np.flatnonzero(values == values.max())
                action = int(best[int(self.rng.integers(len(best)))])
            tokens.append(action)
            state = (p.name, action)
            return grid[action]

        self.space.build(choose)
        return tuple(tokens)

    def _unseen(self) -> Tokens:
        """A uniformly random token sequence not evaluated nor training (if one is found)."""
        def fresh(tokens: Tokens) -> bool:
            ident = self._ident(tokens)
            return ident not in self.known and ident not in self.stopped \
                and ident not in self.in_flight

        return self.draw_unseen(lambda: self.space.tokens(self.space.sample_grid(self.rng)),
                                fresh)

    def ask(self) -> tuple[dict[str, Any], Hashable]:
        for repeats in range(self.max_repeat_tries):
            tokens = self._episode(repeats)
            ident = self._ident(tokens)
            seen = self.known.get(ident) or self.stopped.get(ident)
            if seen is not None:  # MetaQNN: reuse the stored result as a new episode
                self._learn(tokens, seen)
            elif ident not in self.in_flight:  # nor run a config twice at once
                break
        else:
            tokens = self._unseen()
            ident = self._ident(tokens)
        self.asked += 1
        self._start(self.asked, tokens, ident)
        return self.space.from_tokens(tokens), self.asked

    def _reward(self, key: Key) -> float:
        return self.ranks.reward(key)

    def _update(self, tokens: Tokens, reward: float) -> None:
        """One backward pass of Q-updates over an episode, towards its Q(lambda) returns."""
        steps = self._steps(tokens)
        q, init = self.q, self._q_init()  # self.value(), inlined: replay calls this often
        target = reward
        for t in range(len(steps) - 1, -1, -1):
            state, param, action, _ = steps[t]
            if t < len(steps) - 1:
                nxt_state, nxt_param, _, choices = steps[t + 1]
                best = max(q.get((nxt_state, nxt_param, a), init) for a in range(choices))
                target = self.gamma * ((1 - self.q_lambda) * best + self.q_lambda * target)
            key = (state, param, action)
            q[key] = (1 - self.alpha) * q.get(key, init) + self.alpha * target

    def _learn(self, tokens: Tokens, key: Key) -> None:
        self.replay.append((tokens, key))
        self.reward_sum += self._reward(key)
        batch = [len(self.replay) - 1]
        if len(self.replay) > 1:
            k = min(self.replay_batch - 1, len(self.replay) - 1)
            batch += list(self.rng.choice(len(self.replay) - 1, size=k, replace=False))
        for i in batch:
            episode, episode_key = self.replay[int(i)]
            self._update(episode, self._reward(episode_key))

    def tell(self, handle: Hashable, score: float | None, status: Status) -> None:
        ended = self._end(handle)
        if ended is None:
            return
        if status is Status.FAILED or score is None:
            self.fidelity.forget(handle)
            return
        self._finished(ended[0], self.fidelity.key(handle, score, status))

    def warm(self, trials: Sequence[tuple[dict[str, Any], Key]]) -> None:
        """Episodes of another experiment, learned from in order as finished trials."""
        for config, key in trials:
            self._finished(self.space.tokens(config), key)
        self.warmed += len(trials)

    def _finished(self, tokens: Tokens, key: Key) -> None:
        self.ranks.add(key)
        ident = self._ident(tokens)
        if key[0] == math.inf:  # complete: cached as final
            self.known[ident] = max(key, self.known.get(ident, key))
            self.stopped.pop(ident, None)
        elif ident not in self.known:
            self.stopped[ident] = max(key, self.stopped.get(ident, key))
        self._learn(tokens, key)
