"""Hypothesis strategies for random layer stacks (as the dicts a YAML file would hold)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

Layer = dict[str, Any]


@st.composite
def conv_layer(draw: st.DrawFn, rank: int, residual_ok: bool = True) -> Layer:
    k = draw(st.integers(1, 5))
    d = draw(st.integers(1, 3))
    layer: Layer = {"op": "conv", "kernel": k, "stride": draw(st.integers(1, 3)), "dilation": d}
    pad = draw(
        st.one_of(
            st.integers(0, 3),
            st.just("same"),
            st.just("valid"),
            st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)).map(list), min_size=rank, max_size=rank),
        )
    )
    layer["padding"] = pad
    if draw(st.booleans()):
        layer["padding_mode"] = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
    if draw(st.booleans()):
        layer["out"] = draw(st.integers(1, 6))
        layer["groups"] = draw(st.integers(1, 3))
        layer["bias"] = draw(st.booleans())
    return layer


@st.composite
def pool_layer(draw: st.DrawFn, rank: int) -> Layer:
    op = draw(st.sampled_from(["maxpool", "avgpool"]))
    k = draw(st.integers(1, 4))
    d = draw(st.integers(1, 2)) if op == "maxpool" else 1
    k_eff = d * (k - 1) + 1
    layer: Layer = {
        "op": op,
        "kernel": k,
        "stride": draw(st.integers(1, 3)),
        "padding": draw(st.integers(0, k_eff // 2)),
        "ceil_mode": draw(st.booleans()),
    }
    if op == "maxpool":
        layer["dilation"] = d
    else:
        layer["count_include_pad"] = draw(st.booleans())
    return layer


@st.composite
def deconv_layer(draw: st.DrawFn, rank: int) -> Layer:
    s = draw(st.integers(1, 3))
    d = draw(st.integers(1, 2))
    return {
        "op": "deconv",
        "kernel": draw(st.integers(1, 5)),
        "stride": s,
        "dilation": d,
        "padding": draw(st.integers(0, 2)),
        "output_padding": draw(st.integers(0, max(s, d) - 1)),
    }


@st.composite
def upsample_layer(draw: st.DrawFn, rank: int, sizes: bool = False) -> Layer:
    """Integer scales (fractional ones make PyTorch's float32 source indices differ from exact ones)."""
    mode = draw(st.sampled_from(["nearest", "linear"]))
    layer: Layer = {"op": "upsample", "mode": mode}
    if sizes and draw(st.booleans()):
        layer["size"] = draw(st.integers(1, 30))
    else:
        layer["scale"] = draw(st.sampled_from([2, 3, 4, 0.5] if sizes else [2, 3, 4]))
    if mode == "linear":
        layer["align_corners"] = draw(st.booleans())
    return layer


@st.composite
def shape_only_layer(draw: st.DrawFn, rank: int) -> Layer:
    """Ops whose receptive field is not checked by autograd here, but whose shapes are."""
    kind = draw(st.sampled_from(["adaptive", "pad", "shuffle", "unshuffle", "act", "bn"]))
    if kind == "adaptive":
        op = draw(st.sampled_from(["adaptive_avgpool", "adaptive_maxpool"]))
        return {"op": op, "size": draw(st.lists(st.one_of(st.none(), st.integers(1, 7)), min_size=rank, max_size=rank))}
    if kind == "pad":
        mode = draw(st.sampled_from(["constant", "reflect", "replicate", "circular"]))
        pairs = st.tuples(st.integers(-1 if mode == "constant" else 0, 3), st.integers(0, 3)).map(list)
        return {"op": "pad", "mode": mode, "padding": draw(st.lists(pairs, min_size=rank, max_size=rank))}
    if kind == "shuffle" and rank == 2:
        return {"op": "pixel_shuffle", "factor": draw(st.integers(1, 2))}
    if kind == "unshuffle" and rank == 2:
        return {"op": "pixel_unshuffle", "factor": draw(st.integers(1, 3))}
    if kind == "bn":
        return {"op": "batchnorm"}
    return {"op": draw(st.sampled_from(["relu", "relu6", "leaky_relu", "gelu", "silu", "sigmoid", "tanh", "dropout"]))}


@st.composite
def concat_block(draw: st.DrawFn, rank: int, name: str) -> list[Layer]:
    """A parallel branch concatenated (or multiplied) back: the branch keeps the spatial size."""
    merge = draw(st.sampled_from(["concat", "mul"]))
    out = draw(st.integers(1, 4))
    return [
        {"op": "identity", "name": f"{name}_in"},
        {"op": "conv", "name": f"{name}_a", "kernel": 3, "padding": 1, "out": out if merge == "concat" else None},
        {"op": merge, "name": f"{name}_out", "from": [f"{name}_a", f"{name}_in"]},
    ]


@st.composite
def residual_block(draw: st.DrawFn, rank: int, name: str) -> list[Layer]:
    """A same-size branch merged back with add: two odd-kernel stride-1 convs with half padding."""
    k = draw(st.sampled_from([1, 3, 5]))
    d = draw(st.integers(1, 2))
    pad = d * (k - 1) // 2
    return [
        {"op": "identity", "name": f"{name}_in"},
        {"op": "conv", "name": f"{name}_a", "kernel": k, "dilation": d, "padding": pad},
        {"op": "conv", "name": f"{name}_b", "kernel": 3, "padding": 1},
        {"op": "add", "name": f"{name}_out", "from": [f"{name}_b", f"{name}_in"]},
    ]


@st.composite
def stack(
    draw: st.DrawFn,
    rank: int = 1,
    max_layers: int = 5,
    size_range: tuple[int, int] = (24, 80),
    every_op: bool = False,
) -> dict[str, Any]:
    """A random stack; the sizes may make PyTorch refuse a layer (the tests check both agree).

    every_op adds the ops checked for shapes only (adaptive pooling, pad, pixel shuffle, activations,
    concat/mul branches, resizing by size, flatten + linear at the end) and several input channels.
    """
    layers: list[Layer] = []
    n = draw(st.integers(1, max_layers))
    kinds = ["conv", "conv", "pool", "deconv", "upsample", "residual"]
    if every_op:
        kinds += ["other", "other", "concat"]
    for i in range(n):
        kind = draw(st.sampled_from(kinds))
        if kind == "conv":
            layers.append(draw(conv_layer(rank)))
        elif kind == "pool":
            layers.append(draw(pool_layer(rank)))
        elif kind == "deconv":
            layers.append(draw(deconv_layer(rank)))
        elif kind == "upsample":
            layers.append(draw(upsample_layer(rank, sizes=every_op)))
        elif kind == "other":
            layers.append(draw(shape_only_layer(rank)))
        elif kind == "concat":
            layers.extend(draw(concat_block(rank, f"cat{i}")))
        else:
            layers.extend(draw(residual_block(rank, f"res{i}")))
    if every_op and draw(st.booleans()):
        layers += [{"op": "flatten"}, {"op": "linear", "out": draw(st.integers(1, 5))}]
    for layer in layers:  # YAML-friendly: no None values
        for key in [k for k, v in layer.items() if v is None]:
            del layer[key]
    size = draw(st.integers(*size_range))
    channels = draw(st.integers(1, 4)) if every_op else 1
    return {"input": [channels] + [size] * rank, "layers": layers}
