"""One layer on its own: what a conv, transposed conv or pooling layer does to each spatial axis.

Conventions: sizes are pixels along each axis, in PyTorch's order (D, H, W); paddings are
(before, after) pairs; receptive-field growth and centre shift are in units of `jump_in`, the
input-pixel spacing of this layer's input, as the layer contributes them to a stack
(RF_out = RF_in + growth·jump_in, jump_out = jump_in·jump_factor). Every size comes from
`convcalc.geometry.arithmetic`; every number is an exact int or Fraction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from convcalc import diagnostics
from convcalc.diagnostics import Diagnostic
from convcalc.errors import Problem, ShapeError, SpecError
from convcalc.geometry import arithmetic, overlap
from convcalc.geometry.overlap import AxisOverlap
from convcalc.geometry.receptive import IDENTITY, Transposed, Window, compose
from convcalc.notation import fraction_text
from convcalc.stack.spec import AXIS_NAMES, PaddingMode

LayerKind = Literal["conv", "deconv", "maxpool", "avgpool"]

#: The PyTorch module family of each kind (the rank's "1d"/"2d"/"3d" is appended).
TORCH_NAMES: dict[str, str] = {
    "conv": "Conv",
    "deconv": "ConvTranspose",
    "maxpool": "MaxPool",
    "avgpool": "AvgPool",
}

#: Rank used when every option has a single value (Conv2d is the common case).
DEFAULT_RANK = 2


@dataclass(frozen=True)
class LayerSettings:
    """A validated layer: every per-axis tuple has the layer's rank; padding is pairs or a mode."""

    kind: LayerKind
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[tuple[int, int], ...] | PaddingMode
    dilation: tuple[int, ...]
    output_padding: tuple[int, ...]
    ceil_mode: bool = False
    input_size: tuple[int, ...] | None = None
    in_channels: int | None = None
    out_channels: int | None = None
    groups: int = 1
    bias: bool = True

    @property
    def rank(self) -> int:
        return len(self.kernel)

    @property
    def axes(self) -> tuple[str, ...]:
        return AXIS_NAMES[self.rank]

    @property
    def torch_name(self) -> str:
        return f"{TORCH_NAMES[self.kind]}{self.rank}d"

    @property
    def is_pool(self) -> bool:
        return self.kind in ("maxpool", "avgpool")


@dataclass(frozen=True)
class SamePadding:
    """The padding that keeps the size "same": output ceil(i/s) for conv and pooling (TF/Keras SAME,
    the odd extra pixel after), output s·i for a transposed conv (symmetric padding plus
    output_padding). `before`/`after` are None when they depend on an unknown input size;
    `native` says PyTorch's padding='same' does exactly this (conv at stride 1)."""

    before: int | None
    after: int | None
    output_padding: int = 0
    native: bool = False


@dataclass(frozen=True)
class EquivalentConv:
    """A transposed conv as a direct conv (Dumoulin & Visin relationship 14, with dilation): insert
    s−1 zeros between inputs, pad d(k−1)−p before and d(k−1)−p+output_padding after (negative:
    crop), then a stride-1 conv with the flipped kernel. Sizes are None without an input size."""

    zeros_between: int
    pad_before: int
    pad_after: int
    stretched_size: int | None = None
    padded_size: int | None = None
    output_size: int | None = None


@dataclass(frozen=True)
class AxisResult:
    """Everything about one spatial axis of the layer. Sizes are None without an input size.

    rf_growth_min/max: (input positions spanned by the taps reaching one output) − 1, the smallest
    and largest over output phases (equal except for transposed convs); None when no phase is reached.
    centre_shift: where the centre of output 0 sits, in units of jump_in from input 0's centre.
    floor_output_size / last_window_start / ceil_dropped: pooling with ceil_mode (the floor-mode
    size, where the last window starts, and whether the last-window rule dropped one).
    unread: input pixels no window reads (conv and pooling, with an input size).
    """

    axis: str
    kernel: int
    stride: int
    dilation: int
    padding: tuple[int, int] | None
    output_padding: int
    effective_kernel: int
    input_size: int | None
    output_size: int | None
    rf_growth_min: int | None
    rf_growth_max: int | None
    jump_factor: Fraction
    centre_shift: Fraction | None
    same_padding: SamePadding | None
    overlap: AxisOverlap
    equivalent: EquivalentConv | None = None
    floor_output_size: int | None = None
    last_window_start: int | None = None
    ceil_dropped: bool = False
    unread: int | None = None


@dataclass(frozen=True)
class LayerResult:
    """One layer's numbers: per-axis results, the N-D overlap ratio, params, MACs and diagnostics.

    overlap_ratio: the product of the axes' max/min tap ratios (None with holes).
    params: weights plus bias; macs: multiply-accumulates at batch 1, conv ∏out·C_out·(C_in/g)·∏k,
    transposed conv ∏in·C_in·(C_out/g)·∏k, plus one per output element for the bias (convcalc rf's
    convention). None when channels (or, for MACs, the input size) are not given.
    """

    settings: LayerSettings
    axes: tuple[AxisResult, ...]
    overlap_ratio: Fraction | None
    params: int | None
    macs: int | None
    diagnostics: tuple[Diagnostic, ...]

    @property
    def output_size(self) -> tuple[int, ...] | None:
        sizes = [a.output_size for a in self.axes]
        return None if any(s is None for s in sizes) else tuple(s for s in sizes if s is not None)

    @property
    def holes(self) -> bool:
        return any(a.overlap.holes for a in self.axes)


# -- validation ------------------------------------------------------------------------------------
def _problem(parameter: str, message: str) -> SpecError:
    return SpecError(Problem(message, parameter=parameter))


def _rank(lengths: dict[str, int], rank: int | None) -> int:
    if rank is not None and rank not in (1, 2, 3):
        raise _problem("rank", f"{rank} is not a spatial rank: use 1, 2 or 3")
    longest = max(lengths.values(), default=1)
    wanted = rank if rank is not None else (longest if longest > 1 else DEFAULT_RANK)
    if wanted not in (1, 2, 3):
        name = max(lengths, key=lambda n: lengths[n])
        raise _problem(name, f"{longest} values: give 1 to 3 (one per spatial axis: D, H, W)")
    for name, n in lengths.items():
        if n not in (1, wanted):
            others = ", ".join(f"{o} has {m}" for o, m in lengths.items() if m == wanted and o != name)
            why = f" ({others})" if others else f" (rank {wanted})"
            raise _problem(name, f"{n} values, but the layer has {wanted} spatial axes{why}: give 1 value or {wanted}")
    return wanted


def _broadcast(name: str, values: Sequence[int], rank: int, minimum: int, meaning: str) -> tuple[int, ...]:
    for v in values:
        if v < minimum:
            raise _problem(name, f"{v} is not allowed: {meaning}")
    return tuple(values) * rank if len(values) == 1 else tuple(values)


def layer_settings(
    kind: LayerKind,
    kernel: Sequence[int],
    stride: Sequence[int] | None = None,
    padding: Sequence[int] | PaddingMode | None = None,
    dilation: Sequence[int] | None = None,
    output_padding: Sequence[int] | None = None,
    ceil_mode: bool = False,
    input_size: Sequence[int] | None = None,
    in_channels: int | None = None,
    out_channels: int | None = None,
    groups: int = 1,
    rank: int | None = None,
) -> LayerSettings:
    """Validate and broadcast one layer's options; PyTorch's defaults fill the gaps.

    A single value applies to every axis; the rank is the number of values (2 when all are single,
    or `rank`). Pooling's stride defaults to its kernel, as in PyTorch. Raises SpecError naming the
    field for values PyTorch would refuse whatever the input size.

    >>> layer_settings("deconv", [3], [2], [1]).padding
    ((1, 1), (1, 1))
    """
    given: dict[str, Sequence[int]] = {"kernel": kernel}
    for name, seq in (
        ("stride", stride),
        ("padding", None if isinstance(padding, str) else padding),
        ("dilation", dilation),
        ("output_padding", output_padding),
        ("input_size", input_size),
    ):
        if seq is not None:
            given[name] = seq
    for name, seq in given.items():
        if len(seq) == 0:
            raise _problem(name, "no value given")
    n = _rank({name: len(seq) for name, seq in given.items()}, rank)
    is_pool = kind in ("maxpool", "avgpool")
    k = _broadcast("kernel", kernel, n, 1, "the kernel size must be at least 1")
    s = _broadcast(
        "stride",
        stride if stride is not None else (k if is_pool else [1]),
        n,
        1,
        "the stride must be at least 1",
    )
    d = _broadcast("dilation", dilation if dilation is not None else [1], n, 1, "the dilation must be at least 1")
    op = _broadcast(
        "output_padding",
        output_padding if output_padding is not None else [0],
        n,
        0,
        "output_padding must be 0 or more",
    )
    size = (
        None if input_size is None else _broadcast("input_size", input_size, n, 1, "an input size must be at least 1")
    )
    pads: tuple[tuple[int, int], ...] | PaddingMode
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise _problem("padding", f"'{padding}' is not a padding: give an integer per axis, 'same' or 'valid'")
        if kind == "deconv":
            raise _problem(
                "padding",
                f"'{padding}' is not accepted by ConvTranspose (PyTorch takes integers only); "
                "see 'same padding' in the report for the padding and output_padding that give s·i",
            )
        pads = padding
    else:
        p = _broadcast("padding", padding if padding is not None else [0], n, 0, "padding must be 0 or more")
        pads = tuple((v, v) for v in p)
    if kind != "deconv" and any(op):
        raise _problem("output_padding", "only a transposed conv (deconv) has output_padding")
    if kind == "deconv":
        for axis, (o, st, dl) in enumerate(zip(op, s, d, strict=True)):
            if not (o < st or o < dl):
                label = AXIS_NAMES[n][axis]
                raise _problem(
                    "output_padding",
                    f"{label}: output_padding {o} must be smaller than either the stride {st} "
                    f"or the dilation {dl} "
                    "(PyTorch refuses it)",
                )
    if kind == "avgpool" and any(v != 1 for v in d):
        raise _problem("dilation", "average pooling has no dilation in PyTorch (AvgPool takes none); use 1")
    if is_pool and not isinstance(pads, str):
        for axis, ((before, _), kk) in enumerate(zip(pads, k, strict=True)):
            if before > kk // 2:
                raise _problem(
                    "padding",
                    f"{AXIS_NAMES[n][axis]}: padding {before} must be at most half the kernel "
                    f"({kk} // 2 = {kk // 2}); "
                    "PyTorch refuses it",
                )
    if is_pool and (in_channels is not None or out_channels is not None or groups != 1):
        raise _problem("in_channels", "pooling keeps the channels: channel counts and groups are for conv and deconv")
    if ceil_mode and not is_pool:
        raise _problem("ceil_mode", "ceil_mode is a pooling option")
    if groups < 1:
        raise _problem("groups", f"{groups} is not allowed: groups must be at least 1")
    for name, ch in (("in_channels", in_channels), ("out_channels", out_channels)):
        if ch is not None and ch < 1:
            raise _problem(name, f"{ch} is not allowed: a channel count must be at least 1")
    if out_channels is not None and in_channels is None:
        raise _problem("out_channels", "give the input channels too, to count parameters")
    if in_channels is not None:
        cout = out_channels if out_channels is not None else in_channels
        if in_channels % groups:
            raise _problem("groups", f"input channels {in_channels} are not divisible by groups {groups}")
        if cout % groups:
            raise _problem("groups", f"output channels {cout} are not divisible by groups {groups}")
    elif groups != 1:
        raise _problem("groups", "give the channels (input, and output if different) with groups")
    return LayerSettings(
        kind=kind,
        kernel=k,
        stride=s,
        padding=pads,
        dilation=d,
        output_padding=op,
        ceil_mode=ceil_mode,
        input_size=size,
        in_channels=in_channels,
        out_channels=out_channels if out_channels is not None or in_channels is None else in_channels,
        groups=groups,
    )


# -- calculation -----------------------------------------------------------------------------------
def _shape_error(parameter: str, axis: str, exc: ValueError) -> ShapeError:
    return ShapeError(Problem(f"{axis}: {exc}", parameter=parameter))


def deconv_same_padding(kernel: int, stride: int, dilation: int = 1) -> SamePadding | None:
    """Symmetric padding and output_padding giving a transposed-conv output of exactly s·i, or None.

    (i−1)s − 2p + d(k−1) + op + 1 = s·i  ⇔  2p − op = d(k−1) + 1 − s; op must stay below s or d.

    >>> deconv_same_padding(3, 2), deconv_same_padding(4, 2), deconv_same_padding(2, 1)
    (SamePadding(before=1, after=1, output_padding=1, native=False), SamePadding(before=1, after=1, \
output_padding=0, native=False), None)
    """
    found = arithmetic.deconv_same_padding(kernel, stride, dilation)
    if found is None:
        return None
    p, op = found
    return SamePadding(p, p, op)


def _same_padding(settings: LayerSettings, axis: int) -> SamePadding | None:
    k, s, d = settings.kernel[axis], settings.stride[axis], settings.dilation[axis]
    if settings.kind == "deconv":
        return deconv_same_padding(k, s, d)
    size = settings.input_size[axis] if settings.input_size is not None else None
    native = settings.kind == "conv" and s == 1
    if size is None and s > 1:
        return SamePadding(arithmetic.same_padding_before(None, k, s, d), None, native=native)
    # At stride 1 the SAME padding is d(k−1) split in two whatever the size, so any size will do.
    before, after = arithmetic.same_padding(size if size is not None else 1, k, s, d)
    return SamePadding(before, after, native=native)


def _resolve_padding(settings: LayerSettings, axis: int) -> tuple[int, int] | None:
    pads = settings.padding
    if pads == "valid":
        return (0, 0)
    if pads == "same":
        same = _same_padding(settings, axis)
        assert same is not None
        if same.before is None or same.after is None:
            return None
        return (same.before, same.after)
    assert not isinstance(pads, str), "the calculators take 'same', 'valid' or explicit padding"
    return pads[axis]


def _floor_mode_size(size: int, k: int, s: int, pad: tuple[int, int], d: int) -> int | None:
    """What the pool gives without ceil_mode; None where only ceil_mode yields an output at all."""
    try:
        return arithmetic.pool_output_size(size, k, s, pad[0], pad[1], d, False, False)
    except ValueError:
        return None


def _axis(settings: LayerSettings, axis: int) -> AxisResult:
    label = settings.axes[axis]
    k, s, d = settings.kernel[axis], settings.stride[axis], settings.dilation[axis]
    op = settings.output_padding[axis]
    k_eff = arithmetic.effective_kernel(k, d)
    size = settings.input_size[axis] if settings.input_size is not None else None
    pad = _resolve_padding(settings, axis)
    same = _same_padding(settings, axis)
    if settings.kind == "deconv":
        assert pad is not None
        p = pad[0]
        out = None
        if size is not None:
            try:
                out = arithmetic.deconv_output_size(size, k, s, p, op, d)
            except ValueError as exc:
                raise _shape_error("padding", label, exc) from None
        pad_before = d * (k - 1) - p
        stretched = None if size is None else size + (size - 1) * (s - 1)
        equivalent = EquivalentConv(
            zeros_between=s - 1,
            pad_before=pad_before,
            pad_after=pad_before + op,
            stretched_size=stretched,
            padded_size=None if stretched is None else stretched + 2 * pad_before + op,
            output_size=None
            if stretched is None
            else arithmetic.conv_output_size(stretched, k, 1, pad_before, pad_before + op, d),
        )
        taps = overlap.phase_taps(k, s, d, p)
        counts = None if size is None else overlap.transposed_counts(size, k, s, p, op, d)
        field_map = compose(IDENTITY, Transposed(k, s, d, p))
        assert field_map is not None
        return AxisResult(
            axis=label,
            kernel=k,
            stride=s,
            dilation=d,
            padding=pad,
            output_padding=op,
            effective_kernel=k_eff,
            input_size=size,
            output_size=out,
            rf_growth_min=field_map.rf_min - 1 if field_map.widths() else None,
            rf_growth_max=field_map.rf_max - 1 if field_map.widths() else None,
            jump_factor=Fraction(1, s),
            centre_shift=field_map.centre,
            same_padding=same,
            overlap=AxisOverlap(taps, overlap.ratio(taps), counts),
            equivalent=equivalent,
        )
    before = pad[0] if pad is not None else 0
    field_map = compose(IDENTITY, Window(s, before, k, d), offset_known=pad is not None)
    assert field_map is not None
    taps = overlap.phase_taps(k, s, d, before)
    out = floor_out = last_start = None
    dropped = False
    counts = None
    if size is not None:
        assert pad is not None
        try:
            if settings.kind == "conv":
                out = arithmetic.conv_output_size(size, k, s, pad[0], pad[1], d)
            else:
                # Explicit pool padding is symmetric and already checked; 'same' is applied like F.pad.
                out = arithmetic.pool_output_size(size, k, s, pad[0], pad[1], d, settings.ceil_mode, False)
                if settings.ceil_mode:
                    floor_out = _floor_mode_size(size, k, s, pad, d)
                    dropped = arithmetic.ceil_mode_dropped_window(size, k, s, pad[0], pad[1], d)
                    last_start = (out - 1) * s - pad[0]
        except ValueError as exc:
            raise _shape_error("kernel", label, exc) from None
        counts = overlap.window_counts(size, out, k, s, before, d)
    return AxisResult(
        axis=label,
        kernel=k,
        stride=s,
        dilation=d,
        padding=pad,
        output_padding=0,
        effective_kernel=k_eff,
        input_size=size,
        output_size=out,
        rf_growth_min=k_eff - 1,
        rf_growth_max=k_eff - 1,
        jump_factor=Fraction(s),
        centre_shift=field_map.centre,
        same_padding=same,
        overlap=AxisOverlap(taps, overlap.ratio(taps), counts),
        floor_output_size=floor_out,
        last_window_start=last_start,
        ceil_dropped=dropped,
        unread=None if counts is None else counts.count(0),
    )


def _params_macs(settings: LayerSettings, axes: Sequence[AxisResult]) -> tuple[int | None, int | None]:
    cin, cout, g = settings.in_channels, settings.out_channels, settings.groups
    if settings.is_pool or cin is None or cout is None:
        return None, None
    taps = math.prod(settings.kernel)
    transposed = settings.kind == "deconv"
    weights = (cin * (cout // g) if transposed else cout * (cin // g)) * taps
    params = weights + (cout if settings.bias else 0)
    outs = [a.output_size for a in axes]
    if settings.input_size is None or any(o is None for o in outs):
        return params, None
    n_out = math.prod(o for o in outs if o is not None)
    n_in = math.prod(settings.input_size)
    macs = (n_in * cin * (cout // g) if transposed else n_out * cout * (cin // g)) * taps
    return params, macs + (cout * n_out if settings.bias else 0)


def _fmt(x: Fraction) -> str:
    return fraction_text(x)


def _by_axes(items: Sequence[tuple[str, str]]) -> str:
    """'H and W: text' for axes sharing a text, joined with '; '."""
    groups: dict[str, list[str]] = {}
    for axis, text in items:
        groups.setdefault(text, []).append(axis)
    return "; ".join(f"{' and '.join(axes)}: {text}" for text, axes in groups.items())


def _diagnostics(settings: LayerSettings, axes: Sequence[AxisResult]) -> list[Diagnostic]:
    layer = settings.kind
    found: list[Diagnostic] = []
    if settings.kind == "deconv":
        found_overlap = diagnostics.transposed_overlap(
            layer,
            [a.axis for a in axes],
            [a.overlap.taps for a in axes],
            settings.kernel,
            settings.stride,
            settings.dilation,
        )
        if found_overlap is not None:
            found.append(found_overlap)
        return found
    unread = [a for a in axes if a.unread]
    if unread:

        def unread_text(a: AxisResult) -> str:
            if a.overlap.holes:
                cause = (
                    f"dilation {a.dilation} shares a factor with stride {a.stride}"
                    if math.gcd(a.dilation, a.stride) > 1
                    else f"kernel {a.kernel} < stride {a.stride}"
                )
                return f"{a.unread} of {a.input_size} unread, every window skips some phases ({cause})"
            return f"the last {a.unread} of {a.input_size} unread (the stride steps past them)"

        found.append(
            Diagnostic(
                "unused-input",
                layer,
                f"no window reads some input pixels: {_by_axes([(a.axis, unread_text(a)) for a in unread])}",
                {"axes": [a.axis for a in unread], "unread": [a.unread for a in unread]},
            )
        )
    for a in axes:
        if a.ceil_dropped:
            start = (a.output_size or 0) * a.stride - (a.padding or (0, 0))[0]
            found.append(
                Diagnostic(
                    "ceil-mode-dropped",
                    layer,
                    f"{a.axis}: ceil_mode dropped the last window: it would start at {start}, "
                    "in the right padding "
                    f"(input {a.input_size}); output {a.output_size}",
                    {"axis": a.axis, "output": a.output_size},
                )
            )
    if settings.padding == "same":
        found += diagnostics.same_padding_notes(
            layer,
            settings.kind,
            [a.axis for a in axes],
            settings.kernel,
            settings.stride,
            settings.dilation,
            [a.padding for a in axes],
        )
    return found


def calculate(settings: LayerSettings) -> LayerResult:
    """Every per-axis number of one layer; raises ShapeError when PyTorch would refuse the input size.

    >>> r = calculate(layer_settings("deconv", [3], [2], [1], input_size=[4]))
    >>> r.output_size, r.overlap_ratio, [d.code for d in r.diagnostics]
    ((7, 7), Fraction(4, 1), ['checkerboard'])
    """
    axes = tuple(_axis(settings, a) for a in range(settings.rank))
    params, macs = _params_macs(settings, axes)
    return LayerResult(
        settings=settings,
        axes=axes,
        overlap_ratio=overlap.combined_ratio([a.overlap.ratio for a in axes]),
        params=params,
        macs=macs,
        diagnostics=tuple(_diagnostics(settings, axes)),
    )
