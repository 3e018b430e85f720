"""Differential tests against PyTorch: output shapes by running torch, receptive fields by autograd.

Skipped when torch is not importable (CI installs it).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Collection
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st

from convcalc.analysis.engine import analyze
from convcalc.analysis.report import Shape, StackReport
from convcalc.errors import ShapeError
from convcalc.format.loader import load_stack, parse_input_shape, parse_stack
from convcalc.stack.spec import LayerSpec, StackSpec
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


def _slim_layer(layer: LayerSpec, width: int) -> LayerSpec:
    changes: dict[str, object] = {}
    if getattr(layer, "out", None) is not None:
        changes["out"] = min(layer.out, width)  # type: ignore[attr-defined]
    if hasattr(layer, "groups") and layer.op != "channel_shuffle":  # a shuffle's groups move the fields
        changes["groups"] = 1
    return dataclasses.replace(layer, **changes)  # type: ignore[arg-type]


def _slim(spec: StackSpec, width: int = 4) -> StackSpec:
    """The same geometry with few channels (receptive fields do not depend on channels)."""
    if any(layer.op in ("pixel_shuffle", "pixel_unshuffle", "split", "slice") for layer in spec.layers):
        return spec  # their channel counts are fixed by the stack
    layers = tuple(_slim_layer(layer, width) for layer in spec.layers)
    return dataclasses.replace(spec, layers=layers, input=dataclasses.replace(spec.input, channels=1))


def _check_fields(
    spec: StackSpec,
    report: StackReport,
    layer_names: list[str] | None = None,
    detach: Collection[tuple[str, str]] = (),
) -> int:
    """Autograd hulls of interior units equal convcalc's per-unit regions; returns units checked.
    `detach`: (layer, input) pairs autograd reads detached (see torch_oracle.build)."""
    slim = _slim(spec)
    sizes = [int(s) for s in spec.input.spatial]  # type: ignore[arg-type]
    checked = 0
    for layer in report.layers:
        if layer_names is not None and layer.name not in layer_names:
            continue
        if not layer.output.spatial or any(m is None or m.is_global for m in layer.maps):
            continue
        # Units in the middle half of the layer (far from every border on the way): up to one period,
        # or for a map listing every unit (no short period), units spread over the middle half.
        per_axis_units = []
        for size, m in zip(layer.output.spatial, layer.maps, strict=True):
            assert size is not None
            assert m is not None
            count = min(m.period, max(size // 2, 1), 16)
            start = max(size // 2 - count // 2, 0)
            if m.explicit:
                step = max(size // 2 // count, 1)
                start = max(size // 2 - step * count // 2, 0)
                per_axis_units.append(list(range(start, min(start + step * count, size), step)))
            else:
                per_axis_units.append(list(range(start, start + count)))
        units = [tuple(u[i % len(u)] for u in per_axis_units) for i in range(max(len(u) for u in per_axis_units))]
        inside = []
        for unit in units:
            # The first and last unit of a layer read its padding (or units beyond its borders), which a
            # crop upstream can map onto real input pixels: convcalc counts them, autograd cannot see them.
            if any(not 0 < u < n - 1 for u, n in zip(unit, layer.output.spatial, strict=True) if n is not None):
                continue
            region = layer.region(unit)
            assert region is not None
            if all(r is not None and r[0] >= 0 and r[1] < n for r, n in zip(region, sizes, strict=True)):
                inside.append((unit, region))
        if not inside:
            continue
        hulls = torch_oracle.autograd_field(slim, layer.name, [u for u, _ in inside], detach=detach)
        for (unit, region), hull in zip(inside, hulls, strict=True):
            assert tuple(hull) == region, f"{layer.name} unit {unit}: autograd {hull}, convcalc {region}"
            checked += 1
    return checked


#: Inputs for the shapes test where the bundled one would be slow in float64: DeepLabv3's 520² through a
#: dilated ResNet-50 is 140 GMACs; its resizes take their size from layers (`like:`), so another size checks
#: the same rules.
SHAPE_INPUTS = {"deeplabv3_resnet50": "3x129x97"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_shapes_match_torch(path: Path) -> None:
    """Every layer of every bundled config has the output shape PyTorch produces."""
    override = SHAPE_INPUTS.get(path.stem)
    spec = load_stack(path, parse_input_shape(override) if override else None)
    report = analyze(spec)
    actual = _torch_shapes(spec)
    for layer in report.layers:
        assert actual[layer.name] == _expected_shape(report, layer.name), layer.name


#: Inputs for the fields test where the bundled one is unsuitable: every unit of the DCGAN generator's
#: 1×1 latent sees beyond the input, so it is checked on a larger one; the paper U-Net's geometry (valid
#: convs, fixed crops, no size-dependent padding) is the same at its smallest valid input, so 188² proves
#: what 572² would at a fraction of the autograd cost (its shapes are still checked at 572²); DeepLabv3 as in
#: SHAPE_INPUTS.
FIELD_INPUTS = {"dcgan_generator": "100x16x16", "unet": "1x188x188", "deeplabv3_resnet50": "3x129x97"}


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
    else:
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
    report = _analyze_or_none(spec)
    assume(report is not None)
    assert report is not None
    _check_fields(spec, report)


def _analyze_or_none(spec: StackSpec) -> StackReport | None:
    try:
        return analyze(spec)
    except ShapeError:
        return None


def _note_explicit(report: StackReport) -> None:
    """Tell hypothesis' statistics whether a stack needed maps that list every unit."""
    explicit = any(m is not None and m.explicit for layer in report.layers for m in layer.maps)
    event("maps listing every unit" if explicit else "periodic maps only")


def _fields_everywhere(report: StackReport) -> bool:
    """True when every layer with spatial axes has a field on every axis (no `rf-unknown`)."""
    return all(m is not None for layer in report.layers if layer.output.spatial for m in layer.maps)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        stacks.stack(rank=1, max_layers=4, size_range=(60, 160), align_corners=True),
        stacks.nested_align_corners_stack(rank=1, size_range=(40, 120)),
    )
)
@example(  # nested, with a size change between: period 275·139 = 38225 > MAX_PERIOD, so every unit is listed
    {
        "input": [1, 70],
        "layers": [
            {"op": "upsample", "mode": "linear", "scale": 2, "align_corners": True},
            {"op": "conv", "kernel": 3},
            {"op": "upsample", "mode": "linear", "scale": 2, "align_corners": True},
            {"op": "conv", "kernel": 3, "padding": 2, "dilation": 2},
            {"op": "maxpool", "kernel": 3, "stride": 2, "padding": 1},
        ],
    }
)
@example(  # a residual add of two maps listing every unit (identity and two padded convs), then resampling
    {
        "input": [1, 64],
        "layers": [
            {"op": "upsample", "mode": "linear", "scale": 2, "align_corners": True},
            {"op": "maxpool", "kernel": 3, "stride": 2},
            {"op": "upsample", "mode": "linear", "scale": 3, "align_corners": True},
            {"op": "identity", "name": "res_in"},
            {"op": "conv", "name": "res_a", "kernel": 3, "dilation": 2, "padding": 2},
            {"op": "conv", "name": "res_b", "kernel": 3, "padding": 1},
            {"op": "add", "name": "res_out", "from": ["res_b", "res_in"]},
            {"op": "upsample", "mode": "linear", "size": 90, "align_corners": True},
        ],
    }
)
def test_random_align_corners_stack_fields_match_autograd(doc: dict[str, Any]) -> None:
    """Random 1-D stacks with linear align_corners upsampling (also nested): a field for every layer, and
    exact per-unit fields, also where the pattern never repeats within MAX_PERIOD units."""
    spec = _parse(doc)
    report = _analyze_or_none(spec)
    assume(report is not None)
    assert report is not None
    assert _fields_everywhere(report), "the input size is known: every field is computed"
    _note_explicit(report)
    _check_fields(spec, report)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        stacks.stack(rank=2, max_layers=3, size_range=(12, 30), align_corners=True),
        stacks.nested_align_corners_stack(rank=2, size_range=(16, 32)),
        stacks.nested_align_corners_stack(rank=2, size_range=(16, 32)),
    )
)
@example(
    {
        "input": [1, 24, 20],
        "layers": [
            {"op": "upsample", "mode": "linear", "scale": 2, "align_corners": True},
            {"op": "conv", "kernel": 3, "stride": 2},
            {"op": "upsample", "mode": "linear", "size": 30, "align_corners": True},
            {"op": "conv", "kernel": 3, "padding": 1},
        ],
    }
)
def test_random_bilinear_align_corners_stack_fields_match_autograd(doc: dict[str, Any]) -> None:
    """The same in 2-D (bilinear): each axis maps on its own, and every unit's field is exact."""
    spec = _parse(doc)
    report = _analyze_or_none(spec)
    assume(report is not None)
    assert report is not None
    # Keep to tensors autograd handles quickly (16 units at a time).
    assume(all(_elements(layer.output) <= 100_000 for layer in report.layers))
    assert _fields_everywhere(report), "the input size is known: every field is computed"
    _note_explicit(report)
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
            x = torch_oracle.transposed_fn(layer, w, None, F.conv_transpose1d)(
                [x]
            )  # pairs and `same` as torch writes them
        else:
            align = layer.align_corners if layer.mode == "linear" else None
            if layer.scale:
                x = F.interpolate(x, scale_factor=layer.scale, mode=layer.mode, align_corners=align)
            else:
                x = F.interpolate(x, size=layer.size, mode=layer.mode, align_corners=align)
    return x[0, 0]


@st.composite
def _upsampling_chain(draw: st.DrawFn) -> dict[str, Any]:
    layers = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["deconv", "deconv", "conv", "upsample", "align_corners"]))
        if kind == "align_corners":  # by a scale: resizing down to a few units leaves no interior to compare
            scale = draw(st.sampled_from([2, 3]))
            layers.append({"op": "upsample", "mode": "linear", "scale": scale, "align_corners": True})
        elif kind == "deconv":
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
    """Away from the borders, unit u of the ones-kernel skeleton holds the overlap of phase u mod period
    (or of unit u, when the map lists every unit)."""
    spec = _parse(doc)
    report = _analyze_or_none(spec)
    assume(report is not None)
    assert report is not None
    _note_explicit(report)
    _compare_overlap(spec, report)


def _compare_overlap(spec: StackSpec, report: StackReport) -> None:
    (m,) = report.output.maps
    assert m is not None, "the input size is known: the map is computed"
    values = _skeleton_1d(spec, int(spec.input.spatial[0] or 0))
    size = len(values)
    # One period around the middle, within the middle half (away from every border on the way).
    middle = range(max(size // 2 - m.period, size // 4), min(size // 2 + m.period, 3 * size // 4))
    for u in middle:
        expected = float(m.overlap_at(u))
        assert abs(float(values[u]) - expected) <= 1e-9 * max(1.0, expected), (u, str(m.overlap_at(u)))
    # The coverage links' unbounded path counts (what checkerboard-compound reads) hold the same values.
    from convcalc.analysis import locate
    from convcalc.geometry import coverage

    counts = coverage.interior(locate.links(report, 0), report.output.name, list(middle))
    assert counts is not None
    for u, c in zip(middle, counts, strict=True):
        assert abs(float(values[u]) - float(c)) <= 1e-9 * max(1.0, float(c)), (u, str(c))


def test_overlap_of_a_map_listing_every_unit_matches_the_ones_skeleton() -> None:
    """A checkerboard (k3 s2) resampled by nested align_corners upsamplings: the overlap differs unit by unit
    and never repeats within MAX_PERIOD units; every unit of the middle half holds the skeleton's value."""
    doc = {
        "input": [1, 48],
        "layers": [
            {"op": "deconv", "kernel": 3, "stride": 2, "padding": 1},
            {"op": "upsample", "mode": "linear", "scale": 2, "align_corners": True},
            {"op": "conv", "kernel": 3},
            {"op": "upsample", "mode": "linear", "scale": 2, "align_corners": True},
            {"op": "conv", "kernel": 3, "padding": 1},
            {"op": "deconv", "kernel": 3, "stride": 2, "padding": 1},
        ],
    }
    spec = _parse(doc)
    report = analyze(spec)
    (m,) = report.output.maps
    assert m is not None
    assert m.explicit
    assert len(set(m.overlap)) > 100  # the precondition: a pattern that varies unit by unit
    _compare_overlap(spec, report)


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


# -- misaligned merges: the shift autograd measures ---------------------------------------------------
MISALIGNED = {
    # timm's resnet50d downsampling block: a 2×2 average pool beside a 3×3 stride-2 conv padded 1
    "resnet_d": """
    input: [8, 64, 64]
    layers:
      - {op: conv, name: stem, out: 8, kernel: 3, stride: 2, padding: 1}
      - {op: maxpool, name: pool, kernel: 3, stride: 2, padding: 1}
      - {op: conv, name: conv1, out: 4, kernel: 1}
      - {op: conv, name: conv2, out: 4, kernel: 3, stride: 2, padding: 1}
      - {op: conv, name: conv3, out: 16, kernel: 1}
      - {op: avgpool, name: down_pool, from: pool, kernel: 2, stride: 2, ceil_mode: true, count_include_pad: false}
      - {op: conv, name: down_conv, out: 16, kernel: 1}
      - {op: add, name: out, from: [conv3, down_conv]}
    """,
    # a causal stack whose branches end one sample apart
    "causal": """
    input: [1, 64]
    layers:
      - {op: conv, name: a, kernel: 2, stride: 2, padding: [[1, 0]]}
      - {op: conv, name: b, from: input, kernel: 3, stride: 2, padding: [[1, 0]]}
      - {op: add, name: out, from: [a, b]}
    """,
}


@pytest.mark.parametrize("name", MISALIGNED)
def test_misaligned_merge_shift_is_what_autograd_measures(name: str) -> None:
    """The shift a misaligned-merge warning gives is the distance between the two branches' units measured by
    autograd: of their hulls' centres, or in a causal stack of their last samples."""
    spec = parse_stack(MISALIGNED[name], f"<{name}>")
    report = analyze(spec)
    warnings = [d for d in report.diagnostics if d.code == "misaligned-merge"]
    assert len(warnings) == len(spec.input.spatial)
    slim = _slim(spec)
    for axis, warning in enumerate(warnings):
        first, other = warning.data["branches"]  # type: ignore[misc]
        size = next(layer.output.spatial[axis] for layer in report.layers if layer.name == first)
        assert size is not None
        unit = tuple([size // 2] * len(spec.input.spatial))
        a = torch_oracle.autograd_field(slim, first, [unit])[0][axis]
        b = torch_oracle.autograd_field(slim, other, [unit])[0][axis]
        if warning.data["rule"] == "last sample":
            measured = Fraction(b[1] - a[1])
        else:
            measured = Fraction(b[0] + b[1], 2) - Fraction(a[0] + a[1], 2)
        assert measured != 0
        assert Fraction(str(warning.data["shift"])) == measured
