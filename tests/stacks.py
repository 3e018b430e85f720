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
    """A transposed conv whose padding crops nothing: padding ≤ d(k−1).

    A larger padding crops the full output, and then the padding positions of later layers map back
    onto real input pixels: convcalc counts them (positions in the padding count), autograd cannot see
    them, so the fields tests could not compare those units.
    """
    s = draw(st.integers(1, 3))
    d = draw(st.integers(1, 2))
    k = draw(st.integers(1, 5))
    crop = st.integers(0, min(2, d * (k - 1)))
    layer: Layer = {"op": "deconv", "kernel": k, "stride": s, "dilation": d}
    kind = draw(st.sampled_from(["int", "pairs", "same"]))
    if kind == "same" and not (s == 1 and d == 1 and k % 2 == 0):  # else no symmetric padding gives s·i
        layer["padding"] = "same"  # crops ⌈(d(k−1)+1−s)/2⌉ ≤ d(k−1)
        return layer
    if kind == "pairs":  # [before, after]: cropped from each end (ONNX ConvTranspose's pads)
        layer["padding"] = draw(st.lists(st.tuples(crop, crop).map(list), min_size=rank, max_size=rank))
    else:
        layer["padding"] = draw(crop)
    layer["output_padding"] = draw(st.integers(0, max(s, d) - 1))
    return layer


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
def align_corners_layer(draw: st.DrawFn, rank: int) -> Layer:
    """Linear upsampling with align_corners (source ratio (in−1)/(out−1)), by a scale or to a size.

    Nested ones, or one after a layer that changes the size, repeat only after thousands of units
    (convcalc then lists every unit)."""
    layer: Layer = {"op": "upsample", "mode": "linear", "align_corners": True}
    if draw(st.booleans()):
        layer["scale"] = draw(st.sampled_from([2, 3]))
    else:
        # Not down to a few units: every unit of such a layer is a border unit.
        layer["size"] = draw(st.integers(16, 90) if rank == 1 else st.integers(8, 30))
    return layer


@st.composite
def shape_only_layer(draw: st.DrawFn, rank: int) -> Layer:
    """Ops whose receptive field is not checked by autograd here, but whose shapes are."""
    kind = draw(st.sampled_from(["adaptive", "pad", "shuffle", "unshuffle", "act", "act", "bn", "norm", "prelu"]))
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
    if kind == "norm":
        # groups may not divide the channels, and one position is too few for instancenorm: both refuse.
        op = draw(st.sampled_from(["layernorm", "groupnorm", "instancenorm"]))
        return {"op": op, "groups": draw(st.integers(1, 4))} if op == "groupnorm" else {"op": op}
    if kind == "prelu":
        return {"op": "prelu", "num_parameters": draw(st.integers(1, 4))}  # 1 or C, else both refuse
    return {"op": draw(st.sampled_from(ACTIVATIONS))}


#: The shape-preserving ops without fields of their own that the random stacks draw.
ACTIVATIONS = [
    *("relu", "relu6", "leaky_relu", "gelu", "silu", "sigmoid", "tanh", "dropout", "hardswish", "hardsigmoid"),
    *("elu", "celu", "selu", "softplus", "mish", "hardtanh", "softmax", "scale", "scalar"),
]


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
def channel_block(draw: st.DrawFn, rank: int, name: str) -> list[Layer]:
    """ShuffleNet's unit: split (or chunk) the channels, a same-size conv on one part, concatenated back
    with the other, channel-shuffled, then maybe a channel slice. A 1×1 conv first fixes the channels."""
    half = draw(st.integers(1, 3))
    how = draw(st.sampled_from(["chunk", "sizes", "size"]))
    split: Layer = {"op": "chunk", "chunks": 2}
    if how == "sizes":
        split = {"op": "split", "sizes": [half, half]}
    elif how == "size":
        split = {"op": "split", "size": half}
    k = draw(st.sampled_from([1, 3, 5]))
    d = draw(st.integers(1, 2))
    layers = [
        {"op": "conv", "name": f"{name}_in", "kernel": 1, "out": 2 * half},
        {**split, "name": f"{name}_sp"},
        {
            "op": "conv",
            "name": f"{name}_b",
            "from": f"{name}_sp.1",
            "kernel": k,
            "dilation": d,
            "padding": d * (k - 1) // 2,
        },
        {"op": "concat", "name": f"{name}_cat", "from": [f"{name}_sp.0", f"{name}_b"]},
        {"op": "channel_shuffle", "name": f"{name}_out", "groups": 2},
    ]
    if draw(st.booleans()):
        # Each keeps a channel of the conv branch (the odd ones after the shuffle), whose field is the
        # concat's: convcalc's field is a tensor's, the union over its channels (see convcalc.ops.channels).
        layers.append({"op": "slice", "channels": draw(st.sampled_from([[-half, None], [1, None], [None, 2]]))})
    return layers


@st.composite
def stack(
    draw: st.DrawFn,
    rank: int = 1,
    max_layers: int = 5,
    size_range: tuple[int, int] = (24, 80),
    every_op: bool = False,
    align_corners: bool = False,
    channels: bool = False,
) -> dict[str, Any]:
    """A random stack; the sizes may make PyTorch refuse a layer (the tests check both agree).

    every_op adds the ops checked for shapes only (adaptive pooling, pad, pixel shuffle, activations,
    concat/mul branches, resizing by size, flatten + linear at the end) and several input channels.
    align_corners adds one to three linear align_corners upsamplings among the layers; channels (and
    every_op) ShuffleNet-like channel blocks (split or chunk, concat, channel_shuffle, slice).
    """
    layers: list[Layer] = []
    n = draw(st.integers(1, max_layers))
    kinds = ["conv", "conv", "pool", "deconv", "upsample", "residual"]
    if every_op:
        kinds += ["other", "other", "concat"]
    if every_op or channels:
        kinds += ["channels"]
    chosen = [draw(st.sampled_from(kinds)) for _ in range(n)]
    if align_corners:
        for _ in range(draw(st.integers(1, 3))):
            chosen.insert(draw(st.integers(0, len(chosen))), "align_corners")
    for i, kind in enumerate(chosen):
        if kind == "align_corners":
            layers.append(draw(align_corners_layer(rank)))
        elif kind == "conv":
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
        elif kind == "channels":
            layers.extend(draw(channel_block(rank, f"ch{i}")))
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


@st.composite
def nested_align_corners_stack(
    draw: st.DrawFn, rank: int = 1, size_range: tuple[int, int] = (24, 80)
) -> dict[str, Any]:
    """Two or three align_corners upsamplings with size-changing layers between them: their ratios
    ((in−1)/(out−1) each) then repeat only after thousands of units, so convcalc lists every unit."""
    between = [
        st.builds(lambda k, s: {"op": "conv", "kernel": k, "stride": s}, st.integers(2, 4), st.integers(1, 2)),
        pool_layer(rank),
        deconv_layer(rank),
    ]
    upsample = st.one_of(
        st.builds(lambda scale: {"scale": scale}, st.sampled_from([2, 3])),
        st.builds(lambda size: {"size": size}, st.integers(20, 60 if rank == 1 else 48)),
    ).map(lambda how: {"op": "upsample", "mode": "linear", "align_corners": True, **how})
    layers: list[Layer] = []
    for i in range(draw(st.integers(2, 3))):
        if i:
            layers += draw(st.lists(st.one_of(between), min_size=1, max_size=2))
        layers.append(draw(upsample))
    layers += draw(st.lists(st.one_of(conv_layer(rank), pool_layer(rank)), max_size=2))
    size = draw(st.integers(*size_range))
    return {"input": [1] + [size] * rank, "layers": layers}
