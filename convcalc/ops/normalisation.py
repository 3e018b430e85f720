"""Normalisation: `batchnorm` (its inference form), `layernorm` (over the channels at every position, as
ConvNeXt's LayerNorm2d), `groupnorm`, `instancenorm`, and `scale` (a learnable per-channel multiplier,
ConvNeXt's layer scale). Params: the affine weight and bias, 2·C (C for scale); no MACs (an affine
per channel folds into the conv before it).

Receptive fields: batchnorm (running statistics), layernorm (statistics over the channels of one position)
and scale keep the field. groupnorm and instancenorm normalise with statistics over every position of
the sample, so every output depends on every input position: the field becomes the whole input.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from convcalc.geometry.receptive import GLOBAL
from convcalc.geometry.shape import Shape
from convcalc.ops.base import Array, Context, LayerProblem, Node, Op
from convcalc.stack.fields import BOOL, NUMBER, POS_INT, POS_NUMBER, REQUIRED, Field
from convcalc.stack.spec import LayerSpec


@dataclass(frozen=True, kw_only=True)
class BatchNormSpec(LayerSpec):
    eps: float = 1e-5


@dataclass(frozen=True, kw_only=True)
class LayerNormSpec(LayerSpec):
    eps: float = 1e-5
    elementwise_affine: bool = True


@dataclass(frozen=True, kw_only=True)
class GroupNormSpec(LayerSpec):
    groups: int
    eps: float = 1e-5
    affine: bool = True


@dataclass(frozen=True, kw_only=True)
class InstanceNormSpec(LayerSpec):
    eps: float = 1e-5
    affine: bool = False


@dataclass(frozen=True, kw_only=True)
class ScaleSpec(LayerSpec):
    init: float = 1.0


EPS = Field("eps", POS_NUMBER, "added to the variance", 1e-5)


def _ones_zeros(x: Array, affine: bool) -> tuple[Array | None, Array | None]:
    """PyTorch's initial affine parameters (weight 1, bias 0), or none."""
    import numpy as np

    c = x.shape[1]
    return (np.ones(c, x.dtype), np.zeros(c, x.dtype)) if affine else (None, None)


def _norm_workspace(inputs: Sequence[tuple[int, ...]], itemsize: int, groups: int) -> int:
    """The squared deviations (one input-sized temporary) and two statistics per sample and group."""
    numel = math.prod(inputs[0])
    return numel * itemsize + 2 * inputs[0][0] * groups * itemsize


class BatchNorm(Op[BatchNormSpec]):
    name: ClassVar[str] = "batchnorm"
    aliases: ClassVar[tuple[str, ...]] = ("bn", "batch_norm")
    summary: ClassVar[str] = "batch normalisation (nn.BatchNorm1d/2d/3d, inference form)"
    spec = BatchNormSpec
    passes_scale = True
    fields = (EPS,)

    def analyze(self, layer: BatchNormSpec, ctx: Context) -> Node:
        channels = ctx.source.shape.channels
        ctx.params = None if channels is None else 2 * channels
        return ctx.source

    def execute(self, layer: BatchNormSpec, xs: list[Array], params: Mapping[str, Array]) -> Array:
        import numpy as np

        from convcalc.kernels import functional as F

        x = xs[0]
        c = x.shape[1]
        # A freshly initialised BatchNorm in eval mode: running mean 0, variance 1, weight 1, bias 0.
        return F.batch_norm(x, np.zeros(c, x.dtype), np.ones(c, x.dtype), None, None, False, 0.1, layer.eps)


class LayerNorm(Op[LayerNormSpec]):
    name: ClassVar[str] = "layernorm"
    aliases: ClassVar[tuple[str, ...]] = ("layer_norm",)
    summary: ClassVar[str] = "layer normalisation over the channels at every position (ConvNeXt's LayerNorm2d)"
    spec = LayerNormSpec
    passes_scale = True
    fields = (EPS, Field("elementwise_affine", BOOL, "a learnable weight and bias per channel", True))

    def analyze(self, layer: LayerNormSpec, ctx: Context) -> Node:
        channels = ctx.source.shape.channels
        ctx.params = None if channels is None else (2 * channels if layer.elementwise_affine else 0)
        return ctx.source

    def execute(self, layer: LayerNormSpec, xs: list[Array], params: Mapping[str, Array]) -> Array:
        from convcalc.kernels import functional as F

        weight, bias = _ones_zeros(xs[0], layer.elementwise_affine)
        return F.layer_norm_channels(xs[0], weight, bias, layer.eps)

    def workspace(self, layer: LayerNormSpec, inputs: Sequence[tuple[int, ...]], output: Shape, itemsize: int) -> int:
        positions = math.prod(inputs[0][2:])
        return _norm_workspace(inputs, itemsize, positions)


class GroupNorm(Op[GroupNormSpec]):
    name: ClassVar[str] = "groupnorm"
    aliases: ClassVar[tuple[str, ...]] = ("group_norm",)
    summary: ClassVar[str] = "group normalisation (nn.GroupNorm): statistics over each group and every position"
    spec = GroupNormSpec
    passes_scale = True
    fields = (
        Field("groups", POS_INT, "the groups of channels (PyTorch's num_groups; divides the channels)", REQUIRED),
        EPS,
        Field("affine", BOOL, "a learnable weight and bias per channel", True),
    )

    def analyze(self, layer: GroupNormSpec, ctx: Context) -> Node:
        channels = ctx.source.shape.channels
        if channels is not None and channels % layer.groups:
            raise LayerProblem(
                "groups",
                f"input channels {channels} must be divisible by groups {layer.groups} (PyTorch: num_channels must "
                "be divisible by num_groups)",
            )
        ctx.params = None if channels is None else (2 * channels if layer.affine else 0)
        # Every output is normalised with statistics over all positions of its group.
        return Node(ctx.source.shape, tuple(GLOBAL for _ in ctx.source.maps))

    def execute(self, layer: GroupNormSpec, xs: list[Array], params: Mapping[str, Array]) -> Array:
        from convcalc.kernels import functional as F

        weight, bias = _ones_zeros(xs[0], layer.affine)
        return F.group_norm(xs[0], layer.groups, weight, bias, layer.eps)

    def workspace(self, layer: GroupNormSpec, inputs: Sequence[tuple[int, ...]], output: Shape, itemsize: int) -> int:
        return _norm_workspace(inputs, itemsize, layer.groups)


class InstanceNorm(Op[InstanceNormSpec]):
    name: ClassVar[str] = "instancenorm"
    aliases: ClassVar[tuple[str, ...]] = ("instance_norm",)
    summary: ClassVar[str] = (
        "instance normalisation (nn.InstanceNorm1d/2d/3d): statistics per channel over every position"
    )
    spec = InstanceNormSpec
    passes_scale = True
    fields = (EPS, Field("affine", BOOL, "a learnable weight and bias per channel", False))

    def analyze(self, layer: InstanceNormSpec, ctx: Context) -> Node:
        ctx.need_spatial()
        spatial = ctx.source.shape.spatial
        if all(s is not None for s in spatial) and math.prod(s for s in spatial if s is not None) == 1:
            raise LayerProblem(
                "op",
                "instancenorm needs more than one position (PyTorch: Expected more than 1 spatial element when "
                f"training), but its input has spatial size {'×'.join(str(s) for s in spatial)}",
            )
        channels = ctx.source.shape.channels
        ctx.params = None if channels is None else (2 * channels if layer.affine else 0)
        return Node(ctx.source.shape, tuple(GLOBAL for _ in ctx.source.maps))

    def execute(self, layer: InstanceNormSpec, xs: list[Array], params: Mapping[str, Array]) -> Array:
        from convcalc.kernels import functional as F

        weight, bias = _ones_zeros(xs[0], layer.affine)
        return F.instance_norm(xs[0], weight=weight, bias=bias, eps=layer.eps)

    def workspace(
        self, layer: InstanceNormSpec, inputs: Sequence[tuple[int, ...]], output: Shape, itemsize: int
    ) -> int:
        return _norm_workspace(inputs, itemsize, inputs[0][1])


class Scale(Op[ScaleSpec]):
    name: ClassVar[str] = "scale"
    summary: ClassVar[str] = "a learnable multiplier per channel (layer scale, ConvNeXt's gamma): C params"
    spec = ScaleSpec
    passes_scale = True
    fields = (Field("init", NUMBER, "the multipliers' initial value (ConvNeXt: 1e-6)", 1.0),)

    def analyze(self, layer: ScaleSpec, ctx: Context) -> Node:
        ctx.params = ctx.source.shape.channels
        return ctx.source

    def execute(self, layer: ScaleSpec, xs: list[Array], params: Mapping[str, Array]) -> Array:
        import numpy as np

        x = xs[0]
        gamma = np.full((x.shape[1],) + (1,) * (x.ndim - 2), layer.init, x.dtype)
        out: Array = x * gamma
        return out

    def workspace(self, layer: ScaleSpec, inputs: Sequence[tuple[int, ...]], output: Shape, itemsize: int) -> int:
        return 0


OPS: tuple[Op[Any], ...] = (BatchNorm(), LayerNorm(), GroupNorm(), InstanceNorm(), Scale())
