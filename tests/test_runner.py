"""convcalc.execution.runner: whole stacks on sample data; every actual shape equals the predicted one.

Numbers are checked against hand derivations written here and, when torch is importable, against
the PyTorch graph of the same stack (tests/torch_oracle.py) with the runner's own weights.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import stat
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from convcalc.analysis.engine import analyze
from convcalc.analysis.report import Shape
from convcalc.errors import FileProblemError, MismatchError, ResourceError, ShapeError, SpecError
from convcalc.execution import files, runner
from convcalc.execution.files import overwritten_input
from convcalc.execution.runner import estimate_memory, init_params, run_stack, save_outputs
from convcalc.format.loader import load_stack, parse_input_shape, parse_stack
from convcalc.ops.convolution import ConvSpec, DeconvSpec
from convcalc.stack.spec import StackSpec
from tests import stacks

CONFIGS = sorted(Path(__file__).parent.parent.joinpath("configs").glob("*.yaml"))
#: Smaller inputs for the big configs, to keep the suite fast (each still valid for its stack).
SMALL_INPUT = {
    "alexnet": "3x63x63",
    "deeplabv3_aspp": "256x16x16",
    "deeplabv3_resnet50": "3x33x47",  # its resizes follow the input (`like:`), whatever its size
    "googlenet": "3x64x64",
    "mobilenet_v2": "3x64x64",
    "mobilenet_v3_large": "3x64x64",
    "convnext_tiny": "3x64x64",
    "resnet18": "3x64x64",
    "resnet50": "3x64x64",
    "shufflenet_v2_x1_0": "3x64x64",
    "unet": "1x188x188",  # the smallest size the valid convs and 2×2 pools of all four levels accept
    "unet3d": "3x92x92x92",  # the same for the 3-D U-Net
    "vgg16": "3x32x32",
    "wavenet": "1x4000",
}
#: Configs whose channel counts are divided by this too (the 3-D U-Net's im2col would need 2.7 GiB).
SLIM = {"unet3d": 8}


def _config(path: Path) -> StackSpec:
    small = SMALL_INPUT.get(path.stem)
    spec = load_stack(path, parse_input_shape(small) if small else None)
    if path.stem in SLIM:
        layers = tuple(
            dataclasses.replace(layer, out=max(layer.out // SLIM[path.stem], 1))
            if isinstance(layer, ConvSpec | DeconvSpec) and layer.out is not None
            else layer
            for layer in spec.layers
        )
        spec = dataclasses.replace(spec, layers=layers)
    return spec


def _stack(text: str) -> StackSpec:
    return parse_stack(text, "<test>")


# -- every config --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def warm() -> None:
    """One small run first: numpy.random's submodules (0.5 MB of module objects) load on first use."""
    run_stack(_stack("input: [1, 8, 8]\nlayers:\n  - {op: conv, kernel: 3}\n"))


@pytest.mark.usefixtures("warm")
@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_config_runs_with_the_predicted_shapes_within_its_memory_estimate(path: Path) -> None:
    spec = _config(path)
    tracemalloc.start()  # numpy reports its buffers to tracemalloc
    try:
        result = run_stack(spec)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= 1.25 * result.memory.total, f"peak {peak} / estimate {result.memory.total}"
    assert result.ok
    report = analyze(spec)
    assert [layer.name for layer in result.layers] == [layer.name for layer in report.layers]  # sp.0, sp.1 …
    for layer, predicted in zip(result.layers, report.layers, strict=True):
        assert layer.actual == (predicted.output.channels, *predicted.output.spatial), layer.name
        assert np.isfinite([layer.stats.mean, layer.stats.std, layer.stats.min, layer.stats.max]).all()


# -- the seed example, by hand -----------------------------------------------------------------------
DECONV = "input: [1, 4, 4]\nlayers:\n  - {{op: deconv, name: up, out: 1, kernel: {k}, stride: 2, padding: 1}}\n"


def test_seed_deconv_k3_gives_the_checkerboard() -> None:
    """Output o = 2i − 1 + j (j < 3): odd o gets 2 taps per axis, even o 1, so 2-D counts are 1/2/4."""
    result = run_stack(_stack(DECONV.format(k=3)), weights="ones", data="ones", keep_outputs=True)
    expected = np.array(
        [
            [1, 2, 1, 2, 1, 2, 1],
            [2, 4, 2, 4, 2, 4, 2],
            [1, 2, 1, 2, 1, 2, 1],
            [2, 4, 2, 4, 2, 4, 2],
            [1, 2, 1, 2, 1, 2, 1],
            [2, 4, 2, 4, 2, 4, 2],
            [1, 2, 1, 2, 1, 2, 1],
        ]
    )
    np.testing.assert_array_equal(result.outputs["up"][0, 0], expected)
    assert result.layers[0].actual == (1, 7, 7)


def test_seed_deconv_k4_has_a_uniform_interior() -> None:
    """k4 s2 p1: every interior output gets 2 taps per axis (4 in 2-D), the border rows/columns 1."""
    result = run_stack(_stack(DECONV.format(k=4)), weights="ones", data="ones", keep_outputs=True)
    edge = [1, 2, 2, 2, 2, 2, 2, 1]
    expected = np.outer(edge, edge)
    assert expected[1:-1, 1:-1].tolist() == [[4] * 6] * 6
    np.testing.assert_array_equal(result.outputs["up"][0, 0], expected)


def test_ones_conv_counts_the_window_inside_the_input() -> None:
    """3×3 ones kernel, bias 0, padding 1 on a 5×5 ones map: corners see 4 pixels, edges 6, interior 9."""
    spec = _stack("input: [1, 5, 5]\nlayers:\n  - {op: conv, name: c, kernel: 3, padding: 1}\n")
    out = run_stack(spec, weights="ones", data="ones", keep_outputs=True).outputs["c"][0, 0]
    assert out.tolist() == [
        [4, 6, 6, 6, 4],
        [6, 9, 9, 9, 6],
        [6, 9, 9, 9, 6],
        [6, 9, 9, 9, 6],
        [4, 6, 6, 6, 4],
    ]


def test_ones_weights_are_one_and_biases_zero() -> None:
    spec = _stack("input: [4, 6, 6]\nlayers:\n  - {op: conv, name: c, out: 6, kernel: 3, groups: 2}\n")
    p = init_params(spec.layers[0], 4, "ones", 0, "float64")
    assert p is not None
    assert p.bias is not None
    assert p.weight.shape == (6, 2, 3, 3)
    assert (p.weight == 1).all()
    assert (p.bias == 0).all()


def test_statistics_of_a_known_map() -> None:
    """The k3 checkerboard: sum = (1+2+1+2+1+2+1)² = 100 over 49 outputs; E[x²] = (4·1+3·4)²/49 = 256/49."""
    stats = run_stack(_stack(DECONV.format(k=3)), weights="ones", data="ones").layers[0].stats
    assert stats.mean == pytest.approx(100 / 49)
    assert stats.std == pytest.approx(np.sqrt(256 / 49 - (100 / 49) ** 2))
    assert (stats.min, stats.max) == (1.0, 4.0)


# -- determinism and scaling ---------------------------------------------------------------------
TWO_CONVS = """
input: [3, 16, 16]
layers:
  - {op: conv, name: a, out: 8, kernel: 3, padding: 1}
  - {op: relu, name: r}
  - {op: conv, name: b, out: 8, kernel: 3, stride: 2, padding: 1}
"""


def test_same_seed_same_numbers_other_seed_other_numbers() -> None:
    spec = _stack(TWO_CONVS)
    one = run_stack(spec, seed=3, keep_outputs=True).outputs
    two = run_stack(spec, seed=3, keep_outputs=True).outputs
    other = run_stack(spec, seed=4, keep_outputs=True).outputs
    for name in ("input", "a", "r", "b"):
        np.testing.assert_array_equal(one[name], two[name])
    assert not np.array_equal(one["b"], other["b"])


def test_a_layers_weights_do_not_depend_on_later_layers() -> None:
    spec = _stack(TWO_CONVS)
    longer = _stack(TWO_CONVS + "  - {op: conv, name: c, out: 4, kernel: 1}\n")
    short = run_stack(spec, keep_outputs=True).outputs
    long = run_stack(longer, keep_outputs=True).outputs
    np.testing.assert_array_equal(short["b"], long["b"])


def test_float64_and_batch() -> None:
    result = run_stack(_stack(TWO_CONVS), dtype="float64", batch=3, keep_outputs=True)
    assert result.input_shape == (3, 3, 16, 16)
    assert result.outputs["b"].dtype == np.float64
    assert result.outputs["b"].shape == (3, 8, 8, 8)
    # Samples of a randn batch differ, and each is computed independently: sample 1 alone equals row 1.
    assert not np.array_equal(result.outputs["b"][0], result.outputs["b"][1])


def test_activations_stay_order_one_through_a_deep_relu_stack() -> None:
    """He scaling (gain 2 before ReLU) keeps E[x²] constant in expectation: after 16 conv+ReLU layers the
    std stays within a factor 4 of the input's (a plain N(0, 1) init would grow it by about √(9·16)^16)."""
    layers = "".join(
        f"  - {{op: conv, name: c{i}, out: 16, kernel: 3, padding: 1, bias: false}}\n  - {{op: relu, name: r{i}}}\n"
        for i in range(16)
    )
    result = run_stack(_stack(f"input: [16, 32, 32]\nlayers:\n{layers}"))
    last_conv = result.layers[-2].stats
    assert 0.25 < last_conv.std < 4


# -- every op, through the whole format ------------------------------------------------------------
EVERY_OP_2D = """
input: [4, 12, 12]
layers:
  - {op: conv, name: same_s2, out: 8, kernel: 3, stride: 2, padding: same}
  - {op: conv, name: reflect, out: 8, kernel: 3, padding: 1, padding_mode: reflect, groups: 2}
  - {op: conv, name: asym, out: 8, kernel: [3, 2], padding: [[1, 0], [0, 1]], padding_mode: replicate}
  - {op: conv, name: circ, kernel: 3, padding: 2, dilation: 2, padding_mode: circular, groups: 8, bias: false}
  - {op: leaky_relu, name: lrelu, negative_slope: 0.2, from: circ}
  - {op: relu, name: relu, from: circ}
  - {op: add, name: acts, from: [lrelu, relu]}
  - {op: maxpool, name: mp_same, kernel: 3, stride: 2, padding: same}
  - {op: avgpool, name: ap_asym, kernel: 2, stride: 1, padding: [[0, 1], [1, 0]]}
  - {op: avgpool, name: ap_ceil, kernel: 3, stride: 2, padding: 1, ceil_mode: true, count_include_pad: false}
  - {op: upsample, name: up_lin, scale: 2, mode: bilinear, align_corners: true}
  - {op: upsample, name: up_near, size: [9, 7]}
  - {op: upsample, name: up_lin2, scale: 1.5, mode: linear}
  - {op: pad, name: pad_r, padding: [[1, 2], [2, 2]], mode: reflect}
  - {op: pad, name: pad_c, padding: [[1, -1], [0, 2]], value: 0.5}
  - {op: pixel_unshuffle, name: unshuf, factor: 2, from: pad_r}
  - {op: pixel_shuffle, name: shuf, factor: 2}
  - {op: deconv, name: deconv, out: 6, kernel: 3, stride: 2, padding: 2, output_padding: 1, dilation: 2, groups: 2}
  - {op: gelu, name: gelu}
  - {op: silu, name: silu}
  - {op: batchnorm, name: bn}
  - {op: sigmoid, name: sig}
  - {op: tanh, name: tanh, from: bn}
  - {op: mul, name: mul, from: [sig, tanh]}
  - {op: relu6, name: relu6}
  - {op: hardswish, name: hswish}
  - {op: hardsigmoid, name: hsig}
  - {op: elu, name: elu, alpha: 0.5}
  - {op: celu, name: celu, alpha: 2.0}
  - {op: selu, name: selu}
  - {op: softplus, name: softplus, beta: 2, threshold: 1}
  - {op: mish, name: mish}
  - {op: prelu, name: prelu, num_parameters: 6}
  - {op: prelu, name: prelu1}
  - {op: hardtanh, name: htanh, min_val: -0.5, max_val: 0.25}
  - {op: gelu, name: gelu_tanh, approximate: tanh}
  - {op: softmax, name: softmax}
  - {op: layernorm, name: ln, eps: 1.0e-6}
  - {op: groupnorm, name: gn, groups: 3}
  - {op: instancenorm, name: inorm, affine: true}
  - {op: scale, name: gamma, init: 0.5}
  - {op: scalar, name: scalar, mul: -2.5, add: 0.5}
  - {op: sub, name: sub, from: [scalar, tanh]}
  - {op: attention, name: attn, heads: 2}
  - {op: dropout, name: drop}
  - {op: identity, name: ident}
  - {op: adaptive_maxpool, name: amax, size: [5, null]}
  - {op: adaptive_avgpool, name: aavg, size: 3}
  - {op: conv, name: one, out: 1, kernel: 1}
  - {op: add, name: bcast, from: [aavg, one]}
  - {op: concat, name: cat, from: [bcast, aavg]}
  - {op: split, name: sp, sizes: [4, 8]}
  - {op: chunk, name: ch, from: sp.1, chunks: 3}
  - {op: slice, name: sl, from: sp.0, channels: [-3, null]}
  - {op: concat, name: cat2, from: [ch.2, sl, ch.0]}
  - {op: channel_shuffle, name: shuffle, groups: 2}
  - {op: flatten, name: flat}
  - {op: linear, name: fc, out: 5}
"""

EVERY_OP_1D = """
input: [2, 40]
layers:
  - {op: conv, name: c, out: 4, kernel: 5, stride: 3, padding: same, dilation: 2}
  - {op: maxpool, name: mp, kernel: 3, stride: 2, padding: 1, dilation: 2, ceil_mode: true}
  - {op: upsample, name: up, scale: 3, mode: linear}
  - {op: avgpool, name: ap, kernel: 4, stride: 3, padding: same}
  - {op: deconv, name: d, out: 3, kernel: 4, stride: 3, padding: 1, output_padding: 2}
  - {op: adaptive_avgpool, name: aa, size: 7}
  - {op: groupnorm, name: gn, groups: 1, affine: false}
  - {op: attention, name: attn, heads: 3}
  - {op: layernorm, name: ln, elementwise_affine: false}
"""

EVERY_OP_3D = """
input: [2, 6, 7, 8]
layers:
  - {op: conv, name: c, out: 4, kernel: [3, 1, 3], stride: [1, 2, 2], padding: [1, 0, 1]}
  - {op: upsample, name: up, scale: [2, 1, 1.5], mode: trilinear}
  - {op: maxpool, name: mp, kernel: 2, padding: [[0, 1], [1, 0], [0, 0]]}
  - {op: deconv, name: d, out: 2, kernel: 2, stride: 2}
  - {op: pad, name: p, padding: 1, mode: replicate}
  - {op: adaptive_maxpool, name: am, size: [3, 2, 4]}
  - {op: instancenorm, name: inorm}
  - {op: attention, name: attn, heads: 1}
"""

EVERY_OP = {"2d": EVERY_OP_2D, "1d": EVERY_OP_1D, "3d": EVERY_OP_3D}


@pytest.mark.parametrize("text", EVERY_OP.values(), ids=EVERY_OP.keys())
def test_every_op_runs_with_the_predicted_shapes(text: str) -> None:
    spec = _stack(text)
    assert run_stack(spec, dtype="float64").ok


def test_every_op_of_the_format_is_covered() -> None:
    from convcalc.ops.registry import OPS as OP_FIELDS

    used = {layer.op for text in EVERY_OP.values() for layer in _stack(text).layers}
    assert used == set(OP_FIELDS)


# -- mismatches --------------------------------------------------------------------------------------
def _corrupt(spec: StackSpec, *names: str) -> Any:
    """The analysis of `spec` with the predicted output of `names` changed (one channel more)."""
    report = analyze(spec)
    layers = tuple(
        dataclasses.replace(lr, output=Shape((lr.output.channels or 0) + 1, lr.output.spatial))
        if lr.name in names
        else lr
        for lr in report.layers
    )
    return dataclasses.replace(report, layers=layers)


def test_a_wrong_prediction_is_a_mismatch_naming_the_layer() -> None:
    spec = _stack(TWO_CONVS)
    with pytest.raises(MismatchError) as info:
        run_stack(spec, report=_corrupt(spec, "r"))
    (problem,) = info.value.problems
    assert problem.layer == "r"
    assert "9×16×16" in problem.message
    assert "8×16×16" in problem.message


def test_every_mismatch_is_collected_after_running_every_layer() -> None:
    spec = _stack(TWO_CONVS)
    with pytest.raises(MismatchError) as info:
        run_stack(spec, report=_corrupt(spec, "a", "b"))
    assert [p.layer for p in info.value.problems] == ["a", "b"]
    result = run_stack(spec, report=_corrupt(spec, "a", "b"), check=False)
    assert len(result.layers) == 3
    assert [layer.name for layer in result.mismatches] == ["a", "b"]
    assert not result.ok


def test_an_op_refusing_a_predicted_input_stops_the_run_as_a_mismatch(monkeypatch: pytest.MonkeyPatch) -> None:
    original = runner._apply

    def refuse_b(layer: Any, xs: Any, p: Any) -> Any:
        if layer.name == "b":
            raise ValueError("conv2d: refused")
        return original(layer, xs, p)

    monkeypatch.setattr(runner, "_apply", refuse_b)
    spec = _stack(TWO_CONVS)
    result = run_stack(spec, check=False)
    assert [layer.name for layer in result.layers] == ["a", "r"]
    assert result.failure is not None
    assert result.failure.layer == "b"
    with pytest.raises(MismatchError, match="refused"):
        run_stack(spec)


def test_ceil_mode_pool_with_explicit_padding_matches_pad_then_pool() -> None:
    """convcalc's own pool padding is "pad, then pool": the last-window rule sees the padded size."""
    # F.max_pool1d(F.pad(ones(1, 1, 1), (0, 1), value=-inf), 1, 1, 0, ceil_mode=True) has length 2.
    result = run_stack(
        _stack("input: [1, 1]\nlayers:\n  - {op: maxpool, kernel: 1, padding: [[0, 1]], ceil_mode: true}\n")
    )
    assert result.layers[-1].actual == (1, 2)


# -- memory ------------------------------------------------------------------------------------------
HUGE = "input: [3, 224000, 224000]\nlayers:\n  - {op: conv, name: c, out: 64, kernel: 3, padding: 1}\n"


def test_a_huge_input_is_refused_before_allocating() -> None:
    tracemalloc.start()
    try:
        with pytest.raises(ResourceError) as info:
            run_stack(_stack(HUGE))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 10 * 2**20
    message = str(info.value)
    # 3·224000² float32 input = 561 GiB alone.
    assert "561 GiB" in message
    assert "2 GiB" in message
    assert "a smaller input" in message
    assert info.value.problems[0].parameter == "max_memory"


def test_the_limit_is_a_parameter() -> None:
    spec = _stack(TWO_CONVS)
    need = run_stack(spec).memory.total
    assert run_stack(spec, max_memory=need).ok
    with pytest.raises(ResourceError, match="a smaller batch"):
        run_stack(spec, max_memory=need - 1, batch=2)


def test_memory_estimate_by_hand() -> None:
    """conv(1→2, 3×3, pad 1, bias) → relu → relu on 1×4×4, float32, batch 1.

    The estimate is the largest sum, layer by layer, of the live outputs, the weights made so far and
    the layer's temporaries. data 16·4 = 64; weights 2·9 + 2 = 20 → 80. The conv takes the im2col path
    (the flat layout would waste 24 − 16 columns): its temporaries are the zero-padded 6×6 input (36) and
    the columns 9·16 = 144 → 180·4 = 720 bytes. A relu needs none, but the statistics of a 32-element
    output copy it to float64 (256) and sum it through a float64 cast buffer (256): 512.
    Kept outputs: at r2, c + r1 + r2 = 3·32·4 = 384 with 80 + 512 → 976, above the conv's 128 + 80 + 720.
    Live outputs: the conv's 128 + 80 + 720 = 928 beats r1's and r2's 2·128 + 80 + 512 = 848.
    Bookkeeping: 16 KiB + 2 KiB for each of the 3 layers.
    """
    spec = _stack(
        "input: [1, 4, 4]\nlayers:\n  - {op: conv, name: c, out: 2, kernel: 3, padding: 1}\n"
        "  - {op: relu, name: r1}\n  - {op: relu, name: r2}\n"
    )
    report = analyze(spec)
    kept = estimate_memory(spec, report, 1, "float32", keep_outputs=True)
    assert (kept.data, kept.weights, kept.workspace, kept.activations, kept.layer) == (64, 80, 512, 384, "r2")
    assert kept.bookkeeping == 16 * 1024 + 3 * 2 * 1024
    live = estimate_memory(spec, report, 1, "float32", keep_outputs=False)
    assert (live.activations, live.workspace, live.layer) == (128, 720, "c")
    doubled = estimate_memory(spec, report, 2, "float64", keep_outputs=False)
    # Everything but the weights and the bookkeeping grows with the batch and the element size.
    assert doubled.total == 4 * live.total - 2 * live.weights - 3 * live.bookkeeping


#: One-layer stacks of every op the loader accepts, in each rank it exists in and along each code path of
#: convcalc.ops (depthwise, 1×1, flat and im2col convolutions, padding modes, ceil mode, overlapping bins,
#: ...). Inputs hold 2^17 elements (512 KiB in float32), so the arrays dominate Python's own objects.
_IN = {1: "[4, 32768]", 2: "[4, 128, 256]", 3: "[4, 32, 32, 32]"}
MEMORY_CASES: dict[str, tuple[str, str]] = {}
for _rank, _shape in _IN.items():
    _r = str(_rank)
    MEMORY_CASES |= {
        f"conv{_r}d": (_shape, "{op: conv, out: 8, kernel: 3, padding: 1}"),
        f"conv{_r}d_s2_same": (_shape, "{op: conv, out: 16, kernel: 3, stride: 2, padding: same}"),
        f"conv{_r}d_reflect": (_shape, "{op: conv, out: 8, kernel: 3, padding: 2, padding_mode: reflect}"),
        f"conv{_r}d_depthwise": (_shape, "{op: conv, out: 8, kernel: 3, padding: 1, groups: 4}"),
        f"conv{_r}d_1x1": (_shape, "{op: conv, out: 4, kernel: 1}"),
        f"deconv{_r}d": (_shape, "{op: deconv, out: 4, kernel: 3, stride: 2, padding: 1, output_padding: 1}"),
        f"deconv{_r}d_1x1": (_shape, "{op: deconv, out: 8, kernel: 1, padding: 1}"),
        f"maxpool{_r}d": (_shape, "{op: maxpool, kernel: 3, stride: 2, padding: 1, ceil_mode: true}"),
        f"maxpool{_r}d_same": (_shape, "{op: maxpool, kernel: 3, stride: 2, padding: same, dilation: 2}"),
        f"avgpool{_r}d": (_shape, "{op: avgpool, kernel: 2}"),
        f"avgpool{_r}d_asym": (_shape, f"{{op: avgpool, kernel: 3, stride: 1, padding: {[[0, 2]] * _rank}}}"),
        f"avgpool{_r}d_pad": (_shape, "{op: avgpool, kernel: 3, stride: 2, padding: 1, count_include_pad: false}"),
        f"adaptive_avgpool{_r}d": (_shape, "{op: adaptive_avgpool, size: 7}"),
        f"adaptive_avgpool{_r}d_global": (_shape, "{op: adaptive_avgpool, size: 1}"),
        f"adaptive_maxpool{_r}d": (_shape, "{op: adaptive_maxpool, size: 30}"),
        f"upsample{_r}d_nearest": (_shape, "{op: upsample, scale: 2}"),
        f"upsample{_r}d_linear": (_shape, "{op: upsample, scale: 2, mode: linear}"),
        f"upsample{_r}d_linear_size": (_shape, "{op: upsample, size: 20, mode: linear, align_corners: true}"),
        f"pad{_r}d": (_shape, "{op: pad, padding: 3}"),
        f"pad{_r}d_reflect": (_shape, f"{{op: pad, padding: {[[1, 4]] * _rank}, mode: reflect}}"),
        f"pad{_r}d_replicate": (_shape, "{op: pad, padding: 2, mode: replicate}"),
        f"pad{_r}d_circular": (_shape, "{op: pad, padding: 2, mode: circular}"),
    }
MEMORY_CASES |= {
    "conv2d_dilated": (_IN[2], "{op: conv, out: 8, kernel: 3, padding: 2, dilation: 2}"),
    "conv2d_grouped": (_IN[2], "{op: conv, out: 8, kernel: 3, padding: 1, groups: 2}"),
    "conv2d_1x1_s2": (_IN[2], "{op: conv, out: 8, kernel: 1, stride: 2}"),
    "conv2d_k5_circular": (_IN[2], "{op: conv, out: 8, kernel: 5, padding: 2, padding_mode: circular}"),
    "deconv2d_k4": (_IN[2], "{op: deconv, out: 8, kernel: 4, stride: 2, padding: 1}"),
    "deconv2d_grown": (_IN[2], "{op: deconv, out: 8, kernel: 1, dilation: 2, output_padding: 1}"),
    "deconv2d_grouped": (_IN[2], "{op: deconv, out: 8, kernel: 3, stride: 2, groups: 4}"),
    "deconv2d_pairs": (_IN[2], "{op: deconv, out: 8, kernel: 4, stride: 2, padding: [[0, 3], [2, 1]]}"),
    "deconv2d_same": (_IN[2], "{op: deconv, out: 8, kernel: 3, stride: 2, padding: same}"),
    "upsample2d_nearest_exact": (_IN[2], "{op: upsample, scale: 1.5, mode: nearest-exact}"),
    "upsample2d_bicubic": (_IN[2], "{op: upsample, scale: 2, mode: bicubic}"),
    "upsample2d_antialias": (_IN[2], "{op: upsample, size: [40, 100], mode: bilinear, antialias: true}"),
    "upsample2d_antialias_bicubic": (_IN[2], "{op: upsample, scale: 0.5, mode: bicubic, antialias: true}"),
    "adaptive_avgpool2d_overlap": (_IN[2], "{op: adaptive_avgpool, size: [127, 255]}"),
    "adaptive_maxpool2d_mixed": (_IN[2], "{op: adaptive_maxpool, size: [64, 100]}"),
    "upsample2d_linear_1.5": (_IN[2], "{op: upsample, scale: 1.5, mode: linear}"),
    "upsample2d_nearest_0.5": (_IN[2], "{op: upsample, scale: 0.5}"),
    "pad2d_crop": (_IN[2], "{op: pad, padding: [[-3, 2], [0, -5]], value: 1.5}"),
    "pixel_shuffle": ("[16, 64, 128]", "{op: pixel_shuffle, factor: 2}"),
    "pixel_unshuffle": (_IN[2], "{op: pixel_unshuffle, factor: 2}"),
    "add": (_IN[2], "{op: add, from: [input, input]}"),
    "add3": (_IN[2], "{op: add, from: [input, input, input]}"),
    "mul_broadcast": (_IN[2], "{op: adaptive_avgpool, name: se, size: 1}\n  - {op: mul, from: [input, se, input]}"),
    "concat": (_IN[2], "{op: concat, from: [input, input, input]}"),
    "flatten_linear": (_IN[2], "{op: flatten}\n  - {op: linear, out: 2}"),
    "identity_relu": (_IN[2], "{op: identity}\n  - {op: relu}"),
    "split_concat": (_IN[2], "{op: split, name: sp, sizes: [1, 3]}\n  - {op: concat, from: [sp.1, sp.0]}"),
    "chunk_slice_shuffle": (
        _IN[2],
        "{op: chunk, name: ch, chunks: 3}\n  - {op: slice, from: ch.0, channels: [0, 1]}\n"
        "  - {op: channel_shuffle, from: ch.1, groups: 2}",
    ),
}
MEMORY_CASES |= {op: (_IN[2], f"{{op: {op}}}") for op in ("relu", "relu6", "gelu", "silu", "sigmoid", "tanh")}
MEMORY_CASES |= {op: (_IN[2], f"{{op: {op}}}") for op in ("leaky_relu", "batchnorm", "dropout", "identity")}
MEMORY_CASES |= {
    op: (_IN[2], f"{{op: {op}}}")
    for op in ("hardswish", "hardsigmoid", "elu", "celu", "selu", "softplus", "mish", "hardtanh", "softmax")
}
MEMORY_CASES |= {
    "gelu_tanh": (_IN[2], "{op: gelu, approximate: tanh}"),
    "prelu": (_IN[2], "{op: prelu, num_parameters: 4}"),
    "layernorm": (_IN[2], "{op: layernorm}"),
    "groupnorm": (_IN[2], "{op: groupnorm, groups: 2}"),
    "instancenorm": (_IN[2], "{op: instancenorm, affine: true}"),
    "scale": (_IN[2], "{op: scale}"),
    "scalar": (_IN[2], "{op: scalar, mul: 0.5, add: 1}"),
    "sub": (_IN[2], "{op: sub, from: [input, input]}"),
    # Attention holds N·heads·T² scores: 32×32 positions keep that near the other cases' sizes.
    "attention": ("[16, 32, 32]", "{op: attention, heads: 2}"),
    "attention_1d": ("[8, 512]", "{op: attention, heads: 4}"),
}


def _memory_stack(case: str) -> StackSpec:
    shape, layers = MEMORY_CASES[case]
    return _stack(f"input: {shape}\nlayers:\n  - {layers}\n")


def test_the_memory_cases_cover_every_op_and_rank() -> None:
    from convcalc.ops.registry import OPS as OP_FIELDS

    ops_used = {layer.op for case in MEMORY_CASES for layer in _memory_stack(case).layers}
    assert ops_used == set(OP_FIELDS)
    ranked = {"conv", "deconv", "maxpool", "avgpool", "adaptive_avgpool", "adaptive_maxpool", "upsample", "pad"}
    specs = [_memory_stack(case) for case in MEMORY_CASES]
    covered = {(layer.op, len(spec.input.spatial)) for spec in specs for layer in spec.layers}
    assert {(op, rank) for op in ranked for rank in (1, 2, 3)} <= covered


def _traced_peak(spec: StackSpec, dtype: runner.DType, keep_outputs: bool) -> tuple[int, int]:
    """(tracemalloc's peak over a run, the run's estimate); numpy reports its buffers to tracemalloc."""
    report = analyze(spec)
    gc.collect()
    tracemalloc.start()
    try:
        result = run_stack(spec, dtype=dtype, keep_outputs=keep_outputs, report=report)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, result.memory.total


@pytest.mark.usefixtures("warm")
@pytest.mark.parametrize("dtype", runner.DTYPES)
@pytest.mark.parametrize("case", MEMORY_CASES)
def test_every_op_stays_within_its_memory_estimate(case: str, dtype: runner.DType) -> None:
    """The estimate bounds the real peak (within 1.25×) and is no false alarm (the peak is at least 0.8×)."""
    peak, estimate = _traced_peak(_memory_stack(case), dtype, keep_outputs=False)
    assert 0.8 * estimate <= peak <= 1.25 * estimate, f"peak {peak} / estimate {estimate} = {peak / estimate:.2f}"


@pytest.mark.usefixtures("warm")
@pytest.mark.parametrize("name", ["unet_small", "googlenet"])
def test_kept_outputs_stay_within_the_memory_estimate(name: str) -> None:
    """Every output kept (as --save does), through branches, skips and concatenations."""
    peak, estimate = _traced_peak(_config(CONFIGS[[p.stem for p in CONFIGS].index(name)]), "float32", True)
    assert 0.8 * estimate <= peak <= 1.25 * estimate, f"peak {peak} / estimate {estimate} = {peak / estimate:.2f}"


def test_unknown_input_sizes_ask_for_input() -> None:
    spec = load_stack(CONFIGS[0], parse_input_shape("3x?x?"))
    with pytest.raises(SpecError, match="override it with known ones"):
        run_stack(spec)


# -- .npy data ---------------------------------------------------------------------------------------
def test_npy_data_unbatched_and_batched(tmp_path: Path) -> None:
    spec = _stack(TWO_CONVS)
    rng = np.random.default_rng(7)
    sample = rng.standard_normal((3, 16, 16)).astype(np.float32)
    np.save(tmp_path / "one.npy", sample)
    np.save(tmp_path / "batch.npy", np.stack([sample, -sample]))
    one = run_stack(spec, data=str(tmp_path / "one.npy"), keep_outputs=True)
    np.testing.assert_array_equal(one.outputs["input"][0], sample)
    two = run_stack(spec, data=str(tmp_path / "batch.npy"), keep_outputs=True)
    assert two.batch == 2
    # The first conv is linear: negating the input negates its output minus twice the bias.
    a = two.outputs["a"]
    bias = two.params["a"].bias
    assert bias is not None
    np.testing.assert_allclose(a[0] + a[1], 2 * bias[:, None, None] * np.ones_like(a[0]), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(a[0], one.outputs["a"][0])


def test_npy_data_repeats_over_a_batch_and_casts_ints(tmp_path: Path) -> None:
    np.save(tmp_path / "ints.npy", np.arange(3 * 16 * 16).reshape(3, 16, 16))
    result = run_stack(_stack(TWO_CONVS), data=str(tmp_path / "ints.npy"), batch=2, keep_outputs=True)
    assert result.outputs["input"].dtype == np.float32
    np.testing.assert_array_equal(result.outputs["input"][1].ravel(), np.arange(3 * 16 * 16))


def test_npy_of_the_wrong_shape_names_both_shapes(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.zeros((3, 15, 16)))
    with pytest.raises(SpecError) as info:
        run_stack(_stack(TWO_CONVS), data=str(tmp_path / "x.npy"))
    message = str(info.value)
    assert "3×15×16" in message
    assert "3×16×16" in message
    assert "(3x15x16)" in message


def test_npy_batch_conflict(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.zeros((2, 3, 16, 16)))
    with pytest.raises(SpecError, match="batch of 2"):
        run_stack(_stack(TWO_CONVS), data=str(tmp_path / "x.npy"), batch=3)


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        ("missing.npy", None, FileProblemError),
        ("text.npy", b"not an array", FileProblemError),
        ("archive.npy", "npz", FileProblemError),
        ("complex.npy", np.zeros((3, 16, 16), complex), SpecError),
    ],
)
def test_unusable_data_files(tmp_path: Path, name: str, content: object, error: type[Exception]) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, np.ndarray):
        np.save(path, content)
    elif content == "npz":
        with open(path, "wb") as handle:
            np.savez(handle, x=np.zeros(3))
    with pytest.raises(error):
        run_stack(_stack(TWO_CONVS), data=str(path))


@pytest.mark.parametrize(
    "kwargs",
    [{"weights": "zeros"}, {"dtype": "float16"}, {"seed": -1}, {"batch": 0}, {"max_memory": 0}, {"data": ""}],
)
def test_bad_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(SpecError):
        run_stack(_stack(TWO_CONVS), **kwargs)


def test_a_refused_stack_is_a_shape_error() -> None:
    with pytest.raises(ShapeError):
        run_stack(_stack("input: [1, 2, 2]\nlayers:\n  - {op: conv, kernel: 3}\n"))


# -- saving and progress -------------------------------------------------------------------------------
def test_save_outputs_round_trips_and_refuses_to_overwrite(tmp_path: Path) -> None:
    result = run_stack(_stack(TWO_CONVS), keep_outputs=True)
    path = str(tmp_path / "out.npz")
    save_outputs(result.outputs, path)
    with np.load(path) as saved:
        assert sorted(saved.files) == ["a", "b", "input", "r"]
        np.testing.assert_array_equal(saved["b"], result.outputs["b"])
    with pytest.raises(FileProblemError, match="overwrite"):
        save_outputs({"x": np.zeros(1)}, path)
    with np.load(path) as saved:
        assert "b" in saved.files
    save_outputs({"x": np.zeros(1)}, path, overwrite=True)
    with np.load(path) as saved:
        assert saved.files == ["x"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npz"]  # no temporary left behind


def test_overwritten_input_compares_files_not_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d").mkdir()
    stack = tmp_path / "d" / "net.yaml"
    stack.write_text("input: [1, 4, 4]\n")
    (tmp_path / "link.yaml").symlink_to(stack)
    (tmp_path / "other.npz").write_bytes(b"")
    inputs = ["d/net.yaml", "x.npy"]  # the data file does not exist: it cannot be overwritten
    for spelling in (str(stack), "d/net.yaml", "./d/../d/net.yaml", "link.yaml"):
        assert overwritten_input(spelling, inputs) == "d/net.yaml", spelling
    assert overwritten_input("link.yaml", [str(stack)]) == str(stack)
    assert overwritten_input(str(stack), ["link.yaml"]) == "link.yaml"  # the input given as a symlink
    assert overwritten_input("other.npz", inputs) is None
    assert overwritten_input("new.npz", inputs) is None


def test_save_outputs_never_replaces_a_kept_file_even_with_overwrite(tmp_path: Path) -> None:
    stack = tmp_path / "net.yaml"
    stack.write_text("input: [1, 4, 4]\n")
    (tmp_path / "out.npz").symlink_to(stack)
    with pytest.raises(FileProblemError, match="one of the run's own inputs") as info:
        save_outputs({"x": np.zeros(2)}, str(tmp_path / "out.npz"), overwrite=True, keep=[str(stack)])
    assert info.value.problems[0].parameter == "path"
    assert stack.read_text() == "input: [1, 4, 4]\n"
    assert (tmp_path / "out.npz").is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.yaml", "out.npz"]  # no temporary left behind


@contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.parametrize("proc", [True, False], ids=["from /proc", "from os.umask"])
@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o027, 0o640)])
def test_saved_files_get_the_mode_the_umask_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mask: int, mode: int, proc: bool
) -> None:
    """0666 less the umask, as open() would give a new file; mkstemp alone gives 0600 whatever the umask."""
    if not proc:
        monkeypatch.setattr(files, "_PROC_STATUS", str(tmp_path / "no-such-status"))
    path = tmp_path / "out.npz"
    with _umask(mask):
        save_outputs({"x": np.zeros(2)}, str(path))
        assert os.umask(mask) == mask  # reading the umask left it as it was
    assert stat.S_IMODE(path.stat().st_mode) == mode


def test_a_replaced_file_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "out.npz"
    path.write_bytes(b"old")
    path.chmod(0o640)
    with _umask(0o022):
        save_outputs({"x": np.zeros(2)}, str(path), overwrite=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # --force replaces the content, not who may read it
    with np.load(path) as saved:
        assert saved.files == ["x"]


def test_nobody_else_can_read_the_file_while_it_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    modes: list[int] = []
    savez = np.savez

    def watched(file: Any, **arrays: Any) -> None:
        savez(file, **arrays)
        modes.append(stat.S_IMODE(os.fstat(file.fileno()).st_mode))

    monkeypatch.setattr(runner.np, "savez", watched)
    with _umask(0o022):
        save_outputs({"x": np.zeros(2)}, str(tmp_path / "out.npz"))
    assert modes == [0o600]
    assert stat.S_IMODE((tmp_path / "out.npz").stat().st_mode) == 0o644


def test_progress_is_called_once_per_layer_in_order() -> None:
    calls: list[tuple[int, int, str]] = []
    run_stack(_stack(TWO_CONVS), progress=lambda done, total, layer: calls.append((done, total, layer.name)))
    assert calls == [(1, 3, "a"), (2, 3, "r"), (3, 3, "b")]


def test_only_live_outputs_are_kept_without_saving() -> None:
    result = run_stack(_stack(TWO_CONVS))
    assert list(result.outputs) == ["b"]


# -- differential against PyTorch --------------------------------------------------------------------
@pytest.fixture(scope="module")
def oracle() -> ModuleType:
    pytest.importorskip("torch")
    from tests import torch_oracle

    return torch_oracle


def _assert_equal_to_torch(oracle: ModuleType, spec: StackSpec, torch_may_refuse: bool = False, **kwargs: Any) -> None:
    import torch

    result = run_stack(spec, dtype="float64", keep_outputs=True, check=False, **kwargs)
    params = {name: (p.weight, p.bias) for name, p in result.params.items()}
    forward = oracle.build(spec, params=params)
    try:
        with torch.no_grad():
            theirs = forward(torch.from_numpy(result.outputs["input"]))
    except (RuntimeError, ValueError, TypeError):
        # Whether convcalc's arithmetic refuses exactly the stacks torch refuses is test_oracle_torch's
        # business (e.g. avg_pool3d's extra "input smaller than kernel" check); here only values count.
        if not torch_may_refuse:
            raise
        assume(False)
    else:
        assert result.ok, result.mismatches or result.failure
    for layer in result.layers:
        want = theirs[layer.name].numpy()
        got = result.outputs[layer.name]
        assert got.shape == want.shape, layer.name
        scale = max(float(np.abs(want).max()), 1.0)
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-10 * scale, err_msg=layer.name)


@pytest.mark.torch
@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_configs_equal_torch_layer_by_layer(oracle: ModuleType, path: Path) -> None:
    spec = _config(path)
    if path.stem == "vgg16":
        # Its classifier is 1 GiB of float64 weights whatever the input (adaptive pooling to 7×7);
        # linear layers are compared in the every-op and random stacks instead.
        spec = dataclasses.replace(spec, layers=spec.layers[: [x.name for x in spec.layers].index("flatten")])
    _assert_equal_to_torch(oracle, spec, batch=1 if path.stem in SMALL_INPUT else 2)


@pytest.mark.torch
@pytest.mark.parametrize("text", EVERY_OP.values(), ids=EVERY_OP.keys())
def test_every_op_equals_torch(oracle: ModuleType, text: str) -> None:
    _assert_equal_to_torch(oracle, _stack(text), batch=2)


@pytest.mark.torch
def test_seed_example_equals_torch(oracle: ModuleType) -> None:
    _assert_equal_to_torch(oracle, _stack(DECONV.format(k=3)), weights="ones", data="ones")


@pytest.mark.torch
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    doc=st.integers(1, 3).flatmap(
        lambda rank: stacks.stack(rank=rank, max_layers=5, size_range=(1, 20), every_op=True)
    ),
    seed=st.integers(0, 2**16),
)
def test_random_stacks_equal_torch(oracle: ModuleType, doc: dict[str, Any], seed: int) -> None:
    """Random 1-D to 3-D stacks over every op: the runner's outputs equal torch's with the same weights."""
    spec = parse_stack(yaml.safe_dump(doc), "<random>")
    try:
        report = analyze(spec)
    except ShapeError:
        report = None
    assume(report is not None)
    assert report is not None
    # Upsampling chains can make 3-D stacks huge; those prove nothing more and would be slow.
    assume(estimate_memory(spec, report, 1, "float64", keep_outputs=True).total < 64 * 2**20)
    _assert_equal_to_torch(oracle, spec, torch_may_refuse=True, seed=seed)
