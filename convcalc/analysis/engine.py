"""Analyse a layer stack: every layer's output shape, receptive field, parameters, MACs and diagnostics.

Conventions (stated once, used everywhere):
- shapes exclude the batch axis; sizes exactly as PyTorch 2.x computes them;
- receptive fields are per axis of the stack input, in input pixels (see `receptive`);
- params count weights and biases (batchnorm: its affine weight and bias, 2·C);
- MACs are multiply-accumulates at batch 1: conv ∏out·C_out·(C_in/g)·∏k, transposed conv counted
  on the input it reads ∏in·C_in·(C_out/g)·∏k, linear in·out; a bias adds one MAC per output
  element (C_out·∏out). Other layers count 0 (pooling, activations, resampling are not MACs;
  batchnorm folds into the conv before it). This is ptflops' convention for convolutions.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from fractions import Fraction
from typing import TYPE_CHECKING, Literal

from convcalc import collector, diagnostics
from convcalc.analysis import gates as gate_finder
from convcalc.analysis import gridding
from convcalc.analysis.report import AxisField, LayerReport, StackReport
from convcalc.errors import Problem, ShapeError, SpecError
from convcalc.geometry import coverage as cov
from convcalc.geometry.coverage import Count
from convcalc.geometry.receptive import (
    IDENTITY,
    MAX_PERIOD,
    MAX_TAPS,
    MAX_UNITS,
    AxisMap,
)
from convcalc.geometry.shape import Shape
from convcalc.notation import counts_text, fraction_text, ratio_text
from convcalc.ops import registry
from convcalc.ops.base import Context, LayerProblem, Node
from convcalc.stack.spec import INPUT_NAME, LayerSpec, StackSpec, axis_label, output_name, output_of, outputs_text

if TYPE_CHECKING:
    from convcalc.analysis.locate import Skeleton


class _Graph:
    """The layers analysed so far, for advice that looks up the branches of a merge."""

    def __init__(self, layers: tuple[LayerSpec, ...], input_spatial: tuple[int | None, ...]) -> None:
        self.layers = {layer.name: layer for layer in layers}
        self.nodes: dict[str, Node | None] = {}
        self.reports: dict[str, LayerReport] = {}
        self.input_spatial = input_spatial
        self._skeletons: dict[int, Skeleton] = {}

    def skeleton(self, axis: int) -> Skeleton:
        """The stack's unbounded coverage links along `axis`, built on first use (extend it with the reports)."""
        found = self._skeletons.get(axis)
        if found is None:
            # Imported here: only stacks whose upsampling compounds need the links (not the calculators).
            from convcalc.analysis.locate import Skeleton

            found = self._skeletons[axis] = Skeleton(self.input_spatial, axis, unbounded=True)
        return found

    def ancestors(self, name: str) -> set[str]:
        """`name` and every layer (and `input`) it reads, directly or not."""
        seen = {name}
        todo = [name]
        while todo:
            spec = self.layers.get(todo.pop())
            for parent in spec.inputs if spec is not None else ():
                if parent not in seen:
                    seen.add(parent)
                    todo.append(parent)
        return seen

    def branch_windows(self, branch: str, other: str, axis: int) -> list[tuple[LayerSpec, int, Fraction]]:
        """The window layers (conv, pool, pad) on `branch` from the merge back to where it forks from
        `other`, nearest first, with their padding before and their input's jump along `axis`."""
        fork = self.ancestors(other)
        found: list[tuple[LayerSpec, int, Fraction]] = []
        current = branch
        while current not in fork and current in self.layers:
            spec = self.layers[current]
            report = self.reports.get(current)
            source = self.nodes.get(spec.inputs[0])
            inner = None if source is None else source.maps[axis]
            padding = None if report is None or report.padding is None else report.padding[axis]
            window = registry.op_of(spec).window
            if window and padding is not None and inner is not None and not inner.is_global:
                found.append((spec, padding[0], inner.jump))
            if len(spec.inputs) != 1:
                break
            current = spec.inputs[0]
        return found


def _axis_field(m: AxisMap | None, size: int | None) -> AxisField:
    if m is None:
        return AxisField(None, None, None, None, None, overlap=None)
    if m.is_global:
        return AxisField(size, size, None, Fraction(0), None if size is None else Fraction(size - 1, 2), True)
    return AxisField(m.rf_max, m.rf_min, m.jump, m.padding, m.centre, overlap=m.overlap_ratio)


def _phases_text(m: AxisMap, values: list[Count]) -> str:
    """The per-phase values in phase order; for a map listing every unit (no short period), their range."""
    if m.explicit:
        return f"from {fraction_text(min(values))} to {fraction_text(max(values))}, unit by unit"
    return counts_text(values)


def _phase_values(graph: _Graph, reports: list[LayerReport], name: str, axis: int) -> list[Count] | None:
    """The skeleton's value at each output phase of tensor `name` along `axis` (every unit of a map listing
    them), away from every border: `coverage.interior` on the stack's links, the one source of the
    checkerboard-compound numbers. None when the map is unknown or global, or the value is not finite."""
    if name == INPUT_NAME:
        return [1]
    node = graph.nodes.get(name)
    m = None if node is None else node.maps[axis]
    if m is None or m.is_global:
        return None
    links = graph.skeleton(axis).extend(reports)
    return cov.interior(links, name, range(m.period))


def _ratio(values: list[Count] | None) -> Fraction | None:
    """max/min of the per-phase values (None: unknown, or some phase gets nothing)."""
    if values is None or min(values) <= 0:
        return None
    return Fraction(max(values)) / min(values)


def _compound_note(work: Context, graph: _Graph, reports: list[LayerReport], name: str) -> None:
    """A `checkerboard-compound` warning when this resampling layer makes the stack's overlap more uneven
    than both its input and its own kernel alone would (stacked transposed convs compound).

    The per-phase values are the exact path counts of `convcalc.geometry.coverage` away from the borders
    (`reports` ends with this layer's report); the axes' ratios multiply."""
    if not registry.op_of(work.layer).upsamples:
        return
    if all(m is not None and m.period == 1 and not m.explicit for node in work.inputs for m in node.maps):
        # Every input is the same at every phase (no upsampling before): the layer's values are its own
        # taps per phase times that value, so nothing compounds (and a one-layer calculator needs no links).
        return
    rank = len(work.stack_input.spatial)
    values = [_phase_values(graph, reports, name, axis) for axis in range(rank)]
    ratios = [_ratio(v) for v in values]
    if any(r is None for r in ratios):
        return
    total = math.prod((r for r in ratios if r is not None), start=Fraction(1))
    if total == 1:
        return
    before: list[Fraction | None] = []
    for source, node in zip(work.layer.inputs, work.inputs, strict=True):
        if all(m is not None for m in node.maps):
            axes = [_ratio(_phase_values(graph, reports, source, axis)) for axis in range(rank)]
            before.append(None if None in axes else math.prod((r for r in axes if r is not None), start=Fraction(1)))
    own = work.own_overlap
    if any(r is None for r in before):
        return
    upstream = max((r for r in before if r is not None), default=Fraction(1))
    if total <= max(own, upstream):
        return
    layer_node = graph.nodes[name]
    assert layer_node is not None
    patterns = diagnostics.by_axes(
        [
            (axis_label(rank, axis), _phases_text(m, v))
            for axis, (m, v) in enumerate(zip(layer_node.maps, values, strict=True))
            if m is not None and v is not None and len(set(v)) > 1
        ]
    )
    work.diag(
        "checkerboard-compound",
        f"stacked upsampling compounds the uneven overlap: per-phase values {patterns}; max:min "
        f"{ratio_text(total)} (this layer alone {ratio_text(own)}, its input {ratio_text(upstream)}). "
        "Fix: kernels divisible by the strides, resize then conv, or a stride-1 conv after",
        ratio=fraction_text(total),
        own=fraction_text(own),
    )


_FieldCache = dict[tuple[int, int | None], tuple[AxisMap | None, AxisField]]


def _field_of(cache: _FieldCache, m: AxisMap | None, size: int | None) -> AxisField:
    """_axis_field once per map: a layer that keeps its input's map (an activation, batchnorm) shares it.

    Keyed by identity (hashing a map would cost as much as the field); the entry holds the map, so
    its id cannot be reused by another map during the analysis.
    """
    key = (id(m), size)
    found = cache.get(key)
    if found is None:
        found = cache[key] = (m, _axis_field(m, size))
    return found[1]


def _unknown_note(work: Context, rank: int) -> None:
    """The `rf-unknown` note of the first layer whose field is unknown, with the reason."""
    reasons = {u.reason: (axis, u) for axis, u in sorted(work.unmapped.items())}
    repeats = f"its pattern over output phases repeats only every more than {MAX_PERIOD} units"
    if "units" in reasons:
        axis, unmapped = reasons["units"]
        why = (
            f"is not computed: {repeats}, so convcalc lists every unit, but {axis_label(rank, axis)} has "
            f"{unmapped.units} units, more than the {MAX_UNITS} it lists per axis"
        )
    elif "taps" in reasons:
        axis, unmapped = reasons["taps"]
        why = (
            f"is not computed: a unit reads {unmapped.units} separate taps along {axis_label(rank, axis)}, more "
            f"than the {MAX_TAPS} convcalc composes a field from"
        )
    elif "period" in reasons:
        why = f"depends on the unknown input size: {repeats}, and listing every unit needs the size; give it"
    else:
        why = "depends on the unknown input size; give the input size to compute it"
    work.diag(
        "rf-unknown",
        f"the receptive field from here on {why}",
        max_period=MAX_PERIOD,
        max_units=MAX_UNITS,
        max_taps=MAX_TAPS,
    )


#: How `analyze` treats gates (see convcalc.analysis.gates): "true" — as they are (after a gate every
#: field is global); "constant" — also report the fields with every gate taken as a per-channel constant.
Gates = Literal["true", "constant"]
GATES: tuple[Gates, ...] = ("true", "constant")


def analyze(stack: StackSpec, gates: Gates = "true") -> StackReport:
    """Analyse every layer of `stack` in file order.

    gates="constant" adds `StackReport.gates` and `StackReport.constant_gates`: the fields of the spatial
    path, with every gate that reads a global pool taken as a per-channel constant; the report's own
    fields stay the true ones.

    Raises ShapeError with one Problem per failing layer (file, line, layer, field) when PyTorch
    would refuse a layer on this input; layers fed by a failing layer are not analysed further.
    """
    if gates not in GATES:
        raise SpecError(Problem(f"unknown gates mode {gates!r}; allowed: {', '.join(GATES)}", parameter="gates"))
    # A long stack's maps and reports are many objects and no cycles (see convcalc.collector).
    with collector.paused():
        report = _analyze(stack)
        if gates == "true":
            return report
        found = gate_finder.find(stack, report.layers)
        constant: dict[str, frozenset[int]] = {}
        for gate in found:
            constant[gate.layer] = constant.get(gate.layer, frozenset()) | {gate.index}
        spatial = _analyze(stack, constant) if constant else report
        return dataclasses.replace(report, gates=found, constant_gates=spatial)


def _analyze(stack: StackSpec, constant: Mapping[str, frozenset[int]] | None = None) -> StackReport:
    """The analysis itself (analyze runs it with the collector paused). `constant`: the inputs (positions
    in `from`) of each merge to take as per-channel constants; the gridding diagnostics are then left out
    (this analysis gives fields, the stack's diagnostics come from the true one)."""
    stack_input = Shape(stack.input.channels, stack.input.spatial)
    field_cache: _FieldCache = {}
    graph = _Graph(stack.layers, stack.input.spatial)
    nodes = graph.nodes
    nodes[INPUT_NAME] = Node(stack_input, tuple(IDENTITY for _ in stack.input.spatial))
    reports: list[LayerReport] = []
    problems: list[Problem] = []
    reported_exceeds: set[int] = set()
    reported_unknown = False
    parts: dict[str, int] = {}  # the multi-output layers analysed, and how many outputs each has
    for layer in stack.layers:
        op = registry.op_of(layer)
        try:
            inputs = [_input_node(nodes, parts, name) for name in layer.inputs]
            refs = {name: _input_node(nodes, parts, name) for name in op.references(layer)}  # `like:`
        except LayerProblem as exc:
            where = layer.where(exc.field)
            problems.append(Problem(exc.message, where.file, where.line, where.column, layer.name, exc.field))
            nodes[layer.name] = None
            continue
        if any(node is None for node in inputs) or any(node is None for node in refs.values()):
            nodes[layer.name] = None
            continue
        known_refs = {name: node for name, node in refs.items() if node is not None}
        work = Context(layer, [n for n in inputs if n is not None], stack_input, graph, known_refs)
        if constant is not None and layer.name in constant:
            work.constant_inputs = constant[layer.name]
        try:
            outputs = op.analyze_outputs(layer, work) if op.multi_output else (op.analyze(layer, work),)
        except LayerProblem as exc:
            where = layer.where(exc.field)
            problems.append(Problem(exc.message, where.file, where.line, where.column, layer.name, exc.field))
            nodes[layer.name] = None
            continue
        # A multi-output layer (split, chunk) is reported as one row per output, `sp.0`, `sp.1`, ...: the
        # names later layers read. Its diagnostics go with its first output.
        names = [output_name(layer.name, i) for i in range(len(outputs))] if op.multi_output else [layer.name]
        for part, (name, node) in enumerate(zip(names, outputs, strict=True)):
            if part:
                work.diagnostics = []
            reported_unknown = _record(
                work,
                name,
                node,
                stack,
                field_cache,
                graph,
                reports,
                reported_exceeds,
                reported_unknown,
                compound=constant is None,  # the analysis with constant gates gives fields only
            )
            if op.multi_output:
                graph.layers[name] = layer
        if op.multi_output:
            parts[layer.name] = len(outputs)
    if problems:
        raise ShapeError(problems)
    layers = gridding.annotate(tuple(reports), len(stack.input.spatial)) if constant is None else tuple(reports)
    return StackReport(stack.name, stack.file, stack_input, _locate(layers, stack))


def _locate(layers: tuple[LayerReport, ...], stack: StackSpec) -> tuple[LayerReport, ...]:
    """Every row's diagnostics with the source location of the row's layer: the one place they get it."""
    by_index = {layer.index: layer for layer in stack.layers}
    out = []
    for row in layers:
        if row.diagnostics:
            spec = by_index[row.index]
            row = dataclasses.replace(row, diagnostics=tuple(diagnostics.located(d, spec) for d in row.diagnostics))
        out.append(row)
    return tuple(out)


def _input_node(nodes: dict[str, Node | None], parts: dict[str, int], name: str) -> Node | None:
    """The tensor `name` (a layer, or an output `sp.1` of a split); None after a refused layer.

    LayerProblem for a multi-output layer itself, or an output it does not have on this input
    (torch.chunk may give fewer parts than asked; split by `size` as many as the channels make).
    """
    if name in nodes:
        return nodes[name]
    found = output_of(name)
    layer = name if name in parts else None if found is None else found[0]
    if layer is None or layer not in parts:
        return None  # the producer (a split) was refused: its outputs are unknown
    count = parts[layer]
    outputs = f"{layer} has {count} output{'' if count == 1 else 's'} on its input ({outputs_text(layer, count)})"
    if layer == name:
        raise LayerProblem("from", f"{outputs}; say which with from:")
    raise LayerProblem("from", f"unknown output '{name}': {outputs}")


def _record(
    work: Context,
    name: str,
    node: Node,
    stack: StackSpec,
    field_cache: _FieldCache,
    graph: _Graph,
    reports: list[LayerReport],
    reported_exceeds: set[int],
    reported_unknown: bool,
    compound: bool = True,
) -> bool:
    """Append the report row of output tensor `name` of `work.layer`, with its field diagnostics;
    whether the `rf-unknown` note has been given (by now)."""
    layer = work.layer
    fields = tuple(_field_of(field_cache, m, size) for m, size in zip(node.maps, stack.input.spatial, strict=True))
    graph.nodes[name] = node
    if compound and registry.op_of(layer).upsamples:
        # The checkerboard numbers come from the coverage links, which read this layer's report.
        _compound_note(work, graph, [*reports, _layer_report(work, name, node, fields)], name)
    exceeding = [
        (axis, f.rf, size)
        for axis, (f, size) in enumerate(zip(fields, stack.input.spatial, strict=True))
        if f.rf is not None and size is not None and f.rf > size and not f.is_global and axis not in reported_exceeds
    ]
    if exceeding:
        reported_exceeds.update(axis for axis, _, _ in exceeding)
        labels = [axis_label(len(fields), axis) for axis, _, _ in exceeding]
        detail = "; ".join(f"{label}: {rf} > {size}" for label, (_, rf, size) in zip(labels, exceeding, strict=True))
        work.diag(
            "rf-exceeds-input",
            f"the receptive field exceeds the input ({detail}); units see padding beyond the borders",
            axes=labels,
            rf=[rf for _, rf, _ in exceeding],
            size=[size for _, _, size in exceeding],
        )
    if not reported_unknown and any(f.rf is None and not f.is_global for f in fields):
        reported_unknown = True
        _unknown_note(work, len(fields))
    reports.append(_layer_report(work, name, node, fields))
    graph.reports[name] = reports[-1]
    return reported_unknown


def _layer_report(work: Context, name: str, node: Node, fields: tuple[AxisField, ...]) -> LayerReport:
    layer = work.layer
    return LayerReport(
        index=layer.index,
        name=name,
        op=layer.op,
        inputs=layer.inputs,
        output=node.shape,
        kernel=work.kernel,
        effective_kernel=work.effective_kernel,
        stride=work.stride,
        padding=work.padding,
        field=fields,
        params=work.params,
        macs=work.macs,
        diagnostics=tuple(work.diagnostics),
        maps=node.maps,
        steps=work.steps,
    )
