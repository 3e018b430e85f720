"""PyTorch as the independent oracle: build the equivalent torch graph of a parsed stack and run it.

Used by the differential tests (shapes and receptive fields). torch is imported by the caller via
pytest.importorskip; nothing in convcalc imports this module.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F

from convcalc.stack.spec import INPUT_NAME, LayerSpec, StackSpec

Tensor = torch.Tensor


def _flat_pad(pairs: tuple[tuple[int, int], ...]) -> list[int]:
    """(before, after) per axis in D,H,W order → F.pad's order (last axis first)."""
    return [v for before, after in reversed(pairs) for v in (before, after)]


def _weight(shape: tuple[int, ...], positive: bool, gen: torch.Generator, ones: bool = False) -> Tensor:
    if ones:
        return torch.ones(shape, dtype=torch.float64)
    if positive:
        return torch.rand(shape, generator=gen, dtype=torch.float64) + 0.5
    return torch.randn(shape, generator=gen, dtype=torch.float64)


def layer_fn(
    layer: LayerSpec,
    in_channels: list[int],
    rank: int,
    positive: bool,
    gen: torch.Generator,
    given: tuple[Any, Any] | None = None,
    ones: bool = False,
) -> Callable[[list[Tensor]], Tensor]:
    """A torch function computing `layer` with deterministic weights.

    positive=True builds the linear, positive-weight skeleton used to read receptive fields by
    autograd: activations become identities and max pooling becomes average pooling over the
    same windows (max pooling's gradient reaches only the arg-max). `given` = (weight, bias or
    None), arrays in PyTorch's layout, replaces the drawn weights of a conv, deconv or linear.
    ones=True (with positive) makes every weight 1 and batchnorm the identity: the gradient of a unit is
    then its number of paths from each input pixel (the coverage skeleton).
    """
    op = layer.op
    cin = in_channels[0]
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}.get(rank)
    convt = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}.get(rank)
    if op in ("conv", "deconv"):
        out = layer.out if layer.out is not None else cin
        g = layer.groups
        shape = (out, cin // g, *layer.kernel) if op == "conv" else (cin, out // g, *layer.kernel)
        w = _weight(shape, positive, gen, ones)
        b = _weight((out,), positive, gen, ones) if layer.bias else None
        if given is not None:
            w, b = _given(given)
        if op == "deconv":
            pads = [p[0] for p in layer.padding]  # type: ignore[index]
            return lambda xs: convt(  # type: ignore[misc]
                xs[0], w, b, layer.stride, pads, layer.output_padding, g, layer.dilation
            )
        mode = {"zeros": "constant"}.get(layer.padding_mode, layer.padding_mode)

        def run_conv(xs: list[Tensor]) -> Tensor:
            x = xs[0]
            pads = _resolve_padding(layer, x)
            if any(p != 0 for p in pads):
                x = F.pad(x, pads, mode=mode)
            return conv(x, w, b, layer.stride, 0, layer.dilation, g)  # type: ignore[misc]

        return run_conv
    if op in ("maxpool", "avgpool"):
        pool: Any
        if op == "maxpool" and not positive:
            pool = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[rank]

            def run_max(xs: list[Tensor]) -> Tensor:
                x, sym = _pool_input(layer, xs[0], -math.inf)
                return pool(x, layer.kernel, layer.stride, sym, layer.dilation, layer.ceil_mode)  # type: ignore[no-any-return]

            return run_max
        if op == "avgpool" and not positive:
            avg_pool = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}[rank]

            def run_avg(xs: list[Tensor]) -> Tensor:
                x, sym = _pool_input(layer, xs[0], 0.0)
                return avg_pool(x, layer.kernel, layer.stride, sym, layer.ceil_mode, layer.count_include_pad)  # type: ignore[no-any-return]

            return run_avg
        native = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d} if op == "maxpool" else None
        avg = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}[rank]
        cip = layer.count_include_pad if op == "avgpool" else True
        kern = torch.ones((cin, 1, *layer.kernel), dtype=torch.float64)

        def run_window_sum(xs: list[Tensor]) -> Tensor:
            # Every window element must pass gradient: sum each window with a ones depthwise conv at
            # the pool's own positions u·s − p + j·d, and take the number of windows from torch's pool.
            x, sym = _pool_input(layer, xs[0], 0.0)
            with torch.no_grad():
                if native is not None:
                    ref = native[rank](x, layer.kernel, layer.stride, sym, layer.dilation, layer.ceil_mode)
                else:
                    ref = avg(x, layer.kernel, layer.stride, sym, layer.ceil_mode, cip)
            extra = [
                s * n + d * k
                for s, n, d, k in zip(layer.stride, ref.shape[2:], layer.dilation, layer.kernel, strict=True)
            ]
            pads = [v for p, e in zip(reversed(sym), reversed(extra), strict=True) for v in (p, p + e)]
            y = conv(F.pad(x, pads), kern, None, layer.stride, 0, layer.dilation, cin)  # type: ignore[misc]
            return y[(slice(None), slice(None), *(slice(0, n) for n in ref.shape[2:]))]

        return run_window_sum
    if op in ("adaptive_avgpool", "adaptive_maxpool"):
        kind = "avg" if (op == "adaptive_avgpool" or positive) else "max"
        fn = getattr(F, f"adaptive_{kind}_pool{rank}d")
        return lambda xs: fn(xs[0], layer.size)  # type: ignore[no-any-return]
    if op == "upsample":
        mode = layer.mode
        if mode == "linear":
            mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[rank]
        align = layer.align_corners if mode != "nearest" else None
        if layer.scale:
            return lambda xs: F.interpolate(xs[0], scale_factor=layer.scale, mode=mode, align_corners=align)
        return lambda xs: F.interpolate(xs[0], size=layer.size, mode=mode, align_corners=align)  # type: ignore[arg-type]
    if op == "pixel_shuffle":
        return lambda xs: F.pixel_shuffle(xs[0], layer.factor)
    if op == "pixel_unshuffle":
        return lambda xs: F.pixel_unshuffle(xs[0], layer.factor)
    if op == "pad":
        pads = _flat_pad(layer.padding)  # type: ignore[arg-type]
        if layer.mode == "constant":
            return lambda xs: F.pad(xs[0], pads, mode="constant", value=layer.value)
        return lambda xs: F.pad(xs[0], pads, mode=layer.mode)
    if op == "add":
        return lambda xs: _fold(xs, torch.add)
    if op == "mul":
        return (lambda xs: _fold(xs, torch.add)) if positive else (lambda xs: _fold(xs, torch.mul))
    if op == "concat":
        return lambda xs: torch.cat(xs, dim=1)
    if op == "flatten":
        return lambda xs: torch.flatten(xs[0], 1)
    if op == "linear":
        out = layer.out
        assert out is not None
        w = _weight((out, cin), positive, gen, ones)
        b = _weight((out,), positive, gen, ones) if layer.bias else None
        if given is not None:
            w, b = _given(given)
        return lambda xs: F.linear(xs[0], w, b)
    if op == "batchnorm" and ones:
        return lambda xs: xs[0]
    if op == "batchnorm":
        mean = torch.zeros(cin, dtype=torch.float64)
        var = torch.ones(cin, dtype=torch.float64)
        return lambda xs: F.batch_norm(xs[0], mean, var, None, None, False, 0.1, layer.eps)
    if positive or op in ("identity", "dropout"):
        return lambda xs: xs[0]
    act = {
        "relu": F.relu,
        "relu6": F.relu6,
        "gelu": F.gelu,
        "silu": F.silu,
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
    }
    if op == "leaky_relu":
        return lambda xs: F.leaky_relu(xs[0], layer.negative_slope)
    return lambda xs: act[op](xs[0])


def _given(given: tuple[Any, Any]) -> tuple[Tensor, Tensor | None]:
    weight, bias = given
    return torch.as_tensor(weight), None if bias is None else torch.as_tensor(bias)


def _fold(xs: list[Tensor], fn: Callable[[Tensor, Tensor], Tensor]) -> Tensor:
    out = xs[0]
    for x in xs[1:]:
        out = fn(out, x)
    return out


def _resolve_padding(layer: LayerSpec, x: Tensor) -> list[int]:
    """Explicit F.pad list for a conv/pool: TF SAME computed from the actual size (independent of convcalc)."""
    sizes = x.shape[2:]
    if layer.padding == "valid":
        return [0] * (2 * len(sizes))
    if layer.padding == "same":
        pairs = []
        for size, k, s, d in zip(sizes, layer.kernel, layer.stride, layer.dilation, strict=True):
            out = -(-int(size) // s)
            total = max((out - 1) * s + d * (k - 1) + 1 - int(size), 0)
            pairs.append((total // 2, total - total // 2))
        return _flat_pad(tuple(pairs))
    return _flat_pad(layer.padding)


def _pool_input(layer: LayerSpec, x: Tensor, fill: float) -> tuple[Tensor, list[int]]:
    """Pools take symmetric padding; asymmetric or 'same' padding is applied with F.pad first."""
    if isinstance(layer.padding, tuple) and all(b == a for b, a in layer.padding):
        return x, [b for b, _ in layer.padding]
    pads = _resolve_padding(layer, x)
    return F.pad(x, pads, mode="constant", value=fill), [0] * len(layer.kernel)


def build(
    stack: StackSpec,
    positive: bool = False,
    seed: int = 0,
    params: Mapping[str, tuple[Any, Any]] | None = None,
    until: str | None = None,
    ones: bool = False,
) -> Callable[[Tensor], dict[str, Tensor]]:
    """The whole stack as a function: input tensor (N, C, *spatial) → every layer's output by name.

    Weights are drawn on the first call, from the channel counts that actually arrive; `params`
    maps layer names to given (weight, bias) arrays used instead (e.g. the runner's weights).
    With `until`, the forward stops after that layer (layers only read layers above them). `ones`: see
    `layer_fn`.
    """
    gen = torch.Generator().manual_seed(seed)
    fns: dict[str, Callable[[list[Tensor]], Tensor]] = {}

    def forward(x: Tensor) -> dict[str, Tensor]:
        values: dict[str, Tensor] = {INPUT_NAME: x}
        for layer in stack.layers:
            xs = [values[n] for n in layer.inputs]
            if layer.name not in fns:
                given = None if params is None else params.get(layer.name)
                fns[layer.name] = layer_fn(
                    layer, [int(t.shape[1]) for t in xs], xs[0].dim() - 2, positive, gen, given, ones
                )
            values[layer.name] = fns[layer.name](xs)
            if layer.name == until:
                break
        return values

    return forward


def autograd_field(
    stack: StackSpec, layer_name: str, units: list[tuple[int, ...]], seed: int = 0
) -> list[list[tuple[int, int]]]:
    """For each unit (one index per spatial axis of the layer), the per-axis [lo, hi] hull of input
    pixels with a non-zero gradient, by autograd through the positive linear skeleton.

    All units go through one forward and one backward pass: unit b is read from batch item b, and
    batch items never mix (every op acts per sample), so the gradient of item b is unit b's alone.
    """
    if not units:
        return []
    forward = build(stack, positive=True, seed=seed, until=layer_name)
    spatial = tuple(int(s) for s in stack.input.spatial)  # type: ignore[arg-type]
    x = torch.ones((len(units), stack.input.channels, *spatial), dtype=torch.float64, requires_grad=True)
    y = forward(x)[layer_name]
    total = sum(y[(b, slice(None), *unit)].sum() for b, unit in enumerate(units))
    assert isinstance(total, torch.Tensor)
    total.backward()
    assert x.grad is not None
    results = []
    for b in range(len(units)):
        # Interpolation weights that are exactly 0 in exact arithmetic come out as ~1e-16 in floating
        # point (e.g. align_corners' (in-1)/(out-1) scale): treat gradients that small as zero.
        grad = x.grad[b].abs().sum(0)
        nz = (grad > 1e-9 * grad.max()).nonzero()
        hull = []
        for axis in range(len(spatial)):
            col = nz[:, axis]
            hull.append((int(col.min()), int(col.max())) if len(col) else (0, -1))
        results.append(hull)
    return results


def autograd_coverage(stack: StackSpec, layer_name: str, unit: tuple[int, ...]) -> Tensor:
    """The gradient of `unit` of a layer (summed over its channels) with respect to the input (summed over
    the input's channels), through the all-ones skeleton: the number of paths from every input pixel,
    exact in float64 for the small integer counts of test stacks. Shape: the input's spatial shape."""
    forward = build(stack, positive=True, until=layer_name, ones=True)
    spatial = tuple(int(s) for s in stack.input.spatial)  # type: ignore[arg-type]
    x = torch.ones((1, stack.input.channels, *spatial), dtype=torch.float64, requires_grad=True)
    y = forward(x)[layer_name]
    y[(0, slice(None), *unit)].sum().backward()
    assert x.grad is not None
    return x.grad[0].sum(0)
