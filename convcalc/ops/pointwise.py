"""Pointwise ops: the activations, dropout (the identity at inference) and identity. They keep the shape
and the receptive field, and have no parameters or MACs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from convcalc.ops.base import Array, Context, Node, Op
from convcalc.stack.fields import NUMBER, PROBABILITY, Field
from convcalc.stack.spec import LayerSpec


@dataclass(frozen=True, kw_only=True)
class PointwiseSpec(LayerSpec):
    """An activation or identity without fields of its own."""


@dataclass(frozen=True, kw_only=True)
class LeakyReluSpec(LayerSpec):
    negative_slope: float = 0.01


@dataclass(frozen=True, kw_only=True)
class DropoutSpec(LayerSpec):
    p: float = 0.5


class _Pointwise(Op[Any]):
    """Shape-preserving: the output is the input's shape and field."""

    spec: ClassVar[type[LayerSpec]] = PointwiseSpec
    #: The NumPy kernel's name in convcalc.kernels.functional (F.<kernel>(x)).
    kernel: ClassVar[str] = ""

    def analyze(self, layer: Any, ctx: Context) -> Node:
        return ctx.source

    def execute(self, layer: Any, xs: list[Array], params: Mapping[str, Array]) -> Array:
        from convcalc.kernels import functional as F

        fn = getattr(F, self.kernel)
        return fn(xs[0])


class Relu(_Pointwise):
    name: ClassVar[str] = "relu"
    summary: ClassVar[str] = "ReLU"
    kernel = "relu"
    relu_like = True


class Relu6(_Pointwise):
    name: ClassVar[str] = "relu6"
    summary: ClassVar[str] = "ReLU6, min(max(x, 0), 6)"
    kernel = "relu6"
    relu_like = True


class Gelu(_Pointwise):
    name: ClassVar[str] = "gelu"
    summary: ClassVar[str] = "GELU (exact, with erf)"
    kernel = "gelu"


class Silu(_Pointwise):
    name: ClassVar[str] = "silu"
    summary: ClassVar[str] = "SiLU (swish), x·sigmoid(x)"
    kernel = "silu"


class Sigmoid(_Pointwise):
    name: ClassVar[str] = "sigmoid"
    summary: ClassVar[str] = "sigmoid"
    kernel = "sigmoid"


class Tanh(_Pointwise):
    name: ClassVar[str] = "tanh"
    summary: ClassVar[str] = "tanh"
    kernel = "tanh"


class LeakyRelu(_Pointwise):
    name: ClassVar[str] = "leaky_relu"
    summary: ClassVar[str] = "leaky ReLU"
    spec = LeakyReluSpec
    relu_like = True
    fields = (Field("negative_slope", NUMBER, "the slope for negative inputs", 0.01),)

    def execute(self, layer: LeakyReluSpec, xs: list[Array], params: Mapping[str, Array]) -> Array:
        from convcalc.kernels import functional as F

        return F.leaky_relu(xs[0], layer.negative_slope)


class Dropout(_Pointwise):
    name: ClassVar[str] = "dropout"
    summary: ClassVar[str] = "dropout: the identity at inference"
    spec = DropoutSpec
    passes_scale = True
    fields = (Field("p", PROBABILITY, "the drop probability (training only)", 0.5),)

    def execute(self, layer: DropoutSpec, xs: list[Array], params: Mapping[str, Array]) -> Array:
        from convcalc.kernels import functional as F

        return F.dropout(xs[0], layer.p)


class Identity(_Pointwise):
    name: ClassVar[str] = "identity"
    summary: ClassVar[str] = "identity (a named point in the graph)"
    passes_scale = True
    view = True

    def execute(self, layer: Any, xs: list[Array], params: Mapping[str, Array]) -> Array:
        return xs[0]


OPS: tuple[Op[Any], ...] = (Relu(), Relu6(), LeakyRelu(), Gelu(), Silu(), Sigmoid(), Tanh(), Dropout(), Identity())
