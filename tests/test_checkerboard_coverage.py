"""`checkerboard-compound` reads its per-phase values off the exact path counts of convcalc.geometry.coverage.

Every number here is derived by hand in the test (or is the reference's: conv-arithmetic.md §3.2–3.3, the
seed's 4×4 example, verified there against PyTorch's conv_transpose2d). Notation: a transposed conv
(k, s, p) gives output v the inputs i with v + p = i·s + j, j = 0..k−1; away from the borders every input
unit of the skeleton holds its per-phase value.
"""

from __future__ import annotations

from typing import Any

import yaml

from convcalc.analysis import locate
from convcalc.analysis.engine import analyze
from convcalc.analysis.report import StackReport
from convcalc.format.loader import parse_stack
from convcalc.geometry import coverage

K3S2 = {"op": "deconv", "kernel": 3, "stride": 2, "padding": 1}


def _run(layers: list[dict[str, Any]], shape: list[int]) -> StackReport:
    doc = {"input": shape, "layers": layers}
    return analyze(parse_stack(yaml.safe_dump(doc, sort_keys=False), "cb.yaml"))


def _phases(report: StackReport, name: str, axis: int = 0) -> list[Any]:
    m = report.layer(name).maps[axis]
    assert m is not None
    values = coverage.interior(locate.links(report, axis), name, range(m.period))
    assert values is not None
    return values


def _compound(report: StackReport) -> list[Any]:
    return [d for d in report.diagnostics if d.code == "checkerboard-compound"]


def test_two_k3_s2_deconvs_compound_to_1_3_2_3_in_1d() -> None:
    """First (3, 2, 1): v even reads j = 1 only (1 tap), v odd j = 0 and 2 (2 taps): a = (1, 2).
    Second: b(w) = Σ a((w + 1 − j)/2) over the j with w + 1 − j even: b(0) = a(0) = 1, b(1) = a(1) + a(0) = 3,
    b(2) = a(1) = 2, b(3) = a(2) + a(1) = 3: (1, 3, 2, 3), max:min 3 against the layer's own 2."""
    report = _run([{**K3S2, "name": "up1"}, {**K3S2, "name": "up2"}], [1, 16])
    assert _phases(report, "up1") == [1, 2]
    assert _phases(report, "up2") == [1, 3, 2, 3]
    (note,) = _compound(report)
    assert (note.layer, note.data["ratio"], note.data["own"]) == ("up2", "3", "2")
    assert "per-phase values L: 1 · 3 · 2 · 3; max:min 3:1 (this layer alone 2:1, its input 2:1)" in note.message


def test_in_2d_the_axes_multiply_to_9() -> None:
    report = _run([{**K3S2, "name": "up1"}, {**K3S2, "name": "up2"}], [1, 16, 16])
    (note,) = _compound(report)
    assert (note.data["ratio"], note.data["own"]) == ("9", "4")  # 3·3 and 2·2
    assert "H and W: 1 · 3 · 2 · 3; max:min 9:1 (this layer alone 4:1, its input 4:1)" in note.message


def test_a_stride_1_layer_after_damps_the_compound_pattern() -> None:
    """Then (3, 1, 1): c(w) = b(w − 1) + b(w) + b(w + 1) with b of period 4: c(0) = 3 + 1 + 3 = 7,
    c(1) = 1 + 3 + 2 = 6, c(2) = 3 + 2 + 3 = 8, c(3) = 2 + 3 + 1 = 6: max:min 8:6 = 4:3 (the reference's
    `8 6 7 6`, (8/6)² = 1.78 in 2-D), below its input's 3:1, so no new warning there."""
    report = _run([{**K3S2, "name": "up1"}, {**K3S2, "name": "up2"}, {**K3S2, "name": "smooth", "stride": 1}], [1, 16])
    assert _phases(report, "smooth") == [7, 6, 8, 6]
    assert [d.layer for d in _compound(report)] == ["up2"]
    report_2d = _run(
        [{**K3S2, "name": "up1"}, {**K3S2, "name": "up2"}, {**K3S2, "name": "smooth", "stride": 1}], [1, 16, 16]
    )
    field = report_2d.layer("smooth").field
    assert [f.overlap for f in field] == [_frac(4, 3), _frac(4, 3)]


def test_a_stride_1_conv_between_damps_what_the_second_deconv_compounds() -> None:
    """a = (1, 2); a k3 s1 p1 conv: c(v) = a(v − 1) + a(v) + a(v + 1) = (2 + 1 + 2, 1 + 2 + 1) = (5, 4);
    the second (3, 2, 1): d(0) = c(0) = 5, d(1) = c(1) + c(0) = 9, d(2) = c(1) = 4, d(3) = c(2) + c(1) = 9:
    max:min 9:4 (above its own 2 and its input's 5:4, so a warning, but below the 3:1 without the conv)."""
    mid = {"op": "conv", "name": "mid", "kernel": 3, "padding": 1}
    layers = [{**K3S2, "name": "up1"}, mid, {**K3S2, "name": "up2"}]
    report = _run(layers, [1, 16])
    assert _phases(report, "mid") == [5, 4]
    assert _phases(report, "up2") == [5, 9, 4, 9]
    (note,) = _compound(report)
    assert (note.layer, note.data["ratio"]) == ("up2", "9/4")
    assert "L: 5 · 9 · 4 · 9; max:min 9:4 (this layer alone 2:1, its input 5:4)" in note.message


def test_a_divisible_second_deconv_cancels() -> None:
    """(3, 2, 1) then (4, 2, 1): output w reads the two inputs i with w + 1 − j even, j = 0..3, which are
    neighbours i and i + 1 of phases 0 and 1: a(i) + a(i + 1) = 1 + 2 = 3 for every w; no warning."""
    report = _run([{**K3S2, "name": "up1"}, {**K3S2, "name": "up2", "kernel": 4}], [1, 16])
    assert set(_phases(report, "up2")) == {3}  # over the map's period of 4 phases
    assert _compound(report) == []


def test_the_seed_4x4_example_border_included_and_excluded() -> None:
    """conv-arithmetic.md §3.2: 4×4 ones through a (3, 2, 1) transposed conv of ones is the 7×7 map
    1 2 1 2 1 2 1 / 2 4 2 4 ... (the outer product of 1 2 1 2 1 2 1); with k = 4 it is 8×8 with a flat
    interior of 4 (edges 2, corners 1): a border effect, not a checkerboard, which the interior values
    (unbounded) show: 2 per axis, one phase."""
    k3 = _run([K3S2], [1, 4, 4])
    k4 = _run([{**K3S2, "kernel": 4}], [1, 4, 4])
    for report, row, interior in ((k3, [1, 2, 1, 2, 1, 2, 1], [1, 2]), (k4, [1, 2, 2, 2, 2, 2, 2, 1], [2])):
        links = locate.links(report, 0)
        name = report.output.name
        assert coverage.forward(links, [1] * 4)[name] == row
        grid = [[a * b for b in row] for a in row]
        assert grid[1][:4] == ([2, 4, 2, 4] if len(row) == 7 else [2, 4, 4, 4])
        assert _phases(report, name, 0) == _phases(report, name, 1)
        assert set(_phases(report, name)) == set(interior)
    assert [d.code for d in k3.diagnostics] == ["checkerboard"]
    assert [d.code for d in k4.diagnostics] == []


def test_interior_values_are_none_behind_a_layer_reading_every_unit() -> None:
    """groupnorm's statistics span every position: on an unbounded input the path count is not finite."""
    layers = [K3S2, {"op": "groupnorm", "groups": 1, "name": "norm"}, {**K3S2, "name": "up"}]
    report = _run(layers, [1, 16])
    assert coverage.interior(locate.links(report, 0), "up", [0]) is None
    assert _compound(report) == []


def _frac(a: int, b: int) -> Any:
    from fractions import Fraction

    return Fraction(a, b)
