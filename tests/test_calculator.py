"""The one-layer calculator library against hand derivations, published values and brute force.

References: PyTorch's shape formulas as documented in torch/nn/modules/conv.py and pooling.py
(written out independently below), Dumoulin & Visin's relationships, the Distill checkerboard
article's ratios (stride 2, kernel 3: 2 in 1-D, 4 in 2-D) and the overlap maps and parameter
counts in the shared reference conv-arithmetic.md §§1, 3, 5.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcalc import analyze, parse_stack
from convcalc.analysis.calculators import calculate, deconv_same_padding, layer_settings
from convcalc.analysis.explain import explain
from convcalc.analysis.solver import solve
from convcalc.errors import ShapeError, SpecError
from convcalc.geometry.overlap import outer, transposed_counts, window_counts


# -- independent formulas (PyTorch docs), written here rather than imported ----------------------
def torch_conv(i: int, k: int, s: int, p: int, d: int) -> int | None:
    """Conv output size, or None when PyTorch refuses (padded input smaller than the kernel span)."""
    if i + 2 * p < d * (k - 1) + 1:
        return None
    return (i + 2 * p - d * (k - 1) - 1) // s + 1


def torch_deconv(i: int, k: int, s: int, p: int, op: int, d: int) -> int | None:
    if not (op < s or op < d):
        return None
    out = (i - 1) * s - 2 * p + d * (k - 1) + op + 1
    return out if out >= 1 else None


def torch_pool(i: int, k: int, s: int, p: int, d: int, ceil: bool) -> int | None:
    """ATen pooling_output_shape: ceil mode drops a last window starting in the right padding."""
    if p > k // 2:
        return None
    num = i + 2 * p - d * (k - 1) - 1
    out = (num + (s - 1 if ceil else 0)) // s + 1
    if ceil and (out - 1) * s >= i + p:
        out -= 1
    return out if out >= 1 else None


# -- the seed overlap maps, written out literally (conv-arithmetic.md §3.2) -----------------------
SEED_K3 = [
    [1, 2, 1, 2, 1, 2, 1],
    [2, 4, 2, 4, 2, 4, 2],
    [1, 2, 1, 2, 1, 2, 1],
    [2, 4, 2, 4, 2, 4, 2],
    [1, 2, 1, 2, 1, 2, 1],
    [2, 4, 2, 4, 2, 4, 2],
    [1, 2, 1, 2, 1, 2, 1],
]
SEED_K4 = [
    [1, 2, 2, 2, 2, 2, 2, 1],
    [2, 4, 4, 4, 4, 4, 4, 2],
    [2, 4, 4, 4, 4, 4, 4, 2],
    [2, 4, 4, 4, 4, 4, 4, 2],
    [2, 4, 4, 4, 4, 4, 4, 2],
    [2, 4, 4, 4, 4, 4, 4, 2],
    [2, 4, 4, 4, 4, 4, 4, 2],
    [1, 2, 2, 2, 2, 2, 2, 1],
]


def _map(result_kernel: int) -> list[list[int]]:
    r = calculate(layer_settings("deconv", [result_kernel], [2], [1], input_size=[4]))
    counts = [a.overlap.counts for a in r.axes]
    assert all(c is not None for c in counts)
    return [list(row) for row in outer([c.values() for c in counts if c is not None])]


def test_seed_map_kernel3_stride2() -> None:
    assert _map(3) == SEED_K3


def test_seed_map_kernel4_stride2_has_uniform_interior() -> None:
    grid = _map(4)
    assert grid == SEED_K4
    interior = {v for row in grid[1:-1] for v in row[1:-1]}
    assert interior == {4}


def test_seed_ratios_distill() -> None:
    """Distill 2016: stride 2, size 3 has twice the inputs on some outputs in 1-D, four times in 2-D."""
    one_d = calculate(layer_settings("deconv", [3], [2], rank=1))
    two_d = calculate(layer_settings("deconv", [3], [2], rank=2))
    assert one_d.overlap_ratio == 2
    assert two_d.overlap_ratio == 4
    even = calculate(layer_settings("deconv", [4], [2]))
    assert even.overlap_ratio == 1
    assert [d.code for d in even.diagnostics] == []


@pytest.mark.parametrize(
    ("k", "s", "d", "taps", "ratio_1d", "ratio_2d"),
    [
        # conv-arithmetic.md §3.1 table (c_r per residue r, phase 0 = residue 0 without padding)
        (3, 2, 1, (2, 1), Fraction(2), Fraction(4)),
        (4, 2, 1, (2, 2), Fraction(1), Fraction(1)),
        (5, 2, 1, (3, 2), Fraction(3, 2), Fraction(9, 4)),
        (3, 3, 1, (1, 1, 1), Fraction(1), Fraction(1)),
        (4, 3, 1, (2, 1, 1), Fraction(2), Fraction(4)),
        (5, 3, 1, (2, 2, 1), Fraction(2), Fraction(4)),
        (7, 4, 1, (2, 2, 2, 1), Fraction(2), Fraction(4)),
        (3, 2, 2, (3, 0), None, None),
        (4, 2, 2, (4, 0), None, None),
        (3, 4, 2, (2, 0, 1, 0), None, None),
        (3, 3, 2, (1, 1, 1), Fraction(1), Fraction(1)),
    ],
)
def test_phase_table(
    k: int, s: int, d: int, taps: tuple[int, ...], ratio_1d: Fraction | None, ratio_2d: Fraction | None
) -> None:
    r1 = calculate(layer_settings("deconv", [k], [s], dilation=[d], rank=1))
    r2 = calculate(layer_settings("deconv", [k], [s], dilation=[d], rank=2))
    assert r1.axes[0].overlap.taps == taps
    assert r1.overlap_ratio == ratio_1d
    assert r2.overlap_ratio == ratio_2d
    codes = [x.code for x in r2.diagnostics]
    if ratio_1d is None:
        assert codes == ["holes"]
    elif ratio_1d == 1:
        assert codes == []
    else:
        assert codes == ["checkerboard"]
        assert r2.diagnostics[0].data["ratio"] == str(ratio_2d)


def test_distill_1d_patterns() -> None:
    """conv_transpose1d(ones(8), ones(k), stride=2) and the dilated holes case, from §3.1."""
    assert transposed_counts(8, 3, 2).values() == (1, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 1)
    assert transposed_counts(8, 4, 2).values() == (1, 1, *([2] * 14), 1, 1)
    assert transposed_counts(8, 2, 2).values() == (1,) * 16
    assert transposed_counts(6, 3, 2, dilation=2).values() == (1, 0, 2, 0, 3, 0, 3, 0, 3, 0, 3, 0, 2, 0, 1)


def test_output_padding_variant_and_conv_gradient_share_a_pattern() -> None:
    """§3.2: k=3, op=1 on 4×4 gives rows 1 2 1 2 1 2 1 1, and so does the gradient of a strided conv."""
    row = (1, 2, 1, 2, 1, 2, 1, 1)
    r = calculate(layer_settings("deconv", [3], [2], [1], output_padding=[1], input_size=[4], rank=1))
    assert r.axes[0].overlap.counts is not None
    assert r.axes[0].overlap.counts.values() == row
    assert window_counts(8, 4, 3, 2, 1).values() == row
    conv = calculate(layer_settings("conv", [3], [2], [1], input_size=[8], rank=1))
    assert conv.axes[0].overlap.counts is not None
    assert conv.axes[0].overlap.counts.values() == row


# -- sizes against hand derivations ---------------------------------------------------------------
def test_conv_sizes_from_the_reference() -> None:
    # i=32, k=3, s=2, p=1 → floor(31/2)+1 = 16; i=7, k=3, d=2 → k_eff 5 → 3.
    assert calculate(layer_settings("conv", [3], [2], [1], input_size=[32])).output_size == (16, 16)
    r = calculate(layer_settings("conv", [3], dilation=[2], input_size=[7], rank=1))
    assert r.output_size == (3,)
    assert r.axes[0].effective_kernel == 5
    # Conv3d(k=(3,5,1), s=(1,2,3), p=(1,2,0), d=(2,1,1)) on (7,9,10) → (5,5,4).
    r3 = calculate(layer_settings("conv", [3, 5, 1], [1, 2, 3], [1, 2, 0], [2, 1, 1], input_size=[7, 9, 10]))
    assert r3.output_size == (5, 5, 4)
    assert r3.settings.axes == ("D", "H", "W")


def test_deconv_sizes_and_equivalent_conv() -> None:
    # 4×4, k=3, s=2, p=1 → 7×7; op=1 → 8×8; k=4 → 8×8.
    assert calculate(layer_settings("deconv", [3], [2], [1], input_size=[4])).output_size == (7, 7)
    assert calculate(layer_settings("deconv", [3], [2], [1], [1], output_padding=[1], input_size=[4])).output_size == (
        8,
        8,
    )
    r3 = calculate(
        layer_settings("deconv", [3, 4, 2], [2, 2, 3], [1, 1, 0], output_padding=[1, 0, 2], input_size=[4, 5, 6])
    )
    assert r3.output_size == (8, 10, 19)
    # Dumoulin & Visin relationship 14: i'=3 (from i=6, k=3, s=2, p=1, a=1): zero-inserted 5,
    # padding k-p-1 = 1 before and 1 + a = 2 after, stride-1 conv → 6.
    eq = calculate(layer_settings("deconv", [3], [2], [1], output_padding=[1], input_size=[3], rank=1)).axes[0]
    assert eq.equivalent is not None
    assert (eq.equivalent.stretched_size, eq.equivalent.pad_before, eq.equivalent.pad_after) == (5, 1, 2)
    assert eq.equivalent.output_size == eq.output_size == 6


def test_deconv_padding_larger_than_the_kernel_span_crops() -> None:
    # k=1, s=2, p=1, L=4 → output [0,1,0,1,0] (length 5): the equivalent pad is negative (a crop).
    a = calculate(layer_settings("deconv", [1], [2], [1], input_size=[4], rank=1)).axes[0]
    assert a.output_size == 5
    assert a.equivalent is not None
    assert a.equivalent.pad_before == -1
    assert a.overlap.counts is not None
    assert a.overlap.counts.values() == (0, 1, 0, 1, 0)


def test_pool_ceil_mode_rule() -> None:
    # 112, k=3, s=2: floor 55, ceil 56 (last window starts at 110 < 112: kept).
    a = calculate(layer_settings("maxpool", [3], [2], ceil_mode=True, input_size=[112])).axes[0]
    assert (a.output_size, a.floor_output_size, a.last_window_start, a.ceil_dropped) == (56, 55, 110, False)
    # L=5, k=2, s=3, p=1: naive ceil gives 3, the third window would start at 5 = L → dropped → 2.
    r = calculate(layer_settings("maxpool", [2], [3], [1], ceil_mode=True, input_size=[5], rank=1))
    assert r.output_size == (2,)
    assert r.axes[0].ceil_dropped
    assert "ceil-mode-dropped" in [d.code for d in r.diagnostics]
    # Windows [-1, 0] and [2, 3] leave pixels 1 and 4 unread.
    assert r.axes[0].unread == 2
    # Pool stride defaults to the kernel, as in PyTorch.
    assert calculate(layer_settings("avgpool", [2], input_size=[8])).output_size == (4, 4)


def test_receptive_field_growth_and_jump() -> None:
    conv = calculate(layer_settings("conv", [3], [2], [1], [2])).axes[0]
    # k_eff = 2·(3−1)+1 = 5 → RF_out = RF_in + 4·jump_in; jump ×2; centre of output 0 at (5−1)/2 − 1 = 1.
    # As the first layer of its stack: RF 5, jump 2, effective padding 1.
    assert (conv.rf_growth_min, conv.rf_growth_max, conv.field.jump) == (4, 4, Fraction(2))
    assert (conv.field.rf, conv.field.centre, conv.field.padding) == (5, 1, 1)
    # Transposed k=3, s=2: an output reads 1 or 2 consecutive inputs (floor/ceil of k/s):
    # growth 0..1, jump ÷2.
    de = calculate(layer_settings("deconv", [3], [2], [1])).axes[0]
    assert (de.rf_growth_min, de.rf_growth_max, de.field.jump) == (0, 1, Fraction(1, 2))
    assert (de.field.rf_min, de.field.rf) == (1, 2)
    # k=7, s=2: ceil(7/2) = 4, floor(7/2) = 3 inputs → growth 2..3.
    de7 = calculate(layer_settings("deconv", [7], [2])).axes[0]
    assert (de7.rf_growth_min, de7.rf_growth_max) == (2, 3)


def test_same_padding() -> None:
    # Conv stride 1: d(k−1) split, extra after: k=4 → (1, 2); k=4, d=2 → (3, 3).
    same4 = calculate(layer_settings("conv", [4])).axes[0].same_padding
    assert same4 is not None
    assert (same4.before, same4.after, same4.output_padding, same4.native) == (1, 2, 0, True)
    same = calculate(layer_settings("conv", [4], dilation=[2], padding="same", input_size=[9])).axes[0]
    assert same.padding == (3, 3)
    assert same.output_size == 9
    # TF SAME at stride 2 on 224 with k=3: (0, 1), output 112; PyTorch refuses it → an info note.
    tf = calculate(layer_settings("conv", [3], [2], "same", input_size=[224]))
    assert tf.axes[0].padding == (0, 1)
    assert tf.output_size == (112, 112)
    assert "same-strided" in [d.code for d in tf.diagnostics]


@pytest.mark.parametrize(("k", "s", "d"), [(3, 2, 1), (4, 2, 1), (5, 2, 1), (2, 2, 1), (1, 3, 1), (3, 2, 2), (5, 3, 2)])
def test_deconv_same_padding_doubles_every_size(k: int, s: int, d: int) -> None:
    same = deconv_same_padding(k, s, d)
    assert same is not None
    for i in range(1, 12):
        assert torch_deconv(i, k, s, same.before or 0, same.output_padding, d) == s * i


def test_deconv_same_padding_impossible() -> None:
    # k=2, s=1: (i−1) − 2p + 1 + 1 = i needs 2p = 1.
    assert deconv_same_padding(2, 1) is None


def test_params_and_macs_match_published_counts() -> None:
    """conv-arithmetic.md §5 (ptflops convention: transposed conv on its input, bias adds included)."""
    cases = [
        (
            layer_settings("conv", [3], [1], [1], input_size=[32], in_channels=16, out_channels=32),
            4640,
            4_751_360,
        ),
        (
            layer_settings("conv", [3], [2], [1], input_size=[32], in_channels=16, out_channels=32),
            4640,
            1_187_840,
        ),
        (
            layer_settings("conv", [3], [1], [1], input_size=[32], in_channels=32, out_channels=32, groups=32),
            320,
            327_680,
        ),
        (
            layer_settings("conv", [3], [1], [1], input_size=[32], in_channels=16, out_channels=32, groups=4),
            1184,
            1_212_416,
        ),
        (
            layer_settings("deconv", [4], [2], [1], input_size=[16], in_channels=32, out_channels=16),
            8208,
            2_113_536,
        ),
        (
            layer_settings(
                "deconv", [3], [2], [1], output_padding=[1], input_size=[16], in_channels=32, out_channels=16
            ),
            4624,
            1_196_032,
        ),
    ]
    for layer, params, macs in cases:
        r = calculate(layer)
        assert (r.params, r.macs) == (params, macs)


# -- refusals -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"kind": "conv", "kernel": [3], "stride": [0]}, "stride"),
        ({"kind": "conv", "kernel": [0]}, "kernel"),
        ({"kind": "conv", "kernel": [3], "padding": [-1]}, "padding"),
        ({"kind": "conv", "kernel": [3], "input_size": [-4]}, "input_size"),
        ({"kind": "conv", "kernel": [3, 5], "input_size": [4, 4, 4]}, "kernel"),
        ({"kind": "conv", "kernel": [3, 3, 3, 3]}, "kernel"),
        ({"kind": "deconv", "kernel": [3], "stride": [2], "padding": "same", "output_padding": [1]}, "output_padding"),
        ({"kind": "avgpool", "kernel": [3], "dilation": [2]}, "dilation"),
        ({"kind": "conv", "kernel": [3], "ceil_mode": True}, "ceil_mode"),
        ({"kind": "conv", "kernel": [3], "output_padding": [1]}, "output_padding"),
    ],
)
def test_refusals_name_the_parameter(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(SpecError) as info:
        layer_settings(**kwargs)  # type: ignore[arg-type]
    assert info.value.problems[0].parameter == field


@pytest.mark.parametrize(
    ("kwargs", "yaml", "field"),
    [
        (
            {"kind": "deconv", "kernel": [3], "stride": [2], "output_padding": [2]},
            "{op: deconv, kernel: 3, stride: 2, output_padding: 2}",
            "output_padding",
        ),
        ({"kind": "maxpool", "kernel": [3], "padding": [2]}, "{op: maxpool, kernel: 3, padding: 2}", "padding"),
        (
            {"kind": "conv", "kernel": [3], "in_channels": 6, "out_channels": 4, "groups": 4},
            "{op: conv, out: 4, kernel: 3, groups: 4}",
            "groups",
        ),
    ],
)
def test_refusals_of_the_analysis_are_the_stack_files(kwargs: dict[str, object], yaml: str, field: str) -> None:
    """What PyTorch refuses on any input is refused by the same analysis, in the same words, as in a stack
    file whose input sizes are unknown."""
    with pytest.raises(ShapeError) as info:
        calculate(layer_settings(**kwargs))  # type: ignore[arg-type]
    (problem,) = info.value.problems
    assert problem.parameter == field
    channels = kwargs.get("in_channels", 1)
    with pytest.raises(ShapeError) as stack:
        analyze(parse_stack(f"input: [{channels}, null, null]\nlayers:\n  - {yaml}\n"))
    assert stack.value.problems[0].field == field
    assert stack.value.problems[0].message == problem.message


def test_output_padding_below_dilation_is_legal() -> None:
    # s=1, d=2, op=1 is legal in PyTorch: L=3, k=2 → 6.
    r = calculate(layer_settings("deconv", [2], [1], output_padding=[1], dilation=[2], input_size=[3], rank=1))
    assert r.output_size == (6,)


def test_kernel_larger_than_the_padded_input() -> None:
    with pytest.raises(ShapeError) as info:
        calculate(layer_settings("conv", [5], padding=[1], input_size=[2]))
    assert info.value.problems[0].parameter == "kernel"
    assert "smaller than the effective kernel 5" in info.value.problems[0].message


def test_deconv_output_below_one() -> None:
    with pytest.raises(ShapeError) as info:
        calculate(layer_settings("deconv", [1], [1], [3], input_size=[2]))
    assert info.value.problems[0].parameter == "padding"


# -- derivations ----------------------------------------------------------------------------------
def test_explain_deconv_numbers() -> None:
    """The issue's worked numbers: i=3, s=2 → 3 + (3-1)(2-1) = 5; new padding k − p − 1."""
    steps = explain(calculate(layer_settings("deconv", [3], [2], [1], input_size=[3], rank=1)))[0].steps
    insert, pad, conv = steps[0], steps[1], steps[2]
    assert (insert.numbers, insert.result) == (("3 + (3 - 1)*(2 - 1)",), "5")
    assert (pad.formula, pad.numbers, pad.result) == ("p' = k - p - 1", ("3 - 1 - 1",), "1")
    # stride-1 conv on 5 + 1 + 1 with k=3 → 5 = (3−1)·2 − 2 + 3 (PyTorch)
    assert (conv.numbers, conv.result) == (("5 + 1 + 1 - 1*(3 - 1)",), "5")


def test_explain_conv_and_receptive_field() -> None:
    der = explain(calculate(layer_settings("conv", [3], [2], [1], input_size=[224])))
    assert der[0].axes == ("H", "W")
    out, rf, jump = der[0].steps
    # floor((224 + 2 − 2 − 1)/2) + 1 = floor(223/2) + 1 = 112
    assert out.numbers == ("floor((224 + 2*1 - 1*(3 - 1) - 1) / 2) + 1", "floor(223 / 2) + 1", "111 + 1")
    assert out.result == "112"
    assert rf.formula == "RF_out = RF_in + (k_eff - 1)*jump_in"
    assert rf.result == "RF_in + 2*jump_in"
    assert jump.result == "jump_in * 2"


def test_explain_without_size_is_symbolic() -> None:
    steps = explain(calculate(layer_settings("deconv", [3], [2], [1], rank=1)))[0].steps
    # i + (i−1)(2−1) = 2i − 1; + 1 + 1 − 2 → 2i − 1 (k=3, p=1 keeps 2i − 1).
    assert steps[0].result == "2*i - 1"
    assert steps[2].result == "2*i - 1"


# -- solver ---------------------------------------------------------------------------------------
def test_solver_decoder_matches_skip_connection() -> None:
    sol = solve(layer_settings("deconv", [3], [2], input_size=[8]), [16])
    assert sol.solved
    answer = sol.axes[0].exact
    assert [(x.padding, x.output_padding) for x in answer] == [(1, 1)]
    assert torch_deconv(8, 3, 2, 1, 1, 1) == 16


def test_solver_conv_halving() -> None:
    sol = solve(layer_settings("conv", [3], [2], input_size=[224]), [112])
    assert sol.axes[0].exact[0].padding == 1
    assert torch_conv(224, 3, 2, 1, 1) == 112


def test_solver_none_reports_nearest_and_asymmetric() -> None:
    # k=4, s=1 on 10: symmetric padding changes the size by 2 per step: 7, 9, 11, ... never 10.
    ax = solve(layer_settings("conv", [4], input_size=[10], rank=1), [10]).axes[0]
    assert not ax.solved
    assert ax.below is not None
    assert ax.above is not None
    assert (ax.below.output, ax.below.padding, ax.above.output, ax.above.padding) == (9, 1, 11, 2)
    assert ax.asymmetric == (1, 2)  # F.pad(1, 2): 10 + 3 − 4 + 1 = 10


def test_solver_pool_reports_both_ceil_modes() -> None:
    ax = solve(layer_settings("maxpool", [3], [2], input_size=[112], rank=1), [56]).axes[0]
    got = [(x.padding, x.ceil_mode) for x in ax.exact]
    # p=1 with ceil_mode: ceil((112 + 2 - 3)/2) + 1 = 57, the last window starting at 111 < 113.
    assert got == [(0, True), (1, False)]
    for x in ax.exact:
        assert torch_pool(112, 3, 2, x.padding, 1, x.ceil_mode) == 56


def test_solver_needs_the_input_size() -> None:
    with pytest.raises(SpecError):
        solve(layer_settings("conv", [3]), [4])


layers = st.tuples(
    st.integers(1, 40),  # input
    st.integers(1, 7),  # kernel
    st.integers(1, 4),  # stride
    st.integers(1, 3),  # dilation
    st.integers(1, 90),  # target
)


@settings(max_examples=150, deadline=None)
@given(layers)
def test_solver_deconv_brute_force(case: tuple[int, int, int, int, int]) -> None:
    i, k, s, d, target = case
    expected = sorted(
        (p, op) for p in range(0, 200) for op in range(0, max(s, d)) if torch_deconv(i, k, s, p, op, d) == target
    )
    ax = solve(layer_settings("deconv", [k], [s], dilation=[d], input_size=[i], rank=1), [target]).axes[0]
    assert [(x.padding, x.output_padding) for x in ax.exact] == expected
    if not expected:
        reachable = {torch_deconv(i, k, s, p, op, d) for p in range(200) for op in range(max(s, d))} - {None}
        below = [v for v in reachable if v is not None and v < target]
        above = [v for v in reachable if v is not None and v > target]
        assert (ax.below.output if ax.below else None) == (max(below) if below else None)
        assert (ax.above.output if ax.above else None) == (min(above) if above else None)


@settings(max_examples=150, deadline=None)
@given(layers)
def test_solver_conv_laws(case: tuple[int, int, int, int, int]) -> None:
    """Every answer reproduces the target; no smaller padding does; none missed below the largest."""
    i, k, s, d, target = case
    ax = solve(layer_settings("conv", [k], [s], dilation=[d], input_size=[i], rank=1), [target]).axes[0]
    hits = [p for p in range(0, 300) if torch_conv(i, k, s, p, d) == target]
    assert [x.padding for x in ax.exact] == hits
    for x in ax.exact:
        assert torch_conv(i, k, s, x.padding, d) == target
    if ax.exact:
        assert all(torch_conv(i, k, s, p, d) != target for p in range(ax.exact[0].padding))
    elif ax.asymmetric is not None:
        b, a = ax.asymmetric
        assert (i + b + a - d * (k - 1) - 1) // s + 1 == target


@settings(max_examples=100, deadline=None)
@given(layers, st.booleans())
def test_solver_pool_brute_force(case: tuple[int, int, int, int, int], ceil: bool) -> None:
    i, k, s, d, target = case
    ax = solve(
        layer_settings("maxpool", [k], [s], dilation=[d], ceil_mode=ceil, input_size=[i], rank=1), [target]
    ).axes[0]
    expected = {(p, c) for p in range(k // 2 + 1) for c in (False, True) if torch_pool(i, k, s, p, d, c) == target}
    assert {(x.padding, x.ceil_mode) for x in ax.exact} == expected
    assert [x.padding for x in ax.exact] == sorted(x.padding for x in ax.exact)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 30), st.integers(1, 7), st.integers(1, 4), st.integers(0, 4), st.integers(1, 3))
def test_sizes_match_the_documented_formulas(i: int, k: int, s: int, p: int, d: int) -> None:
    """Differential check of every size against the formulas written out in this file."""
    expected = torch_conv(i, k, s, p, d)
    try:
        got = calculate(layer_settings("conv", [k], [s], [p], [d], input_size=[i], rank=1)).output_size
    except ShapeError:
        got = None
    assert got == (None if expected is None else (expected,))
    for op in range(max(s, d)):
        exp = torch_deconv(i, k, s, p, op, d)
        try:
            out = calculate(layer_settings("deconv", [k], [s], [p], [d], [op], input_size=[i], rank=1))
            got = out.output_size
            eq = out.axes[0].equivalent
            assert eq is not None
            assert eq.output_size == exp
            counts = out.axes[0].overlap.counts
            assert counts is not None
            # Every input sends k taps; the ones landing inside the (cropped) output are counted.
            assert sum(counts.values()) <= i * k
        except ShapeError:
            got = None
        assert got == (None if exp is None else (exp,))
    for ceil in (False, True):
        exp = torch_pool(i, k, s, p, d, ceil)
        try:
            got = calculate(
                layer_settings("maxpool", [k], [s], [p], [d], ceil_mode=ceil, input_size=[i], rank=1)
            ).output_size
        except (ShapeError, SpecError):
            got = None
        assert got == (None if exp is None else (exp,))


@settings(max_examples=400, deadline=None)
@given(
    st.integers(1, 40),
    st.integers(1, 30),
    st.integers(1, 7),
    st.integers(1, 5),
    st.integers(1, 3),
    st.integers(-4, 8),
)
def test_periodic_counts_equal_counting_every_pair(
    length: int, n: int, kernel: int, stride: int, dilation: int, offset: int
) -> None:
    """Law: head + period × repeats + tail is the count of (i, j) pairs at every position, counted naively."""
    from convcalc.geometry.overlap import tap_counts

    naive = [
        sum(1 for i in range(n) for j in range(kernel) if x + offset == i * stride + j * dilation)
        for x in range(length)
    ]
    counts = tap_counts(length, n, kernel, stride, dilation, offset)
    assert list(counts.values()) == naive
    assert [counts[x] for x in range(length)] == naive
    assert counts.count(0) == naive.count(0)
    if counts.repeats:
        # Only the borders are stored position by position: the head ends where every tap lands inside.
        assert len(counts.head) <= dilation * (kernel - 1) + abs(offset)


def test_deconv_same_is_written_as_pytorch_takes_it() -> None:
    """`same` on a transposed conv is PyTorch's padding p and output_padding op with (i−1)s − 2p + d(k−1) + op + 1
    = s·i: k3 s2 gives p 1, op 1 (2p − op = 1); k4 s2 gives p 1, op 0 (2p − op = 2)."""
    for kernel, expected in ((3, ((1, 1), 1)), (4, ((1, 1), 0))):
        settings = layer_settings("deconv", [kernel], [2], "same", input_size=[8], rank=1)
        assert (settings.padding[0], settings.output_padding[0]) == expected
        assert calculate(settings).output_size == (16,)


def test_deconv_same_that_pytorch_cannot_write_is_refused() -> None:
    # k2 s1 d1: the total crop d(k−1)+1−s = 1 is odd and output_padding must stay below 1.
    with pytest.raises(ShapeError) as info:
        calculate(layer_settings("deconv", [2], [1], "same", input_size=[8], rank=1))
    assert info.value.problems[0].parameter == "padding"
