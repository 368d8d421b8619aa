"""BOHB (Falkner et al. 2018): Hyperband's brackets, with configs proposed by a TPE-like density
model of the best configs at the largest budget that has enough results.

This core wraps Ray's ``TuneBOHB`` (which drives ``hpbandster``'s config generator) over the
space converted to a ``ConfigSpace`` space, conditions included, so variable-depth spaces keep
their structure. It pairs with ``scheduler: bohb`` (Ray's ``HyperBandForBOHB``): each epoch a
trial reports is a result at that budget (epochs), and a trial the scheduler pauses at a rung
is told to the model as paused. A trial stopped early is a result at the budget it reached,
which is how BOHB uses Hyperband's partial evaluations.

Needs ``pip install 'hpnas[bohb]'`` (``hpbandster`` and ``ConfigSpace``).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from search.fidelity import FidelityTracker, Key
from search.outcome import Status
from search.strategy import Strategy
from spaces import Categorical, Float, Integer, Param, Space
from spaces.options import check_range
from spaces.space import CONDITION_OPERATORS

__all__ = ["BohbOptions", "BohbStrategy", "missing_bohb_packages", "to_configspace"]

_METRIC = "score"  # the core's scores are maximised
NEVER = object()  # a condition no value of its parent satisfies


@dataclass(frozen=True)
class BohbOptions:
    """BOHB's model (``hpbandster``'s config generator settings)."""

    min_points_in_model: int | None = None  # default: number of parameters + 1
    top_n_percent: int = 15  # the share of results that make the "good" density
    num_samples: int = 64  # candidates drawn to maximise the density ratio
    random_fraction: float = 1 / 3  # proposals drawn at random regardless of the model
    bandwidth_factor: float = 3.0
    min_bandwidth: float = 1e-3

    def __post_init__(self) -> None:
        check_range("min_points_in_model", self.min_points_in_model, low=1)
        check_range("top_n_percent", self.top_n_percent, low=1, high=99)
        check_range("num_samples", self.num_samples, low=1)
        check_range("random_fraction", self.random_fraction, low=0, high=1)
        check_range("bandwidth_factor", self.bandwidth_factor, low=0, low_open=True)
        check_range("min_bandwidth", self.min_bandwidth, low=0, low_open=True)


def missing_bohb_packages() -> str | None:
    """``None`` when BOHB's packages import, else the one-line reason and the fix."""
    try:
        import ConfigSpace  # noqa: F401
        import hpbandster  # noqa: F401
    except ImportError as e:
        return (f"BOHB needs the packages hpbandster and ConfigSpace ({e}); install them with "
                "pip install 'hpnas[bohb]', or use scheduler asha or hyperband.")
    return None


def _in_condition(child: Any, parent: Param, parent_hp: Any, op: str, value: Any) -> Any:
    """The ConfigSpace condition for ``parent <op> value`` on ``child`` (``None``: always
    holds; :data:`NEVER`: never does)."""
    from ConfigSpace import (
        EqualsCondition,
        GreaterThanCondition,
        InCondition,
        LessThanCondition,
        NotEqualsCondition,
    )

    if isinstance(parent, Float) and parent.low < parent.high:
        if op in (">", ">="):
            return GreaterThanCondition(child, parent_hp, value)
        if op in ("<", "<="):
            return LessThanCondition(child, parent_hp, value)
        if op == "==":
            return EqualsCondition(child, parent_hp, value)
        if op == "!=":
            return NotEqualsCondition(child, parent_hp, value)
        return InCondition(child, parent_hp, list(value))
    # A finite parent (or a fixed float): the values for which the condition holds, whatever
    # the operator, compared as the space's own values (booleans too) and then encoded.
    values = (parent.low,) if isinstance(parent, Float) else parent.grid()
    holds = [v for v in values if CONDITION_OPERATORS[op](v, value)]
    if not holds:
        return NEVER  # e.g. num_filter_3 once an override keeps num_conv_layers <= 3
    if len(holds) == len(values):
        return None  # always active
    allowed = [_plain(v) if isinstance(parent, Categorical) else _encode(parent, v)
               for v in holds]
    if len(allowed) == 1:
        return EqualsCondition(child, parent_hp, allowed[0])
    return InCondition(child, parent_hp, allowed)


def to_configspace(space: Space, seed: int | None = None) -> Any:
    """``space`` as a ``ConfigSpace.ConfigurationSpace``: floats (log or not), integers (the
    index of the grid when ``step`` > 1), choices, and each condition as the equivalent
    ConfigSpace condition; a parameter that can never be active (its condition holds for no
    value of its parent, after an override narrowed it) is left out."""
    from ConfigSpace import (
        CategoricalHyperparameter,
        ConfigurationSpace,
        Constant,
        UniformFloatHyperparameter,
        UniformIntegerHyperparameter,
    )

    cs = ConfigurationSpace(seed=seed)
    made: dict[str, Any] = {}
    for p in space.params:
        if isinstance(p, Float):
            hp = (Constant(p.name, p.low) if p.low == p.high else
                  UniformFloatHyperparameter(p.name, p.low, p.high, log=p.log))
        elif isinstance(p, Integer):
            if p.low == p.high:
                hp = Constant(p.name, p.low)
            elif p.step == 1:
                hp = UniformIntegerHyperparameter(p.name, p.low, p.high)
            else:  # hpbandster takes no ordinals: the grid's index, as an integer
                hp = UniformIntegerHyperparameter(p.name, 0, len(p.grid()) - 1)
        elif len(p.choices) == 1:
            hp = Constant(p.name, _plain(p.choices[0]))
        else:
            hp = CategoricalHyperparameter(p.name, [_plain(c) for c in p.choices])
        made[p.name] = hp
    conditions, never = [], set()
    for p in space.params:  # a condition reads earlier parameters only
        c = p.condition
        if c is None:
            continue
        condition = (NEVER if c.param in never else
                     _in_condition(made[p.name], space[c.param], made[c.param], c.op, c.value))
        if condition is NEVER:  # never active: left out, as it is of every config
            never.add(p.name)
        elif condition is not None:
            conditions.append(condition)
    for name, hp in made.items():
        if name not in never:
            cs.add(hp)
    for condition in conditions:
        cs.add(condition)
    return cs


def _plain(value: Any) -> Any:
    """ConfigSpace keeps strings and numbers; booleans become the strings 'True'/'False'."""
    return str(value) if isinstance(value, bool) else value


def _encode(p: Integer, value: int) -> int:
    """An integer as ConfigSpace holds it: itself, or its grid index when ``step`` > 1."""
    return value if p.step == 1 or p.low == p.high else (value - p.low) // p.step


def _to_configspace(p: Param, value: Any) -> Any:
    """A value of the space as ConfigSpace holds it (the inverse of :func:`_back`)."""
    if isinstance(p, Categorical):
        return _plain(value)
    if isinstance(p, Integer):
        return _encode(p, value)
    return value


def _back(p: Param, value: Any) -> Any:
    """A value ConfigSpace returned (numpy scalars, stringified booleans) as the space's own."""
    if isinstance(p, Categorical):
        for choice in p.choices:
            if _plain(choice) == value:
                return choice
        raise ValueError(f"BOHB proposed {value!r} for {p.name!r}, not one of {p.choices}.")
    if isinstance(p, Integer):
        return int(value) if p.step == 1 or p.low == p.high else p.low + p.step * int(value)
    return float(min(max(float(value), p.low), p.high))


class BohbStrategy(Strategy):
    """BOHB's config generator through Ray's ``TuneBOHB`` (see the module docstring)."""

    def __init__(self, space: Space, options: BohbOptions = BohbOptions(), *,
                 seed: int | None = None) -> None:
        missing = missing_bohb_packages()
        if missing:
            raise ValueError(missing)
        from ray.tune.search.bohb import TuneBOHB

        self.space = space
        self.rng = np.random.default_rng(seed)
        config = {"top_n_percent": options.top_n_percent, "num_samples": options.num_samples,
                  "random_fraction": options.random_fraction,
                  "bandwidth_factor": options.bandwidth_factor,
                  "min_bandwidth": options.min_bandwidth}
        if options.min_points_in_model is not None:
            config["min_points_in_model"] = options.min_points_in_model
        self.bohb = TuneBOHB(space=to_configspace(space, seed), bohb_config=config,
                             metric=_METRIC, mode="max", seed=seed)
        self.asked = 0
        self.live: set[str] = set()
        self.fidelity = FidelityTracker()  # the last epoch each live trial reported
        self.warm_complete: list[tuple[dict[str, Any], float]] = []  # fed at the full budget

    def warm(self, trials: Sequence[tuple[dict[str, Any], Key]]) -> None:
        """Another experiment's trials as results of BOHB's model: a stopped one at the epoch
        it reached, a complete one at the full budget once the first trial of this search
        completes (that is when the budget in epochs is known)."""
        for config, (fidelity, score) in trials:
            raw = {p.name: _to_configspace(p, config[p.name]) for p in self.space.params
                   if p.name in config}
            if math.isinf(fidelity):
                self.warm_complete.append((raw, score))
            else:
                self._result(raw, fidelity, score)

    def _result(self, raw: dict[str, Any], budget: float, score: float) -> None:
        from ray.tune.search.bohb.bohb_search import _BOHBJobWrapper

        self.bohb.bohber.new_result(_BOHBJobWrapper(-score, budget, raw))

    def ask(self) -> tuple[dict[str, Any], Hashable] | None:
        self.asked += 1
        handle = f"bohb_{self.asked}"
        raw = self.bohb.suggest(handle)
        if raw is None:
            return None
        self.live.add(handle)
        config = self.space.build(lambda p, _: _back(p, raw[p.name]) if p.name in raw
                                  else p.sample(self.rng))
        return config, handle

    def report(self, handle: Hashable, step: int, score: float) -> None:
        if handle in self.live:
            self.fidelity.report(handle, step)
            self.bohb.on_trial_result(str(handle), {_METRIC: score,
                                                    "hyperband_info": {"budget": step}})

    def pause(self, handle: Hashable) -> None:
        if handle in self.live:
            self.bohb.on_pause(str(handle))

    def unpause(self, handle: Hashable) -> None:
        if handle in self.live:
            self.bohb.on_unpause(str(handle))

    def tell(self, handle: Hashable, score: float | None, status: Status) -> None:
        if handle in self.live:
            self.live.discard(handle)  # results were told epoch by epoch through report
            self.bohb.on_trial_complete(str(handle))
            full = self.fidelity.last_step.pop(handle, None)
            if status is Status.COMPLETE and full is not None and self.warm_complete:
                for raw, warm_score in self.warm_complete:
                    self._result(raw, full, warm_score)
                self.warm_complete = []
