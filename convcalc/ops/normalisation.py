"""Normalisation: `batchnorm` (its inference form). Params: the affine weight and bias, 2·C; no MACs
(batchnorm folds into the conv before it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from convcalc.ops.base import Array, Context, Node, Op
from convcalc.stack.fields import POS_NUMBER, Field
from convcalc.stack.spec import LayerSpec


@dataclass(frozen=True, kw_only=True)
class BatchNormSpec(LayerSpec):
    eps: float = 1e-5


class BatchNorm(Op[BatchNormSpec]):
    name: ClassVar[str] = "batchnorm"
    aliases: ClassVar[tuple[str, ...]] = ("bn", "batch_norm")
    summary: ClassVar[str] = "batch normalisation (nn.BatchNorm1d/2d/3d, inference form)"
    spec = BatchNormSpec
    passes_scale = True
    fields = (Field("eps", POS_NUMBER, "added to the variance", 1e-5),)

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


OPS: tuple[Op[Any], ...] = (BatchNorm(),)
