"""The sliding window that convolutions and pooling share: output sizes with PyTorch's refusals, the
resolved padding (TF SAME at any stride, ONNX SAME_LOWER), the field step, and the window diagnostics
(unused input, ceil_mode's dropped window, the notes on 'same')."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from convcalc import diagnostics
from convcalc.geometry import arithmetic
from convcalc.geometry.receptive import Step, Window, fill_of
from convcalc.geometry.shape import Shape
from convcalc.ops.base import Context, LayerProblem, Node
from convcalc.stack.spec import Padding

WindowKind = Literal["conv", "maxpool", "avgpool"]


def pads_only_before(before: int | None, after: int | None, k_eff: int) -> bool:
    """Whether a window keeps a stack causal along an axis: it pads only before (after 0, before ≥ 0) and
    so looks back, or reads only the sample at its own position (k_eff 1, no padding). A window of
    k_eff > 1 without padding reads ahead of its position; padding after, a crop or ceil_mode's partial
    last window look ahead too."""
    if before is None or after is None or after != 0 or before < 0:
        return False
    return before > 0 or k_eff == 1


def resolve_padding(
    padding: Padding, axis: int, size: int | None, k: int, s: int, d: int
) -> tuple[int | None, int | None]:
    """(before, after) along one axis: explicit pairs as given, 'valid' none, 'same' TF/Keras SAME (the odd
    extra pixel after), 'same_lower' ONNX's SAME_LOWER (before). None where it depends on an unknown size."""
    if padding == "valid":
        return 0, 0
    if padding in ("same", "same_lower"):
        lower = padding == "same_lower"
        if size is not None:
            before, after = arithmetic.same_padding(size, k, s, d)
            return (after, before) if lower else (before, after)
        return arithmetic.same_padding_unknown(k, s, d, lower)
    assert not isinstance(padding, str)
    return padding[axis]


@dataclass(frozen=True)
class WindowSettings:
    """One windowed layer's geometry, per axis (already broadcast to the rank)."""

    kind: WindowKind
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: Padding
    dilation: tuple[int, ...]
    ceil_mode: bool = False
    padding_mode: str = "zeros"


def analyze_window(ctx: Context, w: WindowSettings, out_channels: int | None) -> Node:
    """conv, maxpool, avgpool: a window sliding with a stride over (padded) input.

    Fills the context's kernel, effective kernel, stride and padding, and the window diagnostics.
    """
    ctx.need_spatial()
    is_conv = w.kind == "conv"
    sizes = ctx.source.shape.spatial
    out_sizes: list[int | None] = []
    steps: list[Step | None] = []
    known: list[bool] = []
    causal: list[bool] = []
    pads: list[tuple[int, int] | None] = []
    native = not isinstance(w.padding, str) and all(b == a for b, a in w.padding)
    k_effs = tuple(arithmetic.effective_kernel(k, d) for k, d in zip(w.kernel, w.dilation, strict=True))
    unread: list[str] = []
    for axis, size in enumerate(sizes):
        k, s, d, k_eff = w.kernel[axis], w.stride[axis], w.dilation[axis], k_effs[axis]
        before, after = resolve_padding(w.padding, axis, size, k, s, d)
        pads.append((before, after) if before is not None and after is not None else None)
        known.append(before is not None)
        causal.append(pads_only_before(before, after, k_eff) and not (w.ceil_mode and not is_conv))
        steps.append(Window(s, before if before is not None else 0, k, d, fill_of(w.padding_mode)))
        if not is_conv and native and before is not None and after is not None:
            try:
                arithmetic.check_pool_padding(k, before, after)
            except ValueError as exc:
                raise LayerProblem("padding", f"{ctx.label(axis)}: {exc}") from None
        if size is None:
            out_sizes.append(None)
            continue
        assert before is not None
        assert after is not None
        try:
            if is_conv:
                out = arithmetic.conv_output_size(size, k, s, before, after, d)
            else:
                if native:
                    out = arithmetic.pool_output_size(size, k, s, before, after, d, w.ceil_mode)
                else:
                    # convcalc's own pool padding means "F.pad, then pool": the pool sees the padded
                    # size and no padding (so the last-window rule looks at that size).
                    out = arithmetic.pool_output_size(
                        size + before + after, k, s, 0, 0, d, w.ceil_mode, check_padding=False
                    )
                if w.kind == "avgpool" and ctx.rank == 3 and size + (before + after) * (not native) < k:
                    raise ValueError(
                        f"input size {size} is smaller than the kernel {k}; PyTorch's avg_pool3d refuses "
                        "it even when the padding would make it fit"
                    )
        except ValueError as exc:
            field = "padding" if "padding" in str(exc) else "kernel"
            raise LayerProblem(field, f"{ctx.label(axis)}: {exc}") from None
        if is_conv and w.padding_mode in ("reflect", "circular"):
            ok = (max(before, after) < size) if w.padding_mode == "reflect" else max(before, after) <= size
            if not ok:
                rule = "smaller than" if w.padding_mode == "reflect" else "at most"
                raise LayerProblem(
                    "padding",
                    f"{ctx.label(axis)}: {w.padding_mode} padding {max(before, after)} must be {rule} "
                    f"the input size {size} (PyTorch refuses it)",
                )
        if not is_conv and w.ceil_mode and native and arithmetic.ceil_mode_dropped_window(size, k, s, before, after, d):
            ctx.diag(
                "ceil-mode-dropped",
                f"{ctx.label(axis)}: ceil_mode dropped the last window: it would start at "
                f"{out * s - before} in the right padding (input {size}); output {out}",
                axis=ctx.label(axis),
                output=out,
            )
        gaps = arithmetic.phase_histogram(k, s, d).get(0, 0)
        leftover = (size + before + after - k_eff) % s
        if gaps:
            unread.append(f"{ctx.label(axis)}: reads only {s - gaps} of every {s} input pixels")
        elif not w.ceil_mode and leftover - after > 0:
            n = leftover - after
            unread.append(f"{ctx.label(axis)}: the last {n} of {size} input pixel{'s' if n > 1 else ''} unread")
        out_sizes.append(out)
    if unread:
        ctx.diag(
            "unused-input",
            f"no window reads some input pixels ({'; '.join(unread)}): kernel {'×'.join(map(str, k_effs))}, "
            f"stride {'×'.join(map(str, w.stride))}",
            axes=unread,
        )
    if w.padding in ("same", "same_lower"):
        ctx.diagnostics += diagnostics.same_padding_notes(
            ctx.layer.name,
            w.kind,
            [ctx.label(a) for a in range(ctx.rank)],
            w.kernel,
            w.stride,
            w.dilation,
            pads,
            lower=w.padding == "same_lower",
        )
    ctx.kernel, ctx.effective_kernel, ctx.stride, ctx.padding = w.kernel, k_effs, w.stride, tuple(pads)
    shape = Shape(out_channels, tuple(out_sizes))
    return Node(shape, ctx.mapped(steps, out_sizes, known, causal))
