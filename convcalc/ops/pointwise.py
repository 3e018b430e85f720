"""Pointwise ops: the activations, dropout (the identity at inference), identity and scalar arithmetic.
They keep the shape and the receptive field and have no MACs; only prelu has parameters. Softmax over
the channels mixes channels, never positions: its spatial field is unchanged too."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from convcalc.geometry.shape import Shape
from convcalc.ops.base import Array, Context, LayerProblem, Node, Op, Rules
from convcalc.stack.fields import NUMBER, POS_INT, POS_NUMBER, PROBABILITY, Choice, Field, Scalar
from convcalc.stack.spec import LayerSpec
from convcalc.stack.values import is_number


@dataclass(frozen=True, kw_only=True)
class PointwiseSpec(LayerSpec):
    """An activation or identity without fields of its own."""


@dataclass(frozen=True, kw_only=True)
class LeakyReluSpec(LayerSpec):
    negative_slope: float = 0.01


@dataclass(frozen=True, kw_only=True)
class DropoutSpec(LayerSpec):
    p: float = 0.5


@dataclass(frozen=True, kw_only=True)
class GeluSpec(LayerSpec):
    approximate: str = "none"


@dataclass(frozen=True, kw_only=True)
class AlphaSpec(LayerSpec):
    """elu and celu: the saturation value for negative inputs is −alpha."""

    alpha: float = 1.0


@dataclass(frozen=True, kw_only=True)
class SoftplusSpec(LayerSpec):
    beta: float = 1.0
    threshold: float = 20.0


@dataclass(frozen=True, kw_only=True)
class HardtanhSpec(LayerSpec):
    min_val: float = -1.0
    max_val: float = 1.0


@dataclass(frozen=True, kw_only=True)
class PreluSpec(LayerSpec):
    num_parameters: int = 1
    init: float = 0.25


@dataclass(frozen=True, kw_only=True)
class ScalarSpec(LayerSpec):
    """y = x·mul + add."""

    mul: float = 1.0
    add: float = 0.0


NONZERO_NUMBER = Scalar(
    "a non-zero number (0 would cut the output off from its input)",
    "non-zero numbers",
    lambda v: is_number(v) and v != 0,
    {"type": "number", "not": {"const": 0}},
    float,
)


class _Pointwise(Op[Any]):
    """Shape-preserving: the output is the input's shape and field."""

    spec: ClassVar[type[LayerSpec]] = PointwiseSpec
    #: The NumPy kernel's name in convcalc.kernels.functional: F.<kernel>(x, **fields), each field passed
    #: by its name (the kernels take PyTorch's keyword names, as the fields do).
    kernel: ClassVar[str] = ""

    def analyze(self, layer: Any, ctx: Context) -> Node:
        return ctx.source

    def execute(self, layer: Any, xs: list[Array], params: Mapping[str, Array]) -> Array:
        from convcalc.kernels import functional as F

        fn = getattr(F, self.kernel)
        return fn(xs[0], **{f.name: getattr(layer, f.name) for f in self.fields})


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
    summary: ClassVar[str] = "GELU: exact (with erf) or approximate: 'tanh'"
    kernel = "gelu"
    spec = GeluSpec
    fields = (Field("approximate", Choice(("none", "tanh")), "'none' (erf) or 'tanh' (the tanh formula)", "none"),)

    def workspace(self, layer: GeluSpec, inputs: Sequence[tuple[int, ...]], output: Shape, itemsize: int) -> int:
        from convcalc.kernels import functional as F

        kernel = "gelu_tanh" if layer.approximate == "tanh" else "gelu"
        return F.elementwise_workspace(kernel, math.prod(inputs[0]), itemsize)


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
    kernel = "leaky_relu"
    spec = LeakyReluSpec
    relu_like = True
    fields = (Field("negative_slope", NUMBER, "the slope for negative inputs", 0.01),)


class Dropout(_Pointwise):
    name: ClassVar[str] = "dropout"
    summary: ClassVar[str] = "dropout: the identity at inference"
    kernel = "dropout"
    spec = DropoutSpec
    passes_scale = True
    fields = (Field("p", PROBABILITY, "the drop probability (training only)", 0.5),)


class Identity(_Pointwise):
    name: ClassVar[str] = "identity"
    summary: ClassVar[str] = "identity (a named point in the graph)"
    passes_scale = True
    view = True

    def execute(self, layer: Any, xs: list[Array], params: Mapping[str, Array]) -> Array:
        return xs[0]


class Hardswish(_Pointwise):
    name: ClassVar[str] = "hardswish"
    summary: ClassVar[str] = "hard swish, x·relu6(x + 3)/6"
    kernel = "hardswish"


class Hardsigmoid(_Pointwise):
    name: ClassVar[str] = "hardsigmoid"
    summary: ClassVar[str] = "hard sigmoid, relu6(x + 3)/6"
    kernel = "hardsigmoid"


class Elu(_Pointwise):
    name: ClassVar[str] = "elu"
    summary: ClassVar[str] = "ELU, alpha·(exp(x) − 1) below 0"
    kernel = "elu"
    spec = AlphaSpec
    fields = (Field("alpha", NUMBER, "the value −alpha is approached for large negative inputs", 1.0),)


class Celu(_Pointwise):
    name: ClassVar[str] = "celu"
    summary: ClassVar[str] = "CELU, alpha·(exp(x/alpha) − 1) below 0"
    kernel = "celu"
    spec = AlphaSpec
    fields = (Field("alpha", NONZERO_NUMBER, "the scale of the negative part (PyTorch refuses 0)", 1.0),)


class Selu(_Pointwise):
    name: ClassVar[str] = "selu"
    summary: ClassVar[str] = "SELU, scale·elu(x, alpha) with the fixed constants"
    kernel = "selu"


class Softplus(_Pointwise):
    name: ClassVar[str] = "softplus"
    summary: ClassVar[str] = "softplus, log(1 + exp(beta·x))/beta (x above the threshold)"
    kernel = "softplus"
    spec = SoftplusSpec
    fields = (
        Field("beta", POS_NUMBER, "the sharpness", 1.0),
        Field("threshold", NUMBER, "above beta·x > threshold the output is x", 20.0),
    )


class Mish(_Pointwise):
    name: ClassVar[str] = "mish"
    summary: ClassVar[str] = "Mish, x·tanh(softplus(x))"
    kernel = "mish"


class Hardtanh(_Pointwise):
    name: ClassVar[str] = "hardtanh"
    summary: ClassVar[str] = "hard tanh, x clipped to [min_val, max_val]"
    kernel = "hardtanh"
    spec = HardtanhSpec
    fields = (
        Field("min_val", NUMBER, "the lower bound", -1.0),
        Field("max_val", NUMBER, "the upper bound (above min_val)", 1.0),
    )

    def check(self, values: dict[str, Any], rules: Rules) -> None:
        if any(rules.written(name) and name not in values for name in ("min_val", "max_val")):
            return  # an invalid bound was reported already
        low, high = values.get("min_val", -1.0), values.get("max_val", 1.0)
        if high <= low:
            blame = "max_val" if rules.written("max_val") else "min_val"
            rules.problem(f"max_val ({high:g}) must be greater than min_val ({low:g}) (PyTorch's nn.Hardtanh)", blame)


class Prelu(_Pointwise):
    name: ClassVar[str] = "prelu"
    summary: ClassVar[str] = "PReLU, a learnable slope below 0 (one, or one per channel)"
    spec = PreluSpec
    relu_like = True
    fields = (
        Field("num_parameters", POS_INT, "learnable slopes: 1 (shared) or the input channels", 1),
        Field("init", NUMBER, "the slopes' initial value (the reference execution's weights)", 0.25),
    )

    def analyze(self, layer: PreluSpec, ctx: Context) -> Node:
        channels = ctx.source.shape.channels
        n = layer.num_parameters
        if channels is not None and n not in (1, channels):
            raise LayerProblem(
                "num_parameters",
                f"num_parameters must be 1 or the input channels ({channels}), got {n} (PyTorch: Mismatch of "
                f"parameter numbers and input channel size. Found parameter numbers = {n} and channel size = "
                f"{channels}.)",
            )
        ctx.params = n
        return ctx.source

    def execute(self, layer: PreluSpec, xs: list[Array], params: Mapping[str, Array]) -> Array:
        import numpy as np

        from convcalc.kernels import functional as F

        # nn.PReLU's initialisation: every slope is `init` (0.25).
        return F.prelu(xs[0], np.full(layer.num_parameters, layer.init, xs[0].dtype))

    def workspace(self, layer: PreluSpec, inputs: Sequence[tuple[int, ...]], output: Shape, itemsize: int) -> int:
        # The mask x ≥ 0 (1 byte an element) and x·slope, before np.where writes the output.
        return math.prod(inputs[0]) * (itemsize + 1)


class Softmax(_Pointwise):
    name: ClassVar[str] = "softmax"
    summary: ClassVar[str] = "softmax over the channels (dim=1), at every position"
    kernel = "softmax"

    def workspace(self, layer: Any, inputs: Sequence[tuple[int, ...]], output: Shape, itemsize: int) -> int:
        # The maximum and the sum over the channels: one value per sample and position each.
        shape = inputs[0]
        return 2 * math.prod(shape) // max(shape[1], 1) * itemsize


class ScalarOp(_Pointwise):
    name: ClassVar[str] = "scalar"
    summary: ClassVar[str] = "scalar arithmetic, x·mul + add (x*s, x/s as mul: 1/s, x+s, x−s as add: −s)"
    spec = ScalarSpec
    passes_scale = False
    fields = (
        Field("mul", NONZERO_NUMBER, "the factor (first)", 1.0),
        Field("add", NUMBER, "the offset (added after the factor)", 0.0),
    )

    def execute(self, layer: ScalarSpec, xs: list[Array], params: Mapping[str, Array]) -> Array:
        x = xs[0]
        t = x.dtype.type
        out = x * t(layer.mul)
        out += t(layer.add)
        return out

    def workspace(self, layer: Any, inputs: Sequence[tuple[int, ...]], output: Shape, itemsize: int) -> int:
        return 0


OPS: tuple[Op[Any], ...] = (
    Relu(),
    Relu6(),
    LeakyRelu(),
    Gelu(),
    Silu(),
    Sigmoid(),
    Tanh(),
    Hardswish(),
    Hardsigmoid(),
    Elu(),
    Celu(),
    Selu(),
    Softplus(),
    Mish(),
    Hardtanh(),
    Prelu(),
    Softmax(),
    ScalarOp(),
    Dropout(),
    Identity(),
)
