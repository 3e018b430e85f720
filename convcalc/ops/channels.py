"""Channel ops (PyTorch's dim=1): `split` and `chunk` (several outputs), `slice` and `channel_shuffle`.

They move channels only: every output keeps its input's spatial sizes and receptive field, and has no
parameters or MACs. A receptive field is a tensor's (the union over its channels, as for every op), so a
slice or split of a concat whose branches see different fields reports that union: exact when every
part keeps a channel of the widest branch (ShuffleNet's channel_shuffle interleaves them so), an upper
bound for parts that keep only narrower channels.

A `split` or `chunk` layer named `sp` has outputs `sp.0 … sp.(n−1)` in channel order (see
`convcalc.stack.spec.output_name`); later layers read one with `from: sp.1`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from convcalc.geometry.shape import Shape
from convcalc.ops.base import Array, Context, LayerProblem, Node, Op, Rules
from convcalc.stack.fields import POS_INT, REQUIRED, Field, IntList, Scalar
from convcalc.stack.spec import LayerSpec
from convcalc.stack.values import is_int

#: An integer or null (an open end of a slice).
INT_OR_NULL = Scalar(
    "an integer or null",
    "integers or null (an open end)",
    lambda v: v is None or is_int(v),
    {"type": ["integer", "null"]},
)


@dataclass(frozen=True, kw_only=True)
class SplitSpec(LayerSpec):
    """torch.split(x, sizes, dim=1) (a list: the parts' channels) or torch.split(x, size, dim=1)."""

    sizes: tuple[int, ...] | None = None
    size: int | None = None


@dataclass(frozen=True, kw_only=True)
class ChunkSpec(LayerSpec):
    """torch.chunk(x, chunks, dim=1)."""

    chunks: int


@dataclass(frozen=True, kw_only=True)
class SliceSpec(LayerSpec):
    """x[:, start:end] (Python slice semantics; None = an open end)."""

    channels: tuple[int | None, int | None]


@dataclass(frozen=True, kw_only=True)
class ChannelShuffleSpec(LayerSpec):
    """nn.ChannelShuffle(groups): (N, g·k, ...) → reshape (N, g, k, ...) → transpose → (N, k·g, ...)."""

    groups: int


def split_sizes(layer: SplitSpec | ChunkSpec, channels: int) -> tuple[int, ...]:
    """The parts' channel counts, as torch.split / torch.chunk give them for `channels` input channels;
    LayerProblem where torch refuses.

    >>> split_sizes(SplitSpec(index=0, name="s", op="split", inputs=(), size=2), 5)
    (2, 2, 1)
    >>> split_sizes(ChunkSpec(index=0, name="c", op="chunk", inputs=(), chunks=4), 5)  # torch gives fewer
    (2, 2, 1)
    """
    if isinstance(layer, ChunkSpec):
        # torch.chunk: each part has ceil(C / chunks) channels, the last fewer; so there may be fewer parts.
        step = -(-channels // layer.chunks)
        return _pieces(channels, step)
    if layer.sizes is not None:
        if sum(layer.sizes) != channels:
            raise LayerProblem(
                "sizes",
                f"sizes {list(layer.sizes)} add up to {sum(layer.sizes)}, but the input has {channels} channels "
                f"(PyTorch: split_with_sizes expects split_sizes to sum exactly to {channels})",
            )
        return layer.sizes
    assert layer.size is not None
    return _pieces(channels, layer.size)


def _pieces(channels: int, step: int) -> tuple[int, ...]:
    """Parts of `step` channels, the last one what is left."""
    return tuple(min(step, channels - start) for start in range(0, channels, step))


def _starts(sizes: Sequence[int]) -> list[int]:
    out, at = [], 0
    for size in sizes:
        out.append(at)
        at += size
    return out


def slice_range(layer: SliceSpec, channels: int) -> tuple[int, int]:
    """[start, stop) of x[:, start:end] on `channels` channels (negative ends count from the end, ends
    beyond the channels are clamped, as Python and torch do); LayerProblem when it is empty."""
    start, stop, _ = slice(*layer.channels).indices(channels)
    if stop <= start:
        ends = ", ".join("null" if e is None else str(e) for e in layer.channels)
        raise LayerProblem(
            "channels",
            f"channels [{ends}] selects no channel of the input's {channels} (x[:, {start}:{stop}] is empty; "
            "PyTorch would return an empty tensor, which no later layer accepts)",
        )
    return start, stop


def _need_channels(ctx: Context, what: str) -> int:
    channels = ctx.source.shape.channels
    if channels is None:
        raise LayerProblem("op", f"{ctx.layer.op} needs the input's channels to {what}")
    return channels


class _ChannelOp(Op[Any]):
    """Moves channels: spatial sizes and receptive fields pass through; values keep their scale."""

    passes_scale = True

    def workspace(self, layer: Any, inputs: Sequence[tuple[int, ...]], output: Shape, itemsize: int) -> int:
        return 0  # each output is one copy of input channels, allocated as the output itself


class _MultiOutput(_ChannelOp):
    multi_output = True

    def sizes(self, layer: Any, channels: int) -> tuple[int, ...]:
        return split_sizes(layer, channels)

    def analyze_outputs(self, layer: Any, ctx: Context) -> tuple[Node, ...]:
        channels = _need_channels(ctx, "split them")
        spatial = ctx.source.shape.spatial
        return tuple(Node(Shape(size, spatial), ctx.source.maps) for size in self.sizes(layer, channels))

    def output_count(self, layer: Any, channels: int) -> int:
        return len(self.sizes(layer, channels))

    def execute_output(self, layer: Any, xs: list[Array], index: int) -> Array:
        sizes = self.sizes(layer, int(xs[0].shape[1]))
        start = _starts(sizes)[index]
        return xs[0][:, start : start + sizes[index]].copy()


class Split(_MultiOutput):
    name: ClassVar[str] = "split"
    summary: ClassVar[str] = (
        "torch.split along the channels: `sizes: [16, 48]` (adding up to C) or `size: 16` (the last part smaller); "
        "outputs NAME.0, NAME.1, …"
    )
    spec = SplitSpec
    fields = (
        Field("sizes", IntList(POS_INT), "the parts' channel counts, in order (they add up to the input's)"),
        Field("size", POS_INT, "channels per part (the last part has what is left)"),
    )

    def check(self, values: dict[str, Any], rules: Rules) -> None:
        if rules.written("sizes") and rules.written("size"):
            rules.problem("give either 'sizes' (a list) or 'size' (channels per part), not both", "size")
        elif not rules.written("sizes") and not rules.written("size"):
            rules.layer_problem("split needs 'sizes' (e.g. [16, 48]) or 'size' (channels per part)", "sizes")

    def max_outputs(self, layer: SplitSpec) -> tuple[int | None, bool]:
        return (None, False) if layer.sizes is None else (len(layer.sizes), True)


class Chunk(_MultiOutput):
    name: ClassVar[str] = "chunk"
    summary: ClassVar[str] = (
        "torch.chunk along the channels: `chunks` parts of ceil(C/chunks) channels (fewer parts if torch gives "
        "fewer); outputs NAME.0, NAME.1, …"
    )
    spec = ChunkSpec
    fields = (Field("chunks", POS_INT, "how many parts (at most; torch.chunk may give fewer)", REQUIRED),)

    def max_outputs(self, layer: ChunkSpec) -> tuple[int | None, bool]:
        return layer.chunks, False


class Slice(_ChannelOp):
    name: ClassVar[str] = "slice"
    summary: ClassVar[str] = "channels `[start, end]`: x[:, start:end] (negative ends from the end, null open)"
    spec = SliceSpec
    fields = (
        Field(
            "channels",
            IntList(INT_OR_NULL, 2),
            "[start, end] of x[:, start:end] (Python slice semantics: negative from the end, null open)",
            REQUIRED,
        ),
    )

    def analyze(self, layer: SliceSpec, ctx: Context) -> Node:
        start, stop = slice_range(layer, _need_channels(ctx, "slice them"))
        return Node(Shape(stop - start, ctx.source.shape.spatial), ctx.source.maps)

    def execute(self, layer: SliceSpec, xs: list[Array], params: Mapping[str, Array]) -> Array:
        start, stop = slice_range(layer, int(xs[0].shape[1]))
        return xs[0][:, start:stop].copy()


class ChannelShuffle(_ChannelOp):
    name: ClassVar[str] = "channel_shuffle"
    summary: ClassVar[str] = "nn.ChannelShuffle(groups) (ShuffleNet): interleaves the groups' channels"
    spec = ChannelShuffleSpec
    fields = (Field("groups", POS_INT, "how many groups to interleave (they divide the channels)", REQUIRED),)

    def analyze(self, layer: ChannelShuffleSpec, ctx: Context) -> Node:
        ctx.need_spatial()  # torch: channel_shuffle expects input with > 2 dims
        channels = ctx.source.shape.channels
        if channels is not None and channels % layer.groups:
            raise LayerProblem(
                "groups",
                f"the input's {channels} channels are not divisible by groups {layer.groups} (PyTorch: Number of "
                f"channels must be divisible by groups. Got {channels} channels and {layer.groups} groups.)",
            )
        return ctx.source

    def execute(self, layer: ChannelShuffleSpec, xs: list[Array], params: Mapping[str, Array]) -> Array:
        from convcalc.kernels import functional as F

        return F.channel_shuffle(xs[0], layer.groups)


OPS: tuple[Op[Any], ...] = (Split(), Chunk(), Slice(), ChannelShuffle())
