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

from convcalc import arithmetic


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
    counts: tuple[int, ...] | None = None

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
    by_residue = arithmetic.overlap_counts(kernel, stride, dilation)
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


def transposed_counts(
    size: int, kernel: int, stride: int, padding: int = 0, output_padding: int = 0, dilation: int = 1
) -> tuple[int, ...]:
    """Taps reaching every output position of a transposed conv on `size` inputs.

    Equal to conv_transpose1d(ones(size), ones(kernel), ...) along one axis.

    >>> transposed_counts(4, 3, 2, 1)
    (1, 2, 1, 2, 1, 2, 1)
    """
    out = arithmetic.deconv_output_size(size, kernel, stride, padding, output_padding, dilation)
    counts = [0] * out
    for i in range(size):
        for j in range(kernel):
            u = i * stride + j * dilation - padding
            if 0 <= u < out:
                counts[u] += 1
    return tuple(counts)


def window_counts(size: int, out: int, kernel: int, stride: int, before: int = 0, dilation: int = 1) -> tuple[int, ...]:
    """Windows reading every input pixel of a conv or pooling layer with `out` outputs.

    This is the gradient of sum(conv(x, ones kernel)) with respect to x along one axis.

    >>> window_counts(8, 4, 3, 2, 1)
    (1, 2, 1, 2, 1, 2, 1, 1)
    """
    counts = [0] * size
    for o in range(out):
        for j in range(kernel):
            x = o * stride - before + j * dilation
            if 0 <= x < size:
                counts[x] += 1
    return tuple(counts)


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
