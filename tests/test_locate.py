"""Supports, reach, coverage and the effective receptive field against published and hand-derived numbers."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from convcalc.analysis import locate
from convcalc.analysis.engine import analyze
from convcalc.analysis.report import StackReport
from convcalc.errors import ShapeError, SpecError
from convcalc.format.loader import parse_stack
from convcalc.geometry import coverage as cov
from convcalc.stack.spec import INPUT_NAME
from tests import stacks


def _report(doc: dict[str, Any]) -> StackReport:
    return analyze(parse_stack(yaml.safe_dump(doc), "t.yaml"))


def _dilated(rates: list[int], size: int = 200, k: int = 3) -> StackReport:
    return _report(
        {"input": [1, size], "layers": [{"op": "conv", "kernel": k, "dilation": r, "padding": r} for r in rates]}
    )


def _field(report: StackReport) -> list[int]:
    """The path counts of the centre unit of the last layer, from its first to its last reached pixel."""
    (counts,) = locate.coverage(report)
    hull = cov.hull(counts)
    assert hull is not None
    return [int(c) for c in counts[hull[0] : hull[1] + 1]]


def test_gridding_rates_2_2_2_read_every_other_pixel() -> None:
    # conv-arithmetic.md §4.3 (Wang et al.): K = 3, rates [2, 2, 2].
    assert _field(_dilated([2, 2, 2])) == [1, 0, 3, 0, 6, 0, 7, 0, 6, 0, 3, 0, 1]


@pytest.mark.parametrize(
    ("rates", "rf", "holes"),
    [([1, 2, 5], 17, []), ([1, 2, 9], 25, [7, 8, 16, 17]), ([1, 2, 3], 13, []), ([1, 2, 4, 8], 31, [])],
)
def test_hdc_rates(rates: list[int], rf: int, holes: list[int]) -> None:
    field = _field(_dilated(rates))
    assert len(field) == rf
    assert [i for i, c in enumerate(field) if c == 0] == holes


def test_rates_2_4_8_leave_14_holes() -> None:
    field = _field(_dilated([2, 4, 8]))
    assert (len(field), field.count(0)) == (29, 14)


def test_yu_koltun_context_module() -> None:
    # Yu & Koltun 2016, Table 1: 3×3 dilations 1, 1, 2, 4, 8, 16, 1 then 1×1: RF 3, 5, 9, 17, 33, 65, 67, 67.
    rates = [1, 1, 2, 4, 8, 16, 1]
    layers = [{"op": "conv", "kernel": 3, "dilation": r, "padding": r} for r in rates]
    report = _report({"input": [1, 300], "layers": [*layers, {"op": "conv", "kernel": 1}]})
    widths = []
    for layer in report.layers:
        (counts,) = locate.coverage(report, layer.name)
        hull = cov.hull(counts)
        assert hull is not None
        widths.append(hull[1] - hull[0] + 1)
    assert widths == [3, 5, 9, 17, 33, 65, 67, 67]
    field = _field(report)
    assert 0 not in field
    assert (min(field), max(field)) == (1, 54)


def test_distill_worked_example() -> None:
    # conv-arithmetic.md §4.1 (Araujo et al.): unit 3 of the last layer maps to [2, 24] with these counts.
    layers = [
        {"op": "conv", "kernel": k, "stride": s, "padding": p, "dilation": d}
        for k, s, p, d in [(3, 1, 1, 1), (3, 2, 1, 1), (3, 1, 2, 2), (2, 2, 0, 1), (3, 1, 1, 1)]
    ]
    report = _report({"input": [1, 64], "layers": layers})
    (counts,) = locate.coverage(report, unit=(3,))
    assert cov.hull(counts) == (2, 24)
    assert counts[2:25] == [1, 2, 4, 4, 6, 6, 9, 8, 11, 10, 14, 12, 14, 10, 11, 8, 9, 6, 6, 4, 4, 2, 1]
    assert locate.support(report, (3,)).support == ((2, 24),)
    assert locate.support(report, (3,)).region == ((2, 24),)


def test_stride_induced_holes() -> None:
    report = _report(
        {"input": [1, 30], "layers": [{"op": "conv", "kernel": 1, "stride": 2}, {"op": "conv", "kernel": 3}]}
    )
    assert _field(report) == [1, 0, 1, 0, 1]


def test_support_is_smaller_than_the_clipped_region_behind_a_stride() -> None:
    # Hand derivation: input 8, conv k1 s3 reads pixels 0, 3, 6 (7 is never read); then k3 p1. Unit 2 reads
    # layer-1 units 1, 2 and the padding: pixels 3 and 6. Its region is [3, 9] (the padding counts).
    report = _report(
        {
            "input": [1, 8],
            "layers": [{"op": "conv", "kernel": 1, "stride": 3}, {"op": "conv", "kernel": 3, "padding": 1}],
        }
    )
    found = locate.support(report, (2,))
    assert found.region == ((3, 9),)
    assert found.support == ((3, 6),)
    assert locate.reach(report, (7,)).units == ((),)
    assert locate.reach(report, (6,)).units == (((1, 2),),)


def test_reflect_and_circular_padding_bring_pixels_from_the_other_side() -> None:
    # Hand derivation, input 6: circular padding 1 makes unit 0 read pixels 5, 0, 1; reflect reads 1, 0, 1.
    circular = _report(
        {"input": [1, 6], "layers": [{"op": "conv", "kernel": 3, "padding": 1, "padding_mode": "circular"}]}
    )
    assert locate.coverage(circular, unit=(0,)) == [[1, 1, 0, 0, 0, 1]]
    reflect = _report({"input": [1, 6], "layers": [{"op": "pad", "padding": [[2, 0]], "mode": "reflect"}]})
    assert locate.coverage(reflect, unit=(0,)) == [[0, 0, 1, 0, 0, 0]]
    assert locate.support(reflect, (0,)) == locate.Support("pad1", (0,), ((-2, -2),), ((2, 2),))


def test_a_unit_in_the_padding_only_sees_nothing() -> None:
    report = _report({"input": [1, 4, 4], "layers": [{"op": "conv", "kernel": 1, "padding": 1}]})
    found = locate.support(report, (0, 2))
    assert found.support == (None, None)
    assert found.region == ((-1, -1), (1, 1))


def test_bilinear_weights_are_exact_fractions() -> None:
    # Half-pixel linear upsampling by 2: output unit 3 reads source 1.25: 3/4 of pixel 1 and 1/4 of pixel 2.
    report = _report({"input": [1, 4], "layers": [{"op": "upsample", "scale": 2, "mode": "linear"}]})
    assert locate.coverage(report, unit=(3,)) == [[0, Fraction(3, 4), Fraction(1, 4), 0]]


def test_global_layers_see_every_pixel() -> None:
    report = _report({"input": [2, 5, 3], "layers": [{"op": "flatten"}, {"op": "linear", "out": 2}]})
    assert locate.coverage(report, unit=()) == [[1] * 5, [1] * 3]
    assert locate.support(report, ()).support == ((0, 4), (0, 2))


def test_requests_outside_the_layer_are_refused() -> None:
    report = _dilated([1])
    with pytest.raises(SpecError, match="outside layer"):
        locate.support(report, (200,))
    with pytest.raises(SpecError, match="1 spatial axis, but the unit gives 2"):
        locate.support(report, (1, 2))
    with pytest.raises(SpecError, match="outside the input"):
        locate.reach(report, (-1,))
    unknown = analyze(parse_stack("input: [1, null]\nlayers: [{op: conv, kernel: 3}]\n", "u.yaml"))
    with pytest.raises(SpecError, match="input size is unknown"):
        locate.coverage(unknown)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stacks.stack(rank=1, max_layers=5, size_range=(4, 24), every_op=True), st.data())
def test_reach_is_the_inverse_of_coverage(doc: dict[str, Any], data: st.DataObject) -> None:
    """Walking forward from pixel p and back from unit u count the same paths; p reaches u iff the coverage
    of u is non-zero at p, and then p lies in u's support (which is contiguous iff the coverage has no hole
    inside it: then p ∈ support(u) is the whole condition)."""
    try:
        report = _report(doc)
    except ShapeError:
        report = None
    assume(report is not None)
    assert report is not None
    n = int(report.input.spatial[0])  # type: ignore[arg-type]
    pixel = data.draw(st.integers(0, n - 1))
    chain = locate.links(report, 0)
    forward = cov.paths_forward(chain, pixel, n)
    reach = locate.reach(report, (pixel,))
    for layer in report.layers:
        size = len(forward[layer.name])
        reached = {u for a, b in locate.reach(report, (pixel,), layer.name).units[0] for u in range(a, b + 1)}
        for u in range(size):
            counts = cov.paths_back(chain, layer.name, u)[INPUT_NAME]
            assert forward[layer.name][u] == counts[pixel]
            unit = (u,) if layer.output.spatial else ()
            support = locate.support(report, unit, layer.name).support[0]
            assert (u in reached) == (counts[pixel] != 0)
            if u in reached:
                assert support is not None
                assert support[0] <= pixel <= support[1]
            elif support is not None and 0 not in counts[support[0] : support[1] + 1]:
                assert not support[0] <= pixel <= support[1]
    assert reach.layer == report.output.name


@settings(deadline=None)
@given(st.integers(1, 8), st.integers(1, 7))
def test_erf_variance_law(n: int, k: int) -> None:
    """n stacked k-wide stride-1 unit kernels: the path counts are the n-fold convolution of a box of k,
    a sum of n independent uniforms on k points, each of variance (k² − 1)/12."""
    report = _report({"input": [1, 8 * n * k], "layers": [{"op": "conv", "kernel": k} for _ in range(n)]})
    (counts,) = locate.coverage(report)
    found = locate.spread(counts)
    assert found is not None
    assert found.variance == Fraction(n * (k * k - 1), 12)
    assert found.total == k**n


def test_spread_radius_by_hand() -> None:
    found = locate.spread([0, 1, 2, 1])
    assert found is not None
    assert (found.mean, found.variance) == (2, Fraction(1, 2))
    # Mass 4: the centre alone holds 2 (50 %); 90 % and 99 % need distance 1 (all 4).
    assert found.radius == ((50, 0), (90, 1), (99, 1))
    assert locate.spread([0, 0]) is None


# Branch a pads H by one (its first row sees only padding) and reads 3 columns; branch b reads 1 column.
# Unit (0, 3) of the add: a brings nothing (row 0 is padding), so only b's column 3 reaches it, but along W
# alone a's columns 2..3 count: the per-axis hull is an upper bound, and says so.
UPPER_BOUND = {
    "input": [1, 4, 4],
    "layers": [
        {"op": "conv", "name": "a", "kernel": [1, 3], "padding": [[1, 1], [1, 1]]},
        {"op": "conv", "name": "b", "from": "input", "kernel": [3, 1], "padding": [[2, 2], [0, 0]]},
        {"op": "add", "name": "sum", "from": ["a", "b"]},
    ],
}


def test_support_behind_a_merge_with_an_empty_branch_unit_is_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit (0, 3) of `sum`. Branch a (kernel 1×3, padding 1): along H, unit 0 reads row −1, zero padding, so
    a brings nothing at all, though along W it reads columns 2..4 → 2..3. Branch b (kernel 3×1, padding 2
    along H): rows −2..0 → 0, column 3. The exact 2-D support is b's alone: ((0, 0), (3, 3)); the
    per-axis walk unites a's columns in, ((0, 0), (2, 3)), the upper bound given when the products are
    too many (MAX_TERMS)."""
    report = _report(UPPER_BOUND)
    found = locate.support(report, (0, 3))
    assert found.exact
    assert found.support == ((0, 0), (3, 3))
    monkeypatch.setattr(cov, "MAX_TERMS", 0)
    bound = locate.support(report, (0, 3))
    assert not bound.exact
    assert bound.support == ((0, 0), (2, 3))
    one_d = {
        "input": [1, 4],
        "layers": [
            {"op": "conv", "name": "a", "kernel": 1, "padding": 1},
            {"op": "conv", "name": "b", "from": "input", "kernel": 3, "padding": 2},
            {"op": "add", "name": "sum", "from": ["a", "b"]},
        ],
    }
    assert locate.support(_report(one_d), (0,)) == locate.Support("sum", (0,), ((-2, 0),), ((0, 0),))  # 1-D: exact
