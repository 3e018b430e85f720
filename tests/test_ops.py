"""Tests for convcalc.kernels.functional, the NumPy reference implementations of torch.nn.functional ops.

Three layers:
(a) golden tests: PyTorch outputs stored in tests/golden/ops/*.npz (regenerate with
    tests/make_ops_golden.py); they run without torch;
(b) randomised differential tests against live PyTorch (hypothesis), marked ``torch`` and
    skipped when torch is not importable;
(c) hand-derived examples from the conv-arithmetic reference (§1.3, §1.5, §1.7, §1.8, §1.9,
    §3.2), written out by hand.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from convcalc.kernels import functional as ops

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # the golden and hand-written tests still run
    torch = None
    F = None

GOLDEN = Path(__file__).resolve().parent / "golden" / "ops"

needs_torch = [
    pytest.mark.torch,
    pytest.mark.skipif(torch is None, reason="PyTorch is not importable"),
]

SETTINGS = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    derandomize=True,
    database=None,
)


def assert_close(ours: np.ndarray[Any, Any], ref: np.ndarray[Any, Any]) -> None:
    """float32: rtol 1e-4 / atol 1e-5 × output scale; float64: 1e-10 × output scale."""
    ref = np.asarray(ref)
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    assert ours.dtype == ref.dtype, (ours.dtype, ref.dtype)
    scale = max(float(np.abs(ref).max()) if ref.size else 0.0, 1.0)
    if ref.dtype == np.float32:
        np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5 * scale)
    else:
        np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-10 * scale)


# --------------------------------------------------------------------------------------------
# (a) golden files


def _golden_cases() -> list[Any]:
    cases = []
    for path in sorted(GOLDEN.glob("*.npz")):
        with np.load(path, allow_pickle=False) as data:
            n = len({k.split("/")[0] for k in data.files})
            for i in range(n):
                meta = json.loads(str(data[f"{i}/meta"]))
                cases.append(pytest.param(path.name, i, id=f"{path.stem}-{i}-{meta['fn']}"))
    return cases


def test_golden_files_exist() -> None:
    names = {p.stem for p in GOLDEN.glob("*.npz")}
    assert {"conv", "conv_transpose", "pool", "resample", "pad", "dense"} <= names
    assert sum(p.stat().st_size for p in GOLDEN.glob("*.npz")) < 1_000_000


@pytest.mark.parametrize(("file", "index"), _golden_cases())
def test_golden(file: str, index: int) -> None:
    with np.load(GOLDEN / file, allow_pickle=False) as data:
        meta = json.loads(str(data[f"{index}/meta"]))
        arrays = [data[f"{index}/{name}"] for name in meta["args"]]
        expected = data[f"{index}/expected"]
    kwargs = {k: (tuple(v) if isinstance(v, list) and k != "pad" else v) for k, v in meta["kwargs"].items()}
    if "padding" in kwargs and isinstance(kwargs["padding"], tuple) and kwargs["padding"]:
        kwargs["padding"] = tuple(tuple(p) if isinstance(p, list) else p for p in kwargs["padding"])
    ours = getattr(ops, meta["fn"])(*arrays, **kwargs)
    assert_close(ours, expected)


# --------------------------------------------------------------------------------------------
# (c) hand-derived examples (no torch)


def test_seed_conv_transpose_k3_checkerboard() -> None:
    x = np.ones((1, 1, 4, 4))
    out = ops.conv_transpose2d(x, np.ones((1, 1, 3, 3)), stride=2, padding=1)
    odd = [1, 2, 1, 2, 1, 2, 1]
    even = [2, 4, 2, 4, 2, 4, 2]
    expected = np.array([odd, even, odd, even, odd, even, odd], dtype=float)
    assert out.shape == (1, 1, 7, 7)
    np.testing.assert_array_equal(out[0, 0], expected)


def test_seed_conv_transpose_k4_flat_interior() -> None:
    x = np.ones((1, 1, 4, 4))
    out = ops.conv_transpose2d(x, np.ones((1, 1, 4, 4)), stride=2, padding=1)
    edge = [1, 2, 2, 2, 2, 2, 2, 1]
    inner = [2, 4, 4, 4, 4, 4, 4, 2]
    expected = np.array([edge] + [inner] * 6 + [edge], dtype=float)
    assert out.shape == (1, 1, 8, 8)
    np.testing.assert_array_equal(out[0, 0], expected)


def test_conv_transpose_output_padding_repeats_cropped_row() -> None:
    # Reference §3.2, k=3, op=1: the extra last row/column repeats 1 2 1 2 ...
    out = ops.conv_transpose2d(np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)), stride=2, padding=1, output_padding=1)
    odd = [1, 2, 1, 2, 1, 2, 1, 1]
    even = [2, 4, 2, 4, 2, 4, 2, 2]
    np.testing.assert_array_equal(out[0, 0], np.array([odd, even] * 3 + [odd, odd], dtype=float))


def test_conv_transpose_legal_output_padding_via_dilation() -> None:
    # Reference §1.2: s=1, d=2, op=1 is legal; ones(3) with k=2 → [1,1,2,1,1,0].
    out = ops.conv_transpose1d(np.ones((1, 1, 3)), np.ones((1, 1, 2)), output_padding=1, dilation=2)
    np.testing.assert_array_equal(out[0, 0], [1, 1, 2, 1, 1, 0])
    # Padding larger than d(k-1): k=1, s=2, p=1, L=4 → [0,1,0,1,0].
    out = ops.conv_transpose1d(np.ones((1, 1, 4)), np.ones((1, 1, 1)), stride=2, padding=1)
    np.testing.assert_array_equal(out[0, 0], [0, 1, 0, 1, 0])
    # Holes: ones(6), ones(3), s=2, d=2.
    out = ops.conv_transpose1d(np.ones((1, 1, 6)), np.ones((1, 1, 3)), stride=2, dilation=2)
    np.testing.assert_array_equal(out[0, 0], [1, 0, 2, 0, 3, 0, 3, 0, 3, 0, 3, 0, 2, 0, 1])


def test_conv_transpose_rejects_large_output_padding() -> None:
    with pytest.raises(ValueError, match="output padding must be smaller than either stride or dilation"):
        ops.conv_transpose2d(np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)), stride=2, output_padding=2)


def test_conv_shapes_from_reference() -> None:
    # §1.1: Conv3d(k=(3,5,1), s=(1,2,3), p=(1,2,0), d=(2,1,1)) on (7,9,10) → (5,5,4)
    out = ops.conv3d(np.zeros((1, 1, 7, 9, 10)), np.zeros((1, 1, 3, 5, 1)), None, (1, 2, 3), (1, 2, 0), (2, 1, 1))
    assert out.shape == (1, 1, 5, 5, 4)
    # §1.2: ConvTranspose3d(k=(3,4,2), s=(2,2,3), p=(1,1,0), op=(1,0,2)) on (4,5,6) → (8,10,19)
    out = ops.conv_transpose3d(
        np.zeros((1, 1, 4, 5, 6)), np.zeros((1, 1, 3, 4, 2)), None, (2, 2, 3), (1, 1, 0), (1, 0, 2)
    )
    assert out.shape == (1, 1, 8, 10, 19)


def test_conv_same_impulse_split() -> None:
    # §1.4: k=4 taps [1,10,100,1000], impulse at x[0] → [10,1,0,0,0,0]; circular → [10,1,0,0,1000,100].
    x = np.zeros((1, 1, 6))
    x[0, 0, 0] = 1
    w = np.array([1.0, 10, 100, 1000]).reshape(1, 1, 4)
    np.testing.assert_array_equal(ops.conv1d(x, w, padding="same")[0, 0], [10, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(
        ops.conv1d(x, w, padding="same", padding_mode="circular")[0, 0], [10, 1, 0, 0, 1000, 100]
    )


def test_conv_tf_same_strided_grid() -> None:
    # §1.10: in=6, k=3, s=2 → TF SAME pads (0, 1); tap k//2 reads indices 1, 3, 5.
    x = np.arange(6, dtype=float).reshape(1, 1, 6)
    centre = np.array([0.0, 1.0, 0.0]).reshape(1, 1, 3)
    np.testing.assert_array_equal(ops.conv1d(x, centre, stride=2, padding="same")[0, 0], [1, 3, 5])
    # 13, 6, 5 → pads (1, 2); tap 3 reads 2, 7, 12.
    x = np.arange(13, dtype=float).reshape(1, 1, 13)
    tap3 = np.zeros((1, 1, 6))
    tap3[0, 0, 3] = 1
    np.testing.assert_array_equal(ops.conv1d(x, tap3, stride=5, padding="same")[0, 0], [2, 7, 12])


def test_avg_pool_divisors_from_reference() -> None:
    ones6 = np.ones((1, 1, 6))
    np.testing.assert_allclose(ops.avg_pool1d(ones6, 3, 2, 1, ceil_mode=True)[0, 0], [2 / 3, 1, 1, 0.5])
    np.testing.assert_allclose(
        ops.avg_pool1d(ones6, 3, 2, 1, ceil_mode=True, count_include_pad=False)[0, 0], [1, 1, 1, 1]
    )
    np.testing.assert_allclose(ops.avg_pool1d(np.ones((1, 1, 5)), 3, 2, 1, ceil_mode=True)[0, 0], [2 / 3, 1, 2 / 3])
    ones44 = np.ones((1, 1, 4, 4))
    np.testing.assert_allclose(ops.avg_pool2d(ones44, 3, 2, 1)[0, 0], [[4 / 9, 6 / 9], [6 / 9, 1]])
    np.testing.assert_allclose(ops.avg_pool2d(ones44, 3, 2, 1, count_include_pad=False)[0, 0], np.ones((2, 2)))
    np.testing.assert_allclose(ops.avg_pool2d(ones44, 3, 2, 1, divisor_override=4)[0, 0], [[1, 1.5], [1.5, 2.25]])
    grid = np.arange(25, dtype=float).reshape(1, 1, 5, 5)
    out = ops.avg_pool2d(grid, 2, 2, ceil_mode=True)
    assert out.shape == (1, 1, 3, 3)
    assert out[0, 0, 0, 2] == pytest.approx((4 + 9) / 2)


def test_pool_ceil_mode_last_window_rule() -> None:
    # §1.3: L=5, k=2, s=3, p=1 → 2 windows (the third would start in the right padding).
    assert ops.max_pool1d(np.zeros((1, 1, 5)), 2, 3, 1, ceil_mode=True).shape[-1] == 2
    assert ops.max_pool1d(np.zeros((1, 1, 7)), 2, 3, 1, ceil_mode=True).shape[-1] == 3
    assert ops.max_pool1d(np.zeros((1, 1, 5)), 2, 2, 0, ceil_mode=True).shape[-1] == 3
    assert ops.max_pool2d(np.zeros((1, 1, 112, 112)), 3, 2, ceil_mode=True).shape[-2:] == (56, 56)
    assert ops.max_pool2d(np.zeros((1, 1, 112, 112)), 3, 2).shape[-2:] == (55, 55)
    assert ops.max_pool1d(np.zeros((1, 1, 2)), 2, 3, 1, ceil_mode=True).shape[-1] == 1
    with pytest.raises(ValueError, match="pad should be at most half of kernel size"):
        ops.max_pool2d(np.zeros((1, 1, 8, 8)), 3, padding=2)


def test_adaptive_bins_from_reference() -> None:
    x = np.arange(5, dtype=float).reshape(1, 1, 5)
    np.testing.assert_allclose(ops.adaptive_avg_pool1d(x, 3)[0, 0], [0.5, 2.0, 3.5])
    np.testing.assert_array_equal(ops.adaptive_max_pool1d(x, 3)[0, 0], [1, 3, 4])
    # 10 → 3: [0,4) [3,7) [6,10)
    x10 = np.arange(10, dtype=float).reshape(1, 1, 10)
    np.testing.assert_allclose(ops.adaptive_avg_pool1d(x10, 3)[0, 0], [1.5, 4.5, 7.5])
    # 3 → 5: [0,1) [0,2) [1,2) [1,3) [2,3)
    x3 = np.array([0.0, 10, 20]).reshape(1, 1, 3)
    np.testing.assert_allclose(ops.adaptive_avg_pool1d(x3, 5)[0, 0], [0, 5, 10, 15, 20])
    np.testing.assert_array_equal(ops.adaptive_max_pool1d(x3, 5)[0, 0], [0, 10, 10, 20, 20])
    assert ops.adaptive_avg_pool2d(np.zeros((1, 2, 7, 9)), (3, None)).shape == (1, 2, 3, 9)


def test_interpolate_examples_from_reference() -> None:
    def nearest(n_in: int, n_out: int) -> list[int]:
        x = np.arange(n_in, dtype=float).reshape(1, 1, n_in)
        return [int(v) for v in ops.interpolate(x, size=n_out)[0, 0]]

    assert nearest(5, 8) == [0, 0, 1, 1, 2, 3, 3, 4]
    assert nearest(5, 3) == [0, 1, 3]
    # Output sizes: floor(in·sf) in double, no epsilon.
    assert ops.interpolate(np.zeros((1, 1, 100)), scale_factor=0.29).shape[-1] == 28
    assert ops.interpolate(np.zeros((1, 1, 7)), scale_factor=0.7).shape[-1] == 4
    assert ops.interpolate(np.zeros((1, 1, 5)), scale_factor=2.3).shape[-1] == 11
    assert ops.interpolate(np.zeros((1, 1, 7)), scale_factor=1 / 3).shape[-1] == 2
    x2 = np.array([0.0, 10.0]).reshape(1, 1, 2)
    np.testing.assert_allclose(ops.interpolate(x2, size=4, mode="linear")[0, 0], [0, 2.5, 7.5, 10])
    np.testing.assert_allclose(
        ops.interpolate(x2, size=4, mode="linear", align_corners=True)[0, 0], [0, 10 / 3, 20 / 3, 10]
    )
    x3 = np.array([0.0, 10.0, 20.0]).reshape(1, 1, 3)
    np.testing.assert_allclose(ops.interpolate(x3, size=5, mode="linear", align_corners=True)[0, 0], [0, 5, 10, 15, 20])
    np.testing.assert_allclose(ops.interpolate(x3, size=5, mode="linear")[0, 0], [0, 4, 10, 16, 20])
    sq = np.array([[0.0, 1.0], [2.0, 3.0]]).reshape(1, 1, 2, 2)
    np.testing.assert_allclose(
        ops.interpolate(sq, size=(4, 4), mode="bilinear", align_corners=False)[0, 0],
        [[0, 0.25, 0.75, 1], [0.5, 0.75, 1.25, 1.5], [1.5, 1.75, 2.25, 2.5], [2, 2.25, 2.75, 3]],
    )
    np.testing.assert_allclose(
        ops.interpolate(sq, size=(4, 4), mode="bilinear", align_corners=True)[0, 0],
        np.array([[0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 6, 7], [6, 7, 8, 9]]) / 3,
    )
    x5 = np.arange(5, dtype=float).reshape(1, 1, 5)
    np.testing.assert_allclose(
        ops.interpolate(x5, scale_factor=1.5, mode="linear")[0, 0],
        [0, 0.5, 7 / 6, 11 / 6, 2.5, 19 / 6, 23 / 6],
    )
    np.testing.assert_allclose(
        ops.interpolate(x5, scale_factor=1.5, mode="linear", recompute_scale_factor=True)[0, 0],
        [0, 4 / 7, 9 / 7, 2, 19 / 7, 24 / 7, 4],
    )
    with pytest.raises(ValueError, match="align_corners option can only be set"):
        ops.interpolate(x5, size=3, mode="nearest", align_corners=True)


def test_pad_modes_table_from_reference() -> None:
    x = np.arange(1, 7, dtype=float).reshape(1, 1, 6)
    np.testing.assert_array_equal(ops.pad(x, (2, 2))[0, 0], [0, 0, 1, 2, 3, 4, 5, 6, 0, 0])
    np.testing.assert_array_equal(ops.pad(x, (2, 2), mode="reflect")[0, 0], [3, 2, 1, 2, 3, 4, 5, 6, 5, 4])
    np.testing.assert_array_equal(ops.pad(x, (2, 2), mode="replicate")[0, 0], [1, 1, 1, 2, 3, 4, 5, 6, 6, 6])
    np.testing.assert_array_equal(ops.pad(x, (2, 2), mode="circular")[0, 0], [5, 6, 1, 2, 3, 4, 5, 6, 1, 2])
    assert ops.pad(x, (6, 6), mode="circular").shape[-1] == 18
    assert ops.pad(x, (5, 5), mode="reflect").shape[-1] == 16
    with pytest.raises(ValueError, match="wrapping around more than once"):
        ops.pad(x, (7, 0), mode="circular")
    with pytest.raises(ValueError, match="less than the corresponding input dimension"):
        ops.pad(x, (6, 6), mode="reflect")
    np.testing.assert_array_equal(ops.pad(x, (-1, -2))[0, 0], [2, 3, 4])


def test_pixel_shuffle_example_from_reference() -> None:
    x = np.arange(16, dtype=float).reshape(1, 4, 2, 2)
    out = ops.pixel_shuffle(x, 2)
    np.testing.assert_array_equal(out[0, 0], [[0, 4, 1, 5], [8, 12, 9, 13], [2, 6, 3, 7], [10, 14, 11, 15]])
    np.testing.assert_array_equal(ops.pixel_unshuffle(out, 2), x)
    with pytest.raises(ValueError, match="divisible by the square of upscale_factor"):
        ops.pixel_shuffle(np.zeros((1, 6, 2, 2)), 2)


def test_conv_validation_messages() -> None:
    x = np.zeros((1, 4, 5, 5))
    with pytest.raises(ValueError, match="groups"):
        ops.conv2d(x, np.zeros((6, 2, 3, 3)), groups=0)
    with pytest.raises(ValueError, match="expects 6 input"):
        ops.conv2d(x, np.zeros((6, 2, 3, 3)), groups=3)
    with pytest.raises(ValueError, match="out_channels"):
        ops.conv2d(x, np.zeros((5, 2, 3, 3)), groups=2)
    with pytest.raises(ValueError, match="can't be greater than the actual input size"):
        ops.conv2d(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 3, 3)))
    with pytest.raises(ValueError, match="padding_mode"):
        ops.conv2d(x, np.zeros((1, 4, 3, 3)), padding_mode="mirror")
    with pytest.raises(ValueError, match="stride"):
        ops.conv2d(x, np.zeros((1, 4, 3, 3)), stride=0)


def test_misc_ops_by_hand() -> None:
    x = np.array([-2.0, -0.5, 0.0, 3.0, 7.0])
    np.testing.assert_array_equal(ops.relu(x), [0, 0, 0, 3, 7])
    np.testing.assert_array_equal(ops.relu6(x), [0, 0, 0, 3, 6])
    np.testing.assert_allclose(ops.leaky_relu(x, 0.1), [-0.2, -0.05, 0, 3, 7])
    np.testing.assert_allclose(ops.sigmoid(np.array([0.0, 1000.0, -1000.0])), [0.5, 1.0, 0.0])
    np.testing.assert_allclose(ops.gelu(np.array([0.0, 1.0])), [0.0, 0.5 * (1 + math.erf(1 / math.sqrt(2)))])
    assert ops.flatten(np.zeros((2, 3, 4, 5))).shape == (2, 60)
    np.testing.assert_allclose(
        ops.linear(np.array([[1.0, 2.0]]), np.array([[3.0, 4.0], [5.0, 6.0]]), np.array([1.0, -1.0])),
        [[12.0, 16.0]],
    )
    bn = ops.batch_norm(np.full((1, 2, 1), 3.0), np.array([1.0, 3.0]), np.array([4.0, 1.0]), eps=0.0)
    np.testing.assert_allclose(bn[0, :, 0], [1.0, 0.0])
    np.testing.assert_array_equal(ops.dropout(x, 0.3), x)
    with pytest.raises(ValueError, match="training"):
        ops.dropout(x, 0.3, training=True)
    with pytest.raises(ValueError, match="training"):
        ops.batch_norm(x.reshape(1, 5), np.zeros(5), np.ones(5), training=True)


def test_chunked_elementwise_ops_keep_their_identities_across_chunks() -> None:
    """σ(x) + σ(−x) = 1 and gelu(x) − gelu(−x) = x·(Φ(x) + Φ(−x)) = x, element by element, on an array of
    two full chunks and a partial one (and its non-contiguous transpose)."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 7, 4099)) * 6
    assert x.size > 2 * ops._CHUNK
    for arr in (x, x.transpose(2, 0, 1)):
        np.testing.assert_allclose(ops.sigmoid(arr) + ops.sigmoid(-arr), 1.0, rtol=0, atol=1e-15)
        np.testing.assert_allclose(ops.gelu(arr) - ops.gelu(-arr), arr, rtol=1e-15, atol=1e-15)
        np.testing.assert_allclose(ops.silu(arr), arr * ops.sigmoid(arr), rtol=1e-15)
        np.testing.assert_array_equal(ops.leaky_relu(arr, 0.25) == arr, arr > 0)
        assert ops.sigmoid(arr).shape == arr.shape


def test_dtype_kept() -> None:
    x = np.ones((1, 2, 6, 6), dtype=np.float32)
    w = np.ones((3, 2, 3, 3), dtype=np.float64)
    assert ops.conv2d(x, w).dtype == np.float32
    assert ops.max_pool2d(x, 2).dtype == np.float32
    assert ops.interpolate(x, scale_factor=1.5, mode="bilinear").dtype == np.float32
    assert ops.conv_transpose2d(x.astype(np.float64), w.transpose(1, 0, 2, 3)).dtype == np.float64


def test_thread_count_does_not_change_results() -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 16, 40, 40))
    w = rng.standard_normal((16, 1, 3, 3))
    try:
        ops.set_num_threads(1)
        one = ops.conv2d(x, w, padding=1, groups=16)
        ops.set_num_threads(3)
        three = ops.conv2d(x, w, padding=1, groups=16)
    finally:
        ops.set_num_threads(2)
    np.testing.assert_array_equal(one, three)


# --------------------------------------------------------------------------------------------
# (b) differential tests against live PyTorch


def _t(a: np.ndarray[Any, Any]) -> Any:
    return torch.from_numpy(np.ascontiguousarray(a))


def _torch_or_error(fn: Any) -> Any:
    try:
        with torch.no_grad():
            return fn().numpy()
    except (RuntimeError, ValueError, IndexError, NotImplementedError):
        return None


dtypes = st.sampled_from([np.float32, np.float64])


@st.composite
def conv_params(draw: Any) -> dict[str, Any]:
    nd = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 3))
    cg = draw(st.integers(1, 3))
    og = draw(st.integers(1, 3))
    kmax = 4 if nd < 3 else 3
    k = tuple(draw(st.integers(1, kmax)) for _ in range(nd))
    s = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    d = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    p = tuple(draw(st.integers(0, 3)) for _ in range(nd))
    size = tuple(draw(st.integers(1, 9 if nd < 3 else 6)) for _ in range(nd))
    return {
        "nd": nd,
        "n": draw(st.integers(1, 2)),
        "groups": groups,
        "cin": groups * cg,
        "cout": groups * og,
        "k": k,
        "s": s,
        "d": d,
        "p": p,
        "size": size,
        "mode": draw(st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"])),
        "bias": draw(st.booleans()),
        "dtype": draw(dtypes),
    }


pytestmark_torch = needs_torch


@pytest.mark.torch
@pytest.mark.skipif(torch is None, reason="PyTorch is not importable")
@SETTINGS
@given(conv_params(), st.integers(0, 2**31 - 1))
def test_conv_matches_torch(prm: dict[str, Any], seed: int) -> None:
    rng = np.random.default_rng(seed)
    nd, dt = prm["nd"], prm["dtype"]
    x = rng.standard_normal((prm["n"], prm["cin"], *prm["size"])).astype(dt)
    w = rng.standard_normal((prm["cout"], prm["cin"] // prm["groups"], *prm["k"])).astype(dt)
    b = rng.standard_normal(prm["cout"]).astype(dt) if prm["bias"] else None
    tf = getattr(F, f"conv{nd}d")
    mode = prm["mode"]

    def ref() -> Any:
        tb = None if b is None else _t(b)
        if mode == "zeros":
            return tf(_t(x), _t(w), tb, prm["s"], prm["p"], prm["d"], prm["groups"])
        pads = [v for pi in reversed(prm["p"]) for v in (pi, pi)]
        return tf(F.pad(_t(x), pads, mode=mode), _t(w), tb, prm["s"], 0, prm["d"], prm["groups"])

    expected = _torch_or_error(ref)
    ours_fn = getattr(ops, f"conv{nd}d")
    if expected is None:
        with pytest.raises(ValueError, match=r"\w+"):  # any clear message; torch raised too
            ours_fn(x, w, b, prm["s"], prm["p"], prm["d"], prm["groups"], padding_mode=mode)
    else:
        assert_close(ours_fn(x, w, b, prm["s"], prm["p"], prm["d"], prm["groups"], padding_mode=mode), expected)


@pytest.mark.torch
@pytest.mark.skipif(torch is None, reason="PyTorch is not importable")
@SETTINGS
@given(conv_params(), st.integers(0, 2**31 - 1), st.booleans())
def test_conv_same_and_asymmetric_match_torch(prm: dict[str, Any], seed: int, asym: bool) -> None:
    rng = np.random.default_rng(seed)
    nd, dt = prm["nd"], prm["dtype"]
    x = rng.standard_normal((prm["n"], prm["cin"], *prm["size"])).astype(dt)
    w = rng.standard_normal((prm["cout"], prm["cin"] // prm["groups"], *prm["k"])).astype(dt)
    tf = getattr(F, f"conv{nd}d")
    ours_fn = getattr(ops, f"conv{nd}d")
    if asym:
        pairs = [(int(rng.integers(0, 4)), int(rng.integers(0, 4))) for _ in range(nd)]
        padding: Any = pairs
    else:
        # TF SAME (at stride 1 this is PyTorch's own 'same').
        pairs = []
        for n_, k_, s_, d_ in zip(prm["size"], prm["k"], prm["s"], prm["d"], strict=True):
            total = max((-(-n_ // s_) - 1) * s_ + d_ * (k_ - 1) + 1 - n_, 0)
            pairs.append((total // 2, total - total // 2))
        padding = "same"
    flat = [v for pr in reversed(pairs) for v in pr]
    expected = _torch_or_error(lambda: tf(F.pad(_t(x), flat), _t(w), None, prm["s"], 0, prm["d"], prm["groups"]))
    assume(expected is not None)
    assert_close(ours_fn(x, w, None, prm["s"], padding, prm["d"], prm["groups"]), expected)
    if padding == "same" and all(s_ == 1 for s_ in prm["s"]):
        native = _torch_or_error(lambda: tf(_t(x), _t(w), None, 1, "same", prm["d"], prm["groups"]))
        assert_close(ours_fn(x, w, None, 1, "same", prm["d"], prm["groups"]), native)


@pytest.mark.torch
@pytest.mark.skipif(torch is None, reason="PyTorch is not importable")
@SETTINGS
@given(conv_params(), st.integers(0, 2**31 - 1), st.data())
def test_conv_transpose_matches_torch(prm: dict[str, Any], seed: int, data: Any) -> None:
    rng = np.random.default_rng(seed)
    nd, dt = prm["nd"], prm["dtype"]
    size = tuple(min(v, 5) for v in prm["size"])
    op = tuple(
        data.draw(st.integers(0, max(s_, d_) - 1 + (1 if seed % 9 == 0 else 0)))
        for s_, d_ in zip(prm["s"], prm["d"], strict=True)
    )
    x = rng.standard_normal((prm["n"], prm["cin"], *size)).astype(dt)
    w = rng.standard_normal((prm["cin"], prm["cout"] // prm["groups"], *prm["k"])).astype(dt)
    b = rng.standard_normal(prm["cout"]).astype(dt) if prm["bias"] else None
    tf = getattr(F, f"conv_transpose{nd}d")
    args = (prm["s"], prm["p"], op, prm["groups"], prm["d"])
    expected = _torch_or_error(lambda: tf(_t(x), _t(w), None if b is None else _t(b), *args))
    ours_fn = getattr(ops, f"conv_transpose{nd}d")
    if expected is None:
        with pytest.raises(ValueError, match=r"\w+"):  # any clear message; torch raised too
            ours_fn(x, w, b, *args)
    else:
        assert_close(ours_fn(x, w, b, *args), expected)


@st.composite
def pool_params(draw: Any) -> dict[str, Any]:
    nd = draw(st.integers(1, 3))
    k = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    d = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    return {
        "nd": nd,
        "k": k,
        "s": draw(st.none() | st.tuples(*(st.integers(1, 4) for _ in range(nd)))),
        "p": tuple(
            draw(st.integers(0, (di * (ki - 1) + 1) // 2 + (1 if draw(st.integers(0, 9)) == 0 else 0)))
            for ki, di in zip(k, d, strict=True)
        ),
        "d": d,
        "size": tuple(draw(st.integers(1, 10 if nd < 3 else 6)) for _ in range(nd)),
        "ceil": draw(st.booleans()),
        "cip": draw(st.booleans()),
        "dtype": draw(dtypes),
        "override": draw(st.none() | st.integers(1, 5)),
        "unbatched": draw(st.integers(0, 5)) == 0,
    }


@pytest.mark.torch
@pytest.mark.skipif(torch is None, reason="PyTorch is not importable")
@SETTINGS
@given(pool_params(), st.integers(0, 2**31 - 1))
def test_max_pool_matches_torch(prm: dict[str, Any], seed: int) -> None:
    rng = np.random.default_rng(seed)
    nd = prm["nd"]
    lead = (3,) if prm["unbatched"] else (2, 3)
    x = rng.standard_normal((*lead, *prm["size"])).astype(prm["dtype"])
    args = (prm["k"], prm["s"], prm["p"], prm["d"], prm["ceil"])
    expected = _torch_or_error(lambda: getattr(F, f"max_pool{nd}d")(_t(x), *args))
    ours_fn = getattr(ops, f"max_pool{nd}d")
    if expected is None:
        with pytest.raises(ValueError, match=r"\w+"):  # any clear message; torch raised too
            ours_fn(x, *args)
    else:
        assert_close(ours_fn(x, *args), expected)


@pytest.mark.torch
@pytest.mark.skipif(torch is None, reason="PyTorch is not importable")
@SETTINGS
@given(pool_params(), st.integers(0, 2**31 - 1))
def test_avg_pool_matches_torch(prm: dict[str, Any], seed: int) -> None:
    rng = np.random.default_rng(seed)
    nd = prm["nd"]
    lead = (3,) if prm["unbatched"] else (2, 3)
    x = rng.standard_normal((*lead, *prm["size"])).astype(prm["dtype"])
    p = tuple(min(pi, ki // 2 + (1 if pi > (ki // 2) else 0)) for pi, ki in zip(prm["p"], prm["k"], strict=True))
    args: tuple[Any, ...] = (prm["k"], prm["s"], p, prm["ceil"], prm["cip"])
    if nd > 1:
        args = (*args, prm["override"])
    expected = _torch_or_error(lambda: getattr(F, f"avg_pool{nd}d")(_t(x), *args))
    ours_fn = getattr(ops, f"avg_pool{nd}d")
    if expected is None:
        with pytest.raises(ValueError, match=r"\w+"):  # any clear message; torch raised too
            ours_fn(x, *args)
    else:
        assert_close(ours_fn(x, *args), expected)


@pytest.mark.torch
@pytest.mark.skipif(torch is None, reason="PyTorch is not importable")
@SETTINGS
@given(
    st.integers(1, 3),
    st.data(),
    st.sampled_from(["avg", "max"]),
    dtypes,
    st.integers(0, 2**31 - 1),
)
def test_adaptive_pool_matches_torch(nd: int, data: Any, kind: str, dt: Any, seed: int) -> None:
    size = tuple(data.draw(st.integers(1, 11)) for _ in range(nd))
    outs = tuple(data.draw(st.none() | st.integers(1, 9)) for _ in range(nd))
    x = np.random.default_rng(seed).standard_normal((2, 3, *size)).astype(dt)
    arg: Any = outs if nd > 1 else (outs[0] if outs[0] is not None else 4)
    expected = _torch_or_error(lambda: getattr(F, f"adaptive_{kind}_pool{nd}d")(_t(x), arg))
    assume(expected is not None)
    assert_close(getattr(ops, f"adaptive_{kind}_pool{nd}d")(x, arg), expected)


@pytest.mark.torch
@pytest.mark.skipif(torch is None, reason="PyTorch is not importable")
@SETTINGS
@given(st.integers(1, 3), st.data(), dtypes, st.integers(0, 2**31 - 1))
def test_interpolate_matches_torch(nd: int, data: Any, dt: Any, seed: int) -> None:
    size = tuple(data.draw(st.integers(1, 9)) for _ in range(nd))
    mode = data.draw(st.sampled_from(["nearest", {1: "linear", 2: "bilinear", 3: "trilinear"}[nd]]))
    kw: dict[str, Any] = {"mode": mode}
    if data.draw(st.booleans()):
        kw["size"] = tuple(data.draw(st.integers(1, 13)) for _ in range(nd))
    else:
        sf = tuple(data.draw(st.floats(0.3, 3.5, allow_nan=False).map(lambda v: round(v, 3))) for _ in range(nd))
        assume(all(math.floor(n_ * f) >= 1 for n_, f in zip(size, sf, strict=True)))
        kw["scale_factor"] = sf
        kw["recompute_scale_factor"] = data.draw(st.sampled_from([None, False, True]))
    if mode != "nearest":
        kw["align_corners"] = data.draw(st.booleans())
    x = np.random.default_rng(seed).standard_normal((2, 3, *size)).astype(dt)
    expected = _torch_or_error(lambda: F.interpolate(_t(x), **kw))
    assume(expected is not None)
    assert_close(ops.interpolate(x, **kw), expected)


@pytest.mark.torch
@pytest.mark.skipif(torch is None, reason="PyTorch is not importable")
@SETTINGS
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 4), st.integers(1, 4), dtypes, st.booleans())
def test_pixel_shuffle_matches_torch(r: int, c: int, h: int, w: int, dt: Any, unshuffle: bool) -> None:
    rng = np.random.default_rng(r * 1000 + c * 100 + h * 10 + w)
    if unshuffle:
        x = rng.standard_normal((2, c, h * r, w * r)).astype(dt)
        assert_close(ops.pixel_unshuffle(x, r), F.pixel_unshuffle(_t(x), r).numpy())
    else:
        x = rng.standard_normal((2, c * r * r, h, w)).astype(dt)
        assert_close(ops.pixel_shuffle(x, r), F.pixel_shuffle(_t(x), r).numpy())


@pytest.mark.torch
@pytest.mark.skipif(torch is None, reason="PyTorch is not importable")
@SETTINGS
@given(st.integers(1, 3), st.data(), st.sampled_from(["constant", "reflect", "replicate", "circular"]), dtypes)
def test_pad_matches_torch(npairs: int, data: Any, mode: str, dt: Any) -> None:
    size = tuple(data.draw(st.integers(1, 5)) for _ in range(npairs))
    x = np.random.default_rng(sum(size)).standard_normal((2, 2, *size)).astype(dt)
    pads: list[int] = []
    for s_ in reversed(size):
        # Around the limits: reflect pad = size-1 is legal, size is not; circular = size is legal.
        lo = -2 if mode == "constant" else 0
        pads += [data.draw(st.integers(lo, s_ + 1)), data.draw(st.integers(lo, s_ + 1))]
    value = data.draw(st.sampled_from([None, 2.5])) if mode == "constant" else None
    expected = _torch_or_error(lambda: F.pad(_t(x), pads, mode=mode, value=value))
    if expected is None:
        with pytest.raises(ValueError, match=r"\w+"):  # any clear message; torch raised too
            ops.pad(x, pads, mode=mode, value=value)
    else:
        assert_close(ops.pad(x, pads, mode=mode, value=value), expected)


@pytest.mark.torch
@pytest.mark.skipif(torch is None, reason="PyTorch is not importable")
@settings(max_examples=40, deadline=None, database=None, derandomize=True)
@given(dtypes, st.integers(0, 2**31 - 1), st.floats(0.0, 0.5))
def test_dense_ops_match_torch(dt: Any, seed: int, slope: float) -> None:
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((3, 4, 5)) * 5).astype(dt)
    tx = _t(x)
    assert_close(ops.relu(x), F.relu(tx).numpy())
    assert_close(ops.relu6(x), F.relu6(tx).numpy())
    assert_close(ops.leaky_relu(x, slope), F.leaky_relu(tx, slope).numpy())
    assert_close(ops.gelu(x), F.gelu(tx).numpy())
    assert_close(ops.gelu(x, approximate="tanh"), F.gelu(tx, approximate="tanh").numpy())
    assert_close(ops.silu(x), F.silu(tx).numpy())
    assert_close(ops.sigmoid(x), torch.sigmoid(tx).numpy())
    assert_close(ops.tanh(x), torch.tanh(tx).numpy())
    assert_close(ops.flatten(x), torch.flatten(tx, 1).numpy())
    w = rng.standard_normal((6, 5)).astype(dt)
    b = rng.standard_normal(6).astype(dt)
    assert_close(ops.linear(x, w, b), F.linear(tx, _t(w), _t(b)).numpy())
    mean, var = rng.standard_normal(4).astype(dt), rng.uniform(0.1, 2, 4).astype(dt)
    g, bb = rng.standard_normal(4).astype(dt), rng.standard_normal(4).astype(dt)
    assert_close(
        ops.batch_norm(x, mean, var, g, bb, eps=1e-4),
        F.batch_norm(tx, _t(mean), _t(var), _t(g), _t(bb), training=False, eps=1e-4).numpy(),
    )
    assert_close(ops.dropout(x, 0.5, training=False), F.dropout(tx, 0.5, training=False).numpy())


@pytest.mark.torch
@pytest.mark.skipif(torch is None, reason="PyTorch is not importable")
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_chunked_elementwise_ops_match_torch_across_chunks(dt: Any) -> None:
    """The elementwise ops run over chunks of the flattened input: two full chunks and a partial one."""
    rng = np.random.default_rng(12)
    x = (rng.standard_normal((3, 7, 4099)) * 6).astype(dt)
    for arr in (x, x.transpose(2, 0, 1)):
        tx = _t(arr)
        assert_close(ops.sigmoid(arr), torch.sigmoid(tx).numpy())
        assert_close(ops.silu(arr), F.silu(tx).numpy())
        assert_close(ops.gelu(arr), F.gelu(tx).numpy())
        assert_close(ops.gelu(arr, approximate="tanh"), F.gelu(tx, approximate="tanh").numpy())
        assert_close(ops.leaky_relu(arr, 0.2), F.leaky_relu(tx, 0.2).numpy())


@pytest.mark.torch
@pytest.mark.skipif(torch is None, reason="PyTorch is not importable")
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_edge_cases_match_torch(dt: Any) -> None:
    rng = np.random.default_rng(7)
    # Larger depthwise / grouped / strided convs exercise the flat-tap and threaded paths.
    x = rng.standard_normal((2, 12, 37, 41)).astype(dt)
    for groups, cg, k, s, p, d in [(12, 1, 3, 1, 1, 1), (12, 1, 5, 2, 2, 1), (4, 3, 3, 2, 1, 2), (1, 12, 7, 2, 3, 1)]:
        w = rng.standard_normal((groups * 2, cg, k, k)).astype(dt)
        assert_close(ops.conv2d(x, w, None, s, p, d, groups), F.conv2d(_t(x), _t(w), None, s, p, d, groups).numpy())
    # Sizes of 1.
    x1 = rng.standard_normal((1, 2, 1, 1)).astype(dt)
    w1 = rng.standard_normal((3, 2, 1, 1)).astype(dt)
    assert_close(ops.conv2d(x1, w1), F.conv2d(_t(x1), _t(w1)).numpy())
    assert_close(
        ops.interpolate(x1, size=(3, 4), mode="bilinear"), F.interpolate(_t(x1), size=(3, 4), mode="bilinear").numpy()
    )
    assert_close(ops.max_pool2d(x1, 1), F.max_pool2d(_t(x1), 1).numpy())
    # Unbatched inputs.
    xu = rng.standard_normal((4, 9)).astype(dt)
    wu = rng.standard_normal((2, 4, 3)).astype(dt)
    assert_close(ops.conv1d(xu, wu, padding=1), F.conv1d(_t(xu), _t(wu), padding=1).numpy())
    wt = rng.standard_normal((4, 3, 3)).astype(dt)
    assert_close(ops.conv_transpose1d(xu, wt, None, 2, 1, 1), F.conv_transpose1d(_t(xu), _t(wt), None, 2, 1, 1).numpy())
    # Nearest with fractional scale, bilinear both corner modes.
    xi = rng.standard_normal((1, 2, 7, 5)).astype(dt)
    for sf in (0.7, 1.3, 2.5, 1 / 3 + 1):
        assert_close(ops.interpolate(xi, scale_factor=sf), F.interpolate(_t(xi), scale_factor=sf).numpy())
        for ac in (False, True):
            assert_close(
                ops.interpolate(xi, scale_factor=sf, mode="bilinear", align_corners=ac),
                F.interpolate(_t(xi), scale_factor=sf, mode="bilinear", align_corners=ac).numpy(),
            )
