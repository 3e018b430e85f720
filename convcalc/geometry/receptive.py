"""Exact receptive fields, one spatial axis at a time, by mapping unit intervals back to the input.

Each layer contributes a *step*: for one output unit, the input units (points or contiguous
ranges) that reach it with a non-zero weight. An `AxisMap` composes the
steps from the stack input to one layer: for every unit u of that layer it gives the hull
[lo(u), hi(u)] of stack-input pixels (Google/Distill convention: positions in the padding count,
borders are ignored). Most maps are periodic: lo(u + period) = lo(u) + period·jump, so one period of
output phases describes every unit, including the phase-dependent fields of transposed convs and
upsampling. With integer jumps the period is 1 and the closed forms hold: rf = hi − lo + 1,
P = −lo(0), centre(i) = −P + i·jump + (rf − 1)/2.

Some ratios repeat only after very many units (align_corners' (in−1)/(out−1), 3600/7201 has period
7201; nested ones multiply). Beyond MAX_PERIOD a map is *explicit* instead: it lists every unit of
the layer (its size must be known, at most MAX_UNITS), and answers for units beyond the borders
(what a later layer reads through its padding) by the same back-mapping, evaluated when asked.

Alongside the hulls a map carries the *overlap* of each phase: what a unit of the linear skeleton
of the stack (every kernel all ones, interpolation with its own weights, a ones input) holds away
from the borders — the number of paths from the input. Uneven overlap across phases is the
checkerboard pattern; stacked transposed convs compound it (Odena et al., Distill 2016).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from typing import Final, Literal, TypeVar

#: Periods above this are not enumerated; such a map lists every unit of the layer instead.
MAX_PERIOD = 4096
#: The most units per axis an explicit map lists (beyond it the receptive field is reported as unknown).
MAX_UNITS = 65536

#: The most separate taps (a dilated or transposed kernel's points) a unit's field is composed from;
#: beyond it the map is not computed (Unmapped "taps").
MAX_TAPS = 1 << 16

Interval = tuple[int, int]
T = TypeVar("T")

# Stand-ins for "no unit reached" in min/max scans (farther than any position a stack can reach).
_FAR = 1 << 62


Fill = Literal["zeros", "reflect", "replicate", "circular"]


def fill_of(mode: str) -> Fill:
    """The `Window.fill` of a padding mode as PyTorch spells it (F.pad's 'constant' holds no input)."""
    if mode in ("reflect", "replicate", "circular"):
        return mode  # type: ignore[return-value]  # narrowed by the test above
    return "zeros"


@dataclass(frozen=True)
class Window:
    """A sliding window (conv, pooling, pad, pixel_unshuffle): unit u reads u·stride − before + j·dilation.

    `fill` is what positions outside the input hold: zeros (nothing reaches from there), or reflect,
    replicate, circular padding (real input pixels do). Receptive-field hulls ignore it (positions in
    the padding count); the support and coverage of `convcalc.geometry.coverage` follow it.
    """

    stride: int
    before: int
    kernel: int
    dilation: int = 1
    fill: Fill = "zeros"

    @property
    def factor(self) -> Fraction:
        return Fraction(self.stride)

    def tap_count(self) -> int:
        """The most separate taps (points) `taps` lists for one unit."""
        return 1 if self.dilation == 1 else self.kernel

    def taps(self, u: int) -> list[Interval]:
        start = u * self.stride - self.before
        if self.dilation == 1:
            return [(start, start + self.kernel - 1)]
        return [(start + j * self.dilation,) * 2 for j in range(self.kernel)]


@dataclass(frozen=True)
class Transposed:
    """A transposed conv: output u receives input i through tap j when u + padding = i·stride + j·dilation."""

    kernel: int
    stride: int
    dilation: int
    padding: int

    @property
    def factor(self) -> Fraction:
        return Fraction(1, self.stride)

    def taps(self, u: int) -> list[Interval]:
        """The input units reaching output u, in closed form: tap j reaches it when j·d ≡ u + p (mod s),
        i.e. j = j₀ + t·s' (s' = s/gcd(d, s)), reading input (u + p − j·d)/s, which falls by d/gcd(d, s) per
        tap: one interval when that is 1, else one point per tap (largest input first, as j grows)."""
        s, p, d, k = self.stride, self.padding, self.dilation, self.kernel
        g = math.gcd(d, s)
        x = u + p
        if x % g:
            return []
        period = s // g
        first = (x % s // g) * pow(d // g, -1, period) % period if period > 1 else 0
        if first >= k:
            return []
        last = first + (k - 1 - first) // period * period
        top, step = (x - first * d) // s, d // g
        if step == 1:
            return [((x - last * d) // s, top)]
        return [(top - t * step,) * 2 for t in range((last - first) // period + 1)]

    def tap_count(self) -> int:
        """The most separate taps (points) `taps` lists for one unit."""
        g = math.gcd(self.dilation, self.stride)
        return 1 if self.dilation == g else -(-self.kernel // (self.stride // g))


ResampleKind = Literal[
    "nearest", "nearest_exact", "linear", "linear_ac", "cubic", "cubic_ac", "aa_linear", "aa_cubic", "bins"
]


@dataclass(frozen=True)
class Resample:
    """Index-mapped resampling with `ratio` input pixels per output pixel.

    kind: "nearest" (src = floor(u·ratio); also pixel_shuffle), "linear" (half-pixel source
    ratio·(u + ½) − ½, reads floor and ceil of it: one pixel when the weight of the other is
    exactly 0), "linear_ac" (align_corners: source ratio·u), "nearest_exact" (floor((u + ½)·ratio)),
    "cubic" / "cubic_ac" (bicubic: the four pixels around the source, the linear kinds' source),
    "aa_linear" / "aa_cubic" (antialiased: every pixel within the filter's support, widened by the
    ratio when downsampling; see _aa_weights), "bins" (adaptive pooling:
    [floor(u·ratio), ceil((u+1)·ratio))). Integer arithmetic throughout (explicit maps ask for
    every unit of large layers).
    """

    ratio: Fraction
    kind: ResampleKind

    @property
    def factor(self) -> Fraction:
        return self.ratio

    def source(self, u: int) -> tuple[int, int]:
        """The interpolation source of unit u as numerator and denominator (linear and cubic kinds)."""
        p, q = self.ratio.numerator, self.ratio.denominator
        if self.kind in ("linear_ac", "cubic_ac"):
            return u * p, q
        return p * (2 * u + 1) - q, 2 * q  # ratio·(u + ½) − ½

    def taps(self, u: int) -> list[Interval]:
        p, q = self.ratio.numerator, self.ratio.denominator
        if self.kind == "nearest":
            return [((u * p) // q,) * 2]
        if self.kind == "nearest_exact":
            return [(((2 * u + 1) * p) // (2 * q),) * 2]  # floor((u + ½)·ratio)
        if self.kind == "bins":
            return [((u * p) // q, -(-(u + 1) * p // q) - 1)]
        if self.kind in ("aa_linear", "aa_cubic"):
            taps = [j for j, _ in _aa_weights(self, u)]
            return [(taps[0], taps[-1])]
        num, den = self.source(u)
        if self.kind in ("cubic", "cubic_ac"):
            # Four taps around floor(source); only the one at floor when the source is a whole pixel (the
            # others' cubic weights are exactly 0 there).
            low = num // den
            return [(low, low)] if num % den == 0 else [(low - 1, low + 2)]
        return [(num // den, -(-num // den))]


#: PyTorch's cubic convolution coefficient: A = −0.75 for bicubic, −0.5 for its antialiased filter (Pillow's).
_CUBIC_A: Final = Fraction(-3, 4)
_AA_CUBIC_A: Final = Fraction(-1, 2)


def _cubic(x: Fraction, a: Fraction) -> Fraction:
    """The cubic convolution kernel at distance x (Keys): nonzero on |x| < 2 except at |x| = 1."""
    x = abs(x)
    if x < 1:
        return ((a + 2) * x - (a + 3)) * x * x + 1
    if x < 2:
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return Fraction(0)


def _cubic_weights(t: Fraction) -> list[Fraction]:
    """The weights of the four taps floor(s)−1 .. floor(s)+2 at fraction t = s − floor(s)."""
    return [_cubic(t + 1, _CUBIC_A), _cubic(t, _CUBIC_A), _cubic(1 - t, _CUBIC_A), _cubic(2 - t, _CUBIC_A)]


def _aa_weights(step: Resample, u: int) -> list[tuple[int, Fraction]]:
    """The antialiased taps of unit u with their normalised weights, away from the borders (ATen's
    _compute_weights_aa): centre c = ratio·(u + ½), support S = h·max(ratio, 1) with h = 1 (linear) or 2
    (cubic); input j weighs filter((j + ½ − c)/max(ratio, 1)) for j + ½ within S of c. Zero weights are left
    out (they pass no gradient)."""
    h = 1 if step.kind == "aa_linear" else 2
    widen = max(step.ratio, Fraction(1))
    centre = step.ratio * (2 * u + 1) / 2
    support = h * widen
    first = math.floor(centre - support - Fraction(1, 2)) + 1
    last = math.ceil(centre + support - Fraction(1, 2)) - 1
    found = []
    for j in range(first, last + 1):
        x = (j + Fraction(1, 2) - centre) / widen
        w = max(1 - abs(x), Fraction(0)) if h == 1 else _cubic(x, _AA_CUBIC_A)
        if w:
            found.append((j, w))
    total = sum((w for _, w in found), Fraction(0))
    return [(j, w / total) for j, w in found]


Step = Window | Transposed | Resample

#: One reach of a step: input units a..b, each with this weight in the ones-kernel skeleton.
WeightedTap = tuple[int, int, Fraction]


def weighted_taps(step: Step, u: int) -> list[WeightedTap]:
    """The taps of output unit `u` with their weights when every kernel is all ones.

    Windows and transposed convs sum their taps (weight 1); linear interpolation weights its two
    sources by their distance; adaptive pooling averages its bin.
    """
    if isinstance(step, Resample) and step.kind in ("linear", "linear_ac"):
        num, den = step.source(u)
        low, rest = divmod(num, den)
        taps = [(low, low, Fraction(den - rest, den))]
        if rest:
            taps.append((low + 1, low + 1, Fraction(rest, den)))
        return taps
    if isinstance(step, Resample) and step.kind == "bins":
        ((a, b),) = step.taps(u)
        return [(a, b, Fraction(1, b - a + 1))]
    if isinstance(step, Resample) and step.kind in ("cubic", "cubic_ac"):
        num, den = step.source(u)
        low, rest = divmod(num, den)
        if not rest:
            return [(low, low, Fraction(1))]
        return [(low - 1 + i, low - 1 + i, w) for i, w in enumerate(_cubic_weights(Fraction(rest, den)))]
    if isinstance(step, Resample) and step.kind in ("aa_linear", "aa_cubic"):
        return [(j, j, w) for j, w in _aa_weights(step, u)]
    return [(a, b, Fraction(1)) for a, b in step.taps(u)]


def _weight_total(step: Step, taps: list[Interval]) -> int:
    """The sum of a unit's skeleton weights: resampling weights add up to 1, kernels count their taps."""
    if isinstance(step, Resample):
        return 1
    return sum(b - a + 1 for a, b in taps)


@dataclass(frozen=True)
class Composed:
    """How an explicit map was made: `step` applied to `inner` (answers for units beyond the borders)."""

    inner: AxisMap
    step: Step


@dataclass(frozen=True)
class Merged:
    """How an explicit map was made: the unit-by-unit hull of `maps` (an elementwise merge or concat)."""

    maps: tuple[AxisMap, ...]


@dataclass(frozen=True)
class Unmapped:
    """Why a layer has no map along an axis.

    reason: "offset" — a size-dependent padding (SAME with an unknown size) in front of a
    phase-dependent map; "period" — the pattern over output phases repeats only beyond MAX_PERIOD
    units and the layer's size is unknown, so its units cannot be listed; "units" — the layer has
    `units` units, more than MAX_UNITS; "taps" — one unit reads `units` separate taps (a dilated or
    transposed kernel), more than MAX_TAPS.
    """

    reason: Literal["offset", "period", "units", "taps"]
    units: int | None = None


@dataclass(frozen=True)
class AxisMap:
    """For each unit of a layer (one axis), the hull of stack-input pixels that reach it.

    `lo`/`hi` hold one period of units (None where a phase receives no input at all); an
    `explicit` map holds every unit of the layer instead (`period` is then the layer's size) and
    its `source` answers for units beyond the borders. `overlap` holds the skeleton value of each
    unit listed, or one value for every unit. `offset_known` is False when an upstream padding depends
    on an unknown input size: the widths are still right but the absolute positions are not.
    `is_global` means every unit sees the whole input (flatten, linear, global pooling, broadcasting).
    `causal` means every layer from the stack input pads only before along this axis (see `compose_map`),
    so each unit's last sample is where it stands in time.
    """

    jump: Fraction
    period: int
    lo: tuple[int | None, ...]
    hi: tuple[int | None, ...]
    offset_known: bool = True
    is_global: bool = False
    overlap: tuple[Fraction, ...] = (Fraction(1),)
    explicit: bool = False
    causal: bool = False
    source: Composed | Merged | None = dataclasses.field(default=None, compare=False, repr=False)

    # -- one unit ----------------------------------------------------------------------------------
    def at(self, u: int) -> Interval | None:
        """The input hull of unit `u` (any integer: the map extends beyond the borders)."""
        if self.explicit:
            if 0 <= u < self.period:
                lo, hi = self.lo[u], self.hi[u]
                return None if lo is None or hi is None else (lo, hi)
            return self._beyond(u)[0]
        n, phase = divmod(u, self.period)
        lo, hi = self.lo[phase], self.hi[phase]
        if lo is None or hi is None:
            return None
        shift = n * self._period_shift
        return lo + shift, hi + shift

    def overlap_at(self, u: int) -> Fraction:
        """The skeleton value of unit `u` (any integer)."""
        n = len(self.overlap)
        if not self.explicit or n == 1:
            return self.overlap[u % n]
        if 0 <= u < n:
            return self.overlap[u]
        return self._beyond(u)[1]

    # -- ranges of units ---------------------------------------------------------------------------
    def image(self, a: int, b: int) -> Interval | None:
        """The input hull of units a..b.

        Periodic maps: lo(u + period) = lo(u) + period·jump with jump > 0, so the smallest lo lies in
        the first period of the range and the largest hi in the last: O(period), exact. Explicit
        maps scan the range.
        """
        if self.explicit:
            return self._explicit_image(a, b)
        los = [h[0] for h in (self.at(u) for u in range(a, min(b, a + self.period - 1) + 1)) if h is not None]
        his = [h[1] for h in (self.at(u) for u in range(max(a, b - self.period + 1), b + 1)) if h is not None]
        if not los or not his:
            return None
        return min(los), max(his)

    def overlap_sum(self, a: int, b: int) -> Fraction:
        """Total skeleton overlap of units a..b."""
        n = len(self.overlap)
        if self.explicit and n > 1:
            i, j = max(a, 0), min(b, n - 1)
            total = sum(self.overlap[i : j + 1], Fraction(0)) if i <= j else Fraction(0)
            outside = [*range(a, min(b, -1) + 1), *range(max(a, n), b + 1)]
            return total + sum((self._beyond(u)[1] for u in outside), Fraction(0))
        if a == b:
            return self.overlap[a % n]
        full, rest = divmod(b - a + 1, n)
        total = full * sum(self.overlap, Fraction(0)) if full else Fraction(0)
        return total + sum((self.overlap[(a + i) % n] for i in range(rest)), Fraction(0))

    # -- the whole layer -------------------------------------------------------------------------
    @property
    def overlap_ratio(self) -> Fraction | None:
        """max/min of the overlap over the units listed (1 = even); None when some unit gets nothing."""
        low = min(self.overlap)
        return max(self.overlap) / low if low > 0 else None

    def widths(self) -> list[int]:
        """RF width of every unit listed that receives input."""
        return [h - lo + 1 for lo, h in zip(self.lo, self.hi, strict=True) if lo is not None and h is not None]

    @property
    def rf_max(self) -> int:
        return max(self.widths(), default=0)

    @property
    def rf_min(self) -> int:
        return min(self.widths(), default=0)

    def first_reached(self) -> int | None:
        """The first unit listed that receives input."""
        for phase, lo in enumerate(self.lo):
            if lo is not None:
                return phase
        return None

    @property
    def padding(self) -> Fraction | None:
        """Effective padding P (left/top): how far unit 0's field starts before pixel 0.

        Exactly −lo(0); when unit 0 is a hole, extrapolated from the first reached unit.
        """
        phase = self.first_reached()
        if phase is None or not self.offset_known:
            return None
        lo = self.lo[phase]
        assert lo is not None
        return -(lo - phase * self.jump)

    @property
    def centre(self) -> Fraction | None:
        """Centre of unit 0 in input coordinates: centre(i) = centre + i·jump.

        For phase-dependent fields, the mean over the units listed (one period, or every unit of an
        explicit map) of each unit's hull centre, shifted back to unit 0 (with integer jumps:
        exactly −P + (rf − 1)/2).
        """
        if not self.offset_known:
            return None
        ends = units = count = 0
        for u, (lo, hi) in enumerate(zip(self.lo, self.hi, strict=True)):
            if lo is not None and hi is not None:
                ends += lo + hi
                units += u
                count += 1
        if not count:
            return None
        return Fraction(ends, 2 * count) - self.jump * Fraction(units, count)

    @property
    def end(self) -> Fraction | None:
        """The last input pixel of unit 0: end(i) = end + i·jump (the mean over the units listed, shifted back
        to unit 0, as for the centre). What a causal stack aligns on."""
        if not self.offset_known:
            return None
        ends = units = count = 0
        for u, hi in enumerate(self.hi):
            if hi is not None:
                ends += hi
                units += u
                count += 1
        if not count:
            return None
        return Fraction(ends, count) - self.jump * Fraction(units, count)

    @cached_property
    def _period_shift(self) -> int:
        shift = self.period * self.jump
        assert shift.denominator == 1, "period·jump is an integer by construction"
        return int(shift)

    # -- explicit maps: scans and units beyond the borders ---------------------------------------
    @cached_property
    def _lo_keys(self) -> list[int]:
        return [_FAR if v is None else v for v in self.lo]

    @cached_property
    def _hi_keys(self) -> list[int]:
        return [-_FAR if v is None else v for v in self.hi]

    @cached_property
    def _beyond_cache(self) -> dict[int, tuple[Interval | None, Fraction]]:
        return {}

    @cached_property
    def _times_cache(self) -> dict[int, Fraction]:
        return {}

    def _uniform_times(self, total: int) -> Fraction:
        """A uniform overlap times a unit's total weight, memoised (one Fraction product per weight)."""
        cache = self._times_cache
        if total not in cache:
            cache[total] = self.overlap[0] * total
        return cache[total]

    def _explicit_image(self, a: int, b: int) -> Interval | None:
        n = self.period
        lo, hi = _FAR, -_FAR
        i, j = max(a, 0), min(b, n - 1)
        if i <= j:
            lo, hi = min(self._lo_keys[i : j + 1]), max(self._hi_keys[i : j + 1])
        for outside in (range(a, min(b, -1) + 1), range(max(a, n), b + 1)):
            for u in outside:
                h = self._beyond(u)[0]
                if h is not None:
                    lo, hi = min(lo, h[0]), max(hi, h[1])
        return None if lo == _FAR else (lo, hi)

    def _beyond(self, u: int) -> tuple[Interval | None, Fraction]:
        """Hull and overlap of a unit beyond the borders of an explicit map, from its source.

        Memoised per map and evaluated without recursion: a unit's dependencies (the units it reads in
        explicit maps, also beyond their borders) are evaluated first, so long chains of padded
        layers after an explicit map cost one pass each, whatever their depth.
        """
        cache = self._beyond_cache
        if u in cache:
            return cache[u]
        pending: list[tuple[AxisMap, int]] = [(self, u)]
        while pending:
            m, v = pending[-1]
            if v in m._beyond_cache:
                pending.pop()
                continue
            missing = [(dep, x) for dep, x in m._reads(v) if dep._needs_beyond(x)]
            if missing:
                pending.extend(missing)
                continue
            m._beyond_cache[v] = m._evaluate(v)
            pending.pop()
        return cache[u]

    def _needs_beyond(self, u: int) -> bool:
        return self.explicit and not 0 <= u < self.period and u not in self._beyond_cache

    def _reads(self, u: int) -> list[tuple[AxisMap, int]]:
        source = self.source
        assert source is not None, "an explicit map keeps its source"
        if isinstance(source, Composed):
            return [(source.inner, x) for a, b in source.step.taps(u) for x in range(a, b + 1)]
        return [(m, u) for m in source.maps]

    def _evaluate(self, u: int) -> tuple[Interval | None, Fraction]:
        source = self.source
        assert source is not None, "an explicit map keeps its source"
        if isinstance(source, Composed):
            return _unit(source.inner, source.step, u)
        return _hull([m.at(u) for m in source.maps]), sum((m.overlap_at(u) for m in source.maps), Fraction(0))


IDENTITY = AxisMap(Fraction(1), 1, (0,), (0,), causal=True)
GLOBAL = AxisMap(Fraction(1), 1, (0,), (0,), is_global=True)


def _hull(hulls: list[Interval | None]) -> Interval | None:
    reached = [h for h in hulls if h is not None]
    if not reached:
        return None
    return min(h[0] for h in reached), max(h[1] for h in reached)


def _uniform(overlap: list[Fraction]) -> tuple[Fraction, ...]:
    """A periodic map's overlap: one value when every phase has the same (it then holds for every unit)."""
    return (overlap[0],) if len(set(overlap)) == 1 else tuple(overlap)


def _unit(inner: AxisMap, step: Step, u: int) -> tuple[Interval | None, Fraction]:
    """Hull and skeleton overlap of output unit `u` of `step` applied to `inner`."""
    taps = step.taps(u)
    hull = _hull([inner.image(a, b) for a, b in taps])
    if len(inner.overlap) == 1:  # uniform: c times the unit's total weight
        return hull, inner._uniform_times(_weight_total(step, taps))
    overlap = sum((w * inner.overlap_sum(a, b) for a, b, w in weighted_taps(step, u)), Fraction(0))
    return hull, overlap


def compose_map(
    inner: AxisMap, step: Step, offset_known: bool = True, *, units: int | None = None, causal: bool = False
) -> AxisMap | Unmapped:
    """The map of a layer whose input has map `inner` and whose own step is `step`.

    `offset_known=False` says the step's left padding is a stand-in (size-dependent SAME with an
    unknown size). `units` is the layer's size along the axis (None if unknown): a map whose period
    would exceed MAX_PERIOD lists every unit instead, which needs it. `causal` says the step pads only
    before (the caller knows the padding after): the result is causal when the inner map is too.
    Unmapped says why there is no map: an unknown offset in front of a phase-dependent map, or a
    long period with an unknown size, or more than MAX_UNITS units.
    """
    if inner.is_global:
        return inner
    if not isinstance(step, Resample) and step.tap_count() > MAX_TAPS:
        return Unmapped("taps", step.tap_count())
    if not offset_known and (inner.period > 1 or inner.explicit):
        return Unmapped("offset")
    factor = step.factor
    jump = inner.jump * factor
    known = inner.offset_known and offset_known
    if not inner.explicit:
        p, q = factor.numerator, factor.denominator
        period = q * inner.period // math.gcd(p, inner.period) if p else q
        if period <= MAX_PERIOD:
            lo: list[int | None] = []
            hi: list[int | None] = []
            overlap: list[Fraction] = []
            for u in range(period):
                hull, value = _unit(inner, step, u)
                lo.append(None if hull is None else hull[0])
                hi.append(None if hull is None else hull[1])
                overlap.append(value)
            return AxisMap(
                jump, period, tuple(lo), tuple(hi), known, overlap=_uniform(overlap), causal=causal and inner.causal
            )
    if units is None:
        return Unmapped("period")
    if units > MAX_UNITS:
        return Unmapped("units", units)
    return _explicit_compose(inner, step, jump, known, units, causal and inner.causal)


def _explicit_compose(inner: AxisMap, step: Step, jump: Fraction, known: bool, units: int, causal: bool) -> AxisMap:
    if inner.explicit and isinstance(step, Window):
        return _explicit_window(inner, step, jump, known, units, causal)
    lo: list[int | None] = []
    hi: list[int | None] = []
    overlap: list[Fraction] = []
    # A uniform input overlap c gives c times the unit's total weight: no per-unit fractions.
    uniform = inner.overlap[0] if len(inner.overlap) == 1 else None
    scaled: dict[int, Fraction] = {}
    for u in range(units):
        taps = step.taps(u)
        hull = _hull([inner.image(a, b) for a, b in taps])
        lo.append(None if hull is None else hull[0])
        hi.append(None if hull is None else hull[1])
        if uniform is None:
            overlap.append(sum((w * inner.overlap_sum(a, b) for a, b, w in weighted_taps(step, u)), Fraction(0)))
        else:
            total = _weight_total(step, taps)
            if total not in scaled:
                scaled[total] = uniform * total
            overlap.append(scaled[total])
    values = tuple(overlap)
    # One value for every unit, also beyond the borders, when the input's is uniform and every
    # phase of the step shows up among the units.
    if uniform is not None and len(scaled) == 1 and (not isinstance(step, Transposed) or units >= step.stride):
        values = (values[0],)
    return _explicit_map(inner, step, jump, known, causal, lo, hi, values)


def _explicit_map(
    inner: AxisMap,
    step: Step,
    jump: Fraction,
    known: bool,
    causal: bool,
    lo: list[int | None],
    hi: list[int | None],
    overlap: tuple[Fraction, ...],
) -> AxisMap:
    """The map listing every unit's hull (lo[u], hi[u]) of `step` over `inner`."""
    return AxisMap(
        jump,
        len(lo),
        tuple(lo),
        tuple(hi),
        known,
        overlap=overlap,
        explicit=True,
        causal=causal,
        source=Composed(inner, step),
    )


def _explicit_window(inner: AxisMap, step: Window, jump: Fraction, known: bool, units: int, causal: bool) -> AxisMap:
    """_explicit_compose for a window over an explicit map. Away from the borders tap j of unit u is inner
    unit u·stride − before + j·dilation, so each tap is a strided slice of the inner lists and a unit's
    hull the min/max across the taps' slices (the bulk of the work in long stacks); the few units at
    the borders go one by one."""
    s, before, k, d = step.stride, step.before, step.kernel, step.dilation
    span, n = (k - 1) * d, inner.period
    first = max(-(-before // s), 0)  # the first unit whose taps start inside the inner map
    last = min(units - 1, (n - 1 - span + before) // s)  # the last whose taps end inside it
    count = max(last - first + 1, 0)
    uniform = inner.overlap[0] if len(inner.overlap) == 1 else None
    scaled = None if uniform is None else uniform * k
    lo: list[int | None] = []
    hi: list[int | None] = []
    overlap: list[Fraction] = []

    def one_by_one(us: range) -> None:
        for u in us:
            hull, value = _unit(inner, step, u)
            lo.append(None if hull is None else hull[0])
            hi.append(None if hull is None else hull[1])
            overlap.append(value)

    if not count:
        one_by_one(range(units))
    else:
        one_by_one(range(first))
        base, end = first * s - before, (count - 1) * s + 1

        def taps(values: Sequence[T]) -> list[Sequence[T]]:
            return [values[base + j * d : base + j * d + end : s] for j in range(k)]

        lows = taps(inner._lo_keys)
        highs = taps(inner._hi_keys)
        mid_lo = lows[0] if k == 1 else list(map(min, *lows))
        mid_hi = highs[0] if k == 1 else list(map(max, *highs))
        lo.extend(None if v == _FAR else v for v in mid_lo)
        hi.extend(None if v == -_FAR else v for v in mid_hi)
        if scaled is None:
            overlap.extend(sum(values, Fraction(0)) for values in zip(*taps(inner.overlap), strict=True))
        one_by_one(range(last + 1, units))
    values = (scaled,) if scaled is not None else tuple(overlap)
    return _explicit_map(inner, step, jump, known, causal, lo, hi, values)


def compose(
    inner: AxisMap, step: Step, offset_known: bool = True, *, units: int | None = None, causal: bool = False
) -> AxisMap | None:
    """compose_map, with None for every reason a map cannot be computed."""
    result = compose_map(inner, step, offset_known, units=units, causal=causal)
    return result if isinstance(result, AxisMap) else None


def merge(maps: list[AxisMap], *, units: int | None = None) -> AxisMap | Unmapped:
    """The map after an elementwise merge or concat: the hull of the branches, unit by unit.

    Branches whose jumps differ cannot be hulled unit by unit; then the branch with the largest
    receptive field wins (Google's rule), and the caller reports the misalignment. The overlaps
    add up (what a following ones-kernel conv over one channel per branch would see). `units` (the
    merge's size) lets the result list every unit when the branches' common period exceeds MAX_PERIOD
    or a branch is explicit.
    """
    if any(m.is_global for m in maps):
        return GLOBAL
    causal = all(m.causal for m in maps)
    if len({m.jump for m in maps}) > 1 or not all(m.offset_known for m in maps):
        widest = max(maps, key=lambda m: m.rf_max)
        return dataclasses.replace(widest, offset_known=all(m.offset_known for m in maps), causal=causal)
    if not any(m.explicit for m in maps):
        period = math.lcm(*(m.period for m in maps))
        if period <= MAX_PERIOD:
            lo: list[int | None] = []
            hi: list[int | None] = []
            overlap: list[Fraction] = []
            for u in range(period):
                hull = _hull([m.at(u) for m in maps])
                lo.append(None if hull is None else hull[0])
                hi.append(None if hull is None else hull[1])
                overlap.append(sum((m.overlap[u % len(m.overlap)] for m in maps), Fraction(0)))
            return AxisMap(maps[0].jump, period, tuple(lo), tuple(hi), overlap=_uniform(overlap), causal=causal)
    if units is None:
        return Unmapped("period")
    if units > MAX_UNITS:
        return Unmapped("units", units)
    los: list[int | None] = []
    his: list[int | None] = []
    for u in range(units):
        hull = _hull([m.at(u) for m in maps])
        los.append(None if hull is None else hull[0])
        his.append(None if hull is None else hull[1])
    if all(len(m.overlap) == 1 for m in maps):
        values: tuple[Fraction, ...] = (sum((m.overlap[0] for m in maps), Fraction(0)),)
    else:
        values = tuple(sum((m.overlap_at(u) for m in maps), Fraction(0)) for u in range(units))
    return AxisMap(
        maps[0].jump,
        units,
        tuple(los),
        tuple(his),
        overlap=values,
        explicit=True,
        causal=causal,
        source=Merged(tuple(maps)),
    )
