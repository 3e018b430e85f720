"""One layer on its own, as `convcalc conv|deconv|pool` show it: a one-layer stack analysed by the stack
engine (`convcalc.analysis.engine`), plus what only the calculators add.

The layer is validated by the same field declarations as a stack file's layer (convcalc.ops,
convcalc.format.validate) and analysed by the same engine as `convcalc rf`, so output sizes, the
effective kernel and padding, the receptive field, jump, centre, params, MACs and diagnostics are the
stack analysis's own. This module adds only the calculators' extras: the `same` padding suggestion, the
equivalent direct convolution of a transposed conv, the overlap map (taps per phase, periodic counts),
and ceil_mode's floor-mode size and last window; `explain` and `solver` build on it.

Conventions: sizes are pixels along each axis, in PyTorch's order (D, H, W); paddings are (before,
after) pairs; the layer is the first of its stack, so its receptive field, jump and centre are in
input pixels, and the growth it contributes inside a stack is rf − 1 in units of jump_in. Every number
is an exact int or Fraction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from convcalc.analysis.report import AxisField, LayerReport
from convcalc.diagnostics import Diagnostic
from convcalc.errors import Problem, ShapeError, SpecError
from convcalc.format.validate import RawLayer, validate_layers
from convcalc.geometry import arithmetic, overlap
from convcalc.geometry.overlap import AxisOverlap
from convcalc.stack.spec import AXIS_NAMES, INPUT_NAME, InputSpec, LayerSpec, Location, PaddingMode, StackSpec
from convcalc.stack.values import Value, plain, scalar

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

#: The parameter of `layer_settings` that carries each field of the op (the rest keep their name).
FIELD_PARAMETERS = {"out": "out_channels"}


@dataclass(frozen=True)
class LayerSettings:
    """A validated layer: `spec` is the op's typed layer (as a stack file's layer would be), `input` the
    one-layer stack's input; the other attributes are the spec's values, per axis, for the renderers."""

    kind: LayerKind
    spec: LayerSpec
    input: InputSpec
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[tuple[int, int], ...] | PaddingMode
    dilation: tuple[int, ...]
    output_padding: tuple[int, ...]
    ceil_mode: bool = False
    groups: int = 1
    bias: bool = True
    out_channels: int | None = None

    @property
    def input_size(self) -> tuple[int, ...] | None:
        sizes = self.input.spatial
        return None if any(s is None for s in sizes) else tuple(s for s in sizes if s is not None)

    @property
    def in_channels(self) -> int | None:
        return self.input.channels

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

    @property
    def stack(self) -> StackSpec:
        """The one-layer stack the engine analyses."""
        return StackSpec(self.input, (self.spec,))


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

    From the stack analysis: output_size, effective_kernel, padding (resolved (before, after), None
    when it depends on an unknown size) and `field` (receptive field, jump, effective padding and
    centre in input pixels). rf_growth_min/max are the field less one: what the layer adds to a
    receptive field inside a stack, in units of jump_in (None when unknown).
    The calculators' own: same_padding, overlap (taps per output phase for a transposed conv, windows
    per input phase otherwise, and with an input size the count at every position), equivalent (a
    transposed conv), floor_output_size / last_window_start / ceil_dropped (pooling with ceil_mode:
    the floor-mode size, where the last window starts, and whether PyTorch's rule dropped one), and
    unread (input pixels no window reads, with an input size).
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
    field: AxisField
    same_padding: SamePadding | None
    overlap: AxisOverlap
    equivalent: EquivalentConv | None = None
    floor_output_size: int | None = None
    last_window_start: int | None = None
    ceil_dropped: bool = False
    unread: int | None = None

    @property
    def rf_growth_min(self) -> int | None:
        return None if self.field.rf_min is None else self.field.rf_min - 1

    @property
    def rf_growth_max(self) -> int | None:
        return None if self.field.rf is None else self.field.rf - 1


@dataclass(frozen=True)
class LayerResult:
    """One layer: the engine's `report` of it, per-axis results and the N-D overlap ratio.

    overlap_ratio: the product of the axes' max/min tap (or window) ratios (None with holes).
    params, macs and diagnostics are the report's (convcalc rf's conventions: weights plus bias; MACs
    at batch 1, a bias adding one per output element; None when the channels or sizes are unknown).
    """

    settings: LayerSettings
    report: LayerReport
    axes: tuple[AxisResult, ...]
    overlap_ratio: Fraction | None

    @property
    def params(self) -> int | None:
        return self.report.params

    @property
    def macs(self) -> int | None:
        return self.report.macs

    @property
    def diagnostics(self) -> tuple[Diagnostic, ...]:
        return self.report.diagnostics

    @property
    def output_size(self) -> tuple[int, ...] | None:
        sizes = [a.output_size for a in self.axes]
        return None if any(s is None for s in sizes) else tuple(s for s in sizes if s is not None)

    @property
    def holes(self) -> bool:
        return any(a.overlap.holes for a in self.axes)


# -- validation: the options as a stack file's layer -------------------------------------------------
def _problem(parameter: str, message: str) -> SpecError:
    return SpecError(Problem(message, parameter=parameter))


def _rank(lengths: dict[str, int], rank: int | None) -> int:
    """The layer's rank from how many values each option has (the calculators' own rule)."""
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


def _input(
    kind: LayerKind,
    input_size: Sequence[int] | None,
    in_channels: int | None,
    out_channels: int | None,
    groups: int,
    rank: int,
) -> InputSpec:
    """The stack input; refuses what only the calculators' options can get wrong (a stack file always
    has channels, and no channels on a pool layer)."""
    for v in input_size or ():
        if v < 1:
            raise _problem("input_size", f"input sizes must be positive integers, got {v}")
    for name, ch in (("in_channels", in_channels), ("out_channels", out_channels)):
        if ch is not None and ch < 1:
            raise _problem(name, f"channels must be a positive integer, got {ch}")
    if kind in ("maxpool", "avgpool") and (in_channels is not None or out_channels is not None or groups != 1):
        raise _problem("in_channels", "pooling keeps the channels: channel counts and groups are for conv and deconv")
    if out_channels is not None and in_channels is None:
        raise _problem("out_channels", "give the input channels too, to count parameters")
    if in_channels is None and groups != 1:
        raise _problem("groups", "give the channels (input, and output if different) with groups")
    spatial: tuple[int | None, ...] = (None,) * rank
    if input_size is not None:
        spatial = tuple(input_size) * rank if len(input_size) == 1 else tuple(input_size)
    return InputSpec(in_channels, spatial)


class _Collected:
    """A validate.Reporter keeping problems as the calculators' parameter problems."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, message: str, where: Location, layer: str | None = None, field: str | None = None) -> None:
        parameter = None if field is None else FIELD_PARAMETERS.get(field, field)
        self.problems.append(Problem(message, parameter=parameter))


def _raw_layer(kind: LayerKind, options: dict[str, object]) -> RawLayer:
    """A stack file's layer `{op: kind, name: kind, <options>}` as the validator reads it: one value is
    written as a scalar (`kernel: 3`), several as a list (`kernel: [3, 5]`)."""

    def value(v: object) -> Value:
        if isinstance(v, tuple):
            return plain(v[0] if len(v) == 1 else list(v))
        return plain(v)

    fields = {key: (scalar(key, raw=key), value(v)) for key, v in {"op": kind, "name": kind, **options}.items()}
    return RawLayer(0, Location(), fields)


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
    """Validate one layer's options as a stack file's layer `{op: kind, ...}`; the op's defaults fill
    the gaps (PyTorch's: pooling's stride is its kernel).

    A single value applies to every axis; the rank is the number of values (2 when all are single,
    or `rank`). Raises SpecError naming the parameter (`Problem.parameter`) with the message a stack
    file gets for the same value.

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
    stack_input = _input(kind, input_size, in_channels, out_channels, groups, n)
    # Only what was given, as a stack file would write it; a value the op has no field for (ceil_mode on
    # a conv, a dilation on an average pool, output_padding on a conv) is refused by the validator, so
    # their neutral values are left out.
    options: dict[str, object] = {"kernel": tuple(kernel)}
    if stride is not None:
        options["stride"] = tuple(stride)
    if padding is not None:
        options["padding"] = padding if isinstance(padding, str) else tuple(padding)
    if dilation is not None and (kind != "avgpool" or any(v != 1 for v in dilation)):
        options["dilation"] = tuple(dilation)
    if output_padding is not None and (kind == "deconv" or any(output_padding)):
        options["output_padding"] = tuple(output_padding)
    if ceil_mode:
        options["ceil_mode"] = True
    if out_channels is not None:
        options["out"] = out_channels
    if groups != 1:
        options["groups"] = groups
    reporter = _Collected()
    specs = validate_layers([_raw_layer(kind, options)], n, "", reporter)
    if reporter.problems:
        raise SpecError(reporter.problems)
    (spec,) = specs
    if kind == "deconv" and getattr(spec, "padding") == "same":  # noqa: B009
        spec = _explicit_same(spec)
    return LayerSettings(
        kind=kind,
        spec=spec,
        input=stack_input,
        kernel=getattr(spec, "kernel"),  # noqa: B009 - the four ops' specs all have these fields
        stride=getattr(spec, "stride"),  # noqa: B009
        padding=getattr(spec, "padding"),  # noqa: B009
        dilation=getattr(spec, "dilation"),  # noqa: B009
        output_padding=getattr(spec, "output_padding", (0,) * n),
        ceil_mode=getattr(spec, "ceil_mode", False),
        groups=getattr(spec, "groups", 1),
        bias=getattr(spec, "bias", True),
        out_channels=None if in_channels is None else (out_channels or in_channels),
    )


def _explicit_same(spec: LayerSpec) -> LayerSpec:
    """A transposed conv's `same` (output s·i) as what PyTorch takes: symmetric padding and output_padding
    so every line shows PyTorch's numbers; unchanged where no such pair exists (the analysis refuses it)."""
    pairs = [
        arithmetic.deconv_same_padding(k, s, d)
        for k, s, d in zip(getattr(spec, "kernel"), getattr(spec, "stride"), getattr(spec, "dilation"), strict=True)  # noqa: B009
    ]
    if any(pair is None for pair in pairs):
        return spec
    padding = tuple((pair[0], pair[0]) for pair in pairs if pair is not None)
    extra = tuple(pair[1] for pair in pairs if pair is not None)
    return dataclasses.replace(spec, padding=padding, output_padding=extra)  # type: ignore[call-arg]


# -- the calculators' additions ----------------------------------------------------------------------
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
    size = settings.input.spatial[axis]
    native = settings.kind == "conv" and s == 1
    if size is None and s > 1:
        return SamePadding(arithmetic.same_padding_before(None, k, s, d), None, native=native)
    # At stride 1 the SAME padding is d(k−1) split in two whatever the size, so any size will do.
    before, after = arithmetic.same_padding(size if size is not None else 1, k, s, d)
    return SamePadding(before, after, native=native)


def _dropped(report: LayerReport, label: str) -> bool:
    """Whether the analysis found ceil_mode dropping the last window along this axis."""
    return any(d.code == "ceil-mode-dropped" and d.data.get("axis") == label for d in report.diagnostics)


def _floor_mode_size(settings: LayerSettings, axis: int, pad: tuple[int, int]) -> int | None:
    """What the pool gives without ceil_mode, padded as the analysis pads it (symmetric padding goes to
    the pool; asymmetric or 'same' padding is applied first); None where only ceil_mode yields an output."""
    size = settings.input.spatial[axis]
    assert size is not None
    k, s, d = settings.kernel[axis], settings.stride[axis], settings.dilation[axis]
    native = not isinstance(settings.padding, str) and all(b == a for b, a in settings.padding)
    try:
        if native:
            return arithmetic.pool_output_size(size, k, s, pad[0], pad[1], d)
        return arithmetic.pool_output_size(size + pad[0] + pad[1], k, s, 0, 0, d, check_padding=False)
    except ValueError:
        return None


def _axis(settings: LayerSettings, report: LayerReport, axis: int) -> AxisResult:
    label = settings.axes[axis]
    k, s, d = settings.kernel[axis], settings.stride[axis], settings.dilation[axis]
    op = settings.output_padding[axis]
    size = settings.input.spatial[axis]
    out = report.output.spatial[axis]
    assert report.padding is not None
    assert report.effective_kernel is not None
    pad = report.padding[axis]
    k_eff = report.effective_kernel[axis]
    field, same = report.field[axis], _same_padding(settings, axis)
    if settings.kind == "deconv":
        assert pad is not None
        p = pad[0]
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
        return AxisResult(
            label,
            k,
            s,
            d,
            pad,
            op,
            k_eff,
            size,
            out,
            field,
            same,
            AxisOverlap(taps, overlap.ratio(taps), counts),
            equivalent,
        )
    before = pad[0] if pad is not None else 0
    taps = overlap.phase_taps(k, s, d, before)
    counts = None if size is None or out is None else overlap.window_counts(size, out, k, s, before, d)
    floor_out = last_start = None
    if settings.ceil_mode and size is not None and out is not None and pad is not None:
        floor_out = _floor_mode_size(settings, axis, pad)
        last_start = (out - 1) * s - pad[0]
    return AxisResult(
        label,
        k,
        s,
        d,
        pad,
        op,
        k_eff,
        size,
        out,
        field,
        same,
        AxisOverlap(taps, overlap.ratio(taps), counts),
        floor_output_size=floor_out,
        last_window_start=last_start,
        ceil_dropped=_dropped(report, label),
        unread=None if counts is None else counts.count(0),
    )


def calculate(settings: LayerSettings) -> LayerResult:
    """Analyse the layer as a one-layer stack (convcalc.analysis.engine) and add the calculators' extras;
    raises ShapeError naming the parameter when PyTorch would refuse the layer on this input.

    >>> r = calculate(layer_settings("deconv", [3], [2], [1], input_size=[4]))
    >>> r.output_size, r.overlap_ratio, [d.code for d in r.diagnostics]
    ((7, 7), Fraction(4, 1), ['checkerboard'])
    >>> r.report.field[0].rf, r.report.field[0].jump
    (2, Fraction(1, 2))
    """
    from convcalc.analysis.engine import analyze

    try:
        (report,) = analyze(settings.stack).layers
    except ShapeError as exc:
        raise ShapeError(
            [
                Problem(p.message, parameter=None if p.field is None else FIELD_PARAMETERS.get(p.field, p.field))
                for p in exc.problems
            ]
        ) from None
    assert report.inputs == (INPUT_NAME,)
    try:
        axes = tuple(_axis(settings, report, a) for a in range(settings.rank))
    except ValueError as exc:
        # A named limit on what the calculators list (arithmetic.MAX_PHASES, overlap.EXPAND_LIMIT).
        parameter = "stride" if "MAX_PHASES" in str(exc) else "kernel"
        raise ShapeError([Problem(str(exc), parameter=parameter)]) from None
    return LayerResult(
        settings=settings,
        report=report,
        axes=axes,
        overlap_ratio=overlap.combined_ratio([a.overlap.ratio for a in axes]),
    )
