"""Resampling: `upsample` (F.interpolate), `pixel_shuffle` / `pixel_unshuffle`, and `pad` (padding or
cropping an explicit amount). None has parameters or MACs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, ClassVar

from convcalc.geometry import arithmetic
from convcalc.geometry.receptive import Resample, ResampleKind, Step, Window, fill_of
from convcalc.geometry.shape import Shape
from convcalc.ops.base import Array, Context, LayerProblem, Node, Op, Rules
from convcalc.ops.window import pads_only_before
from convcalc.stack.fields import (
    BOOL,
    NUMBER,
    POS_INT,
    POS_NUMBER,
    REQUIRED,
    Choice,
    Field,
    LayerName,
    PaddingKind,
    PerAxis,
)
from convcalc.stack.spec import LayerSpec

PAD_MODES = ("constant", "reflect", "replicate", "circular")
#: Upsample mode spellings that name a rank (PyTorch names the rank in the mode; convcalc says linear).
_MODE_RANK = {"bilinear": 2, "trilinear": 3}
_LINEAR_MODE = {1: "linear", 2: "bilinear", 3: "trilinear"}


@dataclass(frozen=True, kw_only=True)
class UpsampleSpec(LayerSpec):
    scale: tuple[float, ...] = ()
    size: tuple[int, ...] = ()
    like: str | None = None
    mode: str = "nearest"
    align_corners: bool | None = None
    antialias: bool = False


@dataclass(frozen=True, kw_only=True)
class PixelShuffleSpec(LayerSpec):
    factor: int


@dataclass(frozen=True, kw_only=True)
class PadSpec(LayerSpec):
    padding: tuple[tuple[int, int], ...]
    mode: str = "constant"
    value: float = 0.0


class Upsample(Op[UpsampleSpec]):
    upsamples = True
    name: ClassVar[str] = "upsample"
    aliases: ClassVar[tuple[str, ...]] = ("interpolate",)
    summary: ClassVar[str] = "resize (F.interpolate / nn.Upsample): nearest, nearest-exact, (bi/tri)linear, bicubic"
    spec = UpsampleSpec
    fields = (
        Field("scale", PerAxis(POS_NUMBER), "scale factor per axis (output floor(size·scale), as PyTorch)", ()),
        Field("size", PerAxis(POS_INT), "output size per axis", ()),
        Field(
            "like",
            LayerName(),
            "a layer above: the output takes its spatial size, whatever the input (size=y.shape[2:])",
        ),
        Field(
            "mode",
            Choice(
                ("nearest", "nearest-exact", "linear", "bicubic"),
                {"bilinear": "linear", "trilinear": "linear", "nearest_exact": "nearest-exact"},
            ),
            "nearest, nearest-exact (pixel centres), linear (bi/trilinear by rank), or bicubic (2 spatial axes)",
            "nearest",
        ),
        Field(
            "align_corners",
            BOOL,
            "linear and bicubic only: the corner pixels' centres align (PyTorch's align_corners)",
        ),
        Field(
            "antialias",
            BOOL,
            "bilinear and bicubic only: when downsampling, the filter widens by the scale (PyTorch's antialias)",
            False,
        ),
    )

    def check(self, values: dict[str, Any], rules: Rules) -> None:
        given = [name for name in ("scale", "size", "like") if rules.written(name)]
        if len(given) > 1:
            later = max(given, key=rules.order)
            both = f"both '{given[0]}' and '{given[1]}'" if len(given) == 2 else "all three"
            rules.problem(f"give one of 'scale', 'size' or 'like', not {both}", later)
        elif not given:
            rules.layer_problem(
                "upsample needs 'scale' (a factor), 'size' (the output size) or 'like' (a layer whose size to take)",
                "scale",
            )
        raw_mode = rules.raw("mode")
        if isinstance(raw_mode, str) and raw_mode in _MODE_RANK:
            needed = _MODE_RANK[raw_mode]
            if rules.rank is not None and rules.rank != needed:
                rules.problem(
                    f"mode '{raw_mode}' needs {needed} spatial axes, but the input{rules.rank_source} has "
                    f"{rules.rank}; write 'linear' (convcalc applies it to every axis)",
                    "mode",
                )
        mode_ok = not rules.written("mode") or "mode" in values  # an invalid mode was reported already
        mode = values.get("mode", "nearest")
        if rules.written("align_corners") and mode_ok and mode not in ("linear", "bicubic"):
            rules.problem(
                "align_corners can only be set with mode 'linear' or 'bicubic' (PyTorch: align_corners option "
                f"can only be set with the interpolating modes), but mode is '{mode}'",
                "align_corners",
            )
        if mode_ok and mode == "bicubic" and rules.rank is not None and rules.rank != 2:
            rules.problem(
                f"mode 'bicubic' needs 2 spatial axes in PyTorch, but the input{rules.rank_source} has {rules.rank}",
                "mode",
            )
        if values.get("antialias") and mode_ok:
            if mode not in ("linear", "bicubic") or (rules.rank is not None and rules.rank != 2):
                rules.problem(
                    "antialias is for bilinear and bicubic resizing of 2 spatial axes (PyTorch: anti-alias option "
                    f"is restricted to bilinear and bicubic modes and requires a 4-D tensor), but mode is '{mode}'"
                    + (f" with {rules.rank} spatial axes" if rules.rank is not None and rules.rank != 2 else ""),
                    "antialias",
                )
            elif values.get("align_corners"):
                rules.problem("antialias with align_corners: true is not modelled by convcalc", "antialias")

    def analyze(self, layer: UpsampleSpec, ctx: Context) -> Node:
        ctx.need_spatial()
        sizes = ctx.source.shape.spatial
        wanted: tuple[int | None, ...] = layer.size
        if layer.like is not None:
            wanted = ctx.refs[layer.like].shape.spatial
            if len(wanted) != len(sizes):
                has = f"{len(wanted)} spatial axes" if wanted else "no spatial axes (it was flattened)"
                raise LayerProblem(
                    "like",
                    f"like '{layer.like}' has {has}, but the input has {len(sizes)}: its size cannot be the "
                    "output size (PyTorch: size shape must match input shape)",
                )
        out_sizes: list[int | None] = []
        steps: list[Step | None] = []
        unknown: list[int] = []
        interpolating = layer.mode in ("linear", "bicubic")
        align = bool(layer.align_corners)
        for axis, size in enumerate(sizes):
            scale = layer.scale[axis] if layer.scale else None
            out: int | None
            if scale is not None:
                out = None
                if size is not None:
                    try:
                        out = arithmetic.interpolate_output_size(size, scale)
                    except ValueError as exc:
                        raise LayerProblem("scale", f"{ctx.label(axis)}: {exc}") from None
                    exact = Fraction(repr(scale)) * size
                    if exact.denominator == 1 and out < exact:
                        ctx.diag(
                            "scale-rounding",
                            f"{ctx.label(axis)}: {size} × {scale} is {int(exact)} exactly, but in floating point "
                            f"PyTorch computes {size * scale!r} and floors it to {out}",
                            axis=ctx.label(axis),
                        )
            else:
                out = wanted[axis]
            out_sizes.append(out)
            ratio = arithmetic.interpolation_ratio(size, out, scale, align and interpolating)
            if ratio is None:
                unknown.append(axis)
                steps.append(None)
                continue
            steps.append(Resample(ratio, _resample_kind(layer)))
        maps = list(ctx.mapped(steps, out_sizes))
        for axis in unknown:
            maps[axis] = None
        return Node(Shape(ctx.source.shape.channels, tuple(out_sizes)), tuple(maps))

    def execute(self, layer: UpsampleSpec, xs: list[Array], params: Mapping[str, Array]) -> Array:
        from convcalc.kernels import functional as F

        x = xs[0]
        mode = _LINEAR_MODE[x.ndim - 2] if layer.mode == "linear" else layer.mode
        align = bool(layer.align_corners) if mode not in ("nearest", "nearest-exact") else None
        aa = layer.antialias
        if layer.scale:
            return F.interpolate(x, scale_factor=list(layer.scale), mode=mode, align_corners=align, antialias=aa)
        size = list(xs[1].shape[2:]) if layer.like is not None else list(layer.size)  # xs[1]: the `like` layer
        return F.interpolate(x, size=size, mode=mode, align_corners=align, antialias=aa)

    def workspace(self, layer: UpsampleSpec, inputs: Sequence[tuple[int, ...]], output: Shape, itemsize: int) -> int:
        from convcalc.kernels import functional as F

        size = [int(d or 0) for d in output.spatial]
        kind = {"nearest-exact": "nearest", "bicubic": "cubic"}.get(layer.mode, layer.mode)
        return F.interpolate_workspace(inputs[0], size, "aa" if layer.antialias else kind, itemsize=itemsize)


def _resample_kind(layer: UpsampleSpec) -> ResampleKind:
    """The receptive-field step of the layer's mode (see convcalc.geometry.receptive.Resample)."""
    align = bool(layer.align_corners)
    if layer.mode == "nearest-exact":
        return "nearest_exact"
    if layer.mode == "linear":
        return "aa_linear" if layer.antialias else "linear_ac" if align else "linear"
    if layer.mode == "bicubic":
        return "aa_cubic" if layer.antialias else "cubic_ac" if align else "cubic"
    return "nearest"


class _PixelOp(Op[PixelShuffleSpec]):
    spec = PixelShuffleSpec
    fields = (Field("factor", POS_INT, "the upscale (or downscale) factor r, on both spatial axes", REQUIRED),)

    def check(self, values: dict[str, Any], rules: Rules) -> None:
        if rules.rank is not None and rules.rank != 2:
            rules.problem(
                f"{self.name} works on exactly 2 spatial axes in PyTorch, but the input{rules.rank_source} has "
                f"{rules.rank}",
                "op",
            )


class PixelShuffle(_PixelOp):
    upsamples = True
    name: ClassVar[str] = "pixel_shuffle"
    summary: ClassVar[str] = "sub-pixel upsampling (nn.PixelShuffle): C·r² × H × W → C × H·r × W·r"

    def analyze(self, layer: PixelShuffleSpec, ctx: Context) -> Node:
        ctx.need_spatial()
        r = layer.factor
        channels = ctx.source.shape.channels
        if channels is not None and channels % (r * r):
            raise LayerProblem(
                "factor", f"input channels {channels} must be divisible by factor² = {r * r} (PyTorch refuses it)"
            )
        shape = Shape(
            None if channels is None else channels // (r * r),
            tuple(None if s is None else s * r for s in ctx.source.shape.spatial),
        )
        return Node(shape, ctx.mapped([Resample(Fraction(1, r), "nearest")] * ctx.rank, list(shape.spatial)))

    def execute(self, layer: PixelShuffleSpec, xs: list[Array], params: Mapping[str, Array]) -> Array:
        from convcalc.kernels import functional as F

        return F.pixel_shuffle(xs[0], layer.factor)


class PixelUnshuffle(_PixelOp):
    name: ClassVar[str] = "pixel_unshuffle"
    summary: ClassVar[str] = "space-to-depth (nn.PixelUnshuffle): C × H·r × W·r → C·r² × H × W"

    def analyze(self, layer: PixelShuffleSpec, ctx: Context) -> Node:
        ctx.need_spatial()
        r = layer.factor
        sizes = ctx.source.shape.spatial
        for axis, size in enumerate(sizes):
            if size is not None and size % r:
                raise LayerProblem(
                    "factor", f"{ctx.label(axis)}: size {size} must be divisible by factor {r} (PyTorch refuses it)"
                )
        channels = ctx.source.shape.channels
        shape = Shape(
            None if channels is None else channels * r * r, tuple(None if s is None else s // r for s in sizes)
        )
        return Node(shape, ctx.mapped([Window(r, 0, r)] * ctx.rank, list(shape.spatial)))

    def execute(self, layer: PixelShuffleSpec, xs: list[Array], params: Mapping[str, Array]) -> Array:
        from convcalc.kernels import functional as F

        return F.pixel_unshuffle(xs[0], layer.factor)


class Pad(Op[PadSpec]):
    name: ClassVar[str] = "pad"
    summary: ClassVar[str] = "explicit padding (F.pad); negative amounts crop"
    spec = PadSpec
    window = True
    fields = (
        Field(
            "padding",
            PaddingKind(pairs=True, negative=True, mode_refusal="pad takes explicit sizes"),
            "per axis, or [before, after] pairs; negative values crop",
            REQUIRED,
        ),
        Field("mode", Choice(PAD_MODES, {"zeros": "constant"}), "what the padding holds", "constant"),
        Field("value", NUMBER, "the constant padding value", 0.0),
    )

    def check(self, values: dict[str, Any], rules: Rules) -> None:
        mode = values.get("mode", "constant")
        if mode != "constant" and values.get("value", 0.0) != 0.0 and rules.written("value"):
            rules.problem(
                f"value only applies to mode 'constant' (PyTorch: padding mode \"{mode}\" doesn't take in value "
                f"argument), {rules.got('value')}",
                "value",
            )

    def analyze(self, layer: PadSpec, ctx: Context) -> Node:
        ctx.need_spatial()
        out_sizes: list[int | None] = []
        for axis, size in enumerate(ctx.source.shape.spatial):
            before, after = layer.padding[axis]
            if size is None:
                out_sizes.append(None)
                continue
            if layer.mode == "reflect" and max(before, after) >= size:
                raise LayerProblem(
                    "padding",
                    f"{ctx.label(axis)}: reflect padding {max(before, after)} must be smaller than the input "
                    f"size {size} (PyTorch refuses it)",
                )
            if layer.mode == "circular" and max(before, after) > size:
                raise LayerProblem(
                    "padding",
                    f"{ctx.label(axis)}: circular padding {max(before, after)} must be at most the input size "
                    f"{size} (it would wrap around more than once)",
                )
            out = size + before + after
            if out < 1:
                raise LayerProblem("padding", f"{ctx.label(axis)}: cropping {-before - after} leaves {out} of {size}")
            out_sizes.append(out)
        ctx.padding = tuple(layer.padding)
        steps: list[Step | None] = [Window(1, b, 1, fill=fill_of(layer.mode)) for b, _ in layer.padding]
        causal = [pads_only_before(b, a, 1) for b, a in layer.padding]
        return Node(Shape(ctx.source.shape.channels, tuple(out_sizes)), ctx.mapped(steps, out_sizes, None, causal))

    def execute(self, layer: PadSpec, xs: list[Array], params: Mapping[str, Array]) -> Array:
        from convcalc.kernels import functional as F

        flat = [v for before, after in reversed(layer.padding) for v in (before, after)]
        if layer.mode == "constant":
            return F.pad(xs[0], flat, mode="constant", value=layer.value)
        return F.pad(xs[0], flat, mode=layer.mode)

    def workspace(self, layer: PadSpec, inputs: Sequence[tuple[int, ...]], output: Shape, itemsize: int) -> int:
        from convcalc.kernels import functional as F

        flat = [v for before, after in reversed(layer.padding) for v in (before, after)]
        return F.pad_workspace(inputs[0], flat, layer.mode, itemsize=itemsize)


OPS: tuple[Op[Any], ...] = (Upsample(), PixelShuffle(), PixelUnshuffle(), Pad())
