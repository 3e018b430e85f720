"""Transposed convs with [before, after] padding pairs and `padding: same`.

A pair means what ONNX ConvTranspose's pads mean: the full transposed-conv output (output_padding more at the
end), then `before` and `after` cropped off. PyTorch takes one symmetric padding per axis, so the oracle is
torch's conv_transpose with no padding followed by slicing. `same` is output s·i: the symmetric padding p and
output_padding op with 2p − op = d(k−1) + 1 − s (PyTorch can write it; refused where no such pair exists).
"""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcalc.analysis.engine import analyze
from convcalc.errors import Problem, ShapeError, SpecError
from convcalc.execution.runner import run_stack
from convcalc.format.dump import dump_stack
from convcalc.format.loader import parse_stack
from convcalc.stack.spec import StackSpec


def parse(text: str) -> StackSpec:
    return parse_stack(textwrap.dedent(text), file="s.yaml")


def deconv(size: int | list[int], **fields: object) -> StackSpec:
    sizes = size if isinstance(size, list) else [size]
    written = ", ".join(f"{k}: {v}" for k, v in fields.items())
    return parse(f"input: [2, {', '.join(map(str, sizes))}]\nlayers:\n  - {{op: deconv, out: 3, {written}}}\n")


def out_size(spec: StackSpec) -> tuple[int | None, ...]:
    return analyze(spec).layers[0].output.spatial


def shape_problem(spec: StackSpec) -> Problem:
    with pytest.raises(ShapeError) as info:
        analyze(spec)
    assert len(info.value.problems) == 1
    return info.value.problems[0]


# --------------------------------------------------------------------------- arithmetic


def test_pair_crops_each_end_of_the_full_output() -> None:
    # Hand derivation: the full output of k=3, s=2 on 4 is (4−1)·2 + 3 = 9; [0, 1] crops one at the end → 8,
    # which PyTorch's symmetric padding cannot give (9 − 2p is odd) without output_padding.
    assert out_size(deconv(4, kernel=3, stride=2, padding="[[0, 1]]")) == (8,)
    # output_padding adds at the end before cropping: 9 + 1 − 2 − 0 = 8.
    assert out_size(deconv(4, kernel=3, stride=2, padding="[[2, 0]]", output_padding=1)) == (8,)
    # A symmetric pair is PyTorch's padding: 9 − 2 = 7.
    assert out_size(deconv(4, kernel=3, stride=2, padding="[[1, 1]]")) == out_size(
        deconv(4, kernel=3, stride=2, padding=1)
    )


def test_pair_reported_as_written() -> None:
    report = analyze(deconv([5, 6], kernel=4, stride=2, padding="[[1, 2], 0]"))
    assert report.layers[0].padding == ((1, 2), (0, 0))
    assert report.layers[0].output.spatial == ((5 - 1) * 2 + 4 - 3, (6 - 1) * 2 + 4)


@settings(max_examples=200, deadline=None)
@given(
    size=st.integers(1, 40),
    k=st.integers(1, 7),
    s=st.integers(1, 4),
    d=st.integers(1, 3),
)
def test_same_is_stride_times_input(size: int, k: int, s: int, d: int) -> None:
    spec = deconv(size, kernel=k, stride=s, dilation=d, padding="same")
    if s == 1 and d == 1 and k % 2 == 0:
        problem = shape_problem(spec)
        assert (problem.line, problem.field) == (3, "padding")
        assert "which symmetric padding cannot split" in problem.message
    else:
        assert out_size(spec) == (s * size,)


def test_same_reports_its_padding() -> None:
    # k=3, s=2: 2p − op = d(k−1) + 1 − s = 1, so p = 1 and op = 1: (7−1)·2 − 2·1 + 2 + 1 + 1 = 14 = 2·7.
    report = analyze(deconv(7, kernel=3, stride=2, padding="same"))
    assert report.layers[0].padding == ((1, 1),)
    assert report.layers[0].output.spatial == (14,)


def test_same_impossible_names_the_reason_and_a_pair() -> None:
    problem = shape_problem(deconv(5, kernel=4, padding="same"))
    assert (problem.file, problem.line, problem.layer, problem.field) == ("s.yaml", 3, "deconv1", "padding")
    assert "d·(k−1)+1−s = 3, odd" in problem.message
    assert "give the pair, e.g. [1, 2]" in problem.message
    assert out_size(deconv(5, kernel=4, padding="[[1, 2]]")) == (5,)  # the suggestion works


def test_cropping_everything_is_refused() -> None:
    problem = shape_problem(deconv(1, kernel=2, padding="[[1, 1]]"))
    assert problem.field == "padding"
    assert "output size 0 is below 1 (input 1, padding 1 crops too much)" in problem.message
    problem = shape_problem(deconv(1, kernel=2, padding="[[2, 0]]"))
    assert "padding [2, 0] crops too much" in problem.message


def test_negative_pair_is_refused_at_the_value() -> None:
    with pytest.raises(SpecError) as info:
        deconv(4, kernel=3, padding="[[-1, 0]]")
    problem = info.value.problems[0]
    assert (problem.line, problem.field) == (3, "padding")
    assert "got [-1, 0]" in problem.message


def test_dump_round_trips_pairs_and_same() -> None:
    text = """\
    input: [2, 9, 9]
    layers:
      - {op: deconv, kernel: 3, stride: 2, padding: [[0, 1], 1]}
      - {op: deconv, kernel: 3, stride: 2, padding: same}
    """
    spec = parse(text)
    again = parse_stack(dump_stack(spec))
    assert [x.padding for x in again.layers] == [x.padding for x in spec.layers]  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- PyTorch


CASES = [
    ([7], {"kernel": 3, "stride": 2, "padding": "[[0, 1]]"}),
    ([6, 5], {"kernel": 4, "stride": 2, "padding": "[[1, 2], [3, 0]]", "output_padding": 1}),
    ([4, 3, 5], {"kernel": 3, "stride": [1, 2, 3], "dilation": 2, "padding": "[[0, 3], 1, [2, 0]]"}),
    ([9, 8], {"kernel": 3, "stride": 2, "padding": "same"}),
    ([5], {"kernel": 5, "stride": 3, "dilation": 2, "padding": "same"}),
    ([6, 7], {"kernel": 1, "stride": 2, "padding": "same", "groups": 1}),
]


@pytest.mark.torch
@pytest.mark.parametrize(("size", "fields"), CASES)
def test_numpy_run_equals_torch_conv_transpose_then_slicing(size: list[int], fields: dict[str, object]) -> None:
    """The oracle is written here: F.conv_transposeNd with padding 0, then the crop of each end; for `same`
    torch's own padding p and output_padding op from 2p − op = d(k−1) + 1 − s."""
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    spec = deconv(size, **fields)
    layer = spec.layers[0]
    result = run_stack(spec, dtype="float64", keep_outputs=True, check=False, seed=5)
    assert result.ok, result.failure
    p = result.params[layer.name]
    x = torch.from_numpy(result.outputs["input"])
    w = torch.from_numpy(p.weight)
    b = None if p.bias is None else torch.from_numpy(p.bias)
    convt = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[len(size)]
    k, s, d = layer.kernel, layer.stride, layer.dilation  # type: ignore[attr-defined]
    if layer.padding == "same":  # type: ignore[attr-defined]
        need = [di * (ki - 1) + 1 - si for ki, si, di in zip(k, s, d, strict=True)]
        pads = [max((n + 1) // 2, 0) for n in need]
        want = convt(x, w, b, s, pads, [2 * q - n for q, n in zip(pads, need, strict=True)], 1, d)
        assert tuple(want.shape[2:]) == tuple(si * n for si, n in zip(s, size, strict=True))
    else:
        full = convt(x, w, b, s, 0, layer.output_padding, 1, d)  # type: ignore[attr-defined]
        crops = layer.padding  # type: ignore[attr-defined]
        want = full[
            (slice(None), slice(None), *(slice(bf, full.shape[2 + i] - af) for i, (bf, af) in enumerate(crops)))
        ]
    assert analyze(spec).layers[0].output.spatial == tuple(want.shape[2:])
    np.testing.assert_allclose(result.outputs[layer.name], want.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.torch
@pytest.mark.parametrize(("size", "fields"), CASES)
def test_receptive_fields_of_cropped_deconvs_match_autograd(size: list[int], fields: dict[str, object]) -> None:
    pytest.importorskip("torch")
    from tests.test_oracle_torch import _check_fields

    text = f"input: [1, {', '.join(str(n + 6) for n in size)}]\nlayers:\n"
    text += "  - {op: conv, kernel: 3, out: 2}\n"
    text += "  - {op: deconv, out: 2, " + ", ".join(f"{k}: {v}" for k, v in fields.items()) + "}\n"
    text += "  - {op: conv, kernel: 2, out: 1}\n"
    spec = parse(text)
    assert _check_fields(spec, analyze(spec)) > 0
