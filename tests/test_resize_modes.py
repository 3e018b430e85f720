"""Upsample modes `nearest-exact`, `bicubic` and `antialias: true`: shapes, exact receptive fields, NumPy kernels.

PyTorch is the oracle: F.interpolate for the numbers, autograd for the fields (bicubic reads 4 taps per axis;
antialiasing widens the filter by the scale when downsampling, as ATen's _compute_weights_aa).
"""

from __future__ import annotations

import textwrap
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from convcalc.analysis.engine import analyze
from convcalc.errors import Problem, ShapeError, SpecError
from convcalc.format.loader import parse_stack
from convcalc.kernels import functional as F
from convcalc.stack.spec import StackSpec


def parse(text: str) -> StackSpec:
    return parse_stack(textwrap.dedent(text), file="s.yaml")


def one(layer: str, shape: str = "[1, 16, 16]") -> StackSpec:
    return parse(f"input: {shape}\nlayers:\n  - {layer}\n")


def only(text: str) -> Problem:
    with pytest.raises(SpecError) as info:
        parse(text)
    assert len(info.value.problems) == 1, info.value.problems
    return info.value.problems[0]


# --------------------------------------------------------------------------- hand derivations


def test_bicubic_reads_four_taps_and_one_on_a_whole_pixel() -> None:
    # scale 2, half-pixel source s = (u + ½)/2 − ½: u = 3 → 1.25, taps floor−1 .. floor+2 = 0..3;
    # align_corners with 16 → 31: s = u·15/30 = u/2, u = 4 → 2 exactly, one tap (the others weigh 0).
    layer = analyze(one("{op: upsample, scale: 2, mode: bicubic}")).layers[0]
    assert layer.region((3, 3)) == ((0, 3), (0, 3))
    corners = analyze(one("{op: upsample, size: 31, mode: bicubic, align_corners: true}")).layers[0]
    assert corners.region((4, 5)) == ((2, 2), (1, 4))


def test_nearest_exact_takes_the_pixel_under_the_centre() -> None:
    # 16 → 10: nearest reads floor(u·1.6), nearest-exact floor((u + ½)·1.6): u = 1 → 1 and 2.
    nearest = analyze(one("{op: upsample, size: 10}")).layers[0]
    exact = analyze(one("{op: upsample, size: 10, mode: nearest-exact}")).layers[0]
    assert nearest.region((1, 1)) == ((1, 1), (1, 1))
    assert exact.region((1, 1)) == ((2, 2), (2, 2))


def test_antialias_widens_the_filter_by_the_scale() -> None:
    # 16 → 8 bilinear: centre c = 2u + 1, support 2: j + ½ within 2 of c → j = 2u − 1 .. 2u + 2 (4 taps, where
    # plain bilinear reads 2u and 2u + 1). Bicubic: support 4 → j = 2u − 3 .. 2u + 4.
    plain = analyze(one("{op: upsample, size: 8, mode: bilinear}")).layers[0]
    aa = analyze(one("{op: upsample, size: 8, mode: bilinear, antialias: true}")).layers[0]
    cubic = analyze(one("{op: upsample, size: 8, mode: bicubic, antialias: true}")).layers[0]
    assert plain.region((3, 3)) == ((6, 7), (6, 7))
    assert aa.region((3, 3)) == ((5, 8), (5, 8))
    assert cubic.region((3, 3)) == ((3, 10), (3, 10))


# --------------------------------------------------------------------------- messages


@pytest.mark.parametrize(
    ("layer", "shape", "field", "part"),
    [
        ("{op: upsample, scale: 2, mode: bicubic}", "[1, 8, 8, 8]", "mode", "mode 'bicubic' needs 2 spatial axes"),
        ("{op: upsample, scale: 2, antialias: true}", "[1, 8, 8]", "antialias", "but mode is 'nearest'"),
        ("{op: upsample, scale: 2, mode: linear, antialias: true}", "[1, 8]", "antialias", "with 1 spatial axes"),
        (
            "{op: upsample, scale: 0.5, mode: bilinear, align_corners: true, antialias: true}",
            "[1, 8, 8]",
            "antialias",
            "antialias with align_corners: true is not modelled",
        ),
        (
            "{op: upsample, scale: 2, mode: nearest-exact, align_corners: false}",
            "[1, 8, 8]",
            "align_corners",
            "but mode is 'nearest-exact'",
        ),
        ("{op: upsample, scale: 2, antialias: 1}", "[1, 8, 8]", "antialias", "true or false, got 1"),
    ],
)
def test_mode_messages(layer: str, shape: str, field: str, part: str) -> None:
    problem = only(f"input: {shape}\nlayers:\n  - {layer}\n")
    assert (problem.file, problem.line, problem.layer, problem.field) == ("s.yaml", 3, "upsample1", field)
    assert part in problem.message


def test_nearest_exact_spelling_alias() -> None:
    assert one("{op: upsample, scale: 2, mode: nearest_exact}").layers[0].mode == "nearest-exact"  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- PyTorch

MODES = [
    ("nearest-exact", False, None),
    ("bicubic", False, False),
    ("bicubic", False, True),
    ("bilinear", True, False),
    ("bicubic", True, False),
]


@st.composite
def resize_case(draw: st.DrawFn) -> tuple[str, bool, bool | None, int, list[int], list[int] | None, list[float] | None]:
    mode, aa, align = draw(st.sampled_from(MODES))
    rank = draw(st.integers(1, 3)) if mode == "nearest-exact" else 2
    sizes = draw(st.lists(st.integers(2, 24), min_size=rank, max_size=rank))
    if draw(st.booleans()):
        out = draw(st.lists(st.integers(1, 30), min_size=rank, max_size=rank))
        return mode, aa, align, rank, sizes, out, None
    # Scales exact in binary, so torch's float source indices are the exact ones.
    scales = draw(st.lists(st.sampled_from([0.25, 0.5, 0.75, 1.5, 2.0, 3.0]), min_size=rank, max_size=rank))
    return mode, aa, align, rank, sizes, None, scales


@pytest.mark.torch
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=resize_case(), dtype=st.sampled_from(["float64", "float32"]))
def test_numpy_kernels_equal_torch_interpolate(case: Any, dtype: str) -> None:
    torch = pytest.importorskip("torch")
    import torch.nn.functional as TF

    mode, aa, align, _, sizes, out, scales = case
    if scales is not None:
        assume(all(int(n * s) >= 1 for n, s in zip(sizes, scales, strict=True)))
    wide = out[-1] if out is not None else int(sizes[-1] * scales[-1])
    # torch 2.13's antialiased CPU kernel reads only the first row when it enlarges H into a width of 1
    # ((2, 3) → (3, 1) gives three copies of row 0's value); the reference computes the separable filter.
    assume(not (aa and wide == 1))
    x = np.random.default_rng(len(sizes) * 7 + sum(sizes)).standard_normal((2, 3, *sizes)).astype(dtype)
    kwargs: dict[str, Any] = {"mode": mode, "align_corners": align, "antialias": aa}
    if out is not None:
        kwargs["size"] = out
    else:
        kwargs["scale_factor"] = scales
    want = TF.interpolate(torch.from_numpy(x), **kwargs).numpy()
    got = F.interpolate(x, **kwargs)
    assert got.shape == want.shape
    tol = 1e-10 if dtype == "float64" else 2e-5
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def _stack(mode: str, aa: bool, align: bool | None, sizes: list[int], out: list[int] | None, scales: Any) -> str:
    layer = "{op: upsample, mode: " + ("linear" if mode == "bilinear" else mode)
    if align is not None:
        layer += f", align_corners: {str(align).lower()}"
    if aa:
        layer += ", antialias: true"
    layer += f", size: {out}" if out is not None else f", scale: {scales}"
    layer += "}"
    shape = ", ".join(str(n + 4) for n in sizes)
    return f"input: [1, {shape}]\nlayers:\n  - {{op: conv, kernel: 3}}\n  - {layer}\n  - {{op: conv, kernel: 2}}\n"


@pytest.fixture(scope="module")
def check_fields() -> Any:
    """test_oracle_torch's autograd check (imported here: it defines hypothesis tests of its own)."""
    pytest.importorskip("torch")
    from tests.test_oracle_torch import _check_fields

    return _check_fields


@pytest.mark.torch
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=resize_case())
def test_receptive_fields_equal_autograd(check_fields: Any, case: Any) -> None:
    """conv → upsample(mode) → conv: every interior unit's region is the non-zero gradient of torch's graph."""
    mode, aa, align, _, sizes, out, scales = case
    spec = parse(_stack(mode, aa, align, sizes, out, scales))
    try:
        report = analyze(spec)
    except ShapeError:  # a scale that shrinks a size to nothing: not this test's subject
        report = None
    assume(report is not None)
    assert report is not None
    assume(all(n is not None and n >= 3 for n in report.layers[-1].output.spatial))
    checked = check_fields(spec, report)  # asserts each unit's region against autograd
    assume(checked > 0)
