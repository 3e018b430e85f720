"""Dense ops: `flatten` and `linear` (nn.Linear on flattened features). After them every unit sees the
whole input. Linear params in·out + out; MACs in·out plus one per output for the bias."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from convcalc.geometry.receptive import GLOBAL
from convcalc.geometry.shape import Shape
from convcalc.notation import dims_text
from convcalc.ops.base import Array, Context, LayerProblem, Node, Op, Parameter, prod
from convcalc.stack.fields import BOOL, POS_INT, REQUIRED, Field
from convcalc.stack.spec import LayerSpec


@dataclass(frozen=True, kw_only=True)
class FlattenSpec(LayerSpec):
    """Flatten has no fields: channels and spatial sizes become one feature axis."""


@dataclass(frozen=True, kw_only=True)
class LinearSpec(LayerSpec):
    out: int
    bias: bool = True


class Flatten(Op[FlattenSpec]):
    name: ClassVar[str] = "flatten"
    summary: ClassVar[str] = "flatten channels and spatial axes into features (torch.flatten(x, 1))"
    spec = FlattenSpec
    view = True

    def analyze(self, layer: FlattenSpec, ctx: Context) -> Node:
        shape = ctx.source.shape
        features = None if shape.channels is None else prod((shape.channels, *shape.spatial))
        return Node(Shape(features, ()), tuple(GLOBAL for _ in ctx.source.maps))

    def execute(self, layer: FlattenSpec, xs: list[Array], params: Mapping[str, Array]) -> Array:
        from convcalc.kernels import functional as F

        return F.flatten(xs[0], 1)


class Linear(Op[LinearSpec]):
    name: ClassVar[str] = "linear"
    summary: ClassVar[str] = "fully connected layer on flattened features (nn.Linear)"
    spec = LinearSpec
    fields = (
        Field("out", POS_INT, "output features", REQUIRED),
        Field("bias", BOOL, "whether the layer adds a learnable bias", True),
    )

    def analyze(self, layer: LinearSpec, ctx: Context) -> Node:
        if ctx.rank:
            shape = ctx.source.shape
            raise LayerProblem(
                "op",
                f"linear acts on flattened features, but its input {dims_text([shape.channels, *shape.spatial])} "
                "has spatial axes; add a layer `op: flatten` before it",
            )
        features = ctx.source.shape.channels
        if features is None:
            ctx.params = ctx.macs = None
        else:
            ctx.params = ctx.macs = features * layer.out + (layer.out if layer.bias else 0)
        return Node(Shape(layer.out, ()), tuple(GLOBAL for _ in ctx.source.maps))

    def parameters(self, layer: LinearSpec, inputs: Sequence[Shape]) -> tuple[Parameter, ...]:
        features = int(inputs[0].channels or 0)
        weight = Parameter("weight", (layer.out, features), features)
        return (weight, Parameter("bias", (layer.out,), features)) if layer.bias else (weight,)

    def execute(self, layer: LinearSpec, xs: list[Array], params: Mapping[str, Array]) -> Array:
        from convcalc.kernels import functional as F

        return F.linear(xs[0], params["weight"], params.get("bias"))


OPS: tuple[Op[Any], ...] = (Flatten(), Linear())
