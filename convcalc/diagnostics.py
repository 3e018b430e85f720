"""Diagnostics: findings about a stack that are not errors (PyTorch would run it) but deserve attention."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction

from convcalc.geometry.receptive import MAX_PERIOD, MAX_TAPS, MAX_UNITS
from convcalc.notation import counts_text, fraction_text, histogram_text, ratio_text
from convcalc.stack.spec import LayerSpec, Location


class Severity(StrEnum):
    """How much a diagnostic matters; `--fail-on` compares against this order."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}

#: Every diagnostic code convcalc emits, with its severity and what it means (stable: scripts key on it).
CODES: dict[str, tuple[Severity, str]] = {
    "checkerboard": (
        Severity.WARNING,
        "a transposed conv whose output phases receive unequal numbers of input taps (kernel not divisible by stride)",
    ),
    "checkerboard-compound": (
        Severity.WARNING,
        "stacked transposed convs or upsampling compound the uneven overlap beyond each layer's own",
    ),
    "holes": (Severity.ERROR, "some outputs of a transposed conv receive no input at all (only the bias)"),
    "misaligned-merge": (
        Severity.WARNING,
        "the branches of a merge disagree in jump or centre (in a causal stack: in their last sample): the same "
        "output unit looks at different places",
    ),
    "rf-exceeds-input": (Severity.INFO, "the receptive field is larger than the input along an axis"),
    "same-strided": (
        Severity.INFO,
        "padding 'same' with stride > 1: PyTorch refuses it; a port needs the explicit padding given",
    ),
    "same-asymmetric": (Severity.INFO, "padding 'same' splits an odd total: the extra pixel goes after"),
    "ceil-mode-dropped": (
        Severity.INFO,
        "ceil_mode dropped a last window that would start in the right padding (PyTorch's rule)",
    ),
    "unused-input": (
        Severity.INFO,
        "some input pixels are read by no window: the stride skips the last ones, or the kernel is shorter "
        "than the stride",
    ),
    "padding-unknown": (
        Severity.INFO,
        "the effective padding depends on the unknown input size (SAME with stride > 1)",
    ),
    "rf-unknown": (
        Severity.INFO,
        "the receptive field depends on an unknown input size, or a layer to be mapped unit by unit (its phase "
        f"pattern repeats only beyond {MAX_PERIOD} units) has more than {MAX_UNITS} units along an axis, or one "
        f"unit reads more than {MAX_TAPS} separate taps",
    ),
    "gridding": (
        Severity.WARNING,
        "the receptive field of an interior unit has holes: input pixels inside it that no path reads "
        "(dilation rates sharing a factor, or strides skipping pixels)",
    ),
    "scale-rounding": (
        Severity.INFO,
        "size × scale_factor lands just below an integer and PyTorch floors it (e.g. 100 × 0.29 → 28)",
    ),
}


@dataclass(frozen=True)
class Diagnostic:
    """One finding: a stable `code` (see CODES), the layer it concerns and a one-line message with numbers.

    `data` carries the numbers for machine-readable output (JSON-friendly values). `location` is
    where the layer was written (None for a stack not read from a file: imported models, calculators);
    inside a block it is the line in the block's definition, `instance` the block instance (`layer3.2`)
    and `call` the instance's use in the top-level layer list. The engine sets the three from the layer
    (see `located`), so the builders below never do.
    """

    code: str
    layer: str
    message: str
    data: dict[str, object] = field(default_factory=dict, compare=False, hash=False)
    location: Location | None = field(default=None, compare=False)
    instance: str | None = field(default=None, compare=False)
    call: Location | None = field(default=None, compare=False)

    @property
    def severity(self) -> Severity:
        return CODES[self.code][0]


def located(diagnostic: Diagnostic, layer: LayerSpec) -> Diagnostic:
    """`diagnostic` with the source location of `layer`, the layer it concerns (a location without a line,
    as an importer's node description, is no place in a file: None)."""
    where = layer.location if layer.location.line is not None else None
    return dataclasses.replace(diagnostic, location=where, instance=layer.instance, call=layer.call)


# -- builders: one per code that several analyses emit, so the same layer reads the same everywhere ----
def by_axes(items: Sequence[tuple[str, str]]) -> str:
    """'H and W: text' for axes sharing a text, joined with '; '."""
    groups: dict[str, list[str]] = {}
    for axis, text in items:
        groups.setdefault(text, []).append(axis)
    return "; ".join(f"{' and '.join(axes)}: {text}" for text, axes in groups.items())


#: Per-phase counts of one axis: listed in phase order, or (strides above MAX_PHASES) count → phases.
PhaseCounts = Sequence[int] | Mapping[int, int]


def _phase_values(taps: PhaseCounts) -> Collection[int]:
    return taps.keys() if isinstance(taps, Mapping) else taps


def _phases_text(taps: PhaseCounts) -> str:
    return histogram_text(taps) if isinstance(taps, Mapping) else counts_text(taps)


def _phases_data(taps: PhaseCounts) -> list[int] | dict[str, int]:
    return {str(c): n for c, n in taps.items()} if isinstance(taps, Mapping) else list(taps)


def transposed_overlap(
    layer: str,
    axes: Sequence[str],
    taps: Sequence[PhaseCounts],
    kernel: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
) -> Diagnostic | None:
    """`holes` or `checkerboard` for a transposed conv from its taps per output phase (phase order, per axis;
    a histogram count → phases where the stride has too many phases to list).

    None when every axis has even overlap. The data carries `axes` (the affected ones), `taps` (a list, or
    the histogram with string keys), `ratios` (max/min per affected axis, exact strings) and, for a
    checkerboard, `ratio` (N-D).
    """
    values = [_phase_values(t) for t in taps]
    holed = [a for a, t in enumerate(values) if min(t) == 0]
    if holed:

        def why(a: int) -> str:
            g = math.gcd(dilation[a], stride[a])
            cause = (
                f"dilation {dilation[a]} shares the factor {g} with stride {stride[a]}"
                if g > 1
                else f"kernel {kernel[a]} < stride {stride[a]}"
            )
            return f"taps per output phase {_phases_text(taps[a])}, {cause}"

        return Diagnostic(
            "holes",
            layer,
            f"some outputs receive no input at all, only the bias ({by_axes([(axes[a], why(a)) for a in holed])}). "
            "Fix: a kernel of at least the stride with a dilation coprime to it, or resize then convolve",
            {"axes": [axes[a] for a in holed], "taps": [_phases_data(taps[a]) for a in holed]},
        )
    ratios = [Fraction(max(t), min(t)) for t in values]
    uneven = [a for a, r in enumerate(ratios) if r != 1]
    if not uneven:
        return None
    total = math.prod((ratios[a] for a in uneven), start=Fraction(1))
    per_axis = by_axes([(axes[a], _phases_text(taps[a])) for a in uneven])
    if len(uneven) > 1:
        scale = f"max:min {ratio_text(total)} in {len(uneven)}-D (the axes' ratios multiply)"
    else:
        scale = f"max:min {ratio_text(total)}"
    s = max(stride[a] for a in uneven)
    return Diagnostic(
        "checkerboard",
        layer,
        f"uneven overlap: taps per output phase {per_axis}; {scale}. Fix: a kernel divisible by the stride "
        f"(e.g. {2 * s} for stride {s}), or resize (nearest) then a stride-1 conv",
        {
            "axes": [axes[a] for a in uneven],
            "taps": [_phases_data(taps[a]) for a in uneven],
            "ratios": [fraction_text(ratios[a]) for a in uneven],
            "ratio": fraction_text(total),
        },
    )


def same_padding_notes(
    layer: str,
    op: str,
    axes: Sequence[str],
    kernel: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
    pads: Sequence[tuple[int, int] | None],
    lower: bool = False,
) -> list[Diagnostic]:
    """The notes on a `padding: same` (or ONNX's `same_lower`) layer, conv or pool, from its resolved
    per-axis (before, after) pads (None where they depend on an unknown input size).

    - `same-strided` (stride > 1): PyTorch refuses it; the F.pad a port needs, last axis first as F.pad
      takes it, with −inf for a max pool (a window over padding must never win), zeros otherwise;
    - `same-asymmetric` (stride 1): an odd d(k−1) puts the extra pixel after (before for same_lower);
    - `padding-unknown`: the left padding depends on the unknown input size.
    """
    found: list[Diagnostic] = []
    strides = "×".join(map(str, stride))
    word = "same_lower" if lower else "same"
    if any(s > 1 for s in stride):
        if all(p is not None for p in pads):
            pairs = [p for p in pads if p is not None]
            flat = ", ".join(f"{b}, {a}" for b, a in reversed(pairs))
            fill = ", value=float('-inf')" if op == "maxpool" else ""
            found.append(
                Diagnostic(
                    "same-strided",
                    layer,
                    f"padding '{word}' with stride {strides}: PyTorch refuses it; a port pads explicitly: "
                    f"F.pad(x, ({flat}){fill}) then padding=0",
                    {"padding": [list(p) for p in pairs], "fill": "-inf" if op == "maxpool" else "0"},
                )
            )
        else:
            found.append(
                Diagnostic(
                    "same-strided",
                    layer,
                    f"padding '{word}' with stride {strides}: PyTorch refuses it; the explicit padding a port "
                    "needs depends on the input size (give the input size)",
                )
            )
    else:
        odd = [axes[a] for a in range(len(axes)) if (dilation[a] * (kernel[a] - 1)) % 2]
        if odd:
            side = (
                "before (ONNX's SAME_LOWER; a PyTorch port pads explicitly)"
                if lower
                else ("after (PyTorch does the same and copies the input to do it)")
            )
            found.append(
                Diagnostic(
                    "same-asymmetric",
                    layer,
                    f"padding '{word}' on {', '.join(odd)}: the total d(k−1) is odd, so the extra pixel goes {side}",
                    {"axes": odd},
                )
            )
    if any(p is None for p in pads):
        found.append(
            Diagnostic(
                "padding-unknown",
                layer,
                f"the left padding of '{word}' with this stride depends on the input size; give the input size to "
                "know the effective padding and centre",
            )
        )
    return found


def _percent(part: int, whole: int) -> str:
    """A share as a whole percentage for reading ('46 %'); exact counts are given beside it."""
    return f"{round(100 * part / whole)} %"


def gridding(
    layer: str,
    axes: Sequence[tuple[str, int, int, int]],
    read_nd: int | None,
    width_nd: int,
    responsible: Sequence[tuple[str, str]],
    hdc: tuple[int, int] | None,
) -> Diagnostic:
    """`gridding`: per axis (label, field width, pixels read, period of the read pattern); the N-D count
    of pixels read (None when not the product of the axes: through merges, or 1-D), the layers
    responsible, and the HDC value M_2 with its kernel K (information: the holes come from exact
    coverage, HDC is only sufficient). `responsible`: (layer, why) pairs."""
    parts = []
    for label, width, read, period in axes:
        never = width - read
        pattern = f", one pixel in {period} (period {period})" if period > 1 else ""
        parts.append((label, f"{never} of {width} pixels never read ({_percent(never, width)}){pattern}"))
    text = by_axes(parts)
    if read_nd is not None:
        never_nd = width_nd - read_nd
        text += f"; in {len(axes)}-D {never_nd} of {width_nd} ({_percent(never_nd, width_nd)})"
    who = f" (from {', '.join(f'{name} {why}' for name, why in responsible)})" if responsible else ""
    fixes = []
    if any(why.startswith("dilation") for _, why in responsible) or not responsible:
        fixes.append("dilation rates without a common factor, e.g. 1, 2, 5 (Hybrid Dilated Convolution)")
    if any(why.startswith("stride") for _, why in responsible):
        fixes.append("a kernel at least as large as the stride")
    info = ""
    if hdc is not None:
        m2, k = hdc
        info = f"; HDC M_2 = {m2} {'≤' if m2 <= k else '>'} K = {k} (the HDC criterion is only sufficient)"
    return Diagnostic(
        "gridding",
        layer,
        f"holes in the receptive field{who}: {text}. Fix: {', or '.join(fixes)}{info}",
        {
            "axes": [label for label, *_ in axes],
            "width": [w for _, w, _, _ in axes],
            "read": [r for _, _, r, _ in axes],
            "period": [p for _, _, _, p in axes],
            "layers": list(dict.fromkeys(name for name, _ in responsible)),
            "hdc_m2": None if hdc is None else hdc[0],
        },
    )
