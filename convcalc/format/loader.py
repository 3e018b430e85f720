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

import os
import stat
from typing import IO, Final

import yaml

from convcalc import collector
from convcalc.errors import FileProblemError, Problem, SpecError
from convcalc.format.limits import MAX_FILE_BYTES, MAX_LAYERS
from convcalc.format.nodes import TOP_LEVEL_KEYS, Reader, ReadMapping, compose, count_items, is_list, is_map
from convcalc.format.shapes import parse_input_shape
from convcalc.format.validate import RawLayer, read_input, validate_layers
from convcalc.notation import dims_text
from convcalc.stack.contracts import Expectation, Suppression
from convcalc.stack.fields import axes_text, did_you_mean, plural
from convcalc.stack.spec import FORMAT_VERSION, InputSpec, LayerSpec, Location, StackSpec
from convcalc.stack.values import Value, is_int

__all__ = ["TOP_LEVEL_KEYS", "decode_stack", "load_stack", "parse_input_shape", "parse_stack", "read_limited"]

#: The fewest characters a layer takes (`- *a` and a line break): a shorter text cannot exceed MAX_LAYERS.
_MIN_CHARS_PER_LAYER: Final = 3

#: The keys that make a layer entry a block use or a group (convcalc.format.blocks).
_CALL_KEYS: Final = ("block", "group")


# --------------------------------------------------------------------------- public API


def load_stack(
    path: str | os.PathLike[str], input_override: InputSpec | None = None, allow_rank_change: bool = False
) -> StackSpec:
    """Read and validate the stack file at `path` (see parse_stack); a `path` that does not exist
    may name a bundled stack (`resnet50`, see convcalc.format.library).

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
    try:
        mode = os.stat(file).st_mode
    except FileNotFoundError:
        raise FileProblemError(Problem("no such file", label)) from None
    except OSError as exc:
        raise FileProblemError(Problem(f"cannot read the file: {exc.strerror or exc}", label)) from None
    if stat.S_ISDIR(mode):
        raise FileProblemError(Problem("is a directory, not a stack file", label))
    if not stat.S_ISREG(mode):
        # Opening a FIFO waits for a writer, and a device may never end: only regular files are read.
        raise FileProblemError(
            Problem(f"is {_file_kind(mode)}, not a regular file; give a stack file, or - for stdin", label)
        )
    try:
        with open(file, "rb") as handle:
            data = read_limited(handle, label)
    except FileNotFoundError:
        raise FileProblemError(Problem("no such file", label)) from None
    except OSError as exc:
        raise FileProblemError(Problem(f"cannot read the file: {exc.strerror or exc}", label)) from None
    return parse_stack(
        decode_stack(data, label), file=label, input_override=input_override, allow_rank_change=allow_rank_change
    )


def read_limited(handle: IO[bytes], label: str) -> bytes:
    """At most MAX_FILE_BYTES from `handle` (a file or stdin); FileProblemError naming the limit beyond it."""
    data = handle.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise FileProblemError(
            Problem(
                f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MB, the largest stack file convcalc reads "
                f"(a 20,000-layer stack is under 1 MB)",
                label,
            )
        )
    return data


def decode_stack(data: bytes, label: str) -> str:
    """The UTF-8 text of a stack file's bytes, without a byte-order mark; FileProblemError if not UTF-8."""
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
    return text.removeprefix("\ufeff")


def _too_many_layers(count: int | None) -> str:
    """`count` layers (None: more than MAX_LAYERS, counted no further) refused with the limit."""
    many = f"{count:,}" if count is not None else f"more than {MAX_LAYERS:,}"
    return f"{many} layers: a stack has at most {MAX_LAYERS:,} (written out or made by blocks)"


def _file_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


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
    if len(text) > _MIN_CHARS_PER_LAYER * MAX_LAYERS:
        too_many = count_items(text, "layers", MAX_LAYERS)
        if too_many is not None:
            raise SpecError(Problem(_too_many_layers(None), file, too_many[1], too_many[2], field="layers"))
    with collector.paused():
        root = compose(text, file)
        spec = _StackParser(Reader(file), input_override, allow_rank_change).parse(root)
        # Freed now by reference counting: alive when the collector resumes, it would be walked once.
        del root
    return spec


# --------------------------------------------------------------------------- the stack


class _StackParser:
    """Validates a composed stack mapping: top-level keys, input, then layers in two passes."""

    def __init__(self, reader: Reader, input_override: InputSpec | None, allow_rank_change: bool = False) -> None:
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
                    f"unknown top-level key '{key}'{did_you_mean(key, TOP_LEVEL_KEYS)}"
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

        self.blocks_node = top.value("blocks")
        self.expanded = False
        layers = self._layers(root, top.value("layers"))
        expect, ignore = self._contracts(top, layers)
        if r.problems or stack_input is None:
            problems = r.problems
            if self.expanded:
                from convcalc.format.expansion import merge_instances

                problems = merge_instances(problems)
            # Sorted so the user reads them in file order; the sort is stable for equal positions.
            problems = sorted(problems, key=lambda p: (p.line or 0, p.column or 0))
            raise SpecError(problems)
        return StackSpec(stack_input, tuple(layers), name, r.file, input_location, description, expect, ignore)

    def _contracts(
        self, top: ReadMapping, layers: list[LayerSpec]
    ) -> tuple[tuple[Expectation, ...], tuple[Suppression, ...]]:
        """The `expect:` and `ignore:` sections (convcalc.format.contracts), read only when present."""
        expect_node, ignore_node = top.value("expect"), top.value("ignore")
        if expect_node is None and ignore_node is None:
            return (), ()
        from convcalc.format.contracts import read_expect, read_ignore

        # Layer names are checked only when the layers themselves are valid (else they are half known).
        names = None if self.r.problems else [layer.name for layer in layers]
        reporter = _FileReporter(self.r)
        expect = read_expect(self.r.value(expect_node), reporter, self.rank, names) if expect_node is not None else ()
        ignore = read_ignore(self.r.value(ignore_node), reporter, names) if ignore_node is not None else ()
        return expect, ignore

    def _refuse_rank_change(self, file_input: InputSpec, override: InputSpec, node: yaml.Node) -> None:
        file_shape = dims_text([file_input.channels, *file_input.spatial])
        given = dims_text([override.channels, *override.spatial])
        example = dims_text([override.channels, *(override.spatial * file_input.rank)[: file_input.rank]])
        where = self.r.location(node)
        self.r.problems.append(
            Problem(
                f"the stack's input {file_shape} has {axes_text(file_input.rank)} but the given input {given} has "
                f"{override.rank}, which would read every layer as {override.rank}-D (other kernels, strides and "
                f"parameters); give {plural(file_input.rank, 'spatial size')} (e.g. {example}), unless the rank "
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
        if is_list(node) and 2 <= len(node.value) <= 4:
            self.rank = len(node.value) - 1
        return read_input(r.value(node), _FileReporter(r))

    def _expand(self, entries: list[yaml.Node]) -> list[ReadMapping | yaml.Node]:
        """The layer list with its blocks and groups expanded; a plain list as it is, without loading
        the expander (most files, and every expanded one, have no blocks)."""
        if self.blocks_node is None and not any(self._uses_block(entry) for entry in entries):
            return list(entries)
        from convcalc.format.expansion import Expander

        expander = Expander(self.r, self.blocks_node)
        expanded = expander.expand(entries)
        self.expanded = expander.used
        return expanded

    def _uses_block(self, entry: yaml.Node) -> bool:
        """A layer mapping with a `block` or `group` key (read cheaply: every layer of a file is asked)."""
        if not is_map(entry):
            return False
        return any(key.value in _CALL_KEYS and self.r.scalar(key) in _CALL_KEYS for key, _ in entry.value)

    def _layers(self, root: yaml.MappingNode, node: yaml.Node | None) -> list[LayerSpec]:
        r = self.r
        if node is None:
            r.add(
                "missing 'layers': give a non-empty list of layers, e.g. [{op: conv, kernel: 3}]",
                root,
                field="layers",
            )
            return []
        if not is_list(node) or not node.value:
            r.add(f"layers must be a non-empty list of layer mappings, {r.got(node)}", node, field="layers")
            return []
        if len(node.value) > MAX_LAYERS:
            # Refused before any layer is read: validating and analysing 10⁵ layers takes minutes.
            r.add(_too_many_layers(len(node.value)), node, field="layers")
            return []
        entries = self._expand(node.value)
        if not entries and not r.problems:
            # Blocks whose every layer is left out by `when:` expand to nothing: no stack to analyze.
            r.add("layers must give at least one layer; every layer here is left out by 'when:'", node, field="layers")
        items: list[RawLayer | Value] = []
        for index, entry in enumerate(entries):
            if not isinstance(entry, ReadMapping):
                if not is_map(entry):
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
                    instance=entry.instance,
                    call=None if entry.call is None else r.location(entry.call),
                )
            )
        return validate_layers(items, self.rank, self.rank_source, _FileReporter(r))


class _FileReporter:
    """Problems of the validation, recorded by the reader (which knows the file)."""

    def __init__(self, reader: Reader) -> None:
        self.r = reader

    def add(self, message: str, where: Location, layer: str | None = None, field: str | None = None) -> None:
        self.r.problems.append(Problem(message, where.file, where.line, where.column, layer, field))
