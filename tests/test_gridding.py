"""The `gridding` diagnostic: holes inside an interior unit's receptive field, from exact coverage."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings

from convcalc.analysis import gridding, locate
from convcalc.analysis.engine import analyze
from convcalc.analysis.report import StackReport
from convcalc.errors import ShapeError
from convcalc.format.loader import parse_stack
from tests import stacks


def _report(doc: dict[str, Any]) -> StackReport:
    return analyze(parse_stack(yaml.safe_dump(doc), "t.yaml"))


def _dilated(rates: list[int], rank: int = 2, size: int = 64) -> StackReport:
    layers = [{"op": "conv", "kernel": 3, "dilation": r, "padding": r} for r in rates]
    return _report({"input": [1] + [size] * rank, "layers": layers})


def _gridding(report: StackReport) -> list[Any]:
    return [d for d in report.diagnostics if d.code == "gridding"]


def test_rates_2_2_2_read_every_other_pixel() -> None:
    # conv-arithmetic.md §4.3: 1 0 3 0 6 0 7 0 6 0 3 0 1 — 6 of 13 never read per axis, 120 of 169 in 2-D.
    (found,) = _gridding(_dilated([2, 2, 2]))
    assert found.layer == "conv3"
    assert found.severity == "warning"
    assert (found.data["width"], found.data["read"], found.data["period"]) == ([13, 13], [7, 7], [2, 2])
    assert found.data["layers"] == ["conv1", "conv2", "conv3"]
    assert "in 2-D 120 of 169" in found.message
    assert "1, 2, 5" in found.message
    assert found.data["hdc_m2"] == 2  # HDC passes [2, 2, 2] (it ignores r_1), yet it has holes


@pytest.mark.parametrize("rates", [[1, 2, 5], [1, 2, 3], [1, 2, 4, 8], [1, 1, 2, 4, 8, 16, 1]])
def test_hole_free_rates_get_no_warning(rates: list[int]) -> None:
    assert _gridding(_dilated(rates)) == []


def test_rates_1_2_9() -> None:
    # Holes at offsets 7, 8, 16, 17 of 25; HDC M_2 = 5 > K = 3 (Wang et al.'s example of a failing design).
    (found,) = _gridding(_dilated([1, 2, 9], rank=1))
    assert (found.data["width"], found.data["read"], found.data["period"]) == ([25], [21], [1])
    assert found.data["hdc_m2"] == 5
    assert "HDC M_2 = 5 > K = 3" in found.message


def test_a_stride_that_skips_pixels() -> None:
    layers = [{"op": "conv", "kernel": 1, "stride": 2}, {"op": "conv", "kernel": 3}]
    (found,) = _gridding(_report({"input": [1, 30], "layers": layers}))
    assert (found.data["width"], found.data["read"], found.data["period"]) == ([5], [3], [2])
    assert "a kernel at least as large as the stride" in found.message


def test_the_warning_goes_where_the_holes_end() -> None:
    # [2, 2] then a plain 3×3: the holes (one pixel in 2) are filled by conv3, so conv2 carries the warning.
    report = _dilated([2, 2, 1])
    assert [d.layer for d in _gridding(report)] == ["conv2"]


def test_hdc_values() -> None:
    # conv-arithmetic.md §4.3 [verified by script].
    assert [gridding.hdc_m2(r) for r in ([1, 2, 5], [1, 2, 9], [1, 2, 3], [2, 4, 8], [1, 2, 4, 8])] == [2, 5, 2, 4, 2]
    assert gridding.hdc_m2([3]) is None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stacks.stack(rank=1, max_layers=5, size_range=(300, 400)))
def test_interior_mask_is_the_non_zero_set_of_exact_coverage(doc: dict[str, Any]) -> None:
    """For the centre unit of every layer whose field lies inside the input, the interior read set is
    the non-zero set of its exact path counts."""
    try:
        report = _report(doc)
    except ShapeError:
        report = None
    assume(report is not None)
    assert report is not None
    masks = gridding.interior_masks(report.layers, 1)
    checked = 0
    for layer in report.layers:
        mask = masks[layer.name][0]
        if mask is None or not layer.output.spatial:
            continue
        unit = locate.centre_unit(layer)
        region = layer.region(unit)
        assert region is not None
        hull = region[0]
        if hull is None or hull[0] < 0 or hull[1] >= int(report.input.spatial[0]):  # type: ignore[arg-type]
            continue
        (counts,) = locate.coverage(report, layer.name, unit)
        read = [p - hull[0] for p, c in enumerate(counts) if c]
        assert read == [i for i in range(mask[0].bit_length()) if mask[0] >> i & 1], layer.name
        assert mask[1] == region[0][0] - unit[0] * int(layer.field[0].jump)  # type: ignore[arg-type]
        checked += 1
    assume(checked > 0)
