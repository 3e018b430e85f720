"""Exact output-size arithmetic for one layer along one spatial axis, as PyTorch 2.x computes it.

Sizes, kernels, strides and paddings are ints in pixels of that axis. Every function raises
`ValueError` with PyTorch's reason when PyTorch would refuse the configuration; callers add the
layer and field. Sources: torch/nn/modules/conv.py and pooling.py docstrings, ATen Pool.h,
Convolution.cpp, UpSample.h, AdaptivePooling.h (see shared reference conv-arithmetic.md §1).
"""

from __future__ import annotations

import math
from fractions import Fraction


def effective_kernel(kernel: int, dilation: int = 1) -> int:
    """Span of a dilated kernel in input pixels: d·(k−1)+1.

    >>> effective_kernel(3, 3)
    7
    """
    return dilation * (kernel - 1) + 1


def conv_output_size(
    size: int, kernel: int, stride: int = 1, before: int = 0, after: int = 0, dilation: int = 1
) -> int:
    """Conv output length: floor((i + before + after − d(k−1) − 1)/s) + 1.

    `before`/`after` are the zero paddings at each end (PyTorch's `padding=p` is p, p).

    >>> conv_output_size(32, 3, 2, 1, 1)
    16
    >>> conv_output_size(7, 3, 1, 0, 0, dilation=2)
    3
    """
    k_eff = effective_kernel(kernel, dilation)
    padded = size + before + after
    if padded < k_eff:
        raise ValueError(
            f"padded input size {padded} (= {size} + {before} + {after}) is smaller than the "
            f"effective kernel {k_eff}; PyTorch: kernel size can't be greater than actual input size"
        )
    return (padded - k_eff) // stride + 1


def same_padding(size: int, kernel: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """TF/Keras SAME padding (before, after): output ceil(i/s), the odd extra pixel after.

    At stride 1 this is exactly PyTorch's padding='same'.

    >>> same_padding(224, 3, 2)
    (0, 1)
    >>> same_padding(10, 4, 1)
    (1, 2)
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + effective_kernel(kernel, dilation) - size, 0)
    return total // 2, total - total // 2


def same_padding_before(size: int | None, kernel: int, stride: int = 1, dilation: int = 1) -> int | None:
    """The left/top SAME padding, or None when it depends on an unknown input size.

    With an unknown size it is still known when every residue of the size modulo the
    stride gives the same value (always at stride 1; Google's rule for s=2 with even k).

    >>> same_padding_before(None, 3, 1)
    1
    >>> same_padding_before(None, 4, 2) is None, same_padding_before(None, 3, 2) is None
    (False, True)
    """
    if size is not None:
        return same_padding(size, kernel, stride, dilation)[0]
    return same_padding_unknown(kernel, stride, dilation)[0]


def same_padding_unknown(
    kernel: int, stride: int = 1, dilation: int = 1, lower: bool = False
) -> tuple[int | None, int | None]:
    """SAME padding (before, after) when the input size is unknown: each side is known when every residue
    of the size modulo the stride gives it the same value, else None. `lower` is ONNX's SAME_LOWER (the
    odd extra pixel before).

    >>> same_padding_unknown(3, 1), same_padding_unknown(4, 1, lower=True), same_padding_unknown(3, 2)
    ((1, 1), (2, 1), (None, 1))
    """
    # The total over residues r = 1..s−1, 0 is max(k_eff − m, 0) for m = 1..s: every integer between the
    # two ends, and halving is monotone, so a side is known exactly when both ends give it (closed form,
    # whatever the stride).
    k_eff = effective_kernel(kernel, dilation)
    low, high = max(k_eff - stride, 0), max(k_eff - 1, 0)
    known_small = low // 2 if low // 2 == high // 2 else None
    known_large = low - low // 2 if low - low // 2 == high - high // 2 else None
    return (known_large, known_small) if lower else (known_small, known_large)


def output_padding_allowed(output_padding: int, stride: int, dilation: int) -> bool:
    """PyTorch's rule for a transposed conv: output_padding below the stride or below the dilation.

    >>> output_padding_allowed(1, 2, 1), output_padding_allowed(1, 1, 1), output_padding_allowed(1, 1, 2)
    (True, False, True)
    """
    return output_padding < stride or output_padding < dilation


def check_output_padding(output_padding: int, stride: int, dilation: int) -> None:
    """Refuse (ValueError, in PyTorch's terms) an output_padding `output_padding_allowed` refuses."""
    if not output_padding_allowed(output_padding, stride, dilation):
        raise ValueError(
            f"output_padding {output_padding} must be smaller than either stride {stride} "
            f"or dilation {dilation} (PyTorch refuses it)"
        )


def deconv_output_size(
    size: int, kernel: int, stride: int = 1, padding: int = 0, output_padding: int = 0, dilation: int = 1
) -> int:
    """Transposed-conv output length: (i−1)s − 2p + d(k−1) + output_padding + 1.

    >>> deconv_output_size(4, 3, 2, 1)
    7
    >>> deconv_output_size(4, 3, 2, 1, 1)
    8
    """
    check_output_padding(output_padding, stride, dilation)
    out = (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1
    if out < 1:
        raise ValueError(f"output size {out} is below 1 (input {size}, padding {padding} crops too much)")
    return out


def check_pool_padding(kernel: int, before: int, after: int) -> None:
    """Refuse pool padding above half the kernel, as PyTorch does whatever the input size (ValueError).

    >>> check_pool_padding(3, 1, 1)
    """
    # PyTorch checks both the raw and the dilated kernel; the raw one binds.
    pad = max(before, after)
    if pad > kernel // 2:
        raise ValueError(
            f"padding {pad} must be at most half of the kernel size ({kernel} // 2 = {kernel // 2}); PyTorch refuses it"
        )


def deconv_same_padding(kernel: int, stride: int, dilation: int = 1) -> tuple[int, int] | None:
    """The symmetric padding p and output_padding op giving a transposed-conv output of exactly s·i, or None.

    (i−1)s − 2p + d(k−1) + op + 1 = s·i  ⇔  2p − op = d(k−1) + 1 − s; the smallest p ≥ 0 that makes op ≥ 0,
    and op must stay below the stride or the dilation (PyTorch's rule): impossible only at stride 1 and
    dilation 1 with an even kernel (an odd total to crop, and no output_padding to make it even).

    >>> deconv_same_padding(3, 2), deconv_same_padding(4, 2), deconv_same_padding(1, 2), deconv_same_padding(2, 1)
    ((1, 1), (1, 0), (0, 1), None)
    """
    need = effective_kernel(kernel, dilation) - stride
    p = max(-(-need // 2), 0)
    op = 2 * p - need
    if not output_padding_allowed(op, stride, dilation):
        return None
    return p, op


def pool_output_size(
    size: int,
    kernel: int,
    stride: int,
    before: int = 0,
    after: int = 0,
    dilation: int = 1,
    ceil_mode: bool = False,
    check_padding: bool = True,
) -> int:
    """Pooling output length, ATen's pooling_output_shape_pad_lr (ceil_mode and its last-window rule).

    With ceil_mode a window that would start in the right padding is dropped. PyTorch pools take
    symmetric padding of at most half the kernel; `check_padding=False` is for convcalc's
    explicit (asymmetric or 'same') pool padding, applied like F.pad before the pool.

    >>> pool_output_size(112, 3, 2, ceil_mode=True), pool_output_size(112, 3, 2)
    (56, 55)
    >>> pool_output_size(5, 2, 3, 1, 1, ceil_mode=True)
    2
    """
    k_eff = effective_kernel(kernel, dilation)
    if check_padding:
        check_pool_padding(kernel, before, after)
    num = size + before + after - k_eff
    out = (num + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + before:
        out -= 1
    if out < 1:
        raise ValueError(
            f"output size {out} is too small (input {size}, effective kernel {k_eff}, padding {before}+{after})"
        )
    return out


def ceil_mode_dropped_window(
    size: int, kernel: int, stride: int, before: int = 0, after: int = 0, dilation: int = 1
) -> bool:
    """True when ceil_mode's last-window rule removes a window that would start in the right padding.

    >>> ceil_mode_dropped_window(5, 2, 3, 1, 1)
    True
    """
    num = size + before + after - effective_kernel(kernel, dilation)
    out = (num + stride - 1) // stride + 1
    return (out - 1) * stride >= size + before


def adaptive_bins(size: int, out: int) -> list[tuple[int, int]]:
    """Half-open input bins [start, end) of adaptive pooling from `size` to `out`.

    >>> adaptive_bins(10, 3)
    [(0, 4), (3, 7), (6, 10)]
    """
    return [((j * size) // out, -((-(j + 1) * size) // out)) for j in range(out)]


def interpolate_output_size(size: int, scale: float) -> int:
    """Output length of F.interpolate with scale_factor: floor(i·scale) computed in double, as ATen does.

    >>> interpolate_output_size(100, 0.29), interpolate_output_size(5, 2.3)
    (28, 11)
    """
    out = math.floor(size * scale)
    if out < 1:
        raise ValueError(f"output size {out} (= floor({size} × {scale})) is below 1")
    return out


def interpolation_ratio(size: int | None, out: int | None, scale: float | None, align_corners: bool) -> Fraction | None:
    """Input pixels per output pixel that ATen's interpolation uses (area_pixel_compute_scale).

    align_corners: (in−1)/(out−1); a given scale_factor: 1/scale; otherwise in/out.
    The scale is taken exactly as written in decimal (1.5 → 3/2), so the ratio is exact.
    Returns None when it depends on an unknown size.

    >>> interpolation_ratio(4, 8, 2.0, False)
    Fraction(1, 2)
    >>> interpolation_ratio(2, 4, None, True)
    Fraction(1, 3)
    """
    if align_corners:
        if size is None or out is None:
            return None
        return Fraction(size - 1, out - 1) if out > 1 else Fraction(0)
    if scale is not None:
        return 1 / Fraction(repr(scale))
    if size is None or out is None:
        return None
    return Fraction(size, out)


def phase_count(residue: int, kernel: int, stride: int, dilation: int = 1) -> int:
    """c_r = #{j < k : j·d ≡ r (mod s)} in closed form, O(1) whatever the kernel and stride.

    With g = gcd(d, s) and s' = s/g only residues divisible by g are reached, and j ↦ j·d mod s runs
    through them once every s' taps: tap j reaches r exactly when j ≡ j₀ = (r/g)·(d/g)⁻¹ (mod s').

    >>> [phase_count(r, 3, 2) for r in range(2)], phase_count(1, 3, 2, 2), phase_count(0, 10**20, 10**9)
    ([2, 1], 0, 100000000000)
    """
    g = math.gcd(dilation, stride)
    r = residue % stride
    if r % g:
        return 0
    period = stride // g
    first = (r // g) * pow(dilation // g, -1, period) % period if period > 1 else 0
    return 0 if first >= kernel else (kernel - 1 - first) // period + 1


def phase_histogram(kernel: int, stride: int, dilation: int = 1) -> dict[int, int]:
    """How many residues r = 0..s−1 get each count c_r (see `phase_count`), in closed form: with
    k = q·s' + m, m of the s' reached residues get q + 1 taps, the other s' − m get q, and the s − s'
    residues not divisible by g = gcd(d, s) get none. Ordered by count, largest first.

    >>> phase_histogram(3, 2), phase_histogram(3, 10**9), phase_histogram(3, 2, 2)
    ({2: 1, 1: 1}, {1: 3, 0: 999999997}, {3: 1, 0: 1})
    """
    g = math.gcd(dilation, stride)
    period = stride // g
    q, m = divmod(kernel, period)
    found: dict[int, int] = {}
    for value, phases in ((q + 1, m), (q, period - m), (0, stride - period)):
        if phases:
            found[value] = found.get(value, 0) + phases
    return found


#: The most output (or input) phases, i.e. the largest stride, whose counts convcalc lists one by one.
MAX_PHASES = 1024


def overlap_counts(kernel: int, stride: int, dilation: int = 1) -> list[int]:
    """Taps of a transposed conv reaching each output phase r = 0..s−1 (away from the borders).

    c_r = #{j < k : j·d ≡ r (mod s)}; uneven counts make checkerboards, a zero makes holes. O(s) (each
    count in closed form); a stride above MAX_PHASES is refused (ValueError): use `phase_histogram`.

    >>> overlap_counts(3, 2), overlap_counts(4, 2), overlap_counts(3, 2, 2)
    ([2, 1], [2, 2], [3, 0])
    """
    check_phases(stride)
    return [phase_count(r, kernel, stride, dilation) for r in range(stride)]


def check_phases(stride: int) -> None:
    """Refuse (ValueError, naming MAX_PHASES) a stride with more phases than convcalc lists one by one."""
    if stride > MAX_PHASES:
        raise ValueError(
            f"stride {stride} is above the {MAX_PHASES} phases convcalc lists one by one (MAX_PHASES); "
            "the per-phase counts are not listed"
        )
