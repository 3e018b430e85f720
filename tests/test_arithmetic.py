"""Per-axis size arithmetic against PyTorch's verified numbers (shared reference conv-arithmetic.md)."""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from convcalc.geometry import arithmetic as ar


@pytest.mark.parametrize(
    ("size", "k", "s", "p", "d", "expected"),
    [
        (32, 3, 2, 1, 1, 16),  # §1.1 worked example
        (7, 3, 1, 0, 2, 3),  # dilation 2: k_eff 5
        (5, 3, 2, 1, 1, 3),  # Dumoulin & Visin rel. 6
        (6, 3, 2, 1, 1, 3),  # ... and the ambiguity: 6 gives 3 too
        (224, 7, 2, 3, 1, 112),  # ResNet stem
        (224, 11, 4, 2, 1, 55),  # AlexNet conv1
    ],
)
def test_conv_output_size_matches_pytorch_examples(size: int, k: int, s: int, p: int, d: int, expected: int) -> None:
    assert ar.conv_output_size(size, k, s, p, p, d) == expected


def test_conv3d_example_per_axis() -> None:
    """Conv3d(k=(3,5,1), s=(1,2,3), p=(1,2,0), d=(2,1,1)) on (7,9,10) → (5,5,4) [verified in the reference]."""
    got = [
        ar.conv_output_size(i, k, s, p, p, d)
        for i, k, s, p, d in zip((7, 9, 10), (3, 5, 1), (1, 2, 3), (1, 2, 0), (2, 1, 1), strict=True)
    ]
    assert got == [5, 5, 4]


def test_conv_refuses_kernel_larger_than_padded_input() -> None:
    with pytest.raises(ValueError, match=r"padded input size 2 .* effective kernel 3"):
        ar.conv_output_size(2, 3, 1, 0, 0)


@pytest.mark.parametrize(
    ("size", "k", "s", "p", "op", "d", "expected"),
    [
        (4, 3, 2, 1, 0, 1, 7),
        (4, 3, 2, 1, 1, 1, 8),
        (4, 4, 2, 1, 0, 1, 8),
        (3, 2, 1, 0, 1, 2, 6),  # output_padding 1 is legal with stride 1 because dilation is 2
        (3, 3, 2, 1, 1, 1, 6),  # Dumoulin & Visin rel. 14: i'=3 → 6
        (1, 4, 2, 1, 0, 1, 2),
    ],
)
def test_deconv_output_size_matches_pytorch_examples(
    size: int, k: int, s: int, p: int, op: int, d: int, expected: int
) -> None:
    assert ar.deconv_output_size(size, k, s, p, op, d) == expected


def test_deconv3d_example_per_axis() -> None:
    """ConvTranspose3d(k=(3,4,2), s=(2,2,3), p=(1,1,0), op=(1,0,2)) on (4,5,6) → (8,10,19)."""
    got = [
        ar.deconv_output_size(i, k, s, p, op)
        for i, k, s, p, op in zip((4, 5, 6), (3, 4, 2), (2, 2, 3), (1, 1, 0), (1, 0, 2), strict=True)
    ]
    assert got == [8, 10, 19]


def test_deconv_refuses_output_padding_not_below_stride_or_dilation() -> None:
    with pytest.raises(ValueError, match="output_padding 2 must be smaller than either stride 2 or dilation 1"):
        ar.deconv_output_size(4, 3, 2, 1, 2, 1)


@pytest.mark.parametrize(
    ("size", "k", "s", "p", "ceil", "expected"),
    [
        (5, 2, 2, 0, False, 2),
        (5, 2, 2, 0, True, 3),  # the third window starts at 4 < 5: kept
        (5, 2, 3, 1, True, 2),  # naive ceil 3; the third window would start in the right padding
        (7, 2, 3, 1, True, 3),
        (6, 3, 2, 0, True, 3),
        (112, 3, 2, 0, False, 55),
        (112, 3, 2, 0, True, 56),  # GoogLeNet's maxpool1
        (2, 2, 3, 1, True, 1),  # where the MaxPool docstring's double ceil says 2
        (64, 3, 2, 1, True, 33),  # Caffe-style ceil pooling (netscope#25)
    ],
)
def test_pool_output_size_follows_aten(size: int, k: int, s: int, p: int, ceil: bool, expected: int) -> None:
    assert ar.pool_output_size(size, k, s, p, p, 1, ceil) == expected


def test_pool_refuses_padding_above_half_the_kernel() -> None:
    with pytest.raises(ValueError, match="at most half of the kernel size"):
        ar.pool_output_size(9, 3, 1, 2, 2, 2)


def test_ceil_mode_dropped_window_detects_the_last_window_rule() -> None:
    assert ar.ceil_mode_dropped_window(5, 2, 3, 1, 1)
    assert not ar.ceil_mode_dropped_window(5, 2, 2)


@pytest.mark.parametrize(
    ("size", "k", "s", "d", "expected"),
    [
        (224, 3, 2, 1, (0, 1)),
        (225, 3, 2, 1, (1, 1)),
        (6, 3, 2, 1, (0, 1)),
        (224, 7, 2, 1, (2, 3)),
        (13, 6, 5, 1, (1, 2)),
        (10, 4, 1, 1, (1, 2)),  # PyTorch 'same': the extra pixel after
        (10, 4, 1, 2, (3, 3)),
        (10, 2, 1, 3, (1, 2)),
    ],
)
def test_same_padding_matches_tf_and_pytorch(size: int, k: int, s: int, d: int, expected: tuple[int, int]) -> None:
    assert ar.same_padding(size, k, s, d) == expected


def test_same_padding_before_with_unknown_size_follows_googles_rule() -> None:
    assert ar.same_padding_before(None, 1, 2) == 0
    assert ar.same_padding_before(None, 5, 1) == 2
    assert ar.same_padding_before(None, 4, 2) == 1  # s=2, even k: known
    assert ar.same_padding_before(None, 3, 2) is None  # depends on the size's parity


@pytest.mark.parametrize(
    ("size", "out", "bins"),
    [
        (10, 3, [(0, 4), (3, 7), (6, 10)]),
        (5, 3, [(0, 2), (1, 4), (3, 5)]),
        (3, 5, [(0, 1), (0, 2), (1, 2), (1, 3), (2, 3)]),
    ],
)
def test_adaptive_bins_match_aten(size: int, out: int, bins: list[tuple[int, int]]) -> None:
    assert ar.adaptive_bins(size, out) == bins


@pytest.mark.parametrize(("size", "scale", "expected"), [(100, 0.29, 28), (7, 0.7, 4), (5, 2.3, 11), (7, 1 / 3, 2)])
def test_interpolate_floors_in_double_like_aten(size: int, scale: float, expected: int) -> None:
    assert ar.interpolate_output_size(size, scale) == expected


@pytest.mark.parametrize(
    ("k", "s", "d", "counts"),
    [
        (3, 2, 1, [2, 1]),
        (4, 2, 1, [2, 2]),
        (5, 2, 1, [3, 2]),
        (3, 3, 1, [1, 1, 1]),
        (4, 3, 1, [2, 1, 1]),
        (5, 3, 1, [2, 2, 1]),
        (7, 4, 1, [2, 2, 2, 1]),
        (3, 2, 2, [3, 0]),
        (4, 2, 2, [4, 0]),
        (3, 4, 2, [2, 0, 1, 0]),
        (3, 3, 2, [1, 1, 1]),
    ],
)
def test_overlap_counts_match_the_reference_table(k: int, s: int, d: int, counts: list[int]) -> None:
    assert ar.overlap_counts(k, s, d) == counts


sizes = st.integers(1, 300)
kernels = st.integers(1, 9)
strides = st.integers(1, 5)
dilations = st.integers(1, 4)


@given(sizes, kernels, strides, st.integers(0, 4), dilations)
def test_deconv_with_the_right_output_padding_inverts_conv(i: int, k: int, s: int, p: int, d: int) -> None:
    """Dumoulin & Visin rel. 14: output_padding a = (i + 2p − k_eff) mod s restores the conv's input size."""
    k_eff = d * (k - 1) + 1
    assume(i + 2 * p >= k_eff)
    o = ar.conv_output_size(i, k, s, p, p, d)
    a = (i + 2 * p - k_eff) % s
    assert a < s  # a residue mod s: PyTorch accepts it as output_padding
    assert ar.deconv_output_size(o, k, s, p, a, d) == i


@given(sizes, kernels, strides, dilations)
def test_same_padding_gives_ceil_of_size_over_stride(i: int, k: int, s: int, d: int) -> None:
    before, after = ar.same_padding(i, k, s, d)
    assert ar.conv_output_size(i, k, s, before, after, d) == -(-i // s)
    assert 0 <= after - before <= 1


@given(sizes, kernels, strides, st.integers(0, 3), dilations)
def test_conv_output_size_is_monotone_in_the_input(i: int, k: int, s: int, p: int, d: int) -> None:
    k_eff = d * (k - 1) + 1
    assume(i + 2 * p >= k_eff)
    assert ar.conv_output_size(i + 1, k, s, p, p, d) >= ar.conv_output_size(i, k, s, p, p, d)


@given(st.integers(1, 12), strides, dilations)
def test_overlap_counts_sum_to_the_kernel_and_are_even_iff_divisible(k: int, s: int, d: int) -> None:
    counts = ar.overlap_counts(k, s, d)
    assert sum(counts) == k
    even = len(set(counts)) == 1
    assert even == (k % s == 0 and math.gcd(d, s) == 1)
