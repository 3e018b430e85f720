"""Gridding: holes inside the receptive field of an interior unit (dilated stacks, strides that skip pixels).

Per axis, the set of input pixels that reach an interior unit (away from every border: positions in the
padding count, as for `rf`) is propagated layer by layer as a bit mask relative to the field's first
pixel: a window of kernel k and dilation d over an input of integer jump J reads the input's set shifted
by j·d·J for each tap j (for stride-1 stacks a Minkowski sum, order-independent). This is exactly the
non-zero set of the interior path counts (every skeleton weight is positive), computed with big-integer
shifts, so it costs next to nothing even for fields of many thousand pixels. Layers after a transposed
conv, an upsampling or a global layer (fields that depend on the output phase) are not checked, nor fields
wider than MAX_MASK_BITS input pixels.

The `gridding` diagnostic goes to each layer whose field has holes and that no reader with holes
follows: where a holed chain ends (the last layer, or before a layer that fills the holes).
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

from convcalc import diagnostics
from convcalc.analysis.report import LayerReport
from convcalc.geometry.receptive import AxisMap, Window
from convcalc.ops import registry
from convcalc.stack.spec import INPUT_NAME, axis_label

#: A field's set of input pixels: bit i set when pixel lo + i is read; with lo, the field's first pixel.
Mask = tuple[int, int]


#: The widest field (in input pixels, per axis) whose read set is checked; wider fields are not checked
#: (a bit mask of 2²⁰ pixels is 128 KiB and scanned in well under a second).
MAX_MASK_BITS = 1 << 20


def _window_mask(inner: Mask, jump: Fraction, step: Window, out: AxisMap) -> Mask | None:
    if jump.denominator != 1:
        return None
    bits, shift = inner[0], int(jump) * step.dilation
    if bits.bit_length() + (step.kernel - 1) * shift > MAX_MASK_BITS:
        return None
    # OR of bits << j·shift for j < k, by doubling: O(log k) big-integer operations.
    mask, taps, todo = bits, 1, step.kernel
    acc, offset = 0, 0
    while todo:
        if todo & 1:
            acc |= mask << offset
            offset += taps * shift
        todo >>= 1
        if todo:
            mask |= mask << (taps * shift)
            taps *= 2
    start = out.at(0)
    return None if start is None else (acc, start[0])


def _merge_mask(masks: list[Mask]) -> Mask:
    lo = min(m[1] for m in masks)
    bits = 0
    for b, start in masks:
        bits |= b << (start - lo)
    return bits, lo


def interior_masks(layers: tuple[LayerReport, ...], rank: int) -> dict[str, tuple[Mask | None, ...]]:
    """For each layer, per axis of the stack input, the read set of an interior unit (None: not computed)."""
    masks: dict[str, tuple[Mask | None, ...]] = {INPUT_NAME: tuple((1, 0) for _ in range(rank))}
    maps: dict[str, tuple[AxisMap | None, ...]] = {}
    for layer in layers:
        ins = [masks.get(name) for name in layer.inputs]
        per_axis: list[Mask | None] = []
        for axis in range(rank):
            out_map = layer.maps[axis] if axis < len(layer.maps) else None
            sources = [None if m is None else m[axis] for m in ins]
            if out_map is None or out_map.is_global or out_map.period != 1 or out_map.explicit or None in sources:
                per_axis.append(None)
                continue
            known = [m for m in sources if m is not None]
            op = registry.OPS[layer.op]
            step = layer.steps[axis] if layer.steps is not None and axis < len(layer.steps) else None
            if op.arity[1] is None or op.arity[1] > 1:
                jumps = {_jump(maps[name][axis]) if name in maps else Fraction(1) for name in layer.inputs}
                per_axis.append(_merge_mask(known) if len(jumps) == 1 and None not in jumps else None)
            elif step is None:
                per_axis.append(known[0])
            elif isinstance(step, Window):
                inner_map = maps.get(layer.inputs[0])
                jump = Fraction(1) if inner_map is None else _jump(inner_map[axis])
                per_axis.append(None if jump is None else _window_mask(known[0], jump, step, out_map))
            else:
                per_axis.append(None)
        masks[layer.name] = tuple(per_axis)
        maps[layer.name] = layer.maps
    return masks


def _jump(m: AxisMap | None) -> Fraction | None:
    return None if m is None or m.is_global else m.jump


def holes(mask: Mask) -> tuple[int, int, int]:
    """(width, pixels read, period): the field's width, how many of its pixels are read, and the gcd of
    the read offsets (2: every other pixel; 1: no regular pattern). O(width), one pass over the bits."""
    bits = mask[0]
    width = bits.bit_length()
    text = bin(bits)[:1:-1]  # bit i at index i
    read = text.count("1")
    period = 0
    i = text.find("1", 1)
    while i != -1:
        period = math.gcd(period, i)
        if period == 1:
            break
        i = text.find("1", i + 1)
    return width, read, period or 1


def hdc_m2(rates: list[int]) -> int | None:
    """Wang et al.'s HDC value M_2 for dilation rates r_1..r_n (n ≥ 2): M_n = r_n,
    M_i = max(M_{i+1} − 2r_i, 2r_i − M_{i+1}, r_i). The design goal M_2 ≤ K is sufficient, not necessary."""
    if len(rates) < 2:
        return None
    m = rates[-1]
    for r in reversed(rates[1:-1]):
        m = max(m - 2 * r, 2 * r - m, r)
    return m


def _chain(layers: dict[str, LayerReport], name: str) -> list[LayerReport]:
    """The layer and every layer it reads, directly or not, in file order."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen or current not in layers:
            continue
        seen.add(current)
        todo.extend(layers[current].inputs)
    return sorted((layers[n] for n in seen), key=lambda r: r.index)


def annotate(layers: tuple[LayerReport, ...], rank: int) -> tuple[LayerReport, ...]:
    """The layers with a `gridding` diagnostic added where a holed field ends (see the module docstring)."""
    masks = interior_masks(layers, rank)
    holed = {
        layer.name for layer in layers if any(m is not None and holes(m)[1] < holes(m)[0] for m in masks[layer.name])
    }
    if not holed:
        return layers
    readers: dict[str, list[str]] = {}
    for layer in layers:
        for name in layer.inputs:
            readers.setdefault(name, []).append(layer.name)
    by_name = {layer.name: layer for layer in layers}
    out = []
    for layer in layers:
        if layer.name in holed and not any(r in holed for r in readers.get(layer.name, [])):
            chain = _chain(by_name, layer.name)
            layer = dataclasses.replace(
                layer, diagnostics=(*layer.diagnostics, _diagnostic(layer, masks[layer.name], chain, rank))
            )
        out.append(layer)
    return tuple(out)


def _diagnostic(
    layer: LayerReport, masks: tuple[Mask | None, ...], chain: list[LayerReport], rank: int
) -> diagnostics.Diagnostic:
    axes = []
    for axis, m in enumerate(masks):
        if m is not None:
            width, read, period = holes(m)
            axes.append((axis_label(rank, axis), width, read, period))
    merges = any(registry.OPS[c.op].arity[1] != 1 for c in chain)
    responsible: list[tuple[str, str]] = []
    rates: dict[int, list[int]] = {}  # kernel → the dilation rates of the stride-1 windows, along the first axis
    for c in chain:
        for axis, step in enumerate(c.steps or ()):
            if not isinstance(step, Window):
                continue
            k_eff = (step.kernel - 1) * step.dilation + 1
            if step.dilation > 1 and step.kernel > 1:
                responsible.append((c.name, f"dilation {step.dilation}"))
            if step.stride > k_eff:
                responsible.append((c.name, f"stride {step.stride} > kernel {k_eff}"))
            if step.stride == 1 and step.kernel > 1 and axis == 0:
                rates.setdefault(step.kernel, []).append(step.dilation)
    kernels = sorted(rates)
    hdc = hdc_m2(rates[kernels[0]]) if len(kernels) == 1 else None
    return diagnostics.gridding(
        layer.name,
        axes,
        None if merges or len(axes) < 2 else math.prod(r for _, _, r, _ in axes),
        math.prod(w for _, w, _, _ in axes),
        list(dict.fromkeys(responsible)),
        None if hdc is None else (hdc, kernels[0]),
    )
