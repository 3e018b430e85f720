"""Values as the user wrote them, with where they were written: what field validation reads.

A stack file's values arrive through the YAML reader, an imported model's through the ONNX or torch
importer; both hand the same `Value` trees to the same validation, so every message names the place
(file:line:column, or the model's node) and the value as given.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Final, TypeGuard

from convcalc.notation import printable, shorten
from convcalc.stack.spec import Location

#: Exponent notation, which YAML 1.1 reads as a string unless written `1.0e+3`.
_EXPONENT: Final = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def plain_number(text: str) -> str:
    """Exponent notation (`1e3`) as YAML reads a number: `1000` when it is a whole number, else
    with a dot and a signed exponent (`2.0e-1`).

    >>> plain_number("1e3"), plain_number("2e-1")
    ('1000', '2.0e-1')
    """
    from fractions import Fraction

    value = Fraction(text)
    if value.denominator == 1 and abs(value) < 10**18:
        return str(value.numerator)
    mantissa, _, exponent = text.lower().partition("e")
    if "." not in mantissa:
        mantissa += ".0"
    return f"{mantissa}e{exponent if exponent.startswith(('-', '+')) else '+' + exponent}"


class Invalid:
    """Marks a value that failed validation (its problem is recorded) or cannot be read at all."""

    def __repr__(self) -> str:
        return "<invalid>"


BAD: Final = Invalid()


def is_int(value: object) -> TypeGuard[int]:
    # bool is a subclass of int in Python: `true` must not pass as 1.
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> TypeGuard[int | float]:
    return (is_int(value) or isinstance(value, float)) and math.isfinite(value)


@dataclass(frozen=True, slots=True)
class Value:
    """One value: a scalar (its Python value in `data`, as written in `raw`), a list (`items`) or a
    mapping (`pairs`). `tag` is a non-standard type tag as written (`!!python/object`), else ''.
    `note` is said after every problem about it (block expansion: where the value came from)."""

    data: object
    where: Location
    raw: str = ""
    tag: str = ""
    items: tuple[Value, ...] | None = None
    pairs: tuple[tuple[Value, Value], ...] | None = None
    note: str = ""

    @property
    def is_list(self) -> bool:
        return self.items is not None

    @property
    def is_mapping(self) -> bool:
        return self.pairs is not None

    def show(self, depth: int = 0) -> str:
        """The value as the user wrote it, short enough for a message."""
        if depth > 2:
            return "..."
        prefix = f"{self.tag} " if self.tag else ""
        if self.items is not None:
            shown = [item.show(depth + 1) for item in self.items[:6]]
            if len(self.items) > 6:
                shown.append("...")
            return prefix + "[" + ", ".join(shown) + "]"
        if self.pairs is not None:
            shown = [f"{k.show(depth + 1)}: {v.show(depth + 1)}" for k, v in self.pairs[:4]]
            if len(self.pairs) > 4:
                shown.append("...")
            return prefix + "{" + ", ".join(shown) + "}"
        # Cut and escaped: a 2 MB value or a name with a newline is shown short, on one line.
        if self.tag or self.data is BAD:
            return shorten(printable(f"{self.tag} {self.raw}".strip()))
        if isinstance(self.data, str):
            return f"'{shorten(printable(self.data))}'"
        if self.data is None:
            return "null"
        return shorten(self.raw or str(self.data))

    def got(self) -> str:
        """`got <value>` plus a hint where the type is not what the text suggests."""
        text = f"got {self.show()}"
        value = self.data
        if isinstance(value, bool):
            text += " (a boolean)"
        elif isinstance(value, float) and value.is_integer():
            text += f" (a float: write {int(value)})"
        elif isinstance(value, str) and re.fullmatch(r"[-+]?\d+(\.\d*)?", value.strip()):
            text += " (a quoted string, not a number)"
        elif isinstance(value, str) and _EXPONENT.fullmatch(value.strip()):
            # YAML 1.1 reads `1e3` (no dot in the mantissa, no sign in the exponent) as a string.
            text += f" ('{value.strip()}' is a string to YAML; write {plain_number(value.strip())})"
        elif self.items is not None:
            text += " (a list)"
        elif self.pairs is not None:
            text += " (a mapping)"
        return text


def scalar(data: object, where: Location | None = None, raw: str | None = None) -> Value:
    """A plain Python scalar as a Value (for importers and the calculators)."""
    return Value(data, where or Location(), raw=repr(data) if raw is None else raw)


def plain(data: object, where: Location | None = None) -> Value:
    """A plain Python value (scalars, lists, dicts) as a Value tree, every part at `where`."""
    loc = where or Location()
    if isinstance(data, (list, tuple)):
        return Value(None, loc, items=tuple(plain(d, loc) for d in data))
    if isinstance(data, dict):
        return Value(None, loc, pairs=tuple((scalar(k, loc, str(k)), plain(v, loc)) for k, v in data.items()))
    if isinstance(data, bool):
        return scalar(data, loc, "true" if data else "false")
    if data is None:
        return scalar(None, loc, "null")
    return scalar(data, loc, str(data) if not isinstance(data, str) else data)
