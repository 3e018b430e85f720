"""What both importers share: the layers imported so far as raw layer documents, their validation by the
stack format's own rules, and convcalc's shapes of the tensors they produce.

A layer document is a plain mapping of fields, exactly as a YAML file would write it, with the node it
came from (its `origin`). Validation is convcalc.format.validate's, so the messages are a YAML file's,
placed at the model's node (`net.onnx node '/stem/Conv' (Conv)`) instead of a line and column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final, Literal

from convcalc.errors import Problem, SpecError
from convcalc.format.validate import Problems, RawLayer, validate_layers
from convcalc.geometry.shape import Shape
from convcalc.ops import registry
from convcalc.stack.spec import INPUT_NAME, InputSpec, Location, StackSpec
from convcalc.stack.values import plain

OnUnsupported = Literal["error", "stop"]

#: Characters kept in a layer name made from a module path or node name.
_NAME_JUNK: Final = re.compile(r"[^A-Za-z0-9_.\-]+")


@dataclass
class Doc:
    """One imported layer as a YAML file would write it, with the model node it came from."""

    name: str
    op: str
    inputs: list[str]
    fields: dict[str, object]
    origin: str  # the node (and op type) it came from, for comments and messages
    where: Location


@dataclass(frozen=True)
class Imported:
    """An imported model: the validated stack, each layer's origin, what was lossy, and where an import
    with on_unsupported='stop' stopped (None when the whole graph was imported)."""

    stack: StackSpec
    origins: dict[str, str]
    #: Each layer's output tensor in the model, where it has one (for comparing shapes with a runtime).
    tensors: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    stopped: str | None = None


class Unsupported(Exception):
    """A node convcalc cannot express: the message names it, its op type, attributes and tensors."""


@dataclass
class Builder:
    """The layers imported so far, in graph order, and what they mean."""

    file: str
    input: InputSpec
    docs: list[Doc] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tensors: dict[str, str] = field(default_factory=dict)
    _taken: set[str] = field(default_factory=lambda: {INPUT_NAME})
    _cache: tuple[int, dict[str, Shape]] | None = None

    def location(self, node: str, op_type: str) -> Location:
        """Where a node's problems are reported: the model file and the node."""
        return Location(f"{self.file} node '{node}' ({op_type})")

    def unique(self, base: str) -> str:
        """A layer name from a module path or node name, made unique (`conv`, `conv.2`, ...)."""
        name = _NAME_JUNK.sub("_", base).strip("_.") or "layer"
        if name == INPUT_NAME:
            name = "input_"
        candidate, n = name, 2
        while candidate in self._taken:
            candidate = f"{name}.{n}"
            n += 1
        self._taken.add(candidate)
        return candidate

    def add(self, doc: Doc) -> str:
        self.docs.append(doc)
        self._cache = None
        return doc.name

    def doc(self, name: str) -> Doc | None:
        for doc in reversed(self.docs):
            if doc.name == name:
                return doc
        return None

    def remove(self, name: str) -> None:
        self.docs = [d for d in self.docs if d.name != name]
        self._cache = None

    def touched(self) -> None:
        """A document was changed in place (a fused pattern): shapes are computed again."""
        self._cache = None

    def fold_pad(self, x: str, padding: list[list[int]], single_use: bool) -> tuple[str, list[list[int]], str | None]:
        """Pad + Conv (what exporters make of padding_mode and F.pad): when the conv's input `x` is a pad
        layer read only by it, the pad becomes the conv's padding. Returns the conv's input, its padding
        and its padding_mode (None: zeros)."""
        pad = self.doc(x)
        if pad is None or pad.op != "pad" or not single_use:
            return x, padding, None
        extra = pad.fields["padding"]
        if not isinstance(extra, list) or any(min(p) < 0 for p in extra) or len(extra) != len(padding):
            return x, padding, None
        mode = pad.fields.get("mode", "constant")
        if mode == "constant":
            if pad.fields.get("value", 0.0) != 0.0:
                return x, padding, None
        elif not (all(p == [0, 0] for p in padding) and all(a == b for a, b in extra)):
            return x, padding, None  # PyTorch's padding_mode pads both ends alike, and only the conv's own padding
        merged = [[a + pa, b + pb] for (a, b), (pa, pb) in zip(padding, extra, strict=True)]
        self.remove(pad.name)
        return pad.inputs[0], merged, None if mode == "constant" else str(mode)

    def stack(self, docs: list[Doc] | None = None) -> StackSpec:
        """The documents validated as a stack file's layers would be (SpecError with every problem)."""
        raws = [self._raw(i, doc) for i, doc in enumerate(self.docs if docs is None else docs)]
        problems = Problems()
        layers = validate_layers(raws, self.input.rank, "", problems)
        if problems.items:
            raise SpecError(problems.items)
        return StackSpec(self.input, tuple(layers), name=None, file=self.file)

    def _raw(self, index: int, doc: Doc) -> RawLayer:
        data: dict[str, object] = {
            "op": doc.op,
            "name": doc.name,
            "from": doc.inputs[0] if len(doc.inputs) == 1 else doc.inputs,
        }
        data.update(doc.fields)
        return RawLayer(index, doc.where, {k: (plain(k, doc.where), plain(v, doc.where)) for k, v in data.items()})

    def shape(self, name: str) -> Shape:
        """convcalc's shape of a layer's output (or of the input), from its own analysis of the prefix."""
        if name == INPUT_NAME:
            return Shape(self.input.channels, self.input.spatial)
        if self._cache is None or self._cache[0] != len(self.docs):
            from convcalc.analysis.engine import analyze

            report = analyze(self.stack())
            self._cache = (len(self.docs), {layer.name: layer.output for layer in report.layers})
        return self._cache[1][name]

    def has_op(self, op: str) -> bool:
        """Whether this convcalc knows `op` (some mappings wait for ops added later)."""
        return registry.canonical(op) is not None

    def result(self, stopped: str | None, output: str | None) -> Imported:
        docs = self.docs
        if output is not None:
            docs = _ancestors(docs, output)
        if not docs:
            where = f": {stopped}" if stopped else ""
            raise SpecError(Problem(f"nothing to import: no supported layer before the first node{where}", self.file))
        spec = self.stack(docs)
        names = {d.name for d in docs}
        tensors = {layer: tensor for layer, tensor in self.tensors.items() if layer in names}
        return Imported(spec, {d.name: d.origin for d in docs}, tensors, tuple(self.notes), stopped)


def _ancestors(docs: list[Doc], output: str) -> list[Doc]:
    """The documents `output` reads, directly or not (itself included), in order."""
    by_name = {d.name: d for d in docs}
    keep = {output}
    for doc in reversed(docs):
        if doc.name in keep:
            keep.update(doc.inputs)
    return [d for d in docs if d.name in keep and d.name in by_name]
