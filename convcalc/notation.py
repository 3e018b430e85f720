"""How convcalc writes numbers in words: one notation per meaning, used by every message and view.

- exact rationals (jumps, centres, paddings): `1/2`, `-3/2`, `2`;
- ratios (max over min of overlap counts): `max:min` in lowest terms, `2:1`, `3:2`, `16:9`;
- per-phase counts (taps or windows of each phase, in phase order 0, 1, ...): `1 · 2`;
- shapes and per-axis sizes: `3×224×224`, unknown sizes `?`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction

__all__ = ["counts_text", "dims_text", "fraction_text", "ratio_text"]


def fraction_text(x: Fraction | int) -> str:
    """An exact rational as text: '2', '1/2', '-3/2'.

    >>> fraction_text(Fraction(-3, 2)), fraction_text(4)
    ('-3/2', '4')
    """
    x = Fraction(x)
    return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"


def ratio_text(x: Fraction | int | None) -> str:
    """A max/min ratio as `max:min` in lowest terms; 'holes' when the minimum is 0 (None).

    >>> ratio_text(Fraction(3, 2)), ratio_text(4), ratio_text(Fraction(16, 9)), ratio_text(None)
    ('3:2', '4:1', '16:9', 'holes')
    """
    if x is None:
        return "holes"
    x = Fraction(x)
    return f"{x.numerator}:{x.denominator}"


def counts_text(counts: Sequence[int | Fraction]) -> str:
    """Per-phase counts in phase order, separated by a middle dot: '1 · 2'.

    >>> counts_text([1, 2]), counts_text([Fraction(3, 2), 1])
    ('1 · 2', '3/2 · 1')
    """
    return " · ".join(fraction_text(Fraction(c)) for c in counts)


def histogram_text(histogram: Mapping[int, int]) -> str:
    """Per-phase counts too many to list, as each count with its number of phases: '1 at 3 phases, 0 at 7'.

    >>> histogram_text({1: 3, 0: 999999997})
    '1 at 3 phases, 0 at 999999997 phases (of 1000000000)'
    """
    parts = [f"{count} at {phases} phase{'s' if phases > 1 else ''}" for count, phases in histogram.items()]
    return f"{', '.join(parts)} (of {sum(histogram.values())})"


def dims_text(dims: Sequence[int | None], sep: str = "×") -> str:
    """Sizes joined with ×, unknown ones as '?': 3×224×224.

    >>> dims_text([3, None, 224])
    '3×?×224'
    """
    return sep.join("?" if d is None else str(d) for d in dims)
