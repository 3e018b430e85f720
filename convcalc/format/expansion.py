"""Block expansion: block uses in `layers` become plain layer mappings (the rules are in
convcalc.format.blocks, the expression language in convcalc.format.expressions)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import yaml

from convcalc.errors import Problem, SpecError
from convcalc.format import blocks, expressions, limits
from convcalc.format.nodes import (
    BOOL_TAG,
    FLOAT_TAG,
    INT_TAG,
    NULL_TAG,
    STR_TAG,
    Reader,
    ReadMapping,
    is_list,
    is_map,
    short_tag,
)
from convcalc.format.validate import list_names
from convcalc.ops import registry
from convcalc.stack.fields import did_you_mean, plural, quote_all
from convcalc.stack.spec import INPUT_NAME, output_name, output_of
from convcalc.stack.values import BAD

_PARAM_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_EXPR_WORDS: Final = ("and", "or", "not", "true", "false", blocks.INDEX_NAME)
_MAX_REPEAT: Final = 10_000


def _value_node(value: object, mark: yaml.Mark) -> yaml.Node:
    """A scalar node holding an expression's value, placed where the expression was written."""
    if isinstance(value, bool):
        return yaml.ScalarNode(BOOL_TAG, "true" if value else "false", mark, mark)
    if isinstance(value, int):
        return yaml.ScalarNode(INT_TAG, str(value), mark, mark)
    if isinstance(value, float):
        return yaml.ScalarNode(FLOAT_TAG, repr(value), mark, mark)
    if value is None:
        return yaml.ScalarNode(NULL_TAG, "null", mark, mark)
    return yaml.ScalarNode(STR_TAG, str(value), mark, mark)


def _relocate(node: yaml.Node, mark: yaml.Mark) -> yaml.Node:
    """A copy of `node` with every mark moved to `mark` (a parameter value pasted where it is used)."""
    if isinstance(node, yaml.SequenceNode):
        items = [_relocate(child, mark) for child in node.value]
        return yaml.SequenceNode(node.tag, items, mark, mark, node.flow_style)
    if isinstance(node, yaml.MappingNode):
        pairs = [(_relocate(k, mark), _relocate(v, mark)) for k, v in node.value]
        return yaml.MappingNode(node.tag, pairs, mark, mark, node.flow_style)
    return yaml.ScalarNode(node.tag, node.value, mark, mark, getattr(node, "style", None))


def _written_size(node: yaml.Node, limit: int) -> int | None:
    """How many nodes `node` holds written out (aliases expanded); None beyond `limit`, or when it
    contains itself (`&a [*a]`). Linear in the distinct nodes: each is sized once."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(n: yaml.Node) -> int:
        key = id(n)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise _Unbounded
        active.add(key)
        children: list[yaml.Node] = []
        if isinstance(n, yaml.SequenceNode):
            children = list(n.value)
        elif isinstance(n, yaml.MappingNode):
            children = [part for pair in n.value for part in pair]
        total = 1
        for child in children:
            total += size(child)
            if total > limit:
                raise _Unbounded
        active.discard(key)
        sizes[key] = total
        return total

    try:
        return size(node)
    except (_Unbounded, RecursionError):
        return None


class _Unbounded(Exception):
    """A parameter value too large (or endless) to paste."""


def merge_instances(problems: list[Problem]) -> list[Problem]:
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
        else Problem(f"{p.message} (and in {plural(n, 'more instance')})", p.file, p.line, p.column, p.layer, p.field)
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
    layers: list[ReadMapping | yaml.Node]
    output: yaml.Node | None


@dataclass
class _Env:
    """The parameters of one instance: values for expressions, nodes for `${name}` copies."""

    values: dict[str, expressions.Value]
    nodes: dict[str, yaml.Node]


class Expander:
    """Expands block uses in `layers` into plain layer mappings (see convcalc.format.blocks for the rules).

    Every expanded layer gets an explicit qualified `name` and an explicit, resolved `from`; values
    with `${...}` are replaced by nodes placed where the expression was written, so the ordinary
    per-layer validation reports file, line and column inside the block, under the instance's name.
    """

    def __init__(self, reader: Reader, node: yaml.Node | None) -> None:
        self.r = reader
        self.defs: dict[str, _BlockDef] = {}
        self.out: list[ReadMapping | yaml.Node] = []
        self.qualified: set[str] = set()
        self.used = False
        #: The block instances being expanded, outermost first: (the use's mapping node, instance prefix).
        self._instances: list[tuple[yaml.Node, str]] = []
        #: Layers and instances expanded so far, kept or left out by `when:` (bounded by MAX_LAYERS).
        self.visited = 0
        #: Blocks and groups being expanded, one inside the other (bounded by MAX_BLOCK_NESTING).
        self.depth = 0
        self._defined = node is not None
        if node is not None:
            self._read_defs(node)

    # ----------------------------------------------------------------- definitions

    def _read_defs(self, node: yaml.Node) -> None:
        r = self.r
        if not is_map(node):
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
        if not is_map(node):
            r.add(f"a block is a mapping {{params: {{...}}, layers: [...]}}, {r.got(node)}", node, where)
            return None
        m = r.mapping(node)
        for message, issue_node, fname in m.issues:
            r.add(message, issue_node, where, fname)
        for key, (knode, _) in m.fields.items():
            if key not in blocks.BLOCK_FIELDS:
                r.add(
                    f"unknown key '{key}' in a block{did_you_mean(key, blocks.BLOCK_FIELDS)} "
                    f"A block has: {', '.join(blocks.BLOCK_FIELDS)}",
                    knode,
                    where,
                    key,
                )
        params = self._read_params(m.value("params"), where)
        layers_node = m.value("layers")
        layers: list[ReadMapping | yaml.Node] = []
        if layers_node is None:
            r.add("a block needs 'layers': a non-empty list of layers", node, where, "layers")
            return None
        if not is_list(layers_node) or not layers_node.value:
            r.add(f"layers must be a non-empty list of layer mappings, {r.got(layers_node)}", layers_node, where)
            return None
        for i, item in enumerate(layers_node.value):
            if not is_map(item):
                r.add(
                    f"each layer must be a mapping such as {{op: conv, kernel: 3}}, {r.got(item)}",
                    item,
                    f"{where} #{i + 1}",
                )
                continue
            inner = r.mapping(item)
            for message, issue_node, fname in inner.issues:
                r.add(message, issue_node, f"{where} #{i + 1}", fname)
            layers.append(ReadMapping(inner.node, inner.fields, []))
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
        if is_list(node):  # [a, b]: all required
            pairs = [(entry, None) for entry in node.value]
        elif is_map(node):
            m = r.mapping(node)
            for message, issue_node, fname in m.issues:
                r.add(message, issue_node, where, fname or "params")
            pairs = [(k, None if v.tag == NULL_TAG else v) for k, v in m.fields.values()]
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
                    f"{quote_all(_EXPR_WORDS)}, {r.got(key)}",
                    key,
                    where,
                    "params",
                )
                continue
            params[pname] = _Param(pname, default, key)
        return params

    # ----------------------------------------------------------------- expansion

    def expand(self, items: Sequence[yaml.Node]) -> list[ReadMapping | yaml.Node]:
        """The flat layer list: `items` unchanged when no layer uses a block."""
        if not any(self._uses_block(item) for item in items):
            return list(items)
        self.used = True
        scope = blocks.Scope("", {}, None, self.qualified)
        try:
            self._sequence(items, scope, None, INPUT_NAME, [], "")
        except _TooBig as exc:
            raise SpecError(exc.problem) from None
        return self.out

    def _uses_block(self, item: yaml.Node) -> bool:
        """True for a layer mapping with a `block` or `group` key (read cheaply: every layer of a file is asked)."""
        if not is_map(item):
            return False
        return any(key.value in _CALL_KEYS and self.r.scalar(key) in _CALL_KEYS for key, _ in item.value)

    def _mappings(self, items: Sequence[yaml.Node | ReadMapping]) -> list[ReadMapping | yaml.Node]:
        return [item if isinstance(item, ReadMapping) or not is_map(item) else self.r.mapping(item) for item in items]

    def _is_defined(self, target: str) -> bool:
        """Whether `target` is a layer defined above, or an output (`sp.1`) of one."""
        found = output_of(target)
        return target in self.qualified or (found is not None and found[0] in self.qualified)

    def _sequence(
        self,
        raw: Sequence[yaml.Node | ReadMapping],
        scope: blocks.Scope,
        env: _Env | None,
        first_input: str,
        stack: list[str],
        where: str,
    ) -> str:
        """Expand one list of layers (the top level, or one block instance); returns the last output."""
        if self.depth > limits.MAX_BLOCK_NESTING:
            where_node = raw[0] if raw and not isinstance(raw[0], ReadMapping) else None
            node = raw[0].node if raw and isinstance(raw[0], ReadMapping) else where_node
            loc = self.r.location(node) if node is not None else None
            raise _TooBig(
                Problem(
                    f"blocks and groups nest more than {limits.MAX_BLOCK_NESTING} deep"
                    + (f" (in block '{stack[-1]}')" if stack else "")
                    + f": a block or group may sit inside at most {limits.MAX_BLOCK_NESTING} others",
                    self.r.file,
                    loc.line if loc else None,
                    loc.column if loc else None,
                )
            )
        self.depth += 1
        try:
            return self._sequence_items(raw, scope, env, first_input, stack, where)
        finally:
            self.depth -= 1

    def _sequence_items(
        self,
        raw: Sequence[yaml.Node | ReadMapping],
        scope: blocks.Scope,
        env: _Env | None,
        first_input: str,
        stack: list[str],
        where: str,
    ) -> str:
        items = self._mappings(raw)
        names = self._local_names(items, env)
        for item, local in zip(items, names, strict=True):
            if isinstance(item, ReadMapping) and local is not None and not _is_call(item):
                scope.names.setdefault(local, blocks.qualify(scope.prefix, local))
        previous = first_input
        for item, local in zip(items, names, strict=True):
            if not isinstance(item, ReadMapping):
                self.out.append(item)  # the loader reports it
                continue
            if "block" in item.fields:
                previous = self._use(item, local, scope, env, previous, stack, where)
            elif "group" in item.fields:
                previous = self._group(item, local, scope, env, previous, stack, where)
            else:
                previous = self._layer(item, local, scope, env, previous, where)
        return previous

    def _local_names(self, items: list[ReadMapping | yaml.Node], env: _Env | None) -> list[str | None]:
        """Each item's name in its list: written, or `<op><n>` / `<block><n>` counted within the list."""
        kinds: list[str | None] = []
        names: list[str | None] = []
        for item in items:
            kind: str | None = None
            name: str | None = None
            if isinstance(item, ReadMapping) and "group" in item.fields and "block" not in item.fields:
                group = self._peek(item.value("group"), env)
                name = group if isinstance(group, str) and group.strip() else None
            elif isinstance(item, ReadMapping):
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
        if env is not None and isinstance(value, str) and expressions.has_refs(value):
            try:
                return expressions.substitute(value, env.values)
            except expressions.ExprError:
                return None
        return value

    def _subst(self, node: yaml.Node, env: _Env, label: str, fname: str, depth: int = 0) -> yaml.Node | None:
        """`node` with its `${...}` references replaced; None when one fails (reported).

        Lists are read 3 deep (a field is at most a list of pairs): deeper, or an alias bomb
        (`&a9 [*a8, *a8, ...]`), the value is kept as written and validation refuses it.
        """
        if isinstance(node, yaml.SequenceNode) and depth < 3:
            children = [self._subst(child, env, label, fname, depth + 1) for child in node.value]
            if any(child is None for child in children):
                return None
            kept = [child for child in children if child is not None]
            return yaml.SequenceNode(node.tag, kept, node.start_mark, node.end_mark, node.flow_style)
        if not isinstance(node, yaml.ScalarNode) or node.tag != STR_TAG or not expressions.has_refs(node.value):
            return node
        text = node.value
        whole = text.strip()
        name = whole[2:-1].strip() if whole.startswith("${") and whole.endswith("}") else ""
        try:
            if name in env.nodes:
                if _written_size(env.nodes[name], limits.MAX_PARAMETER_NODES) is None:
                    self.r.add(
                        f"parameter '{name}' holds more than {limits.MAX_PARAMETER_NODES:,} values written out "
                        "(an alias used many times, or a value that contains itself); a layer field needs a few",
                        node,
                        label,
                        fname,
                    )
                    return None
                result = _relocate(env.nodes[name], node.start_mark)
            else:
                result = _value_node(expressions.substitute(text, env.values), node.start_mark)
        except expressions.ExprError as exc:
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
        self, entry: yaml.Node, scope: blocks.Scope, env: _Env | None, label: str, where: str, field: str = "from"
    ) -> yaml.Node | None:
        """A `from` entry (or another layer-name field) as a node naming the qualified producer; None when
        reported as unknown."""
        r = self.r
        if env is not None:
            substituted = self._subst(entry, env, label, field)
            if substituted is None:
                return None
            entry = substituted
        ref = r.scalar(entry)
        if not isinstance(ref, str):
            return entry  # the loader reports the type
        target = _resolve_output(scope, ref)
        if target is not None:
            return yaml.ScalarNode(STR_TAG, target, entry.start_mark, entry.end_mark)
        if not where:
            return entry  # top level: the loader reports unknown layers with the layers above
        choices = [INPUT_NAME, *(n for n in scope.visible() if n != INPUT_NAME)]
        r.add(
            f"unknown layer '{ref}' in {where}{did_you_mean(ref, choices)} "
            f"Names here: {list_names(choices)} (and the names where the block is used)",
            entry,
            label,
            field,
        )
        return None

    def _from(
        self, m: ReadMapping, scope: blocks.Scope, env: _Env | None, previous: str, label: str, where: str
    ) -> tuple[yaml.Node, yaml.Node] | None:
        node = m.value("from")
        if node is None:
            synthetic = yaml.ScalarNode(STR_TAG, "from", m.node.start_mark, m.node.start_mark)
            return synthetic, yaml.ScalarNode(STR_TAG, previous, m.node.start_mark, m.node.start_mark)
        key = m.fields["from"][0]
        if is_list(node):
            entries = [self._resolve(e, scope, env, label, where) for e in node.value]
            if any(e is None for e in entries):
                return None
            kept = [e for e in entries if e is not None]
            return key, yaml.SequenceNode(node.tag, kept, node.start_mark, node.end_mark, node.flow_style)
        entry = self._resolve(node, scope, env, label, where)
        return None if entry is None else (key, entry)

    def _layer(
        self, m: ReadMapping, local: str | None, scope: blocks.Scope, env: _Env | None, previous: str, where: str
    ) -> str:
        """Append one plain layer; returns the name the next layer reads by default."""
        r = self.r
        self._visit(m.node)
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
                value = yaml.ScalarNode(STR_TAG, qualified, value.start_mark, value.end_mark)
            elif key in registry.REFERENCE_FIELDS and not is_list(value):
                named = self._resolve(value, scope, env, label, where, key)  # looked up as `from`'s names
                if named is None:
                    reported.add(key)  # kept, so the op sees it written; its problem is reported
                else:
                    value = named
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
                yaml.ScalarNode(STR_TAG, qualified, m.node.start_mark, m.node.start_mark),
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
        instance, call = (self._instances[-1][1], self._instances[0][0]) if self._instances else (None, None)
        self.out.append(ReadMapping(m.node, fields, m.issues, frozenset(reported), instance, call))
        return qualified if qualified is not None else previous

    def _visit(self, node: yaml.Node) -> None:
        """Count one layer or instance; refuse the expansion past MAX_LAYERS (left-out ones count:
        10⁴ nested repeats of a layer whose `when:` is false would otherwise run for ever)."""
        self.visited += 1
        if self.visited > limits.MAX_LAYERS:
            where = self.r.location(node)
            raise _TooBig(
                Problem(
                    f"the blocks expand to more than {limits.MAX_LAYERS:,} layers, the most a stack may have "
                    "(layers and instances a false 'when:' leaves out count too)",
                    self.r.file,
                    where.line,
                    where.column,
                )
            )

    def _when(self, node: yaml.Node, label: str) -> bool:
        value = self.r.scalar(node)
        if isinstance(value, bool):
            return value
        self.r.add(f'when must be true or false (e.g. "${{stride > 1}}"), {self.r.got(node)}', node, label, "when")
        return True

    def _use(
        self,
        m: ReadMapping,
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
                hint = " (a layer has either 'op' or 'block')" if key == "op" else did_you_mean(key, blocks.CALL_FIELDS)
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
                hint = did_you_mean(block_name, list(self.defs))
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
            name_node = m.value("name")  # written, since a use without one gets a default name
            if name_node is not None and (env is None or self._subst(name_node, env, label, "name") is not None):
                r.add(f"name must be a non-empty string, {r.got(name_node)}", name_node, label, "name")
            return previous

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
            if is_list(from_node):
                r.add(
                    f"a block has one input: 'from' names one layer, "
                    f"got {plural(len(from_node.value), 'entry')}; "
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
            if target != INPUT_NAME and not self._is_defined(target):
                choices = [INPUT_NAME, *scope.visible()]
                r.add(
                    f"'{target}' is not a layer above this block use{did_you_mean(target, choices)}",
                    from_node,
                    label,
                    "from",
                )
                return previous
            start = target

        when_node = m.value("when")
        if when_node is not None:
            condition = self._subst(when_node, env, label, "when") if env is not None else when_node
            if condition is None:
                return previous
            if not self._when(condition, label):
                scope.names[local] = start  # left out: readers of the call read its input
                return start
        names_node = m.value("names")
        if names_node is not None and repeat_node is None:
            r.add("names: names the instances of a repeat; add 'repeat:' or remove it", names_node, label, "names")
            return previous
        if names_node is not None and not isinstance(r.scalar(names_node), str):
            r.add(
                f'names must be a name template such as "denselayer${{index + 1}}", {r.got(names_node)}',
                names_node,
                label,
                "names",
            )
            return previous

        given = {k: self._args(m.value(k), block, label, k) for k in ("with", "first")}
        missing = [p.name for p in block.params.values() if p.default is None and p.name not in given["with"]]
        if missing and any(p not in given["first"] or count > 1 for p in missing):
            r.add(
                f"block '{block_name}' needs {quote_all(missing)}: give them in 'with:'",
                m.node,
                label,
                "with",
            )
            return previous
        output = start
        taken: dict[str, int] = {}
        for index in range(count):
            self._visit(m.node)
            instance = blocks.instance_prefix(local, index, repeat_node is not None)
            if names_node is not None:
                named = self._instance_name(names_node, env, index, taken, label)
                if named is None:
                    return previous
                instance = f"{local}.{named}"
            prefix = blocks.qualify(scope.prefix, instance)
            inst_env = self._bind(block, given, index, env, label)
            if inst_env is None:
                return previous
            inner = blocks.Scope(prefix, {INPUT_NAME: output}, scope, self.qualified)
            where = f"block '{block_name}' ({prefix})"
            self._instances.append((m.node, prefix))
            try:
                last = self._sequence(block.layers, inner, inst_env, output, [*stack, block_name], where)
            finally:
                self._instances.pop()
            if block.output is not None:
                wanted = r.scalar(block.output)
                assert isinstance(wanted, str)
                target = _resolve_output(inner, wanted, local=True)
                if target is None:
                    choices = list(inner.names)
                    r.add(
                        f"output '{wanted}' is not a layer of block '{block_name}'"
                        f"{did_you_mean(wanted, choices)} "
                        f"Layers: {list_names(choices)}",
                        block.output,
                        f"block {block_name}",
                        "output",
                    )
                    return previous
                last = target
            output = last
            if repeat_node is not None:
                scope.names[instance] = output
        scope.names[local] = output
        return output

    def _group(
        self,
        m: ReadMapping,
        local: str | None,
        scope: blocks.Scope,
        env: _Env | None,
        previous: str,
        stack: list[str],
        where: str,
    ) -> str:
        """Expand a group of plain layers: its layers are named `GROUP.inner`, and `GROUP` stands for its last."""
        r = self.r
        group_node = m.fields["group"][1]
        label = blocks.qualify(scope.prefix, local) if local is not None else f"#{len(self.out) + 1}"
        for key, (key_node, _) in m.fields.items():
            if key not in blocks.GROUP_FIELDS:
                r.add(
                    f"unknown field '{key}' for a group{did_you_mean(key, blocks.GROUP_FIELDS)} "
                    f"A group has: {', '.join(blocks.GROUP_FIELDS)}",
                    key_node,
                    label,
                    key,
                )
        if local is None:
            r.add(
                f"group must be the group's name (a string), {r.got(group_node)}",
                group_node,
                label,
                "group",
            )
            return previous
        # Until the group is read, its name stands for its input: its readers report nothing more.
        scope.names[local] = previous
        layers_node = m.value("layers")
        if layers_node is None or not is_list(layers_node) or not layers_node.value:
            got = r.got(layers_node) if layers_node is not None else "got none"
            r.add(f"a group needs 'layers': a non-empty list of layers, {got}", layers_node or m.node, label, "layers")
            return previous
        start = previous
        from_node = m.value("from")
        if from_node is not None:
            entry = self._resolve(from_node, scope, env, label, where)
            target = r.scalar(entry) if entry is not None else None
            if entry is None:
                return previous
            if not isinstance(target, str) or (target != INPUT_NAME and not self._is_defined(target)):
                choices = [INPUT_NAME, *scope.visible()]
                hint = did_you_mean(target, choices) if isinstance(target, str) else "."
                r.add(f"from must name one layer above the group, {r.got(from_node)}{hint}", from_node, label, "from")
                return previous
            start = target
        inner = blocks.Scope(blocks.qualify(scope.prefix, local), {INPUT_NAME: start}, scope, self.qualified)
        output = self._sequence(layers_node.value, inner, env, start, stack, f"group '{label}'")
        scope.names[local] = output
        return output

    def _instance_name(
        self, node: yaml.Node, env: _Env | None, index: int, taken: dict[str, int], label: str
    ) -> str | None:
        """Instance `index`'s name from the `names:` template (`index` and the caller's parameters)."""
        r = self.r
        values = {**(env.values if env is not None else {}), blocks.INDEX_NAME: index}
        text = r.scalar(node)
        assert isinstance(text, str)
        try:
            name = expressions.substitute(text, values)
        except expressions.ExprError as exc:
            r.add(str(exc), node, label, "names")
            return None
        if isinstance(name, int) and not isinstance(name, bool):
            name = str(name)  # "${index + 1}": instances 1, 2, ...
        if not isinstance(name, str) or not name.strip() or "." in name:
            shown = "true" if name is True else "false" if name is False else str(name)
            r.add(
                f"names must give each instance a name without '.', got '{shown}' for instance {index} "
                f"(from '{text}'), e.g. \"layer${{index + 1}}\"",
                node,
                label,
                "names",
            )
            return None
        if name in taken:
            r.add(
                f"names gives '{name}' to instances {taken[name]} and {index}; make it depend on "
                f'${{index}}, e.g. "{text}${{index}}"',
                node,
                label,
                "names",
            )
            return None
        taken[name] = index
        return name

    def _args(self, node: yaml.Node | None, block: _BlockDef, label: str, key: str) -> dict[str, yaml.Node]:
        """The parameter values of `with:` or `first:`, checked against the block's parameters."""
        r = self.r
        if node is None:
            return {}
        if not is_map(node):
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
                f"block '{block.name}' has no parameter '{pname}'{did_you_mean(pname, known)} "
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

    def _value(self, node: yaml.Node) -> expressions.Value:
        if is_list(node):
            return expressions.Opaque("a list")
        if isinstance(node, yaml.MappingNode):
            return expressions.Opaque("a mapping")
        value = self.r.scalar(node)
        if value is BAD or not isinstance(value, (int, float, str, bool, type(None))):
            return expressions.Opaque(f"a {short_tag(node.tag)} value")
        return value


#: The keys that make a layer entry a call (a block use or a group), not a layer.
_CALL_KEYS: Final = ("block", "group")


def _is_call(item: ReadMapping) -> bool:
    return any(key in item.fields for key in _CALL_KEYS)


class _TooBig(Exception):
    """The expansion would exceed a limit (convcalc.format.limits): the one problem refusing it."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


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
