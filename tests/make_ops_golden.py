"""Regenerate tests/golden/ops/*.npz: PyTorch outputs for convcalc.kernels.functional' golden tests.

Usage: python3 tests/make_ops_golden.py   (needs torch; deterministic: fixed seeds, CPU)

Each file holds one op family. Case i is stored as ``{i}/meta`` (a JSON string: the ops
function name, the positional array names and the keyword arguments) plus ``{i}/<name>`` for
each input array and ``{i}/expected`` for PyTorch's output. The tests call
``getattr(convcalc.kernels.functional, fn)(*arrays, **kwargs)`` and compare, without importing torch.
Where convcalc offers an extra (padding_mode, asymmetric or TF-style 'same' padding), the
expected output is built from PyTorch primitives the documented way (F.pad, then a
padding-0 convolution).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

OUT = Path(__file__).resolve().parent / "golden" / "ops"

Case = tuple[str, dict[str, np.ndarray[Any, Any]], dict[str, Any], Callable[..., torch.Tensor]]


def _t(a: np.ndarray[Any, Any]) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


class Family:
    def __init__(self, name: str) -> None:
        self.name = name
        self.cases: list[Case] = []

    def add(
        self,
        fn: str,
        arrays: dict[str, np.ndarray[Any, Any]],
        kwargs: dict[str, Any],
        ref: Callable[..., torch.Tensor],
    ) -> None:
        self.cases.append((fn, arrays, kwargs, ref))

    def write(self) -> int:
        data: dict[str, np.ndarray[Any, Any]] = {}
        for i, (fn, arrays, kwargs, ref) in enumerate(self.cases):
            with torch.no_grad():
                expected = ref(*[_t(a) for a in arrays.values()]).numpy()
            data[f"{i}/meta"] = np.array(json.dumps({"fn": fn, "args": list(arrays), "kwargs": kwargs}))
            for k, a in arrays.items():
                data[f"{i}/{k}"] = a
            data[f"{i}/expected"] = expected
        path = OUT / f"{self.name}.npz"
        np.savez_compressed(path, **data)
        return path.stat().st_size


def _same_pads(size: int, k: int, s: int, d: int) -> tuple[int, int]:
    out = -(-size // s)
    total = max((out - 1) * s + d * (k - 1) + 1 - size, 0)
    return total // 2, total - total // 2


def conv_family(rng: np.random.Generator) -> Family:
    fam = Family("conv")
    fns = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
    for i in range(30):
        nd = 1 + i % 3
        dtype = np.float64 if i % 4 else np.float32
        groups = [1, 2, 3][i % 3]
        cin, cout = groups * (1 + i % 2), groups * (1 + (i // 2) % 3)
        k = tuple(int(v) for v in rng.integers(1, 4, nd))
        s = tuple(int(v) for v in rng.integers(1, 3, nd))
        d = tuple(int(v) for v in rng.integers(1, 3, nd))
        p = tuple(int(v) for v in rng.integers(0, 3, nd))
        size = tuple(int(d_ * (k_ - 1) + 1 + rng.integers(0, 5)) for k_, d_ in zip(k, d, strict=True))
        x = rng.standard_normal((2, cin, *size)).astype(dtype)
        w = rng.standard_normal((cout, cin // groups, *k)).astype(dtype)
        b = rng.standard_normal(cout).astype(dtype)
        mode = ["zeros", "reflect", "replicate", "circular"][i % 4]
        if mode == "reflect":
            p = tuple(min(pi, si - 1) for pi, si in zip(p, size, strict=True))
        fn = fns[nd]
        kw: dict[str, Any] = {"stride": s, "padding": p, "dilation": d, "groups": groups, "padding_mode": mode}

        def ref(
            x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, fn: Any = fn, kw: dict[str, Any] = kw
        ) -> torch.Tensor:
            if kw["padding_mode"] == "zeros":
                return fn(x, w, b, kw["stride"], kw["padding"], kw["dilation"], kw["groups"])
            pads = [v for pi in reversed(kw["padding"]) for v in (pi, pi)]
            xp = F.pad(x, pads, mode=kw["padding_mode"])
            return fn(xp, w, b, kw["stride"], 0, kw["dilation"], kw["groups"])

        fam.add(f"conv{nd}d", {"input": x, "weight": w, "bias": b}, kw, ref)
    # 'same' at stride 1 (PyTorch's own), TF-style 'same' at stride 2, asymmetric pairs, depthwise.
    x = rng.standard_normal((1, 4, 9, 8))
    w = rng.standard_normal((4, 4, 4, 3))
    fam.add("conv2d", {"input": x, "weight": w}, {"padding": "same"}, lambda x, w: F.conv2d(x, w, padding="same"))
    fam.add(
        "conv2d",
        {"input": x, "weight": w},
        {"padding": "same", "dilation": [1, 2]},
        lambda x, w: F.conv2d(x, w, padding="same", dilation=(1, 2)),
    )
    fam.add("conv2d", {"input": x, "weight": w}, {"padding": "valid"}, lambda x, w: F.conv2d(x, w))

    def tf_same(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        ph = _same_pads(9, 4, 2, 1)
        pw = _same_pads(8, 3, 2, 1)
        return F.conv2d(F.pad(x, (*pw, *ph)), w, stride=2)

    fam.add("conv2d", {"input": x, "weight": w}, {"stride": 2, "padding": "same"}, tf_same)
    fam.add(
        "conv2d",
        {"input": x, "weight": w},
        {"padding": [[0, 2], [3, 1]]},
        lambda x, w: F.conv2d(F.pad(x, (3, 1, 0, 2)), w),
    )

    def same_reflect(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (1, 1, 1, 2), mode="reflect"), w)

    fam.add("conv2d", {"input": x, "weight": w}, {"padding": "same", "padding_mode": "reflect"}, same_reflect)
    xd = rng.standard_normal((2, 6, 10, 11)).astype(np.float32)
    wd = rng.standard_normal((12, 1, 3, 3)).astype(np.float32)
    fam.add(
        "conv2d",
        {"input": xd, "weight": wd},
        {"stride": 2, "padding": 1, "dilation": 2, "groups": 6},
        lambda x, w: F.conv2d(x, w, stride=2, padding=1, dilation=2, groups=6),
    )
    return fam


def conv_transpose_family(rng: np.random.Generator) -> Family:
    fam = Family("conv_transpose")
    fns = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
    for i in range(24):
        nd = 1 + i % 3
        dtype = np.float64 if i % 4 else np.float32
        groups = [1, 2][i % 2]
        cin, cout = groups * (1 + i % 3), groups * (1 + (i // 3) % 2)
        k = tuple(int(v) for v in rng.integers(1, 5, nd))
        s = tuple(int(v) for v in rng.integers(1, 4, nd))
        d = tuple(int(v) for v in rng.integers(1, 3, nd))
        p = tuple(int(v) for v in rng.integers(0, 3, nd))
        op = tuple(int(rng.integers(0, max(si, di))) for si, di in zip(s, d, strict=True))
        size = tuple(int(v) for v in rng.integers(1, 5, nd))
        # keep the output non-empty
        p = tuple(
            min(pi, ((n - 1) * si + di * (ki - 1) + o) // 2)
            for pi, n, si, di, ki, o in zip(p, size, s, d, k, op, strict=True)
        )
        x = rng.standard_normal((2, cin, *size)).astype(dtype)
        w = rng.standard_normal((cin, cout // groups, *k)).astype(dtype)
        b = rng.standard_normal(cout).astype(dtype)
        kw = {"stride": s, "padding": p, "output_padding": op, "groups": groups, "dilation": d}
        fn = fns[nd]
        fam.add(
            f"conv_transpose{nd}d",
            {"input": x, "weight": w, "bias": b},
            kw,
            lambda x, w, b, fn=fn, kw=kw: fn(x, w, b, **kw),
        )
    return fam


def pool_family(rng: np.random.Generator) -> Family:
    fam = Family("pool")
    for i in range(36):
        nd = 1 + i % 3
        dtype = np.float64 if i % 3 else np.float32
        k = tuple(int(v) for v in rng.integers(1, 4, nd))
        stride = None if i % 5 == 0 else tuple(int(v) for v in rng.integers(1, 4, nd))
        p = tuple(int(rng.integers(0, ki // 2 + 1)) for ki in k)
        ceil = bool(i % 2)
        size = tuple(int(ki + rng.integers(0, 6)) for ki in k)
        x = rng.standard_normal((2, 3, *size)).astype(dtype)
        if i % 2 == 0:
            d = tuple(int(v) for v in rng.integers(1, 3, nd))
            p = tuple(min(pi, (di * (ki - 1) + 1) // 2) for pi, di, ki in zip(p, d, k, strict=True))
            size = tuple(max(si, di * (ki - 1) + 1) for si, di, ki in zip(size, d, k, strict=True))
            x = rng.standard_normal((2, 3, *size)).astype(dtype)
            kw: dict[str, Any] = {"kernel_size": k, "stride": stride, "padding": p, "dilation": d, "ceil_mode": ceil}
            tf = getattr(F, f"max_pool{nd}d")
            fam.add(f"max_pool{nd}d", {"input": x}, kw, lambda x, tf=tf, kw=kw: tf(x, **kw))
        else:
            kw = {
                "kernel_size": k,
                "stride": stride,
                "padding": p,
                "ceil_mode": ceil,
                "count_include_pad": bool(i % 4 == 1),
            }
            if nd > 1 and i % 7 == 0:
                kw["divisor_override"] = 3
            tf = getattr(F, f"avg_pool{nd}d")
            fam.add(f"avg_pool{nd}d", {"input": x}, kw, lambda x, tf=tf, kw=kw: tf(x, **kw))
    for i in range(12):
        nd = 1 + i % 3
        size = tuple(int(v) for v in rng.integers(1, 9, nd))
        outs: list[int | None] = [int(v) for v in rng.integers(1, 7, nd)]
        if i % 4 == 3:
            outs[0] = None
        x = rng.standard_normal((2, 3, *size))
        kind = "avg" if i % 2 else "max"
        tf = getattr(F, f"adaptive_{kind}_pool{nd}d")
        arg: Any = outs if nd > 1 else outs[0]
        if arg is None:
            arg = 3
        fam.add(
            f"adaptive_{kind}_pool{nd}d",
            {"input": x},
            {"output_size": arg},
            lambda x, tf=tf, arg=arg: tf(x, arg if not isinstance(arg, list) else tuple(arg)),
        )
    return fam


def resample_family(rng: np.random.Generator) -> Family:
    fam = Family("resample")
    modes = {1: "linear", 2: "bilinear", 3: "trilinear"}
    for i in range(30):
        nd = 1 + i % 3
        dtype = np.float64 if i % 3 else np.float32
        size = tuple(int(v) for v in rng.integers(1, 7, nd))
        x = rng.standard_normal((1, 2, *size)).astype(dtype)
        mode = "nearest" if i % 2 else modes[nd]
        kw: dict[str, Any] = {"mode": mode}
        if i % 4 < 2:
            kw["scale_factor"] = [float(np.round(rng.uniform(0.4, 3.1), 3)) for _ in range(nd)]
            kw["recompute_scale_factor"] = [None, True][i % 3 == 0]
        else:
            kw["size"] = [int(v) for v in rng.integers(1, 9, nd)]
        if mode != "nearest":
            kw["align_corners"] = bool(i % 3 == 1)
        if any(int(math_floor(n * f)) < 1 for n, f in zip(size, kw.get("scale_factor", [1.0] * nd), strict=True)):
            kw["scale_factor"] = [2.0] * nd
        fam.add("interpolate", {"input": x}, kw, lambda x, kw=kw: F.interpolate(x, **kw))
    x = rng.standard_normal((2, 8, 3, 2))
    fam.add("pixel_shuffle", {"input": x}, {"upscale_factor": 2}, lambda x: F.pixel_shuffle(x, 2))
    x = rng.standard_normal((2, 2, 6, 9))
    fam.add("pixel_unshuffle", {"input": x}, {"downscale_factor": 3}, lambda x: F.pixel_unshuffle(x, 3))
    return fam


def math_floor(v: float) -> int:
    return int(np.floor(v))


def pad_family(rng: np.random.Generator) -> Family:
    fam = Family("pad")
    for i, mode in enumerate(["constant", "reflect", "replicate", "circular"] * 3):
        npairs = 1 + i % 3
        x = rng.standard_normal((2, 3, *(int(v) for v in rng.integers(2, 6, npairs))))
        sizes = x.shape[::-1][:npairs]
        pads: list[int] = []
        for s_ in sizes:
            hi = {"constant": 4, "reflect": s_ - 1, "replicate": 4, "circular": s_}[mode]
            lo = -1 if mode == "constant" else 0
            pads += [int(rng.integers(lo, hi + 1)), int(hi)]
        kw: dict[str, Any] = {"pad": pads, "mode": mode}
        if mode == "constant":
            kw["value"] = 1.5
        fam.add("pad", {"input": x}, kw, lambda x, kw=kw: F.pad(x, **kw))
    return fam


def dense_family(rng: np.random.Generator) -> Family:
    fam = Family("dense")
    x = rng.standard_normal((3, 5, 7)) * 4
    w = rng.standard_normal((6, 7))
    b = rng.standard_normal(6)
    fam.add("linear", {"input": x, "weight": w, "bias": b}, {}, F.linear)
    for name in ["relu", "relu6", "gelu", "silu", "sigmoid", "tanh"]:
        tf = getattr(torch, name) if name in ("sigmoid", "tanh") else getattr(F, name)
        fam.add(name, {"input": x}, {}, tf)
        fam.add(name, {"input": x.astype(np.float32)}, {}, tf)
    fam.add("leaky_relu", {"input": x}, {"negative_slope": 0.2}, lambda x: F.leaky_relu(x, 0.2))
    xb = rng.standard_normal((2, 4, 3, 3))
    mean, var = rng.standard_normal(4), rng.uniform(0.5, 2.0, 4)
    gamma, beta = rng.standard_normal(4), rng.standard_normal(4)
    fam.add(
        "batch_norm",
        {"input": xb, "running_mean": mean, "running_var": var, "weight": gamma, "bias": beta},
        {"eps": 1e-3},
        lambda x, m, v, g, b: F.batch_norm(x, m, v, g, b, training=False, eps=1e-3),
    )
    fam.add("flatten", {"input": xb}, {}, lambda x: torch.flatten(x, 1))
    return fam


def main() -> int:
    torch.manual_seed(0)
    OUT.mkdir(parents=True, exist_ok=True)
    total = 0
    builders = [conv_family, conv_transpose_family, pool_family, resample_family, pad_family, dense_family]
    for seed, build in enumerate(builders):
        fam = build(np.random.default_rng(1000 + seed))
        size = fam.write()
        total += size
        print(f"{fam.name}: {len(fam.cases)} cases, {size} bytes")
    print(f"total {total} bytes in {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
