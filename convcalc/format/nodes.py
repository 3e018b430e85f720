"""YAML text to nodes, and nodes to `Value` trees with their places: the only YAML reading of convcalc.

* YAML is only composed with the safe loader; scalars are typed by PyYAML's SafeConstructor, so
  `3` is an int, `3.0` a float, `true` a bool, `"3"` a string, exactly as YAML says.
* Lines and columns are 1-based (PyYAML's marks are 0-based).
* The text itself being unusable (not YAML, empty, not a mapping) is a FileProblemError.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, TypeGuard

import yaml

from convcalc.errors import FileProblemError, Problem
from convcalc.format.limits import MAX_INT_DIGITS
from convcalc.notation import printable, shorten
from convcalc.stack.spec import Location
from convcalc.stack.values import BAD, Value, plain_number

try:
    from yaml import CSafeLoader as _Loader
except ImportError:  # PyYAML built without libyaml: same behaviour, slower
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

#: The keys a stack file may have at its top level (extend this one table for new sections).
TOP_LEVEL_KEYS: Final = ("name", "description", "version", "input", "blocks", "layers", "expect", "ignore")

MERGE_TAG: Final = "tag:yaml.org,2002:merge"
YAML_TAG_PREFIX: Final = "tag:yaml.org,2002:"
NULL_TAG: Final = "tag:yaml.org,2002:null"
SEQ_TAG: Final = "tag:yaml.org,2002:seq"
MAP_TAG: Final = "tag:yaml.org,2002:map"
INT_TAG: Final = "tag:yaml.org,2002:int"
BOOL_TAG: Final = "tag:yaml.org,2002:bool"
STR_TAG: Final = "tag:yaml.org,2002:str"
FLOAT_TAG: Final = "tag:yaml.org,2002:float"
#: Integers SafeConstructor reads as plain int(text): no sign-only, octal (010), hex, binary, `_` or `:`.
_DECIMAL: Final = re.compile(r"[-+]?[1-9][0-9]*|0")
_BOOL_WORDS: Final = yaml.constructor.SafeConstructor.bool_values
#: What looks like a number in exponent notation but YAML 1.1 reads as a string (`1e3`, `2E-1`).
_EXPONENT: Final = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def is_list(node: yaml.Node) -> TypeGuard[yaml.SequenceNode]:
    # A tagged collection (`!!python/object/apply:os.system [...]`, `!!omap`) is not a plain list.
    return isinstance(node, yaml.SequenceNode) and node.tag == SEQ_TAG


def is_map(node: yaml.Node) -> TypeGuard[yaml.MappingNode]:
    return isinstance(node, yaml.MappingNode) and node.tag == MAP_TAG


def short_tag(tag: str) -> str:
    """A tag as the user would have written it: `!!int`, not `tag:yaml.org,2002:int`."""
    return "!!" + tag.removeprefix(YAML_TAG_PREFIX) if tag.startswith(YAML_TAG_PREFIX) else tag


# --------------------------------------------------------------------------- YAML nodes


@dataclass
class ReadMapping:
    """A mapping node read as field name -> (key node, value node), merges applied."""

    node: yaml.MappingNode
    fields: dict[str, tuple[yaml.Node, yaml.Node]]
    #: Problems found while reading it (duplicate or non-string keys): (message, node, field).
    issues: list[tuple[str, yaml.Node, str | None]]
    #: Fields whose problem was already reported while expanding a block (not reported again).
    reported: frozenset[str] = frozenset()
    #: For a layer expanded from a block: the qualified block instance it belongs to (`layer3.2`) and the
    #: block use that made it in the top-level layer list (its mapping node).
    instance: str | None = None
    call: yaml.Node | None = None

    def value(self, name: str) -> yaml.Node | None:
        pair = self.fields.get(name)
        return pair[1] if pair is not None else None


class Reader:
    """Per-parse state: the file name, PyYAML's scalar constructor and the problems so far."""

    def __init__(self, file: str | None) -> None:
        self.file = file
        self.problems: list[Problem] = []
        self._constructor = yaml.constructor.SafeConstructor()
        #: Said after any problem about a node made by block expansion: where its value came from.
        self.notes: dict[yaml.Node, str] = {}
        #: Collections read so far, by (id of the node, depth); the nodes live as long as the parse.
        self._values: dict[tuple[int, int], Value] = {}

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
        if tag == STR_TAG:
            return node.value
        if tag == INT_TAG and len(node.value) > MAX_INT_DIGITS:
            return BAD  # Python refuses to read (or print) an integer this long; got() says why
        if tag == INT_TAG and _DECIMAL.fullmatch(node.value):
            return int(node.value)
        if tag == NULL_TAG:
            return None
        if tag == BOOL_TAG and node.value.lower() in _BOOL_WORDS:
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
        if isinstance(node, yaml.ScalarNode):
            return self._value(node, depth)
        # Aliases make the node tree a graph: each (node, depth) is read once, so an alias bomb
        # (`&a9 [*a8, *a8, ...]`, 10⁹ leaves from a few lines) costs its number of nodes, not leaves.
        key = (id(node), depth)
        found = self._values.get(key)
        if found is None:
            found = self._values[key] = self._value(node, depth)
        return found

    def _value(self, node: yaml.Node, depth: int) -> Value:
        where = self.location(node)
        note = self.notes.get(node, "")
        if isinstance(node, yaml.ScalarNode):
            data = self.scalar(node)
            if node.tag == INT_TAG and len(node.value) > MAX_INT_DIGITS:
                note = f" (an integer of {len(node.value):,} digits; convcalc reads at most {MAX_INT_DIGITS:,}){note}"
                return Value(BAD, where, raw=node.value, note=note)
            standard = node.tag.startswith(YAML_TAG_PREFIX)
            tag = short_tag(node.tag) if not standard or data is BAD else ""
            return Value(data, where, raw=node.value, tag=tag, note=note)
        if depth > 20:  # aliases may nest (or recurse): deep enough for any field, bounded for the rest
            return Value(BAD, where, raw="...", note=note)
        if is_list(node):
            assert isinstance(node, yaml.SequenceNode)
            return Value(None, where, items=tuple(self.value(c, depth + 1) for c in node.value), note=note)
        if is_map(node):
            assert isinstance(node, yaml.MappingNode)
            pairs = tuple((self.value(k, depth + 1), self.value(v, depth + 1)) for k, v in node.value)
            return Value(None, where, pairs=pairs, note=note)
        shown = self.show(node)
        tag = short_tag(node.tag)
        return Value(BAD, where, raw=shown.removeprefix(tag).strip(), tag=tag, note=note)

    def show(self, node: yaml.Node, depth: int = 0) -> str:
        """The value as the user wrote it, short enough for a message (aliases may be recursive)."""
        if depth > 2:
            return "..."
        if isinstance(node, yaml.ScalarNode):
            value = self.scalar(node)
            if node.tag == INT_TAG and value is BAD:
                return shorten(node.value)
            if not node.tag.startswith(YAML_TAG_PREFIX) or value is BAD:
                return shorten(f"{short_tag(node.tag)} {printable(node.value)}".strip())
            if isinstance(value, str):
                return f"'{shorten(printable(value))}'"
            if node.tag == NULL_TAG:
                return "null"
            return shorten(str(node.value))
        tag = "" if node.tag in (SEQ_TAG, MAP_TAG) else f"{short_tag(node.tag)} "
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
        if node.tag == INT_TAG and len(node.value) > MAX_INT_DIGITS:
            text += f" (an integer of {len(node.value):,} characters; convcalc reads at most {MAX_INT_DIGITS:,} digits)"
        elif isinstance(value, str) and _EXPONENT.fullmatch(value.strip()):
            # YAML 1.1 reads `1e3` (no dot, no sign in the exponent) as a string, not a number.
            text += f" ('{value.strip()}' is a string to YAML; write {plain_number(value.strip())})"
        elif isinstance(value, bool):
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

    def mapping(self, node: yaml.MappingNode) -> ReadMapping:
        """Read a mapping's keys: duplicates and non-string keys become issues, `<<` merges apply.

        Keys written in the mapping win over merged ones (YAML merge semantics); an earlier merge
        source wins over a later one. Only keys written directly can be duplicates.
        """
        result = ReadMapping(node, {}, [])
        merges: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG:
                merges.append(value_node)
                continue
            key = self.scalar(key_node)
            if not isinstance(key, str):
                result.issues.append((f"keys must be field names (strings), {self.got(key_node)}", key_node, None))
                continue
            if key in result.fields:
                first = result.fields[key][0].start_mark.line + 1
                second = key_node.start_mark.line + 1
                lines = f"twice on line {first}" if first == second else f"on lines {first} and {second}"
                result.issues.append(
                    (
                        f"duplicate key '{key}' {lines}: "
                        "YAML would silently keep only the last one; remove one of them",
                        key_node,
                        key,
                    )
                )
                continue
            result.fields[key] = (key_node, value_node)
        seen = {id(node)}
        for source in merges:
            sources = source.value if is_list(source) else [source]
            for merged in sources:
                if not is_map(merged):
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


def count_items(text: str, key: str, limit: int) -> tuple[int, int, int] | None:
    """(items, line, column of the list) when the top-level list under `key` has more than `limit` items.

    Reads YAML events, not nodes, and stops at item `limit + 1`: a file of 10⁵ layers is refused in a
    fraction of the time composing it takes. None when the list is short enough, or the text is not
    YAML (composing it then says why).
    """
    depth = 0  # nesting of collections; the top-level mapping is depth 1
    position = 0  # events of the top-level mapping at depth 1: even ones are keys
    target_depth = 0  # the depth of the list's items once it is found
    wanted = False
    count = 0
    marker = (1, 1)  # line and column of the list
    try:
        for event in yaml.parse(text, Loader=_Loader):
            starts = isinstance(event, (yaml.ScalarEvent, yaml.AliasEvent, yaml.CollectionStartEvent))
            if target_depth and depth == target_depth and starts:
                count += 1
                if count > limit:
                    return count, marker[0], marker[1]
            if depth == 1 and starts:
                if position % 2 == 0:
                    wanted = isinstance(event, yaml.ScalarEvent) and event.value == key
                elif wanted and isinstance(event, yaml.SequenceStartEvent) and not target_depth:
                    target_depth = 2
                    if event.start_mark is not None:
                        marker = (event.start_mark.line + 1, event.start_mark.column + 1)
                position += 1
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
                if target_depth and depth < target_depth:
                    return None
            elif isinstance(event, yaml.DocumentEndEvent):
                return None
    except yaml.YAMLError:
        return None
    return None


def _indented_with_tab(text: str, index: int) -> bool:
    """Whether the line holding `index` starts with blanks that include a tab, up to `index` or beyond it."""
    start = text.rfind("\n", 0, index) + 1
    end = start
    while end < len(text) and text[end] in " \t":
        end += 1
    return "\t" in text[start:end] and end >= min(index, len(text))


def compose(text: str, file: str | None) -> yaml.MappingNode:
    """Compose the YAML text into a node tree; FileProblemError if it is not a YAML mapping."""
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if mark is not None and _indented_with_tab(text, mark.index):
            line_start = text.rfind("\n", 0, mark.index) + 1
            tab_column = text.index("\t", line_start) - line_start + 1
            message = "not valid YAML: tabs are not allowed for indentation in YAML; use spaces"
            raise FileProblemError(Problem(message, file, mark.line + 1, tab_column)) from None
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
    if not is_map(root):
        kind = "a list" if is_list(root) else "a single value"
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
