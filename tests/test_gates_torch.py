"""Fields with gates as constants against autograd with the gates detached (skipped without torch).

`analyze(spec, gates="constant")` treats every gate (convcalc.analysis.gates) as a per-channel constant.
The oracle: the same torch graph with each gate input `.detach()`-ed where its `mul` reads it, so no
gradient flows through the squeeze branch; the non-zero gradient hull of an interior unit must then be
the constant-gate region. Without the detach the gradient reaches every input pixel: the true field is
global, and convcalc's true fields say so.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from convcalc.analysis.engine import analyze
from convcalc.analysis.report import StackReport
from convcalc.errors import ShapeError
from convcalc.format.loader import load_stack, parse_input_shape, parse_stack
from convcalc.stack.spec import StackSpec
from tests import stacks

torch = pytest.importorskip("torch")
from tests import torch_oracle  # noqa: E402  (needs torch)
from tests.test_oracle_torch import _check_fields, _slim  # noqa: E402  (needs torch)

pytestmark = pytest.mark.torch

CONFIGS = Path(__file__).parent.parent / "configs"


def _detached(report: StackReport) -> set[tuple[str, str]]:
    assert report.gates is not None
    return {(gate.layer, gate.input) for gate in report.gates}


def _true_field_is_global_by_autograd(spec: StackSpec, report: StackReport, names: list[str] | None = None) -> int:
    """Every layer after the first gate (of `names`, default all) has a global true field, and its centre
    unit's gradient reaches every pixel the first gate's pool reads (every pixel the stack reads there:
    a stride can skip some); returns the layers checked."""
    assert report.gates
    first_gate = min(report.gates, key=lambda gate: report.layer(gate.layer).index)
    first = report.layer(first_gate.layer).index
    rank = len(spec.input.spatial)
    (sizes,) = torch_oracle.autograd_field(_slim(spec), first_gate.pool, [(0,) * rank])
    checked = 0
    for layer in report.layers:
        if layer.index < first or not layer.output.spatial or layer.name in {g.input for g in report.gates}:
            continue
        if names is not None and layer.name not in names:
            continue
        assert all(f.is_global for f in layer.field), f"{layer.name}: a true field after a gate is not global"
        # The centre unit and its neighbours: a unit that receives anything at all (a transposed conv's
        # holes receive nothing, not even through the gate) receives it from every pixel the pool reads.
        centre = [(int(n) - 1) // 2 for n in layer.output.spatial if n is not None]
        sizes_out = [int(n) for n in layer.output.spatial if n is not None]
        near = [
            tuple(min(c + d, n - 1) for c, d, n in zip(centre, shift, sizes_out, strict=True))
            for shift in itertools.product((0, 1), repeat=len(centre))
        ]
        hulls = [h for h in torch_oracle.autograd_field(_slim(spec), layer.name, near) if (0, -1) not in h]
        assert hulls, f"{layer.name}: no unit near the centre receives anything"
        for hull in hulls:
            assert hull == sizes, f"{layer.name}: autograd {hull}"
        checked += 1
    return checked


def test_mobilenet_v3_constant_gate_fields_are_the_detached_gradient() -> None:
    """MobileNetV3-Large at 224²: 8 SE gates; the constant-gate regions of interior units equal autograd's
    hulls with the gates detached, from the first gate (block4) to block9, whose field (211) still fits
    in the input (later ones exceed it: their units read padding, where autograd sees nothing)."""
    spec = load_stack(CONFIGS / "mobilenet_v3_large.yaml")
    report = analyze(spec, gates="constant")
    assert report.constant_gates is not None
    detach = _detached(report)
    assert len(detach) == 8
    blocks = ("block4.", "block5.", "block7.", "block8.", "block9.")
    names = [layer.name for layer in report.layers if layer.name.startswith(blocks)]
    assert _check_fields(spec, report.constant_gates, names, detach=detach) > 50
    # The spatial path's field grows on through the head (595 = 211 + ... at jump 32), the true one is global.
    assert [f.rf for f in report.constant_gates.layer("block9.1.project_bn").field] == [211, 211]
    head = report.constant_gates.layer("head_act").field
    assert [(f.rf, f.jump) for f in head] == [(595, 32), (595, 32)]
    assert all(f.is_global for f in report.layer("head_act").field)


def test_mobilenet_v3_true_field_after_the_first_gate_is_global_by_autograd() -> None:
    spec = load_stack(CONFIGS / "mobilenet_v3_large.yaml", parse_input_shape("3x64x64"))
    report = analyze(spec, gates="constant")
    names = ["block4.se_scale", "block4.project_bn", "block7.project_bn", "head_act"]
    assert _true_field_is_global_by_autograd(spec, report, names) == 4


@st.composite
def se_block(draw: st.DrawFn, name: str) -> list[dict[str, Any]]:
    """A squeeze-and-excitation block as torchvision writes it (pool, 1×1 convs, a gating activation,
    mul), the gate read first or second, sometimes after a same-size conv on the scaled branch."""
    act = draw(st.sampled_from(["sigmoid", "hardsigmoid"]))
    pool = draw(st.sampled_from(["adaptive_avgpool", "adaptive_maxpool"]))
    layers: list[dict[str, Any]] = [
        {"op": "identity", "name": f"{name}_x"},
        {"op": pool, "name": f"{name}_pool", "size": 1},
        {"op": "conv", "name": f"{name}_fc1", "kernel": 1, "out": 2},
        {"op": "relu", "name": f"{name}_relu"},
        {"op": "conv", "name": f"{name}_fc2", "kernel": 1, "out": 1},
        {"op": act, "name": f"{name}_gate"},
    ]
    branch = f"{name}_x"
    if draw(st.booleans()):
        layers.append({"op": "conv", "name": f"{name}_dw", "from": branch, "kernel": 3, "padding": 1})
        branch = f"{name}_dw"
    order = [branch, f"{name}_gate"]
    if draw(st.booleans()):
        order.reverse()
    layers.append({"op": "mul", "name": f"{name}_scale", "from": order})
    return layers


@st.composite
def se_stack(draw: st.DrawFn, rank: int) -> dict[str, Any]:
    """A random stack of convs, pools, transposed convs, upsampling and residual adds with one to three SE
    blocks among them."""
    kinds = draw(st.lists(st.sampled_from(["conv", "conv", "pool", "deconv", "upsample", "residual"]), max_size=4))
    for _ in range(draw(st.integers(1, 3))):
        kinds.insert(draw(st.integers(0, len(kinds))), "se")
    layers: list[dict[str, Any]] = []
    gates = 0
    for i, kind in enumerate(kinds):
        if kind == "se":
            layers.extend(draw(se_block(f"se{gates}")))
            gates += 1
        elif kind == "conv":
            layers.append(draw(stacks.conv_layer(rank)))
        elif kind == "pool":
            layers.append(draw(stacks.pool_layer(rank)))
        elif kind == "deconv":
            layers.append(draw(stacks.deconv_layer(rank)))
        elif kind == "upsample":
            layers.append(draw(stacks.upsample_layer(rank)))
        else:
            layers.extend(draw(stacks.residual_block(rank, f"res{i}")))
    size = draw(st.integers(16, 40) if rank == 1 else st.integers(10, 18))
    return {"input": [1] + [size] * rank, "layers": layers}


def _parse(doc: dict[str, Any]) -> StackSpec:
    return parse_stack(yaml.safe_dump(doc), "random.yaml")


def _report(spec: StackSpec) -> StackReport | None:
    try:
        return analyze(spec, gates="constant")
    except ShapeError:
        return None


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 2).flatmap(se_stack))
def test_random_se_stacks_constant_gate_fields_are_the_detached_gradient(doc: dict[str, Any]) -> None:
    spec = _parse(doc)
    report = _report(spec)
    assume(report is not None)
    assert report is not None
    assert report.constant_gates is not None
    assert report.gates, "every SE block's mul reads a gate"
    assert {g.layer for g in report.gates} == {f"se{i}_scale" for i in range(len(report.gates))}
    for gate in report.gates:  # the spatial path survives every gate (nothing else here is global)
        assert not any(f.is_global for f in report.constant_gates.layer(gate.layer).field)
    checked = _check_fields(spec, report.constant_gates, detach=_detached(report))
    event(f"units checked: {'none' if not checked else 'some'}")
    assert _true_field_is_global_by_autograd(spec, report) > 0
