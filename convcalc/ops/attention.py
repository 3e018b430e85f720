"""Token mixing: `attention`, multi-head self-attention (nn.MultiheadAttention(C, heads), bias on) over
every spatial position of a (N, C, *spatial) tensor: the tokens are the T positions (x.flatten(2)
.transpose(1, 2)), the output is reshaped back, so the shape is unchanged.

Every output position sees every input position: the receptive field becomes the whole input, as after
flatten or global pooling. Params 4C² + 4C (the q, k, v and output projections with their biases).
MACs: the projections 4·T·C² plus the attention 2·T²·C (q·kᵀ and the weighted sum of v, T²·C each) —
torch.utils.flop_counter's matmul count halved — plus one per bias output, 4·T·C, as convcalc counts for
conv and linear; the softmax and the 1/√d scaling are not multiply-accumulates and are not counted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from convcalc.geometry.receptive import GLOBAL
from convcalc.geometry.shape import Shape
from convcalc.ops.base import Array, Context, LayerProblem, Node, Op, Parameter, prod
from convcalc.stack.fields import POS_INT, REQUIRED, Field
from convcalc.stack.spec import LayerSpec


@dataclass(frozen=True, kw_only=True)
class AttentionSpec(LayerSpec):
    heads: int


def attention_macs(tokens: int, channels: int) -> int:
    """Multiply-accumulates of one sample: projections 4TC², attention 2T²C, biases 4TC.

    >>> attention_macs(4, 8)   # 4·4·64 + 2·16·8 + 4·4·8
    1408
    """
    return 4 * tokens * channels * channels + 2 * tokens * tokens * channels + 4 * tokens * channels


class Attention(Op[AttentionSpec]):
    name: ClassVar[str] = "attention"
    summary: ClassVar[str] = "multi-head self-attention over every position (nn.MultiheadAttention(C, heads))"
    spec = AttentionSpec
    fields = (Field("heads", POS_INT, "attention heads (PyTorch's num_heads; divides the channels)", REQUIRED),)

    def analyze(self, layer: AttentionSpec, ctx: Context) -> Node:
        ctx.need_spatial()
        shape = ctx.source.shape
        channels = shape.channels
        if channels is not None and channels % layer.heads:
            raise LayerProblem(
                "heads",
                f"input channels {channels} must be divisible by heads {layer.heads} (PyTorch: embed_dim must be "
                "divisible by num_heads)",
            )
        tokens = prod(shape.spatial)
        if channels is None:
            ctx.params = ctx.macs = None
        else:
            ctx.params = 4 * channels * channels + 4 * channels
            ctx.macs = None if tokens is None else attention_macs(tokens, channels)
        return Node(shape, tuple(GLOBAL for _ in ctx.source.maps))

    def parameters(self, layer: AttentionSpec, inputs: Sequence[Shape]) -> tuple[Parameter, ...]:
        # One (4C, C) weight: rows [0, 3C) are in_proj_weight (W_q; W_k; W_v), rows [3C, 4C) out_proj.weight;
        # the (4C,) bias likewise. Every one of the four matrices has fan-in C.
        c = int(inputs[0].channels or 0)
        return (Parameter("weight", (4 * c, c), c), Parameter("bias", (4 * c,), c))

    def execute(self, layer: AttentionSpec, xs: list[Array], params: Mapping[str, Array]) -> Array:
        from convcalc.kernels import functional as F

        c = xs[0].shape[1]
        w, b = params["weight"], params["bias"]
        return F.multi_head_attention(xs[0], layer.heads, w[: 3 * c], b[: 3 * c], w[3 * c :], b[3 * c :])

    def workspace(self, layer: AttentionSpec, inputs: Sequence[tuple[int, ...]], output: Shape, itemsize: int) -> int:
        n, c = inputs[0][:2]
        tokens = int(prod(inputs[0][2:]) or 0)
        # q, k, v (3·N·T·C) live with the scores, then the softmax's weights replace the scores (N·H·T²,
        # twice at that moment, plus its max and sum); then the context, its merged copy and the
        # projected output before the final transposed copy.
        scores = n * layer.heads * tokens * tokens
        qkv = 3 * n * tokens * c
        peak = max(qkv + 2 * scores + 2 * n * layer.heads * tokens, qkv + scores + n * tokens * c, 3 * n * tokens * c)
        return peak * itemsize


OPS: tuple[Op[Any], ...] = (Attention(),)
