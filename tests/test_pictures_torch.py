"""The exact N-D coverage map behind merges (`convcalc coverage`, `"separable": false`) against autograd:
the gradient of a unit through the all-ones skeleton counts its paths (skipped without torch)."""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings

from convcalc.analysis import coverage_map
from convcalc.analysis.engine import analyze
from convcalc.errors import ShapeError
from convcalc.format.loader import parse_stack
from convcalc.stack.spec import StackSpec
from tests import stacks

torch = pytest.importorskip("torch")
from tests import torch_oracle  # noqa: E402  (needs torch)

pytestmark = pytest.mark.torch


def _slim(spec: StackSpec) -> StackSpec:
    """One channel everywhere: a sum over channels of the gradient is a path count only with one channel."""
    layers = tuple(
        dataclasses.replace(layer, out=1, groups=1) if layer.op in ("conv", "deconv") else layer  # type: ignore[call-arg]
        for layer in spec.layers
    )
    return dataclasses.replace(spec, layers=layers, input=dataclasses.replace(spec.input, channels=1))


def _grid(m: coverage_map.CoverageMap) -> Any:
    out = torch.zeros(m.sizes, dtype=torch.float64)
    for cell in itertools.product(*(range(n) for n in m.sizes)):
        out[cell] = float(m.count(cell))
    return out


def _report(spec: StackSpec) -> Any:
    try:
        return analyze(spec)
    except ShapeError:
        return None


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stacks.stack(rank=2, max_layers=4, size_range=(5, 12)))
def test_the_2d_map_is_the_all_ones_gradient(doc: dict[str, Any]) -> None:
    """Separable stacks (the product of the axes) and stacks with merges (the exact walk) alike."""
    spec = parse_stack(yaml.safe_dump(doc), "random.yaml")
    report = _report(spec)
    assume(report is not None)
    assert report is not None
    assume(all(math.prod(n or 1 for n in layer.output.spatial) <= 1024 for layer in report.layers))
    slim = _slim(spec)
    for layer in report.layers:
        spatial = [n for n in layer.output.spatial if n is not None]
        if len(spatial) != 2:
            continue
        for unit in {(0, 0), ((spatial[0] - 1) // 2, (spatial[1] - 1) // 2), (spatial[0] - 1, spatial[1] - 1)}:
            m = coverage_map.coverage_map(report, layer.name, unit)
            assume(m.has_grid)
            want = torch_oracle.autograd_coverage(slim, layer.name, unit)
            assert torch.allclose(_grid(m), want, rtol=1e-12, atol=1e-9), f"{layer.name} unit {unit}"
            reached = int((want != 0).sum())
            if m.field is not None:
                (a, b), (c, d) = m.field
                inside = int((want[a : b + 1, c : d + 1] != 0).sum())
                assert inside == reached  # the field holds every pixel with a path
                assert m.holes == (b - a + 1) * (d - c + 1) - reached


def test_a_residual_block_against_autograd() -> None:
    # conv → conv plus the input: the sum is not the product of its axes' counts.
    doc = {
        "input": [1, 9, 9],
        "layers": [
            {"op": "conv", "name": "a", "kernel": 3, "padding": 1},
            {"op": "conv", "name": "b", "kernel": 3, "padding": 1, "dilation": 1},
            {"op": "add", "name": "s", "from": ["b", "input"]},
            {"op": "conv", "name": "c", "kernel": 3, "stride": 2},
        ],
    }
    spec = parse_stack(yaml.safe_dump(doc), "res.yaml")
    report = analyze(spec)
    m = coverage_map.coverage_map(report, "c", (1, 2))
    assert not m.separable
    assert m.grid is not None
    want = torch_oracle.autograd_coverage(_slim(spec), "c", (1, 2))
    assert torch.equal(_grid(m), want)
