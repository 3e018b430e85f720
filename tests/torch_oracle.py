"""PyTorch as the independent oracle: build the equivalent torch graph of a parsed stack and run it.

Used by the differential tests (shapes and receptive fields). torch is imported by the caller via
pytest.importorskip; nothing in convcalc imports this module.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from typing import Any

import torch
import torch.nn.functional as F

from convcalc.ops import registry
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
            return transposed_fn(layer, w, b, convt)
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
        align = layer.align_corners if mode not in ("nearest", "nearest-exact") else None
        aa = layer.antialias
        if layer.scale:
            return lambda xs: F.interpolate(
                xs[0], scale_factor=layer.scale, mode=mode, align_corners=align, antialias=aa
            )
        if layer.like is not None:  # xs[1] is the `like` layer: torch's size=y.shape[2:]
            return lambda xs: F.interpolate(xs[0], size=xs[1].shape[2:], mode=mode, align_corners=align, antialias=aa)
        return lambda xs: F.interpolate(xs[0], size=layer.size, mode=mode, align_corners=align, antialias=aa)  # type: ignore[arg-type]
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
    if op == "sub":
        # The skeleton adds: a − b with positive weights upstream could cancel to a zero gradient.
        return (lambda xs: _fold(xs, torch.add)) if positive else (lambda xs: _fold(xs, torch.sub))
    if op == "mul":
        return (lambda xs: _fold(xs, torch.add)) if positive else (lambda xs: _fold(xs, torch.mul))
    if op == "concat":
        return lambda xs: torch.cat(xs, dim=1)
    if op == "flatten":
        return lambda xs: torch.flatten(xs[0], 1)
    if op == "split":  # several outputs: a tuple (build names them layer.0, layer.1, ...)
        sections = list(layer.sizes) if layer.sizes is not None else layer.size
        return lambda xs: torch.split(xs[0], sections, dim=1)  # type: ignore[return-value]
    if op == "chunk":
        return lambda xs: torch.chunk(xs[0], layer.chunks, dim=1)  # type: ignore[return-value]
    if op == "slice":
        start, end = layer.channels
        return lambda xs: xs[0][:, start:end]
    if op == "channel_shuffle":
        return lambda xs: torch.nn.functional.channel_shuffle(xs[0], layer.groups)
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
    if op == "attention":
        return _attention(layer, cin, positive, gen, given)
    if op in ("softmax", "layernorm"):
        if positive:
            # Channels mix at each position, positions never: the positive stand-in adds, to each
            # channel, the sum over the channels at its own position.
            return lambda xs: xs[0] + xs[0].sum(1, keepdim=True)
        if op == "softmax":
            return lambda xs: F.softmax(xs[0], dim=1)
        return lambda xs: _layer_norm_channels(xs[0], layer.eps, layer.elementwise_affine)
    if op in ("groupnorm", "instancenorm"):
        if positive:
            # Statistics over every position: the stand-in adds the sum over the whole sample.
            return lambda xs: xs[0] + xs[0].sum(tuple(range(1, xs[0].dim())), keepdim=True)
        affine = layer.affine
        ones, zeros = torch.ones(cin, dtype=torch.float64), torch.zeros(cin, dtype=torch.float64)
        w_b = (ones, zeros) if affine else (None, None)
        if op == "groupnorm":
            return lambda xs: F.group_norm(xs[0], layer.groups, *w_b, layer.eps)
        return lambda xs: F.instance_norm(xs[0], weight=w_b[0], bias=w_b[1], eps=layer.eps)
    if op == "scale":
        gamma = torch.full((cin,) + (1,) * rank, layer.init, dtype=torch.float64)
        # A learnable multiplier: the skeleton's is positive whatever its initial value.
        return (lambda xs: xs[0]) if positive else (lambda xs: xs[0] * gamma)
    if op == "scalar":
        return (lambda xs: xs[0] * abs(layer.mul)) if positive else (lambda xs: xs[0] * layer.mul + layer.add)
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
    if op == "gelu":
        return lambda xs: F.gelu(xs[0], approximate=layer.approximate)
    if op in ("elu", "celu"):
        fn = F.elu if op == "elu" else F.celu
        return lambda xs: fn(xs[0], layer.alpha)
    if op == "softplus":
        return lambda xs: F.softplus(xs[0], layer.beta, layer.threshold)
    if op == "hardtanh":
        return lambda xs: F.hardtanh(xs[0], layer.min_val, layer.max_val)
    if op == "prelu":
        module = torch.nn.PReLU(layer.num_parameters, layer.init, dtype=torch.float64)  # torch's own init
        return lambda xs: module(xs[0])
    act |= {"hardswish": F.hardswish, "hardsigmoid": F.hardsigmoid, "selu": F.selu, "mish": F.mish}
    return lambda xs: act[op](xs[0])


def _layer_norm_channels(x: Tensor, eps: float, affine: bool) -> Tensor:
    """ConvNeXt's LayerNorm2d: channels last, nn.LayerNorm over C (torch's init: weight 1, bias 0), back."""
    c = int(x.shape[1])
    norm = torch.nn.LayerNorm(c, eps=eps, elementwise_affine=affine, dtype=torch.float64)
    last = x.movedim(1, -1)
    return norm(last).movedim(-1, 1)


def _attention(
    layer: LayerSpec, cin: int, positive: bool, gen: torch.Generator, given: tuple[Any, Any] | None
) -> Callable[[list[Tensor]], Tensor]:
    """nn.MultiheadAttention(C, heads, batch_first=True) on the positions as tokens, reshaped back.

    The positive skeleton: every output sees every position and channel, so it adds the sum over the
    whole sample to each unit (attention's real field by autograd is checked in test_new_ops)."""
    if positive:
        return lambda xs: xs[0] + xs[0].sum(tuple(range(1, xs[0].dim())), keepdim=True)
    module = torch.nn.MultiheadAttention(cin, layer.heads, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        if given is not None:
            w, b = _given(given)
            assert b is not None
        else:
            w, b = _weight((4 * cin, cin), False, gen) / math.sqrt(cin), _weight((4 * cin,), False, gen)
        module.in_proj_weight.copy_(w[: 3 * cin])
        module.in_proj_bias.copy_(b[: 3 * cin])
        module.out_proj.weight.copy_(w[3 * cin :])
        module.out_proj.bias.copy_(b[3 * cin :])

    def run(xs: list[Tensor]) -> Tensor:
        x = xs[0]
        tokens = x.flatten(2).transpose(1, 2)
        y, _ = module(tokens, tokens, tokens, need_weights=False)
        return y.transpose(1, 2).reshape(x.shape)

    return run


def transposed_fn(layer: Any, w: Tensor, b: Tensor | None, convt: Any) -> Callable[[list[Tensor]], Tensor]:
    """torch's transposed conv for `layer`. Padding pairs [before, after] are ONNX ConvTranspose's pads:
    torch's conv_transpose with no padding, then slicing `before` and `after` off; `same` (output s·i) is
    the symmetric padding p and output_padding op with 2p − op = d(k−1) + 1 − s, p as small as can be."""
    g = layer.groups
    if layer.padding == "same":
        need = [d * (k - 1) + 1 - s for k, s, d in zip(layer.kernel, layer.stride, layer.dilation, strict=True)]
        pads = [max((n + 1) // 2, 0) for n in need]
        extra = [2 * p - n for p, n in zip(pads, need, strict=True)]
        return lambda xs: convt(xs[0], w, b, layer.stride, pads, extra, g, layer.dilation)  # type: ignore[no-any-return]
    if all(before == after for before, after in layer.padding):
        pads = [before for before, _ in layer.padding]
        return lambda xs: convt(xs[0], w, b, layer.stride, pads, layer.output_padding, g, layer.dilation)  # type: ignore[no-any-return]

    def run(xs: list[Tensor]) -> Tensor:
        y = convt(xs[0], w, b, layer.stride, 0, layer.output_padding, g, layer.dilation)
        sizes = [y.shape[2 + i] - before - after for i, (before, after) in enumerate(layer.padding)]
        if min(sizes) < 1:  # as torch's own conv_transpose refuses a padding that leaves no output
            raise RuntimeError(f"output size {sizes} is too small: the crop removes every pixel")
        crop = [slice(before, y.shape[2 + i] - after) for i, (before, after) in enumerate(layer.padding)]
        return y[(slice(None), slice(None), *crop)]  # type: ignore[no-any-return]

    return run


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
    detach: Collection[tuple[str, str]] = (),
) -> Callable[[Tensor], dict[str, Tensor]]:
    """The whole stack as a function: input tensor (N, C, *spatial) → every layer's output by name.

    Weights are drawn on the first call, from the channel counts that actually arrive; `params`
    maps layer names to given (weight, bias) arrays used instead (e.g. the runner's weights).
    With `until`, the forward stops after that layer (layers only read layers above them). `ones`: see
    `layer_fn`. `detach`: (layer, input) pairs whose input that layer reads detached (`.detach()`: no
    gradient flows back through it, as through a constant).
    """
    gen = torch.Generator().manual_seed(seed)
    fns: dict[str, Callable[[list[Tensor]], Tensor]] = {}

    def forward(x: Tensor) -> dict[str, Tensor]:
        values: dict[str, Tensor] = {INPUT_NAME: x}
        for layer in stack.layers:
            # `from`, then the layers fields name (`like`)
            xs = [values[n].detach() if (layer.name, n) in detach else values[n] for n in registry.reads(layer)]
            if layer.name not in fns:
                given = None if params is None else params.get(layer.name)
                fns[layer.name] = layer_fn(
                    layer, [int(t.shape[1]) for t in xs], xs[0].dim() - 2, positive, gen, given, ones
                )
            y = fns[layer.name](xs)
            if isinstance(y, tuple):  # a split's outputs, named as convcalc names them (sp.0, sp.1, ...)
                values.update({f"{layer.name}.{i}": part for i, part in enumerate(y)})
            else:
                values[layer.name] = y
            if until in values:
                break
        return values

    return forward


def autograd_field(
    stack: StackSpec,
    layer_name: str,
    units: list[tuple[int, ...]],
    seed: int = 0,
    detach: Collection[tuple[str, str]] = (),
) -> list[list[tuple[int, int]]]:
    """For each unit (one index per spatial axis of the layer), the per-axis [lo, hi] hull of input
    pixels with a non-zero gradient, by autograd through the positive linear skeleton.

    All units go through one forward and one backward pass: unit b is read from batch item b, and
    batch items never mix (every op acts per sample), so the gradient of item b is unit b's alone.
    `detach`: see `build`.
    """
    if not units:
        return []
    forward = build(stack, positive=True, seed=seed, until=layer_name, detach=detach)
    spatial = tuple(int(s) for s in stack.input.spatial)  # type: ignore[arg-type]
    x = torch.ones((len(units), stack.input.channels, *spatial), dtype=torch.float64, requires_grad=True)
    y = forward(x)[layer_name]
    total = sum(y[(b, slice(None), *unit)].sum() for b, unit in enumerate(units))
    assert isinstance(total, torch.Tensor)
    total.backward()
    assert x.grad is not None
    return [gradient_hull(x.grad[b]) for b in range(len(units))]


def gradient_hull(grad: Tensor) -> list[tuple[int, int]]:
    """The per-axis [lo, hi] hull of the input pixels with a non-zero gradient; `grad` is one sample's
    gradient, channels first ((0, -1) on an axis where no pixel has one)."""
    # Interpolation weights that are exactly 0 in exact arithmetic come out as ~1e-16 in floating
    # point (e.g. align_corners' (in-1)/(out-1) scale): treat gradients that small as zero.
    total = grad.abs().sum(0)
    nz = (total > 1e-9 * total.max()).nonzero()
    hull = []
    for axis in range(total.dim()):
        col = nz[:, axis]
        hull.append((int(col.min()), int(col.max())) if len(col) else (0, -1))
    return hull


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
