"""Overlap of one layer's taps: how many kernel taps land on each position along one axis.

For a transposed conv, output u receives input i through tap j when u + p = i·s + j·d; the number
of such (i, j) pairs is the value `conv_transpose` of a ones input with a ones kernel puts at u.
Away from the borders it depends only on the phase u mod s: uneven counts are the checkerboard
of Odena, Dumoulin and Olah (Distill 2016), a zero count is a hole (the output gets only the
bias). For a conv or pooling window the same counts, per *input* pixel, say how many windows
read it: the pattern the gradient of a strided conv carries. Exact integers, pure Python.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from convcalc.geometry import arithmetic


@dataclass(frozen=True)
class AxisOverlap:
    """The overlap along one axis.

    taps: per phase q = position mod stride, the count away from the borders (for a transposed
    conv the taps reaching output phase q; for a window op the windows reading input phase q).
    ratio: max/min of `taps`, exact; None when some phase gets nothing (`holes`).
    counts: the count at every position of the whole axis (None without an input size).
    """

    taps: tuple[int, ...]
    ratio: Fraction | None
    counts: Counts | None = None

    @property
    def holes(self) -> bool:
        return min(self.taps) == 0

    @property
    def even(self) -> bool:
        return self.ratio == 1


def phase_taps(kernel: int, stride: int, dilation: int = 1, before: int = 0) -> tuple[int, ...]:
    """Counts per phase q = position mod s, for a layer whose padding shifts positions by `before`.

    Position x (output of a transposed conv with padding p = before, or input of a window op with
    left padding `before`) is reached by tap j when x + before ≡ j·d (mod s).

    >>> phase_taps(3, 2, before=1), phase_taps(3, 2), phase_taps(4, 2, before=1)
    ((1, 2), (2, 1), (2, 2))
    """
    by_residue = arithmetic.overlap_counts(kernel, stride, dilation)  # refuses a stride above MAX_PHASES
    return tuple(by_residue[(q + before) % stride] for q in range(stride))


def ratio(taps: Sequence[int]) -> Fraction | None:
    """Uneven-overlap ratio max/min; None when some phase gets no tap at all (holes).

    >>> ratio([2, 1]), ratio([3, 0])
    (Fraction(2, 1), None)
    """
    low = min(taps)
    return None if low == 0 else Fraction(max(taps), low)


def combined_ratio(ratios: Sequence[Fraction | None]) -> Fraction | None:
    """The N-D ratio: counts are an outer product over axes, so the axes' ratios multiply.

    >>> combined_ratio([Fraction(2), Fraction(2)])
    Fraction(4, 1)
    """
    if any(r is None for r in ratios):
        return None
    return math.prod((r for r in ratios if r is not None), start=Fraction(1))


#: Per-position counts are expanded in full up to this many positions (beyond, only head/period/tail).
EXPAND_LIMIT = 1 << 16


@dataclass(frozen=True)
class Counts:
    """A count for every position of a whole axis, stored as a head, one period repeated, and a tail.

    Away from the borders the counts repeat with the stride, so `head + period * repeats + tail` is the
    whole axis while the storage (and the time to build it) stays O(borders + stride), whatever the size.
    """

    head: tuple[int, ...]
    period: tuple[int, ...]
    repeats: int
    tail: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.head) + len(self.period) * self.repeats + len(self.tail)

    def __getitem__(self, x: int) -> int:
        if not 0 <= x < len(self):
            raise IndexError(x)
        if x < len(self.head):
            return self.head[x]
        x -= len(self.head)
        middle = len(self.period) * self.repeats
        if x < middle:
            return self.period[x % len(self.period)]
        return self.tail[x - middle]

    def count(self, value: int) -> int:
        """How many positions hold `value` (e.g. 0: pixels or outputs nothing reaches)."""
        return self.head.count(value) + self.period.count(value) * self.repeats + self.tail.count(value)

    def values(self) -> tuple[int, ...]:
        """Every count in order (refused beyond EXPAND_LIMIT positions: use head/period/tail)."""
        if len(self) > EXPAND_LIMIT:
            raise ValueError(f"{len(self)} positions is more than {EXPAND_LIMIT} to expand")
        return (*self.head, *(self.period * self.repeats), *self.tail)


def tap_counts(length: int, n: int, kernel: int, stride: int, dilation: int = 1, offset: int = 0) -> Counts:
    """For positions x = 0..length−1, the number of pairs (i, j), 0 ≤ i < n, 0 ≤ j < kernel, with
    x + offset = i·stride + j·dilation.

    A transposed conv on n inputs with padding p puts this many taps at output x (offset p); a conv or
    pool with n outputs and left padding `before` reads input pixel x this many times (offset before).
    Positions with every tap's i inside [0, n) hold the phase count; only the borders are counted one by one.

    >>> tap_counts(7, 4, 3, 2, offset=1).values()
    (1, 2, 1, 2, 1, 2, 1)
    >>> c = tap_counts(2 * 10**9 - 1, 10**9, 3, 2, offset=1)
    >>> len(c), c.head, c.period, c.tail, c.count(1)
    (1999999999, (1,), (2, 1), (2, 1), 1000000000)
    """
    span = dilation * (kernel - 1)
    # Interior: x + offset − span ≥ 0 (the last tap's i ≥ 0) and x + offset ≤ (n − 1)·stride (the first tap's
    # i < n).
    lo = max(span - offset, 0)
    hi = min((n - 1) * stride - offset, length - 1)
    g = math.gcd(dilation, stride)
    step = stride // g
    inverse = pow(dilation // g, -1, step) if step > 1 else 0

    def direct(x: int) -> int:
        # Taps j ≡ j₀ (mod s/g) with 0 ≤ i = (x + offset − j·d)/s < n: an arithmetic progression of j in a
        # range, counted in closed form.
        y = x + offset
        if y % g:
            return 0
        first = (y % stride // g) * inverse % step if step > 1 else 0
        low = max(-((n * stride - y - 1) // dilation), 0)  # j·d > y − n·s
        high = min(y // dilation, kernel - 1) if y >= 0 else -1  # j·d ≤ y
        if high < low:
            return 0
        start = low + (first - low) % step
        return 0 if start > high else (high - start) // step + 1

    if hi - lo + 1 < stride:
        check_expand(length)
        return Counts(tuple(direct(x) for x in range(length)), (), 0, ())
    arithmetic.check_phases(stride)
    repeats = (hi - lo + 1) // stride
    tail_start = lo + repeats * stride
    check_expand(lo + length - tail_start)
    by_residue = arithmetic.overlap_counts(kernel, stride, dilation)
    period = tuple(by_residue[(lo + q + offset) % stride] for q in range(stride))
    return Counts(
        tuple(direct(x) for x in range(lo)),
        period,
        repeats,
        tuple(direct(x) for x in range(tail_start, length)),
    )


def check_expand(positions: int) -> None:
    """Refuse (ValueError, naming EXPAND_LIMIT) more border positions than convcalc counts one by one."""
    if positions > EXPAND_LIMIT:
        raise ValueError(
            f"{positions} positions at the borders of the overlap map are more than the {EXPAND_LIMIT} convcalc "
            "counts one by one (EXPAND_LIMIT)"
        )


def transposed_counts(
    size: int, kernel: int, stride: int, padding: int = 0, output_padding: int = 0, dilation: int = 1
) -> Counts:
    """Taps reaching every output position of a transposed conv on `size` inputs.

    Equal to conv_transpose1d(ones(size), ones(kernel), ...) along one axis.

    >>> transposed_counts(4, 3, 2, 1).values()
    (1, 2, 1, 2, 1, 2, 1)
    """
    out = arithmetic.deconv_output_size(size, kernel, stride, padding, output_padding, dilation)
    return tap_counts(out, size, kernel, stride, dilation, padding)


def window_counts(size: int, out: int, kernel: int, stride: int, before: int = 0, dilation: int = 1) -> Counts:
    """Windows reading every input pixel of a conv or pooling layer with `out` outputs.

    This is the gradient of sum(conv(x, ones kernel)) with respect to x along one axis.

    >>> window_counts(8, 4, 3, 2, 1).values()
    (1, 2, 1, 2, 1, 2, 1, 1)
    """
    return tap_counts(size, out, kernel, stride, dilation, before)


def outer(vectors: Sequence[Sequence[int]]) -> tuple[tuple[int, ...], ...]:
    """The 2-D map of the last two axes' count vectors (rows: the first, columns: the second).

    With one axis, a single row. N-D overlap is the outer product of the per-axis counts.

    >>> outer([(1, 2), (1, 2, 1)])
    ((1, 2, 1), (2, 4, 2))
    """
    if len(vectors) == 1:
        return (tuple(vectors[0]),)
    rows, cols = vectors[-2], vectors[-1]
    return tuple(tuple(r * c for c in cols) for r in rows)
