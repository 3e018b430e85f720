"""The activations, normalisations, scale/scalar, sub and attention (issue 9's vocabulary), each checked
against PyTorch: kernels' numerics, parameter counts of the torch modules, refusals, MACs by torch's
flop counter, and receptive fields by autograd through the real ops (not the positive skeleton).

The torch-free tests check the refusals' messages and the hand-derived numbers.
"""

from __future__ import annotations

import math
import textwrap
from typing import Any

import numpy as np
import pytest

from convcalc.analysis.engine import analyze
from convcalc.errors import ShapeError, SpecError
from convcalc.format.loader import parse_stack
from convcalc.kernels import functional as K
from convcalc.stack.spec import StackSpec

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # pragma: no cover - the torch tests skip
    torch = None


needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not importable")


def _stack(text: str) -> StackSpec:
    return parse_stack(textwrap.dedent(text), "net.yaml")


def _report(layers: str, shape: str = "[8, 6, 5]") -> Any:
    return analyze(_stack(f"input: {shape}\nlayers:\n{layers}"))


def _close(ours: np.ndarray, theirs: Any, dt: Any) -> None:
    want = theirs.detach().numpy()
    rtol, atol = (1e-10, 1e-12) if dt == np.float64 else (1e-4, 1e-5)
    assert ours.dtype == dt
    np.testing.assert_allclose(ours, want, rtol=rtol, atol=atol * max(1.0, float(np.abs(want).max())))


# -- kernels against torch ------------------------------------------------------------------------------
@pytest.mark.torch
@needs_torch
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_activation_kernels_match_torch_across_chunks(dt: Any) -> None:
    """Two full chunks and a partial one, values far into both tails (softplus' threshold, exp's range)."""
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((3, 5, 4099)) * 12).astype(dt)
    x.flat[:6] = [0.0, -0.0, 50.0, -50.0, 20.0, -3.0]
    t = torch.from_numpy(x)
    _close(K.hardswish(x), F.hardswish(t), dt)
    _close(K.hardsigmoid(x), F.hardsigmoid(t), dt)
    _close(K.hardtanh(x, -2.5, 0.5), F.hardtanh(t, -2.5, 0.5), dt)
    for alpha in (1.0, 0.3, 2.5):
        _close(K.elu(x, alpha), F.elu(t, alpha), dt)
        _close(K.celu(x, alpha), F.celu(t, alpha), dt)
    _close(K.selu(x), F.selu(t), dt)
    for beta, threshold in ((1.0, 20.0), (2.0, 3.0), (0.5, 1.0)):
        _close(K.softplus(x, beta, threshold), F.softplus(t, beta, threshold), dt)
    _close(K.mish(x), F.mish(t), dt)
    _close(K.softmax(x, 1), F.softmax(t, 1), dt)
    _close(K.gelu(x, "tanh"), F.gelu(t, approximate="tanh"), dt)
    slopes = rng.standard_normal(5).astype(dt)
    _close(K.prelu(x, slopes), F.prelu(t, torch.from_numpy(slopes)), dt)
    _close(K.prelu(x, [0.25]), F.prelu(t, torch.tensor([0.25], dtype=t.dtype)), dt)
    y = rng.standard_normal((1, 5, 4099)).astype(dt)
    _close(K.sub(x, y), torch.sub(t, torch.from_numpy(y)), dt)


@pytest.mark.torch
@needs_torch
@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(2, 6, 5, 7), (3, 4, 9), (1, 6, 3, 2, 4)])
def test_norm_kernels_match_torch(dt: Any, shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(len(shape))
    x = (rng.standard_normal(shape) * 3 + 1).astype(dt)
    c = shape[1]
    w, b = rng.standard_normal(c).astype(dt), rng.standard_normal(c).astype(dt)
    t, tw, tb = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)
    last = F.layer_norm(t.movedim(1, -1), (c,), tw, tb, 1e-6).movedim(-1, 1)  # ConvNeXt's LayerNorm2d
    _close(K.layer_norm_channels(x, w, b, 1e-6), last, dt)
    _close(K.layer_norm_channels(x), F.layer_norm(t.movedim(1, -1), (c,)).movedim(-1, 1), dt)
    for groups in (1, 2, c):
        _close(K.group_norm(x, groups, w, b, 1e-3), F.group_norm(t, groups, tw, tb, 1e-3), dt)
    _close(K.instance_norm(x, weight=w, bias=b), F.instance_norm(t, weight=tw, bias=tb), dt)
    _close(K.instance_norm(x, eps=0.1), F.instance_norm(t, eps=0.1), dt)


@pytest.mark.torch
@needs_torch
@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("shape", "heads"), [((2, 8, 5, 3), 2), ((1, 6, 7), 3), ((2, 4, 2, 3, 2), 1), ((1, 4, 1, 1), 4)]
)
def test_attention_kernel_matches_multihead_attention(dt: Any, shape: tuple[int, ...], heads: int) -> None:
    torch.manual_seed(len(shape) + heads)
    c = shape[1]
    module = torch.nn.MultiheadAttention(c, heads, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        module.in_proj_bias.normal_()
        module.out_proj.bias.normal_()
    x = np.random.default_rng(heads).standard_normal(shape).astype(dt)
    t = torch.from_numpy(x).double()
    tokens = t.flatten(2).transpose(1, 2)
    with torch.no_grad():
        want = module(tokens, tokens, tokens, need_weights=False)[0].transpose(1, 2).reshape(t.shape)
    params = [p.detach().numpy().astype(dt) for p in (module.in_proj_weight, module.in_proj_bias)]
    params += [p.detach().numpy().astype(dt) for p in (module.out_proj.weight, module.out_proj.bias)]
    ours = K.multi_head_attention(x, heads, *params)
    _close(ours, want.to(torch.float32 if dt == np.float32 else torch.float64), dt)


@pytest.mark.torch
@needs_torch
def test_kernel_refusals_are_torchs() -> None:
    x = np.ones((1, 6, 2, 2))
    t = torch.from_numpy(x)
    # The kernels refuse in torch's words.
    for ours, theirs, words in [
        (lambda: K.group_norm(x, 4), lambda: F.group_norm(t, 4), "divisible by num_groups"),
        (
            lambda: K.prelu(x, np.ones(4)),
            lambda: F.prelu(t, torch.ones(4, dtype=torch.float64)),
            "Found parameter numbers = 4 and channel size = 6",
        ),
        (lambda: K.celu(x, 0.0), lambda: F.celu(t, 0.0), "alpha cannot be 0 for CELU"),
        (lambda: K.hardtanh(x, 1.0, -1.0), lambda: F.hardtanh(t, 1.0, -1.0), "min_val cannot be greater than max_val"),
        (
            lambda: K.instance_norm(np.ones((1, 3, 1, 1))),
            lambda: F.instance_norm(torch.ones(1, 3, 1, 1)),
            "Expected more than 1 spatial element",
        ),
    ]:
        with pytest.raises((RuntimeError, ValueError), match=words):
            theirs()
        with pytest.raises(ValueError, match=words):
            ours()
    with pytest.raises(AssertionError, match="divisible by num_heads"):
        torch.nn.MultiheadAttention(6, 4)
    with pytest.raises(ValueError, match="divisible by num_heads"):
        K.multi_head_attention(x, 4, np.ones((18, 6)), None, np.ones((6, 6)), None)


# -- parameters and MACs -------------------------------------------------------------------------------
def _params(layer: str, shape: str = "[8, 6, 5]") -> int:
    report = _report(f"  - {layer}\n", shape)
    return int(report.layers[-1].params)


def test_parameter_counts_by_hand() -> None:
    """2C for an affine norm, C for a layer scale, 1 or C slopes, 4C² + 4C for attention."""
    assert _params("{op: layernorm}") == 16
    assert _params("{op: layernorm, elementwise_affine: false}") == 0
    assert _params("{op: groupnorm, groups: 4}") == 16
    assert _params("{op: groupnorm, groups: 2, affine: false}") == 0
    assert _params("{op: instancenorm}") == 0
    assert _params("{op: instancenorm, affine: true}") == 16
    assert _params("{op: scale}") == 8
    assert _params("{op: prelu}") == 1
    assert _params("{op: prelu, num_parameters: 8}") == 8
    assert _params("{op: attention, heads: 2}") == 4 * 64 + 4 * 8
    for op in ("hardswish", "softmax", "scalar", "mish", "selu"):
        assert _params(f"{{op: {op}}}") == 0


@pytest.mark.torch
@needs_torch
def test_parameter_counts_are_the_torch_modules() -> None:
    nn = torch.nn
    c = 12
    modules = {
        "{op: layernorm}": nn.LayerNorm(c),
        "{op: layernorm, elementwise_affine: false}": nn.LayerNorm(c, elementwise_affine=False),
        "{op: groupnorm, groups: 3}": nn.GroupNorm(3, c),
        "{op: groupnorm, groups: 4, affine: false}": nn.GroupNorm(4, c, affine=False),
        "{op: instancenorm}": nn.InstanceNorm2d(c),
        "{op: instancenorm, affine: true}": nn.InstanceNorm2d(c, affine=True),
        "{op: prelu}": nn.PReLU(),
        "{op: prelu, num_parameters: 12}": nn.PReLU(c),
        "{op: attention, heads: 3}": nn.MultiheadAttention(c, 3),
        "{op: attention, heads: 1}": nn.MultiheadAttention(c, 1),
    }
    for layer, module in modules.items():
        assert _params(layer, f"[{c}, 4, 4]") == sum(p.numel() for p in module.parameters()), layer
    # ConvNeXt's layer scale: nn.Parameter(torch.ones(dim, 1, 1) * 1e-6).
    assert _params("{op: scale, init: 1.0e-6}", f"[{c}, 4, 4]") == torch.ones(c, 1, 1).numel()


def test_attention_macs_by_hand() -> None:
    # C = 8, T = 6·5 = 30: projections 4·30·64, attention 2·900·8, biases 4·30·8.
    report = _report("  - {op: attention, heads: 4}\n")
    assert report.layers[-1].macs == 4 * 30 * 64 + 2 * 900 * 8 + 4 * 30 * 8 == 23_040
    unknown = analyze(_stack("input: [8, null, 5]\nlayers:\n  - {op: attention, heads: 4}\n"))
    assert unknown.layers[-1].macs is None
    assert unknown.layers[-1].params == 4 * 64 + 32


@pytest.mark.torch
@needs_torch
@pytest.mark.parametrize(("c", "spatial", "heads"), [(8, (6, 5), 4), (12, (7,), 3), (4, (2, 3, 2), 1)])
def test_attention_macs_are_torchs_flop_count_halved_plus_the_biases(
    c: int, spatial: tuple[int, ...], heads: int
) -> None:
    """FlopCounterMode counts 2 flops a multiply-accumulate of the projections' and attention's matmuls
    (not the bias additions, which convcalc counts as one MAC per output, as for conv and linear)."""
    from torch.utils.flop_counter import FlopCounterMode

    module = torch.nn.MultiheadAttention(c, heads, batch_first=True)
    tokens = torch.randn(1, math.prod(spatial), c)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        # Training mode and need_weights: the path with explicit matmuls (addmm, bmm), which the flop
        # counter sees; it does not count the fused inference path or CPU scaled_dot_product_attention.
        module.train()
        module(tokens, tokens, tokens, need_weights=True)
    t = tokens.shape[1]
    shape = f"[{c}, {', '.join(map(str, spatial))}]"
    report = _report(f"  - {{op: attention, heads: {heads}}}\n", shape)
    assert report.layers[-1].macs == counter.get_total_flops() // 2 + 4 * t * c


# -- refusals -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("layer", "shape", "field", "needle"),
    [
        ("{op: groupnorm, groups: 3}", "[8, 4, 4]", "groups", "divisible by groups 3"),
        ("{op: attention, heads: 3}", "[8, 4, 4]", "heads", "divisible by heads 3"),
        ("{op: prelu, num_parameters: 3}", "[8, 4, 4]", "num_parameters", "1 or the input channels (8), got 3"),
        ("{op: instancenorm}", "[8, 1, 1]", "op", "more than one position"),
    ],
)
def test_refusals_name_the_layer_the_field_and_the_line(layer: str, shape: str, field: str, needle: str) -> None:
    with pytest.raises(ShapeError) as info:
        analyze(_stack(f"input: {shape}\nlayers:\n  - {{op: relu}}\n  - {layer}\n"))
    (problem,) = info.value.problems
    assert (problem.field, problem.file, problem.line) == (field, "net.yaml", 4)
    assert needle in problem.message


@pytest.mark.torch
@needs_torch
@pytest.mark.parametrize(
    ("layer", "torch_layer", "shape"),
    [
        ("{op: groupnorm, groups: 3}", lambda x: torch.nn.GroupNorm(3, 8)(x), (1, 8, 4, 4)),
        ("{op: prelu, num_parameters: 3}", lambda x: torch.nn.PReLU(3)(x), (1, 8, 4, 4)),
        ("{op: instancenorm}", lambda x: torch.nn.InstanceNorm2d(8)(x), (1, 8, 1, 1)),
        ("{op: attention, heads: 3}", lambda x: torch.nn.MultiheadAttention(8, 3), (1, 8, 4, 4)),
    ],
)
def test_refused_where_torch_refuses(layer: str, torch_layer: Any, shape: tuple[int, ...]) -> None:
    with pytest.raises((RuntimeError, ValueError, AssertionError)):
        torch_layer(torch.ones(shape))
    with pytest.raises(ShapeError):
        analyze(_stack(f"input: {list(shape[1:])}\nlayers:\n  - {layer}\n"))
    # One step inside torch's rule, both accept.
    fixed = layer.replace("groups: 3", "groups: 4").replace("num_parameters: 3", "num_parameters: 8")
    fixed = fixed.replace("heads: 3", "heads: 4")
    wider = [shape[1], *(max(s, 2) for s in shape[2:])]
    analyze(_stack(f"input: {wider}\nlayers:\n  - {fixed}\n"))


@pytest.mark.parametrize(
    ("layer", "field", "needle"),
    [
        ("{op: hardtanh, min_val: 2, max_val: 1}", "max_val", "max_val (1) must be greater than min_val (2)"),
        ("{op: hardtanh, min_val: 3}", "min_val", "max_val (1) must be greater than min_val (3)"),
        ("{op: celu, alpha: 0}", "alpha", "non-zero number"),
        ("{op: scalar, mul: 0}", "mul", "non-zero number"),
        ("{op: gelu, approximate: tan}", "approximate", "did you mean 'tanh'"),
        ("{op: softplus, beta: 0}", "beta", "positive number"),
        ("{op: groupnorm}", "groups", "groups"),
        ("{op: attention}", "heads", "heads"),
        ("{op: sub, from: [input, input, input]}", "from", "sub"),
    ],
)
def test_field_problems_at_load_time(layer: str, field: str, needle: str) -> None:
    with pytest.raises(SpecError) as info:
        _stack(f"input: [4, 4, 4]\nlayers:\n  - {layer}\n")
    (problem,) = info.value.problems
    assert problem.field == field, problem
    assert needle in problem.message, problem.message
    assert problem.line == 3


# -- receptive fields: autograd through the real ops ----------------------------------------------------
def _real_gradient(spec: StackSpec, layer: str, unit: tuple[int, ...]) -> Any:
    """Where the input gradient of one output unit (all its channels) is non-zero, through the
    real ops with random weights and data (the oracle's non-skeleton build)."""
    from tests import torch_oracle

    forward = torch_oracle.build(spec, seed=5)
    gen = torch.Generator().manual_seed(9)
    shape = (1, spec.input.channels, *[int(s) for s in spec.input.spatial if s is not None])
    x = torch.randn(shape, generator=gen, dtype=torch.float64, requires_grad=True)
    y = forward(x)[layer]
    # Random coefficients over the channels: a plain sum of a softmax (1) or a layer norm (0 with its
    # initial affine) would not depend on the input at all.
    out = y[(0, slice(None), *unit)]
    (out * torch.rand(out.shape, generator=gen, dtype=torch.float64)).sum().backward()
    assert x.grad is not None
    return (x.grad[0].abs().sum(0) > 1e-12).numpy()


LOCAL = ["softmax", "layernorm", "scale", "prelu", "hardswish", "mish", "selu", "celu", "softplus", "scalar, mul: 2"]


@pytest.mark.torch
@needs_torch
@pytest.mark.parametrize("op", LOCAL)
def test_position_wise_ops_keep_the_field_by_autograd(op: str) -> None:
    """A 3×3 conv then the op: the real op's gradient reaches exactly the conv's 3×3 window."""
    spec = _stack(f"input: [3, 7, 7]\nlayers:\n  - {{op: conv, out: 4, kernel: 3}}\n  - {{op: {op}, name: x}}\n")
    report = analyze(spec)
    region = report.layers[-1].region((2, 3))
    assert region == ((2, 4), (3, 5))
    nonzero = _real_gradient(spec, "x", (2, 3))
    rows, cols = np.nonzero(nonzero)
    assert ((rows.min(), rows.max()), (cols.min(), cols.max())) == region
    assert nonzero[2:5, 3:6].all()


@pytest.mark.torch
@needs_torch
@pytest.mark.parametrize("op", ["groupnorm, groups: 2", "instancenorm", "attention, heads: 2"])
def test_ops_over_every_position_make_the_field_global_by_autograd(op: str) -> None:
    """Statistics over every position (groupnorm, instancenorm) and attention: one output unit's gradient
    reaches every input pixel, and convcalc's field is the whole input."""
    spec = _stack(f"input: [4, 6, 5]\nlayers:\n  - {{op: {op}, name: x}}\n  - {{op: conv, name: after, kernel: 1}}\n")
    report = analyze(spec)
    for layer in report.layers:
        assert all(m is not None and m.is_global for m in layer.maps), layer.name
    for name in ("x", "after"):
        assert _real_gradient(spec, name, (1, 1)).all(), name


def test_softmax_mixes_channels_not_positions_and_sub_merges_like_add() -> None:
    report = _report(
        "  - {op: conv, name: c, kernel: 3, padding: 1}\n  - {op: softmax}\n  - {op: sub, from: [softmax1, c]}\n"
    )
    assert [tuple(f.rf for f in layer.field) for layer in report.layers] == [(3, 3)] * 3


def test_a_broadcast_sub_operand_is_seen_by_every_unit() -> None:
    report = _report("  - {op: adaptive_avgpool, name: m, size: 1}\n  - {op: sub, from: [input, m]}\n")
    assert report.layers[-1].output.spatial == (6, 5)
    assert all(m is not None and m.is_global for m in report.layers[-1].maps)
