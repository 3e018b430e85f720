"""Channel ops: split, chunk (several outputs, `from: sp.1`), slice and channel_shuffle.

Shapes, refusals and values against PyTorch (torch.split, torch.chunk, x[:, a:b], nn.ChannelShuffle);
receptive fields by autograd on random stacks with splits; the loader's messages for outputs.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cli.main import app
from convcalc.analysis.engine import analyze
from convcalc.errors import ShapeError, SpecError
from convcalc.execution.runner import estimate_memory, run_stack
from convcalc.format.dump import dump_stack
from convcalc.format.loader import parse_stack
from convcalc.stack.spec import StackSpec
from tests import stacks

runner = CliRunner()

# The autograd field check of the oracle tests, imported here, not inside a hypothesis test (that module
# defines hypothesis tests itself); only with torch, so that this module runs without it.
_oracle_fields = None
if importlib.util.find_spec("torch") is not None:
    from tests.test_oracle_torch import _check_fields as _oracle_fields


def _stack(layers: list[dict[str, Any]], shape: list[int | None]) -> StackSpec:
    return parse_stack(yaml.safe_dump({"input": shape, "layers": layers}), "<test>")


def _problems(text: str) -> list[str]:
    with pytest.raises((SpecError, ShapeError)) as info:
        analyze(parse_stack(text, "net.yaml"))
    return [str(p) for p in info.value.problems]


# --------------------------------------------------------------------------- PyTorch as the oracle


#: One channel op and how to read its outputs: (layer fields, torch function of the input tensor).
def _torch_outputs(layer: dict[str, Any], x: Any) -> list[Any] | None:
    """The op's outputs by PyTorch, or None where torch refuses (or returns an empty tensor: refused by
    convcalc, which no later layer would accept)."""
    import torch

    try:
        if layer["op"] == "split":
            parts = list(torch.split(x, layer["sizes"] if "sizes" in layer else layer["size"], dim=1))
        elif layer["op"] == "chunk":
            parts = list(torch.chunk(x, layer["chunks"], dim=1))
        elif layer["op"] == "slice":
            start, end = layer["channels"]
            parts = [x[:, start:end]]
        else:
            parts = [torch.nn.ChannelShuffle(layer["groups"])(x)]
    except RuntimeError:
        return None
    return None if any(p.shape[1] == 0 for p in parts) else parts


@st.composite
def channel_layer(draw: st.DrawFn) -> dict[str, Any]:
    op = draw(st.sampled_from(["split_sizes", "split_size", "chunk", "slice", "channel_shuffle"]))
    if op == "split_sizes":
        return {"op": "split", "name": "sp", "sizes": draw(st.lists(st.integers(1, 6), min_size=1, max_size=4))}
    if op == "split_size":
        return {"op": "split", "name": "sp", "size": draw(st.integers(1, 7))}
    if op == "chunk":
        return {"op": "chunk", "name": "sp", "chunks": draw(st.integers(1, 9))}
    if op == "slice":
        end = st.one_of(st.none(), st.integers(-12, 12))
        return {"op": "slice", "name": "sp", "channels": [draw(end), draw(end)]}
    return {"op": "channel_shuffle", "name": "sp", "groups": draw(st.integers(1, 6))}


def _names(layer: dict[str, Any], count: int) -> list[str]:
    return [f"sp.{i}" for i in range(count)] if layer["op"] in ("split", "chunk") else ["sp"]


@pytest.mark.torch
@settings(max_examples=300, deadline=None)
@given(layer=channel_layer(), channels=st.integers(1, 12), rank=st.integers(0, 3), size=st.integers(1, 5))
def test_shapes_and_refusals_match_torch(layer: dict[str, Any], channels: int, rank: int, size: int) -> None:
    """Every channel op on every channel count: the same output shapes as torch, refused where torch
    refuses (a split whose sizes do not add up; groups not dividing the channels; channel_shuffle on a
    flattened tensor) or gives an empty tensor (a slice selecting nothing)."""
    torch = pytest.importorskip("torch")
    layers = [{"op": "flatten"}, layer] if rank == 0 else [layer]
    spec = _stack(layers, [channels, *([size] * max(rank, 1))])
    x = torch.zeros((1, channels, *([size] * max(rank, 1))))
    want = _torch_outputs(layer, torch.flatten(x, 1) if rank == 0 else x)
    try:
        report = analyze(spec)
    except ShapeError:
        assert want is None, f"convcalc refused what torch gives: {[tuple(w.shape) for w in want]}"
    else:
        assert want is not None, "convcalc accepted what torch refuses"
        rows = [r for r in report.layers if r.op == layer["op"]]
        assert [r.name for r in rows] == _names(layer, len(want))
        assert [(r.output.channels, *r.output.spatial) for r in rows] == [tuple(w.shape[1:]) for w in want]
        assert all(r.params == 0 and r.macs == 0 for r in rows)


@pytest.mark.torch
@settings(max_examples=120, deadline=None)
@given(layer=channel_layer(), channels=st.integers(1, 12), rank=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_run_values_equal_torch(layer: dict[str, Any], channels: int, rank: int, seed: int) -> None:
    """`convcalc run`'s NumPy outputs of every channel op equal torch's on the same input, exactly."""
    torch = pytest.importorskip("torch")
    spec = _stack([layer], [channels, *([3] * rank)])
    try:
        analyze(spec)
    except ShapeError:
        assume(False)
    result = run_stack(spec, batch=2, dtype="float64", seed=seed, keep_outputs=True)
    want = _torch_outputs(layer, torch.from_numpy(result.outputs["input"]))
    assert want is not None
    names = _names(layer, len(want))
    assert [r.name for r in result.layers] == names
    for name, w in zip(names, want, strict=True):
        np.testing.assert_array_equal(result.outputs[name], w.numpy(), err_msg=name)


@pytest.mark.torch
def test_shufflenet_unit_equals_torch_module() -> None:
    """A ShuffleNetV2 unit written with split/concat/channel_shuffle computes what torchvision's
    InvertedResidual (stride 1) computes: x1, x2 = x.chunk(2, dim=1); cat(x1, branch2(x2)); shuffle."""
    torch = pytest.importorskip("torch")
    spec = parse_stack(
        """
        input: [8, 6, 6]
        layers:
          - {op: chunk, name: sp, chunks: 2}
          - {op: conv, name: pw1, from: sp.1, out: 4, kernel: 1, bias: false}
          - {op: relu, name: r1}
          - {op: conv, name: dw, out: 4, kernel: 3, padding: 1, groups: 4, bias: false}
          - {op: conv, name: pw2, out: 4, kernel: 1, bias: false}
          - {op: relu, name: r2}
          - {op: concat, name: cat, from: [sp.0, r2]}
          - {op: channel_shuffle, name: out, groups: 2}
        """,
        "unit.yaml",
    )
    result = run_stack(spec, dtype="float64", keep_outputs=True)
    w = {name: torch.from_numpy(p.weight) for name, p in result.params.items()}
    x = torch.from_numpy(result.outputs["input"])
    x1, x2 = x.chunk(2, dim=1)
    nn = torch.nn.functional
    b = nn.relu(nn.conv2d(nn.conv2d(nn.relu(nn.conv2d(x2, w["pw1"])), w["dw"], padding=1, groups=4), w["pw2"]))
    want = torch.nn.ChannelShuffle(2)(torch.cat((x1, b), dim=1))
    np.testing.assert_allclose(result.outputs["out"], want.numpy(), rtol=1e-12)


def _check_fields(spec: StackSpec) -> int:
    assert _oracle_fields is not None
    return _oracle_fields(spec, analyze(spec))


@pytest.mark.torch
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(1, 2).flatmap(
        lambda rank: stacks.stack(
            rank=rank, max_layers=4, size_range=(16, 40) if rank == 2 else (40, 120), channels=True
        )
    )
)
def test_random_stacks_with_splits_fields_match_autograd(doc: dict[str, Any]) -> None:
    """Random stacks with split/chunk/concat/channel_shuffle/slice blocks: every output of a split (and
    every layer after) has the per-unit field autograd finds (channel ops keep the spatial field)."""
    pytest.importorskip("torch")
    spec = parse_stack(yaml.safe_dump(doc), "<random>")
    try:
        analyze(spec)
    except ShapeError:
        assume(False)
    assume(any(layer.op in ("split", "chunk") for layer in spec.layers))
    _check_fields(spec)


@pytest.mark.torch
def test_each_output_of_a_split_keeps_its_producers_field_by_autograd() -> None:
    """Hand check: a 5-tap conv, then a split; both outputs see 5 input pixels, and a 3-tap conv on
    sp.1 sees 7 (5 + 3 − 1), by autograd as by convcalc."""
    pytest.importorskip("torch")
    spec = parse_stack(
        """
        input: [1, 40]
        layers:
          - {op: conv, name: c, out: 4, kernel: 5}
          - {op: split, name: sp, sizes: [1, 3]}
          - {op: conv, name: d, from: sp.1, kernel: 3}
          - {op: concat, name: cat, from: [sp.0, sp.1]}
        """,
        "hand.yaml",
    )
    report = analyze(spec)
    assert [report.layer(n).field[0].rf for n in ("sp.0", "sp.1", "d", "cat")] == [5, 5, 7, 5]
    assert _check_fields(spec) > 0


# --------------------------------------------------------------------------- the loader's messages

SPLIT = """\
input: [64, 8, 8]
layers:
  - {op: split, name: sp, sizes: [16, 48]}
"""


def test_split_sizes_must_add_up_to_the_channels() -> None:
    (problem,) = _problems("input: [64, 8, 8]\nlayers:\n  - {op: split, name: sp, sizes: [16, 40]}\n")
    assert problem.startswith("net.yaml:3:34: layer sp, field 'sizes':")
    assert "add up to 56, but the input has 64 channels" in problem


def test_an_unknown_output_index_is_refused_naming_the_outputs() -> None:
    (problem,) = _problems(SPLIT + "  - {op: conv, from: sp.5, out: 4, kernel: 1}\n")
    assert problem.startswith("net.yaml:4:22: layer conv1, field 'from':")
    assert "unknown output 'sp.5': sp has 2 outputs: sp.0, sp.1" in problem


def test_an_output_torch_chunk_does_not_give_is_refused_by_the_analysis() -> None:
    """torch.chunk(x, 4, dim=1) on 5 channels gives 3 parts (2, 2, 1): sp.3 does not exist."""
    (problem,) = _problems("input: [5, 4]\nlayers:\n  - {op: chunk, name: sp, chunks: 4}\n  - {op: relu, from: sp.3}\n")
    assert problem.startswith("net.yaml:4:22: layer relu1, field 'from':")
    assert "unknown output 'sp.3': sp has 3 outputs on its input (sp.0, sp.1, sp.2)" in problem


def test_reading_the_split_itself_is_refused() -> None:
    (problem,) = _problems(SPLIT + "  - {op: concat, from: [sp, sp.0]}\n")
    assert problem == "net.yaml:4:25: layer concat1, field 'from': sp has 2 outputs: sp.0, sp.1; say which with from:"


def test_the_implicit_previous_layer_after_a_split_is_refused() -> None:
    (problem,) = _problems(SPLIT + "  - {op: conv, out: 4, kernel: 1}\n")
    assert problem.startswith("net.yaml:4:5: layer conv1, field 'from':")
    assert problem.endswith("sp has 2 outputs: sp.0, sp.1; say which with from:")


def test_a_layer_name_that_reads_as_an_output_is_refused() -> None:
    (problem,) = _problems(SPLIT + "  - {op: relu, name: sp.1, from: sp.0}\n")
    assert problem.startswith("net.yaml:4:22: layer sp.1, field 'name':")
    assert "reads as output 1 of the split 'sp' (line 3)" in problem


def test_repeat_instance_names_do_not_collide_with_outputs() -> None:
    """`stage.0` (a repeated block's instance) and `stage.0.sp.1` (an output inside it) are different
    spellings: an output name always ends in `.<index>` after a split's own name."""
    spec = parse_stack(
        """
        input: [8, 6, 6]
        blocks:
          unit:
            layers:
              - {op: chunk, name: sp, chunks: 2}
              - {op: conv, name: b, from: sp.1, kernel: 3, padding: 1}
              - {op: concat, name: cat, from: [sp.0, b]}
              - {op: channel_shuffle, name: shuffle, groups: 2}
        layers:
          - {block: unit, name: stage, repeat: 2}
          - {op: relu, name: r, from: stage.0}
          - {op: relu, name: r2, from: stage.1.sp.0}
        """,
        "blocks.yaml",
    )
    by_name = {layer.name: layer for layer in spec.layers}
    assert by_name["stage.1.b"].inputs == ("stage.1.sp.1",)
    assert by_name["stage.1.cat"].inputs == ("stage.1.sp.0", "stage.1.b")
    assert by_name["r"].inputs == ("stage.0.shuffle",)
    assert by_name["r2"].inputs == ("stage.1.sp.0",)
    assert analyze(spec).layer("r2").output.channels == 4
    # `convcalc expand` writes it back as plain layers that load to the same stack.
    again = parse_stack(dump_stack(spec), "expanded.yaml")
    assert [(x.name, x.op, x.inputs) for x in again.layers] == [(x.name, x.op, x.inputs) for x in spec.layers]


def test_split_needs_sizes_or_size_and_not_both() -> None:
    (missing,) = _problems("input: [4, 4]\nlayers:\n  - {op: split, name: sp}\n")
    assert "split needs 'sizes' (e.g. [16, 48]) or 'size'" in missing
    (both,) = _problems("input: [4, 4]\nlayers:\n  - {op: split, name: sp, size: 2, sizes: [2, 2]}\n")
    assert "give either 'sizes' (a list) or 'size' (channels per part), not both" in both


def test_slice_selecting_nothing_and_shuffle_not_dividing_are_refused() -> None:
    (empty,) = _problems("input: [4, 4]\nlayers:\n  - {op: slice, channels: [3, -2]}\n")
    assert "channels [3, -2] selects no channel of the input's 4" in empty
    (groups,) = _problems("input: [6, 4]\nlayers:\n  - {op: channel_shuffle, groups: 4}\n")
    assert "Got 6 channels and 4 groups" in groups


# --------------------------------------------------------------------------- report and run


def test_a_split_is_one_row_per_output_in_the_report_json(tmp_path: Path) -> None:
    """Rows sp.0 and sp.1 (the names later layers read), both with the split's index and op, the
    input's field (a 3-tap conv: RF 3), no parameters, no MACs."""
    text = SPLIT.replace("layers:\n", "layers:\n  - {op: conv, out: 64, kernel: 3, padding: 1}\n")
    text += "  - {op: concat, from: [sp.1, sp.0]}\n"
    path = tmp_path / "net.yaml"
    path.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["rf", str(path), "--format", "json"])
    assert result.exit_code == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)["layers"]}
    assert [f["rf"] for f in rows["sp.0"]["field"]] == [f["rf"] for f in rows["sp.1"]["field"]] == [3, 3]
    assert [rows["sp.0"]["index"], rows["sp.1"]["index"]] == [2, 2]
    assert rows["sp.0"]["op"] == rows["sp.1"]["op"] == "split"
    assert rows["sp.0"]["output"] != rows["sp.1"]["output"]
    assert rows["sp.0"]["params"] == rows["sp.1"]["params"] == 0
    assert rows["concat1"]["from"] == ["sp.1", "sp.0"]


def test_memory_estimate_counts_every_output_of_a_split() -> None:
    """Hand count, float32, batch 1: input 64·8·8; the split's outputs 16·8·8 and 48·8·8 are all alive
    while the concat runs, with its own 64·8·8 output: 2·4096 floats besides the input."""
    spec = parse_stack(SPLIT + "  - {op: concat, from: [sp.1, sp.0]}\n", "net.yaml")
    m = estimate_memory(spec, analyze(spec), 1, "float32", keep_outputs=False)
    assert m.data == 64 * 64 * 4
    assert m.activations == 2 * 64 * 64 * 4


def test_a_block_reads_an_output_and_returns_one() -> None:
    """`from: sp.1` on a block use reads that output; `output: split.1` makes a block's output one."""
    spec = parse_stack(
        """
        input: [8, 6, 6]
        blocks:
          half:
            layers:
              - {op: chunk, name: split, chunks: 2}
              - {op: relu, name: r, from: split.0}
            output: split.1
          conv:
            layers:
              - {op: conv, name: c, kernel: 3, padding: 1}
        layers:
          - {op: split, name: sp, sizes: [2, 6]}
          - {block: conv, name: b, from: sp.1}
          - {block: half, name: h}
          - {op: relu, name: out, from: h}
        """,
        "blocks.yaml",
    )
    assert [(x.name, x.inputs) for x in spec.layers] == [
        ("sp", ("input",)),
        ("b.c", ("sp.1",)),
        ("h.split", ("b.c",)),
        ("h.r", ("h.split.0",)),
        ("out", ("h.split.1",)),
    ]
    assert analyze(spec).layer("out").output.channels == 3  # torch.chunk(6 channels, 2): 3 and 3
