"""Resizing to another layer's size (`upsample` with `like:`): validation, blocks, and PyTorch as the oracle.

torch's `F.interpolate(x, size=y.shape[2:])` is the reference: the output takes the named layer's size at
whatever input the stack gets.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from convcalc.analysis.engine import analyze
from convcalc.errors import Problem, ShapeError, SpecError
from convcalc.execution.runner import run_stack
from convcalc.format.dump import dump_stack
from convcalc.format.loader import load_stack, parse_input_shape, parse_stack
from convcalc.stack.spec import StackSpec

CONFIGS = Path(__file__).parent.parent / "configs"

#: A small encoder-decoder: the decoder's resize takes the skip's size, which floor division upstream
#: makes differ from 2× the bottleneck at odd sizes (so `scale: 2` would not do).
SKIP = """\
input: [3, 21, 17]
layers:
  - {op: conv, name: enc, out: 4, kernel: 3, padding: 1}
  - {op: maxpool, name: down, kernel: 2}
  - {op: conv, name: mid, out: 4, kernel: 3, padding: 1}
  - {op: upsample, name: up, like: enc, mode: bilinear}
  - {op: concat, name: cat, from: [up, enc]}
"""


def parse(text: str, **kwargs: Any) -> StackSpec:
    return parse_stack(textwrap.dedent(text), file="s.yaml", **kwargs)


def problems(text: str, **kwargs: Any) -> list[Problem]:
    with pytest.raises(SpecError) as info:
        parse(text, **kwargs)
    return list(info.value.problems)


def only(text: str) -> Problem:
    found = problems(text)
    assert len(found) == 1, "\n".join(map(str, found))
    return found[0]


def sizes(spec: StackSpec) -> dict[str, tuple[int | None, ...]]:
    return {layer.name: layer.output.spatial for layer in analyze(spec).layers}


# --------------------------------------------------------------------------- arithmetic


def test_like_takes_the_named_layers_size_at_any_input() -> None:
    # Hand derivation: maxpool 2 floors 21 → 10 and 17 → 8; up takes enc's 21 × 17 back.
    spec = parse(SKIP)
    assert sizes(spec)["down"] == (10, 8)
    assert sizes(spec)["up"] == (21, 17)
    other = parse(SKIP, input_override=parse_input_shape("3x9x30"))
    assert sizes(other)["up"] == (9, 30)
    assert spec.layers[3].inputs == ("mid",)  # `like` is not a producer of the values


def test_like_with_an_unknown_input_size_is_unknown() -> None:
    spec = parse(SKIP, input_override=parse_input_shape("3x?x17"))
    assert sizes(spec)["up"] == (None, 17)


def test_like_of_a_flattened_layer_is_refused() -> None:
    text = """\
    input: [3, 8, 8]
    layers:
      - {op: flatten, name: flat}
      - {op: upsample, from: input, like: flat}
    """
    with pytest.raises(ShapeError, match="like 'flat' has no spatial axes") as info:
        analyze(parse(text))
    problem = info.value.problems[0]
    assert (problem.line, problem.layer, problem.field) == (4, "upsample1", "like")


def test_like_the_input() -> None:
    text = """\
    input: [3, 13, 11]
    layers:
      - {op: conv, out: 2, kernel: 3, stride: 2}
      - {op: upsample, like: input}
    """
    assert sizes(parse(text))["upsample1"] == (13, 11)


# --------------------------------------------------------------------------- messages


@pytest.mark.parametrize(
    ("layer", "parts"),
    [
        ("{op: upsample, like: nowhere}", ["unknown layer 'nowhere'", "Layers above this one: input, conv1"]),
        ("{op: upsample, like: conv2}", ["'conv2' is defined later (line 5)"]),
        ("{op: upsample, like: upsample1}", ["a layer cannot read from itself ('upsample1')"]),
        ("{op: upsample, like: 3}", ["like must name a layer above this one, got 3"]),
        ("{op: upsample, size: 4, like: conv1}", ["give one of 'scale', 'size' or 'like', not both 'size' and 'like'"]),
        ("{op: upsample, like: cnv1}", ["did you mean 'conv1'?"]),
    ],
)
def test_like_messages(layer: str, parts: list[str]) -> None:
    text = f"input: [3, 8, 8]\nlayers:\n  - {{op: conv, kernel: 3}}\n  - {layer}\n  - {{op: conv, kernel: 1}}\n"
    problem = only(text)
    assert (problem.file, problem.line, problem.layer, problem.field) == ("s.yaml", 4, "upsample1", "like")
    for part in parts:
        assert part in problem.message


def test_upsample_needs_one_of_three() -> None:
    problem = only("input: [3, 8, 8]\nlayers:\n  - {op: upsample}\n")
    assert "needs 'scale' (a factor), 'size' (the output size) or 'like'" in problem.message


# --------------------------------------------------------------------------- blocks and dump


BLOCKED = """\
input: [3, 20, 20]
blocks:
  decoder:
    params: {skip: null}
    layers:
      - {op: conv, name: reduce, out: 2, kernel: 1}
      - {op: upsample, name: up, like: "${skip}", mode: bilinear}
      - {op: upsample, name: again, like: reduce}
layers:
  - {op: conv, name: enc, out: 4, kernel: 3, padding: 1}
  - {op: maxpool, name: down, kernel: 2}
  - {block: decoder, name: dec, with: {skip: enc}}
"""


def test_like_resolves_in_blocks_as_from_does() -> None:
    spec = parse(BLOCKED)
    by_name = {layer.name: layer for layer in spec.layers}
    assert by_name["dec.up"].like == "enc"  # type: ignore[attr-defined]
    assert by_name["dec.again"].like == "dec.reduce"  # type: ignore[attr-defined]  # block-local first
    assert sizes(spec)["dec.again"] == (10, 10)


def test_unknown_like_in_a_block_names_the_place() -> None:
    problem = only(BLOCKED.replace("like: reduce", "like: reduc"))
    assert (problem.line, problem.layer, problem.field) == (8, "dec.again", "like")
    assert "unknown layer 'reduc' in block 'decoder' (dec); did you mean 'reduce'?" in problem.message


def test_dump_writes_like_and_reads_back_the_same() -> None:
    spec = parse(BLOCKED)
    again = parse_stack(dump_stack(spec), "expanded.yaml")
    assert [(x.name, x.inputs, getattr(x, "like", None)) for x in again.layers] == [
        (x.name, x.inputs, getattr(x, "like", None)) for x in spec.layers
    ]


# --------------------------------------------------------------------------- bundled configs


def test_deeplabv3_resnet50_parameters() -> None:
    """torchvision publishes 42,004,074 with the auxiliary FCNHead(1024, 21) (DeepLabV3_ResNet50_Weights
    meta), whose 3×3 conv 1024→256 without bias, BN and 1×1 conv 256→21 with bias are derived here."""
    aux = 1024 * 256 * 9 + 2 * 256 + (256 * 21 + 21)
    assert aux == 2_365_205
    assert analyze(load_stack(CONFIGS / "deeplabv3_resnet50.yaml")).total_params == 42_004_074 - aux


@pytest.mark.parametrize(("name", "shape"), [("deeplabv3_resnet50", "3x61x45"), ("deeplabv3_aspp", "2048x13x9")])
def test_bundled_resizes_follow_the_input(name: str, shape: str) -> None:
    """The configs once wrote the size for one input; `like:` makes every input work."""
    spec = load_stack(CONFIGS / f"{name}.yaml", parse_input_shape(shape))
    spatial = tuple(int(s) for s in shape.split("x")[1:])
    out = sizes(spec)
    assert out["aspp.pool.up"] == out["aspp.b0.relu"]
    if name == "deeplabv3_resnet50":
        assert out["out"] == spatial
        # Output stride 8: the three stride-2 layers give 61 → 31 → 16 → 8 and 45 → 23 → 12 → 6.
        assert out["backbone.layer4.2.relu"] == (8, 6)


# --------------------------------------------------------------------------- PyTorch


@pytest.mark.torch
@pytest.mark.parametrize("shape", ["3x21x17", "3x256x256", "3x7x30"])
def test_like_equals_torch_interpolate_with_the_other_layers_size(shape: str) -> None:
    """The NumPy run equals torch's F.interpolate(x, size=enc.shape[2:]) written by hand here."""
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    spec = parse(SKIP, input_override=parse_input_shape(shape))
    result = run_stack(spec, dtype="float64", keep_outputs=True, check=False, seed=3)
    assert result.ok, result.failure
    mid = torch.from_numpy(result.outputs["mid"])
    enc = torch.from_numpy(result.outputs["enc"])
    want = F.interpolate(mid, size=enc.shape[2:], mode="bilinear", align_corners=False)
    np.testing.assert_allclose(result.outputs["up"], want.numpy(), rtol=1e-10, atol=1e-12)
    assert analyze(spec).layers[3].output.spatial == tuple(want.shape[2:])


@pytest.mark.torch
def test_deeplabv3_aspp_at_another_input_equals_torch() -> None:
    """The ASPP config says 32² (a 512² image at stride 16); at 16² (a 256² image) torch agrees."""
    pytest.importorskip("torch")
    from tests import torch_oracle
    from tests.test_runner import _assert_equal_to_torch

    spec = load_stack(CONFIGS / "deeplabv3_aspp.yaml", parse_input_shape("64x16x16"))
    assert sizes(spec)["aspp.pool.up"] == (16, 16)
    _assert_equal_to_torch(torch_oracle, spec, batch=1)
