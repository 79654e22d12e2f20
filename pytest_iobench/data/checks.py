"""The data layer's one way of checking values: a check takes a value and returns it normalised,
or raises ``Invalid`` whose text says what was given and what is valid.

The dataset schema (``schema.py``) names a check per key and a table of rules between keys;
each format module adds its own rules (``formats/registry.py``). Nothing here imports numpy,
so a format's declaration stays cheap to load.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


class Invalid(ValueError):
    """A value is not valid; the text (after ``key:``) says what was given and what is valid."""


Check = Callable[[Any], Any]


def _whole(value: Any) -> Any:
    """Floats that are whole numbers (YAML's 8.0) count as integers."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def integer(minimum: int | None = 0) -> Check:
    """A whole number, at least ``minimum`` (None: any)."""

    def check(value: Any) -> int:
        value = _whole(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid(f"{value!r} is not valid; give a whole number"
                          + (f" >= {minimum}" if minimum is not None else ""))
        if minimum is not None and value < minimum:
            raise Invalid(f"{value} is not valid; give a whole number >= {minimum}")
        return value

    return check


def byte_count(minimum: float) -> Check:
    """A size that DLIO files sometimes give as a float (114660.07): rounded to bytes."""

    def check(value: Any) -> int:
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or (isinstance(value, float) and not math.isfinite(value)) or value < minimum):
            raise Invalid(f"{value!r} is not valid; give a number of bytes >= {minimum:g}")
        return round(value)

    return check


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"{value!r} is not valid; give true or false")
    return value


def text(value: Any) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value:
        raise Invalid(f"{value!r} is not valid; give a non-empty string")
    return value


def choice(valid: tuple[str, ...] | Callable[[], tuple[str, ...]], what: str) -> Check:
    """One of ``valid`` (or of what ``valid()`` gives when checked), any case; the nearest
    name is suggested."""

    def check(value: Any) -> str:
        names = valid() if callable(valid) else valid
        if not isinstance(value, str) or value.lower() not in names:
            near = difflib.get_close_matches(str(value).lower(), names, n=1, cutoff=0.6)
            hint = f"; did you mean {near[0]}?" if near else ""
            raise Invalid(f"{value!r} is not a known {what}{hint} (valid: {', '.join(names)})")
        return value.lower()

    return check


def optional(check: Check, none: Any = None) -> Check:
    """``check``, or ``none`` for a null value."""
    return lambda value: none if value is None else check(value)


def dims(allow_none: bool = False) -> Check:
    """A list of positive whole numbers (``allow_none``: null entries for unlimited ones)."""

    def check(value: Any) -> tuple[int | None, ...]:
        if value is None:
            return ()
        if not isinstance(value, (list, tuple)):
            raise Invalid(f"{value!r} is not valid; give a list of positive whole numbers, such as [256, 256]")
        out: list[int | None] = []
        for item in value:
            if item is None and allow_none:
                out.append(None)
                continue
            item = _whole(item)
            if isinstance(item, bool) or not isinstance(item, int) or item < 1:
                raise Invalid(f"{list(value)!r} is not valid; give a list of positive whole numbers"
                              + (" (null for an unlimited dimension)" if allow_none else ""))
            out.append(item)
        return tuple(out)

    return check


def section(value: Any, keys: Mapping[str, Any]) -> Mapping[str, Any]:
    """A sub-section: a mapping (its keys are checked one by one by the caller)."""
    if not isinstance(value, Mapping):
        raise Invalid(f"{value!r} is not valid; give a mapping with keys {', '.join(keys)}")
    return value


def unknown_key(where: str, key: str, valid: list[str], prefix: str = "") -> str:
    """The problem line of an unknown key, with the nearest valid one."""
    near = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    hint = f"; did you mean {where}.{prefix}{near[0]}?" if near else ""
    return f"{where}.{prefix}{key}: unknown key{hint} (valid: {', '.join(valid)})"


@dataclass(frozen=True)
class Rule:
    """A rule between keys: when ``when(values)`` holds, ``key`` gets the problem ``message``
    (a format string over the values, ``str.format_map``, or a function of them). Rules are checked in order, after
    every key on its own was valid; the values are the spec's fields plus what the schema
    derives from them (``schema.Values``)."""

    key: str
    when: Callable[[Any], Any]
    #: a format string over the values, or a function of them for what a format string cannot say
    message: str | Callable[[Any], str]


__all__ = ["Check", "Invalid", "Rule", "boolean", "byte_count", "choice", "dims", "integer", "optional",
           "section", "text", "unknown_key"]
