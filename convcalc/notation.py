"""How convcalc writes numbers in words: one notation per meaning, used by every message and view.

- exact rationals (jumps, centres, paddings): `1/2`, `-3/2`, `2`;
- ratios (max over min of overlap counts): `max:min` in lowest terms, `2:1`, `3:2`, `16:9`;
- per-phase counts (taps or windows of each phase, in phase order 0, 1, ...): `1 · 2`;
- shapes and per-axis sizes: `3×224×224`, unknown sizes `?`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction

__all__ = ["MAX_SHOWN_CHARS", "counts_text", "dims_text", "fraction_text", "printable", "ratio_text", "shorten"]

#: Characters of a value echoed in a message before it is cut (see shorten).
MAX_SHOWN_CHARS = 60

#: Characters that would move the cursor, end a line or reorder text if printed raw (bidi overrides and isolates).
_BIDI = frozenset(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C))


def printable(text: str) -> str:
    """`text` with control and bidi-override characters shown as escapes (\\n, \\u202e), so a name can
    never break a line or reverse the text around it (tables, CSV, Markdown, messages; JSON keeps the string).

    >>> printable("a\\nb\\u202ec")
    'a\\\\nb\\\\u202ec'
    """
    if text.isprintable() and not (_BIDI & set(text)):
        return text
    out = []
    for ch in text:
        if ch in _BIDI or not ch.isprintable():
            out.append(ch.encode("unicode_escape").decode("ascii") if ord(ch) < 0x10000 else f"\\U{ord(ch):08x}")
        else:
            out.append(ch)
    return "".join(out)


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


def shorten(text: str, limit: int = MAX_SHOWN_CHARS) -> str:
    """`text` cut to `limit` characters with its length said, so a 2 MB value is not echoed in full.

    >>> shorten("abc"), shorten("x" * 100, 5)
    ('abc', 'xxxxx… (100 characters)')
    """
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} characters)"
