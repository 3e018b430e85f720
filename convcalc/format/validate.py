"""Validate a stack's layers, whatever they were written in: a YAML file, an imported model, the calculators.

The input is a list of `RawLayer`s — each a mapping of field names to `Value`s with where they were
written — and the rank. Every problem is reported at once, each with its place, the layer, the field,
the value given and what is allowed (with a did-you-mean for unknown ops, fields and layers). Layers
are named `<op><n>` when they have no name; `from` may only name layers above (so there are no cycles).
Each op's fields come from its declaration (convcalc.ops), which also builds the JSON Schema.
"""

from __future__ import annotations

import bisect
import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from convcalc.errors import Problem
from convcalc.notation import printable, shorten
from convcalc.ops import registry
from convcalc.ops.base import Op
from convcalc.stack.fields import POS_INT, POS_INT_OR_NULL, REQUIRED, LayerName, did_you_mean, plural
from convcalc.stack.spec import (
    COMMON_FIELDS,
    INPUT_NAME,
    InputSpec,
    LayerSpec,
    Location,
    output_name,
    output_of,
    outputs_text,
)
from convcalc.stack.values import BAD, Value, is_int

#: A layer's `from` error lists at most this many names: the first _HEAD and the last ones.
_LISTED_NAMES = 20
_HEAD = 5


class Reporter(Protocol):
    """Where problems go: each with its message, place, layer label and field."""

    def add(self, message: str, where: Location, layer: str | None = None, field: str | None = None) -> None: ...


@dataclass
class Problems:
    """A Reporter that keeps the problems (file names come with each location)."""

    items: list[Problem] = field(default_factory=list)

    def add(self, message: str, where: Location, layer: str | None = None, field: str | None = None) -> None:
        self.items.append(Problem(message, where.file, where.line, where.column, layer, field))


@dataclass
class RawLayer:
    """One layer as written: its place and its fields (key → (the key, the value)).

    `issues` are problems found while reading it (duplicate keys): (message, where, field).
    `reported` names fields whose problem was already reported (while expanding a block).
    """

    index: int
    where: Location
    fields: dict[str, tuple[Value, Value]]
    issues: list[tuple[str, Location, str | None]] = field(default_factory=list)
    reported: frozenset[str] = frozenset()
    op: str | None = None
    name: str | None = None
    name_written: bool = False  # `name:` present, valid or not: never invent a default then
    instance: str | None = None  # the block instance it was expanded in (see LayerSpec)
    call: Location | None = None

    @property
    def label(self) -> str:
        return self.name if self.name is not None else f"#{self.index + 1}"

    def value(self, key: str) -> Value | None:
        pair = self.fields.get(key)
        return pair[1] if pair is not None else None


def list_names(names: Sequence[str]) -> str:
    """Names for a message: all of them, or the first and last ones and how many are left out."""
    if len(names) <= _LISTED_NAMES:
        return ", ".join(names)
    left_out = len(names) - _LISTED_NAMES
    head, tail = names[:_HEAD], names[len(names) - (_LISTED_NAMES - _HEAD) :]
    return f"{', '.join(head)}, … {left_out:,} more …, {', '.join(tail)}"


class _Names:
    """The layers' names by first definition, in file order, for resolving `from`.

    Every question costs O(1) (or O(log n)) on the success path, so validation stays linear in the
    number of layers; the did-you-mean search runs only for a name that is unknown, once per name.
    """

    def __init__(self) -> None:
        self.first: dict[str, RawLayer] = {}
        self._order: list[str] = []  # first definitions, in file order
        self._indices: list[int] = []  # their layer indices (increasing)
        self._ranked: dict[str, list[str]] = {}

    def define(self, layer: RawLayer, name: str) -> RawLayer | None:
        """Record `layer` as defining `name`; the layer that defined it first when it is a duplicate."""
        earlier = self.first.get(name)
        if earlier is not None:
            return earlier
        self.first[name] = layer
        self._order.append(name)
        self._indices.append(layer.index)
        return None

    def above(self, name: str, index: int) -> bool:
        """True when `name` is defined by a layer before position `index`."""
        defined = self.first.get(name)
        return defined is not None and defined.index < index

    def listing(self, index: int) -> str:
        """The names a layer at position `index` can read, for a message (long lists are shortened)."""
        count = bisect.bisect_left(self._indices, index)
        return list_names([INPUT_NAME, *self._order[:count]])

    def suggest(self, word: str, index: int) -> str:
        """`; did you mean 'x'?` for the closest name above position `index`, else a full stop.

        Every name is ranked by difflib's score once per unknown word (ties broken as
        get_close_matches breaks them), then the best one above wins.
        """
        ranked = self._ranked.get(word)
        if ranked is None:
            choices = [INPUT_NAME, *self._order]
            ranked = self._ranked[word] = difflib.get_close_matches(word, choices, n=len(choices))
        for name in ranked:
            if name == INPUT_NAME or self.above(name, index):
                return f"; did you mean '{name}'?"
        return "."


def read_input(value: Value, reporter: Reporter) -> InputSpec | None:
    """The stack input `[channels, spatial sizes...]` (1 to 3 spatial sizes; null = unknown)."""
    items = value.items
    if items is None or not 2 <= len(items) <= 4:
        count = f"got {plural(len(items), 'entry')}" if items is not None else ""
        reporter.add(
            "input must be a list [channels, spatial sizes...] with 1 to 3 spatial sizes, "
            f"e.g. [3, 224, 224]; {count or value.got()}" + value.note,
            value.where,
            field="input",
        )
        return None
    ok = True
    channels = items[0].data
    if not POS_INT.check(channels) or items[0].is_list or items[0].is_mapping:
        reporter.add(
            f"input channels must be a positive integer, {items[0].got()}" + items[0].note,
            items[0].where,
            field="input",
        )
        ok = False
    spatial: list[int | None] = []
    for child in items[1:]:
        size = child.data
        if not child.is_list and not child.is_mapping and POS_INT_OR_NULL.check(size):
            spatial.append(size if is_int(size) else None)
        else:
            reporter.add(
                f"input spatial sizes must be positive integers or null (unknown), {child.got()}" + child.note,
                child.where,
                field="input",
            )
            ok = False
    return InputSpec(channels, tuple(spatial)) if ok and is_int(channels) else None


class _FieldReader:
    """The FieldContext and Rules of one layer: the rank, and problems reported against the layer."""

    def __init__(self, layer: RawLayer, rank: int | None, rank_source: str, reporter: Reporter) -> None:
        self.layer = layer
        self._rank = rank
        self._rank_source = rank_source
        self.reporter = reporter

    @property
    def rank(self) -> int | None:
        return self._rank

    @property
    def rank_source(self) -> str:
        return self._rank_source

    # FieldContext
    def problem_at(self, message: str, value: Value, name: str) -> None:
        self.reporter.add(message + value.note, value.where, self.layer.label, name)

    # Rules
    def written(self, name: str) -> bool:
        return name in self.layer.fields

    def order(self, name: str) -> int:
        key = self.layer.fields[name][0].where
        return (key.line or 0) * 100_000 + (key.column or 0)

    def raw(self, name: str) -> object:
        value = self.layer.value(name)
        return None if value is None else value.data

    def got(self, name: str) -> str:
        value = self.layer.value(name)
        return "" if value is None else value.got()

    def problem(self, message: str, name: str) -> None:
        value = self.layer.value(name)
        if value is None:
            self.layer_problem(message, name)
        else:
            self.problem_at(message, value, name)

    def layer_problem(self, message: str, name: str) -> None:
        self.reporter.add(message, self.layer.where, self.layer.label, name)


class _KindContext:
    """Adapts _FieldReader to the FieldContext protocol of convcalc.stack.fields."""

    def __init__(self, reader: _FieldReader) -> None:
        self.reader = reader

    @property
    def rank(self) -> int | None:
        return self.reader.rank

    @property
    def rank_source(self) -> str:
        return self.reader.rank_source

    def problem(self, message: str, value: Value, field: str) -> None:
        self.reader.problem_at(message, value, field)


def _all_op_names() -> list[str]:
    return list(registry.OPS)


def _identify(layer: RawLayer, reporter: Reporter) -> None:
    """Resolve the op (aliases to canonical) and the explicit name; report their problems."""
    name_value = layer.value("name")
    if name_value is not None:
        layer.name_written = True
        name = name_value.data
        if not isinstance(name, str) or not name.strip() or name_value.is_list or name_value.is_mapping:
            reporter.add(
                f"name must be a non-empty string, {name_value.got()}" + name_value.note,
                name_value.where,
                layer.label,
                "name",
            )
        elif name == INPUT_NAME:
            reporter.add(
                f"'{INPUT_NAME}' is reserved for the stack input (used in 'from'); choose another name",
                name_value.where,
                layer.label,
                "name",
            )
        else:
            layer.name = name
    op_value = layer.value("op")
    if op_value is None:
        reporter.add(
            f"missing 'op': say what the layer does, one of {', '.join(_all_op_names())}",
            layer.where,
            layer.label,
            "op",
        )
        return
    op = op_value.data
    if not isinstance(op, str) or op_value.is_list or op_value.is_mapping:
        reporter.add(
            f"op must be a string naming an operation, {op_value.got()}" + op_value.note,
            op_value.where,
            layer.label,
            "op",
        )
        return
    canonical = registry.canonical(op)
    if canonical is not None:
        layer.op = canonical
        return
    names = _all_op_names()
    reporter.add(
        f"unknown op '{shorten(printable(op))}'{did_you_mean(op, [*names, *registry.ALIASES])} Ops: {', '.join(names)}",
        op_value.where,
        layer.label,
        "op",
    )


def _default_names(layers: list[RawLayer]) -> None:
    """Name unnamed layers `<op><n>`, n = how many layers of that op so far, skipping taken names."""
    taken = {layer.name for layer in layers if layer.name is not None}
    seen: dict[str, int] = {}
    next_free: dict[str, int] = {}
    for layer in layers:
        if layer.op is None:
            continue
        seen[layer.op] = seen.get(layer.op, 0) + 1
        if layer.name_written:
            continue
        n = max(seen[layer.op], next_free.get(layer.op, 1))
        while f"{layer.op}{n}" in taken:
            n += 1
        layer.name = f"{layer.op}{n}"
        taken.add(layer.name)
        next_free[layer.op] = n + 1


def _arity(layer: RawLayer, count: int, where: Location, reporter: Reporter) -> None:
    if layer.op is None:
        return
    low, high = registry.OPS[layer.op].arity
    if count < low:
        reporter.add(
            f"{layer.op} merges {low} or more layers: list them in 'from', e.g. from: [a, b]; got "
            f"{plural(count, 'input')}",
            where,
            layer.label,
            "from",
        )
    elif high is not None and count > high:
        merging = ", ".join(registry.merge_ops()[:-1]) + " and " + registry.merge_ops()[-1]
        reporter.add(
            f"{layer.op} takes exactly one input, but 'from' lists {count}; only {merging} merge layers",
            where,
            layer.label,
            "from",
        )


class _Outputs:
    """The multi-output layers (split, chunk) by name, and their specs once built: `from` reads one of
    their outputs (`sp.1`), never the layer itself."""

    def __init__(self, layers: list[RawLayer]) -> None:
        self.layers = {
            layer.name: layer
            for layer in layers
            if layer.name is not None and layer.op is not None and registry.OPS[layer.op].multi_output
        }
        self.built: dict[str, LayerSpec] = {}

    def describe(self, name: str) -> str:
        """`sp has 2 outputs: sp.0, sp.1` (as far as known before the input's channels are)."""
        spec = self.built.get(name)
        if spec is None:
            return f"{name} has several outputs ({output_name(name, 0)}, {output_name(name, 1)}, …)"
        count, exact = registry.op_of(spec).max_outputs(spec)
        if count is None:
            size = getattr(spec, "size", None)
            return f"{name} has one output per {size} channels: {output_name(name, 0)}, {output_name(name, 1)}, …"
        shown = outputs_text(name, count)
        if exact:
            return f"{name} has {plural(count, 'output')}: {shown}"
        return f"{name} has up to {plural(count, 'output')} (torch.chunk may give fewer): {shown}"

    def unknown_index(self, name: str, index: int) -> bool:
        """True when output `index` of `name` surely does not exist."""
        spec = self.built.get(name)
        if spec is None:
            return False
        count, _ = registry.op_of(spec).max_outputs(spec)
        return count is not None and index >= count


def _check_output_names(layers: list[RawLayer], outputs: _Outputs, reporter: Reporter) -> None:
    """Refuse a layer name that reads as an output of a split or chunk (`sp.0` beside a split `sp`)."""
    for layer in layers:
        found = None if layer.name is None else output_of(layer.name)
        if found is None or found[0] not in outputs.layers:
            continue
        producer = outputs.layers[found[0]]
        name_value = layer.value("name")
        reporter.add(
            f"layer name '{layer.name}' reads as output {found[1]} of the {producer.op} '{found[0]}' (line "
            f"{producer.where.line}), whose outputs are named {output_name(found[0], 0)}, "
            f"{output_name(found[0], 1)}, …; choose another name",
            name_value.where if name_value is not None else layer.where,
            layer.label,
            "name",
        )


def _from(
    layer: RawLayer, previous: RawLayer | str | None, names: _Names, reporter: Reporter, outputs: _Outputs
) -> tuple[str, ...] | None:
    """The producers of `layer`; None when they cannot be known (a problem was reported)."""
    label = layer.label
    node = layer.value("from")
    if "from" in layer.reported:
        return None
    if node is None:
        # Default: the previous layer (the stack input for the first); a nameless previous layer has
        # already been reported, so the producer is just unknown.
        _arity(layer, 1, layer.where, reporter)
        default = previous.name if isinstance(previous, RawLayer) else previous
        if default is not None and default in outputs.layers:
            reporter.add(
                f"without 'from' a layer reads the layer above, but {outputs.describe(default)}; say which with from:",
                layer.where,
                label,
                "from",
            )
            return None
        return None if default is None else (default,)
    entries = list(node.items) if node.items is not None else [node]
    if node.items is not None and not entries:
        reporter.add("from must be a layer name or a non-empty list of layer names, got []", node.where, label, "from")
        return None
    ok = True
    refs: list[tuple[str, Value]] = []
    for entry in entries:
        if not isinstance(entry.data, str) or entry.is_list or entry.is_mapping:
            reporter.add(f"from must name layers (strings), {entry.got()}" + entry.note, entry.where, label, "from")
            ok = False
        else:
            refs.append((entry.data, entry))
    for ref, entry in refs:
        if not _above(ref, entry, layer, names, reporter, "from", outputs):
            ok = False
    _arity(layer, len(entries), node.where, reporter)
    return tuple(ref for ref, _ in refs) if ok else None


def _above(
    ref: str, entry: Value, layer: RawLayer, names: _Names, reporter: Reporter, field: str, outputs: _Outputs
) -> bool:
    """True when `ref` names the stack input, a layer above `layer` or an output (`sp.1`) of a split
    above it; else reports why not."""
    label = layer.label
    if ref in outputs.layers and names.above(ref, layer.index):
        reporter.add(f"{outputs.describe(ref)}; say which with {field}:", entry.where, label, field)
        return False
    if ref == INPUT_NAME or names.above(ref, layer.index):
        return True
    found = output_of(ref)
    if found is not None and found[0] in outputs.layers and found[0] != layer.name:
        head, index = found
        if names.above(head, index=layer.index):
            if not outputs.unknown_index(head, index):
                return True
            reporter.add(f"unknown output '{ref}': {outputs.describe(head)}", entry.where, label, field)
            return False
        ref = head  # defined later: said below
    later = names.first.get(ref)
    if ref == layer.name or (found is not None and found[0] == layer.name):
        reporter.add(f"a layer cannot read from itself ('{ref}')", entry.where, label, field)
    elif later is not None:
        reporter.add(
            f"'{ref}' is defined later (line {later.where.line}); a layer can only read from layers above it",
            entry.where,
            label,
            field,
        )
    else:
        reporter.add(
            f"unknown layer '{ref}'{names.suggest(ref, layer.index)} "
            f"Layers above this one: {names.listing(layer.index)}",
            entry.where,
            label,
            field,
        )
    return False


def _references(layer: RawLayer, names: _Names, reporter: Reporter, outputs: _Outputs) -> bool:
    """Check the layer names in the op's layer-name fields (upsample's `like`): above, as `from`'s."""
    if layer.op is None:
        return True
    ok = True
    for f in registry.OPS[layer.op].fields:
        value = layer.value(f.name)
        if not isinstance(f.kind, LayerName) or value is None or f.name in layer.reported:
            continue
        if isinstance(value.data, str) and value.items is None and value.pairs is None:
            ok = _above(value.data, value, layer, names, reporter, f.name, outputs) and ok
    return ok


def _check_keys(layer: RawLayer, op: Op[Any], reporter: Reporter) -> None:
    allowed = (*COMMON_FIELDS, *(f.name for f in op.fields))
    for key, (key_value, _) in layer.fields.items():
        if key in allowed:
            continue
        owners = registry.field_owners(key)
        if owners:
            message = f"'{key}' is a field of {', '.join(owners)}, not {op.name}."
        else:
            message = f"unknown field '{key}' for {op.name}{did_you_mean(key, allowed)}"
        reporter.add(f"{message} {op.name} accepts: {', '.join(allowed)}", key_value.where, layer.label, key)


def build_layer(
    layer: RawLayer, inputs: tuple[str, ...] | None, rank: int | None, rank_source: str, reporter: Reporter
) -> LayerSpec | None:
    """The typed spec of one identified layer (its op known), or None after reporting its problems."""
    if layer.op is None:
        return None
    op = registry.OPS[layer.op]
    _check_keys(layer, op, reporter)
    for f in op.fields:
        if f.required and f.name not in layer.fields and f.name not in layer.reported:
            reporter.add(f"{op.name} needs '{f.name}'", layer.where, layer.label, f.name)
    reader = _FieldReader(layer, rank, rank_source, reporter)
    kinds = _KindContext(reader)
    values: dict[str, Any] = {}
    for f in op.fields:
        written = layer.value(f.name)
        if written is not None:
            value = f.kind.read(f.name, written, kinds)
            if value is not BAD:
                values[f.name] = value
    op.check(values, reader)
    if inputs is None or layer.name is None:
        return None
    if any(f.name not in values and (f.required or f.name in layer.fields) for f in op.fields):
        return None  # a field was missing or invalid: reported above
    filled = dict(values)
    for f in op.fields:
        if f.name not in filled:
            filled[f.name] = f.fill(filled, rank or 1)
    return op.spec(
        index=layer.index,
        name=layer.name,
        op=op.name,
        inputs=inputs,
        location=layer.where,
        instance=layer.instance,
        call=layer.call,
        field_locations={key: value.where for key, (_, value) in layer.fields.items()},
        **filled,
    )


def validate_layers(
    items: Sequence[RawLayer | Value], rank: int | None, rank_source: str, reporter: Reporter
) -> list[LayerSpec]:
    """Every layer of a stack, validated in two passes: identity (ops, names, duplicates), then
    producers and fields. `items` that are not mappings are reported; `rank` None when unknown."""
    layers: list[RawLayer] = []
    for position, item in enumerate(items):
        if isinstance(item, Value):
            reporter.add(
                f"each layer must be a mapping such as {{op: conv, kernel: 3}}, {item.got()}" + item.note,
                item.where,
                f"#{position + 1}",
            )
            continue
        _identify(item, reporter)
        layers.append(item)
    _default_names(layers)
    names = _Names()
    for layer in layers:
        if layer.name is None:
            continue
        earlier = names.define(layer, layer.name)
        if earlier is not None and layer.name_written:
            name_value = layer.value("name")
            assert name_value is not None  # name_written means the key is there
            reporter.add(
                f"duplicate layer name '{layer.name}': already used by the layer on line {earlier.where.line}",
                name_value.where,
                layer.label,
                "name",
            )
    outputs = _Outputs(layers)
    _check_output_names(layers, outputs, reporter)
    specs: list[LayerSpec] = []
    previous: RawLayer | str | None = INPUT_NAME
    by_position = {layer.index: layer for layer in layers}
    for position in range(len(items)):
        layer_or_none = by_position.get(position)
        if layer_or_none is None:
            previous = None
            continue
        layer = layer_or_none
        for message, where, fname in layer.issues:
            reporter.add(message, where, layer.label, fname)
        inputs = _from(layer, previous, names, reporter, outputs)
        known = _references(layer, names, reporter, outputs)
        spec = build_layer(layer, inputs, rank, rank_source, reporter)
        if spec is not None and known:
            specs.append(spec)
            if spec.name in outputs.layers:
                outputs.built[spec.name] = spec
        previous = layer
    return specs


__all__ = [
    "REQUIRED",
    "Problems",
    "RawLayer",
    "Reporter",
    "build_layer",
    "list_names",
    "read_input",
    "validate_layers",
]
