"""Exact receptive fields, one spatial axis at a time, by mapping unit intervals back to the input.

Each layer contributes a *step*: for one output unit, the input units (points or contiguous
ranges) that reach it with a non-zero weight. An `AxisMap` composes the
steps from the stack input to one layer: for every unit u of that layer it gives the hull
[lo(u), hi(u)] of stack-input pixels (Google/Distill convention: positions in the padding count,
borders are ignored). Maps are periodic: lo(u + period) = lo(u) + period·jump, so one period of
output phases describes every unit, including the phase-dependent fields of transposed convs and
upsampling. With integer jumps the period is 1 and the closed forms hold: rf = hi − lo + 1,
P = −lo(0), centre(i) = −P + i·jump + (rf − 1)/2.

Alongside the hulls a map carries the *overlap* of each phase: what a unit of the linear skeleton
of the stack (every kernel all ones, interpolation with its own weights, a ones input) holds away
from the borders — the number of paths from the input. Uneven overlap across phases is the
checkerboard pattern; stacked transposed convs compound it (Odena et al., Distill 2016).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

#: Periods above this are not enumerated (the receptive field is then reported as unknown).
MAX_PERIOD = 4096

Interval = tuple[int, int]


def _floor(x: Fraction) -> int:
    return math.floor(x)


def _ceil(x: Fraction) -> int:
    return math.ceil(x)


@dataclass(frozen=True)
class Window:
    """A sliding window (conv, pooling, pad, pixel_unshuffle): unit u reads u·stride − before + j·dilation."""

    stride: int
    before: int
    kernel: int
    dilation: int = 1

    @property
    def factor(self) -> Fraction:
        return Fraction(self.stride)

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
        s, p, d = self.stride, self.padding, self.dilation
        return [((u + p - j * d) // s,) * 2 for j in range(self.kernel) if (u + p - j * d) % s == 0]


@dataclass(frozen=True)
class Resample:
    """Index-mapped resampling with `ratio` input pixels per output pixel.

    kind: "nearest" (src = floor(u·ratio); also pixel_shuffle), "linear" (half-pixel source
    ratio·(u + ½) − ½, reads floor and ceil of it: one pixel when the weight of the other is
    exactly 0), "linear_ac" (align_corners: source ratio·u), "bins" (adaptive pooling:
    [floor(u·ratio), ceil((u+1)·ratio))).
    """

    ratio: Fraction
    kind: Literal["nearest", "linear", "linear_ac", "bins"]

    @property
    def factor(self) -> Fraction:
        return self.ratio

    def taps(self, u: int) -> list[Interval]:
        r = self.ratio
        if self.kind == "nearest":
            return [(_floor(u * r),) * 2]
        if self.kind == "bins":
            return [(_floor(u * r), _ceil((u + 1) * r) - 1)]
        src = r * u if self.kind == "linear_ac" else r * (u + Fraction(1, 2)) - Fraction(1, 2)
        return [(_floor(src), _ceil(src))]


Step = Window | Transposed | Resample

#: One reach of a step: input units a..b, each with this weight in the ones-kernel skeleton.
WeightedTap = tuple[int, int, Fraction]


def weighted_taps(step: Step, u: int) -> list[WeightedTap]:
    """The taps of output unit `u` with their weights when every kernel is all ones.

    Windows and transposed convs sum their taps (weight 1); linear interpolation weights its two
    sources by their distance; adaptive pooling averages its bin.
    """
    if isinstance(step, Resample) and step.kind in ("linear", "linear_ac"):
        r = step.ratio
        src = r * u if step.kind == "linear_ac" else r * (u + Fraction(1, 2)) - Fraction(1, 2)
        low = _floor(src)
        frac = src - low
        taps = [(low, low, 1 - frac)]
        if frac:
            taps.append((low + 1, low + 1, frac))
        return taps
    if isinstance(step, Resample) and step.kind == "bins":
        ((a, b),) = step.taps(u)
        return [(a, b, Fraction(1, b - a + 1))]
    return [(a, b, Fraction(1)) for a, b in step.taps(u)]


@dataclass(frozen=True)
class AxisMap:
    """For each unit of a layer (one axis), the hull of stack-input pixels that reach it.

    `lo`/`hi` hold one period of units (None where a phase receives no input at all).
    `offset_known` is False when an upstream padding depends on an unknown input size: the
    widths are still right but the absolute positions are not. `is_global` means every unit
    sees the whole input (flatten, linear, global pooling, broadcasting).
    """

    jump: Fraction
    period: int
    lo: tuple[int | None, ...]
    hi: tuple[int | None, ...]
    offset_known: bool = True
    is_global: bool = False
    overlap: tuple[Fraction, ...] = (Fraction(1),)

    def overlap_sum(self, a: int, b: int) -> Fraction:
        """Total skeleton overlap of units a..b (the overlap is periodic with the map)."""
        n = len(self.overlap)
        if a == b:
            return self.overlap[a % n]
        full, rest = divmod(b - a + 1, n)
        total = full * sum(self.overlap, Fraction(0)) if full else Fraction(0)
        return total + sum((self.overlap[(a + i) % n] for i in range(rest)), Fraction(0))

    @property
    def overlap_ratio(self) -> Fraction | None:
        """max/min of the overlap over one period (1 = even); None when some phase gets nothing."""
        low = min(self.overlap)
        return max(self.overlap) / low if low > 0 else None

    def at(self, u: int) -> Interval | None:
        """The input hull of unit `u` (any integer: the map extends beyond the borders)."""
        n, phase = divmod(u, self.period)
        lo, hi = self.lo[phase], self.hi[phase]
        if lo is None or hi is None:
            return None
        shift = n * self.period * self.jump
        assert shift.denominator == 1, "period·jump is an integer by construction"
        return lo + int(shift), hi + int(shift)

    def image(self, a: int, b: int) -> Interval | None:
        """The input hull of units a..b.

        lo(u + period) = lo(u) + period·jump with jump > 0, so the smallest lo lies in the first
        period of the range and the largest hi in the last: O(period), exact.
        """
        los = [h[0] for h in (self.at(u) for u in range(a, min(b, a + self.period - 1) + 1)) if h is not None]
        his = [h[1] for h in (self.at(u) for u in range(max(a, b - self.period + 1), b + 1)) if h is not None]
        if not los or not his:
            return None
        return min(los), max(his)

    def widths(self) -> list[int]:
        """RF width of every phase that receives input."""
        return [h - lo + 1 for lo, h in zip(self.lo, self.hi, strict=True) if lo is not None and h is not None]

    @property
    def rf_max(self) -> int:
        return max(self.widths(), default=0)

    @property
    def rf_min(self) -> int:
        return min(self.widths(), default=0)

    def first_reached(self) -> int | None:
        """The first phase that receives input."""
        for phase, lo in enumerate(self.lo):
            if lo is not None:
                return phase
        return None

    @property
    def padding(self) -> Fraction | None:
        """Effective padding P (left/top): how far unit 0's field starts before pixel 0.

        Exactly −lo(0); when phase 0 is a hole, extrapolated from the first reached phase.
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

        For phase-dependent fields, the mean over one period of each unit's hull centre,
        shifted back to unit 0 (with integer jumps: exactly −P + (rf − 1)/2).
        """
        if not self.offset_known:
            return None
        shifts = [
            Fraction(lo + hi, 2) - u * self.jump
            for u, (lo, hi) in enumerate(zip(self.lo, self.hi, strict=True))
            if lo is not None and hi is not None
        ]
        if not shifts:
            return None
        return sum(shifts, Fraction(0)) / len(shifts)


IDENTITY = AxisMap(Fraction(1), 1, (0,), (0,))
GLOBAL = AxisMap(Fraction(1), 1, (0,), (0,), is_global=True)


def compose(inner: AxisMap, step: Step, offset_known: bool = True) -> AxisMap | None:
    """The map of a layer whose input has map `inner` and whose own step is `step`.

    `offset_known=False` says the step's left padding is a stand-in (size-dependent SAME with
    an unknown size). Returns None when the result cannot be known: an unknown offset in front
    of a phase-dependent map, or a period beyond MAX_PERIOD.
    """
    if inner.is_global:
        return inner
    if not offset_known and inner.period > 1:
        return None
    factor = step.factor
    p, q = factor.numerator, factor.denominator
    period = q * inner.period // math.gcd(p, inner.period) if p else q
    if period > MAX_PERIOD:
        return None
    lo: list[int | None] = []
    hi: list[int | None] = []
    overlap: list[Fraction] = []
    for u in range(period):
        hulls = [h for h in (inner.image(a, b) for a, b in step.taps(u)) if h is not None]
        lo.append(min(h[0] for h in hulls) if hulls else None)
        hi.append(max(h[1] for h in hulls) if hulls else None)
        overlap.append(sum((w * inner.overlap_sum(a, b) for a, b, w in weighted_taps(step, u)), Fraction(0)))
    return AxisMap(
        jump=inner.jump * factor,
        period=period,
        lo=tuple(lo),
        hi=tuple(hi),
        offset_known=inner.offset_known and offset_known,
        overlap=tuple(overlap),
    )


def merge(maps: list[AxisMap]) -> AxisMap:
    """The map after an elementwise merge or concat: the hull of the branches, unit by unit.

    Branches whose jumps differ cannot be hulled unit by unit; then the branch with the largest
    receptive field wins (Google's rule), and the caller reports the misalignment. The overlaps
    add up (what a following ones-kernel conv over one channel per branch would see).
    """
    if any(m.is_global for m in maps):
        return GLOBAL
    if len({m.jump for m in maps}) > 1 or not all(m.offset_known for m in maps):
        widest = max(maps, key=lambda m: m.rf_max)
        known = all(m.offset_known for m in maps)
        return AxisMap(widest.jump, widest.period, widest.lo, widest.hi, known, overlap=widest.overlap)
    period = math.lcm(*(m.period for m in maps))
    lo: list[int | None] = []
    hi: list[int | None] = []
    overlap: list[Fraction] = []
    for u in range(period):
        hulls = [h for h in (m.at(u) for m in maps) if h is not None]
        lo.append(min(h[0] for h in hulls) if hulls else None)
        hi.append(max(h[1] for h in hulls) if hulls else None)
        overlap.append(sum((m.overlap[u % m.period] for m in maps), Fraction(0)))
    return AxisMap(maps[0].jump, period, tuple(lo), tuple(hi), overlap=tuple(overlap))
