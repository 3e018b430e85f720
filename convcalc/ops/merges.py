"""Merges: `add`, `sub` and `mul` (elementwise, broadcasting like PyTorch) and `concat` (along the channels).

A merge's receptive field is the hull of its branches, unit by unit; the `misaligned-merge` diagnostic
says when the branches look at different places (see `check_alignment`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, ClassVar, Literal

from convcalc.geometry import arithmetic
from convcalc.geometry.receptive import GLOBAL, AxisMap, merge
from convcalc.geometry.shape import Shape
from convcalc.notation import fraction_text
from convcalc.ops.base import Array, Context, LayerProblem, Node, Op
from convcalc.stack.spec import LayerSpec, axis_label


@dataclass(frozen=True, kw_only=True)
class MergeSpec(LayerSpec):
    """A merge has no fields of its own: `from` lists the branches."""


def broadcast_size(sizes: list[int | None]) -> int | Literal[False] | None:
    """The size PyTorch's broadcasting gives (add, mul) when some sizes are unknown (None), or False
    when no input size makes it legal.

    Sizes broadcast when equal or 1. A known size above 1 wins: an unknown one must be 1 or that size
    (torch refuses anything else). Without one, an unknown size stays unknown, even against 1 (it is
    1 only if the unknown is). All 1: 1.

    >>> broadcast_size([8, 1]), broadcast_size([None, 1]), broadcast_size([3, 4])
    (8, None, False)
    """
    big = {s for s in sizes if s is not None and s != 1}
    if len(big) > 1:
        return False
    if big:
        return big.pop()
    return None if None in sizes else 1


def _broadcast_branches(sizes: list[int | None], size: int | None) -> tuple[set[int], set[int]]:
    """Which branches of a broadcasting merge are spread over every unit: (surely, only if an unknown
    size is not 1). A size-1 branch spreads when the result is larger than 1; against an unknown
    result it spreads unless the unknown is 1, and so does an unknown branch against a known result."""
    if size is None:
        return set(), {i for i, s in enumerate(sizes) if s == 1}
    if size == 1:
        return set(), set()
    return {i for i, s in enumerate(sizes) if s == 1}, {i for i, s in enumerate(sizes) if s is None}


def check_alignment(ctx: Context, axis: int, maps: list[AxisMap], names: list[str] | None = None) -> None:
    """Warn when a merge's branches look at different places.

    Branches agree in jump and, if every layer on both pads only before along this axis (a causal
    stack), in their last sample: unit i of each ends on the same input sample (their centres differ
    whenever their fields differ in length). Otherwise they agree in jump and centre. `names`: the
    branches the maps belong to (default: every input, in order).
    """
    # A branch none of whose units reaches the input (holes everywhere: its own diagnostic says so)
    # has no centre to compare.
    local = [
        (name, m)
        for name, m in zip(ctx.layer.inputs if names is None else names, maps, strict=True)
        if not m.is_global and m.centre is not None
    ]
    if len(local) < 2 or not all(m.offset_known for _, m in local):
        return
    first_name, first = local[0]
    label = axis_label(len(ctx.stack_input.spatial), axis)
    for name, other in local[1:]:
        assert first.centre is not None
        assert other.centre is not None
        data: dict[str, object] = {
            "axis": label,
            "branches": [first_name, name],
            "jumps": [fraction_text(first.jump), fraction_text(other.jump)],
            "centres": [fraction_text(first.centre), fraction_text(other.centre)],
        }
        if other.jump != first.jump:
            ctx.diag(
                "misaligned-merge",
                f"{label}: branches disagree in jump: {first_name} has jump {fraction_text(first.jump)}, "
                f"centre {fraction_text(first.centre)}; {name} has jump {fraction_text(other.jump)}, centre "
                f"{fraction_text(other.centre)}",
                rule="jump",
                **data,
            )
            continue
        causal = first.causal and other.causal
        mine, theirs = (first.end, other.end) if causal else (first.centre, other.centre)
        assert mine is not None
        assert theirs is not None
        if mine == theirs:
            continue
        shift = theirs - mine
        fix = _alignment_fix(ctx, axis, first_name, name, shift, causal)
        pixels = f"{fraction_text(abs(shift))} input pixel{'' if abs(shift) == 1 else 's'}"
        if causal:
            jump = fraction_text(first.jump)
            message = (
                f"{label}: causal branches end on different samples: unit i of {first_name} ends at input "
                f"pixel {fraction_text(mine)} + i·{jump}, of {name} at {fraction_text(theirs)} + i·{jump}, "
                f"{pixels} {'later' if shift > 0 else 'earlier'}. Fix: {fix}"
            )
            data["ends"] = [fraction_text(mine), fraction_text(theirs)]
        else:
            message = (
                f"{label}: branches disagree in centre: {first_name} has centre {fraction_text(mine)}, {name} "
                f"{fraction_text(theirs)} (jump {fraction_text(first.jump)}): {name} is shifted by {pixels} "
                f"{'after' if shift > 0 else 'before'} {first_name}. Fix: {fix}"
            )
        ctx.diag(
            "misaligned-merge", message, rule="last sample" if causal else "centre", shift=fraction_text(shift), **data
        )


def _alignment_fix(ctx: Context, axis: int, first: str, other: str, shift: Fraction, causal: bool) -> str:
    """How to remove a shift of `other` against `first` (in stack-input pixels): the padding change of one
    window layer on either branch (below where they fork) that moves it by exactly that much, or why
    there is none."""
    whole = False  # some layer could move by the shift, but only by cropping
    windows = {
        branch: ctx.graph.branch_windows(branch, fixed, axis) for branch, fixed in ((other, first), (first, other))
    }
    for branch, move in ((other, shift), (first, -shift)):
        for spec, before, jump in windows[branch]:
            # More padding before moves the windows, and every unit after them, back by jump pixels each.
            delta = move / jump
            if delta.denominator != 1:
                continue
            whole = True
            if before + delta >= 0:
                change = int(delta)
                way = "more" if change > 0 else "less"
                pixels = f"{fraction_text(abs(move))} input pixel{'' if abs(move) == 1 else 's'}"
                return (
                    f"pad {spec.name} {abs(change)} {way} before (padding before {before} → {before + change}), "
                    f"which moves {branch} {pixels} {'earlier' if move > 0 else 'later'}"
                )
    none = f"no padding change of one layer moves a branch by {fraction_text(abs(shift))} input pixels"
    if whole:
        return f"{none} without cropping"
    if causal:
        return f"{none}; give both branches windows that end on their unit's own sample"
    even = []
    for found in windows.values():
        for spec, _, _ in found:
            kernel: tuple[int, ...] | None = getattr(spec, "kernel", None)
            dilation: tuple[int, ...] | None = getattr(spec, "dilation", None)
            if kernel is None or dilation is None:
                continue
            if arithmetic.effective_kernel(kernel[axis], dilation[axis]) % 2 == 0:
                even.append(f"{spec.name} (kernel {kernel[axis]})")
    if even:
        return (
            f"{none} (it is a fraction of every layer's input pixel): an even kernel is centred half a pixel "
            f"after an odd one — {', '.join(even)}; give both branches odd kernels (e.g. kernel 3, padding 1)"
        )
    return f"{none} (it is a fraction of every layer's input pixel)"


def _fold(xs: list[Array], ufunc: str) -> Array:
    """((a ∘ b) ∘ c) ∘ ... into one output array, however many inputs (broadcasting like PyTorch)."""
    import numpy as np

    fn = getattr(np, ufunc)
    out = np.empty(np.broadcast_shapes(*(v.shape for v in xs)), xs[0].dtype)
    fn(xs[0], xs[1], out=out)
    for other in xs[2:]:
        fn(out, other, out=out)
    return out


class _Merge(Op[MergeSpec]):
    spec = MergeSpec
    arity: ClassVar[tuple[int, int | None]] = (2, None)
    concat: ClassVar[bool] = False

    def analyze(self, layer: MergeSpec, ctx: Context) -> Node:
        shapes = [n.shape for n in ctx.inputs]
        ranks = {len(s.spatial) for s in shapes}
        if len(ranks) > 1:
            raise LayerProblem("from", f"inputs differ in rank: {ctx.describe_inputs()}")
        rank = ranks.pop()
        out_spatial: list[int | None] = []
        broadcast: list[set[int]] = [set() for _ in range(rank)]
        maybe: list[set[int]] = [set() for _ in range(rank)]
        for axis in range(rank):
            sizes = [s.spatial[axis] for s in shapes]
            known = {s for s in sizes if s is not None}
            if self.concat:
                if len(known) > 1:
                    raise LayerProblem(
                        "from",
                        f"concat needs equal spatial sizes, but {axis_label(rank, axis)} differs: "
                        f"{ctx.describe_inputs()}",
                    )
                out_spatial.append(known.pop() if known else None)
                continue
            size = broadcast_size(sizes)
            if size is False:
                raise LayerProblem(
                    "from",
                    f"{layer.op} needs equal sizes (or 1, broadcast), but {axis_label(rank, axis)} differs: "
                    f"{ctx.describe_inputs()}",
                )
            out_spatial.append(size)
            broadcast[axis], maybe[axis] = _broadcast_branches(sizes, size)
        channels = [s.channels for s in shapes]
        out_channels: int | None
        if self.concat:
            out_channels = None if None in channels else sum(c for c in channels if c is not None)
        else:
            merged = broadcast_size(channels)
            if merged is False:
                raise LayerProblem("from", f"{layer.op} needs equal channels (or 1): {ctx.describe_inputs()}")
            out_channels = merged
        maps: list[AxisMap | None] = []
        for axis in range(len(ctx.stack_input.spatial)):
            branch_maps = [
                GLOBAL if (axis < rank and i in broadcast[axis]) else n.maps[axis] for i, n in enumerate(ctx.inputs)
            ]
            # A branch that is broadcast only if an unknown size is not 1: its units are seen by every
            # unit, or unit by unit. Only a global branch answers both the same way.
            if axis < rank and any(branch_maps[i] is not GLOBAL for i in maybe[axis]):
                maps.append(None)
                continue
            if any(m is None for m in branch_maps):
                maps.append(None)
                continue
            kept = [i for i in range(len(branch_maps)) if i not in ctx.constant_inputs]
            known_maps = [m for i in kept if (m := branch_maps[i]) is not None]
            check_alignment(ctx, axis, known_maps, [ctx.layer.inputs[i] for i in kept])
            maps.append(ctx.known_map(axis, merge(known_maps, units=out_spatial[axis] if axis < rank else None)))
        return Node(Shape(out_channels, tuple(out_spatial)), tuple(maps))


class Add(_Merge):
    name: ClassVar[str] = "add"
    summary: ClassVar[str] = "elementwise sum of two or more layers (broadcasting sizes of 1)"

    def execute(self, layer: MergeSpec, xs: list[Array], params: Mapping[str, Array]) -> Array:
        return _fold(xs, "add")


class Sub(_Merge):
    name: ClassVar[str] = "sub"
    summary: ClassVar[str] = "elementwise difference a − b of two layers (broadcasting sizes of 1)"
    arity: ClassVar[tuple[int, int | None]] = (2, 2)

    def execute(self, layer: MergeSpec, xs: list[Array], params: Mapping[str, Array]) -> Array:
        return _fold(xs, "subtract")


class Mul(_Merge):
    name: ClassVar[str] = "mul"
    summary: ClassVar[str] = "elementwise product (e.g. squeeze-and-excitation gating; broadcasting sizes of 1)"

    def execute(self, layer: MergeSpec, xs: list[Array], params: Mapping[str, Array]) -> Array:
        return _fold(xs, "multiply")


class Concat(_Merge):
    name: ClassVar[str] = "concat"
    aliases: ClassVar[tuple[str, ...]] = ("cat",)
    summary: ClassVar[str] = "concatenation along the channels (equal spatial sizes)"
    concat: ClassVar[bool] = True

    def execute(self, layer: MergeSpec, xs: list[Array], params: Mapping[str, Array]) -> Array:
        from convcalc.kernels import functional as F

        return F.cat(xs, dim=1)


OPS: tuple[Op[Any], ...] = (Add(), Sub(), Mul(), Concat())
