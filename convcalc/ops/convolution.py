"""Convolutions: `conv` (nn.ConvNd) and `deconv` (nn.ConvTranspose*d).

Params count weights and biases: conv C_out·(C_in/g)·∏k + C_out, transposed conv C_in·(C_out/g)·∏k +
C_out. MACs are multiply-accumulates at batch 1, ptflops' convention: conv ∏out·C_out·(C_in/g)·∏k,
transposed conv counted on the input it reads ∏in·C_in·(C_out/g)·∏k; a bias adds one per output element.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, ClassVar

from convcalc import diagnostics
from convcalc.geometry import arithmetic, overlap
from convcalc.geometry.receptive import Step, Transposed
from convcalc.geometry.shape import Shape
from convcalc.ops.base import Array, Context, LayerProblem, Node, Op, Parameter, Rules, prod
from convcalc.ops.window import WindowSettings, analyze_window, resolve_padding
from convcalc.stack.fields import BOOL, NONNEG_INT, POS_INT, REQUIRED, Choice, Field, PaddingKind, PerAxis
from convcalc.stack.spec import LayerSpec, Padding

CONV_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")

OUT = Field("out", POS_INT, "output channels (default: the input's)")
KERNEL = Field("kernel", PerAxis(POS_INT), "kernel size: one for every axis, or one per axis", REQUIRED)
STRIDE = Field("stride", PerAxis(POS_INT), "stride", 1)
DILATION = Field("dilation", PerAxis(POS_INT), "dilation (1 = dense; the effective kernel is d·(k−1)+1)", 1)
GROUPS = Field("groups", POS_INT, "groups: channels are split into this many independent groups", 1)
BIAS = Field("bias", BOOL, "whether the layer adds a learnable bias", True)


@dataclass(frozen=True, kw_only=True)
class ConvSpec(LayerSpec):
    out: int | None = None
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: Padding
    dilation: tuple[int, ...]
    groups: int = 1
    bias: bool = True
    padding_mode: str = "zeros"


@dataclass(frozen=True, kw_only=True)
class DeconvSpec(LayerSpec):
    out: int | None = None
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    #: Per axis (before, after): cropped from the full output (as ONNX ConvTranspose's pads), or "same".
    padding: tuple[tuple[int, int], ...] | str
    output_padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int = 1
    bias: bool = True


def deconv_crops(layer: DeconvSpec) -> list[tuple[int, int, int]]:
    """Per axis (before, after, output_padding): the full transposed-conv output, output_padding more at
    the end, then `before` and `after` cropped. PyTorch's padding p is (p, p); `same` is the symmetric
    padding and output_padding that give s·i (ValueError where none does: stride 1, dilation 1, even kernel)."""
    if layer.padding != "same":
        assert not isinstance(layer.padding, str)
        return [(b, a, op) for (b, a), op in zip(layer.padding, layer.output_padding, strict=True)]
    crops = []
    for k, s, d in zip(layer.kernel, layer.stride, layer.dilation, strict=True):
        found = arithmetic.deconv_same_padding(k, s, d)
        if found is None:
            raise ValueError(
                f"padding 'same' (output s·i) needs a total crop of d·(k−1)+1−s = {d * (k - 1) + 1 - s}, odd, "
                "which symmetric padding cannot split and output_padding (below the stride and the dilation, "
                "both 1) cannot make even; give the pair, e.g. "
                f"[{(d * (k - 1)) // 2}, {(d * (k - 1) + 1) // 2}]"
            )
        p, op = found
        crops.append((p, p, op))
    return crops


def _symmetric_part(crops: Sequence[tuple[int, int, int]]) -> tuple[list[int], list[int], list[tuple[int, int]]]:
    """PyTorch's padding (the symmetric part of each crop), output_padding, and what is left to slice."""
    pads = [min(b, a) for b, a, _ in crops]
    return pads, [op for _, _, op in crops], [(b - m, a - m) for (b, a, _), m in zip(crops, pads, strict=True)]


def _channels(
    ctx: Context, out: int | None, groups: int, kernel: Sequence[int], bias: bool, transposed: bool
) -> int | None:
    """The output channels (refusing channel counts not divisible by groups) and the params."""
    channels = ctx.source.shape.channels
    out = out if out is not None else channels
    if channels is not None and channels % groups:
        raise LayerProblem("groups", f"input channels {channels} must be divisible by groups {groups}")
    if out is not None and out % groups:
        raise LayerProblem("groups", f"output channels {out} must be divisible by groups {groups}")
    if channels is None or out is None:
        ctx.params = ctx.macs = None
        return out
    weights = (channels * (out // groups) if transposed else out * (channels // groups)) * math.prod(kernel)
    ctx.params = weights + (out if bias else 0)
    return out


def _macs(ctx: Context, output: Shape, groups: int, kernel: Sequence[int], bias: bool, transposed: bool) -> None:
    cin, cout = ctx.source.shape.channels, output.channels
    n_in, n_out = prod(ctx.source.shape.spatial), prod(output.spatial)
    if cin is None or cout is None or n_in is None or n_out is None:
        ctx.macs = None
        return
    k = math.prod(kernel)
    weights = n_in * cin * (cout // groups) * k if transposed else n_out * cout * (cin // groups) * k
    ctx.macs = weights + (cout * n_out if bias else 0)


def _conv_parameters(out: int, shape: tuple[int, ...], fan_in: float, bias: bool) -> tuple[Parameter, ...]:
    weight = Parameter("weight", shape, fan_in)
    return (weight, Parameter("bias", (out,), fan_in)) if bias else (weight,)


def _pairs(layer: ConvSpec, shape: Sequence[int]) -> list[tuple[int, int]]:
    """The resolved (before, after) padding per axis for an input array of `shape` (N, C, *spatial)."""
    pairs = []
    for a, (size, k, s, d) in enumerate(zip(shape[2:], layer.kernel, layer.stride, layer.dilation, strict=True)):
        before, after = resolve_padding(layer.padding, a, int(size), k, s, d)
        assert before is not None
        assert after is not None
        pairs.append((before, after))
    return pairs


class Conv(Op[ConvSpec]):
    name: ClassVar[str] = "conv"
    summary: ClassVar[str] = "convolution (nn.Conv1d/2d/3d)"
    spec = ConvSpec
    window = True
    fields = (
        OUT,
        KERNEL,
        STRIDE,
        Field(
            "padding",
            PaddingKind(pairs=True, modes=("same", "valid", "same_lower")),
            "padding: per axis, [before, after] pairs, 'same' (TF SAME: the odd extra pixel after), "
            "'same_lower' (ONNX SAME_LOWER: before) or 'valid'",
            0,
        ),
        DILATION,
        GROUPS,
        BIAS,
        Field("padding_mode", Choice(CONV_PADDING_MODES), "what the padding holds", "zeros"),
    )

    def analyze(self, layer: ConvSpec, ctx: Context) -> Node:
        settings = WindowSettings(
            "conv", layer.kernel, layer.stride, layer.padding, layer.dilation, padding_mode=layer.padding_mode
        )
        node = analyze_window(ctx, settings, ctx.source.shape.channels)
        out = _channels(ctx, layer.out, layer.groups, layer.kernel, layer.bias, transposed=False)
        node = Node(Shape(out, node.shape.spatial), node.maps)
        if ctx.params is not None:
            _macs(ctx, node.shape, layer.groups, layer.kernel, layer.bias, transposed=False)
        return node

    def parameters(self, layer: ConvSpec, inputs: Sequence[Shape]) -> tuple[Parameter, ...]:
        cin = int(inputs[0].channels or 0)
        out = layer.out if layer.out is not None else cin
        fan_in = cin // layer.groups * math.prod(layer.kernel)
        return _conv_parameters(out, (out, cin // layer.groups, *layer.kernel), fan_in, layer.bias)

    def execute(self, layer: ConvSpec, xs: list[Array], params: Mapping[str, Array]) -> Array:
        from convcalc.kernels import functional as F

        x = xs[0]
        pairs = _pairs(layer, x.shape)
        conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[x.ndim - 2]
        return conv(
            x,
            params["weight"],
            params.get("bias"),
            layer.stride,
            [list(p) for p in pairs],
            layer.dilation,
            layer.groups,
            padding_mode=layer.padding_mode,
        )

    def workspace(self, layer: ConvSpec, inputs: Sequence[tuple[int, ...]], output: Shape, itemsize: int) -> int:
        from convcalc.kernels import functional as F

        source = inputs[0]
        weight = (int(output.channels or 0), source[1] // layer.groups, *layer.kernel)
        return F.conv_workspace(
            source,
            weight,
            layer.stride,
            [list(p) for p in _pairs(layer, source)],
            layer.dilation,
            layer.groups,
            padding_mode=layer.padding_mode,
            itemsize=itemsize,
        )


class Deconv(Op[DeconvSpec]):
    upsamples = True
    name: ClassVar[str] = "deconv"
    aliases: ClassVar[tuple[str, ...]] = ("conv_transpose", "convtranspose", "transposed_conv")
    summary: ClassVar[str] = "transposed convolution (nn.ConvTranspose1d/2d/3d)"
    spec = DeconvSpec
    fields = (
        OUT,
        KERNEL,
        STRIDE,
        Field(
            "padding",
            PaddingKind(
                pairs=True,
                modes=("same",),
                mode_refusal="a transposed conv crops its output: 'same' gives s·i; 'valid' is padding 0",
            ),
            "the amount cropped from both ends of the full output, per axis; [before, after] pairs crop each end "
            "(ONNX ConvTranspose's pads); same: output s·i (symmetric padding plus output_padding)",
            0,
        ),
        Field("output_padding", PerAxis(NONNEG_INT), "extra output on the end side (below the stride or dilation)", 0),
        DILATION,
        GROUPS,
        BIAS,
    )

    def check(self, values: dict[str, Any], rules: Rules) -> None:
        if values.get("padding") == "same" and rules.written("output_padding"):
            rules.problem(
                "output_padding is chosen by padding 'same' (with the padding, to give s·i); remove it",
                "output_padding",
            )

    def analyze(self, layer: DeconvSpec, ctx: Context) -> Node:
        ctx.need_spatial()
        sizes = ctx.source.shape.spatial
        out_sizes: list[int | None] = []
        steps: list[Step | None] = []
        taps: list[diagnostics.PhaseCounts] = []
        try:
            crops = deconv_crops(layer)
        except ValueError as exc:
            raise LayerProblem("padding", str(exc)) from None
        for axis, size in enumerate(sizes):
            k, s, d = layer.kernel[axis], layer.stride[axis], layer.dilation[axis]
            before, after, op = crops[axis]
            try:
                arithmetic.check_output_padding(op, s, d)
            except ValueError as exc:
                raise LayerProblem("output_padding", f"{ctx.label(axis)}: {exc}") from None
            if size is None:
                out_sizes.append(None)
            else:
                # (i−1)s + d(k−1) + 1 + op − before − after: PyTorch's formula with 2p = before + after.
                full = arithmetic.deconv_output_size(size, k, s, 0, op, d)
                cropped = full - before - after
                if cropped < 1:
                    crop = f"padding {before}" if before == after else f"padding [{before}, {after}]"
                    raise LayerProblem(
                        "padding",
                        f"{ctx.label(axis)}: output size {cropped} is below 1 (input {size}, {crop} crops too much)",
                    )
                out_sizes.append(cropped)
            steps.append(Transposed(k, s, d, before))
            # Beyond MAX_PHASES the phases are not listed: their counts, closed form, by how many phases get each.
            listed = s <= arithmetic.MAX_PHASES
            taps.append(overlap.phase_taps(k, s, d, before) if listed else arithmetic.phase_histogram(k, s, d))
        found = diagnostics.transposed_overlap(
            layer.name, [ctx.label(a) for a in range(ctx.rank)], taps, layer.kernel, layer.stride, layer.dilation
        )
        ctx.add(found)
        if found is not None and found.code == "checkerboard":
            ctx.own_overlap = Fraction(str(found.data["ratio"]))
        ctx.kernel, ctx.stride = layer.kernel, layer.stride
        ctx.padding = tuple((b, a) for b, a, _ in crops)
        ctx.effective_kernel = tuple(
            arithmetic.effective_kernel(k, d) for k, d in zip(layer.kernel, layer.dilation, strict=True)
        )
        out = _channels(ctx, layer.out, layer.groups, layer.kernel, layer.bias, transposed=True)
        shape = Shape(out, tuple(out_sizes))
        if ctx.params is not None:
            _macs(ctx, shape, layer.groups, layer.kernel, layer.bias, transposed=True)
        return Node(shape, ctx.mapped(steps, out_sizes))

    def parameters(self, layer: DeconvSpec, inputs: Sequence[Shape]) -> tuple[Parameter, ...]:
        cin = int(inputs[0].channels or 0)
        out = layer.out if layer.out is not None else cin
        # A transposed conv's fan-in is the taps reaching one output: C_in/g · ∏k / ∏stride.
        fan_in = max(cin // layer.groups * math.prod(layer.kernel) / math.prod(layer.stride), 1)
        return _conv_parameters(out, (cin, out // layer.groups, *layer.kernel), fan_in, layer.bias)

    def execute(self, layer: DeconvSpec, xs: list[Array], params: Mapping[str, Array]) -> Array:
        from convcalc.kernels import functional as F

        x = xs[0]
        deconv = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[x.ndim - 2]
        pads, output_padding, rest = _symmetric_part(deconv_crops(layer))
        y = deconv(
            x, params["weight"], params.get("bias"), layer.stride, pads, output_padding, layer.groups, layer.dilation
        )
        if any(
            b or a for b, a in rest
        ):  # the asymmetric remainder of [before, after] pairs, copied: the full result is freed
            kept = (slice(b, y.shape[2 + i] - a) for i, (b, a) in enumerate(rest))
            y = y[(slice(None), slice(None), *kept)].copy()
        return y

    def workspace(self, layer: DeconvSpec, inputs: Sequence[tuple[int, ...]], output: Shape, itemsize: int) -> int:
        from convcalc.kernels import functional as F

        source = inputs[0]
        weight = (source[1], int(output.channels or 0) // layer.groups, *layer.kernel)
        pads, output_padding, rest = _symmetric_part(deconv_crops(layer))
        workspace = F.conv_transpose_workspace(
            source, weight, layer.stride, pads, output_padding, layer.groups, layer.dilation, itemsize=itemsize
        )
        if not any(b or a for b, a in rest):
            return workspace
        # The uncropped result is a temporary beside the (cropped) output the run counts.
        uncropped = source[0] * int(output.channels or 0)
        for size, (b, a) in zip(output.spatial, rest, strict=True):
            uncropped *= (size or 0) + b + a
        return workspace + uncropped * itemsize


OPS: tuple[Op[Any], ...] = (Conv(), Deconv())
