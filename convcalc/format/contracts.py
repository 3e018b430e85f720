"""Reading a stack file's `expect:` and `ignore:` sections (see convcalc.stack.contracts for the meaning).

Problems are reported like a layer's: file:line:column of the value, field `expect` (or `ignore`),
the entry (`#3`, 1-based) and key, the value as written and what is allowed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from fractions import Fraction
from typing import Final

from convcalc.diagnostics import CODES
from convcalc.format.validate import Reporter, list_names
from convcalc.stack.contracts import MAX_ACCEPTED_SIZES, Bound, Expectation, SizeRange, Suppression
from convcalc.stack.fields import did_you_mean, plural
from convcalc.stack.spec import InputSpec, Location
from convcalc.stack.values import BAD, Value, is_int

#: The keys of one `expect:` entry, in the order the README documents them.
EXPECT_KEYS: Final = ("layer", "at", "rf", "jump", "shape", "params", "macs", "forbid", "accepts")
#: The keys of one `ignore:` entry written as a mapping.
IGNORE_KEYS: Final = ("code", "layer")
BOUND_KEYS: Final = ("min", "max")
ACCEPTS_KEYS: Final = ("min", "max", "step")

#: A count as text: `30e6`, `30M`, `1.5G`, `138_357_544` (YAML reads `30e6` as a string, not a number).
_COUNT: Final = re.compile(r"\s*([0-9][0-9_]*(?:\.[0-9]+)?)(?:[eE]\+?([0-9]{1,2}))?\s*([kKMGT]?)\s*")
_SUFFIX: Final = {"": 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_FRACTION: Final = re.compile(r"\s*([0-9]+)\s*(?:/\s*([0-9]+)\s*)?")
COUNT_TEXT: Final = "a non-negative integer (or text such as 30e6, 30M, 1.5G)"


class _Entry:
    """Reports problems of one entry (`expect #3, rf: ...`)."""

    def __init__(self, reporter: Reporter, section: str, index: int) -> None:
        self.reporter = reporter
        self.section = section
        self.label = f"entry #{index + 1}"
        self.ok = True

    def add(self, key: str | None, message: str, where: Location) -> None:
        self.ok = False
        who = self.label if key is None else f"{self.label}, {key}"
        self.reporter.add(f"{who}: {message}", where, field=self.section)


def _mapping(value: Value, entry: _Entry, key: str | None, allowed: Sequence[str]) -> dict[str, Value] | None:
    """A mapping's string keys to values; unknown, duplicate or non-string keys reported."""
    if value.pairs is None:
        return None
    out: dict[str, Value] = {}
    for k, v in value.pairs:
        name = k.data
        if name is False and k.raw.lower() == "no" and "forbid" in allowed:
            entry.add(
                key,
                "YAML reads the key `no` as false: write `forbid: [codes...]` for diagnostics that must not appear",
                k.where,
            )
        elif not isinstance(name, str):
            entry.add(key, f"keys must be names, {k.got()}", k.where)
        elif name not in allowed:
            entry.add(
                key,
                f"unknown key '{name}'{did_you_mean(name, allowed)} Allowed keys: {', '.join(allowed)}",
                k.where,
            )
        elif name in out:
            entry.add(key, f"duplicate key '{name}'", k.where)
        else:
            out[name] = v
    return out


def count_of(value: Value) -> int | None:
    """A non-negative integer count from an int, an integral float or text (`30e6`, `30M`); else None."""
    data = value.data
    if is_int(data):
        return data if data >= 0 else None
    if isinstance(data, float) and data.is_integer() and data >= 0:
        return int(data)
    if isinstance(data, str):
        match = _COUNT.fullmatch(data)
        if match is None:
            return None
        mantissa = Fraction(match.group(1).replace("_", ""))
        exact = mantissa * 10 ** int(match.group(2) or 0) * _SUFFIX[match.group(3)]
        return int(exact) if exact.denominator == 1 else None
    return None


def _bound(value: Value, entry: _Entry, key: str, least: int) -> Bound | None:
    """A bare count (exactly) or `{min: a, max: b}` (either may be left out)."""
    if value.pairs is None:
        n = count_of(value)
        if n is None or n < least:
            entry.add(key, f"must be {_count_words(least)} or {{min: ..., max: ...}}, {value.got()}", value.where)
            return None
        return Bound(n, n)
    fields = _mapping(value, entry, key, BOUND_KEYS)
    if fields is None:
        return None
    if not fields and value.pairs == ():
        entry.add(key, "give min, max or both, e.g. {min: 100}", value.where)
        return None
    if not fields:
        return None
    ends: dict[str, int] = {}
    for name, v in fields.items():
        n = count_of(v)
        if n is None or n < least:
            entry.add(key, f"{name} must be {_count_words(least)}, {v.got()}", v.where)
        else:
            ends[name] = n
    if len(ends) != len(fields):
        return None
    bound = Bound(ends.get("min"), ends.get("max"))
    if bound.min is not None and bound.max is not None and bound.min > bound.max:
        entry.add(key, f"min {bound.min} is above max {bound.max}", value.where)
        return None
    return bound


def _count_words(least: int) -> str:
    return COUNT_TEXT if least == 0 else f"an integer ≥ {least} (or text such as 30e6, 30M)"


def _per_axis(value: Value, entry: _Entry, key: str, rank: int | None) -> list[Value] | None:
    """One value for every axis, or a list with one per axis."""
    if value.items is None:
        return [value]
    if not value.items or (rank is not None and len(value.items) != rank):
        want = "one value per spatial axis" if rank is None else plural(rank, "value") + " (one per spatial axis)"
        entry.add(key, f"a list must hold {want}, {value.got()}", value.where)
        return None
    return list(value.items)


def _jump(value: Value, entry: _Entry) -> Fraction | None:
    data = value.data
    if is_int(data) and data > 0:
        return Fraction(data)
    if isinstance(data, str):
        match = _FRACTION.fullmatch(data)
        if match is not None and int(match.group(1)) > 0 and int(match.group(2) or 1) > 0:
            return Fraction(int(match.group(1)), int(match.group(2) or 1))
    entry.add("jump", f"must be a positive integer or a fraction such as '1/2', {value.got()}", value.where)
    return None


def _sizes(value: Value, entry: _Entry, key: str, rank: int | None) -> InputSpec | None:
    """`at`: an input shape [channels, spatial...] (or '3x224x224') with the stack's number of axes."""
    items = value.items
    if items is None and isinstance(value.data, str):
        parts = re.split(r"\s*[x×X,]\s*", value.data.strip())
        items = tuple(Value(int(p) if re.fullmatch("[0-9]+", p) else p, value.where, raw=p) for p in parts)
    if items is None or not 2 <= len(items) <= 4:
        entry.add(
            key, f"must be an input shape [channels, spatial sizes...], e.g. [3, 224, 224], {value.got()}", value.where
        )
        return None
    sizes: list[int] = []
    for item in items:
        if not is_int(item.data) or item.data < 1:
            entry.add(key, f"sizes must be positive integers, {item.got()}", item.where)
            return None
        sizes.append(item.data)
    if rank is not None and len(sizes) - 1 != rank:
        entry.add(key, f"must have {plural(rank, 'spatial size')} as the stack's input has, {value.got()}", value.where)
        return None
    return InputSpec(sizes[0], tuple(sizes[1:]))


def _shape(value: Value, entry: _Entry) -> tuple[int | None, ...] | None:
    items = value.items
    if not items or len(items) > 4:
        entry.add(
            "shape",
            f"must be an output shape [channels, spatial sizes...] (null: any size), {value.got()}",
            value.where,
        )
        return None
    out: list[int | None] = []
    for item in items:
        if item.data is None and not item.is_list and not item.is_mapping:
            out.append(None)
        elif is_int(item.data) and item.data >= 1:
            out.append(item.data)
        else:
            entry.add("shape", f"sizes must be positive integers or null (any size), {item.got()}", item.where)
            return None
    return tuple(out)


def _code(value: Value, entry: _Entry, key: str) -> str | None:
    code = value.data
    if isinstance(code, str) and code in CODES:
        return code
    shown = code if isinstance(code, str) else ""
    entry.add(
        key,
        f"unknown diagnostic code {value.show()}{did_you_mean(shown, list(CODES))} Codes: {', '.join(CODES)}",
        value.where,
    )
    return None


def _codes(value: Value, entry: _Entry) -> tuple[str, ...] | None:
    items = value.items if value.items is not None else (value,)
    codes = [_code(item, entry, "forbid") for item in items]
    if not items:
        entry.add("forbid", "give one or more diagnostic codes, e.g. [checkerboard, gridding]", value.where)
    return None if None in codes or not items else tuple(c for c in codes if c is not None)


def _accepts(value: Value, entry: _Entry) -> SizeRange | None:
    fields = _mapping(value, entry, "accepts", ACCEPTS_KEYS)
    if fields is None:
        entry.add("accepts", f"must be {{min: ..., max: ..., step: ...}} (spatial sizes), {value.got()}", value.where)
        return None
    ends: dict[str, int] = {}
    for name in ("min", "max"):
        if name not in fields:
            entry.add("accepts", f"missing '{name}': give min, max and optionally step (default 1)", value.where)
    for name, v in fields.items():
        if is_int(v.data) and v.data >= 1:
            ends[name] = v.data
        else:
            entry.add("accepts", f"{name} must be a positive integer, {v.got()}", v.where)
    if "min" not in ends or "max" not in ends or len(ends) != len(fields):
        return None
    sizes = SizeRange(ends["min"], ends["max"], ends.get("step", 1))
    if sizes.min > sizes.max:
        entry.add("accepts", f"min {sizes.min} is above max {sizes.max}", value.where)
        return None
    if len(sizes.sizes()) > MAX_ACCEPTED_SIZES:
        entry.add(
            "accepts",
            f"{sizes.text()} is {len(sizes.sizes())} sizes, more than the {MAX_ACCEPTED_SIZES} one entry may check "
            "(each is a full analysis): give a larger step",
            value.where,
        )
        return None
    return sizes


def _layer(value: Value, entry: _Entry, key: str, layers: Sequence[str] | None) -> str | None:
    name = value.data
    if not isinstance(name, str) or not name:
        entry.add(key, f"must be a layer name, {value.got()}", value.where)
        return None
    if layers is not None and name not in layers:
        entry.add(
            key,
            f"no layer named '{name}' in the stack{did_you_mean(name, layers)} Layers: {list_names(layers)}",
            value.where,
        )
        return None
    return name


def read_expect(
    value: Value, reporter: Reporter, rank: int | None, layers: Sequence[str] | None
) -> tuple[Expectation, ...]:
    """The `expect:` list; problems reported. `layers` are the stack's layer names (None: unknown, not checked)."""
    if value.items is None:
        reporter.add(
            f"expect must be a list of expectations, e.g. [{{layer: head, rf: {{min: 200}}}}], {value.got()}",
            value.where,
            field="expect",
        )
        return ()
    out: list[Expectation] = []
    for index, item in enumerate(value.items):
        entry = _Entry(reporter, "expect", index)
        fields = _mapping(item, entry, None, EXPECT_KEYS)
        if fields is None:
            entry.add(None, f"must be a mapping such as {{layer: head, rf: {{min: 200}}}}, {item.got()}", item.where)
            continue
        checks = [k for k in fields if k not in ("layer", "at")]
        if not checks and entry.ok:
            entry.add(None, f"says nothing to check: give one of {', '.join(EXPECT_KEYS[2:])}", item.where)
            continue
        if "accepts" in fields and ("layer" in fields or "at" in fields):
            entry.add(
                "accepts",
                "is about the whole stack: write it in an entry of its own, without layer or at",
                fields["accepts"].where,
            )
        layer = _layer(fields["layer"], entry, "layer", layers) if "layer" in fields else None
        at = _sizes(fields["at"], entry, "at", rank) if "at" in fields else None
        rf: tuple[Bound, ...] | None = None
        if "rf" in fields:
            axes = _per_axis(fields["rf"], entry, "rf", rank)
            bounds = [_bound(v, entry, "rf", 1) for v in axes or []]
            rf = tuple(b for b in bounds if b is not None) if axes and None not in bounds else None
        jump: tuple[Fraction, ...] | None = None
        if "jump" in fields:
            axes = _per_axis(fields["jump"], entry, "jump", rank)
            jumps = [_jump(v, entry) for v in axes or []]
            jump = tuple(j for j in jumps if j is not None) if axes and None not in jumps else None
        shape = _shape(fields["shape"], entry) if "shape" in fields else None
        params = _bound(fields["params"], entry, "params", 0) if "params" in fields else None
        macs = _bound(fields["macs"], entry, "macs", 0) if "macs" in fields else None
        forbid = _codes(fields["forbid"], entry) if "forbid" in fields else ()
        accepts = _accepts(fields["accepts"], entry) if "accepts" in fields else None
        if entry.ok:
            out.append(
                Expectation(
                    index,
                    item.where,
                    layer=layer,
                    at=at,
                    rf=rf,
                    jump=jump,
                    shape=shape,
                    params=params,
                    macs=macs,
                    forbid=forbid or (),
                    accepts=accepts,
                    field_locations={k: v.where for k, v in fields.items()},
                )
            )
    return tuple(out)


def read_ignore(value: Value, reporter: Reporter, layers: Sequence[str] | None) -> tuple[Suppression, ...]:
    """The `ignore:` list: codes, or `{code: ..., layer: ...}` for one layer; a single code alone too."""
    items = value.items if value.items is not None else (value,)
    out: list[Suppression] = []
    for index, item in enumerate(items):
        entry = _Entry(reporter, "ignore", index)
        if item.pairs is None:
            code = _code(item, entry, "code") if item.data is not BAD else None
            if item.data is BAD:
                entry.add(None, f"must be a diagnostic code or {{code: ..., layer: ...}}, {item.got()}", item.where)
            if code is not None:
                out.append(Suppression(code, None, item.where))
            continue
        fields = _mapping(item, entry, None, IGNORE_KEYS)
        assert fields is not None
        if "code" not in fields:
            entry.add(None, "missing 'code': e.g. {code: checkerboard, layer: up}", item.where)
            continue
        code = _code(fields["code"], entry, "code")
        layer = _layer(fields["layer"], entry, "layer", layers) if "layer" in fields else None
        if code is not None and entry.ok:
            out.append(Suppression(code, layer, item.where))
    return tuple(out)


# --------------------------------------------------------------------------- JSON Schema


def _any_of(*schemas: dict[str, object]) -> dict[str, object]:
    return {"anyOf": list(schemas)}


def _bound_of(n: dict[str, object]) -> dict[str, object]:
    """A bare value (exactly) or {min, max} of `n`."""
    minmax = {"type": "object", "properties": {"min": n, "max": n}, "minProperties": 1, "additionalProperties": False}
    return _any_of(n, minmax)


def contract_schemas() -> dict[str, dict[str, object]]:
    """The JSON Schema of `expect:` and `ignore:` (convcalc.format.schema puts them in the stack's schema)."""
    count = _any_of(
        {"type": "integer", "minimum": 0},
        {"type": "string", "pattern": "^" + _COUNT.pattern.replace(r"\s*", " *") + "$"},
    )
    bound = _bound_of(count)
    rf_bound = _bound_of(
        _any_of(
            {"type": "integer", "minimum": 1},
            {"type": "string", "pattern": "^" + _COUNT.pattern.replace(r"\s*", " *") + "$"},
        )
    )
    jump = _any_of({"type": "integer", "minimum": 1}, {"type": "string", "pattern": r"^ *[0-9]+ *(/ *[0-9]+ *)?$"})
    codes: dict[str, object] = {"enum": list(CODES)}
    size: dict[str, object] = {"type": "integer", "minimum": 1}
    checks = EXPECT_KEYS[2:]
    entry: dict[str, object] = {
        "type": "object",
        "description": "what must hold for `layer` (default: the last layer; params, MACs and forbid: the whole "
        "stack), at input `at` (default: the stack's input)",
        "properties": {
            "layer": {"type": "string", "minLength": 1, "description": "the layer measured"},
            "at": {
                "description": "measure at this input [channels, spatial...] (or '3x224x224')",
                "anyOf": [
                    {"type": "array", "items": size, "minItems": 2, "maxItems": 4},
                    {"type": "string", "pattern": r"^ *[0-9]+( *[x×X,] *[0-9]+){1,3} *$"},
                ],
            },
            "rf": _any_of(rf_bound, {"type": "array", "items": rf_bound, "minItems": 1, "maxItems": 3})
            | {
                "description": "receptive field in input pixels: a number (exactly) or {min, max}; a list: one per axis"
            },
            "jump": _any_of(jump, {"type": "array", "items": jump, "minItems": 1, "maxItems": 3})
            | {"description": "input pixels between adjacent units: an integer or a fraction '1/2'; one per axis"},
            "shape": {
                "type": "array",
                "items": {"anyOf": [size, {"type": "null"}]},
                "minItems": 1,
                "maxItems": 4,
                "description": "the output shape [channels, spatial...]; null where any size will do",
            },
            "params": bound | {"description": "parameters: a number (exactly) or {min, max}; text such as 30M"},
            "macs": bound | {"description": "multiply-accumulates: a number (exactly) or {min, max}; text such as 4G"},
            "forbid": _any_of(codes, {"type": "array", "items": codes, "minItems": 1})
            | {"description": "diagnostic codes that must not appear"},
            "accepts": {
                "type": "object",
                "description": "spatial sizes min, min + step, ... <= max (the same along every axis) the stack "
                f"must accept; at most {MAX_ACCEPTED_SIZES}",
                "properties": {"min": size, "max": size, "step": size | {"default": 1}},
                "required": ["min", "max"],
                "additionalProperties": False,
            },
        },
        "anyOf": [{"required": [key]} for key in checks],
        "additionalProperties": False,
    }
    suppression = _any_of(
        codes,
        {
            "type": "object",
            "properties": {"code": codes, "layer": {"type": "string", "minLength": 1}},
            "required": ["code"],
            "additionalProperties": False,
        },
    )
    return {
        "expect": {"type": "array", "items": entry, "description": "contracts `convcalc check` verifies"},
        "ignore": _any_of(codes, {"type": "array", "items": suppression})
        | {"description": "diagnostics that never fail `convcalc check` (a code, or {code, layer})"},
    }
