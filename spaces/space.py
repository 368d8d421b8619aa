"""The one space model every searcher reads.

A space is data: an ordered tuple of named parameters, each optionally active only under a
condition on an earlier parameter (``num_filter_2`` exists only when ``num_conv_layers >= 3``).
From that one definition a space gives random samples, validation, an Optuna define-by-run
function and Ray Tune domains. This module imports neither Ray nor torch nor Optuna: the Optuna
and Tune conversions take the ``trial`` object or the ``tune`` module from their caller.

Example:
    >>> space = Space("toy", (
    ...     Integer("depth", 1, 3),
    ...     Categorical("act", ("relu", "gelu")),
    ...     Float("lr", 1e-4, 1e-1, log=True),
    ...     Integer("width_2", 8, 64, step=8, condition=Condition("depth", ">=", 2)),
    ... ))
    >>> cfg = space.sample(np.random.default_rng(0))
    >>> space.validate(cfg)
"""

from __future__ import annotations

import difflib
import math
import operator
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Hashable, Iterator, Mapping, Sequence, Union

import numpy as np

__all__ = [
    "CONDITION_OPERATORS",
    "Categorical",
    "Condition",
    "Float",
    "Integer",
    "Param",
    "Space",
    "closest",
    "token_of",
]

CONDITION_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "in": lambda a, b: a in b,
}


def closest(name: str, candidates: Sequence[str]) -> str:
    """A "did you mean" suffix naming the candidates closest to ``name`` ('' if none is close)."""
    near = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.6)
    return f" Did you mean {', '.join(repr(n) for n in near)}?" if near else ""


@dataclass(frozen=True)
class Condition:
    """A parameter is active only when ``config[param] <op> value`` holds.

    ``op`` is one of ``==, !=, >=, >, <=, <, in``.
    """

    param: str
    op: str
    value: Any

    def __post_init__(self) -> None:
        if self.op not in CONDITION_OPERATORS:
            raise ValueError(
                f"condition operator is {self.op!r}, but must be one of "
                f"{sorted(CONDITION_OPERATORS)}."
            )

    def holds(self, config: Mapping[str, Any]) -> bool:
        """Whether the condition holds; False when the parameter it reads is absent."""
        if config.get(self.param) is None:
            return False
        return bool(CONDITION_OPERATORS[self.op](config[self.param], self.value))


@dataclass(frozen=True)
class Categorical:
    """One of a fixed tuple of choices (strings, numbers or booleans)."""

    name: str
    choices: tuple[Any, ...]
    condition: Condition | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.choices, (list, tuple)):
            raise TypeError(f"`{self.name}.choices` is {self.choices!r}, but must be a list.")
        object.__setattr__(self, "choices", tuple(self.choices))
        bad = [c for c in self.choices if not isinstance(c, (str, int, float, bool))]
        if bad:
            raise TypeError(f"`{self.name}.choices` holds {bad[0]!r}, but choices must be "
                            "strings, numbers or booleans.")
        if not self.choices:
            raise ValueError(f"`{self.name}.choices` is empty, but must list at least one value.")
        if len(set(map(repr, self.choices))) != len(self.choices):
            raise ValueError(f"`{self.name}.choices` is {list(self.choices)}, but has duplicates.")

    def sample(self, rng: np.random.Generator) -> Any:
        return self.choices[int(rng.integers(len(self.choices)))]

    def contains(self, value: Any) -> bool:
        return any(
            value == c and isinstance(value, bool) == isinstance(c, bool) for c in self.choices
        )

    def grid(self) -> tuple[Any, ...]:
        return self.choices

    def describe(self) -> str:
        return f"one of {list(self.choices)}"

    def suggest(self, trial: Any) -> Any:
        return trial.suggest_categorical(self.name, list(self.choices))

    def tune_domain(self, tune: Any) -> Any:
        return tune.choice(list(self.choices))


@dataclass(frozen=True)
class Integer:
    """An integer in ``[low, high]`` on the grid ``low, low + step, ...``."""

    name: str
    low: int
    high: int
    step: int = 1
    condition: Condition | None = None
    minimum: int | None = None  # the smallest value the trainable accepts (overrides stop there)

    def __post_init__(self) -> None:
        if self.minimum is not None and self.low < self.minimum:
            raise ValueError(f"`{self.name}.low` is {self.low}, but must be >= {self.minimum} "
                             "(the model cannot be built with less).")
        for attr in ("low", "high", "step"):
            value = getattr(self, attr)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"`{self.name}.{attr}` is {value!r}, but must be an integer.")
        if self.step < 1:
            raise ValueError(f"`{self.name}.step` is {self.step}, but must be >= 1.")
        if self.low > self.high:
            raise ValueError(
                f"`{self.name}` has low {self.low} > high {self.high}; swap them."
            )
        if (self.high - self.low) % self.step:
            raise ValueError(
                f"`{self.name}`: high - low = {self.high - self.low} is not a multiple of "
                f"step {self.step}; set high to {self.low + (self.high - self.low) // self.step * self.step}."
            )

    def sample(self, rng: np.random.Generator) -> int:
        return self.low + self.step * int(rng.integers((self.high - self.low) // self.step + 1))

    def contains(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            return False
        return self.low <= value <= self.high and (value - self.low) % self.step == 0

    def grid(self) -> tuple[int, ...]:
        return tuple(range(self.low, self.high + 1, self.step))

    def describe(self) -> str:
        return f"an integer in [{self.low}, {self.high}] with step {self.step}"

    def suggest(self, trial: Any) -> int:
        return int(trial.suggest_int(self.name, self.low, self.high, step=self.step))

    def tune_domain(self, tune: Any) -> Any:
        if self.step == 1:
            return tune.randint(self.low, self.high + 1)
        return tune.choice(list(self.grid()))


@dataclass(frozen=True)
class Float:
    """A float in ``[low, high]``, optionally on a log scale."""

    name: str
    low: float
    high: float
    log: bool = False
    condition: Condition | None = None
    grid_points: int = 10  # token grid for the RL/Q-learning controllers (log-spaced if log)

    def __post_init__(self) -> None:
        for attr in ("low", "high"):
            value = getattr(self, attr)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
                raise TypeError(f"`{self.name}.{attr}` is {value!r}, but must be a number.")
            if not math.isfinite(value):
                raise ValueError(f"`{self.name}.{attr}` is {value!r}, but must be finite.")
        if self.low > self.high:
            raise ValueError(f"`{self.name}` has low {self.low} > high {self.high}; swap them.")
        if self.log and self.low <= 0:
            raise ValueError(
                f"`{self.name}.low` is {self.low}, but must be > 0 on a log scale "
                "(use a positive low, or log: false)."
            )
        if isinstance(self.grid_points, bool) or not isinstance(self.grid_points, int) or (
                self.grid_points < 2):
            raise ValueError(f"`{self.name}.grid_points` is {self.grid_points!r}, but must be an "
                             "integer >= 2.")

    def sample(self, rng: np.random.Generator) -> float:
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        # exp(log(x)) can land a rounding step outside [low, high] (0.005 -> 0.005000000000000002)
        return float(min(max(value, self.low), self.high))

    def contains(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
            return False
        return self.low <= value <= self.high

    def grid(self) -> tuple[float, ...]:
        """``grid_points`` values from low to high (geometric when ``log``), each in [low, high]
        (geomspace's inner points of a one-value range are a rounding step below it), the one
        value once when low == high."""
        if self.log:
            values = np.geomspace(self.low, self.high, self.grid_points)
        else:
            values = np.linspace(self.low, self.high, self.grid_points)
        return tuple(dict.fromkeys(float(min(max(v, self.low), self.high)) for v in values))

    def describe(self) -> str:
        return f"a float in [{self.low}, {self.high}]" + (" (log scale)" if self.log else "")

    def suggest(self, trial: Any) -> float:
        return float(trial.suggest_float(self.name, self.low, self.high, log=self.log))

    def tune_domain(self, tune: Any) -> Any:
        return (tune.loguniform if self.log else tune.uniform)(self.low, self.high)


Param = Union[Categorical, Integer, Float]


def token_of(param: Param, value: Any) -> int:
    """The index of ``value`` on ``param``'s grid (the nearest grid point for floats)."""
    grid = param.grid()
    if isinstance(param, Float):
        scale = np.log if param.log else (lambda v: v)
        return int(np.argmin([abs(scale(g) - scale(value)) for g in grid]))
    for i, choice in enumerate(grid):
        if choice == value and isinstance(choice, bool) == isinstance(value, bool):
            return i
    raise ValueError(f"`{param.name}` is {value!r}, but must be {param.describe()}.")
_OVERRIDABLE: dict[type, tuple[str, ...]] = {
    Categorical: ("choices",),
    Integer: ("low", "high", "step"),
    Float: ("low", "high", "log", "grid_points"),
}


@dataclass(frozen=True)
class Space:
    """An ordered, immutable set of parameters; conditions read earlier parameters only."""

    name: str
    params: tuple[Param, ...]
    _by_name: dict[str, Param] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", tuple(self.params))
        seen: dict[str, Param] = {}
        for p in self.params:
            if p.name in seen:
                raise ValueError(f"space {self.name!r} defines parameter {p.name!r} twice.")
            if p.condition is not None and p.condition.param not in seen:
                raise ValueError(
                    f"parameter {p.name!r} is conditioned on {p.condition.param!r}, which must "
                    "be defined before it."
                )
            seen[p.name] = p
        object.__setattr__(self, "_by_name", seen)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    def __getitem__(self, name: str) -> Param:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(
                f"space {self.name!r} has no parameter {name!r}.{closest(name, self.names)}"
            ) from None

    def is_active(self, param: Param, config: Mapping[str, Any]) -> bool:
        """Whether ``param`` is active given the earlier values in ``config``."""
        return param.condition is None or param.condition.holds(config)

    def active_params(self, config: Mapping[str, Any]) -> list[Param]:
        """The parameters active under ``config`` (in order)."""
        return [p for p in self.params if self.is_active(p, config)]

    def build(self, choose: Callable[[Param, dict[str, Any]], Any]) -> dict[str, Any]:
        """Walk the parameters in order, asking ``choose(param, partial)`` for each active one.

        The shared skeleton of sampling, Optuna's define-by-run and the RL controller's decoding.
        """
        config: dict[str, Any] = {}
        for p in self.params:
            if self.is_active(p, config):
                config[p.name] = choose(p, config)
        return config

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """A uniformly random configuration (inactive parameters absent)."""
        return self.build(lambda p, _: p.sample(rng))

    def sample_grid(self, rng: np.random.Generator) -> dict[str, Any]:
        """A uniformly random configuration on the grid (each active decision one of its grid
        values): what the token-based searchers can propose."""
        return self.build(lambda p, _: p.grid()[int(rng.integers(len(p.grid())))])

    def neighbours(self, config: Mapping[str, Any], rng: np.random.Generator
                   ) -> Iterator[dict[str, Any]]:
        """Every configuration one active decision away from ``config`` (each other value of
        that decision's grid), in random order; parameters that become active are sampled and
        inactive ones dropped, as in :meth:`mutate`. Lazy: stop iterating when one is enough."""
        changes = []
        for p in self.active_params(config):
            current = config[p.name] if isinstance(p, Float) else token_of(p, config[p.name])
            for i, value in enumerate(p.grid()):
                if (value != current) if isinstance(p, Float) else (i != current):
                    changes.append((p.name, value))
        for i in rng.permutation(len(changes)):
            name, value = changes[int(i)]
            yield self.complete({**config, name: value}, rng)

    def validate(self, config: Mapping[str, Any]) -> None:
        """Raise ``ValueError`` naming the first problem with ``config``."""
        for p in self.params:
            active = self.is_active(p, config)
            if active and p.name not in config:
                raise ValueError(f"config is missing the active parameter {p.name!r}.")
            if not active and p.name in config:
                raise ValueError(
                    f"config sets {p.name!r}, which is inactive here ({p.condition})."
                )
            if active and not p.contains(config[p.name]):
                raise ValueError(
                    f"`{p.name}` is {config[p.name]!r}, but must be {p.describe()}."
                )
        unknown = [k for k in config if k not in self._by_name]
        if unknown:
            raise ValueError(
                f"config sets unknown parameter {unknown[0]!r}.{closest(unknown[0], self.names)}"
            )

    def canonical(self, config: Mapping[str, Any]) -> Hashable:
        """A hashable form, equal for configs that build the same model (searchers never
        propose two configs with one form): here the active parameters' values in space order;
        spaces that know more equivalences (cells: :meth:`spaces.cells.CellSpace.canonical`)
        say so."""
        return tuple((p.name, config[p.name]) for p in self.active_params(config))

    def upgrade_canonical(self, ident: Hashable) -> Hashable:
        """A canonical form saved by an earlier hpnas as this version's (restored searches)."""
        return ident

    def complete(self, partial: Mapping[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        """``partial`` made valid: inactive parameters dropped, missing active ones sampled."""
        return self.build(lambda p, _: partial[p.name] if p.name in partial else p.sample(rng))

    def tokens(self, config: Mapping[str, Any]) -> tuple[int, ...]:
        """One grid index per active decision, in order (variable length with depth)."""
        return tuple(token_of(p, config[p.name]) for p in self.active_params(config))

    def from_tokens(self, tokens: Sequence[int]) -> dict[str, Any]:
        """The config a token sequence spells; ``ValueError`` if it is too short or long."""
        it = iter(tokens)

        def choose(p: Param, _: dict[str, Any]) -> Any:
            try:
                token = next(it)
            except StopIteration:
                raise ValueError(f"token sequence {list(tokens)} ends before {p.name!r}.") from None
            grid = p.grid()
            if not 0 <= token < len(grid):
                raise ValueError(f"token {token} for {p.name!r} is outside 0..{len(grid) - 1}.")
            return grid[token]

        config = self.build(choose)
        if next(it, None) is not None:
            raise ValueError(f"token sequence {list(tokens)} is longer than the config it spells.")
        return config

    def mutate(self, config: Mapping[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        """Change one active decision to another value (AmoebaNet's op mutation), then re-fill
        parameters that became active (sampled) or inactive (dropped)."""
        mutable = [p for p in self.active_params(config)
                   if (p.low < p.high if isinstance(p, Float) else len(p.grid()) > 1)]
        if not mutable:
            return dict(config)
        p = mutable[int(rng.integers(len(mutable)))]
        new = dict(config)
        if isinstance(p, Float):
            value = config[p.name]
            while value == config[p.name]:
                value = p.sample(rng)
            new[p.name] = value
        else:
            current = token_of(p, config[p.name])
            others = [v for i, v in enumerate(p.grid()) if i != current]
            new[p.name] = others[int(rng.integers(len(others)))]
        return self.complete(new, rng)

    def define_by_run(self, trial: Any) -> dict[str, Any]:
        """Optuna define-by-run: suggest only the active parameters; returns the config."""
        return self.build(lambda p, _: p.suggest(trial))

    def to_tune(self, tune: Any) -> dict[str, Any]:
        """Ray Tune domains; conditional parameters become ``sample_from`` (``None`` if inactive).

        Args:
            tune: the ``ray.tune`` module (passed in so that ``spaces`` never imports Ray).
        """
        domains: dict[str, Any] = {}
        for p in self.params:
            if p.condition is None:
                domains[p.name] = p.tune_domain(tune)
            else:
                domains[p.name] = tune.sample_from(_ConditionalSampler(p))
        return domains

    def with_overrides(self, overrides: Mapping[str, Any]) -> Space:
        """A new space with some parameters narrowed, widened or fixed.

        ``{"lr": {"low": 1e-3}}`` changes fields; ``{"optimizer": "SGD"}`` (a plain value) fixes
        the parameter to that one value.
        """
        params = list(self.params)
        for name, change in overrides.items():
            if name not in self._by_name:
                raise ValueError(
                    f"override names parameter {name!r}, which space {self.name!r} does not have."
                    f"{closest(name, self.names)} Parameters: {', '.join(self.names)}."
                )
            index = self.names.index(name)
            old = params[index]
            if isinstance(change, Mapping):
                allowed = _OVERRIDABLE[type(old)]
                bad = [k for k in change if k not in allowed]
                if bad:
                    raise ValueError(
                        f"override of {name!r} sets {bad[0]!r}, but a {type(old).__name__} "
                        f"parameter takes only {', '.join(allowed)}.{closest(bad[0], allowed)}"
                    )
                params[index] = replace(old, **change)
                self._check_narrowing(old, params[index])
            else:
                if not old.contains(change):
                    raise ValueError(
                        f"override fixes {name!r} to {change!r}, but it must be {old.describe()}."
                    )
                params[index] = Categorical(name, (change,), condition=old.condition)
        return replace(self, params=tuple(params))


    def _check_narrowing(self, old: Param, new: Param) -> None:
        """Overrides may not add categorical values, nor widen a parameter that decides which
        others exist: the trainable knows only the original values (say, up to 4 conv layers)."""
        if isinstance(old, Categorical):
            extra = [c for c in new.choices if not old.contains(c)]  # type: ignore[union-attr]
            if extra:
                raise ValueError(
                    f"`{old.name}.choices` may only narrow {list(old.choices)}, but adds "
                    f"{extra[0]!r}."
                )
        elif any(p.condition is not None and p.condition.param == old.name for p in self.params):
            if new.low < old.low or new.high > old.high:  # type: ignore[union-attr]
                raise ValueError(
                    f"`{old.name}` decides which parameters exist, so it may only narrow "
                    f"[{old.low}, {old.high}], not become [{new.low}, {new.high}]."  # type: ignore[union-attr]
                )


@dataclass(frozen=True)
class _ConditionalSampler:
    """A picklable ``tune.sample_from`` function for one conditional parameter."""

    param: Param

    def __call__(self, spec: Any) -> Any:
        condition = self.param.condition
        if condition is None or not condition.holds(
            {condition.param: spec.config.get(condition.param)}
        ):
            return None
        # Tune passes no random state to sample_from; draw the seed from numpy's global state,
        # which Tune's own `seed`/`random_state` handling sets.
        return self.param.sample(np.random.default_rng(np.random.randint(2**31)))
