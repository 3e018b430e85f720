"""The fields an op declares: what each value must be, its default and meaning — one source for the
loader's validation (messages with PyTorch's words), the JSON Schema and the README's field lists.

A `Field` pairs a name with a `Kind`. A kind reads a `Value` (as the user wrote it) in a `FieldContext`
(the stack's rank, and where to report), returns the typed value or BAD after reporting the problem,
and describes itself as a JSON Schema fragment. Per-axis kinds broadcast a scalar to the rank.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from convcalc.stack.values import BAD, Value, is_int, is_number

#: JSON Schema of one field's value (a fragment of the stack format's schema).
Schema = dict[str, Any]


class Required:
    """The default of a field the op cannot do without."""

    def __repr__(self) -> str:
        return "<required>"


REQUIRED: Final = Required()


def quote_all(words: Sequence[str]) -> str:
    return ", ".join(f"'{w}'" for w in words)


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """Ends a sentence: `; did you mean 'x'?` for the closest choice, else a full stop."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean '{close[0]}'?" if close else "."


def axes_text(n: int) -> str:
    return "1 spatial axis" if n == 1 else f"{n} spatial axes"


def plural(n: int, word: str) -> str:
    if n == 1:
        return f"1 {word}"
    return f"{n} {word[:-1]}ies" if word.endswith("y") else f"{n} {word}s"


class FieldContext(Protocol):
    """What a kind needs from the reader: the stack's rank (None while unknown) and a way to report."""

    @property
    def rank(self) -> int | None: ...

    @property
    def rank_source(self) -> str: ...

    def problem(self, message: str, value: Value, field: str) -> None: ...


class Kind(Protocol):
    def read(self, name: str, value: Value, ctx: FieldContext) -> object: ...

    def schema(self) -> Schema: ...

    def broadcast(self, default: object, rank: int) -> object: ...


@dataclass(frozen=True)
class Scalar:
    """A scalar that must pass `check`: words for messages (`one`, `many`) and its JSON Schema."""

    one: str
    many: str
    check: Callable[[object], bool]
    json: Schema
    convert: Callable[[Any], object] = lambda v: v

    def read(self, name: str, value: Value, ctx: FieldContext) -> object:
        if value.items is None and value.pairs is None and self.check(value.data):
            return self.convert(value.data)
        ctx.problem(f"{name} must be {self.one}, {value.got()}", value, name)
        return BAD

    def schema(self) -> Schema:
        return dict(self.json)

    def broadcast(self, default: object, rank: int) -> object:
        return default


POS_INT: Final = Scalar(
    "a positive integer", "positive integers", lambda v: is_int(v) and v >= 1, {"type": "integer", "minimum": 1}
)
NONNEG_INT: Final = Scalar(
    "a non-negative integer", "non-negative integers", lambda v: is_int(v) and v >= 0, {"type": "integer", "minimum": 0}
)
INT: Final = Scalar("an integer", "integers", is_int, {"type": "integer"})
POS_INT_OR_NULL: Final = Scalar(
    "a positive integer or null",
    "entries (positive integers, or null to keep that axis)",
    lambda v: v is None or (is_int(v) and v >= 1),
    {"type": ["integer", "null"], "minimum": 1},
)
POS_NUMBER: Final = Scalar(
    "a positive number",
    "positive numbers",
    lambda v: is_number(v) and v > 0,
    {"type": "number", "exclusiveMinimum": 0},
    float,
)
NUMBER: Final = Scalar("a number", "numbers", is_number, {"type": "number"}, float)
BOOL: Final = Scalar("true or false", "booleans", lambda v: isinstance(v, bool), {"type": "boolean"})
PROBABILITY: Final = Scalar(
    "a number in [0, 1)",
    "numbers",
    lambda v: is_number(v) and 0 <= v < 1,
    {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
    float,
)


def _list_of(kind: Scalar, ctx: FieldContext, what: str = "") -> str:
    if ctx.rank is None:
        return f"a list with one entry per spatial axis ({what or kind.many})"
    if ctx.rank == 1 and not what:
        return f"a list of 1 {kind.one.removeprefix('a ')}"
    return f"a list of {ctx.rank} {what or kind.many}"


def _wrong_length(name: str, value: Value, ctx: FieldContext) -> bool:
    """Report a per-axis list whose length is not the rank; True if it was wrong."""
    assert value.items is not None
    if ctx.rank is None or len(value.items) == ctx.rank:
        return False
    ctx.problem(
        f"{name} has {plural(len(value.items), 'entry')} but the input{ctx.rank_source} has {axes_text(ctx.rank)}",
        value,
        name,
    )
    return True


@dataclass(frozen=True)
class PerAxis:
    """A scalar broadcast to every spatial axis, or a list of exactly one per axis."""

    each: Scalar

    def read(self, name: str, value: Value, ctx: FieldContext) -> object:
        allowed = f"{self.each.one} or {_list_of(self.each, ctx)}"
        if value.items is not None:
            bad = _wrong_length(name, value, ctx)
            values = []
            for entry in value.items:
                if entry.items is None and entry.pairs is None and self.each.check(entry.data):
                    values.append(self.each.convert(entry.data))
                else:
                    ctx.problem(f"{name} must be {allowed}, {entry.got()} in {value.show()}", entry, name)
                    bad = True
            return BAD if bad else tuple(values)
        if value.pairs is None and self.each.check(value.data):
            return (self.each.convert(value.data),) * (ctx.rank or 1)
        ctx.problem(f"{name} must be {allowed}, {value.got()}", value, name)
        return BAD

    def schema(self) -> Schema:
        one = self.each.schema()
        return {"oneOf": [one, {"type": "array", "items": one, "minItems": 1, "maxItems": 3}]}

    def broadcast(self, default: object, rank: int) -> object:
        return default if isinstance(default, tuple) or default is None else (default,) * rank


@dataclass(frozen=True)
class Choice:
    """One of a few words; `aliases` map other spellings to a canonical one."""

    choices: tuple[str, ...]
    aliases: Mapping[str, str] = field(default_factory=dict)

    def read(self, name: str, value: Value, ctx: FieldContext) -> object:
        data = value.data
        if value.items is None and value.pairs is None and isinstance(data, str):
            if data in self.choices:
                return data
            if data in self.aliases:
                return self.aliases[data]
        words = [*self.choices, *self.aliases]
        hint = did_you_mean(data, words).rstrip(".") if isinstance(data, str) else ""
        also = f" (or {quote_all(list(self.aliases))})" if self.aliases else ""
        ctx.problem(f"{name} must be one of {quote_all(self.choices)}{also}, {value.got()}{hint}", value, name)
        return BAD

    def schema(self) -> Schema:
        return {"enum": [*self.choices, *self.aliases]}

    def broadcast(self, default: object, rank: int) -> object:
        return default


@dataclass(frozen=True)
class PaddingKind:
    """`padding`: an int, a per-axis list whose entries may be [before, after] pairs, or a mode word.

    pairs: whether [before, after] pairs are allowed; modes: the mode words allowed ('same', 'valid',
    'same_lower'); negative: whether negative sizes (cropping) are allowed; `refusals` explain why a
    word or a pair is refused for this op (said after the message).
    """

    pairs: bool = True
    modes: tuple[str, ...] = ()
    negative: bool = False
    mode_refusal: str = ""
    pair_refusal: str = ""

    def _entry(self) -> Scalar:
        return INT if self.negative else NONNEG_INT

    def read(self, name: str, value: Value, ctx: FieldContext) -> object:
        entry = self._entry()
        if not self.pairs:
            allowed = f"{entry.one} or {_list_of(entry, ctx)}"
        else:
            each = f"(each {entry.one} or a [before, after] pair)"
            allowed = f"{entry.one} or {_list_of(entry, ctx, 'entries')} {each}"
        if self.modes:
            words = " or ".join(quote_all(self.modes).rsplit(", ", 1)) if len(self.modes) > 1 else f"'{self.modes[0]}'"
            allowed = allowed.replace(" or ", ", ", 1) + f", {words}"
        data = value.data
        is_scalar = value.items is None and value.pairs is None
        if is_scalar and isinstance(data, str) and data in ("same", "valid", "same_lower"):
            if data in self.modes:
                return data
            self.report(ctx, name, value, allowed, f" ({self.mode_refusal})" if self.mode_refusal else "")
            return BAD
        if is_scalar and entry.check(data):
            assert is_int(data)
            return ((data, data),) * (ctx.rank or 1)
        if value.items is None:
            self.report(ctx, name, value, allowed, "")
            return BAD
        bad = _wrong_length(name, value, ctx)
        result: list[tuple[int, int]] = []
        for axis in value.items:
            single = axis.data
            if axis.items is None and axis.pairs is None and entry.check(single):
                assert is_int(single)
                result.append((single, single))
                continue
            if axis.items is not None and self.pairs and len(axis.items) == 2:
                before, after = (side.data for side in axis.items)
                if entry.check(before) and entry.check(after):
                    assert is_int(before)
                    assert is_int(after)
                    result.append((before, after))
                    continue
            reason = (
                f" ({self.pair_refusal})" if axis.items is not None and not self.pairs and self.pair_refusal else ""
            )
            ctx.problem(f"{name} must be {allowed}, {axis.got()} in {value.show()}{reason}", axis, name)
            bad = True
        return BAD if bad else tuple(result)

    @staticmethod
    def report(ctx: FieldContext, name: str, value: Value, allowed: str, reason: str) -> None:
        ctx.problem(f"{name} must be {allowed}, {value.got()}{reason}", value, name)

    def schema(self) -> Schema:
        entry = self._entry().schema()
        pair = {"type": "array", "items": entry, "minItems": 2, "maxItems": 2}
        per_axis: Schema = {"type": "array", "items": {"oneOf": [entry, pair]} if self.pairs else entry}
        options: list[Schema] = [entry, {**per_axis, "minItems": 1, "maxItems": 3}]
        if self.modes:
            options.append({"enum": list(self.modes)})
        return {"oneOf": options}

    def broadcast(self, default: object, rank: int) -> object:
        if is_int(default):
            return ((default, default),) * rank
        return default


@dataclass(frozen=True)
class LayerName:
    """The name of another layer (resolved with the graph: it must be defined above)."""

    def read(self, name: str, value: Value, ctx: FieldContext) -> object:
        if value.items is None and value.pairs is None and isinstance(value.data, str) and value.data:
            return value.data
        ctx.problem(f"{name} must name a layer above this one, {value.got()}", value, name)
        return BAD

    def schema(self) -> Schema:
        return {"type": "string", "minLength": 1}

    def broadcast(self, default: object, rank: int) -> object:
        return default


@dataclass(frozen=True)
class IntList:
    """A non-empty list of integers of `each` kind, of any length (split sizes, a channel range)."""

    each: Scalar
    length: int | None = None

    def read(self, name: str, value: Value, ctx: FieldContext) -> object:
        size = f"{self.length} " if self.length else ""
        allowed = f"a list of {size}{self.each.many}"
        if value.items is None or not value.items or (self.length is not None and len(value.items) != self.length):
            ctx.problem(f"{name} must be {allowed}, {value.got()}", value, name)
            return BAD
        out = []
        for entry in value.items:
            if entry.items is None and entry.pairs is None and self.each.check(entry.data):
                out.append(self.each.convert(entry.data))
            else:
                ctx.problem(f"{name} must be {allowed}, {entry.got()} in {value.show()}", entry, name)
                return BAD
        return tuple(out)

    def schema(self) -> Schema:
        schema: Schema = {"type": "array", "items": self.each.schema(), "minItems": self.length or 1}
        if self.length:
            schema["maxItems"] = self.length
        return schema

    def broadcast(self, default: object, rank: int) -> object:
        return default


#: A default computed from the layer's other (already validated) values and the rank.
DefaultRule = Callable[[Mapping[str, Any], int], object]


@dataclass(frozen=True)
class Field:
    """One field of an op: its name, kind, what it means (for the JSON Schema and the README) and its
    default — a value as it would be written (broadcast to the rank for per-axis kinds), REQUIRED, or
    a rule over the other values (`rule`, with `default` then only describing it: 'kernel')."""

    name: str
    kind: Kind
    doc: str
    default: object = None
    rule: DefaultRule | None = None

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def fill(self, values: Mapping[str, Any], rank: int) -> object:
        """The default for this layer, given its other values and the rank."""
        if self.rule is not None:
            return self.rule(values, rank)
        return self.kind.broadcast(self.default, rank)

    def schema(self) -> Schema:
        schema = {**self.kind.schema(), "description": self.doc}
        if self.rule is None and self.default is not REQUIRED and self.default is not None:
            schema["default"] = self.default
        return schema
