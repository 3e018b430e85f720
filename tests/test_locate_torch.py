"""Support, reach and coverage against autograd (skipped without torch).

The support of a unit must be the hull of the input pixels with a non-zero gradient through the positive
skeleton, for every unit, border units included; the coverage must be the gradient through the all-ones
skeleton (the number of paths, exact in float64 for these small counts).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st

from convcalc.analysis import locate
from convcalc.analysis.engine import analyze
from convcalc.analysis.report import StackReport
from convcalc.errors import ShapeError
from convcalc.format.loader import parse_stack
from convcalc.stack.spec import StackSpec
from tests import stacks

torch = pytest.importorskip("torch")
from tests import torch_oracle  # noqa: E402  (needs torch)

pytestmark = pytest.mark.torch


def _parse(doc: dict[str, Any]) -> StackSpec:
    return parse_stack(yaml.safe_dump(doc), "random.yaml")


def _report(spec: StackSpec) -> StackReport | None:
    try:
        return analyze(spec)
    except ShapeError:
        return None


def _slim(spec: StackSpec) -> StackSpec:
    """One channel everywhere (convs out 1, groups 1): supports and path counts do not depend on channels,
    but a sum over channels of the gradient is a path count only when each tensor has one channel."""
    layers = tuple(
        dataclasses.replace(layer, out=1, groups=1) if layer.op in ("conv", "deconv") else layer  # type: ignore[call-arg]
        for layer in spec.layers
    )
    return dataclasses.replace(spec, layers=layers, input=dataclasses.replace(spec.input, channels=1))


def _all_units(report: StackReport, name: str, limit: int = 400) -> list[tuple[int, ...]]:
    spatial = [int(n) for n in report.layer(name).output.spatial if n is not None]
    units = list(itertools.product(*(range(n) for n in spatial)))
    if len(units) > limit:  # every border unit, and interior units spread evenly
        border = [u for u in units if any(i in (0, 1, n - 2, n - 1) for i, n in zip(u, spatial, strict=True))]
        step = max(len(units) // limit, 1)
        units = sorted(set(border) | set(units[::step]))
    return units


def _check_supports(spec: StackSpec, report: StackReport, limit: int = 400) -> int:
    # Channel ops fix their channel counts (a split of 1 channel is refused): those stacks run as written.
    fixed = ("pixel_shuffle", "pixel_unshuffle", "split", "chunk", "slice", "channel_shuffle")
    slim = spec if any(layer.op in fixed for layer in spec.layers) else _slim(spec)
    checked = 0
    for layer in report.layers:
        units = _all_units(report, layer.name, limit)
        # In batches: each unit is one batch item of the whole forward pass.
        hulls = [
            h
            for i in range(0, len(units), 32)
            for h in torch_oracle.autograd_field(slim, layer.name, units[i : i + 32])
        ]
        for unit, hull, found in zip(units, hulls, locate.supports(report, units, layer.name), strict=True):
            expected = tuple(None if h == (0, -1) else h for h in hull)
            if None in expected:
                expected = tuple(None for _ in expected)
            if found.exact:
                assert found.support == expected, f"{layer.name} unit {unit}: autograd {expected}, {found}"
            else:  # an upper bound
                for got, want in zip(found.support, expected, strict=True):
                    assert want is None or (got is not None and got[0] <= want[0] and want[1] <= got[1])
            checked += 1
    return checked


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stacks.stack(rank=1, max_layers=5, size_range=(6, 40), every_op=True))
@example(  # a stride that skips the last pixel, then padding: the support is smaller than the clipped region
    {"input": [1, 8], "layers": [{"op": "conv", "kernel": 1, "stride": 3}, {"op": "conv", "kernel": 3, "padding": 1}]}
)
@example(  # reflect and circular padding bring real pixels from the other side
    {
        "input": [1, 9],
        "layers": [
            {"op": "conv", "kernel": 3, "padding": 2, "padding_mode": "circular"},
            {"op": "pad", "padding": [[3, 1]], "mode": "reflect"},
            {"op": "conv", "kernel": 2, "stride": 2},
        ],
    }
)
def test_support_is_the_autograd_hull_of_every_unit_1d(doc: dict[str, Any]) -> None:
    spec = _parse(doc)
    report = _report(spec)
    assume(report is not None)
    assert report is not None
    assert _check_supports(spec, report) > 0


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stacks.stack(rank=2, max_layers=4, size_range=(5, 16), every_op=True))
def test_support_is_the_autograd_hull_of_every_unit_2d(doc: dict[str, Any]) -> None:
    """Every border unit and interior units spread over each layer (upsampled layers are large)."""
    spec = _parse(doc)
    report = _report(spec)
    assume(report is not None)
    assert report is not None
    assume(all(math.prod(n or 1 for n in layer.output.spatial) <= 4096 for layer in report.layers))
    assert _check_supports(spec, report, limit=150) > 0


def _coverage_grid(report: StackReport, name: str, unit: tuple[int, ...]) -> Any:
    maps = locate.coverage(report, name, unit)
    grid = torch.tensor([float(c) for c in maps[0]], dtype=torch.float64)
    for m in maps[1:]:
        grid = torch.outer(grid.flatten(), torch.tensor([float(c) for c in m], dtype=torch.float64)).reshape(
            *grid.shape, len(m)
        )
    return grid


def _check_coverage(spec: StackSpec, report: StackReport, limit: int = 40) -> int:
    slim = _slim(spec)
    checked = 0
    for layer in report.layers:
        for unit in _all_units(report, layer.name, limit):
            want = torch_oracle.autograd_coverage(slim, layer.name, unit)
            got = _coverage_grid(report, layer.name, unit)
            assert torch.allclose(got, want, rtol=1e-12, atol=1e-9), f"{layer.name} unit {unit}: {got} vs {want}"
            checked += 1
    return checked


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stacks.stack(rank=1, max_layers=5, size_range=(6, 40)))
def test_coverage_is_the_all_ones_gradient_1d(doc: dict[str, Any]) -> None:
    """Path counts through convs, pools, transposed convs, upsampling and residual adds (1-D: exact)."""
    spec = _parse(doc)
    report = _report(spec)
    assume(report is not None)
    assert report is not None
    assert _check_coverage(spec, report) > 0


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stacks.stack(rank=2, max_layers=4, size_range=(5, 14)))
def test_coverage_is_the_outer_product_of_the_axes_2d(doc: dict[str, Any]) -> None:
    """Without merges, the N-D path counts are the outer product of the per-axis ones."""
    assume(not any(layer["op"] in ("add", "mul", "concat") for layer in doc["layers"]))
    spec = _parse(doc)
    report = _report(spec)
    assume(report is not None)
    assert report is not None
    assert _check_coverage(spec, report, limit=20) > 0


def test_coverage_through_a_concat_sums_the_branches() -> None:
    doc = {
        "input": [1, 12],
        "layers": [
            {"op": "conv", "name": "a", "kernel": 3, "dilation": 2, "padding": 2},
            {"op": "upsample", "name": "b", "from": "input", "scale": 2, "mode": "linear"},
            {"op": "maxpool", "name": "c", "kernel": 2, "stride": 2},
            {"op": "concat", "name": "cat", "from": ["a", "c"]},
        ],
    }
    spec = _parse(doc)
    report = analyze(spec)
    assert _check_coverage(spec, report) == 12 + 24 + 12 + 12  # every unit of every layer
    assert math.prod(len(m) for m in locate.coverage(report)) == 12


@pytest.mark.parametrize(("rates", "never"), [([2, 2, 2], 120), ([1, 2, 5], 0), ([2, 4, 8], 616)])
def test_gridding_holes_are_what_autograd_leaves_unread(rates: list[int], never: int) -> None:
    """The `gridding` counts against the gradient of the centre unit through the all-ones skeleton."""
    doc = {"input": [1, 48, 48], "layers": [{"op": "conv", "kernel": 3, "dilation": r, "padding": r} for r in rates]}
    spec = _parse(doc)
    report = analyze(spec)
    grad = torch_oracle.autograd_coverage(spec, report.output.name, locate.centre_unit(report.output))
    rows, cols = (grad != 0).nonzero(as_tuple=True)
    box = grad[int(rows.min()) : int(rows.max()) + 1, int(cols.min()) : int(cols.max()) + 1]
    assert int((box == 0).sum()) == never
    found = [d for d in report.diagnostics if d.code == "gridding"]
    if never:
        (diagnostic,) = found
        width = diagnostic.data["width"]
        assert width == [box.shape[0], box.shape[1]]
        assert f"in 2-D {never} of {box.numel()}" in diagnostic.message
    else:
        assert found == []


def test_the_support_behind_a_merge_is_the_exact_hull() -> None:
    from tests.test_locate import UPPER_BOUND

    spec = _parse(UPPER_BOUND)
    report = analyze(spec)
    (hull,) = torch_oracle.autograd_field(spec, "sum", [(0, 3)])
    assert hull == [(0, 0), (3, 3)]
    found = locate.support(report, (0, 3))
    assert found.exact
    assert found.support == ((0, 0), (3, 3))


@st.composite
def _padded_branches(draw: st.DrawFn) -> dict[str, Any]:
    """Two or three branches of the input, merged: convs padded more than their kernel reaches along one
    axis, so that units near a border receive nothing along that axis from one branch while the others
    do (where per-axis hulls over-count); then maybe a conv and a second merge with the input."""

    size = draw(st.integers(3, 7))
    first = {
        "op": "conv",
        "name": "a",
        "kernel": [draw(st.integers(1, 3)), draw(st.integers(1, 3))],
        "padding": [[draw(st.integers(0, 3)), draw(st.integers(0, 3))] for _ in range(2)],
    }
    # The other branches must come out the same size: pad them to it.
    layers: list[dict[str, Any]] = [first]
    out = [size + sum(first["padding"][axis]) - first["kernel"][axis] + 1 for axis in range(2)]
    assume(min(out) >= 1)
    names = ["a"]
    for name in ("b", "c")[: draw(st.integers(1, 2))]:
        kernel = [draw(st.integers(1, 3)), draw(st.integers(1, 3))]
        padding = []
        for axis in range(2):
            total = out[axis] - size + kernel[axis] - 1
            assume(total >= 0)
            before = draw(st.integers(0, total))
            padding.append([before, total - before])
        layers.append({"op": "conv", "name": name, "from": "input", "kernel": kernel, "padding": padding})
        names.append(name)
    layers.append({"op": draw(st.sampled_from(["add", "mul", "concat"])), "name": "merged", "from": names})
    if draw(st.booleans()):
        layers.append({"op": "conv", "name": "after", "kernel": 3, "padding": draw(st.integers(0, 2))})
    return {"input": [1, size, size], "layers": layers}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(_padded_branches())
@example(  # the hand-derived case of tests.test_locate (UPPER_BOUND's geometry, three branches)
    {
        "input": [1, 4, 4],
        "layers": [
            {"op": "conv", "name": "a", "kernel": [1, 3], "padding": [[1, 1], [1, 1]]},
            {"op": "conv", "name": "b", "from": "input", "kernel": [3, 1], "padding": [[2, 2], [0, 0]]},
            {"op": "conv", "name": "c", "from": "input", "kernel": [1, 1], "padding": [[1, 1], [0, 0]]},
            {"op": "add", "name": "merged", "from": ["a", "b", "c"]},
        ],
    }
)
def test_support_behind_merges_of_padded_branches_is_the_exact_autograd_hull(doc: dict[str, Any]) -> None:
    spec = _parse(doc)
    report = _report(spec)
    assume(report is not None)
    assert report is not None
    units = _all_units(report, "merged")
    event("per-axis hulls over-count" if not locate._exact(report, "merged") else "separable")
    found = locate.supports(report, units, "merged")
    assert all(s.exact for s in found)  # a few products per tensor: the exact union
    assert _check_supports(spec, report) > 0
