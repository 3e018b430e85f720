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
  when one is given; every per-axis field is broadcast to it.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, TypeGuard

import yaml

from convcalc import collector
from convcalc.errors import FileProblemError, Problem, SpecError
from convcalc.format import blocks
from convcalc.format.validate import RawLayer, list_names, read_input, validate_layers
from convcalc.notation import dims_text
from convcalc.ops import registry
from convcalc.stack.spec import (
    FORMAT_VERSION,
    INPUT_NAME,
    InputSpec,
    LayerSpec,
    Location,
    StackSpec,
    output_name,
    output_of,
)
from convcalc.stack.values import BAD, Value, is_int

try:
    from yaml import CSafeLoader as _Loader
except ImportError:  # PyYAML built without libyaml: same behaviour, slower
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

__all__ = ["TOP_LEVEL_KEYS", "load_stack", "parse_input_shape", "parse_stack"]


#: The keys a stack file may have at its top level (extend this one table for new sections).
TOP_LEVEL_KEYS: Final = ("name", "description", "version", "input", "blocks", "layers")

_MERGE_TAG: Final = "tag:yaml.org,2002:merge"
_YAML_TAG_PREFIX: Final = "tag:yaml.org,2002:"
_NULL_TAG: Final = "tag:yaml.org,2002:null"
_SEQ_TAG: Final = "tag:yaml.org,2002:seq"
_MAP_TAG: Final = "tag:yaml.org,2002:map"
_INT_TAG: Final = "tag:yaml.org,2002:int"
_BOOL_TAG: Final = "tag:yaml.org,2002:bool"
_STR_TAG: Final = "tag:yaml.org,2002:str"
_FLOAT_TAG: Final = "tag:yaml.org,2002:float"
#: Integers SafeConstructor reads as plain int(text): no sign-only, octal (010), hex, binary, `_` or `:`.
_DECIMAL: Final = re.compile(r"[-+]?[1-9][0-9]*|0")
_BOOL_WORDS: Final = yaml.constructor.SafeConstructor.bool_values


# --------------------------------------------------------------------------- small helpers


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


#: A message lists at most this many names: the first _HEAD, then the last ones, the rest counted.
_LISTED: Final = 20
_HEAD: Final = 5


def _axes(n: int) -> str:
    return "1 spatial axis" if n == 1 else f"{n} spatial axes"


def _plural(n: int, word: str) -> str:
    if n == 1:
        return f"1 {word}"
    return f"{n} {word[:-1]}ies" if word.endswith("y") else f"{n} {word}s"


# --------------------------------------------------------------------------- YAML nodes


@dataclass
class _Mapping:
    """A mapping node read as field name -> (key node, value node), merges applied."""

    node: yaml.MappingNode
    fields: dict[str, tuple[yaml.Node, yaml.Node]]
    #: Problems found while reading it (duplicate or non-string keys): (message, node, field).
    issues: list[tuple[str, yaml.Node, str | None]]
    #: Fields whose problem was already reported while expanding a block (not reported again).
    reported: frozenset[str] = frozenset()

    def value(self, name: str) -> yaml.Node | None:
        pair = self.fields.get(name)
        return pair[1] if pair is not None else None


class _Reader:
    """Per-parse state: the file name, PyYAML's scalar constructor and the problems so far."""

    def __init__(self, file: str | None) -> None:
        self.file = file
        self.problems: list[Problem] = []
        self._constructor = yaml.constructor.SafeConstructor()
        #: Said after any problem about a node made by block expansion: where its value came from.
        self.notes: dict[yaml.Node, str] = {}

    def location(self, node: yaml.Node) -> Location:
        mark = node.start_mark
        return Location(self.file, mark.line + 1, mark.column + 1)

    def add(self, message: str, node: yaml.Node, layer: str | None = None, field: str | None = None) -> None:
        loc = self.location(node)
        message += self.notes.get(node, "")
        self.problems.append(Problem(message, self.file, loc.line, loc.column, layer, field))

    def scalar(self, node: yaml.Node) -> object:
        """The typed value of a scalar node; BAD for a collection or a scalar PyYAML cannot build."""
        if not isinstance(node, yaml.ScalarNode):
            return BAD
        # The common cases read directly, exactly as SafeConstructor reads them: its generic
        # dispatch costs several times more, and every field of every layer comes through here.
        tag = node.tag
        if tag == _STR_TAG:
            return node.value
        if tag == _INT_TAG and _DECIMAL.fullmatch(node.value):
            return int(node.value)
        if tag == _NULL_TAG:
            return None
        if tag == _BOOL_TAG and node.value.lower() in _BOOL_WORDS:
            return _BOOL_WORDS[node.value.lower()]
        try:
            return self._constructor.construct_object(node, deep=True)
        except Exception:
            # SafeConstructor raises ConstructorError for unknown tags but lets ValueError etc. escape
            # for explicitly tagged garbage (`!!int abc`); either way the value is unusable.
            return BAD

    def value(self, node: yaml.Node, depth: int = 0) -> Value:
        """The node as a Value (what validation reads), with its place and any block-expansion note.

        A tagged collection (`!!python/object/apply:os.system [...]`, `!!omap`) is not a plain list or
        mapping: it becomes an unreadable value that shows as written.
        """
        where = self.location(node)
        note = self.notes.get(node, "")
        if isinstance(node, yaml.ScalarNode):
            data = self.scalar(node)
            standard = node.tag.startswith(_YAML_TAG_PREFIX)
            tag = _short_tag(node.tag) if not standard or data is BAD else ""
            return Value(data, where, raw=node.value, tag=tag, note=note)
        if depth > 20:  # aliases may nest (or recurse): deep enough for any field, bounded for the rest
            return Value(BAD, where, raw="...", note=note)
        if _is_list(node):
            assert isinstance(node, yaml.SequenceNode)
            return Value(None, where, items=tuple(self.value(c, depth + 1) for c in node.value), note=note)
        if _is_map(node):
            assert isinstance(node, yaml.MappingNode)
            pairs = tuple((self.value(k, depth + 1), self.value(v, depth + 1)) for k, v in node.value)
            return Value(None, where, pairs=pairs, note=note)
        shown = self.show(node)
        tag = _short_tag(node.tag)
        return Value(BAD, where, raw=shown.removeprefix(tag).strip(), tag=tag, note=note)

    def show(self, node: yaml.Node, depth: int = 0) -> str:
        """The value as the user wrote it, short enough for a message (aliases may be recursive)."""
        if depth > 2:
            return "..."
        if isinstance(node, yaml.ScalarNode):
            value = self.scalar(node)
            if not node.tag.startswith(_YAML_TAG_PREFIX) or value is BAD:
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
                result.issues.append((f"keys must be field names (strings), {self.got(key_node)}", key_node, None))
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
                f" ({exc.context} started on line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1})"
            )
        line = mark.line + 1 if mark is not None else None
        column = mark.column + 1 if mark is not None else None
        if mark is not None and text[max(mark.index - 1, 0) : mark.index + 1] == "${":
            message += '; in [...] and {...} write a block parameter in quotes: "${name}"'
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


def load_stack(
    path: str | os.PathLike[str], input_override: InputSpec | None = None, allow_rank_change: bool = False
) -> StackSpec:
    """Read and validate the stack file at `path` (see parse_stack); a `path` that does not exist
    may name a bundled stack (`resnet50`, see convcalc.format.library). Model files (ONNX, `.pt2`)
    are read by `convcalc.importers.open_stack`, which also takes everything this takes.

    FileProblemError (one Problem naming the file) when the file cannot be read as a YAML mapping;
    SpecError with every problem when its content is invalid.
    """
    file = os.fspath(path)
    label = file  # how messages and reports name the stack
    if not os.path.exists(file):
        # A bundled architecture by name (`convcalc rf resnet50`, or `bundled:resnet50` as reports name
        # it); a real path always wins. Reports say `bundled:resnet50`, not the install path.
        from convcalc.format.library import BUNDLED_PREFIX, bundled_config, list_configs

        bundled = bundled_config(file.removeprefix(BUNDLED_PREFIX))
        if bundled is not None:
            file, label = str(bundled), BUNDLED_PREFIX + bundled.stem
        elif (os.sep not in file and "/" not in file) or file.startswith(BUNDLED_PREFIX):
            names = ", ".join(p.stem for p in list_configs())
            raise FileProblemError(Problem(f"no such file, and no bundled stack of that name ({names})", file))
    if os.path.isdir(file):
        raise FileProblemError(Problem("is a directory, not a stack file", label))
    try:
        with open(file, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise FileProblemError(Problem("no such file", label)) from None
    except OSError as exc:
        raise FileProblemError(Problem(f"cannot read the file: {exc.strerror or exc}", label)) from None
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
                label,
                line,
                column,
            )
        ) from None
    return parse_stack(
        text.removeprefix("\ufeff"), file=label, input_override=input_override, allow_rank_change=allow_rank_change
    )


def parse_stack(
    text: str, file: str | None = None, input_override: InputSpec | None = None, allow_rank_change: bool = False
) -> StackSpec:
    """Validate stack YAML `text` (from `file`, used in messages) into a StackSpec.

    Raises SpecError carrying every problem found, or FileProblemError if the text is not a YAML
    mapping at all. With `input_override` the file's `input` may be omitted (if present it is still
    checked), the override is the stack's input, and the rank comes from it. An override with another
    number of spatial axes than the file's `input` is refused (parameter `input`) unless
    `allow_rank_change`: the layers are then read at the override's rank.
    """
    with collector.paused():
        root = _compose(text, file)
        spec = _StackParser(_Reader(file), input_override, allow_rank_change).parse(root)
        # Freed now by reference counting: alive when the collector resumes, it would be walked once.
        del root
    return spec


_SHAPE_SPLIT: Final = re.compile(r"\s*[x×X,]\s*")
_UNKNOWN_SIZES: Final = ("?", "null", "none")


def parse_input_shape(text: str) -> InputSpec:
    """Parse an input shape given as text: `3x512x512`, `3,512,512`, `3×512×512`; `?` or `null` = unknown size.

    Problems name the parameter `input` (the CLI's `--input`).
    """
    shape = text.strip()
    if shape[:1] in ("[", "(") and shape[-1:] in ("]", ")"):
        shape = shape[1:-1].strip()
    parts = _SHAPE_SPLIT.split(shape) if shape else []
    usage = "give channels then 1 to 3 spatial sizes, e.g. 3x224x224 (or 3,224,224; ? for an unknown size)"
    if not 2 <= len(parts) <= 4:
        raise SpecError(Problem(f"an input shape must {usage}; got '{text}'", parameter="input"))
    problems: list[Problem] = []
    if not re.fullmatch(r"[0-9]+", parts[0]) or int(parts[0]) < 1:
        problems.append(
            Problem(
                f"the channel count must be a positive integer, got '{parts[0]}' in '{text}'",
                parameter="input",
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
                    parameter="input",
                )
            )
    if problems:
        raise SpecError(problems)
    return InputSpec(int(parts[0]), tuple(spatial))


# --------------------------------------------------------------------------- blocks


_PARAM_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_EXPR_WORDS: Final = ("and", "or", "not", "true", "false", blocks.INDEX_NAME)
_MAX_REPEAT: Final = 10_000


def _value_node(value: object, mark: yaml.Mark) -> yaml.Node:
    """A scalar node holding an expression's value, placed where the expression was written."""
    if isinstance(value, bool):
        return yaml.ScalarNode(_BOOL_TAG, "true" if value else "false", mark, mark)
    if isinstance(value, int):
        return yaml.ScalarNode(_INT_TAG, str(value), mark, mark)
    if isinstance(value, float):
        return yaml.ScalarNode(_FLOAT_TAG, repr(value), mark, mark)
    if value is None:
        return yaml.ScalarNode(_NULL_TAG, "null", mark, mark)
    return yaml.ScalarNode(_STR_TAG, str(value), mark, mark)


def _relocate(node: yaml.Node, mark: yaml.Mark) -> yaml.Node:
    """A copy of `node` with every mark moved to `mark` (a parameter value pasted where it is used)."""
    if isinstance(node, yaml.SequenceNode):
        items = [_relocate(child, mark) for child in node.value]
        return yaml.SequenceNode(node.tag, items, mark, mark, node.flow_style)
    if isinstance(node, yaml.MappingNode):
        pairs = [(_relocate(k, mark), _relocate(v, mark)) for k, v in node.value]
        return yaml.MappingNode(node.tag, pairs, mark, mark, node.flow_style)
    return yaml.ScalarNode(node.tag, node.value, mark, mark, getattr(node, "style", None))


def _merge_instances(problems: list[Problem]) -> list[Problem]:
    """One problem per place in the file: the same mistake in a block repeats in every instance."""
    seen: dict[tuple[object, ...], int] = {}
    counts: list[int] = []
    kept: list[Problem] = []
    for problem in problems:
        key = (problem.message, problem.file, problem.line, problem.column, problem.field)
        if key in seen:
            counts[seen[key]] += 1
            continue
        seen[key] = len(kept)
        kept.append(problem)
        counts.append(0)
    return [
        p
        if n == 0
        else Problem(f"{p.message} (and in {_plural(n, 'more instance')})", p.file, p.line, p.column, p.layer, p.field)
        for p, n in zip(kept, counts, strict=True)
    ]


@dataclass
class _Param:
    name: str
    default: yaml.Node | None  # None: required
    key: yaml.Node


@dataclass
class _BlockDef:
    """A block under `blocks:`, read once; its layers are expanded per instance."""

    name: str
    node: yaml.MappingNode
    params: dict[str, _Param]
    layers: list[_Mapping | yaml.Node]
    output: yaml.Node | None


@dataclass
class _Env:
    """The parameters of one instance: values for expressions, nodes for `${name}` copies."""

    values: dict[str, blocks.Value]
    nodes: dict[str, yaml.Node]


class _Expander:
    """Expands block uses in `layers` into plain layer mappings (see convcalc.format.blocks for the rules).

    Every expanded layer gets an explicit qualified `name` and an explicit, resolved `from`; values
    with `${...}` are replaced by nodes placed where the expression was written, so the ordinary
    per-layer validation reports file, line and column inside the block, under the instance's name.
    """

    def __init__(self, reader: _Reader, node: yaml.Node | None) -> None:
        self.r = reader
        self.defs: dict[str, _BlockDef] = {}
        self.out: list[_Mapping | yaml.Node] = []
        self.qualified: set[str] = set()
        self.used = False
        self._defined = node is not None
        if node is not None:
            self._read_defs(node)

    # ----------------------------------------------------------------- definitions

    def _read_defs(self, node: yaml.Node) -> None:
        r = self.r
        if not _is_map(node):
            r.add(
                f"blocks must be a mapping of block name to {{params: {{...}}, layers: [...]}}, {r.got(node)}",
                node,
                field="blocks",
            )
            return
        top = r.mapping(node)
        for message, issue_node, fname in top.issues:
            r.add(message, issue_node, field=fname or "blocks")
        for name, (key_node, value) in top.fields.items():
            block = self._read_def(name, key_node, value)
            if block is not None:
                self.defs[name] = block

    def _read_def(self, name: str, key_node: yaml.Node, node: yaml.Node) -> _BlockDef | None:
        r = self.r
        where = f"block {name}"
        if not _is_map(node):
            r.add(f"a block is a mapping {{params: {{...}}, layers: [...]}}, {r.got(node)}", node, where)
            return None
        m = r.mapping(node)
        for message, issue_node, fname in m.issues:
            r.add(message, issue_node, where, fname)
        for key, (knode, _) in m.fields.items():
            if key not in blocks.BLOCK_FIELDS:
                r.add(
                    f"unknown key '{key}' in a block{_did_you_mean(key, blocks.BLOCK_FIELDS)} "
                    f"A block has: {', '.join(blocks.BLOCK_FIELDS)}",
                    knode,
                    where,
                    key,
                )
        params = self._read_params(m.value("params"), where)
        layers_node = m.value("layers")
        layers: list[_Mapping | yaml.Node] = []
        if layers_node is None:
            r.add("a block needs 'layers': a non-empty list of layers", node, where, "layers")
            return None
        if not _is_list(layers_node) or not layers_node.value:
            r.add(f"layers must be a non-empty list of layer mappings, {r.got(layers_node)}", layers_node, where)
            return None
        for i, item in enumerate(layers_node.value):
            if not _is_map(item):
                r.add(
                    f"each layer must be a mapping such as {{op: conv, kernel: 3}}, {r.got(item)}",
                    item,
                    f"{where} #{i + 1}",
                )
                continue
            inner = r.mapping(item)
            for message, issue_node, fname in inner.issues:
                r.add(message, issue_node, f"{where} #{i + 1}", fname)
            layers.append(_Mapping(inner.node, inner.fields, []))
        output = m.value("output")
        if output is not None and not isinstance(r.scalar(output), str):
            r.add(f"output must name a layer of the block, {r.got(output)}", output, where, "output")
            output = None
        return _BlockDef(name, node, params, layers, output)

    def _read_params(self, node: yaml.Node | None, where: str) -> dict[str, _Param]:
        r = self.r
        params: dict[str, _Param] = {}
        if node is None:
            return params
        pairs: list[tuple[yaml.Node, yaml.Node | None]]
        if _is_list(node):  # [a, b]: all required
            pairs = [(entry, None) for entry in node.value]
        elif _is_map(node):
            m = r.mapping(node)
            for message, issue_node, fname in m.issues:
                r.add(message, issue_node, where, fname or "params")
            pairs = [(k, None if v.tag == _NULL_TAG else v) for k, v in m.fields.values()]
        else:
            r.add(
                f"params must map parameter names to defaults, e.g. {{out: 64, stride: 1}}, {r.got(node)}",
                node,
                where,
                "params",
            )
            return params
        for key, default in pairs:
            pname = r.scalar(key)
            if not isinstance(pname, str) or not _PARAM_NAME.fullmatch(pname) or pname in _EXPR_WORDS:
                r.add(
                    "parameter names are identifiers (letters, digits, _) other than "
                    f"{_quote_all(_EXPR_WORDS)}, {r.got(key)}",
                    key,
                    where,
                    "params",
                )
                continue
            params[pname] = _Param(pname, default, key)
        return params

    # ----------------------------------------------------------------- expansion

    def expand(self, items: Sequence[yaml.Node]) -> list[_Mapping | yaml.Node]:
        """The flat layer list: `items` unchanged when no layer uses a block."""
        if not any(self._uses_block(item) for item in items):
            return list(items)
        self.used = True
        scope = blocks.Scope("", {}, None, self.qualified)
        try:
            self._sequence(items, scope, None, INPUT_NAME, [], "")
        except _TooBig as exc:
            raise SpecError(Problem(str(exc), self.r.file)) from None
        return self.out

    def _uses_block(self, item: yaml.Node) -> bool:
        """True for a layer mapping with a `block` key (read cheaply: every layer of a file is asked)."""
        if not _is_map(item):
            return False
        return any(key.value == "block" and self.r.scalar(key) == "block" for key, _ in item.value)

    def _mappings(self, items: Sequence[yaml.Node | _Mapping]) -> list[_Mapping | yaml.Node]:
        return [item if isinstance(item, _Mapping) or not _is_map(item) else self.r.mapping(item) for item in items]

    def _sequence(
        self,
        raw: Sequence[yaml.Node | _Mapping],
        scope: blocks.Scope,
        env: _Env | None,
        first_input: str,
        stack: list[str],
        where: str,
    ) -> str:
        """Expand one list of layers (the top level, or one block instance); returns the last output."""
        items = self._mappings(raw)
        names = self._local_names(items, env)
        for item, local in zip(items, names, strict=True):
            if isinstance(item, _Mapping) and local is not None and "block" not in item.fields:
                scope.names.setdefault(local, blocks.qualify(scope.prefix, local))
        previous = first_input
        for item, local in zip(items, names, strict=True):
            if not isinstance(item, _Mapping):
                self.out.append(item)  # the loader reports it
                continue
            if "block" in item.fields:
                previous = self._use(item, local, scope, env, previous, stack, where)
            else:
                previous = self._layer(item, local, scope, env, previous, where)
        return previous

    def _local_names(self, items: list[_Mapping | yaml.Node], env: _Env | None) -> list[str | None]:
        """Each item's name in its list: written, or `<op><n>` / `<block><n>` counted within the list."""
        kinds: list[str | None] = []
        names: list[str | None] = []
        for item in items:
            kind: str | None = None
            name: str | None = None
            if isinstance(item, _Mapping):
                is_use = "block" in item.fields
                kind_node = item.value("block" if is_use else "op")
                raw = self._peek(kind_node, env)
                if isinstance(raw, str):
                    kind = raw if is_use else (registry.canonical(raw) or raw)
                name_node = item.value("name")
                written = self._peek(name_node, env)
                if isinstance(written, str) and written.strip():
                    name = written
                elif name_node is not None:
                    kind = None  # a bad name is reported by the loader; invent none
            kinds.append(kind)
            names.append(name)
        taken = {n for n in names if n is not None}
        seen: dict[str, int] = {}
        # Past the last default of a kind every number is taken, so the search resumes there:
        # linear however many written names it has to skip (as _StackParser._default_names).
        next_free: dict[str, int] = {}
        for i, (kind, name) in enumerate(zip(kinds, names, strict=True)):
            if kind is None:
                continue
            seen[kind] = seen.get(kind, 0) + 1
            if name is not None:
                continue
            n = max(seen[kind], next_free.get(kind, 1))
            while f"{kind}{n}" in taken:
                n += 1
            names[i] = f"{kind}{n}"
            taken.add(f"{kind}{n}")
            next_free[kind] = n + 1
        return names

    def _peek(self, node: yaml.Node | None, env: _Env | None) -> object:
        """A scalar's value with references substituted, without reporting (the real pass does)."""
        if node is None:
            return None
        value = self.r.scalar(node)
        if env is not None and isinstance(value, str) and blocks.has_refs(value):
            try:
                return blocks.substitute(value, env.values)
            except blocks.ExprError:
                return None
        return value

    def _subst(self, node: yaml.Node, env: _Env, label: str, fname: str) -> yaml.Node | None:
        """`node` with its `${...}` references replaced; None when one fails (reported)."""
        if isinstance(node, yaml.SequenceNode):
            children = [self._subst(child, env, label, fname) for child in node.value]
            if any(child is None for child in children):
                return None
            kept = [child for child in children if child is not None]
            return yaml.SequenceNode(node.tag, kept, node.start_mark, node.end_mark, node.flow_style)
        if not isinstance(node, yaml.ScalarNode) or node.tag != _STR_TAG or not blocks.has_refs(node.value):
            return node
        text = node.value
        whole = text.strip()
        name = whole[2:-1].strip() if whole.startswith("${") and whole.endswith("}") else ""
        try:
            if name in env.nodes:
                result = _relocate(env.nodes[name], node.start_mark)
            else:
                result = _value_node(blocks.substitute(text, env.values), node.start_mark)
        except blocks.ExprError as exc:
            self.r.add(str(exc), node, label, fname)
            return None
        note = f" (from '{text}')"
        stack = [result]
        while stack:
            current = stack.pop()
            self.r.notes[current] = note
            if isinstance(current, yaml.SequenceNode):
                stack.extend(current.value)
        return result

    def _resolve(
        self, entry: yaml.Node, scope: blocks.Scope, env: _Env | None, label: str, where: str
    ) -> yaml.Node | None:
        """A `from` entry as a node naming the qualified producer; None when reported as unknown."""
        r = self.r
        if env is not None:
            substituted = self._subst(entry, env, label, "from")
            if substituted is None:
                return None
            entry = substituted
        ref = r.scalar(entry)
        if not isinstance(ref, str):
            return entry  # the loader reports the type
        target = _resolve_output(scope, ref)
        if target is not None:
            return yaml.ScalarNode(_STR_TAG, target, entry.start_mark, entry.end_mark)
        if not where:
            return entry  # top level: the loader reports unknown layers with the layers above
        choices = [INPUT_NAME, *(n for n in scope.visible() if n != INPUT_NAME)]
        r.add(
            f"unknown layer '{ref}' in {where}{_did_you_mean(ref, choices)} "
            f"Names here: {list_names(choices)} (and the names where the block is used)",
            entry,
            label,
            "from",
        )
        return None

    def _from(
        self, m: _Mapping, scope: blocks.Scope, env: _Env | None, previous: str, label: str, where: str
    ) -> tuple[yaml.Node, yaml.Node] | None:
        node = m.value("from")
        if node is None:
            synthetic = yaml.ScalarNode(_STR_TAG, "from", m.node.start_mark, m.node.start_mark)
            return synthetic, yaml.ScalarNode(_STR_TAG, previous, m.node.start_mark, m.node.start_mark)
        key = m.fields["from"][0]
        if _is_list(node):
            entries = [self._resolve(e, scope, env, label, where) for e in node.value]
            if any(e is None for e in entries):
                return None
            kept = [e for e in entries if e is not None]
            return key, yaml.SequenceNode(node.tag, kept, node.start_mark, node.end_mark, node.flow_style)
        entry = self._resolve(node, scope, env, label, where)
        return None if entry is None else (key, entry)

    def _layer(
        self, m: _Mapping, local: str | None, scope: blocks.Scope, env: _Env | None, previous: str, where: str
    ) -> str:
        """Append one plain layer; returns the name the next layer reads by default."""
        r = self.r
        qualified = blocks.qualify(scope.prefix, local) if local is not None else None
        label = qualified or f"#{len(self.out) + 1}"
        if local == INPUT_NAME and where:
            name_node = m.value("name")
            assert name_node is not None
            r.add(
                f"'{INPUT_NAME}' is the block's input (used in 'from'); choose another name",
                name_node,
                label,
                "name",
            )
        fields: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        reported: set[str] = set()
        resolved = self._from(m, scope, env, previous, label, where)
        if resolved is None:
            reported.add("from")
        else:
            fields["from"] = resolved
        keep = True
        for key, (key_node, value) in m.fields.items():
            if key == "from":
                continue
            if key == "name" and qualified is not None:
                value = yaml.ScalarNode(_STR_TAG, qualified, value.start_mark, value.end_mark)
            elif env is not None and key != "name":
                substituted = self._subst(value, env, label, key)
                if substituted is None:
                    reported.add(key)
                    continue
                value = substituted
            if key == "when" and env is not None:
                keep = self._when(value, label)
                continue
            fields[key] = (key_node, value)
        if "name" not in fields and qualified is not None:
            fields["name"] = (
                m.node,
                yaml.ScalarNode(_STR_TAG, qualified, m.node.start_mark, m.node.start_mark),
            )
        if not keep:
            # Left out: readers of this layer read its input instead.
            inputs = fields.get("from")
            target = r.scalar(inputs[1]) if inputs is not None else None
            if local is not None:
                if isinstance(target, str):
                    scope.names[local] = target
                else:
                    scope.names.pop(local, None)
            return target if isinstance(target, str) else previous
        if qualified is not None:
            self.qualified.add(qualified)
            if local is not None:
                scope.names[local] = qualified
        if len(self.out) >= blocks.MAX_LAYERS:
            raise _TooBig(f"the blocks expand to more than {blocks.MAX_LAYERS:,} layers")
        self.out.append(_Mapping(m.node, fields, m.issues, frozenset(reported)))
        return qualified if qualified is not None else previous

    def _when(self, node: yaml.Node, label: str) -> bool:
        value = self.r.scalar(node)
        if isinstance(value, bool):
            return value
        self.r.add(f'when must be true or false (e.g. "${{stride > 1}}"), {self.r.got(node)}', node, label, "when")
        return True

    def _use(
        self,
        m: _Mapping,
        local: str | None,
        scope: blocks.Scope,
        env: _Env | None,
        previous: str,
        stack: list[str],
        where: str,
    ) -> str:
        """Expand a block use (all its instances); returns the output of the last instance."""
        r = self.r
        label = blocks.qualify(scope.prefix, local) if local is not None else f"#{len(self.out) + 1}"
        for key, (key_node, _) in m.fields.items():
            if key not in blocks.CALL_FIELDS:
                hint = (
                    " (a layer has either 'op' or 'block')" if key == "op" else _did_you_mean(key, blocks.CALL_FIELDS)
                )
                r.add(
                    f"unknown field '{key}' for a block use{hint} A block use accepts: {', '.join(blocks.CALL_FIELDS)}",
                    key_node,
                    label,
                    key,
                )
        block_node = m.fields["block"][1]
        block_name = self._peek(block_node, env)
        if not isinstance(block_name, str):
            r.add(
                f"block must name a block defined under 'blocks:', {r.got(block_node)}",
                block_node,
                label,
                "block",
            )
            return previous
        if block_name not in self.defs:
            if self._defined:
                hint = _did_you_mean(block_name, list(self.defs))
                message = f"unknown block '{block_name}'{hint} Blocks: {', '.join(self.defs) or 'none'}"
            else:
                message = f"unknown block '{block_name}': define it under the top-level 'blocks:' key"
            r.add(message, block_node, label, "block")
            return previous
        block = self.defs[block_name]
        if block_name in stack:
            chain = " → ".join([*stack[stack.index(block_name) :], block_name])
            r.add(f"block '{block_name}' uses itself ({chain})", block_node, label, "block")
            return previous
        if local is None:
            return previous  # its bad name has been reported

        repeat_node = m.value("repeat")
        count = 1
        if repeat_node is not None:
            value = self._peek(repeat_node, env)
            if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= _MAX_REPEAT:
                count = value
            else:
                r.add(
                    f"repeat must be an integer from 1 to {_MAX_REPEAT:,}, {r.got(repeat_node)}",
                    repeat_node,
                    label,
                    "repeat",
                )
                return previous
        start = previous
        from_node = m.value("from")
        if from_node is not None:
            if _is_list(from_node):
                r.add(
                    f"a block has one input: 'from' names one layer, "
                    f"got {_plural(len(from_node.value), 'entry')}; "
                    'pass other layers as parameters (with: {skip: enc2}, then from: [up, "${skip}"])',
                    from_node,
                    label,
                    "from",
                )
                return previous
            entry = self._resolve(from_node, scope, env, label, where)
            target = r.scalar(entry) if entry is not None else None
            if entry is None:
                return previous
            if not isinstance(target, str):
                r.add(f"from must name a layer (a string), {r.got(from_node)}", from_node, label, "from")
                return previous
            found = output_of(target)
            if (
                target != INPUT_NAME
                and target not in self.qualified
                and (found is None or found[0] not in self.qualified)
            ):
                choices = [INPUT_NAME, *scope.visible()]
                r.add(
                    f"'{target}' is not a layer above this block use{_did_you_mean(target, choices)}",
                    from_node,
                    label,
                    "from",
                )
                return previous
            start = target

        given = {k: self._args(m.value(k), block, label, k) for k in ("with", "first")}
        missing = [p.name for p in block.params.values() if p.default is None and p.name not in given["with"]]
        if missing and any(p not in given["first"] or count > 1 for p in missing):
            r.add(
                f"block '{block_name}' needs {_quote_all(missing)}: give them in 'with:'",
                m.node,
                label,
                "with",
            )
            return previous
        output = start
        for index in range(count):
            prefix = blocks.qualify(scope.prefix, blocks.instance_prefix(local, index, repeat_node is not None))
            inst_env = self._bind(block, given, index, env, label)
            if inst_env is None:
                return previous
            inner = blocks.Scope(prefix, {INPUT_NAME: output}, scope, self.qualified)
            where = f"block '{block_name}' ({prefix})"
            last = self._sequence(block.layers, inner, inst_env, output, [*stack, block_name], where)
            if block.output is not None:
                wanted = r.scalar(block.output)
                assert isinstance(wanted, str)
                target = _resolve_output(inner, wanted, local=True)
                if target is None:
                    choices = list(inner.names)
                    r.add(
                        f"output '{wanted}' is not a layer of block '{block_name}'"
                        f"{_did_you_mean(wanted, choices)} "
                        f"Layers: {list_names(choices)}",
                        block.output,
                        f"block {block_name}",
                        "output",
                    )
                    return previous
                last = target
            output = last
            if repeat_node is not None:
                scope.names[f"{local}.{index}"] = output
        scope.names[local] = output
        return output

    def _args(self, node: yaml.Node | None, block: _BlockDef, label: str, key: str) -> dict[str, yaml.Node]:
        """The parameter values of `with:` or `first:`, checked against the block's parameters."""
        r = self.r
        if node is None:
            return {}
        if not _is_map(node):
            r.add(
                f"{key} must map parameter names to values, e.g. {{out: 128}}, {r.got(node)}",
                node,
                label,
                key,
            )
            return {}
        m = r.mapping(node)
        for message, issue_node, fname in m.issues:
            r.add(message, issue_node, label, fname or key)
        args: dict[str, yaml.Node] = {}
        for pname, (key_node, value) in m.fields.items():
            if pname in block.params:
                args[pname] = value
                continue
            known = list(block.params)
            r.add(
                f"block '{block.name}' has no parameter '{pname}'{_did_you_mean(pname, known)} "
                f"Parameters: {', '.join(known) or 'none'}",
                key_node,
                label,
                key,
            )
        return args

    def _bind(
        self,
        block: _BlockDef,
        given: dict[str, dict[str, yaml.Node]],
        index: int,
        caller: _Env | None,
        label: str,
    ) -> _Env | None:
        """The parameters of instance `index`: `first:` (instance 0), `with:`, then the defaults.

        Given values are evaluated where the block is used (its parameters, `index` = this
        instance); defaults inside the block (earlier parameters and `index`)."""
        outer = _Env(
            {**(caller.values if caller else {}), blocks.INDEX_NAME: index},
            dict(caller.nodes if caller else {}),
        )
        env = _Env({blocks.INDEX_NAME: index}, {})
        for param in block.params.values():
            source: yaml.Node | None
            if index == 0 and param.name in given["first"]:
                source, context = given["first"][param.name], outer
            elif param.name in given["with"]:
                source, context = given["with"][param.name], outer
            else:
                source, context = param.default, env
            if source is None:
                self.r.add(f"block '{block.name}' needs parameter '{param.name}'", block.node, label, "with")
                return None
            node = self._subst(source, context, label, param.name)
            if node is None:
                return None
            env.nodes[param.name] = node
            env.values[param.name] = self._value(node)
        return env

    def _value(self, node: yaml.Node) -> blocks.Value:
        if _is_list(node):
            return blocks.Opaque("a list")
        if isinstance(node, yaml.MappingNode):
            return blocks.Opaque("a mapping")
        value = self.r.scalar(node)
        if value is BAD or not isinstance(value, (int, float, str, bool, type(None))):
            return blocks.Opaque(f"a {_short_tag(node.tag)} value")
        return value


def _resolve_output(scope: blocks.Scope, ref: str, local: bool = False) -> str | None:
    """The qualified name `ref` stands for in `scope` (only the scope's own names if `local`), or None;
    an output `sp.1` of a split `sp` is resolved through the split's qualified name."""
    target = scope.names.get(ref) if local else scope.resolve(ref)
    found = output_of(ref)
    if target is None and found is not None:
        head = scope.names.get(found[0]) if local else scope.resolve(found[0])
        if head is not None:
            target = output_name(head, found[1])
    return target


class _TooBig(Exception):
    """The expansion would exceed blocks.MAX_LAYERS."""


# --------------------------------------------------------------------------- the stack


class _StackParser:
    """Validates a composed stack mapping: top-level keys, input, then layers in two passes."""

    def __init__(self, reader: _Reader, input_override: InputSpec | None, allow_rank_change: bool = False) -> None:
        self.r = reader
        self.override = input_override
        self.allow_rank_change = allow_rank_change
        self.rank: int | None = None
        # Appended to rank messages so the user knows the count is not the file's own `input`.
        self.rank_source = " (from the input override)" if input_override is not None else ""

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
            if not (is_int(version) and version == FORMAT_VERSION):
                r.add(
                    f"version must be {FORMAT_VERSION} (the only stack format version), {r.got(version_node)}",
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
        description: str | None = None
        description_node = top.value("description")
        if description_node is not None:
            value = r.scalar(description_node)
            if isinstance(value, str):
                description = value
            else:
                message = f"description must be a one-line string, {r.got(description_node)}"
                r.add(message, description_node, field="description")

        file_input = self._input(root, top.value("input"))
        stack_input = self.override if self.override is not None else file_input
        input_node = top.value("input")
        if self.override is not None:
            if file_input is None or file_input.rank == self.override.rank or self.allow_rank_change:
                self.rank = self.override.rank
            else:
                # The layers stay at the file's rank, so the file's other problems are still reported.
                assert input_node is not None
                self._refuse_rank_change(file_input, self.override, input_node)
                self.rank_source = ""
        input_location = r.location(input_node) if input_node is not None and self.override is None else Location()

        self.expander = _Expander(r, top.value("blocks"))
        layers = self._layers(root, top.value("layers"))
        if r.problems or stack_input is None:
            problems = r.problems
            if self.expander.used:
                problems = _merge_instances(problems)
            # Sorted so the user reads them in file order; the sort is stable for equal positions.
            problems = sorted(problems, key=lambda p: (p.line or 0, p.column or 0))
            raise SpecError(problems)
        return StackSpec(stack_input, tuple(layers), name, r.file, input_location, description)

    def _refuse_rank_change(self, file_input: InputSpec, override: InputSpec, node: yaml.Node) -> None:
        file_shape = dims_text([file_input.channels, *file_input.spatial])
        given = dims_text([override.channels, *override.spatial])
        example = dims_text([override.channels, *(override.spatial * file_input.rank)[: file_input.rank]])
        where = self.r.location(node)
        self.r.problems.append(
            Problem(
                f"the stack's input {file_shape} has {_axes(file_input.rank)} but the given input {given} has "
                f"{override.rank}, which would read every layer as {override.rank}-D (other kernels, strides and "
                f"parameters); give {_plural(file_input.rank, 'spatial size')} (e.g. {example}), unless the rank "
                "change is meant",
                where.file,
                where.line,
                where.column,
                parameter="input",
                allowed_by="allow_rank_change",
            )
        )

    def _input(self, root: yaml.MappingNode, node: yaml.Node | None) -> InputSpec | None:
        r = self.r
        if node is None:
            if self.override is None:
                r.add(
                    "missing 'input': give the input shape as [channels, spatial sizes...], e.g. [3, 224, 224]",
                    root,
                    field="input",
                )
            return None
        if _is_list(node) and 2 <= len(node.value) <= 4:
            self.rank = len(node.value) - 1
        return read_input(r.value(node), _FileReporter(r))

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
        items: list[RawLayer | Value] = []
        for index, entry in enumerate(self.expander.expand(node.value)):
            if not isinstance(entry, _Mapping):
                if not _is_map(entry):
                    items.append(r.value(entry))
                    continue
                entry = r.mapping(entry)
            items.append(
                RawLayer(
                    index,
                    r.location(entry.node),
                    {key: (r.value(k), r.value(v)) for key, (k, v) in entry.fields.items()},
                    [(message, r.location(n), fname) for message, n, fname in entry.issues],
                    entry.reported,
                )
            )
        return validate_layers(items, self.rank, self.rank_source, _FileReporter(r))


class _FileReporter:
    """Problems of the validation, recorded by the reader (which knows the file)."""

    def __init__(self, reader: _Reader) -> None:
        self.r = reader

    def add(self, message: str, where: Location, layer: str | None = None, field: str | None = None) -> None:
        self.r.problems.append(Problem(message, where.file, where.line, where.column, layer, field))
