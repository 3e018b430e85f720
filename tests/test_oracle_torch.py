"""Differential tests against PyTorch: output shapes by running torch, receptive fields by autograd.

Skipped when torch is not importable (CI installs it).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from convcalc.analysis import analyze
from convcalc.errors import ShapeError
from convcalc.loader import load_stack, parse_input_shape, parse_stack
from convcalc.report import Shape, StackReport
from convcalc.spec import StackSpec
from tests import stacks

torch = pytest.importorskip("torch")
from tests import torch_oracle  # noqa: E402  (needs torch)

pytestmark = pytest.mark.torch

CONFIGS = sorted(Path(__file__).parent.parent.joinpath("configs").glob("*.yaml"))


def _torch_shapes(spec: StackSpec) -> dict[str, tuple[int, ...]]:
    forward = torch_oracle.build(spec)
    x = torch.randn((1, spec.input.channels, *spec.input.spatial), dtype=torch.float64)  # type: ignore[arg-type]
    with torch.no_grad():
        values = forward(x)
    return {name: tuple(v.shape[1:]) for name, v in values.items()}


def _elements(shape: Shape) -> int:
    return math.prod(d or 1 for d in (shape.channels, *shape.spatial))


def _expected_shape(report: StackReport, name: str) -> tuple[int, ...]:
    for layer in report.layers:
        if layer.name == name:
            return (layer.output.channels, *layer.output.spatial)  # type: ignore[return-value]
    raise KeyError(name)


def _slim(spec: StackSpec, width: int = 4) -> StackSpec:
    """The same geometry with few channels (receptive fields do not depend on channels)."""
    if any(layer.op in ("pixel_shuffle", "pixel_unshuffle") for layer in spec.layers):
        return spec
    layers = tuple(
        dataclasses.replace(layer, out=min(layer.out, width), groups=1)
        if layer.out is not None
        else dataclasses.replace(layer, groups=1)
        for layer in spec.layers
    )
    return dataclasses.replace(spec, layers=layers, input=dataclasses.replace(spec.input, channels=1))


def _check_fields(spec: StackSpec, report: StackReport, layer_names: list[str] | None = None) -> int:
    """Autograd hulls of interior units equal convcalc's per-unit regions; returns units checked."""
    slim = _slim(spec)
    sizes = [int(s) for s in spec.input.spatial]  # type: ignore[arg-type]
    checked = 0
    for layer in report.layers:
        if layer_names is not None and layer.name not in layer_names:
            continue
        if not layer.output.spatial or any(m is None or m.is_global for m in layer.maps):
            continue
        # Units in the middle half of the layer (far from every border on the way), up to one period.
        per_axis_units = []
        for size, m in zip(layer.output.spatial, layer.maps, strict=True):
            assert size is not None
            assert m is not None
            count = min(m.period, max(size // 2, 1), 16)
            start = max(size // 2 - count // 2, 0)
            per_axis_units.append(list(range(start, start + count)))
        units = [tuple(u[i % len(u)] for u in per_axis_units) for i in range(max(len(u) for u in per_axis_units))]
        inside = []
        for unit in units:
            region = layer.region(unit)
            assert region is not None
            if all(r is not None and r[0] >= 0 and r[1] < n for r, n in zip(region, sizes, strict=True)):
                inside.append((unit, region))
        if not inside:
            continue
        hulls = torch_oracle.autograd_field(slim, layer.name, [u for u, _ in inside])
        for (unit, region), hull in zip(inside, hulls, strict=True):
            assert tuple(hull) == region, f"{layer.name} unit {unit}: autograd {hull}, convcalc {region}"
            checked += 1
    return checked


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_shapes_match_torch(path: Path) -> None:
    """Every layer of every bundled config has the output shape PyTorch produces."""
    spec = load_stack(path)
    report = analyze(spec)
    actual = _torch_shapes(spec)
    for layer in report.layers:
        assert actual[layer.name] == _expected_shape(report, layer.name), layer.name


#: Inputs for the fields test where the bundled one is unsuitable: every unit of the DCGAN generator's
#: 1×1 latent sees beyond the input, so it is checked on a larger one; the paper U-Net's geometry (valid
#: convs, fixed crops, no size-dependent padding) is the same at its smallest valid input, so 188² proves
#: what 572² would at a fraction of the autograd cost (its shapes are still checked at 572²).
FIELD_INPUTS = {"dcgan_generator": "100x16x16", "unet": "1x188x188"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_fields_match_autograd(path: Path) -> None:
    """Per-unit receptive-field hulls equal the non-zero gradient of that unit (positive weights)."""
    override = FIELD_INPUTS.get(path.stem)
    spec = load_stack(path, parse_input_shape(override) if override else None)
    report = analyze(spec)
    assert _check_fields(spec, report) > 0


def _parse(doc: dict[str, Any]) -> StackSpec:
    return parse_stack(yaml.safe_dump(doc), "<random>")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 3).flatmap(lambda rank: stacks.stack(rank=rank, max_layers=5, size_range=(1, 24), every_op=True)))
def test_random_stack_shapes_match_torch(doc: dict[str, Any]) -> None:
    """Random 2-D stacks: convcalc's shapes equal PyTorch's, and both refuse the same configurations."""
    spec = _parse(doc)
    try:
        report = analyze(spec)
    except ShapeError:
        report = None
    # Stacks of 3-D upsampling can predict tensors torch cannot allocate (its 3-D transposed conv
    # unfolds to tens of GB): out of memory is not a refusal, so keep to sizes torch can run.
    assume(report is None or all(_elements(layer.output) <= 2_000_000 for layer in report.layers))
    try:
        actual = _torch_shapes(spec)
    except (RuntimeError, ValueError, TypeError):  # torch's refusals
        actual = None
    if report is None or actual is None:
        assert report is None, "torch refused a stack that convcalc accepted"
        assert actual is None, "convcalc refused a stack that torch accepted"
        return
    for layer in report.layers:
        assert actual[layer.name] == _expected_shape(report, layer.name), layer.name


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stacks.stack(rank=1, max_layers=5, size_range=(60, 160)))
@example(  # align_corners at an exact source pixel: one input, though float gives the other a 1e-16 weight
    {
        "input": [1, 91],
        "layers": [
            {"op": "conv", "kernel": 1, "stride": 3},
            {"op": "maxpool", "kernel": 2, "stride": 1, "dilation": 2},
            {"op": "upsample", "mode": "linear", "scale": 3, "align_corners": True},
            {"op": "upsample", "mode": "nearest", "scale": 2},
        ],
    }
)
def test_random_stack_fields_match_autograd(doc: dict[str, Any]) -> None:
    """Random 1-D stacks (transposed convs, upsampling, dilation, residual branches): exact per-unit fields."""
    spec = _parse(doc)
    try:
        report = analyze(spec)
    except ShapeError:
        return
    _check_fields(spec, report)


# -- the ones-kernel skeleton: per-phase overlap (compounded checkerboards) -----------------------------
def _skeleton_1d(spec: StackSpec, length: int) -> Any:
    """Run a 1-D chain with every kernel all ones, no bias, on a ones input (Distill's overlap picture)."""
    import torch.nn.functional as F

    x = torch.ones((1, 1, length), dtype=torch.float64)
    for layer in spec.layers:
        if layer.op == "conv":
            w = torch.ones((1, 1, *layer.kernel), dtype=torch.float64)
            pad = [v for pair in layer.padding for v in pair]  # type: ignore[union-attr]
            x = F.conv1d(F.pad(x, pad), w, None, layer.stride, 0, layer.dilation)
        elif layer.op == "deconv":
            w = torch.ones((1, 1, *layer.kernel), dtype=torch.float64)
            pads = [p for p, _ in layer.padding]  # type: ignore[union-attr]
            x = F.conv_transpose1d(x, w, None, layer.stride, pads, layer.output_padding, 1, layer.dilation)
        else:
            align = layer.align_corners if layer.mode == "linear" else None
            x = F.interpolate(x, scale_factor=layer.scale, mode=layer.mode, align_corners=align)
    return x[0, 0]


@st.composite
def _upsampling_chain(draw: st.DrawFn) -> dict[str, Any]:
    layers = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["deconv", "deconv", "conv", "upsample"]))
        if kind == "deconv":
            layers.append(draw(stacks.deconv_layer(1)))
        elif kind == "conv":
            k = draw(st.integers(1, 4))
            layers.append({"op": "conv", "kernel": k, "padding": draw(st.integers(0, k // 2))})
        else:
            layers.append(draw(stacks.upsample_layer(1)))
    return {"input": [1, 48], "layers": layers}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_upsampling_chain())
def test_overlap_pattern_matches_the_ones_skeleton(doc: dict[str, Any]) -> None:
    """Away from the borders, unit u of the ones-kernel skeleton holds the overlap of phase u mod period."""
    spec = _parse(doc)
    try:
        report = analyze(spec)
    except ShapeError:
        return
    (m,) = report.output.maps
    if m is None:  # a period beyond MAX_PERIOD (nested align_corners ratios): nothing to compare
        return
    values = _skeleton_1d(spec, 48)
    size = len(values)
    # One period around the middle, within the middle half (away from every border on the way).
    middle = range(max(size // 2 - m.period, size // 4), min(size // 2 + m.period, 3 * size // 4))
    for u in middle:
        expected = float(m.overlap[u % m.period])
        assert abs(float(values[u]) - expected) <= 1e-9 * max(1.0, expected), (u, list(map(str, m.overlap)))


# -- broadcasting with unknown sizes: what every concrete size makes torch do ------------------------
BROADCASTS = [
    # squeeze-and-excitation: [8, ?, ?] · [8, 1, 1]
    """
    input: [8, null, null]
    layers:
      - {op: conv, name: body, kernel: 3, padding: 1}
      - {op: adaptive_avgpool, name: squeeze, size: 1}
      - {op: conv, name: excite, kernel: 1}
      - {op: mul, name: scaled, from: [body, excite]}
      - {op: conv, name: after, out: 3, kernel: 3, padding: 1}
    """,
    # ? against 1 on H, ? against 5 on W, one channel against 4
    """
    input: [4, null, null]
    layers:
      - {op: adaptive_avgpool, name: pooled, size: [1, 5]}
      - {op: conv, name: one, out: 1, kernel: 1}
      - {op: add, name: out, from: [input, one]}
    """,
    # unknown features against one feature
    """
    input: [2, null]
    layers:
      - {op: flatten, name: flat}
      - {op: linear, name: one, out: 1}
      - {op: mul, name: out, from: [flat, one]}
    """,
]


@pytest.mark.parametrize("text", BROADCASTS)
def test_broadcast_with_unknown_sizes_is_what_every_size_gives(text: str) -> None:
    """A size convcalc knows with an unknown input is the size torch gives at every input size it accepts;
    a size convcalc leaves unknown differs between input sizes."""
    spec = parse_stack(text, "<broadcast>")
    report = analyze(spec)
    rank = len(spec.input.spatial)
    seen: dict[str, set[tuple[int, ...]]] = {layer.name: set() for layer in report.layers}
    accepted = 0
    for sizes in itertools.product([1, 2, 5], repeat=rank):
        concrete = dataclasses.replace(spec, input=dataclasses.replace(spec.input, spatial=sizes))
        try:
            actual = _torch_shapes(concrete)
        except RuntimeError:  # torch refuses these sizes (e.g. 2 against 5)
            continue
        accepted += 1
        for name in seen:
            seen[name].add(actual[name])
    assert accepted > 1
    for layer in report.layers:
        shapes = seen[layer.name]
        for i, dim in enumerate((layer.output.channels, *layer.output.spatial)):
            values = {shape[i] for shape in shapes}
            if dim is None:
                assert len(values) > 1, f"{layer.name}: unknown, but torch always gives {values}"
            else:
                assert values == {dim}, f"{layer.name}: convcalc {dim}, torch {values}"
