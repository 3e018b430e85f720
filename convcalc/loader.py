"""Read a layer-stack YAML file (format version 1) into a validated StackSpec.

Conventions:

* Every problem in a file is collected and raised at once in one SpecError, sorted by position.
  The text itself being unusable (not UTF-8, not YAML, empty, not a mapping) is a FileProblemError.
* Lines and columns are 1-based (PyYAML's marks are 0-based). A Problem points at the value node
  for a bad value, at the key node for an unknown or duplicate key, and at the layer mapping for
  a missing field. Layers are labelled by name, or `#n` (1-based position) when they have none.
* YAML is only composed with the safe loader; scalars are typed by PyYAML's SafeConstructor, so
  `3` is an int, `3.0` a float, `true` a bool, `"3"` a string, exactly as YAML says.
* `LayerSpec.index` is the 0-based position in `StackSpec.layers`.
* The rank (number of spatial axes) comes from the file's `input`, or from `input_override`
  (the CLI's `--input`) when one is given; every per-axis field is broadcast to it.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeGuard

import yaml

from convcalc.errors import FileProblemError, Problem, SpecError
from convcalc.spec import (
    COMMON_FIELDS,
    CONV_PADDING_MODES,
    FORMAT_VERSION,
    INPUT_NAME,
    MERGES,
    OP_ALIASES,
    OP_FIELDS,
    PAD_MODES,
    REQUIRED_FIELDS,
    UPSAMPLE_MODE_ALIASES,
    UPSAMPLE_MODES,
    InputSpec,
    LayerSpec,
    Location,
    StackSpec,
)

try:
    from yaml import CSafeLoader as _Loader
except ImportError:  # PyYAML built without libyaml: same behaviour, slower
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

__all__ = ["TOP_LEVEL_KEYS", "load_stack", "parse_input_shape", "parse_stack"]

#: The keys a stack file may have at its top level (extend this one table for new sections).
TOP_LEVEL_KEYS: Final = ("name", "version", "input", "layers")

_WINDOW_OPS: Final = ("conv", "deconv", "maxpool", "avgpool")
_POOLS: Final = ("maxpool", "avgpool")
_PIXEL_OPS: Final = ("pixel_shuffle", "pixel_unshuffle")
#: Upsample mode spellings that name a rank; used to catch "bilinear" on a 1-D or 3-D stack.
_MODE_RANK: Final = {"bilinear": 2, "trilinear": 3}
_MERGE_TAG: Final = "tag:yaml.org,2002:merge"
_YAML_TAG_PREFIX: Final = "tag:yaml.org,2002:"
_NULL_TAG: Final = "tag:yaml.org,2002:null"
_SEQ_TAG: Final = "tag:yaml.org,2002:seq"
_MAP_TAG: Final = "tag:yaml.org,2002:map"


class _Invalid:
    """Marks a value that failed validation (a Problem has been recorded) or cannot be read."""

    def __repr__(self) -> str:
        return "<invalid>"


_BAD: Final = _Invalid()


# --------------------------------------------------------------------------- small helpers


def _is_int(value: object) -> TypeGuard[int]:
    # bool is a subclass of int in Python: `true` must not pass as 1.
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> TypeGuard[int | float]:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _is_list(node: yaml.Node) -> TypeGuard[yaml.SequenceNode]:
    # A tagged collection (`!!python/object/apply:os.system [...]`, `!!omap`) is not a plain list.
    return isinstance(node, yaml.SequenceNode) and node.tag == _SEQ_TAG


def _is_map(node: yaml.Node) -> TypeGuard[yaml.MappingNode]:
    return isinstance(node, yaml.MappingNode) and node.tag == _MAP_TAG


def _short_tag(tag: str) -> str:
    """A tag as the user would have written it: `!!int`, not `tag:yaml.org,2002:int`."""
    return "!!" + tag.removeprefix(_YAML_TAG_PREFIX) if tag.startswith(_YAML_TAG_PREFIX) else tag


def _quote_all(words: Sequence[str]) -> str:
    return ", ".join(f"'{w}'" for w in words)


def _did_you_mean(word: str, choices: Sequence[str]) -> str:
    """Ends a sentence: `; did you mean 'x'?` for the closest choice, else a full stop."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean '{close[0]}'?" if close else "."


def _axes(n: int) -> str:
    return "1 spatial axis" if n == 1 else f"{n} spatial axes"


def _plural(n: int, word: str) -> str:
    if n == 1:
        return f"1 {word}"
    return f"{n} {word[:-1]}ies" if word.endswith("y") else f"{n} {word}s"


@dataclass(frozen=True)
class _Kind:
    """What a scalar must be, as words for messages and as a check."""

    one: str  # "a positive integer"
    many: str  # "positive integers"
    check: Callable[[object], bool]
    convert: Callable[[Any], object] = lambda v: v


_POS_INT: Final = _Kind("a positive integer", "positive integers", lambda v: _is_int(v) and v >= 1)
_NONNEG_INT: Final = _Kind("a non-negative integer", "non-negative integers", lambda v: _is_int(v) and v >= 0)
_POS_INT_OR_NULL: Final = _Kind(
    "a positive integer or null",
    "entries (positive integers, or null to keep that axis)",
    lambda v: v is None or (_is_int(v) and v >= 1),
)
_POS_NUMBER: Final = _Kind("a positive number", "positive numbers", lambda v: _is_number(v) and v > 0, float)
_BOOL: Final = _Kind("true or false", "booleans", lambda v: isinstance(v, bool))
_NUMBER: Final = _Kind("a number", "numbers", _is_number, float)
_PROBABILITY: Final = _Kind("a number in [0, 1)", "numbers", lambda v: _is_number(v) and 0 <= v < 1, float)


# --------------------------------------------------------------------------- YAML nodes


@dataclass
class _Mapping:
    """A mapping node read as field name -> (key node, value node), merges applied."""

    node: yaml.MappingNode
    fields: dict[str, tuple[yaml.Node, yaml.Node]]
    #: Problems found while reading it (duplicate or non-string keys): (message, node, field).
    issues: list[tuple[str, yaml.Node, str | None]]

    def value(self, name: str) -> yaml.Node | None:
        pair = self.fields.get(name)
        return pair[1] if pair is not None else None


class _Reader:
    """Per-parse state: the file name, PyYAML's scalar constructor and the problems so far."""

    def __init__(self, file: str | None) -> None:
        self.file = file
        self.problems: list[Problem] = []
        self._constructor = yaml.constructor.SafeConstructor()

    def location(self, node: yaml.Node) -> Location:
        mark = node.start_mark
        return Location(self.file, mark.line + 1, mark.column + 1)

    def add(self, message: str, node: yaml.Node, layer: str | None = None, field: str | None = None) -> None:
        loc = self.location(node)
        self.problems.append(Problem(message, self.file, loc.line, loc.column, layer, field))

    def scalar(self, node: yaml.Node) -> object:
        """The typed value of a scalar node; _BAD for a collection or a scalar PyYAML cannot build."""
        if not isinstance(node, yaml.ScalarNode):
            return _BAD
        try:
            return self._constructor.construct_object(node, deep=True)
        except Exception:
            # SafeConstructor raises ConstructorError for unknown tags but lets ValueError etc. escape
            # for explicitly tagged garbage (`!!int abc`); either way the value is unusable.
            return _BAD

    def show(self, node: yaml.Node, depth: int = 0) -> str:
        """The value as the user wrote it, short enough for a message (aliases may be recursive)."""
        if depth > 2:
            return "..."
        if isinstance(node, yaml.ScalarNode):
            value = self.scalar(node)
            if not node.tag.startswith(_YAML_TAG_PREFIX) or value is _BAD:
                return f"{_short_tag(node.tag)} {node.value}".strip()
            if isinstance(value, str):
                return f"'{value}'"
            if node.tag == _NULL_TAG:
                return "null"
            return str(node.value)
        tag = "" if node.tag in (_SEQ_TAG, _MAP_TAG) else f"{_short_tag(node.tag)} "
        if isinstance(node, yaml.SequenceNode):
            items = [self.show(child, depth + 1) for child in node.value[:6]]
            if len(node.value) > 6:
                items.append("...")
            return tag + "[" + ", ".join(items) + "]"
        if isinstance(node, yaml.MappingNode):
            pairs = [f"{self.show(k, depth + 1)}: {self.show(v, depth + 1)}" for k, v in node.value[:4]]
            if len(node.value) > 4:
                pairs.append("...")
            return tag + "{" + ", ".join(pairs) + "}"
        return "?"  # pragma: no cover - PyYAML has only the three node kinds

    def got(self, node: yaml.Node) -> str:
        """`got <value>` plus a hint when YAML typed the value differently from what it looks like."""
        text = f"got {self.show(node)}"
        value = self.scalar(node)
        if isinstance(value, bool):
            text += " (a boolean)"
        elif isinstance(value, float) and value.is_integer():
            text += f" (a float: write {int(value)})"
        elif isinstance(value, str) and re.fullmatch(r"[-+]?\d+(\.\d*)?", value.strip()):
            text += " (a quoted string, not a number)"
        elif isinstance(node, yaml.SequenceNode):
            text += " (a list)"
        elif isinstance(node, yaml.MappingNode):
            text += " (a mapping)"
        return text

    def mapping(self, node: yaml.MappingNode) -> _Mapping:
        """Read a mapping's keys: duplicates and non-string keys become issues, `<<` merges apply.

        Keys written in the mapping win over merged ones (YAML merge semantics); an earlier merge
        source wins over a later one. Only keys written directly can be duplicates.
        """
        result = _Mapping(node, {}, [])
        merges: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merges.append(value_node)
                continue
            key = self.scalar(key_node)
            if not isinstance(key, str):
                result.issues.append(
                    (f"keys must be field names (strings), {self.got(key_node)}", key_node, None)
                )
                continue
            if key in result.fields:
                first = result.fields[key][0].start_mark.line + 1
                result.issues.append(
                    (
                        f"duplicate key '{key}' on lines {first} and {key_node.start_mark.line + 1}: "
                        "YAML would silently keep only the last one; remove one of them",
                        key_node,
                        key,
                    )
                )
                continue
            result.fields[key] = (key_node, value_node)
        seen = {id(node)}
        for source in merges:
            sources = source.value if _is_list(source) else [source]
            for merged in sources:
                if not _is_map(merged):
                    result.issues.append(
                        (
                            f"'<<' can only merge a mapping or a list of mappings, {self.got(merged)}",
                            merged,
                            None,
                        )
                    )
                    continue
                if id(merged) in seen:  # `&a {<<: *a}`: a mapping that merges itself
                    continue
                seen.add(id(merged))
                inner = self.mapping(merged)
                result.issues.extend(inner.issues)
                for key, pair in inner.fields.items():
                    result.fields.setdefault(key, pair)
        return result


def _compose(text: str, file: str | None) -> yaml.MappingNode:
    """Compose the YAML text into a node tree; FileProblemError if it is not a YAML mapping."""
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = f"not valid YAML: {exc.problem or exc.context}"
        if exc.context and exc.problem and exc.context_mark is not None:
            message += (
                f" ({exc.context} started on line {exc.context_mark.line + 1},"
                f" column {exc.context_mark.column + 1})"
            )
        line = mark.line + 1 if mark is not None else None
        column = mark.column + 1 if mark is not None else None
        raise FileProblemError(Problem(message, file, line, column)) from None
    except yaml.reader.ReaderError as exc:
        # Control characters and the like: PyYAML gives a character offset, turn it into line:column.
        before = text[: exc.position]
        line = before.count("\n") + 1
        column = exc.position - (before.rfind("\n") + 1) + 1
        # libyaml reports the code point as an int, the pure-Python reader as the character.
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise FileProblemError(
            Problem(f"not valid YAML: character U+{code:04X} is not allowed", file, line, column)
        ) from None
    except yaml.YAMLError as exc:  # pragma: no cover - every PyYAML error is one of the above
        raise FileProblemError(Problem(f"not valid YAML: {exc}", file)) from None
    except RecursionError:
        raise FileProblemError(Problem("nested too deeply to be a stack file", file)) from None
    if root is None:
        raise FileProblemError(
            Problem(
                "empty (nothing but blank lines or comments); expected a mapping with keys "
                f"{', '.join(TOP_LEVEL_KEYS)}",
                file,
            )
        )
    if not _is_map(root):
        kind = "a list" if _is_list(root) else "a single value"
        mark = root.start_mark
        raise FileProblemError(
            Problem(
                f"the top level must be a mapping with keys {', '.join(TOP_LEVEL_KEYS)}; got {kind}",
                file,
                mark.line + 1,
                mark.column + 1,
            )
        )
    return root


# --------------------------------------------------------------------------- public API


def load_stack(path: str | os.PathLike[str], input_override: InputSpec | None = None) -> StackSpec:
    """Read and validate the stack file at `path` (see parse_stack).

    FileProblemError (one Problem naming the file) when the file cannot be read as a YAML mapping;
    SpecError with every problem when its content is invalid.
    """
    file = os.fspath(path)
    if os.path.isdir(file):
        raise FileProblemError(Problem("is a directory, not a stack file", file))
    try:
        with open(file, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise FileProblemError(Problem("no such file", file)) from None
    except OSError as exc:
        raise FileProblemError(Problem(f"cannot read the file: {exc.strerror or exc}", file)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        column = len(before) - (before.rfind(b"\n") + 1) + 1
        raise FileProblemError(
            Problem(
                f"not UTF-8 text: byte 0x{data[exc.start]:02x} at byte offset {exc.start} "
                "cannot be decoded (save the file as UTF-8)",
                file,
                line,
                column,
            )
        ) from None
    return parse_stack(text.removeprefix("\ufeff"), file=file, input_override=input_override)


def parse_stack(text: str, file: str | None = None, input_override: InputSpec | None = None) -> StackSpec:
    """Validate stack YAML `text` (from `file`, used in messages) into a StackSpec.

    Raises SpecError carrying every problem found, or FileProblemError if the text is not a YAML
    mapping at all. With `input_override` the file's `input` may be omitted (if present it is still
    checked), the override is the stack's input, and the rank comes from it.
    """
    root = _compose(text, file)
    return _StackParser(_Reader(file), input_override).parse(root)


_SHAPE_SPLIT: Final = re.compile(r"\s*[x×X,]\s*")
_UNKNOWN_SIZES: Final = ("?", "null", "none")


def parse_input_shape(text: str) -> InputSpec:
    """Parse the CLI's `--input`: `3x512x512`, `3,512,512`, `3×512×512`; `?` or `null` = unknown size."""
    shape = text.strip()
    if shape[:1] in ("[", "(") and shape[-1:] in ("]", ")"):
        shape = shape[1:-1].strip()
    parts = _SHAPE_SPLIT.split(shape) if shape else []
    usage = "give channels then 1 to 3 spatial sizes, e.g. 3x224x224 (or 3,224,224; ? for an unknown size)"
    if not 2 <= len(parts) <= 4:
        raise SpecError(Problem(f"--input must {usage}; got '{text}'", field="--input"))
    problems: list[Problem] = []
    if not re.fullmatch(r"[0-9]+", parts[0]) or int(parts[0]) < 1:
        problems.append(
            Problem(
                f"the channel count must be a positive integer, got '{parts[0]}' in '{text}'",
                field="--input",
            )
        )
    spatial: list[int | None] = []
    for part in parts[1:]:
        if part.lower() in _UNKNOWN_SIZES:
            spatial.append(None)
        elif re.fullmatch(r"[0-9]+", part) and int(part) >= 1:
            spatial.append(int(part))
        else:
            problems.append(
                Problem(
                    f"spatial sizes must be positive integers or ? (unknown), got '{part}' in '{text}'",
                    field="--input",
                )
            )
    if problems:
        raise SpecError(problems)
    return InputSpec(int(parts[0]), tuple(spatial))


# --------------------------------------------------------------------------- the stack


@dataclass
class _Layer:
    """A layer mapping between the two passes: identity first (op, name), fields second."""

    index: int
    mapping: _Mapping
    op: str | None = None
    name: str | None = None
    name_written: bool = False  # `name:` present, valid or not: never invent a default then

    @property
    def label(self) -> str:
        return self.name if self.name is not None else f"#{self.index + 1}"

    @property
    def line(self) -> int:
        return int(self.mapping.node.start_mark.line) + 1


class _StackParser:
    """Validates a composed stack mapping: top-level keys, input, then layers in two passes."""

    def __init__(self, reader: _Reader, input_override: InputSpec | None) -> None:
        self.r = reader
        self.override = input_override
        self.rank: int | None = None
        # Appended to rank messages so the user knows the count is not the file's own `input`.
        self.rank_source = " (from --input)" if input_override is not None else ""

    # ----------------------------------------------------------------- top level

    def parse(self, root: yaml.MappingNode) -> StackSpec:
        r = self.r
        top = r.mapping(root)
        for message, node, fname in top.issues:
            r.add(message, node, field=fname)
        for key, (key_node, _) in top.fields.items():
            if key not in TOP_LEVEL_KEYS:
                r.add(
                    f"unknown top-level key '{key}'{_did_you_mean(key, TOP_LEVEL_KEYS)}"
                    f" Allowed keys: {', '.join(TOP_LEVEL_KEYS)}",
                    key_node,
                    field=key,
                )

        version_node = top.value("version")
        if version_node is not None:
            version = r.scalar(version_node)
            if not (_is_int(version) and version == FORMAT_VERSION):
                r.add(
                    f"version must be {FORMAT_VERSION} (the only stack format version), "
                    f"{r.got(version_node)}",
                    version_node,
                    field="version",
                )

        name: str | None = None
        name_node = top.value("name")
        if name_node is not None:
            value = r.scalar(name_node)
            if isinstance(value, str):
                name = value
            else:
                r.add(f"name must be a string, {r.got(name_node)}", name_node, field="name")

        file_input = self._input(root, top.value("input"))
        stack_input = self.override if self.override is not None else file_input
        if self.override is not None:
            self.rank = self.override.rank
        input_node = top.value("input")
        input_location = (
            r.location(input_node) if input_node is not None and self.override is None else Location()
        )

        layers = self._layers(root, top.value("layers"))
        if r.problems or stack_input is None:
            # Sorted so the user reads them in file order; the sort is stable for equal positions.
            problems = sorted(r.problems, key=lambda p: (p.line or 0, p.column or 0))
            raise SpecError(problems)
        return StackSpec(stack_input, tuple(layers), name, r.file, input_location)

    def _input(self, root: yaml.MappingNode, node: yaml.Node | None) -> InputSpec | None:
        r = self.r
        if node is None:
            if self.override is None:
                r.add(
                    "missing 'input': give the input shape as [channels, spatial sizes...], "
                    "e.g. [3, 224, 224]",
                    root,
                    field="input",
                )
            return None
        if not _is_list(node) or not 2 <= len(node.value) <= 4:
            count = f"got {_plural(len(node.value), 'entry')}" if _is_list(node) else ""
            r.add(
                "input must be a list [channels, spatial sizes...] with 1 to 3 spatial sizes, "
                f"e.g. [3, 224, 224]; {count or r.got(node)}",
                node,
                field="input",
            )
            return None
        self.rank = len(node.value) - 1
        ok = True
        channels = r.scalar(node.value[0])
        if not _POS_INT.check(channels):
            message = f"input channels must be a positive integer, {r.got(node.value[0])}"
            r.add(message, node.value[0], field="input")
            ok = False
        spatial: list[int | None] = []
        for child in node.value[1:]:
            size = r.scalar(child)
            if _POS_INT_OR_NULL.check(size):
                spatial.append(size if _is_int(size) else None)
            else:
                r.add(
                    f"input spatial sizes must be positive integers or null (unknown), {r.got(child)}",
                    child,
                    field="input",
                )
                ok = False
        return InputSpec(channels, tuple(spatial)) if ok and _is_int(channels) else None

    # ----------------------------------------------------------------- layers: identity pass

    def _layers(self, root: yaml.MappingNode, node: yaml.Node | None) -> list[LayerSpec]:
        r = self.r
        if node is None:
            r.add(
                "missing 'layers': give a non-empty list of layers, e.g. [{op: conv, kernel: 3}]",
                root,
                field="layers",
            )
            return []
        if not _is_list(node) or not node.value:
            r.add(f"layers must be a non-empty list of layer mappings, {r.got(node)}", node, field="layers")
            return []

        items: list[_Layer | None] = []
        for index, item in enumerate(node.value):
            if _is_map(item):
                items.append(self._identify(_Layer(index, r.mapping(item))))
            else:
                r.add(
                    f"each layer must be a mapping such as {{op: conv, kernel: 3}}, {r.got(item)}",
                    item,
                    layer=f"#{index + 1}",
                )
                items.append(None)
        layers = [item for item in items if item is not None]
        self._default_names(layers)

        # First definition of each name, for "defined later" and duplicate messages.
        first: dict[str, _Layer] = {}
        for layer in layers:
            if layer.name is None:
                continue
            if layer.name in first:
                if layer.name_written:
                    name_node = layer.mapping.value("name")
                    assert name_node is not None  # name_written means the key is there
                    r.add(
                        f"duplicate layer name '{layer.name}': already used by the layer on line "
                        f"{first[layer.name].line}",
                        name_node,
                        layer.label,
                        "name",
                    )
            else:
                first[layer.name] = layer

        specs: list[LayerSpec] = []
        previous: _Layer | str | None = INPUT_NAME
        for item in items:
            if item is None:
                previous = None
                continue
            spec = self._layer(item, previous, first)
            if spec is not None:
                specs.append(spec)
            previous = item
        return specs

    def _identify(self, layer: _Layer) -> _Layer:
        """Resolve the op (aliases to canonical) and the explicit name; report their problems."""
        r = self.r
        m = layer.mapping
        name_node = m.value("name")
        if name_node is not None:
            layer.name_written = True
            name = r.scalar(name_node)
            if not isinstance(name, str) or not name.strip():
                r.add(f"name must be a non-empty string, {r.got(name_node)}", name_node, layer.label, "name")
            elif name == INPUT_NAME:
                r.add(
                    f"'{INPUT_NAME}' is reserved for the stack input (used in 'from'); choose another name",
                    name_node,
                    layer.label,
                    "name",
                )
            else:
                layer.name = name

        op_node = m.value("op")
        if op_node is None:
            r.add(
                f"missing 'op': say what the layer does, one of {', '.join(OP_FIELDS)}",
                m.node,
                layer.label,
                "op",
            )
            return layer
        op = r.scalar(op_node)
        if not isinstance(op, str):
            r.add(f"op must be a string naming an operation, {r.got(op_node)}", op_node, layer.label, "op")
        elif op in OP_FIELDS:
            layer.op = op
        elif op in OP_ALIASES:
            layer.op = OP_ALIASES[op]
        else:
            r.add(
                f"unknown op '{op}'{_did_you_mean(op, [*OP_FIELDS, *OP_ALIASES])} "
                f"Ops: {', '.join(OP_FIELDS)}",
                op_node,
                layer.label,
                "op",
            )
        return layer

    def _default_names(self, layers: list[_Layer]) -> None:
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

    # ----------------------------------------------------------------- layers: field pass

    def _layer(
        self, layer: _Layer, previous: _Layer | str | None, first: dict[str, _Layer]
    ) -> LayerSpec | None:
        r = self.r
        m = layer.mapping
        for message, node, fname in m.issues:
            r.add(message, node, layer.label, fname)
        inputs = self._from(layer, previous, first)
        if layer.op is None:
            return None
        op = layer.op
        self._check_keys(layer)
        for required in REQUIRED_FIELDS.get(op, ()):
            if required not in m.fields:
                r.add(f"{op} needs '{required}'", m.node, layer.label, required)

        ctx = _Fields(self, layer)
        values: dict[str, Any] = {}
        for fname in OP_FIELDS[op]:
            value_node = m.value(fname)
            if value_node is not None:
                value = ctx.parse(fname, value_node)
                if value is not _BAD:
                    values[fname] = value
        ctx.finish(values)
        if inputs is None or layer.name is None:
            return None
        return LayerSpec(
            index=layer.index,
            name=layer.name,
            op=op,
            inputs=inputs,
            location=r.location(m.node),
            field_locations={key: r.location(value) for key, (_, value) in m.fields.items()},
            **values,
        )

    def _check_keys(self, layer: _Layer) -> None:
        assert layer.op is not None
        op = layer.op
        allowed = (*COMMON_FIELDS, *OP_FIELDS[op])
        for key, (key_node, _) in layer.mapping.fields.items():
            if key in allowed:
                continue
            owners = [other for other, fields in OP_FIELDS.items() if key in fields]
            if owners:
                message = f"'{key}' is a field of {', '.join(owners)}, not {op}."
            else:
                message = f"unknown field '{key}' for {op}{_did_you_mean(key, allowed)}"
            self.r.add(f"{message} {op} accepts: {', '.join(allowed)}", key_node, layer.label, key)

    def _from(
        self, layer: _Layer, previous: _Layer | str | None, first: dict[str, _Layer]
    ) -> tuple[str, ...] | None:
        """The producers of `layer`; None when they cannot be known (a problem was reported)."""
        r = self.r
        label = layer.label
        node = layer.mapping.value("from")
        refs: list[tuple[str, yaml.Node]] = []
        if node is None:
            # Default: the previous layer (the stack input for the first); a nameless previous
            # layer has already been reported, so the producer is just unknown.
            self._arity(layer, 1, None)
            default = previous.name if isinstance(previous, _Layer) else previous
            return None if default is None else (default,)
        entries = node.value if _is_list(node) else [node]
        if _is_list(node) and not entries:
            r.add("from must be a layer name or a non-empty list of layer names, got []", node, label, "from")
            return None
        ok = True
        for entry in entries:
            value = r.scalar(entry)
            if not isinstance(value, str):
                r.add(f"from must name layers (strings), {r.got(entry)}", entry, label, "from")
                ok = False
            else:
                refs.append((value, entry))
        earlier = [other for other, defined in first.items() if defined.index < layer.index]
        for ref, entry in refs:
            if ref == INPUT_NAME or ref in earlier:
                continue
            ok = False
            if ref == layer.name:
                r.add(f"a layer cannot read from itself ('{ref}')", entry, label, "from")
            elif ref in first:
                r.add(
                    f"'{ref}' is defined later (line {first[ref].line}); "
                    "a layer can only read from layers above it",
                    entry,
                    label,
                    "from",
                )
            else:
                choices = [INPUT_NAME, *earlier]
                r.add(
                    f"unknown layer '{ref}'{_did_you_mean(ref, choices)} Layers above this one: "
                    f"{', '.join(choices)}",
                    entry,
                    label,
                    "from",
                )
        self._arity(layer, len(entries), node)
        return tuple(ref for ref, _ in refs) if ok else None

    def _arity(self, layer: _Layer, count: int, node: yaml.Node | None) -> None:
        op = layer.op
        if op is None:
            return
        where = node if node is not None else layer.mapping.node
        if op in MERGES and count < 2:
            self.r.add(
                f"{op} merges 2 or more layers: list them in 'from', e.g. from: [a, b]; "
                f"got {_plural(count, 'input')}",
                where,
                layer.label,
                "from",
            )
        elif op not in MERGES and count != 1:
            self.r.add(
                f"{op} takes exactly one input, but 'from' lists {count}; "
                "only add, mul and concat merge layers",
                where,
                layer.label,
                "from",
            )


class _Fields:
    """Validates one layer's op-specific fields; each problem is recorded against the layer."""

    def __init__(self, parser: _StackParser, layer: _Layer) -> None:
        assert layer.op is not None
        self.r = parser.r
        self.rank = parser.rank
        self.rank_source = parser.rank_source
        self.layer = layer
        self.op: str = layer.op

    def add(self, message: str, node: yaml.Node, fname: str) -> None:
        self.r.add(message, node, self.layer.label, fname)

    def node(self, fname: str) -> yaml.Node | None:
        return self.layer.mapping.value(fname)

    # ----------------------------------------------------------------- kinds of values

    def one(self, fname: str, node: yaml.Node, kind: _Kind) -> object:
        value = self.r.scalar(node)
        if kind.check(value):
            return kind.convert(value)
        self.add(f"{fname} must be {kind.one}, {self.r.got(node)}", node, fname)
        return _BAD

    def list_of(self, kind: _Kind, what: str = "") -> str:
        if self.rank is None:
            return f"a list with one entry per spatial axis ({what or kind.many})"
        if self.rank == 1 and not what:
            return f"a list of 1 {kind.one.removeprefix('a ')}"
        return f"a list of {self.rank} {what or kind.many}"

    def wrong_length(self, fname: str, node: yaml.SequenceNode) -> bool:
        """Report a per-axis list whose length is not the rank; True if it was wrong."""
        if self.rank is None or len(node.value) == self.rank:
            return False
        self.add(
            f"{fname} has {_plural(len(node.value), 'entry')} but the input{self.rank_source} has "
            f"{_axes(self.rank)}",
            node,
            fname,
        )
        return True

    def per_axis(self, fname: str, node: yaml.Node, kind: _Kind) -> object:
        """A scalar broadcast to the rank, or a list of exactly `rank` entries, each of `kind`."""
        allowed = f"{kind.one} or {self.list_of(kind)}"
        if _is_list(node):
            bad = self.wrong_length(fname, node)
            values = []
            for entry in node.value:
                value = self.r.scalar(entry)
                if kind.check(value):
                    values.append(kind.convert(value))
                else:
                    self.add(
                        f"{fname} must be {allowed}, {self.r.got(entry)} in {self.r.show(node)}", entry, fname
                    )
                    bad = True
            return _BAD if bad else tuple(values)
        value = self.r.scalar(node)
        if kind.check(value):
            return (kind.convert(value),) * (self.rank or 1)
        self.add(f"{fname} must be {allowed}, {self.r.got(node)}", node, fname)
        return _BAD

    def choice(self, fname: str, node: yaml.Node, choices: Sequence[str], aliases: dict[str, str]) -> object:
        value = self.r.scalar(node)
        if isinstance(value, str) and value in choices:
            return value
        if isinstance(value, str) and value in aliases:
            return aliases[value]
        names = [*choices, *aliases]
        hint = _did_you_mean(value, names).rstrip(".") if isinstance(value, str) else ""
        also = f" (or {_quote_all(list(aliases))})" if aliases else ""
        self.add(f"{fname} must be one of {_quote_all(choices)}{also}, {self.r.got(node)}{hint}", node, fname)
        return _BAD

    def padding(self, node: yaml.Node) -> object:
        """Normalise `padding` to per-axis (before, after) pairs, or 'same'/'valid' for conv and pools."""
        op = self.op
        pairs_ok = op != "deconv"
        modes_ok = op in ("conv", *_POOLS)
        negative_ok = op == "pad"
        entry = _Kind(
            "an integer" if negative_ok else "a non-negative integer",
            "integers" if negative_ok else "non-negative integers",
            (lambda v: _is_int(v)) if negative_ok else _NONNEG_INT.check,
        )
        if not pairs_ok:
            allowed = f"{entry.one} or {self.list_of(entry)}"
        else:
            each = f"(each {entry.one} or a [before, after] pair)"
            allowed = f"{entry.one} or {self.list_of(entry, 'entries')} {each}"
        if modes_ok:
            allowed = allowed.replace(" or ", ", ", 1) + ", 'same' or 'valid'"

        value = self.r.scalar(node)
        if isinstance(value, str) and value in ("same", "valid"):
            if modes_ok:
                return value
            reason = (
                "PyTorch's ConvTranspose has no 'same'/'valid' padding"
                if op == "deconv"
                else "pad takes explicit sizes"
            )
            self.add(f"padding must be {allowed}, got '{value}' ({reason})", node, "padding")
            return _BAD
        if entry.check(value):
            assert _is_int(value)
            return ((value, value),) * (self.rank or 1)
        if not _is_list(node):
            self.add(f"padding must be {allowed}, {self.r.got(node)}", node, "padding")
            return _BAD

        bad = self.wrong_length("padding", node)
        result: list[tuple[int, int]] = []
        for axis in node.value:
            single = self.r.scalar(axis)
            if entry.check(single):
                assert _is_int(single)
                result.append((single, single))
                continue
            if _is_list(axis) and pairs_ok and len(axis.value) == 2:
                before, after = (self.r.scalar(side) for side in axis.value)
                if entry.check(before) and entry.check(after):
                    assert _is_int(before)
                    assert _is_int(after)
                    result.append((before, after))
                    continue
            if _is_list(axis) and not pairs_ok:
                reason = " (PyTorch's ConvTranspose takes one padding per axis, no [before, after] pairs)"
            else:
                reason = ""
            self.add(
                f"padding must be {allowed}, {self.r.got(axis)} in {self.r.show(node)}{reason}",
                axis,
                "padding",
            )
            bad = True
        return _BAD if bad else tuple(result)

    # ----------------------------------------------------------------- per field

    def parse(self, fname: str, node: yaml.Node) -> object:
        if fname in ("kernel", "stride", "dilation"):
            return self.per_axis(fname, node, _POS_INT)
        if fname == "output_padding":
            return self.per_axis(fname, node, _NONNEG_INT)
        if fname in ("out", "groups", "factor"):
            return self.one(fname, node, _POS_INT)
        if fname in ("bias", "ceil_mode", "count_include_pad", "align_corners"):
            return self.one(fname, node, _BOOL)
        if fname in ("value", "negative_slope"):
            return self.one(fname, node, _NUMBER)
        if fname == "eps":
            return self.one(fname, node, _POS_NUMBER)
        if fname == "p":
            return self.one(fname, node, _PROBABILITY)
        if fname == "padding":
            return self.padding(node)
        if fname == "padding_mode":
            return self.choice(fname, node, CONV_PADDING_MODES, {})
        if fname == "mode":
            if self.op == "upsample":
                return self.choice(fname, node, UPSAMPLE_MODES, UPSAMPLE_MODE_ALIASES)
            return self.choice(fname, node, PAD_MODES, {"zeros": "constant"})
        if fname == "scale":
            return self.per_axis(fname, node, _POS_NUMBER)
        if fname == "size":
            kind = _POS_INT if self.op == "upsample" else _POS_INT_OR_NULL
            return self.per_axis(fname, node, kind)
        raise AssertionError(f"no parser for field {fname!r}")  # pragma: no cover - OP_FIELDS grew

    def finish(self, values: dict[str, Any]) -> None:
        """Fill op-dependent defaults and check the rules that involve several fields."""
        op = self.op
        rank = self.rank or 1
        written = self.layer.mapping.fields
        if op in _WINDOW_OPS:
            # Window ops get every per-axis field, so the arithmetic needs no op-specific defaults.
            if "stride" not in values:
                kernel = values.get("kernel")
                values["stride"] = kernel if op in _POOLS and kernel is not None else (1,) * rank
            values.setdefault("dilation", (1,) * rank)
            values.setdefault("output_padding", (0,) * rank)
            values.setdefault("padding", ((0, 0),) * rank)
        elif op == "upsample":
            self._upsample(values)
        elif op == "pad":
            values.setdefault("mode", "constant")
            value_node = self.node("value")
            if values["mode"] != "constant" and values.get("value", 0.0) != 0.0 and value_node is not None:
                self.add(
                    f"value only applies to mode 'constant' (PyTorch: padding mode \"{values['mode']}\" "
                    f"doesn't take in value argument), {self.r.got(value_node)}",
                    value_node,
                    "value",
                )
        elif op in _PIXEL_OPS and self.rank is not None and self.rank != 2:
            op_node = written["op"][1]
            self.add(
                f"{op} works on exactly 2 spatial axes in PyTorch, but the input{self.rank_source} has "
                f"{self.rank}",
                op_node,
                "op",
            )

    def _upsample(self, values: dict[str, Any]) -> None:
        layer = self.layer
        written = layer.mapping.fields
        if "scale" in written and "size" in written:
            later = max(("scale", "size"), key=lambda k: written[k][0].start_mark.index)
            self.add("give either 'scale' or 'size', not both", written[later][0], later)
        elif "scale" not in written and "size" not in written:
            message = "upsample needs 'scale' (a factor) or 'size' (the output size)"
            self.add(message, layer.mapping.node, "scale")

        mode_node = self.node("mode")
        mode_ok = mode_node is None or "mode" in values  # an invalid mode was reported already
        raw_mode = self.r.scalar(mode_node) if mode_node is not None else None
        if mode_node is not None and isinstance(raw_mode, str) and raw_mode in _MODE_RANK:
            needed = _MODE_RANK[raw_mode]
            if self.rank is not None and self.rank != needed:
                self.add(
                    f"mode '{raw_mode}' needs {needed} spatial axes, but the input{self.rank_source} has "
                    f"{self.rank}; write 'linear' (convcalc applies it to every axis)",
                    mode_node,
                    "mode",
                )
        values.setdefault("mode", "nearest")
        align_node = self.node("align_corners")
        if align_node is not None and mode_ok and values["mode"] != "linear":
            self.add(
                "align_corners can only be set with mode 'linear' (PyTorch: align_corners option can only be "
                f"set with the interpolating modes), but mode is '{values['mode']}'",
                align_node,
                "align_corners",
            )
