"""Typed option records built from user mappings (YAML), with one clear error per mistake.

Every options dataclass in the project (searcher, scheduler and trainable settings) is built by
:func:`parse_options`, which rejects unknown keys (naming the close ones) and wrong types before
the dataclass's own ``__post_init__`` checks ranges.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Literal, Mapping, TypeVar, Union

from spaces.space import closest

__all__ = ["check_range", "parse_options"]

T = TypeVar("T")


def _type_name(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(hint))
    if hint is type(None):
        return "null"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(
        hint, getattr(hint, "__name__", str(hint))
    )


def _convert(hint: Any, value: Any, where: str) -> Any:
    """``value`` as ``hint`` allows, or ``TypeError``/``ValueError`` naming ``where``."""
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        for arg in typing.get_args(hint):
            try:
                return _convert(arg, value, where)
            except (TypeError, ValueError):
                continue
        raise TypeError(f"`{where}` is {value!r}, but must be {_type_name(hint)}.")
    if origin is Literal:
        if value not in typing.get_args(hint):
            allowed = [str(a) for a in typing.get_args(hint)]
            raise ValueError(
                f"`{where}` is {value!r}, but must be {_type_name(hint)}."
                f"{closest(str(value), allowed)}"
            )
        return value
    if hint is type(None):
        if value is not None:
            raise TypeError(f"`{where}` is {value!r}, but must be null.")
        return None
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise TypeError(f"`{where}` is {value!r}, but must be a mapping.")
        return dict(value)
    if dataclasses.is_dataclass(hint):
        return value if isinstance(value, hint) else parse_options(hint, value, where)
    if hint is bool:
        if not isinstance(value, bool):
            raise TypeError(f"`{where}` is {value!r}, but must be true or false.")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"`{where}` is {value!r}, but must be an integer.")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"`{where}` is {value!r}, but must be a number.")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise TypeError(f"`{where}` is {value!r}, but must be a string.")
        return value
    return value


def parse_options(cls: type[T], data: Mapping[str, Any] | None, where: str) -> T:
    """Build the dataclass ``cls`` from ``data``, naming ``where.key`` in every error."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise TypeError(f"`{where}` is {data!r}, but must be a mapping of options.")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    for key in data:
        if key not in fields:
            allowed = ", ".join(fields) or "none"
            raise ValueError(
                f"`{where}.{key}` is not an option.{closest(str(key), list(fields))} "
                f"Allowed: {allowed}."
            )
    values = {k: _convert(hints[k], v, f"{where}.{k}") for k, v in data.items()}
    try:
        return cls(**values)
    except ValueError as e:
        message = str(e)
        name = message[1:].split("`", 1)[0] if message.startswith("`") else ""
        if name.split(".")[0] in fields:  # "`epochs` is 0 ..." -> "`train.epochs` is 0 ..."
            raise ValueError(f"`{where}.{message[1:]}") from None
        raise ValueError(f"`{where}`: {message}") from None


def check_range(name: str, value: float | None, *, low: float | None = None,
                high: float | None = None, low_open: bool = False) -> None:
    """Raise ``ValueError`` unless ``low <= value <= high`` (``low < value`` when ``low_open``)."""
    if value is None:
        return
    if not math.isfinite(value):
        raise ValueError(f"`{name}` is {value!r}, but must be a finite number.")
    if low is not None and (value <= low if low_open else value < low):
        raise ValueError(f"`{name}` is {value!r}, but must be {'>' if low_open else '>='} {low}.")
    if high is not None and value > high:
        raise ValueError(f"`{name}` is {value!r}, but must be <= {high}.")
