"""A search space written by hand in an experiment file, compiled to a :class:`Space`.

The ``space:`` mapping of an experiment YAML file (already parsed into Python) becomes the same
:class:`~spaces.space.Space` the built-in spaces are, so every searcher (Optuna define-by-run,
random, grid, evolution's ``mutate``, the RL and Q-learning tokens) works on it unchanged.

Syntax: one entry per parameter, in file order; a condition may read only an EARLIER parameter.

* ``lr: {float: [1.0e-4, 1.0e-1], log: true}``: a float in ``[low, high]``. Optional
  ``log: true`` (low must be > 0) and ``grid_points: N`` (the RL/grid token grid, default 10).
  Write floats in exponent form with a dot (``1.0e-4``): YAML reads ``1e-4`` as a string.
* ``layers: {int: [1, 4]}``: an integer in ``[low, high]``. Optional ``step: N`` (>= 1, and
  ``high - low`` a multiple of it).
* ``optimizer: [adam, sgd]`` or ``kind: {choice: [a, b, c]}``: one of the listed values
  (strings, numbers or booleans, no duplicates).
* ``dropout: 0.1``: a scalar (number, string, boolean) is a fixed value, a one-choice categorical.
* ``per: P`` (on ``float``, ``int`` or ``choice``): one parameter per layer. ``P`` must be an
  earlier ``int`` parameter with no condition and low >= 1. ``width: {int: [16, 256], step: 16,
  per: layers}`` with ``layers`` in ``[1, 4]`` makes ``width_1 .. width_4``; ``width_k`` is
  active when ``layers >= k`` (no condition where ``k <= low``). The names may not clash with
  another parameter, and ``width`` itself is no parameter afterwards.
* ``when: {P: V}``: active only when the earlier parameter ``P`` matches. ``V`` is a scalar
  (``==``), a non-empty list (``in``), or a one-key mapping ``{op: value}`` with ``op`` one of
  ``== != >= > <= < in``. The compared values must be values ``P`` can take, and the condition
  must be able to hold. A parameter takes ``per`` or ``when``, not both (one condition each).

A parameter name is letters, digits and ``_``, starting with a letter or ``_``, and not a Python
keyword: it becomes a config key and a results column ``config/<name>``.

Every problem raises one ``ValueError`` or ``TypeError`` with a one-line message that names the
place (``space.<param>``), the value, the rule and the fix.

Example:
    >>> space = compile_space({
    ...     "optimizer": ["adam", "sgd"],
    ...     "layers": {"int": [1, 3]},
    ...     "width": {"int": [16, 64], "step": 16, "per": "layers"},
    ...     "momentum": {"float": [0.5, 0.99], "when": {"optimizer": "sgd"}},
    ... })
    >>> space.names
    ('optimizer', 'layers', 'width_1', 'width_2', 'width_3', 'momentum')
"""

from __future__ import annotations

import keyword
import math
import re
from dataclasses import replace
from typing import Any, Mapping

from spaces.space import (
    CONDITION_OPERATORS,
    Categorical,
    Condition,
    Float,
    Integer,
    Param,
    Space,
    closest,
)

__all__ = ["INLINE", "SPACE_SYNTAX", "compile_space"]

INLINE = "inline"  # the name of every space written in an experiment file

SPACE_SYNTAX = """\
space:
  lr: {float: [1.0e-4, 1.0e-1], log: true}         # float in [low, high]; grid_points: N
  optimizer: [adam, sgd, rmsprop]                  # a list is a categorical choice
  kind: {choice: [a, b, c]}                        # the same, long form
  layers: {int: [1, 4]}                            # integer in [low, high]; optional step: N
  width: {int: [16, 256], step: 16, per: layers}   # width_1..width_4, width_k if layers >= k
  momentum: {float: [0.5, 0.99], when: {optimizer: sgd}}               # when optimizer == sgd
  nesterov: {choice: [true, false], when: {optimizer: [sgd, rmsprop]}}  # a list means `in`
  units_3: {int: [8, 64], when: {layers: {">=": 3}}}  # ops: == != >= > <= < in
  dropout: 0.1                                     # a scalar is a fixed value
"""

_TYPE_KEYS = ("float", "int", "choice")
_KEYS: dict[str, tuple[str, ...]] = {
    "float": ("float", "log", "grid_points", "per", "when"),
    "int": ("int", "step", "per", "when"),
    "choice": ("choice", "per", "when"),
}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_ARTICLE = {"float": "a", "int": "an", "choice": "a"}
_SCALARS = (str, int, float, bool)
_HOW = ("must be a value, a list of choices or a mapping with one of the keys float, int, "
        "choice")


def compile_space(data: Mapping[str, Any], *, name: str = INLINE) -> Space:
    """Compile the ``space:`` mapping of an experiment file into a :class:`Space`.

    Args:
        data: parameter name -> definition, in file order (the syntax is in the module
            docstring and :data:`SPACE_SYNTAX`).
        name: the space's name (shown in messages and results).

    Returns:
        The space; ``per`` parameters are expanded into ``name_1 .. name_high``.

    Raises:
        ValueError, TypeError: with a one-line message naming ``space.<param>`` and the fix.
    """
    if not isinstance(name, str):
        raise TypeError(f"`name` is {name!r}, but must be a non-empty string.")
    if not name:
        raise ValueError(f"`name` is {name!r}, but must be a non-empty string.")
    if not isinstance(data, Mapping):
        raise TypeError(f"`space` is {data!r}, but must be a mapping of parameter names to "
                        "definitions, e.g. `space: {lr: {float: [1.0e-4, 1.0e-1], log: true}}`.")
    if not data:
        raise ValueError("`space` is empty, but must define at least one parameter, e.g. "
                         "`lr: {float: [1.0e-4, 1.0e-1], log: true}`.")
    for key in data:
        _check_name(key)
    compiler = _Compiler(tuple(data))
    for key, value in data.items():
        compiler.add(key, value)
    return Space(name, tuple(compiler.params.values()))


def _check_name(key: Any) -> None:
    rule = ("a name of letters, digits and `_` that starts with a letter or `_` and is not a "
            "Python keyword (it becomes the config key and column `config/<name>`); rename it")
    if not isinstance(key, str):
        raise TypeError(f"`space` has the parameter name {key!r}, but must have {rule}.")
    if not _NAME.match(key) or keyword.iskeyword(key):
        raise ValueError(f"`space` has the parameter name {key!r}, but must have {rule}.")


class _Compiler:
    """Compiles one parameter at a time, keeping what earlier parameters became."""

    def __init__(self, file_names: tuple[str, ...]) -> None:
        self.file_names = file_names
        self.params: dict[str, Param] = {}  # compiled so far, in order
        self.expanded: dict[str, tuple[str, ...]] = {}  # per parameter -> the names it made

    def add(self, name: str, value: Any) -> None:
        """Compile one parameter (``per`` makes several) after the earlier ones."""
        for param in self._compile(name, value):
            self.params[param.name] = param

    def _compile(self, name: str, value: Any) -> list[Param]:
        where = f"`space.{name}`"
        if value is None or (isinstance(value, Mapping) and not value):
            raise ValueError(f"{where} is {value!r}, but {_HOW}; write a fixed value as "
                             f"`{name}: 0.1` and a choice as `{name}: [a, b]`.")
        if isinstance(value, Mapping):
            return self._mapping(name, value)
        if isinstance(value, (list, tuple)):
            return [_categorical(name, value)]
        if isinstance(value, _SCALARS):
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{where} is {value!r}, but a fixed value must be finite.")
            return [Categorical(name, (value,))]
        raise TypeError(f"{where} is {value!r}, but {_HOW}.")

    def _mapping(self, name: str, value: Mapping[Any, Any]) -> list[Param]:
        where = f"`space.{name}`"
        kinds = [k for k in _TYPE_KEYS if k in value]
        if not kinds:
            unknown = [str(k) for k in value if k not in {*_KEYS["float"], *_KEYS["int"]}]
            hint = closest(unknown[0], _TYPE_KEYS) if unknown else ""
            raise ValueError(f"{where} is {dict(value)!r}, but must have one of the keys float, "
                             f"int, choice.{hint}")
        if len(kinds) > 1:
            raise ValueError(f"{where} has the keys {' and '.join(kinds)}, but must have exactly "
                             "one of float, int, choice.")
        kind = kinds[0]
        allowed = _KEYS[kind]
        for key in value:
            if key not in allowed:
                raise ValueError(
                    f"`space.{name}.{key}` is {value[key]!r}, but {_ARTICLE[kind]} `{kind}` "
                    f"parameter takes only the keys {', '.join(allowed)}."
                    f"{closest(str(key), allowed)}")
        if "per" in value and "when" in value:
            raise ValueError(f"{where} has both `per` and `when`, but may have only one (one "
                             "condition per parameter); write the per-layer parameters out with "
                             "their own `when`.")
        # Each Param is built once under its display name, so that its own checks (bounds,
        # step, log, grid_points, choices) name `space.<param>`, then renamed.
        if kind == "choice":
            proto: Param = _categorical(name, value["choice"], key="choice")
        elif kind == "int":
            low, high = _bounds(name, "int", value["int"])
            step = {"step": value["step"]} if "step" in value else {}
            proto = replace(Integer(f"space.{name}", low, high, **step), name=name)
        else:
            low, high = _bounds(name, "float", value["float"])
            log = value.get("log", False)
            if not isinstance(log, bool):
                raise TypeError(f"`space.{name}.log` is {log!r}, but must be true or false.")
            points = {"grid_points": value["grid_points"]} if "grid_points" in value else {}
            proto = replace(Float(f"space.{name}", low, high, log=log, **points), name=name)
        if "when" in value:
            return [replace(proto, condition=self._when(name, value["when"]))]
        if "per" in value:
            return self._per(name, proto, value["per"])
        return [proto]

    def _earlier(self, where: str, name: str, ref: Any) -> Param:
        """The earlier parameter ``ref`` that ``name`` reads (``where`` is the key quoted)."""
        if not isinstance(ref, str):
            raise TypeError(f"{where} names {ref!r}, but must name an earlier parameter.")
        if ref in self.params:
            return self.params[ref]
        if ref == name:
            raise ValueError(f"{where} names {ref!r}, but a parameter cannot depend on itself; "
                             "name an earlier parameter.")
        if ref in self.expanded:
            made = self.expanded[ref]
            raise ValueError(f"{where} names {ref!r}, but `per` turned it into {made[0]} .. "
                             f"{made[-1]}; name one of those.")
        if ref in self.file_names:
            raise ValueError(f"{where} names {ref!r}, but {ref} is defined after {name}; it must "
                             f"be defined before {name} (move it up).")
        raise ValueError(f"{where} names {ref!r}, but there is no such earlier parameter."
                         f"{closest(ref, list(self.params))}")

    def _per(self, name: str, proto: Param, source: Any) -> list[Param]:
        where = f"`space.{name}.per`"
        if isinstance(proto, Categorical) and len(proto.choices) == 1:
            raise ValueError(f"{where} is {source!r}, but {name} is the fixed value "
                             f"{proto.choices[0]!r}, the same in every layer; drop `per` and "
                             f"write `{name}: {proto.choices[0]!r}`.")
        parent = self._earlier(where, name, source)
        if isinstance(parent, Categorical) and len(parent.choices) == 1:
            raise ValueError(f"{where} is {source!r}, but {source} is the fixed value "
                             f"{parent.choices[0]!r}; `per` needs an int range, e.g. "
                             f"`{source}: {{int: [1, 4]}}`.")
        if not isinstance(parent, Integer):
            raise ValueError(f"{where} is {source!r}, but must name an `int` parameter; "
                             f"{source} is {parent.describe()}.")
        if parent.condition is not None:
            c = parent.condition
            raise ValueError(f"{where} is {source!r}, but {source} is itself conditional (when "
                             f"{c.param} {c.op} {c.value!r}); `per` needs an unconditional "
                             "`int` parameter.")
        if parent.low < 1:
            raise ValueError(f"{where} is {source!r}, but {source} starts at {parent.low}; "
                             f"`per` needs low >= 1 (so that {name}_1 always exists).")
        names = tuple(f"{name}_{k}" for k in range(1, parent.high + 1))
        clash = next((n for n in names if n in self.file_names or n in self.params), None)
        if clash is not None:
            raise ValueError(f"{where} is {source!r}, which makes {names[0]} .. {names[-1]}, but "
                             f"{clash!r} is also a parameter; rename one of them.")
        self.expanded[name] = names
        return [replace(proto, name=n,
                        condition=None if k <= parent.low else Condition(source, ">=", k))
                for k, n in enumerate(names, start=1)]

    def _when(self, name: str, when: Any) -> Condition:
        where = f"`space.{name}.when`"
        example = "e.g. `when: {optimizer: sgd}`"
        if not isinstance(when, Mapping):
            raise TypeError(f"{where} is {when!r}, but must be a one-key mapping "
                            f"{{param: value}}, {example}.")
        if len(when) != 1:
            raise ValueError(f"{where} is {dict(when)!r}, but must have exactly one key (one "
                             f"condition per parameter), {example}.")
        ((ref, test),) = when.items()
        parent = self._earlier(where, name, ref)
        op, value = _operator(where, when, test)
        values = value if op == "in" else (value,)
        is_of = f"{ref} is {parent.describe()}"
        if op in ("==", "!=", "in"):
            if isinstance(parent, Float):
                raise ValueError(f"{where} is {dict(when)!r}, but {ref} is a float, which `{op}` "
                                 "almost never matches; compare it with >=, >, <= or <.")
            for v in values:
                if not parent.contains(v):
                    strings = [str(c) for c in parent.grid()]
                    hint = closest(v, strings) if isinstance(v, str) else ""
                    raise ValueError(f"{where} is {dict(when)!r}, but {v!r} is not a value of "
                                     f"{ref}, which is {parent.describe()}.{hint}")
        else:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{where} is {dict(when)!r}, but `{op}` must compare with a "
                                "number.")
            grid = parent.grid()
            if any(isinstance(c, bool) or not isinstance(c, (int, float)) for c in grid):
                raise ValueError(f"{where} is {dict(when)!r}, but {is_of}, and `{op}` needs "
                                 "numbers; use a value (==) or a list (in).")
        candidates = (parent.low, parent.high) if isinstance(parent, Float) else parent.grid()
        if not any(CONDITION_OPERATORS[op](c, value) for c in candidates):
            raise ValueError(f"{where} is {dict(when)!r}, but {is_of}, so it never holds; "
                             f"compare with a value {ref} can take.")
        return Condition(ref, op, value)


def _operator(where: str, when: Mapping[Any, Any], test: Any) -> tuple[str, Any]:
    """``(op, value)`` of a ``when`` value: scalar (==), list (in) or ``{op: value}``."""
    if isinstance(test, Mapping):
        if len(test) != 1:
            raise ValueError(f"{where} is {dict(when)!r}, but an operator mapping must have "
                             "exactly one key, e.g. `{\">=\": 3}`.")
        ((op, test),) = test.items()
        if op not in CONDITION_OPERATORS:
            swapped = str(op)[::-1]  # `=>` for `>=`
            hint = (f" Did you mean {swapped!r}?" if swapped in CONDITION_OPERATORS
                    else closest(str(op), [*CONDITION_OPERATORS]))
            raise ValueError(f"{where} is {dict(when)!r}, but the operator must be one of "
                             f"{' '.join(CONDITION_OPERATORS)}.{hint}")
        if op == "in" and not isinstance(test, (list, tuple)):
            raise TypeError(f"{where} is {dict(when)!r}, but `in` must be followed by a list, "
                            "e.g. `{in: [sgd, rmsprop]}`.")
    else:
        op = "in" if isinstance(test, (list, tuple)) else "=="
    values = test if op == "in" else (test,)
    if op == "in" and not values:
        raise ValueError(f"{where} is {dict(when)!r}, but the list of values is empty; list at "
                         "least one.")
    for v in values:
        if not isinstance(v, _SCALARS):
            raise TypeError(f"{where} is {dict(when)!r}, but compares with {v!r}; compare with "
                            "a number, string or boolean (a list means `in`).")
    return op, tuple(test) if op == "in" else test


def _bounds(name: str, kind: str, value: Any) -> tuple[Any, Any]:
    """``[low, high]`` of a float or int range, checked for shape (and numbers for floats)."""
    where = f"`space.{name}.{kind}`"
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        error = ValueError if isinstance(value, (list, tuple)) else TypeError
        example = "[1.0e-4, 1.0e-1]" if kind == "float" else "[1, 4]"
        raise error(f"{where} is {value!r}, but must be a two-element list [low, high], e.g. "
                    f"`{name}: {{{kind}: {example}}}`.")
    if kind == "int":
        return value[0], value[1]  # Integer's own check names `space.<param>.low/high`
    for attr, bound in zip(("low", "high"), value):
        if isinstance(bound, bool) or not isinstance(bound, (int, float)):
            hint = ""
            if isinstance(bound, str):
                try:
                    hint = (f"; YAML reads {bound} as a string, write it with a dot: "
                            f"{float(bound)!r}")
                except ValueError:
                    pass
            raise TypeError(f"`space.{name}.{attr}` is {bound!r}, but must be a number{hint}.")
    return float(value[0]), float(value[1])


def _categorical(name: str, choices: Any, key: str | None = None) -> Categorical:
    """A categorical from a list, checked by Categorical under the name ``space.<param>``."""
    if not isinstance(choices, (list, tuple)):
        raise TypeError(f"`space.{name}.{key}` is {choices!r}, but must be a list of values, "
                        f"e.g. `{name}: {{choice: [a, b]}}`.")
    seen: set[str] = set()
    for c in choices:
        if isinstance(c, _SCALARS) and repr(c) in seen:
            raise ValueError(f"`space.{name}` is {list(choices)!r}, but lists {c!r} twice; "
                             "remove one.")
        seen.add(repr(c))
    return replace(Categorical(f"space.{name}", tuple(choices)), name=name)
