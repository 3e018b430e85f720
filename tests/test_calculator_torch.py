"""The one-layer calculators against PyTorch itself: sizes and refusals, overlap maps, the
equivalent direct conv, and solver answers fed back to torch (including `output_size=`).

Skipped when torch is not importable.
"""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from convcalc.analysis.calculators import LayerKind, calculate, layer_settings
from convcalc.analysis.solver import solve
from convcalc.errors import ConvCalcError
from convcalc.geometry.overlap import outer

torch = pytest.importorskip("torch")
F = torch.nn.functional

pytestmark = pytest.mark.torch

small = st.integers(1, 12)


def _torch_output(
    kind: LayerKind, i: tuple[int, ...], k: int, s: int, p: int, d: int, op: int, ceil: bool
) -> tuple[int, ...] | None:
    """The spatial output shape PyTorch produces, or None when it refuses."""
    x = torch.zeros((1, 1, *i), dtype=torch.float64)
    rank = len(i)
    try:
        if kind == "conv":
            layer = [torch.nn.Conv1d, torch.nn.Conv2d][rank - 1](1, 1, k, s, p, d, dtype=torch.float64)
        elif kind == "deconv":
            layer = [torch.nn.ConvTranspose1d, torch.nn.ConvTranspose2d][rank - 1](
                1, 1, k, s, p, op, dilation=d, dtype=torch.float64
            )
        elif kind == "maxpool":
            layer = [torch.nn.MaxPool1d, torch.nn.MaxPool2d][rank - 1](k, s, p, d, ceil_mode=ceil)
        else:
            layer = [torch.nn.AvgPool1d, torch.nn.AvgPool2d][rank - 1](k, s, p, ceil_mode=ceil)
        with torch.no_grad():
            return tuple(layer(x).shape[2:])
    except (RuntimeError, ValueError):
        return None


def _ours(
    kind: LayerKind, i: tuple[int, ...], k: int, s: int, p: int, d: int, op: int, ceil: bool
) -> tuple[int, ...] | None:
    try:
        return calculate(
            layer_settings(
                kind,
                [k],
                [s],
                [p],
                [d],
                [op] if kind == "deconv" else None,
                ceil_mode=ceil,
                input_size=list(i),
                rank=len(i),
            )
        ).output_size
    except ConvCalcError:
        return None


@settings(max_examples=120, deadline=None)
@given(
    st.sampled_from(["conv", "deconv", "maxpool", "avgpool"]),
    st.lists(small, min_size=1, max_size=2),
    st.integers(1, 6),
    st.integers(1, 4),
    st.integers(0, 4),
    st.integers(1, 3),
    st.integers(0, 3),
    st.booleans(),
)
def test_sizes_and_refusals_match_torch(
    kind: LayerKind, i: list[int], k: int, s: int, p: int, d: int, op: int, ceil: bool
) -> None:
    if kind == "avgpool":
        d = 1
    if kind != "deconv":
        op = 0
    if kind in ("conv", "deconv"):
        ceil = False
    assert _ours(kind, tuple(i), k, s, p, d, op, ceil) == _torch_output(kind, tuple(i), k, s, p, d, op, ceil)


@settings(max_examples=80, deadline=None)
@given(
    st.integers(1, 9),
    st.integers(1, 9),
    st.integers(1, 6),
    st.integers(1, 4),
    st.integers(0, 4),
    st.integers(1, 3),
    st.integers(0, 3),
)
def test_overlap_map_is_conv_transpose_of_ones(h: int, w: int, k: int, s: int, p: int, d: int, op: int) -> None:
    expected = _torch_output("deconv", (h, w), k, s, p, d, op, False)
    assume(expected is not None)
    ones = torch.ones((1, 1, h, w), dtype=torch.float64)
    kernel = torch.ones((1, 1, k, k), dtype=torch.float64)
    ref = F.conv_transpose2d(ones, kernel, stride=s, padding=p, output_padding=op, dilation=d)[0, 0]
    r = calculate(layer_settings("deconv", [k], [s], [p], [d], [op], input_size=[h, w]))
    counts = [a.overlap.counts for a in r.axes]
    grid = outer([c.values() for c in counts if c is not None])
    assert [list(row) for row in grid] == ref.to(torch.int64).tolist()


def test_seed_maps_from_torch() -> None:
    ones = torch.ones((1, 1, 4, 4), dtype=torch.float64)
    for k in (3, 4):
        ref = F.conv_transpose2d(ones, torch.ones((1, 1, k, k), dtype=torch.float64), stride=2, padding=1)[0, 0]
        r = calculate(layer_settings("deconv", [k], [2], [1], input_size=[4]))
        grid = outer([a.overlap.counts.values() if a.overlap.counts else () for a in r.axes])
        assert [list(row) for row in grid] == ref.to(torch.int64).tolist()


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 20), st.integers(1, 6), st.integers(1, 4), st.integers(0, 3), st.integers(1, 3))
def test_window_counts_are_the_gradient_of_a_ones_conv(i: int, k: int, s: int, p: int, d: int) -> None:
    assume(i + 2 * p >= d * (k - 1) + 1)
    x = torch.zeros((1, 1, i), dtype=torch.float64, requires_grad=True)
    F.conv1d(x, torch.ones((1, 1, k), dtype=torch.float64), stride=s, padding=p, dilation=d).sum().backward()
    r = calculate(layer_settings("conv", [k], [s], [p], [d], input_size=[i], rank=1))
    assert x.grad is not None
    assert r.axes[0].overlap.counts is not None
    assert list(r.axes[0].overlap.counts.values()) == x.grad[0, 0].to(torch.int64).tolist()


@settings(max_examples=80, deadline=None)
@given(
    st.integers(1, 10),
    st.integers(1, 6),
    st.integers(1, 4),
    st.integers(0, 5),
    st.integers(1, 3),
    st.integers(0, 3),
)
def test_equivalent_direct_conv_equals_conv_transpose(i: int, k: int, s: int, p: int, d: int, op: int) -> None:
    """Insert s−1 zeros, pad (crop when negative) as reported, stride-1 conv with the flipped kernel."""
    assume(_torch_output("deconv", (i,), k, s, p, d, op, False) is not None)
    eq = calculate(layer_settings("deconv", [k], [s], [p], [d], [op], input_size=[i], rank=1)).axes[0].equivalent
    assert eq is not None
    gen = torch.Generator().manual_seed(i * 1000 + k * 100 + s * 10 + p)
    x = torch.randn((1, 1, i), dtype=torch.float64, generator=gen)
    w = torch.randn((1, 1, k), dtype=torch.float64, generator=gen)
    ref = F.conv_transpose1d(x, w, stride=s, padding=p, output_padding=op, dilation=d)
    stretched = torch.zeros((1, 1, eq.stretched_size or 0), dtype=torch.float64)
    stretched[..., ::s] = x
    padded = F.pad(stretched, (eq.pad_before, eq.pad_after))  # negative pads crop
    assert padded.shape[-1] == eq.padded_size
    direct = F.conv1d(padded, w.flip(-1), dilation=d)
    assert direct.shape[-1] == eq.output_size
    assert torch.allclose(direct, ref)


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 16), st.integers(1, 6), st.integers(1, 4), st.integers(1, 3), st.integers(1, 70))
def test_deconv_solutions_accepted_by_torch(i: int, k: int, s: int, d: int, target: int) -> None:
    ax = solve(layer_settings("deconv", [k], [s], dilation=[d], input_size=[i], rank=1), [target]).axes[0]
    x = torch.zeros((1, 1, i), dtype=torch.float64)
    for answer in ax.exact:
        layer = torch.nn.ConvTranspose1d(
            1, 1, k, s, answer.padding, answer.output_padding, dilation=d, dtype=torch.float64
        )
        assert layer(x).shape[-1] == target
        if answer.output_padding < s:
            # torch's output_size= picks output_padding itself; it accepts sizes up to m + s − 1 only.
            plain = torch.nn.ConvTranspose1d(1, 1, k, s, answer.padding, dilation=d, dtype=torch.float64)
            assert plain(x, output_size=[target]).shape[-1] == target


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 40), st.integers(1, 7), st.integers(1, 4), st.integers(1, 3), st.integers(1, 40))
def test_conv_solutions_accepted_by_torch(i: int, k: int, s: int, d: int, target: int) -> None:
    ax = solve(layer_settings("conv", [k], [s], dilation=[d], input_size=[i], rank=1), [target]).axes[0]
    x = torch.zeros((1, 1, i), dtype=torch.float64)
    for answer in ax.exact:
        assert torch.nn.Conv1d(1, 1, k, s, answer.padding, d, dtype=torch.float64)(x).shape[-1] == target
    if ax.asymmetric is not None:
        b, a = ax.asymmetric
        assert (
            F.conv1d(F.pad(x, (b, a)), torch.ones((1, 1, k), dtype=torch.float64), stride=s, dilation=d).shape[-1]
            == target
        )


@settings(max_examples=80, deadline=None)
@given(
    st.sampled_from(["conv", "maxpool", "avgpool"]),
    st.integers(1, 5),
    st.integers(1, 3),
    st.tuples(st.integers(1, 12), st.integers(1, 12)),
)
def test_the_headline_is_code_pytorch_runs(kind: LayerKind, k: int, s: int, size: tuple[int, int]) -> None:
    """With padding 'same', the headline is what a port writes — F.pad then the module, or padding='same'
    where PyTorch takes it — and running it in PyTorch gives convcalc's output size (and, for a max pool
    padded with −inf, the maximum over the real pixels only)."""
    from cli.render_calc import module_text

    try:
        result = calculate(layer_settings(kind, [k], [s], "same", input_size=list(size), in_channels=None))
    except ConvCalcError:
        result = None
    assume(result is not None)
    assert result is not None
    text = module_text(result).replace("C_in, C_out", "1, 1")
    x = torch.rand((1, 1, *size), dtype=torch.float64) - 2.0  # all negative: a zero pad would win a max
    pad_call, _, module_call = text.rpartition(" then ")
    if pad_call:
        x = eval(pad_call, {"F": F, "x": x})
    module = eval(module_call, {"nn": torch.nn})
    y = module.double()(x) if kind == "conv" else module(x)
    assert tuple(y.shape[2:]) == result.output_size
    if kind == "maxpool":
        assert float(y.max()) < -1.0
