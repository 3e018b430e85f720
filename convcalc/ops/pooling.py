"""Pooling: `maxpool`, `avgpool` (sliding windows, PyTorch's ceil_mode rule) and the adaptive pools.

PyTorch's pools take symmetric padding of at most half the kernel; convcalc's [before, after] pairs and
'same' on a pool mean "pad explicitly (−inf for max, zeros for average), then pool". Pooling has no
parameters and counts no MACs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, ClassVar

from convcalc.geometry.receptive import GLOBAL, AxisMap, Resample, Step
from convcalc.geometry.shape import Shape
from convcalc.ops.base import Array, Context, LayerProblem, Node, Op
from convcalc.ops.window import WindowSettings, analyze_window, resolve_padding
from convcalc.stack.fields import BOOL, POS_INT, POS_INT_OR_NULL, REQUIRED, Field, PaddingKind, PerAxis
from convcalc.stack.spec import LayerSpec, Padding

KERNEL = Field("kernel", PerAxis(POS_INT), "window size: one for every axis, or one per axis", REQUIRED)
STRIDE = Field(
    "stride", PerAxis(POS_INT), "stride (default: the kernel, as in PyTorch)", "kernel", rule=lambda v, r: v["kernel"]
)
PADDING = Field(
    "padding",
    PaddingKind(pairs=True, modes=("same", "valid", "same_lower")),
    "padding: per axis at most half the kernel as PyTorch takes it; [before, after] pairs, 'same' or "
    "'same_lower' mean an explicit pad (−inf for max pooling) before the pool",
    0,
)
CEIL_MODE = Field("ceil_mode", BOOL, "round the output size up (PyTorch's last-window rule applies)", False)


@dataclass(frozen=True, kw_only=True)
class MaxPoolSpec(LayerSpec):
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: Padding
    dilation: tuple[int, ...]
    ceil_mode: bool = False


@dataclass(frozen=True, kw_only=True)
class AvgPoolSpec(LayerSpec):
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: Padding
    ceil_mode: bool = False
    count_include_pad: bool = True

    @property
    def dilation(self) -> tuple[int, ...]:
        """Average pooling has no dilation in PyTorch: 1 on every axis."""
        return (1,) * len(self.kernel)


@dataclass(frozen=True, kw_only=True)
class AdaptivePoolSpec(LayerSpec):
    size: tuple[int | None, ...]


def _pool_padding(
    layer: MaxPoolSpec | AvgPoolSpec, shape: Sequence[int]
) -> tuple[list[tuple[int, int]] | None, list[int]]:
    """(before, after) pairs a pool pads explicitly first (asymmetric or 'same'; else None), and the
    symmetric padding it leaves to the pool kernel, for an input array of `shape`."""
    if not isinstance(layer.padding, str) and all(b == a for b, a in layer.padding):
        return None, [b for b, _ in layer.padding]
    pairs = []
    for a, (size, k, s, d) in enumerate(zip(shape[2:], layer.kernel, layer.stride, layer.dilation, strict=True)):
        before, after = resolve_padding(layer.padding, a, int(size), k, s, d)
        assert before is not None
        assert after is not None
        pairs.append((before, after))
    return pairs, [0] * len(pairs)


def _flat(pairs: Sequence[tuple[int, int]]) -> list[int]:
    """(before, after) per axis in D,H,W order → F.pad's flat list (last axis first)."""
    return [v for before, after in reversed(pairs) for v in (before, after)]


def _pool_input(layer: MaxPoolSpec | AvgPoolSpec, x: Array, fill: float) -> tuple[Array, list[int]]:
    """Symmetric padding goes to the pool; asymmetric or 'same' padding is applied with F.pad first."""
    from convcalc.kernels import functional as F

    explicit, pads = _pool_padding(layer, x.shape)
    if explicit is None:
        return x, pads
    return F.pad(x, _flat(explicit), mode="constant", value=fill), pads


def _pool_workspace(layer: MaxPoolSpec | AvgPoolSpec, source: tuple[int, ...], itemsize: int) -> int:
    from convcalc.kernels import functional as F

    explicit, pads = _pool_padding(layer, source)
    copy = 0
    if explicit is not None:  # F.pad's copy, then the pool's own temporaries on it
        source = (*source[:2], *(size + b + a for size, (b, a) in zip(source[2:], explicit, strict=True)))
        copy = math.prod(source) * itemsize
    dilation = layer.dilation if isinstance(layer, MaxPoolSpec) else 1
    return copy + F.pool_workspace(
        source,
        layer.kernel,
        layer.stride,
        pads,
        dilation,
        layer.ceil_mode,
        average=isinstance(layer, AvgPoolSpec),
        itemsize=itemsize,
    )


class MaxPool(Op[MaxPoolSpec]):
    name: ClassVar[str] = "maxpool"
    aliases: ClassVar[tuple[str, ...]] = ("max_pool",)
    summary: ClassVar[str] = "max pooling (nn.MaxPool1d/2d/3d)"
    spec = MaxPoolSpec
    window = True
    fields = (KERNEL, STRIDE, PADDING, Field("dilation", PerAxis(POS_INT), "dilation of the window", 1), CEIL_MODE)

    def analyze(self, layer: MaxPoolSpec, ctx: Context) -> Node:
        settings = WindowSettings("maxpool", layer.kernel, layer.stride, layer.padding, layer.dilation, layer.ceil_mode)
        return analyze_window(ctx, settings, ctx.source.shape.channels)

    def execute(self, layer: MaxPoolSpec, xs: list[Array], params: Mapping[str, Array]) -> Array:
        from convcalc.kernels import functional as F

        x, pads = _pool_input(layer, xs[0], -math.inf)
        pool = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[x.ndim - 2]
        return pool(x, layer.kernel, layer.stride, pads, layer.dilation, layer.ceil_mode)

    def workspace(self, layer: MaxPoolSpec, inputs: Sequence[tuple[int, ...]], output: Shape, itemsize: int) -> int:
        return _pool_workspace(layer, inputs[0], itemsize)


class AvgPool(Op[AvgPoolSpec]):
    name: ClassVar[str] = "avgpool"
    aliases: ClassVar[tuple[str, ...]] = ("avg_pool",)
    summary: ClassVar[str] = "average pooling (nn.AvgPool1d/2d/3d)"
    spec = AvgPoolSpec
    window = True
    fields = (
        KERNEL,
        STRIDE,
        PADDING,
        CEIL_MODE,
        Field("count_include_pad", BOOL, "whether the padding counts in the divisor", True),
    )

    def analyze(self, layer: AvgPoolSpec, ctx: Context) -> Node:
        settings = WindowSettings("avgpool", layer.kernel, layer.stride, layer.padding, layer.dilation, layer.ceil_mode)
        return analyze_window(ctx, settings, ctx.source.shape.channels)

    def execute(self, layer: AvgPoolSpec, xs: list[Array], params: Mapping[str, Array]) -> Array:
        from convcalc.kernels import functional as F

        x, pads = _pool_input(layer, xs[0], 0.0)
        pool = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}[x.ndim - 2]
        return pool(x, layer.kernel, layer.stride, pads, layer.ceil_mode, layer.count_include_pad)

    def workspace(self, layer: AvgPoolSpec, inputs: Sequence[tuple[int, ...]], output: Shape, itemsize: int) -> int:
        return _pool_workspace(layer, inputs[0], itemsize)


class _AdaptivePool(Op[AdaptivePoolSpec]):
    spec = AdaptivePoolSpec
    #: The NumPy kernels' name without the rank: F.<kernel>1d / 2d / 3d.
    kernel: ClassVar[str] = ""
    fields = (
        Field(
            "size",
            PerAxis(POS_INT_OR_NULL),
            "output size per axis; null keeps an axis; 1 is global pooling",
            REQUIRED,
        ),
    )

    def analyze(self, layer: AdaptivePoolSpec, ctx: Context) -> Node:
        ctx.need_spatial()
        sizes = ctx.source.shape.spatial
        if ctx.rank == 1 and None in layer.size:
            raise LayerProblem(
                "size", "PyTorch's 1-D adaptive pools need an output size (null keeps an axis in 2-D/3-D only)"
            )
        out_sizes: list[int | None] = []
        maps: list[AxisMap | None] = []
        steps: list[Step | None] = []
        for axis, (size, want) in enumerate(zip(sizes, layer.size, strict=True)):
            inner = ctx.source.maps[axis]
            if want is None:
                out_sizes.append(size)
                maps.append(inner)
                steps.append(None)
                continue
            out_sizes.append(want)
            steps.append(None if size is None else Resample(Fraction(size, want), "bins"))
            if want == 1:
                # Global pooling: its one unit sees everything, and so does whatever is resized or
                # broadcast from it (the periodic extension of a 1-unit map means nothing).
                maps.append(GLOBAL)
            elif inner is None or size is None:
                maps.append(None)
            else:
                from convcalc.geometry.receptive import compose_map

                maps.append(ctx.known_map(axis, compose_map(inner, Resample(Fraction(size, want), "bins"), units=want)))
        ctx.steps = tuple(steps)
        return Node(Shape(ctx.source.shape.channels, tuple(out_sizes)), tuple(maps))

    def workspace(
        self, layer: AdaptivePoolSpec, inputs: Sequence[tuple[int, ...]], output: Shape, itemsize: int
    ) -> int:
        from convcalc.kernels import functional as F

        return F.adaptive_pool_workspace(inputs[0], list(layer.size), itemsize=itemsize)

    def execute(self, layer: AdaptivePoolSpec, xs: list[Array], params: Mapping[str, Array]) -> Array:
        from convcalc.kernels import functional as F

        x = xs[0]
        pool = getattr(F, f"{self.kernel}{x.ndim - 2}d")
        return pool(x, list(layer.size))


class AdaptiveAvgPool(_AdaptivePool):
    name: ClassVar[str] = "adaptive_avgpool"
    aliases: ClassVar[tuple[str, ...]] = ("adaptive_avg_pool",)
    summary: ClassVar[str] = "adaptive average pooling (nn.AdaptiveAvgPool1d/2d/3d)"
    kernel = "adaptive_avg_pool"


class AdaptiveMaxPool(_AdaptivePool):
    name: ClassVar[str] = "adaptive_maxpool"
    aliases: ClassVar[tuple[str, ...]] = ("adaptive_max_pool",)
    summary: ClassVar[str] = "adaptive max pooling (nn.AdaptiveMaxPool1d/2d/3d)"
    kernel = "adaptive_max_pool"


OPS: tuple[Op[Any], ...] = (MaxPool(), AvgPool(), AdaptiveAvgPool(), AdaptiveMaxPool())
