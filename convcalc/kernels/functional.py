"""NumPy reference implementations of the ``torch.nn.functional`` ops that convcalc models.

Every public function mirrors its ``torch.nn.functional`` namesake (argument names, order and
defaults) on NumPy arrays laid out like PyTorch: batched ``(N, C, *spatial)``, where
``spatial`` is ``(W,)``, ``(H, W)`` or ``(D, H, W)``. Unbatched ``(C, *spatial)`` inputs are
accepted wherever PyTorch accepts them. float32 and float64 inputs keep their dtype; any other
floating dtype is computed in float32 and integer/bool inputs in float64 (PyTorch would refuse
most of those). Results agree with PyTorch to float tolerance, not bit for bit, except where a
docstring says "exact" (output sizes and the integer source indices of ``interpolate``).

The shape and index rules follow ATen's code (see the project's conv-arithmetic reference,
§1). Nothing here imports torch: PyTorch is only the test oracle.

Speed: convolutions are an im2col built from strided slices followed by one BLAS matmul
(groups batched through ``np.matmul`` broadcasting); depthwise convolutions and pooling are
a loop over kernel taps of whole-array operations; no Python loop ever runs over the batch
or the channels. Loops run over kernel taps, over fixed-size chunks of elements (multi-step
elementwise formulas, to keep their temporaries small), and in adaptive pooling over the
offsets within a bin or, when there are fewer of them, over the bins of one axis.

Memory: besides the ``torch.nn.functional`` names, the ``*_workspace`` functions state the
bytes of temporaries each op allocates besides its input and output (convcalc run's estimate).
"""

from __future__ import annotations

import itertools
import math
import operator
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

__all__ = [
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool3d",
    "adaptive_max_pool1d",
    "adaptive_max_pool2d",
    "adaptive_max_pool3d",
    "adaptive_pool_workspace",
    "add",
    "avg_pool1d",
    "avg_pool2d",
    "avg_pool3d",
    "batch_norm",
    "cat",
    "celu",
    "channel_shuffle",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "conv_transpose_workspace",
    "conv_workspace",
    "dropout",
    "elementwise_workspace",
    "elu",
    "flatten",
    "gelu",
    "group_norm",
    "hardsigmoid",
    "hardswish",
    "hardtanh",
    "instance_norm",
    "interpolate",
    "interpolate_workspace",
    "layer_norm_channels",
    "leaky_relu",
    "linear",
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "mish",
    "mul",
    "multi_head_attention",
    "pad",
    "pad_workspace",
    "pixel_shuffle",
    "pixel_unshuffle",
    "pool_workspace",
    "prelu",
    "relu",
    "relu6",
    "selu",
    "set_num_threads",
    "sigmoid",
    "silu",
    "softmax",
    "softplus",
    "sub",
    "tanh",
]

Array = npt.NDArray[Any]
IntArg = int | Sequence[int]
ConvPadding = int | str | Sequence[int | Sequence[int]]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
_PAD_MODES = ("constant", "reflect", "replicate", "circular")
_NP_PAD_MODE = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


# --------------------------------------------------------------------------------------------
# argument helpers


def _as_float(x: npt.ArrayLike, name: str = "input") -> Array:
    arr = np.asarray(x)
    if arr.dtype == np.float32 or arr.dtype == np.float64:
        return arr
    if arr.dtype.kind == "f":
        return arr.astype(np.float32)
    if arr.dtype.kind in "biu":
        return arr.astype(np.float64)
    raise ValueError(f"{name} must be a real numeric array, got dtype {arr.dtype}")


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be an int, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an int, got {value!r}") from None


def _ints(value: Any, n: int, name: str, minimum: int | None = None) -> tuple[int, ...]:
    """An int or a length-n (or length-1) sequence of ints, as PyTorch's ``_ntuple`` accepts."""
    if isinstance(value, str):
        raise ValueError(f"{name} must be an int or a sequence of {n} ints, got {value!r}")
    try:
        vals: tuple[int, ...] = (_int(value, name),) * n
    except ValueError:
        try:
            items = list(value)
        except TypeError:
            raise ValueError(f"{name} must be an int or a sequence of {n} ints, got {value!r}") from None
        vals = tuple(_int(v, name) for v in items)
        if len(vals) == 1:
            vals *= n
        if len(vals) != n:
            raise ValueError(f"{name} must be an int or a sequence of {n} ints, got {value!r}") from None
    if minimum is not None and any(v < minimum for v in vals):
        raise ValueError(f"{name} must be >= {minimum} on every axis, got {value!r}")
    return vals


def _batched(x: Array, nd: int, op: str) -> tuple[Array, bool]:
    """Add a batch axis to an unbatched input, as PyTorch does internally."""
    if x.ndim == nd + 2:
        return x, False
    if x.ndim == nd + 1:
        return x[None], True
    raise ValueError(f"{op}: expected a {nd + 1}-D (unbatched) or {nd + 2}-D (batched) input, got shape {x.shape}")


def _taps(kernel: Sequence[int]) -> Iterator[tuple[int, ...]]:
    return itertools.product(*(range(k) for k in kernel))


def _tap_slices(
    tap: Sequence[int], dilation: Sequence[int], stride: Sequence[int], out: Sequence[int]
) -> tuple[slice, ...]:
    """The input positions read by one kernel tap for every output position (a strided view)."""
    return tuple(
        slice(t * d, t * d + s * (o - 1) + 1, s) for t, d, s, o in zip(tap, dilation, stride, out, strict=True)
    )


def _lead(n: int) -> tuple[slice, ...]:
    return (slice(None),) * n


# --------------------------------------------------------------------------------------------
# threads
#
# BLAS already runs the GEMMs on every core, but NumPy's copies and elementwise loops are
# single-threaded. The copy/elementwise-bound stages (im2col fills, depthwise tap loops,
# pooling, col2im) therefore split the channel axis into one contiguous chunk per core and run
# the chunks in worker threads (NumPy releases the GIL inside those loops). Each chunk writes
# disjoint outputs, so results do not depend on the thread count.

_num_threads = max(1, min(os.cpu_count() or 1, 16))
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_MIN_PARALLEL_WORK = 1 << 16  # elements; below this the thread hand-off costs more than it saves


def set_num_threads(n: int) -> None:
    """Set how many threads the copy/elementwise-bound stages use (default: the core count)."""
    global _num_threads, _pool
    n = _int(n, "n")
    if n < 1:
        raise ValueError(f"set_num_threads: n must be >= 1, got {n}")
    with _pool_lock:
        _num_threads = n
        if _pool is not None:
            _pool.shutdown(wait=True)
            _pool = None


def _parallel(fn: Callable[[slice], None], size: int, work: int) -> None:
    """Run fn on contiguous slices covering range(size), one per thread when worth it."""
    global _pool
    nt = min(_num_threads, size)
    if nt <= 1 or work < _MIN_PARALLEL_WORK:
        fn(slice(0, size))
        return
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=max(_num_threads - 1, 1), thread_name_prefix="convcalc-ops")
        pool = _pool
    bounds = [size * i // nt for i in range(nt + 1)]
    futures = [pool.submit(fn, slice(bounds[i], bounds[i + 1])) for i in range(1, nt)]
    fn(slice(bounds[0], bounds[1]))
    for f in futures:
        f.result()


# --------------------------------------------------------------------------------------------
# elementwise chunks
#
# Elementwise formulas with several steps (sigmoid, GELU, ...) would hold several input-sized
# temporaries at once. They run over chunks of the flattened input instead, so their
# temporaries are chunk-sized and the op's memory is its input and its output (see
# elementwise_workspace). A chunk is a fixed number of elements, not a batch item or a channel.

_CHUNK = 1 << 15  # elements


def _map_chunks(x: Array, fn: Callable[[Array], Array]) -> Array:
    """fn applied to consecutive chunks of x (flattened), written into one output of x's shape and dtype."""
    out = np.empty(x.shape, dtype=x.dtype)
    src = np.ascontiguousarray(x).reshape(-1)
    dst = out.reshape(-1)
    for start in range(0, src.size, _CHUNK):
        dst[start : start + _CHUNK] = fn(src[start : start + _CHUNK])
    return out


# --------------------------------------------------------------------------------------------
# padding


def _pad_pairs(x: Array, pairs: Sequence[tuple[int, int]], mode: str, value: float = 0.0) -> Array:
    """Pad the trailing ``len(pairs)`` axes; ``pairs`` is in axis order (first spatial axis first).

    ``mode`` is one of constant/reflect/replicate/circular with F.pad's limits. Negative
    amounts crop (constant mode only, as in PyTorch).
    """
    nd = len(pairs)
    lead = x.ndim - nd
    spatial = x.shape[lead:]
    if mode == "constant":
        if all(b == 0 and a == 0 for b, a in pairs):
            return x
        final = tuple(size + b + a for size, (b, a) in zip(spatial, pairs, strict=True))
        # PyTorch crops (negative amounts) before it pads, so the cropped size must be >= 0 too.
        if any(f < 0 for f in final) or any(
            size + min(b, 0) + min(a, 0) < 0 for size, (b, a) in zip(spatial, pairs, strict=True)
        ):
            raise ValueError(f"pad: padding {list(pairs)} would give a negative size {final} for input {x.shape}")
        out = np.full(x.shape[:lead] + final, value, dtype=x.dtype)
        src: list[slice] = []
        dst: list[slice] = []
        for size, (b, _), f in zip(spatial, pairs, final, strict=True):
            # Output index i holds input index i - b when that is inside the input.
            start_out, start_in = max(b, 0), max(-b, 0)
            count = max(min(size - start_in, f - start_out), 0)
            src.append(slice(start_in, start_in + count))
            dst.append(slice(start_out, start_out + count))
        out[(*_lead(lead), *dst)] = x[(*_lead(lead), *src)]
        return out
    for axis, ((b, a), size) in enumerate(zip(pairs, spatial, strict=True)):
        if b < 0 or a < 0:
            raise ValueError(f"pad: negative padding is only supported in 'constant' mode, got ({b}, {a})")
        if mode == "reflect" and (b >= size or a >= size):
            raise ValueError(
                "pad: padding size should be less than the corresponding input dimension in 'reflect' "
                f"mode, but got padding ({b}, {a}) at dimension {lead + axis} of input {list(x.shape)}"
            )
        if mode == "circular" and (b > size or a > size):
            raise ValueError(
                f"pad: padding value causes wrapping around more than once in 'circular' mode: padding "
                f"({b}, {a}) at dimension {lead + axis} of input {list(x.shape)}"
            )
    if all(b == 0 and a == 0 for b, a in pairs):
        return x
    width = [(0, 0)] * lead + [(b, a) for b, a in pairs]
    result: Array = np.pad(x, width, mode=_NP_PAD_MODE[mode])  # type: ignore[call-overload]
    return result


def pad(input: npt.ArrayLike, pad: Sequence[int], mode: str = "constant", value: float | None = None) -> Array:
    """Pad like ``F.pad``: ``pad`` lists (left, right) pairs starting from the LAST axis.

    Modes: ``'constant'`` (fill ``value``, default 0; negative amounts crop), ``'reflect'``
    (mirror without repeating the edge; each amount must be < that axis' size),
    ``'replicate'`` (repeat the edge) and ``'circular'`` (wrap; each amount must be <= the
    size). Like PyTorch, the non-constant modes pad at most the last 3 axes and need at least
    one leading (channel) axis; ``value`` is refused for them.
    """
    x = _as_float(input)
    amounts = [_int(v, "pad") for v in pad]
    if len(amounts) % 2:
        raise ValueError(f"pad: the padding length must be even, got {len(amounts)} ({list(pad)})")
    npairs = len(amounts) // 2
    if npairs > x.ndim:
        raise ValueError(
            f"pad: the padding length ({len(amounts)}) must be at most twice the number of input dimensions ({x.ndim})"
        )
    if mode not in _PAD_MODES:
        raise ValueError(f"pad: mode must be one of {_PAD_MODES}, got {mode!r}")
    if mode != "constant":
        if value is not None and value != 0:
            raise ValueError(f"pad: padding mode {mode!r} doesn't take a value argument (got {value!r})")
        if npairs > 3 or not (npairs + 1 <= x.ndim <= npairs + 2):
            raise ValueError(
                f"pad: {mode!r} padding of {npairs} axes needs a {npairs + 1}-D or {npairs + 2}-D input, "
                f"got {x.ndim}-D (PyTorch pads only the last 1-3 axes in this mode)"
            )
    if npairs == 0:
        return x.copy()
    # F.pad's tuple starts from the last axis; _pad_pairs wants axis order.
    pairs = [(amounts[2 * i], amounts[2 * i + 1]) for i in range(npairs)][::-1]
    out = _pad_pairs(x, pairs, mode, 0.0 if value is None else float(value))
    return out if out is not x else x.copy()


def _conv_padding(
    padding: ConvPadding,
    nd: int,
    spatial: Sequence[int],
    kernel: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
) -> list[tuple[int, int]]:
    """Per-axis (before, after) amounts for a convolution's ``padding`` argument."""
    if isinstance(padding, str):
        if padding == "valid":
            return [(0, 0)] * nd
        if padding == "same":
            # TF/Keras SAME; at stride 1 this is exactly PyTorch's 'same' (total = d(k-1)).
            pairs = []
            for size, k, s, d in zip(spatial, kernel, stride, dilation, strict=True):
                out = -(-size // s)
                total = max((out - 1) * s + d * (k - 1) + 1 - size, 0)
                pairs.append((total // 2, total - total // 2))
            return pairs
        raise ValueError(f"padding must be an int, a sequence, 'same' or 'valid', got {padding!r}")
    if isinstance(padding, Sequence) and any(not isinstance(p, int | np.integer) for p in padding):
        if len(padding) != nd:
            raise ValueError(f"padding must have one entry per spatial axis ({nd}), got {padding!r}")
        pairs = []
        for p in padding:
            if isinstance(p, int | np.integer):
                pairs.append((int(p), int(p)))
                continue
            pair = [_int(v, "padding") for v in p]
            if len(pair) != 2:
                raise ValueError(f"padding entries must be an int or a (before, after) pair, got {p!r}")
            pairs.append((pair[0], pair[1]))
    else:
        pairs = [(p, p) for p in _ints(padding, nd, "padding")]
    if any(b < 0 or a < 0 for b, a in pairs):
        raise ValueError(f"negative padding is not supported, got padding={padding!r}")
    return pairs


# --------------------------------------------------------------------------------------------
# convolution


class _ConvGeometry(NamedTuple):
    """A convolution's sizes and the code path `_conv` takes (shared with `conv_workspace`)."""

    n: int
    cin: int
    cout: int
    groups: int
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    pre_pad: list[tuple[int, int]] | None  # padding_mode padding, applied to the input first
    pairs: list[tuple[int, int]]  # zero padding applied by the kernel path itself
    padded: tuple[int, ...]
    out_sp: tuple[int, ...]
    path: str  # depthwise | pointwise | flat | im2col


def _weight_and_groups(op: str, nd: int, w_shape: tuple[int, ...], groups: Any, layout: str) -> int:
    """Check a weight's rank (PyTorch's `layout` in the message) and groups; the groups as an int."""
    if len(w_shape) != nd + 2:
        raise ValueError(f"{op}: weight must be {nd + 2}-D {layout}, got shape {w_shape}")
    count = _int(groups, "groups")
    if count < 1:
        raise ValueError(f"{op}: groups must be a positive integer, got {count}")
    return count


def _conv_geometry(
    op: str,
    nd: int,
    x_shape: tuple[int, ...],
    w_shape: tuple[int, ...],
    stride: IntArg,
    padding: ConvPadding,
    dilation: IntArg,
    groups: int,
    padding_mode: str,
) -> _ConvGeometry:
    groups = _weight_and_groups(op, nd, w_shape, groups, "(C_out, C_in/groups, *kernel)")
    n, cin = x_shape[:2]
    cout = w_shape[0]
    if cout % groups:
        raise ValueError(f"{op}: out_channels ({cout}) must be divisible by groups ({groups})")
    if w_shape[1] * groups != cin:
        raise ValueError(
            f"{op}: weight of shape {w_shape} with groups={groups} expects {w_shape[1] * groups} input "
            f"channels, but the input has {cin} (shape {x_shape})"
        )
    kernel = tuple(w_shape[2:])
    if any(k < 1 for k in kernel):
        raise ValueError(f"{op}: kernel sizes must be positive, got weight shape {w_shape}")
    s = _ints(stride, nd, "stride", minimum=1)
    d = _ints(dilation, nd, "dilation", minimum=1)
    if padding_mode not in _PADDING_MODES:
        raise ValueError(f"{op}: padding_mode must be one of {_PADDING_MODES}, got padding_mode={padding_mode!r}")
    pairs = _conv_padding(padding, nd, x_shape[2:], kernel, s, d)
    pre_pad = None
    if padding_mode != "zeros":
        pre_pad, pairs = pairs, [(0, 0)] * nd
    padded = tuple(size + b + a for size, (b, a) in zip(x_shape[2:], pre_pad or pairs, strict=True))
    keff = tuple(di * (k - 1) + 1 for di, k in zip(d, kernel, strict=True))
    if any(p < k for p, k in zip(padded, keff, strict=True)):
        raise ValueError(
            f"{op}: calculated padded input size per channel {padded} is smaller than the effective "
            f"kernel size {keff}; the kernel can't be greater than the actual input size"
        )
    out_sp = tuple((p - k) // si + 1 for p, k, si in zip(padded, keff, s, strict=True))
    ktaps = math.prod(kernel)
    if groups > 1 and cin // groups == 1 and ktaps > 1:
        path = "depthwise"
    elif ktaps == 1 and all(si == 1 for si in s) and not any(b or a for b, a in pairs):
        path = "pointwise"
    elif _use_flat(s, d, kernel, out_sp, padded):
        path = "flat"
    else:
        path = "im2col"
    return _ConvGeometry(n, cin, cout, groups, kernel, s, d, pre_pad, pairs, padded, out_sp, path)


def _conv(
    op: str,
    nd: int,
    input: npt.ArrayLike,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None,
    stride: IntArg,
    padding: ConvPadding,
    dilation: IntArg,
    groups: int,
    padding_mode: str,
) -> Array:
    x, unbatched = _batched(_as_float(input), nd, op)
    dt = x.dtype
    w = np.asarray(weight, dtype=dt)
    geo = _conv_geometry(op, nd, x.shape, w.shape, stride, padding, dilation, groups, padding_mode)
    n, cin, cout, groups = geo.n, geo.cin, geo.cout, geo.groups
    kernel, s, d, pairs, out_sp = geo.kernel, geo.stride, geo.dilation, geo.pairs, geo.out_sp
    if geo.pre_pad is not None:
        x = _pad_pairs(x, geo.pre_pad, padding_mode)
    npos = math.prod(out_sp)
    cg, og = cin // groups, cout // groups
    ktaps = math.prod(kernel)

    if geo.path == "depthwise":
        out = _depthwise(x, w.reshape((groups, og, *kernel)), s, d, out_sp, pairs)
    elif geo.path == "pointwise":
        cols = x[_lead(2) + tuple(slice(0, o) for o in out_sp)]
        cols = np.ascontiguousarray(cols).reshape(n, groups, cg, npos)
        out = _grouped_matmul(w.reshape(groups, og, cg), cols)
    elif geo.path == "flat":
        flat = _FlatTaps(x, kernel, s, d, out_sp, pairs)
        cols = np.empty((n, cin, ktaps, flat.length), dtype=dt)
        taps = list(_taps(kernel))

        def fill_flat(ch: slice) -> None:
            for ti, tap in enumerate(taps):
                cols[:, ch, ti] = flat.view(tap)[:, ch]

        _parallel(fill_flat, cin, cols.size)
        ext = _grouped_matmul(w.reshape(groups, og, cg * ktaps), cols.reshape(n, groups, cg * ktaps, -1))
        del cols  # the columns go before the crop copies the output (conv_workspace counts on it)
        out = flat.crop(ext.reshape(n, cout, -1))
    else:
        x = _pad_pairs(x, pairs, "constant")
        cols = np.empty((n, cin, *kernel, *out_sp), dtype=dt)
        xpad = x

        def fill(ch: slice) -> None:
            for tap in _taps(kernel):
                index: tuple[Any, ...] = (slice(None), ch, *tap)
                cols[index] = xpad[(slice(None), ch, *_tap_slices(tap, d, s, out_sp))]

        _parallel(fill, cin, cols.size)
        out = _grouped_matmul(w.reshape(groups, og, cg * ktaps), cols.reshape(n, groups, cg * ktaps, npos))
    out = out.reshape((n, cout, *out_sp))
    if bias is not None:
        b = np.asarray(bias, dtype=dt)
        if b.shape != (cout,):
            raise ValueError(f"{op}: bias must have shape ({cout},), got {b.shape}")
        out += b.reshape((cout,) + (1,) * nd)
    return out[0] if unbatched else out


def _grouped_matmul(wm: Array, cols: Array) -> Array:
    """(g, M, K) weights times (N, g, K, P) columns → (N, g, M, P); one BLAS call per (n, group)."""
    result: Array = np.matmul(wm[0], cols[:, 0])[:, None] if wm.shape[0] == 1 else np.matmul(wm, cols)
    return result


def _use_flat(
    stride: Sequence[int],
    dilation: Sequence[int],
    kernel: Sequence[int],
    out_sp: Sequence[int],
    padded: Sequence[int],
) -> bool:
    """Whether the flat tap layout (contiguous tap copies, a few wasted columns) should win."""
    flat = _flat_length(stride, padded, out_sp)
    npos = math.prod(out_sp)
    # The GEMM dominates; the flat layout's extra columns cost GEMM time, its contiguous tap
    # copies save copy time. Short output rows make the strided copies slow.
    return flat <= 1.06 * npos or (out_sp[-1] < 24 and flat <= 1.35 * npos and math.prod(kernel) > 9)


def _flat_length(stride: Sequence[int], padded: Sequence[int], out_sp: Sequence[int]) -> int:
    q = [-(-p // s) for p, s in zip(padded, stride, strict=True)]
    return out_sp[0] * math.prod(q[1:])


def _flat_layout(
    padded: Sequence[int], kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int]
) -> tuple[tuple[int, ...], list[tuple[int, ...]]]:
    """The phase image's size per axis and the stride phases the kernel taps read (see _FlatTaps)."""
    q = tuple(-(-p // s) for p, s in zip(padded, stride, strict=True))
    phases = sorted(
        {tuple(t * di % si for t, di, si in zip(tap, dilation, stride, strict=True)) for tap in _taps(kernel)}
    )
    return q, phases


def _flat_sizes(
    lead: int,
    padded: Sequence[int],
    kernel: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
    out_sp: Sequence[int],
) -> tuple[int, int, bool]:
    """Elements of a _FlatTaps buffer over `lead` = N·C images, its row length, and whether crop copies."""
    q, phases = _flat_layout(padded, kernel, stride, dilation)
    qflat = math.prod(q)
    return lead * len(phases) * qflat + qflat, out_sp[0] * math.prod(q[1:]), tuple(q[1:]) != tuple(out_sp[1:])


class _FlatTaps:
    """Every kernel tap's input as one contiguous slice of a flat buffer.

    The padded input is split into stride phases (x[..., r::s] per axis; a single phase when
    the stride is 1), and each phase image is flattened. Output position (o1, ..., on) is then
    computed at flat index o1·Q2⋯Qn + ... + on of an *extended* grid whose trailing axes are
    the phase image's (Qa ≥ Oa): tap t reads the phase (t·d mod s) at flat offset
    Σ (t·d div s)·stride_a, so its whole input is the contiguous slice [off, off + length).
    Positions with oa ≥ Oa on a trailing axis read neighbouring data and are cropped off
    (they are independent columns of the GEMM, so they never contaminate valid outputs).
    """

    def __init__(
        self,
        x: Array,
        kernel: Sequence[int],
        stride: Sequence[int],
        dilation: Sequence[int],
        out_sp: Sequence[int],
        pads: Sequence[tuple[int, int]] | None = None,
    ) -> None:
        lead = x.shape[:2]
        pads = [(0, 0)] * (x.ndim - 2) if pads is None else list(pads)
        padded = tuple(n + b + a for n, (b, a) in zip(x.shape[2:], pads, strict=True))
        q, phases = _flat_layout(padded, kernel, stride, dilation)
        self.out_sp = tuple(out_sp)
        self.q = q
        self.stride = tuple(stride)
        self.dilation = tuple(dilation)
        self.qstrides = tuple(math.prod(q[a + 1 :]) for a in range(len(q)))
        self.length = out_sp[0] * self.qstrides[0]
        qflat = math.prod(q)
        self.phase_index = {ph: i for i, ph in enumerate(phases)}
        nph = len(phases)
        self.total = math.prod(lead) * nph * qflat
        self.lead = lead
        self.nph = nph
        self.qflat = qflat
        # The tail keeps the last image's overrun (cropped positions only) inside the buffer.
        if padded == tuple(x.shape[2:]) and all(st == 1 for st in stride):
            buf = np.empty(self.total + qflat, dtype=x.dtype)
            buf[self.total :] = 0
            buf[: self.total].reshape(x.shape)[...] = x
        else:
            # Zero padding and the phase split in one strided copy per phase: padded index
            # s·j + r is input index s·j + r − before.
            buf = np.zeros(self.total + qflat, dtype=x.dtype)
            head = buf[: self.total].reshape((*lead, nph, *q))
            for ph, i in self.phase_index.items():
                src: list[slice] = []
                dst: list[slice] = []
                for r, st, (before, _), size, qa in zip(ph, stride, pads, x.shape[2:], q, strict=True):
                    j0 = max(0, -((r - before) // st))
                    j1 = min(qa, (size - 1 + before - r) // st + 1)
                    if j1 <= j0:
                        break
                    src.append(slice(st * j0 + r - before, st * (j1 - 1) + r - before + 1, st))
                    dst.append(slice(j0, j1))
                else:
                    index: tuple[Any, ...] = (slice(None), slice(None), i, *dst)
                    head[index] = x[(slice(None), slice(None), *src)]
        self.buf = buf

    def view(self, tap: Sequence[int]) -> Array:
        """(N, C, length) input of one tap (a view, no copy)."""
        ph = tuple(t * di % si for t, di, si in zip(tap, self.dilation, self.stride, strict=True))
        off = sum(
            (t * di // si) * qs for t, di, si, qs in zip(tap, self.dilation, self.stride, self.qstrides, strict=True)
        )
        v = self.buf[off : off + self.total].reshape(*self.lead, self.nph, self.qflat)
        return v[:, :, self.phase_index[ph], : self.length]

    def crop(self, out: Array) -> Array:
        """(N, C, length) extended output → (N, C, *out_sp)."""
        ext = out.reshape((*out.shape[:2], self.out_sp[0], *self.q[1:]))
        if self.q[1:] == self.out_sp[1:]:
            return ext
        return np.ascontiguousarray(ext[_lead(3) + tuple(slice(0, o) for o in self.out_sp[1:])])


def _depthwise(
    x: Array,
    w: Array,
    stride: Sequence[int],
    dilation: Sequence[int],
    out_sp: Sequence[int],
    pads: Sequence[tuple[int, int]],
) -> Array:
    """Grouped conv with one input channel per group: a tap loop of broadcast multiply-adds.

    ``w`` is (groups, multiplier, *kernel). A GEMM would have K = taps only, far too small to
    pay for the im2col copy, so whole-array multiply-adds over the flat tap layout (long
    contiguous runs, see _FlatTaps) win here.
    """
    n, g = x.shape[:2]
    m = w.shape[1]
    kernel = w.shape[2:]
    flat = _FlatTaps(x, kernel, stride, dilation, out_sp, pads)
    out = np.empty((n, g, m, flat.length), dtype=x.dtype)
    taps = list(_taps(kernel))

    views = [flat.view(tap) for tap in taps]
    tap_index: list[tuple[Any, ...]] = [(slice(None), slice(None), *tap) for tap in taps]
    _multiply_add_taps(out, views, [w[index][:, :, None] for index in tap_index])
    return flat.crop(out.reshape(n, g * m, flat.length))


def _multiply_add_taps(out: Array, views: list[Array], weights: list[Array]) -> None:
    """out[:, c] = Σ_taps views[t][:, c, None]·weights[t][c], the channels split over the threads."""
    # One tap's products for every thread's channels, allocated before the threads start: the peak
    # memory does not depend on how their runs overlap.
    products = np.empty_like(out)

    def run(ch: slice) -> None:
        # Whole-array multiply-adds over the batch and this thread's channels: no Python loop over
        # batch items or channels (a loop over kernel taps only).
        acc = out[:, ch]
        tmp = products[:, ch]
        for i, (view, wt) in enumerate(zip(views, weights, strict=True)):
            if i == 0:
                np.multiply(view[:, ch, None], wt[ch], out=acc)
            else:
                np.multiply(view[:, ch, None], wt[ch], out=tmp)
                acc += tmp

    _parallel(run, out.shape[1], out.size * len(views))


def conv1d(
    input: npt.ArrayLike,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None = None,
    stride: IntArg = 1,
    padding: ConvPadding = 0,
    dilation: IntArg = 1,
    groups: int = 1,
    *,
    padding_mode: str = "zeros",
) -> Array:
    """1-D convolution (cross-correlation) like ``F.conv1d``.

    Input (N, C_in, L), weight (C_out, C_in/groups, k).

    Extras beyond torch (keyword-only or wider ``padding``): ``padding_mode`` pads in
    zeros/reflect/replicate/circular mode first (as ``nn.Conv1d`` does); ``padding`` may be a
    (before, after) pair per axis (asymmetric), and ``'same'`` is accepted at any stride with
    TF/Keras SAME meaning (out = ceil(L/s), extra padding after), which equals PyTorch's
    ``'same'`` at stride 1 (PyTorch refuses it for stride > 1).
    """
    return _conv("conv1d", 1, input, weight, bias, stride, padding, dilation, groups, padding_mode)


def conv2d(
    input: npt.ArrayLike,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None = None,
    stride: IntArg = 1,
    padding: ConvPadding = 0,
    dilation: IntArg = 1,
    groups: int = 1,
    *,
    padding_mode: str = "zeros",
) -> Array:
    """2-D convolution like ``F.conv2d``: input (N, C_in, H, W), weight (C_out, C_in/groups, kH, kW).

    Per-axis arguments are (H, W). Extras beyond torch as in :func:`conv1d`: ``padding_mode``,
    per-axis (before, after) padding pairs, and TF-style ``'same'`` at any stride.
    """
    return _conv("conv2d", 2, input, weight, bias, stride, padding, dilation, groups, padding_mode)


def conv3d(
    input: npt.ArrayLike,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None = None,
    stride: IntArg = 1,
    padding: ConvPadding = 0,
    dilation: IntArg = 1,
    groups: int = 1,
    *,
    padding_mode: str = "zeros",
) -> Array:
    """3-D convolution like ``F.conv3d``: input (N, C_in, D, H, W), weight (C_out, C_in/groups, kD, kH, kW).

    Per-axis arguments are (D, H, W). Extras beyond torch as in :func:`conv1d`.
    """
    return _conv("conv3d", 3, input, weight, bias, stride, padding, dilation, groups, padding_mode)


class _ConvTransposeGeometry(NamedTuple):
    """A transposed convolution's sizes (shared by `_conv_transpose` and `conv_transpose_workspace`)."""

    n: int
    cin: int
    cout: int
    groups: int
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    in_sp: tuple[int, ...]
    full: tuple[int, ...]  # the uncropped output: (i - 1)·s + d·(k - 1) + 1
    out_sp: tuple[int, ...]

    @property
    def direct(self) -> bool:
        """A 1×1 stride-1 kernel: the GEMM's columns are the output, no col2im."""
        return math.prod(self.kernel) == 1 and all(si == 1 for si in self.stride)

    @property
    def buffer(self) -> tuple[int, ...]:
        """Spatial size of the buffer the columns are scattered into (cropped to out_sp after)."""
        if self.direct:
            return self.in_sp
        return tuple(max(f, pi + o) for f, pi, o in zip(self.full, self.padding, self.out_sp, strict=True))

    @property
    def grown(self) -> tuple[int, ...] | None:
        """The buffer enlarged so output_padding's extra row fits, or None when it already does."""
        buf = self.buffer
        if all(pi + o <= b for pi, o, b in zip(self.padding, self.out_sp, buf, strict=True)):
            return None
        return tuple(max(b, pi + o) for b, pi, o in zip(buf, self.padding, self.out_sp, strict=True))

    @property
    def cropped(self) -> bool:
        return self.buffer != self.out_sp or any(self.padding)


def _conv_transpose_geometry(
    op: str,
    nd: int,
    x_shape: tuple[int, ...],
    w_shape: tuple[int, ...],
    stride: IntArg,
    padding: IntArg,
    output_padding: IntArg,
    groups: int,
    dilation: IntArg,
) -> _ConvTransposeGeometry:
    groups = _weight_and_groups(op, nd, w_shape, groups, "(C_in, C_out/groups, *kernel)")
    n, cin = x_shape[:2]
    if w_shape[0] != cin:
        raise ValueError(f"{op}: weight of shape {w_shape} expects {w_shape[0]} input channels, got {cin}")
    if cin % groups:
        raise ValueError(f"{op}: in_channels ({cin}) must be divisible by groups ({groups})")
    if isinstance(padding, str):
        raise ValueError(f"{op}: padding must be an int or a sequence of ints (no 'same'/'valid'), got {padding!r}")
    kernel = tuple(w_shape[2:])
    if any(k < 1 for k in kernel):
        raise ValueError(f"{op}: kernel sizes must be positive, got weight shape {w_shape}")
    s = _ints(stride, nd, "stride", minimum=1)
    p = _ints(padding, nd, "padding", minimum=0)
    op_ = _ints(output_padding, nd, "output_padding", minimum=0)
    d = _ints(dilation, nd, "dilation", minimum=1)
    if any(o >= si and o >= di for o, si, di in zip(op_, s, d, strict=True)):
        raise ValueError(
            f"{op}: output padding must be smaller than either stride or dilation, but got "
            f"output_padding={op_}, stride={s}, dilation={d}"
        )
    in_sp = tuple(x_shape[2:])
    full = tuple((i - 1) * si + di * (k - 1) + 1 for i, si, di, k in zip(in_sp, s, d, kernel, strict=True))
    out_sp = tuple(f - 2 * pi + o for f, pi, o in zip(full, p, op_, strict=True))
    if any(o < 1 for o in out_sp):
        raise ValueError(f"{op}: output size {out_sp} is too small (input {in_sp}, padding {p})")
    return _ConvTransposeGeometry(n, cin, w_shape[1] * groups, groups, kernel, s, p, d, in_sp, full, out_sp)


def _conv_transpose(
    op: str,
    nd: int,
    input: npt.ArrayLike,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None,
    stride: IntArg,
    padding: IntArg,
    output_padding: IntArg,
    groups: int,
    dilation: IntArg,
) -> Array:
    x, unbatched = _batched(_as_float(input), nd, op)
    dt = x.dtype
    w = np.asarray(weight, dtype=dt)
    geo = _conv_transpose_geometry(op, nd, x.shape, w.shape, stride, padding, output_padding, groups, dilation)
    n, cin, cout, groups, kernel = geo.n, geo.cin, geo.cout, geo.groups, geo.kernel
    s, p, d, in_sp, out_sp = geo.stride, geo.padding, geo.dilation, geo.in_sp, geo.out_sp
    cg, og = cin // groups, cout // groups
    ktaps = math.prod(kernel)
    npos = math.prod(in_sp)
    # columns[n, c_out, tap, pos] = sum_c_in W[c_in, c_out, tap] x[n, c_in, pos]: one GEMM (per group).
    wm = w.reshape(groups, cg, og * ktaps).transpose(0, 2, 1)
    xm = x.reshape(n, groups, cg, npos)
    cols = np.matmul(wm[0], xm[:, 0]) if groups == 1 else np.matmul(wm, xm)
    cols = cols.reshape((n, cout, *kernel, *in_sp))
    # A 1×1 stride-1 kernel's columns are the output; otherwise col2im scatters them.
    buf = cols.reshape((n, cout, *in_sp)) if geo.direct else _col2im(cols, geo.buffer, kernel, d, s, in_sp)
    del cols  # before the crop copies the output (conv_transpose_workspace counts on it)
    if geo.cropped:
        grown = geo.grown
        if grown is not None:
            bigger = np.zeros((n, cout, *grown), dt)
            bigger[_lead(2) + tuple(slice(0, b) for b in buf.shape[2:])] = buf
            buf = bigger
            del bigger
        buf = np.ascontiguousarray(buf[_lead(2) + tuple(slice(pi, pi + o) for pi, o in zip(p, out_sp, strict=True))])
    if bias is not None:
        b = np.asarray(bias, dtype=dt)
        if b.shape != (cout,):
            raise ValueError(f"{op}: bias must have shape ({cout},), got {b.shape}")
        buf += b.reshape((cout,) + (1,) * nd)
    result: Array = buf[0] if unbatched else buf
    return result


def _col2im(
    cols: Array,
    buffer: Sequence[int],
    kernel: Sequence[int],
    dilation: Sequence[int],
    stride: Sequence[int],
    in_sp: Sequence[int],
) -> Array:
    """(N, C, *kernel, *in) columns → (N, C, *buffer): every tap adds its columns to a strided view."""
    n, c = cols.shape[:2]
    buf = np.zeros((n, c, *buffer), dtype=cols.dtype)

    def scatter(ch: slice) -> None:
        for tap in _taps(kernel):
            source: tuple[Any, ...] = (slice(None), ch, *tap)
            buf[(slice(None), ch, *_tap_slices(tap, dilation, stride, in_sp))] += cols[source]

    _parallel(scatter, c, cols.size)
    return buf


def conv_transpose1d(
    input: npt.ArrayLike,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None = None,
    stride: IntArg = 1,
    padding: IntArg = 0,
    output_padding: IntArg = 0,
    groups: int = 1,
    dilation: IntArg = 1,
) -> Array:
    """Transposed 1-D convolution like ``F.conv_transpose1d`` (note torch's argument order).

    Input (N, C_in, L), weight (C_in, C_out/groups, k). L_out = (L-1)s - 2p + d(k-1) + op + 1;
    ``padding`` crops p samples from both ends of the full output, ``output_padding`` extends
    the end. Raises ValueError unless output_padding < stride or output_padding < dilation.
    """
    return _conv_transpose(
        "conv_transpose1d", 1, input, weight, bias, stride, padding, output_padding, groups, dilation
    )


def conv_transpose2d(
    input: npt.ArrayLike,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None = None,
    stride: IntArg = 1,
    padding: IntArg = 0,
    output_padding: IntArg = 0,
    groups: int = 1,
    dilation: IntArg = 1,
) -> Array:
    """Transposed 2-D convolution like ``F.conv_transpose2d``: weight (C_in, C_out/groups, kH, kW).

    Same rules as :func:`conv_transpose1d`, per axis (H, W).
    """
    return _conv_transpose(
        "conv_transpose2d", 2, input, weight, bias, stride, padding, output_padding, groups, dilation
    )


def conv_transpose3d(
    input: npt.ArrayLike,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None = None,
    stride: IntArg = 1,
    padding: IntArg = 0,
    output_padding: IntArg = 0,
    groups: int = 1,
    dilation: IntArg = 1,
) -> Array:
    """Transposed 3-D convolution like ``F.conv_transpose3d``: weight (C_in, C_out/groups, kD, kH, kW).

    Same rules as :func:`conv_transpose1d`, per axis (D, H, W).
    """
    return _conv_transpose(
        "conv_transpose3d", 3, input, weight, bias, stride, padding, output_padding, groups, dilation
    )


# --------------------------------------------------------------------------------------------
# pooling


def _pool_geometry(
    op: str,
    nd: int,
    spatial: Sequence[int],
    kernel_size: IntArg,
    stride: IntArg | None,
    padding: IntArg,
    dilation: IntArg,
    ceil_mode: bool,
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(k, s, p, d, out) per axis, with ATen's ``pooling_output_shape`` and its checks."""
    k = _ints(kernel_size, nd, "kernel_size", minimum=1)
    s = (
        k
        if stride is None or (isinstance(stride, Sequence) and len(stride) == 0)
        else _ints(stride, nd, "stride", minimum=1)
    )
    p = _ints(padding, nd, "padding", minimum=0)
    d = _ints(dilation, nd, "dilation", minimum=1)
    out = []
    for size, ki, si, pi, di in zip(spatial, k, s, p, d, strict=True):
        keff = di * (ki - 1) + 1
        # ATen's shape checks allow pad <= k // 2 (the undilated kernel), stricter than the
        # pad <= k_eff // 2 of pooling_output_shape.
        if pi > ki // 2:
            raise ValueError(
                f"{op}: pad should be at most half of kernel size, but got pad={pi}, kernel_size={ki} (dilation={di})"
            )
        num = size + 2 * pi - keff
        o = (-(-num // si) if ceil_mode else num // si) + 1
        # The last window must start inside the input or the left padding.
        if ceil_mode and (o - 1) * si >= size + pi:
            o -= 1
        if o < 1:
            raise ValueError(
                f"{op}: output size is too small: input {tuple(spatial)}, kernel_size={k}, stride={s}, "
                f"padding={p}, dilation={d}"
            )
        out.append(o)
    return k, s, p, d, tuple(out)


def _pool_pad(
    x: Array,
    nd: int,
    k: Sequence[int],
    s: Sequence[int],
    p: Sequence[int],
    d: Sequence[int],
    out: Sequence[int],
    fill: float,
) -> Array:
    return _pad_pairs(x, _pool_pad_pairs(x.shape[-nd:], k, s, p, d, out), "constant", fill)


def _pool_pad_pairs(
    spatial: Sequence[int], k: Sequence[int], s: Sequence[int], p: Sequence[int], d: Sequence[int], out: Sequence[int]
) -> list[tuple[int, int]]:
    # Ceil-mode windows may run past the right padding; extend it so every window is a slice.
    pairs = []
    for size, ki, si, pi, di, o in zip(spatial, k, s, p, d, out, strict=True):
        need = (o - 1) * si + di * (ki - 1) + 1
        pairs.append((pi, max(pi, need - size - pi)))
    return pairs


def _pool_taps(
    xp: Array,
    nd: int,
    k: Sequence[int],
    s: Sequence[int],
    d: Sequence[int],
    out_sp: Sequence[int],
    reduce: np.ufunc,
) -> Array:
    """Reduce every window of the padded input with a binary ufunc, one strided view per tap."""
    lead_shape = xp.shape[:-nd]
    x2 = xp.reshape((math.prod(lead_shape), *xp.shape[-nd:]))
    out = np.empty((x2.shape[0], *out_sp), dtype=xp.dtype)
    taps = list(_taps(k))

    def run(ch: slice) -> None:
        acc = out[ch]
        for i, tap in enumerate(taps):
            src = x2[(ch, *_tap_slices(tap, d, s, out_sp))]
            if i == 0:
                acc[...] = src
            else:
                reduce(acc, src, out=acc)

    _parallel(run, x2.shape[0], out.size * len(taps))
    return out.reshape((*lead_shape, *out_sp))


def _max_pool(
    op: str,
    nd: int,
    input: npt.ArrayLike,
    kernel_size: IntArg,
    stride: IntArg | None,
    padding: IntArg,
    dilation: IntArg,
    ceil_mode: bool,
    return_indices: bool,
) -> Array:
    if return_indices:
        raise ValueError(f"{op}: return_indices=True is not supported by the NumPy reference")
    x = _as_float(input)
    if x.ndim not in (nd + 1, nd + 2):
        raise ValueError(f"{op}: expected a {nd + 1}-D or {nd + 2}-D input, got shape {x.shape}")
    k, s, p, d, out_sp = _pool_geometry(op, nd, x.shape[-nd:], kernel_size, stride, padding, dilation, ceil_mode)
    xp = _pool_pad(x, nd, k, s, p, d, out_sp, -np.inf)
    return _pool_taps(xp, nd, k, s, d, out_sp, np.maximum)


def max_pool1d(
    input: npt.ArrayLike,
    kernel_size: IntArg,
    stride: IntArg | None = None,
    padding: IntArg = 0,
    dilation: IntArg = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Array:
    """Max pooling over (N, C, L) like ``F.max_pool1d``; stride defaults to kernel_size.

    Padding is -inf (never wins); ceil_mode drops a last window that would start in the right
    padding. ``return_indices=True`` is not supported.
    """
    return _max_pool("max_pool1d", 1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d(
    input: npt.ArrayLike,
    kernel_size: IntArg,
    stride: IntArg | None = None,
    padding: IntArg = 0,
    dilation: IntArg = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Array:
    """Max pooling over (N, C, H, W) like ``F.max_pool2d``; rules as in :func:`max_pool1d`."""
    return _max_pool("max_pool2d", 2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool3d(
    input: npt.ArrayLike,
    kernel_size: IntArg,
    stride: IntArg | None = None,
    padding: IntArg = 0,
    dilation: IntArg = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Array:
    """Max pooling over (N, C, D, H, W) like ``F.max_pool3d``; rules as in :func:`max_pool1d`."""
    return _max_pool("max_pool3d", 3, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def _avg_pool(
    op: str,
    nd: int,
    input: npt.ArrayLike,
    kernel_size: IntArg,
    stride: IntArg | None,
    padding: IntArg,
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: int | None,
) -> Array:
    x = _as_float(input)
    if x.ndim not in (nd + 1, nd + 2):
        raise ValueError(f"{op}: expected a {nd + 1}-D or {nd + 2}-D input, got shape {x.shape}")
    spatial = x.shape[-nd:]
    k, s, p, d, out_sp = _pool_geometry(op, nd, spatial, kernel_size, stride, padding, 1, ceil_mode)
    if nd == 3 and any(size < ki for size, ki in zip(spatial, k, strict=True)):
        # avg_pool3d alone checks the unpadded input against the kernel (ATen's pool3d_shape_check).
        raise ValueError(f"{op}: input image {tuple(spatial)} smaller than kernel size {k}")
    if divisor_override is not None:
        divisor_override = _int(divisor_override, "divisor_override")
        if divisor_override == 0:
            raise ValueError(f"{op}: divisor_override must be non-zero")
    xp = _pool_pad(x, nd, k, s, p, d, out_sp, 0.0)
    out = _pool_taps(xp, nd, k, s, d, out_sp, np.add)
    if divisor_override is not None:
        out /= out.dtype.type(divisor_override)
        return out
    # ATen's divisor per axis (AvgPoolKernel.cpp): windows are clipped at L + p for the
    # include-pad count and at the input for the exclude-pad count; the product is the divisor.
    # Built in the output's dtype (exact: window counts are small integers), one axis at a time.
    divisor = np.ones((1,) * nd, dtype=out.dtype)
    for axis, (size, ki, si, pi, o) in enumerate(zip(spatial, k, s, p, out_sp, strict=True)):
        start = np.arange(o, dtype=np.int64) * si - pi
        end = np.minimum(start + ki, size + pi)
        if not count_include_pad:
            start, end = np.maximum(start, 0), np.minimum(end, size)
        shape = [1] * nd
        shape[axis] = o
        divisor = divisor * (end - start).astype(out.dtype).reshape(shape)
    out /= divisor
    return out


def avg_pool1d(
    input: npt.ArrayLike,
    kernel_size: IntArg,
    stride: IntArg | None = None,
    padding: IntArg = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> Array:
    """Average pooling over (N, C, L) like ``F.avg_pool1d``, with ATen's exact divisor.

    The include-pad divisor counts the declared padding but never the part of a ceil-mode
    window past the right padding; ``count_include_pad=False`` counts input samples only.
    """
    return _avg_pool("avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode, count_include_pad, None)


def avg_pool2d(
    input: npt.ArrayLike,
    kernel_size: IntArg,
    stride: IntArg | None = None,
    padding: IntArg = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Array:
    """Average pooling over (N, C, H, W) like ``F.avg_pool2d``; divisor rules as in :func:`avg_pool1d`.

    ``divisor_override`` replaces the divisor of every window.
    """
    return _avg_pool(
        "avg_pool2d", 2, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
    )


def avg_pool3d(
    input: npt.ArrayLike,
    kernel_size: IntArg,
    stride: IntArg | None = None,
    padding: IntArg = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Array:
    """Average pooling over (N, C, D, H, W) like ``F.avg_pool3d``; rules as in :func:`avg_pool2d`."""
    return _avg_pool(
        "avg_pool3d", 3, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
    )


def _adaptive_sizes(op: str, nd: int, spatial: Sequence[int], output_size: Any) -> tuple[int, ...]:
    if output_size is None or isinstance(output_size, int | np.integer):
        items: list[Any] = [output_size] * nd
    else:
        items = list(output_size)
        if len(items) != nd:
            raise ValueError(f"{op}: output_size must be an int or {nd} entries, got {output_size!r}")
    sizes = tuple(size if o is None else _int(o, "output_size") for o, size in zip(items, spatial, strict=True))
    if any(o < 1 for o in sizes):
        raise ValueError(f"{op}: output_size entries must be positive (or None), got {output_size!r}")
    if any(size < 1 for size in spatial):
        raise ValueError(f"{op}: input spatial sizes must be positive, got {tuple(spatial)}")
    return sizes


def _adaptive_pool(op: str, nd: int, input: npt.ArrayLike, output_size: Any, reduce_max: bool) -> Array:
    x = _as_float(input)
    if x.ndim not in (nd + 1, nd + 2):
        raise ValueError(f"{op}: expected a {nd + 1}-D or {nd + 2}-D input, got shape {x.shape}")
    sizes = _adaptive_sizes(op, nd, x.shape[-nd:], output_size)
    spatial = x.shape[-nd:]
    if all(n % o == 0 for n, o in zip(spatial, sizes, strict=True)):
        # Equal, disjoint bins on every axis: one reshape and one reduction (global pooling is
        # the common case: a single contiguous reduction per channel).
        lead = x.shape[:-nd]
        split = [v for n, o in zip(spatial, sizes, strict=True) for v in (o, n // o)]
        axes = tuple(len(lead) + 2 * a + 1 for a in range(nd))
        xr = x.reshape((*lead, *split))
        if all(o == 1 for o in sizes):
            xr = x.reshape((*lead, math.prod(spatial)))
            axes = (len(lead),)
        red: Array = xr.max(axis=axes) if reduce_max else xr.mean(axis=axes)
        return red.reshape((*lead, *sizes))
    for axis_from_end, o in zip(range(nd, 0, -1), sizes, strict=True):
        axis = x.ndim - axis_from_end
        size = x.shape[axis]
        if size == o:
            continue
        if size % o == 0:
            # Equal, disjoint bins: a reshape and a reduction.
            bins = x.reshape((*x.shape[:axis], o, size // o, *x.shape[axis + 1 :]))
            x = bins.max(axis=axis + 1) if reduce_max else bins.mean(axis=axis + 1)
            del bins  # a view that would keep the previous axis' result alive
            continue
        x = _adaptive_axis(x, axis, o, reduce_max)
    return np.array(x, copy=True) if x is input else x


def _adaptive_axis(x: Array, axis: int, o: int, reduce_max: bool) -> Array:
    """Pool one axis into `o` bins [floor(j·L/o), ceil((j+1)·L/o)) (neighbours may overlap).

    A loop over whichever is shorter, the offsets within a bin (≤ L/o + 2) or the bins: at most
    about √L Python iterations of whole-array operations, and at most two output-sized buffers
    (never an input-sized gather of every bin).
    """
    size = x.shape[axis]
    j = np.arange(o, dtype=np.int64)
    start = (j * size) // o
    end = -((-(j + 1) * size) // o)
    width = int((end - start).max())
    shape = [1] * x.ndim
    shape[axis] = o
    ufunc = np.maximum if reduce_max else np.add
    lead: tuple[Any, ...] = (slice(None),) * axis
    if o < width:
        acc: Array = np.empty((*x.shape[:axis], o, *x.shape[axis + 1 :]), dtype=x.dtype)
        for b, (s0, e0) in enumerate(zip(start.tolist(), end.tolist(), strict=True)):
            ufunc.reduce(x[(*lead, slice(s0, e0))], axis=axis, out=acc[(*lead, b)])
    else:
        acc = np.take(x, start, axis=axis)
        tmp = np.empty_like(acc)
        for offset in range(1, width):
            # Bins shorter than the widest repeat their last element (harmless for max) or skip it (sum).
            np.take(x, np.minimum(start + offset, end - 1), axis=axis, out=tmp, mode="clip")
            ufunc(acc, tmp, out=acc, where=(start + offset < end).reshape(shape))
    if not reduce_max:
        acc /= (end - start).astype(x.dtype).reshape(shape)
    return acc


def adaptive_avg_pool1d(input: npt.ArrayLike, output_size: int | Sequence[int | None] | None) -> Array:
    """Adaptive average pooling like ``F.adaptive_avg_pool1d``.

    Bin j of L → L_out is [floor(j·L/L_out), ceil((j+1)·L/L_out)) (bins may overlap).
    """
    return _adaptive_pool("adaptive_avg_pool1d", 1, input, output_size, False)


def adaptive_avg_pool2d(input: npt.ArrayLike, output_size: int | Sequence[int | None] | None) -> Array:
    """Adaptive average pooling like ``F.adaptive_avg_pool2d``; a ``None`` entry keeps that axis."""
    return _adaptive_pool("adaptive_avg_pool2d", 2, input, output_size, False)


def adaptive_avg_pool3d(input: npt.ArrayLike, output_size: int | Sequence[int | None] | None) -> Array:
    """Adaptive average pooling like ``F.adaptive_avg_pool3d``; a ``None`` entry keeps that axis."""
    return _adaptive_pool("adaptive_avg_pool3d", 3, input, output_size, False)


def adaptive_max_pool1d(input: npt.ArrayLike, output_size: int | Sequence[int | None] | None) -> Array:
    """Adaptive max pooling like ``F.adaptive_max_pool1d`` (bins as in :func:`adaptive_avg_pool1d`).

    ``return_indices`` is not supported.
    """
    return _adaptive_pool("adaptive_max_pool1d", 1, input, output_size, True)


def adaptive_max_pool2d(input: npt.ArrayLike, output_size: int | Sequence[int | None] | None) -> Array:
    """Adaptive max pooling like ``F.adaptive_max_pool2d``; a ``None`` entry keeps that axis."""
    return _adaptive_pool("adaptive_max_pool2d", 2, input, output_size, True)


def adaptive_max_pool3d(input: npt.ArrayLike, output_size: int | Sequence[int | None] | None) -> Array:
    """Adaptive max pooling like ``F.adaptive_max_pool3d``; a ``None`` entry keeps that axis."""
    return _adaptive_pool("adaptive_max_pool3d", 3, input, output_size, True)


# --------------------------------------------------------------------------------------------
# resampling


_INTERP_DIMS = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}


def interpolate(
    input: npt.ArrayLike,
    size: int | Sequence[int] | None = None,
    scale_factor: float | Sequence[float] | None = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
    antialias: bool = False,
) -> Array:
    """Resize the spatial axes of (N, C, *spatial) like ``F.interpolate``.

    Modes: ``'nearest'`` (legacy: src = min(floor(x·scale), in-1), computed in float32 as
    ATen does, so the chosen indices are exact), ``'nearest-exact'`` (min(floor((x+½)·scale), in-1)),
    ``'linear'`` (3-D input), ``'bilinear'`` and ``'bicubic'`` (4-D) and ``'trilinear'`` (5-D),
    applied separably per axis. Output size with ``scale_factor`` is floor(in·scale_factor) in
    double (exact). The source scale is (in-1)/(out-1) with align_corners, 1/scale_factor when a
    scale_factor is given and recompute_scale_factor is not True, else in/out. ``antialias=True``
    (bilinear, bicubic; not with align_corners) widens the filter by the scale when downsampling.
    """
    x = _as_float(input)
    nd = x.ndim - 2
    if nd < 1 or nd > 3:
        raise ValueError(f"interpolate: expected a 3-D, 4-D or 5-D input (N, C, *spatial), got shape {x.shape}")
    if mode in ("nearest", "nearest-exact"):
        if align_corners is not None:
            raise ValueError(
                "interpolate: align_corners option can only be set with the interpolating modes: "
                "linear | bilinear | bicubic | trilinear"
            )
    elif mode in _INTERP_DIMS:
        if _INTERP_DIMS[mode] != nd:
            raise ValueError(f"interpolate: mode {mode!r} needs a {_INTERP_DIMS[mode] + 2}-D input, got {x.ndim}-D")
    else:
        raise ValueError(
            "interpolate: mode must be one of 'nearest', 'nearest-exact', 'linear', 'bilinear', 'bicubic', "
            f"'trilinear', got {mode!r}"
        )
    if antialias and mode not in ("bilinear", "bicubic"):
        raise ValueError("interpolate: anti-alias option is restricted to bilinear and bicubic modes (4-D input)")
    if antialias and align_corners:
        raise ValueError("interpolate: antialias=True with align_corners=True is not supported by the NumPy reference")
    corners = bool(align_corners)
    spatial = x.shape[2:]
    scales: tuple[float, ...] | None = None
    if size is not None and scale_factor is not None:
        raise ValueError("interpolate: only one of size or scale_factor should be defined")
    if size is not None:
        out_sp = _ints(size, nd, "size")
        if recompute_scale_factor:
            raise ValueError("interpolate: recompute_scale_factor is not meaningful with an explicit size")
    elif scale_factor is not None:
        if isinstance(scale_factor, int | float | np.integer | np.floating):
            scales = (float(scale_factor),) * nd
        else:
            scales = tuple(float(v) for v in scale_factor)
            if len(scales) != nd:
                raise ValueError(f"interpolate: scale_factor must have {nd} entries, got {scale_factor!r}")
        if any(not sc > 0 for sc in scales):
            raise ValueError(f"interpolate: scale_factor must be positive, got {scale_factor!r}")
        out_sp = tuple(math.floor(float(i) * sc) for i, sc in zip(spatial, scales, strict=True))
        if recompute_scale_factor:
            scales = None
    else:
        raise ValueError("interpolate: either size or scale_factor should be defined")
    if any(o < 1 for o in out_sp):
        raise ValueError(f"interpolate: output size {out_sp} must be positive (input {spatial})")
    # The antialiased passes run the last axis first, as ATen's separable kernel does.
    for j in reversed(range(nd)) if antialias else range(nd):
        axis = 2 + j
        n_in, n_out = spatial[j], out_sp[j]
        sf = None if scales is None else scales[j]
        if mode == "nearest":
            x = np.take(x, _nearest_index(n_in, n_out, sf, x.dtype, nd == 2), axis=axis)
        elif mode == "nearest-exact":
            x = np.take(x, _nearest_exact_index(n_in, n_out, sf, x.dtype, nd == 2), axis=axis)
        elif antialias:
            if n_out != n_in:
                x = _weighted_axis(x, axis, *_aa_taps(n_in, n_out, sf, mode == "bicubic", x.dtype))
        elif mode == "bicubic":
            x = _weighted_axis(x, axis, *_cubic_taps(n_in, n_out, sf, corners, x.dtype))
        else:
            x = _linear_axis(x, axis, n_in, n_out, sf, corners)
    return np.array(x, copy=True) if x is input else x


def _nearest_exact_index(n_in: int, n_out: int, sf: float | None, dtype: np.dtype[Any], two_d: bool) -> Array:
    # ATen's nearest_exact_idx: min(floorf((x + 0.5)·scale), in − 1); the scale is float32 on the 2-D path,
    # the input's opmath type on the others (as for 'nearest').
    if two_d:
        dtype = np.dtype(np.float32)
    t = dtype.type
    scale = t(1.0 / sf) if sf is not None and sf > 0 else t(n_in) / t(n_out)
    src = (scale * (np.arange(n_out, dtype=dtype) + t(0.5))).astype(np.float32)
    result: Array = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    return result


def _cubic_coefficients(x: Array, a: float) -> Array:
    """The cubic convolution kernel (Keys) at distances x, in x's dtype."""
    t = x.dtype.type
    x = np.abs(x)
    a_ = t(a)
    near = ((a_ + t(2)) * x - (a_ + t(3))) * x * x + t(1)
    far = ((a_ * x - t(5) * a_) * x + t(8) * a_) * x - t(4) * a_
    result: Array = np.where(x < 1, near, np.where(x < 2, far, t(0)))
    return result


def _cubic_taps(n_in: int, n_out: int, sf: float | None, corners: bool, dtype: np.dtype[Any]) -> tuple[Array, Array]:
    # ATen's HelperInterpCubic: source s = scale·x (align_corners) or scale·(x + ½) − ½ (not clamped), index
    # min(floorf(s), in − 1), t = clamp(s − index, 0, 1); taps index−1 .. index+2 clamped to the input with
    # A = −0.75 weights cc2(t+1), cc1(t), cc1(1−t), cc2(2−t).
    t = dtype.type
    if corners:
        scale = t(n_in - 1) / t(n_out - 1) if n_out > 1 else t(0)
    else:
        scale = t(1.0 / sf) if sf is not None and sf > 0 else t(n_in) / t(n_out)
    dst = np.arange(n_out, dtype=dtype)
    src = scale * dst if corners else scale * (dst + t(0.5)) - t(0.5)
    i0 = np.minimum(np.floor(src.astype(np.float32)).astype(np.int64), n_in - 1)
    lam = np.clip(src - i0.astype(dtype), t(0), t(1))
    distances = np.stack([lam + t(1), lam, t(1) - lam, t(2) - lam], axis=1)
    weights = _cubic_coefficients(distances, -0.75)
    index = np.clip(i0[:, None] + np.arange(-1, 3)[None, :], 0, n_in - 1)
    return index, weights


def _aa_taps(n_in: int, n_out: int, sf: float | None, cubic: bool, dtype: np.dtype[Any]) -> tuple[Array, Array]:
    # ATen's _compute_weights_aa (Pillow's): centre c = scale·(x + ½), support (interp/2)·max(scale, 1),
    # taps j from trunc(c − support + ½) (at least 0) below trunc(c + support + ½) (at most in), weights
    # filter((j − c + ½)/max(scale, 1)) normalised to sum 1; the filter is the triangle or cubic A = −0.5.
    t = dtype.type
    scale = t(1.0 / sf) if sf is not None and sf > 0 else t(n_in) / t(n_out)
    half = 2.0 if cubic else 1.0
    support = t(half) * scale if scale >= 1 else t(half)
    invscale = t(1) / scale if scale >= 1 else t(1)
    centre = scale * (np.arange(n_out, dtype=dtype) + t(0.5))
    xmin = np.maximum(np.trunc(centre - support + t(0.5)).astype(np.int64), 0)
    xsize = np.minimum(np.trunc(centre + support + t(0.5)).astype(np.int64), n_in) - xmin
    width = math.ceil(float(support)) * 2 + 1
    j = np.arange(width)
    offsets = (j[None, :] + xmin[:, None]).astype(dtype) - centre[:, None] + t(0.5)
    x = offsets * invscale
    weights = _cubic_coefficients(x, -0.5) if cubic else np.maximum(t(1) - np.abs(x), t(0))
    weights = np.where(j[None, :] < xsize[:, None], weights, t(0))
    total = weights.sum(axis=1, keepdims=True)
    weights = np.where(total != 0, weights / np.where(total != 0, total, t(1)), weights)
    index = np.clip(xmin[:, None] + j[None, :], 0, n_in - 1)
    return index, weights.astype(dtype)


def _weighted_axis(x: Array, axis: int, index: Array, weights: Array) -> Array:
    """Σ_k weights[:, k]·x[index[:, k]] along `axis` (one output-sized temporary besides the result)."""
    shape = [1] * x.ndim
    shape[axis] = index.shape[0]
    result: Array = np.take(x, index[:, 0], axis=axis)
    result *= weights[:, 0].reshape(shape)
    for k in range(1, index.shape[1]):
        term = np.take(x, index[:, k], axis=axis)
        term *= weights[:, k].reshape(shape)
        result += term
        del term  # freed before the next tap's array is made
    return result


def _nearest_index(n_in: int, n_out: int, sf: float | None, dtype: np.dtype[Any], two_d: bool) -> Array:
    # ATen has two CPU code paths (behaviour checked against torch 2.13): 2-D inputs go through
    # nearest_idx (identity when the size is unchanged, x >> 1 when it doubles, else a float32
    # scale), 1-D and 3-D through HelperInterpNearest (a scale in the input's opmath type:
    # float32 or float64). Both then take floorf(scale·x), i.e. a float32 floor.
    if two_d:
        if n_out == n_in:
            return np.arange(n_out)
        if n_out == 2 * n_in:
            return np.arange(n_out) >> 1
        dtype = np.dtype(np.float32)
    t = dtype.type
    scale = t(1.0 / sf) if sf is not None and sf > 0 else t(n_in) / t(n_out)
    src = (scale * np.arange(n_out, dtype=dtype)).astype(np.float32)
    result: Array = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    return result


def _linear_axis(x: Array, axis: int, n_in: int, n_out: int, sf: float | None, corners: bool) -> Array:
    if n_out == n_in:
        # ATen copies when the size is unchanged, whatever the scale factor.
        return x
    t = x.dtype.type
    if corners:
        scale = t(n_in - 1) / t(n_out - 1) if n_out > 1 else t(0)
    else:
        scale = t(1.0 / sf) if sf is not None and sf > 0 else t(n_in) / t(n_out)
    dst = np.arange(n_out, dtype=x.dtype)
    src = scale * dst if corners else np.maximum(scale * (dst + t(0.5)) - t(0.5), t(0))
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    lam1 = np.clip(src - i0.astype(x.dtype), t(0), t(1))
    i1 = i0 + (i0 < n_in - 1)
    shape = [1] * x.ndim
    shape[axis] = n_out
    lam1 = lam1.reshape(shape)
    lam0 = t(1) - lam1
    # lam0·x[i0] + lam1·x[i1] in two output-sized buffers (a plain expression would hold four).
    result: Array = np.take(x, i0, axis=axis)
    result *= lam0
    right = np.take(x, i1, axis=axis)
    right *= lam1
    result += right
    return result


def pixel_shuffle(input: npt.ArrayLike, upscale_factor: int) -> Array:
    """(*, C·r², H, W) → (*, C, H·r, W·r) like ``F.pixel_shuffle``.

    out[c, h·r+i, w·r+j] = in[c·r²+i·r+j, h, w].
    """
    x = _as_float(input)
    r = _int(upscale_factor, "upscale_factor")
    if r < 1:
        raise ValueError(f"pixel_shuffle: upscale_factor must be positive, got {r}")
    if x.ndim < 3:
        raise ValueError(f"pixel_shuffle: expected an input with at least 3 dimensions, got shape {x.shape}")
    *lead, c, h, w = x.shape
    if c % (r * r):
        raise ValueError(
            "pixel_shuffle expects its input's 'channel' dimension to be divisible by the square of "
            f"upscale_factor, but input.size(-3)={c} is not divisible by {r * r}"
        )
    nl = len(lead)
    y = x.reshape((*lead, c // (r * r), r, r, h, w))
    perm = (*range(nl), nl, nl + 3, nl + 1, nl + 4, nl + 2)
    return np.ascontiguousarray(y.transpose(perm)).reshape((*lead, c // (r * r), h * r, w * r))


def pixel_unshuffle(input: npt.ArrayLike, downscale_factor: int) -> Array:
    """(*, C, H·r, W·r) → (*, C·r², H, W) like ``F.pixel_unshuffle`` (inverse of :func:`pixel_shuffle`)."""
    x = _as_float(input)
    r = _int(downscale_factor, "downscale_factor")
    if r < 1:
        raise ValueError(f"pixel_unshuffle: downscale_factor must be positive, got {r}")
    if x.ndim < 3:
        raise ValueError(f"pixel_unshuffle: expected an input with at least 3 dimensions, got shape {x.shape}")
    *lead, c, h, w = x.shape
    if h % r or w % r:
        raise ValueError(
            f"pixel_unshuffle expects height ({h}) and width ({w}) to be divisible by downscale_factor ({r})"
        )
    nl = len(lead)
    y = x.reshape((*lead, c, h // r, r, w // r, r))
    perm = (*range(nl), nl, nl + 2, nl + 4, nl + 1, nl + 3)
    return np.ascontiguousarray(y.transpose(perm)).reshape((*lead, c * r * r, h // r, w // r))


def channel_shuffle(input: npt.ArrayLike, groups: int) -> Array:
    """(N, g·k, *) → (N, k·g, *) like ``nn.ChannelShuffle(g)``: reshape to (N, g, k, *), swap g and k,
    reshape back, so out[c·g + j] = in[j·k + c] (ShuffleNet's interleaving of the groups)."""
    x = _as_float(input)
    g = _int(groups, "groups")
    if g < 1:
        raise ValueError(f"channel_shuffle: Number of groups to divide channels in must be positive, got {g}")
    if x.ndim < 3:
        raise ValueError(f"channel_shuffle expects input with > 2 dims, but got shape {x.shape}")
    n, c, *rest = x.shape
    if c % g:
        raise ValueError(f"Number of channels must be divisible by groups. Got {c} channels and {g} groups.")
    y = x.reshape((n, g, c // g, *rest)).swapaxes(1, 2)
    return np.ascontiguousarray(y).reshape(x.shape)


# --------------------------------------------------------------------------------------------
# dense layers, activations, normalisation


def linear(input: npt.ArrayLike, weight: npt.ArrayLike, bias: npt.ArrayLike | None = None) -> Array:
    """``input @ weight.T + bias`` like ``F.linear``: input (*, in), weight (out, in), bias (out,)."""
    x = _as_float(input)
    w = np.asarray(weight, dtype=x.dtype)
    if w.ndim not in (1, 2) or x.ndim < 1 or x.shape[-1] != w.shape[-1]:
        raise ValueError(f"linear: input {x.shape} and weight {w.shape} are incompatible (weight is (out, in))")
    out: Array = np.matmul(x, w.T)
    if bias is not None:
        out += np.asarray(bias, dtype=x.dtype)
    return out


def flatten(input: npt.ArrayLike, start_dim: int = 1, end_dim: int = -1) -> Array:
    """Merge axes start_dim..end_dim like ``torch.flatten`` (default keeps the batch axis, as nn.Flatten)."""
    x = np.asarray(input)
    if x.ndim == 0:
        return x.reshape(1)
    start = _int(start_dim, "start_dim")
    end = _int(end_dim, "end_dim")
    for name, v in (("start_dim", start), ("end_dim", end)):
        if not -x.ndim <= v < x.ndim:
            raise ValueError(f"flatten: {name}={v} is out of range for a {x.ndim}-D input")
    start %= x.ndim
    end %= x.ndim
    if start > end:
        raise ValueError(f"flatten: start_dim ({start_dim}) cannot come after end_dim ({end_dim})")
    return x.reshape((*x.shape[:start], -1, *x.shape[end + 1 :]))


def relu(input: npt.ArrayLike) -> Array:
    """max(x, 0) elementwise like ``F.relu``."""
    x = _as_float(input)
    result: Array = np.maximum(x, x.dtype.type(0))
    return result


def relu6(input: npt.ArrayLike) -> Array:
    """min(max(x, 0), 6) elementwise like ``F.relu6``."""
    x = _as_float(input)
    return np.clip(x, x.dtype.type(0), x.dtype.type(6))


def leaky_relu(input: npt.ArrayLike, negative_slope: float = 0.01) -> Array:
    """x if x > 0 else negative_slope·x, like ``F.leaky_relu`` (``inplace`` is not offered)."""
    x = _as_float(input)
    slope = x.dtype.type(negative_slope)
    return _map_chunks(x, lambda c: np.where(c > 0, c, c * slope))


_erf = np.frompyfunc(math.erf, 1, 1)


def gelu(input: npt.ArrayLike, approximate: str = "none") -> Array:
    """GELU like ``F.gelu``: exact form x·Φ(x) = x/2·(1 + erf(x/√2)), or ``approximate='tanh'``.

    erf is libm's (``math.erf``) applied elementwise in float64, then cast back: accurate to
    float64 rounding but not fast (NumPy has no vectorised erf).
    """
    x = _as_float(input)
    if approximate == "tanh":
        t = x.dtype.type

        def tanh_form(c: Array) -> Array:
            inner = t(math.sqrt(2.0 / math.pi)) * (c + t(0.044715) * c * c * c)
            result: Array = t(0.5) * c * (t(1) + np.tanh(inner))
            return result

        return _map_chunks(x, tanh_form)
    if approximate != "none":
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")

    def exact(c: Array) -> Array:
        c64 = c.astype(np.float64)
        erf = np.asarray(_erf(c64 / math.sqrt(2.0)), dtype=np.float64)
        result: Array = 0.5 * c64 * (1.0 + erf)
        return result

    return _map_chunks(x, exact)


def _sigmoid(c: Array) -> Array:
    # exp(-|x|) never overflows: 1/(1 + e) for x ≥ 0, e/(1 + e) for x < 0.
    e = np.exp(-np.abs(c))
    one = c.dtype.type(1)
    result: Array = np.where(c >= 0, one, e) / (one + e)
    return result


def sigmoid(input: npt.ArrayLike) -> Array:
    """1 / (1 + exp(-x)) like ``torch.sigmoid``, evaluated without overflow for large |x|."""
    return _map_chunks(_as_float(input), _sigmoid)


def silu(input: npt.ArrayLike) -> Array:
    """x·sigmoid(x) like ``F.silu``."""
    return _map_chunks(_as_float(input), lambda c: c * _sigmoid(c))


def tanh(input: npt.ArrayLike) -> Array:
    """Hyperbolic tangent like ``torch.tanh``."""
    return np.tanh(_as_float(input))


def batch_norm(
    input: npt.ArrayLike,
    running_mean: npt.ArrayLike,
    running_var: npt.ArrayLike,
    weight: npt.ArrayLike | None = None,
    bias: npt.ArrayLike | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Array:
    """Inference batch norm like ``F.batch_norm(training=False)`` over (N, C, *): channel axis 1.

    y = (x - mean)/sqrt(var + eps)·weight + bias. ``training=True`` (batch statistics and
    running-stat updates) is not supported and raises ValueError.
    """
    if training:
        raise ValueError("batch_norm: training=True is not supported; the reference is inference-only")
    x = _as_float(input)
    if x.ndim < 2:
        raise ValueError(f"batch_norm: expected an input of at least 2 dimensions (N, C, ...), got {x.shape}")
    c = x.shape[1]
    t = x.dtype

    def per_channel(v: npt.ArrayLike | None, name: str, default: float) -> Array:
        if v is None:
            return np.full(c, default, dtype=t)
        a = np.asarray(v, dtype=t)
        if a.shape != (c,):
            raise ValueError(f"batch_norm: {name} must have shape ({c},), got {a.shape}")
        return a

    mean = per_channel(running_mean, "running_mean", 0.0)
    var = per_channel(running_var, "running_var", 1.0)
    scale = per_channel(weight, "weight", 1.0) / np.sqrt(var + t.type(eps))
    shift = per_channel(bias, "bias", 0.0) - mean * scale
    shape = (c,) + (1,) * (x.ndim - 2)
    result: Array = x * scale.reshape(shape)
    result += shift.reshape(shape)
    return result


def dropout(input: npt.ArrayLike, p: float = 0.5, training: bool = False) -> Array:
    """Dropout like ``F.dropout`` in eval mode: the identity (a copy).

    Note the default ``training=False`` (torch's default is True): the reference models
    inference; ``training=True`` raises ValueError because it would need torch's RNG stream.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability has to be between 0 and 1, but got {p}")
    if training:
        raise ValueError("dropout: training=True is not supported (the random mask can't match torch's)")
    return np.array(_as_float(input), copy=True)


def add(a: npt.ArrayLike, b: npt.ArrayLike) -> Array:
    """Elementwise sum with NumPy broadcasting (a residual connection)."""
    return np.add(_as_float(a), _as_float(b, "other"))


def mul(a: npt.ArrayLike, b: npt.ArrayLike) -> Array:
    """Elementwise product with NumPy broadcasting."""
    return np.multiply(_as_float(a), _as_float(b, "other"))


def cat(tensors: Sequence[npt.ArrayLike], dim: int = 1) -> Array:
    """Concatenate along ``dim`` (default: channels) like ``torch.cat``."""
    if len(tensors) == 0:
        raise ValueError("cat: expected a non-empty sequence of arrays")
    return np.concatenate([_as_float(t) for t in tensors], axis=dim)


# --------------------------------------------------------------------------------------------
# memory
#
# The bytes each op allocates besides its input(s) and its output, at the op's peak, for a
# batched input of the given shape and an element size of `itemsize` bytes (4 for float32).
# convcalc.execution.runner adds them to the arrays alive at once to bound a run before it allocates
# anything; the tests measure every op against them with tracemalloc. Per-axis index vectors
# and Python objects (a few KiB) are left out.


def conv_workspace(
    input_shape: Sequence[int],
    weight_shape: Sequence[int],
    stride: IntArg = 1,
    padding: ConvPadding = 0,
    dilation: IntArg = 1,
    groups: int = 1,
    *,
    padding_mode: str = "zeros",
    itemsize: int = 4,
) -> int:
    """Temporary bytes of :func:`conv1d`/:func:`conv2d`/:func:`conv3d` (arguments as theirs, shapes only).

    A padding_mode copy of the input; then, by code path, the flat tap buffer with the
    accumulator and one product (depthwise), the flat buffer with the GEMM's columns and its
    uncropped output (flat), or a zero-padded copy with the im2col columns (im2col).
    """
    nd = len(input_shape) - 2
    geo = _conv_geometry(
        "conv", nd, tuple(input_shape), tuple(weight_shape), stride, padding, dilation, groups, padding_mode
    )
    n, cin, cout = geo.n, geo.cin, geo.cout
    ktaps = math.prod(geo.kernel)
    out = n * cout * math.prod(geo.out_sp)
    pre = strip = 0
    if geo.pre_pad is not None and any(b or a for b, a in geo.pre_pad):
        pre = n * cin * math.prod(geo.padded)
        strip = _mode_pad_strip((n, cin, *input_shape[2:]), geo.pre_pad)
    if geo.path == "pointwise":
        peak = out
    elif geo.path in ("depthwise", "flat"):
        buf, length, crop = _flat_sizes(n * cin, geo.padded, geo.kernel, geo.stride, geo.dilation, geo.out_sp)
        ext = n * cout * length
        if geo.path == "depthwise":
            peak = buf + 2 * ext
        else:
            peak = max(buf + n * cin * ktaps * length + ext, buf + ext + out if crop else 0)
    else:
        padded = n * cin * math.prod(geo.padded) if any(b or a for b, a in geo.pairs) else 0
        peak = padded + n * cin * ktaps * math.prod(geo.out_sp) + out
    return (pre + max(peak, strip) - out) * itemsize


def conv_transpose_workspace(
    input_shape: Sequence[int],
    weight_shape: Sequence[int],
    stride: IntArg = 1,
    padding: IntArg = 0,
    output_padding: IntArg = 0,
    groups: int = 1,
    dilation: IntArg = 1,
    *,
    itemsize: int = 4,
) -> int:
    """Temporary bytes of :func:`conv_transpose2d` and its 1-D/3-D forms: the GEMM's columns
    N·C_out·∏k·∏in, the uncropped output they are scattered into, and the crop's copy."""
    nd = len(input_shape) - 2
    geo = _conv_transpose_geometry(
        "conv_transpose", nd, tuple(input_shape), tuple(weight_shape), stride, padding, output_padding, groups, dilation
    )
    per_channel = geo.n * geo.cout
    cols = per_channel * math.prod(geo.kernel) * math.prod(geo.in_sp)
    out = per_channel * math.prod(geo.out_sp)
    held = cols if geo.direct else per_channel * math.prod(geo.buffer)
    phases = [cols if geo.direct else cols + held]
    if geo.cropped:
        if geo.grown is not None:
            grown = per_channel * math.prod(geo.grown)
            phases.append(held + grown)
            held = grown
        phases.append(held + out)
    return (max(phases) - out) * itemsize


def _mode_pad_strip(shape: Sequence[int], pairs: Sequence[tuple[int, int]]) -> int:
    """Elements of the largest temporary np.pad holds in reflect/edge/wrap mode: one side's strip
    (bounded with every axis already padded)."""
    lead = len(shape) - len(pairs)
    padded = [*shape[:lead], *(n + b + a for n, (b, a) in zip(shape[lead:], pairs, strict=True))]
    total = math.prod(padded)
    return max((total // padded[lead + i] * max(b, a) for i, (b, a) in enumerate(pairs) if b or a), default=0)


def pad_workspace(input_shape: Sequence[int], pad: Sequence[int], mode: str = "constant", *, itemsize: int = 4) -> int:
    """Temporary bytes of :func:`pad` (``pad`` as F.pad's, last axis first): none in constant mode,
    one side's strip in the others."""
    if mode == "constant":
        return 0
    pairs = [(pad[2 * i], pad[2 * i + 1]) for i in range(len(pad) // 2)][::-1]
    return _mode_pad_strip(input_shape, pairs) * itemsize


def pool_workspace(
    input_shape: Sequence[int],
    kernel_size: IntArg,
    stride: IntArg | None = None,
    padding: IntArg = 0,
    dilation: IntArg = 1,
    ceil_mode: bool = False,
    *,
    average: bool = False,
    itemsize: int = 4,
) -> int:
    """Temporary bytes of max pooling (or average pooling with `average`, dilation 1): the padded
    copy of the input, and for averages the divisors."""
    nd = len(input_shape) - 2
    spatial = tuple(input_shape[2:])
    k, s, p, d, out_sp = _pool_geometry("pool", nd, spatial, kernel_size, stride, padding, dilation, ceil_mode)
    pairs = _pool_pad_pairs(spatial, k, s, p, d, out_sp)
    padded = 0
    if any(b or a for b, a in pairs):
        padded = math.prod(input_shape[:2]) * math.prod(n + b + a for n, (b, a) in zip(spatial, pairs, strict=True))
    divisors = 0
    if average:
        # The divisor grid grows an axis at a time (the last step holds it and the step before),
        # from each axis' window starts, ends and counts (int64 vectors as long as the axis).
        divisors = (math.prod(out_sp) + math.prod(out_sp[:-1])) * itemsize + 32 * max(out_sp)
    return padded * itemsize + divisors


def adaptive_pool_workspace(
    input_shape: Sequence[int], output_size: int | Sequence[int | None] | None, *, itemsize: int = 4
) -> int:
    """Temporary bytes of the adaptive poolings: with bins that do not divide an axis, each axis is
    pooled in turn next to the previous axis' result (see _adaptive_axis)."""
    nd = len(input_shape) - 2
    spatial = tuple(input_shape[2:])
    sizes = _adaptive_sizes("adaptive_pool", nd, spatial, output_size)
    if all(n % o == 0 for n, o in zip(spatial, sizes, strict=True)):
        return 0
    lead = math.prod(input_shape[:2])
    shape = list(spatial)
    previous = peak = 0
    for axis, o in enumerate(sizes):
        size = shape[axis]
        if size == o:
            continue
        shape[axis] = o
        current = lead * math.prod(shape) * itemsize
        stage = current
        if size % o:
            # Overlapping bins: their int64 starts, ends and indices, and when the loop runs over the
            # offsets within a bin (bins no wider than their number) a second buffer.
            j = np.arange(o, dtype=np.int64)
            width = int((-((-(j + 1) * size) // o) - (j * size) // o).max())
            stage = (current if o < width else 2 * current) + 40 * o
        peak = max(peak, previous + stage)
        previous = current
    return peak - lead * math.prod(sizes) * itemsize


def interpolate_workspace(
    input_shape: Sequence[int], size: Sequence[int], mode: str = "nearest", *, itemsize: int = 4
) -> int:
    """Temporary bytes of :func:`interpolate` to output `size`: axes are resized in turn, each into
    a new array (linear modes: and one more for the second neighbour) next to the previous axis',
    with the axis' index and weight vectors (int64 indices; linear: four vectors of weights)."""
    shape = list(input_shape)
    previous = peak = 0
    for axis, o in enumerate(size, start=2):
        n_in = shape[axis]
        if mode in ("linear", "aa") and n_in == o:
            continue  # a linear or antialiased axis of unchanged size is not touched
        shape[axis] = o
        current = math.prod(shape) * itemsize
        # nearest: the int64 indices next to the gathered array, or before it their float32 sources
        # and floor; linear: two arrays, the indices of both neighbours and four weight vectors; cubic
        # and antialiased: two arrays and a few (o, taps) index and weight tables.
        if mode == "nearest":
            stage = max(current + o * 8, o * 24)
        elif mode == "linear":
            stage = 2 * current + o * (4 * itemsize + 16)
        else:
            taps = 4 if mode == "cubic" else 2 * math.ceil(2 * max(n_in / o, 1)) + 1
            stage = 2 * current + o * taps * (6 * itemsize + 24)
        peak = max(peak, previous + stage)
        previous = current
    return max(peak - math.prod(shape) * itemsize, 0)


# Bytes per element of one chunk (a·itemsize + b) that the chunked elementwise ops hold at once.
_CHUNK_BYTES = {
    "leaky_relu": (2, 1),  # the mask (1 byte) and x·slope, then np.where's result
    "sigmoid": (4, 0),  # exp(-|x|), the numerator, 1 + e and the quotient
    "silu": (4, 0),  # the sigmoid's, then its result and the product
    "gelu": (0, 56),  # float64 x and x/√2, an object array of Python floats (8 + 24) and erf in float64
    "gelu_tanh": (4, 0),  # x³ and the inner sum, tanh of it, 1 + tanh, then the products
    "hardswish": (2, 0),  # x + 3 clipped, then the product (the quotient replaces it)
    "hardsigmoid": (2, 0),  # x + 3, clipped, then the quotient
    "elu": (2, 1),  # min(x, 0)·inner and expm1 of it, the mask, then np.where's result
    "celu": (2, 1),
    "selu": (2, 1),
    "softplus": (3, 1),  # beta·x, exp(−|z|) and log1p of it, the mask, then np.where's result
    "mish": (3, 1),  # softplus's, then tanh of it and the product
}


def elementwise_workspace(op: str, numel: int, itemsize: int = 4) -> int:
    """Temporary bytes of the elementwise op `op` (a function name here) on `numel` elements:
    chunk-sized for the chunked ones (those in _CHUNK_BYTES; gelu_tanh is gelu's approximate='tanh'),
    none for the others."""
    a, b = _CHUNK_BYTES.get(op, (0, 0))
    return min(numel, _CHUNK) * (a * itemsize + b)


# --------------------------------------------------------------------------------------------
# more activations, normalisations over positions and groups, attention (issue 9's vocabulary)


def hardswish(input: npt.ArrayLike) -> Array:
    """x·relu6(x + 3)/6 like ``F.hardswish``."""
    x = _as_float(input)
    t = x.dtype.type
    return _map_chunks(x, lambda c: c * np.clip(c + t(3), t(0), t(6)) / t(6))


def hardsigmoid(input: npt.ArrayLike) -> Array:
    """relu6(x + 3)/6 like ``F.hardsigmoid``."""
    x = _as_float(input)
    t = x.dtype.type
    return _map_chunks(x, lambda c: np.clip(c + t(3), t(0), t(6)) / t(6))


def hardtanh(input: npt.ArrayLike, min_val: float = -1.0, max_val: float = 1.0) -> Array:
    """min(max(x, min_val), max_val) like ``F.hardtanh`` (which refuses min_val > max_val)."""
    if min_val > max_val:
        raise ValueError("hardtanh: min_val cannot be greater than max_val")
    x = _as_float(input)
    return np.clip(x, x.dtype.type(min_val), x.dtype.type(max_val))


def _expm1_negative(c: Array, alpha: float, inner: float) -> Array:
    """alpha·(exp(x·inner) − 1) where x ≤ 0, x elsewhere (exp of min(x, 0): never overflows)."""
    t = c.dtype.type
    neg = t(alpha) * np.expm1(np.minimum(c, t(0)) * t(inner))
    result: Array = np.where(c > 0, c, neg)
    return result


def elu(input: npt.ArrayLike, alpha: float = 1.0) -> Array:
    """x if x > 0 else alpha·(exp(x) − 1), like ``F.elu``."""
    return _map_chunks(_as_float(input), lambda c: _expm1_negative(c, alpha, 1.0))


def celu(input: npt.ArrayLike, alpha: float = 1.0) -> Array:
    """max(0, x) + min(0, alpha·(exp(x/alpha) − 1)) like ``F.celu`` (alpha 0 is refused, as torch does)."""
    if alpha == 0:
        raise ValueError("celu: ZeroDivisionError: alpha cannot be 0 for CELU")
    return _map_chunks(_as_float(input), lambda c: _expm1_negative(c, alpha, 1.0 / alpha))


#: SELU's constants, as PyTorch writes them (Klambauer et al. 2017).
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def selu(input: npt.ArrayLike) -> Array:
    """scale·elu(x, alpha) with SELU's fixed constants, like ``F.selu``."""
    x = _as_float(input)
    scale = x.dtype.type(SELU_SCALE)
    return _map_chunks(x, lambda c: scale * _expm1_negative(c, SELU_ALPHA, 1.0))


def _softplus(c: Array, beta: float, threshold: float) -> Array:
    # log1p(exp(-|z|)) + max(z, 0) never overflows; above the threshold torch returns x itself.
    t = c.dtype.type
    z = c * t(beta)
    soft = (np.log1p(np.exp(-np.abs(z))) + np.maximum(z, t(0))) / t(beta)
    result: Array = np.where(z > t(threshold), c, soft)
    return result


def softplus(input: npt.ArrayLike, beta: float = 1.0, threshold: float = 20.0) -> Array:
    """log(1 + exp(beta·x))/beta, and x where beta·x > threshold, like ``F.softplus``."""
    return _map_chunks(_as_float(input), lambda c: _softplus(c, beta, threshold))


def mish(input: npt.ArrayLike) -> Array:
    """x·tanh(softplus(x)) like ``F.mish``."""
    return _map_chunks(_as_float(input), lambda c: c * np.tanh(_softplus(c, 1.0, 20.0)))


def prelu(input: npt.ArrayLike, weight: npt.ArrayLike) -> Array:
    """x if x ≥ 0 else weight·x, like ``F.prelu``: weight has 1 entry or one per channel (axis 1)."""
    x = _as_float(input)
    w = np.asarray(weight, dtype=x.dtype).reshape(-1)
    channels = x.shape[1] if x.ndim >= 2 else 1
    if w.size not in (1, channels):
        raise ValueError(
            "prelu: Mismatch of parameter numbers and input channel size. "
            f"Found parameter numbers = {w.size} and channel size = {channels}."
        )
    slope = w.reshape((1, -1) + (1,) * (x.ndim - 2)) if w.size > 1 else w.reshape(())
    result: Array = np.where(x >= 0, x, x * slope)
    return result


def softmax(input: npt.ArrayLike, dim: int = 1) -> Array:
    """exp(x)/Σ exp(x) along ``dim`` like ``F.softmax`` (the maximum subtracted first: no overflow)."""
    x = _as_float(input)
    out: Array = x - x.max(axis=dim, keepdims=True)
    np.exp(out, out=out)
    out /= out.sum(axis=dim, keepdims=True)
    return out


def sub(a: npt.ArrayLike, b: npt.ArrayLike) -> Array:
    """Elementwise difference a − b with NumPy broadcasting, like ``torch.sub``."""
    return np.subtract(_as_float(a), _as_float(b, "other"))


def _normalise(x: Array, axes: tuple[int, ...], eps: float) -> Array:
    """(x − mean)/sqrt(var + eps) over `axes` (biased variance, as every PyTorch norm), as a new array."""
    out: Array = x - x.mean(axis=axes, keepdims=True)
    square = np.square(out)
    inv = square.mean(axis=axes, keepdims=True)
    del square
    inv += x.dtype.type(eps)
    np.sqrt(inv, out=inv)
    out /= inv
    return out


def _affine(out: Array, weight: npt.ArrayLike | None, bias: npt.ArrayLike | None, op: str) -> Array:
    """out·weight + bias per channel (axis 1), in place."""
    c = out.shape[1]
    shape = (c,) + (1,) * (out.ndim - 2)
    for v, name, apply in ((weight, "weight", np.multiply), (bias, "bias", np.add)):
        if v is None:
            continue
        a = np.asarray(v, dtype=out.dtype)
        if a.shape != (c,):
            raise ValueError(f"{op}: {name} must have shape ({c},), got {a.shape}")
        apply(out, a.reshape(shape), out=out)
    return out


def layer_norm_channels(
    input: npt.ArrayLike, weight: npt.ArrayLike | None = None, bias: npt.ArrayLike | None = None, eps: float = 1e-5
) -> Array:
    """Layer norm over the channels (axis 1) at every position, as ConvNeXt's LayerNorm2d: the same as
    ``F.layer_norm(x.permute(0, 2, 3, 1), (C,), weight, bias, eps).permute(0, 3, 1, 2)`` at any rank."""
    x = _as_float(input)
    if x.ndim < 2:
        raise ValueError(f"layer_norm_channels: expected an input (N, C, ...), got {x.shape}")
    return _affine(_normalise(x, (1,), eps), weight, bias, "layer_norm_channels")


def group_norm(
    input: npt.ArrayLike,
    num_groups: int,
    weight: npt.ArrayLike | None = None,
    bias: npt.ArrayLike | None = None,
    eps: float = 1e-5,
) -> Array:
    """Group norm like ``F.group_norm``: statistics per sample over each group of C/num_groups channels
    and every position; then the per-channel affine."""
    x = _as_float(input)
    if x.ndim < 2:
        raise ValueError(f"group_norm: expected an input (N, C, ...), got {x.shape}")
    n, c = x.shape[:2]
    g = _int(num_groups, "num_groups")
    if g < 1 or c % g:
        raise ValueError(
            "group_norm: Expected number of channels in input to be divisible by num_groups, "
            f"but got input of shape {x.shape} and num_groups={g}"
        )
    grouped = _normalise(np.ascontiguousarray(x).reshape(n, g, -1), (2,), eps)
    return _affine(grouped.reshape(x.shape), weight, bias, "group_norm")


def instance_norm(
    input: npt.ArrayLike,
    running_mean: npt.ArrayLike | None = None,
    running_var: npt.ArrayLike | None = None,
    weight: npt.ArrayLike | None = None,
    bias: npt.ArrayLike | None = None,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Array:
    """Instance norm like ``F.instance_norm`` with the input's statistics (per sample and channel, over
    the positions). Running statistics (``use_input_stats=False``) are not supported (ValueError); torch's
    refusal of a single position is kept."""
    if not use_input_stats or running_mean is not None or running_var is not None:
        raise ValueError("instance_norm: only the input's statistics are supported (no running statistics)")
    x = _as_float(input)
    if x.ndim < 3:
        raise ValueError(f"instance_norm: expected an input (N, C, *spatial), got {x.shape}")
    if math.prod(x.shape[2:]) == 1:
        raise ValueError(
            f"instance_norm: Expected more than 1 spatial element when training, got input size {list(x.shape)}"
        )
    return _affine(_normalise(x, tuple(range(2, x.ndim)), eps), weight, bias, "instance_norm")


def multi_head_attention(
    input: npt.ArrayLike,
    num_heads: int,
    in_proj_weight: npt.ArrayLike,
    in_proj_bias: npt.ArrayLike | None,
    out_proj_weight: npt.ArrayLike,
    out_proj_bias: npt.ArrayLike | None,
) -> Array:
    """Self-attention like ``nn.MultiheadAttention(C, num_heads, batch_first=True)(t, t, t)[0]`` on the
    tokens of a channels-first input: t = x.flatten(2).transpose(1, 2), the output reshaped back to
    (N, C, *spatial). Weights in PyTorch's layout: in_proj (3C, C) = [W_q; W_k; W_v], out_proj (C, C).
    Every head's scores are q·kᵀ/√(C/heads), softmax over the keys; no mask, no dropout."""
    x = _as_float(input)
    if x.ndim < 3:
        raise ValueError(f"multi_head_attention: expected an input (N, C, *spatial), got {x.shape}")
    n, c = x.shape[:2]
    h = _int(num_heads, "num_heads")
    if h < 1 or c % h:
        raise ValueError(
            f"multi_head_attention: embed_dim must be divisible by num_heads (embed_dim {c}, num_heads {h})"
        )
    d = c // h
    tokens = x.reshape(n, c, -1).transpose(0, 2, 1)  # (N, T, C), a view
    t = tokens.shape[1]
    qkv = linear(tokens, in_proj_weight, in_proj_bias)  # (N, T, 3C)
    # (3, N, H, T, d): q, k, v per head.
    heads = qkv.reshape(n, t, 3, h, d).transpose(2, 0, 3, 1, 4)
    q, k, v = heads[0], heads[1], heads[2]
    scores = q @ k.transpose(0, 1, 3, 2)  # (N, H, T, T)
    scores *= x.dtype.type(1 / math.sqrt(d))
    weights = softmax(scores, dim=-1)
    del scores
    context = weights @ v  # (N, H, T, d)
    del weights, qkv, heads, q, k, v
    merged = np.ascontiguousarray(context.transpose(0, 2, 1, 3)).reshape(n, t, c)
    del context
    out = linear(merged, out_proj_weight, out_proj_bias)  # (N, T, C)
    del merged
    return np.ascontiguousarray(out.transpose(0, 2, 1)).reshape(x.shape)
