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
def upsample_layer(draw: st.DrawFn, rank: int) -> Layer:
    mode = draw(st.sampled_from(["nearest", "linear"]))
    layer: Layer = {"op": "upsample", "mode": mode, "scale": draw(st.sampled_from([2, 3, 4]))}
    if mode == "linear":
        layer["align_corners"] = draw(st.booleans())
    return layer


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
    draw: st.DrawFn, rank: int = 1, max_layers: int = 5, size_range: tuple[int, int] = (24, 80)
) -> dict[str, Any]:
    """A random stack; the sizes may make PyTorch refuse a layer (the tests check both agree)."""
    layers: list[Layer] = []
    n = draw(st.integers(1, max_layers))
    for i in range(n):
        kind = draw(st.sampled_from(["conv", "conv", "pool", "deconv", "upsample", "residual"]))
        if kind == "conv":
            layers.append(draw(conv_layer(rank)))
        elif kind == "pool":
            layers.append(draw(pool_layer(rank)))
        elif kind == "deconv":
            layers.append(draw(deconv_layer(rank)))
        elif kind == "upsample":
            layers.append(draw(upsample_layer(rank)))
        else:
            layers.extend(draw(residual_block(rank, f"res{i}")))
    size = draw(st.integers(*size_range))
    return {"input": [1] + [size] * rank, "layers": layers}
