"""Benchmark convcalc.kernels.functional against torch.nn.functional (CPU, float32, same process, same threads).

Usage: python3 bench/bench_ops.py [--quick] [--json PATH] [--threads N] [--filter TEXT] [--baseline OPS.py]

For every case both implementations get the same float32 inputs; each is warmed up, then
timed `repeat` times and the median is reported. Columns: torch ms, convcalc ms, ratio
(convcalc / torch, lower is better), convcalc's achieved GFLOP/s (2·MACs / time), and the
GFLOP/s of a bare ``np.matmul`` of the equivalent im2col GEMM (M×K×N per batch item and group),
the practical ceiling for a GEMM-based NumPy implementation. Summary: the geometric-mean
ratio and the worst case. torch is required (exit status 2 without it).

``--baseline`` loads another version of convcalc/ops.py (e.g. ``git show main:convcalc/ops.py``)
and times it against this one on the same inputs, case by case in the same run: the column
"vs base" is convcalc / baseline (lower is better), the speed change on a noisy machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    print("bench_ops.py needs PyTorch (the reference it is compared with): pip install torch", file=sys.stderr)
    sys.exit(2)

from convcalc.kernels import functional as ops


@dataclass
class Case:
    name: str
    ours: Callable[[], Any]
    theirs: Callable[[], Any]
    flops: float  # 2·MACs (0 for ops without multiply-adds)
    gemm: tuple[int, int, int, int] | None = None  # (batch·groups, M, K, N) of the im2col GEMM
    extra: dict[str, Any] = field(default_factory=dict)


def _rand(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray[Any, Any]:
    return rng.standard_normal(shape, dtype=np.float32)


def conv_case(
    impl: ModuleType,
    rng: np.random.Generator,
    name: str,
    n: int,
    cin: int,
    cout: int,
    size: tuple[int, ...],
    k: int,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    groups: int = 1,
) -> Case:
    nd = len(size)
    x = _rand(rng, (n, cin, *size))
    w = _rand(rng, (cout, cin // groups, *(k,) * nd)) * np.float32(1 / math.sqrt(cin // groups * k**nd))
    b = _rand(rng, (cout,))
    tx, tw, tb = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)
    ours_fn = {1: impl.conv1d, 2: impl.conv2d, 3: impl.conv3d}[nd]
    torch_fn = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[nd]
    out = [(s + 2 * padding - dilation * (k - 1) - 1) // stride + 1 for s in size]
    npos = math.prod(out)
    kk = k**nd
    macs = n * cout * npos * (cin // groups) * kk
    return Case(
        f"{name} b{n}",
        lambda: ours_fn(x, w, b, stride, padding, dilation, groups),
        lambda: torch_fn(tx, tw, tb, stride, padding, dilation, groups),
        2.0 * macs,
        (n * groups, cout // groups, cin // groups * kk, npos),
    )


def convt_case(
    impl: ModuleType,
    rng: np.random.Generator,
    name: str,
    n: int,
    cin: int,
    cout: int,
    size: tuple[int, int],
    k: int,
    stride: int,
    padding: int,
    output_padding: int = 0,
) -> Case:
    x = _rand(rng, (n, cin, *size))
    w = _rand(rng, (cin, cout, k, k)) * np.float32(1 / math.sqrt(cin * k * k))
    b = _rand(rng, (cout,))
    tx, tw, tb = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)
    macs = n * cin * cout * k * k * math.prod(size)
    return Case(
        f"{name} b{n}",
        lambda: impl.conv_transpose2d(x, w, b, stride, padding, output_padding),
        lambda: F.conv_transpose2d(tx, tw, tb, stride, padding, output_padding),
        2.0 * macs,
        (n, cout * k * k, cin, math.prod(size)),
    )


def build_cases(batches: list[int], impl: ModuleType = ops) -> list[Case]:
    """Every case, timing `impl` (convcalc.ops, or a baseline version of it) on seeded inputs."""
    rng = np.random.default_rng(0)
    cases: list[Case] = []
    # ResNet-50 (torchvision v1.5: stride on the 3×3): every distinct convolution at 224×224 input.
    resnet: list[tuple[str, int, int, int, int, int, int]] = [
        # name, cin, cout, size, k, stride, padding
        ("r50 conv1 7x7s2 3->64 @224", 3, 64, 224, 7, 2, 3),
        ("r50 s1 1x1 64->64 @56", 64, 64, 56, 1, 1, 0),
        ("r50 s1 3x3 64->64 @56", 64, 64, 56, 3, 1, 1),
        ("r50 s1 1x1 64->256 @56", 64, 256, 56, 1, 1, 0),
        ("r50 s1 1x1 256->64 @56", 256, 64, 56, 1, 1, 0),
        ("r50 s2 1x1 256->128 @56", 256, 128, 56, 1, 1, 0),
        ("r50 s2 3x3s2 128->128 @56", 128, 128, 56, 3, 2, 1),
        ("r50 s2 1x1 128->512 @28", 128, 512, 28, 1, 1, 0),
        ("r50 s2 ds 1x1s2 256->512 @56", 256, 512, 56, 1, 2, 0),
        ("r50 s2 1x1 512->128 @28", 512, 128, 28, 1, 1, 0),
        ("r50 s2 3x3 128->128 @28", 128, 128, 28, 3, 1, 1),
        ("r50 s3 1x1 512->256 @28", 512, 256, 28, 1, 1, 0),
        ("r50 s3 3x3s2 256->256 @28", 256, 256, 28, 3, 2, 1),
        ("r50 s3 1x1 256->1024 @14", 256, 1024, 14, 1, 1, 0),
        ("r50 s3 ds 1x1s2 512->1024 @28", 512, 1024, 28, 1, 2, 0),
        ("r50 s3 1x1 1024->256 @14", 1024, 256, 14, 1, 1, 0),
        ("r50 s3 3x3 256->256 @14", 256, 256, 14, 3, 1, 1),
        ("r50 s4 1x1 1024->512 @14", 1024, 512, 14, 1, 1, 0),
        ("r50 s4 3x3s2 512->512 @14", 512, 512, 14, 3, 2, 1),
        ("r50 s4 1x1 512->2048 @7", 512, 2048, 7, 1, 1, 0),
        ("r50 s4 ds 1x1s2 1024->2048 @14", 1024, 2048, 14, 1, 2, 0),
        ("r50 s4 1x1 2048->512 @7", 2048, 512, 7, 1, 1, 0),
        ("r50 s4 3x3 512->512 @7", 512, 512, 7, 3, 1, 1),
    ]
    for n in batches:
        for name, cin, cout, size, k, s, p in resnet:
            cases.append(conv_case(impl, rng, name, n, cin, cout, (size, size), k, s, p))
    for n in batches:
        cases.append(conv_case(impl, rng, "depthwise 3x3 144ch @56", n, 144, 144, (56, 56), 3, 1, 1, groups=144))
        cases.append(conv_case(impl, rng, "depthwise 3x3s2 144ch @56", n, 144, 144, (56, 56), 3, 2, 1, groups=144))
        cases.append(conv_case(impl, rng, "stem 7x7s2 3->32 @128", n, 3, 32, (128, 128), 7, 2, 3))
        cases.append(conv_case(impl, rng, "dilated 3x3 d4 256ch @33", n, 256, 256, (33, 33), 3, 1, 4, 4))
        cases.append(conv_case(impl, rng, "grouped 3x3 g32 256ch @28", n, 256, 256, (28, 28), 3, 1, 1, 1, 32))
        cases.append(convt_case(impl, rng, "convT k4s2p1 128->64 @32", n, 128, 64, (32, 32), 4, 2, 1))
        cases.append(convt_case(impl, rng, "convT k3s2p1op1 128->64 @32", n, 128, 64, (32, 32), 3, 2, 1, 1))
        cases.append(conv_case(impl, rng, "wavenet 1d k2 d256 64ch L16000", n, 64, 64, (16000,), 2, 1, 0, 256))
        cases.append(conv_case(impl, rng, "conv3d 3x3x3 32->32 @16^3", n, 32, 32, (16, 16, 16), 3, 1, 1))
        x = _rand(rng, (n, 64, 112, 112))
        tx = torch.from_numpy(x)
        cases.append(
            Case(
                f"maxpool 3x3s2p1 64ch @112 b{n}",
                lambda x=x: impl.max_pool2d(x, 3, 2, 1),
                lambda tx=tx: F.max_pool2d(tx, 3, 2, 1),
                0.0,
            )
        )
        cases.append(
            Case(
                f"avgpool 3x3s2p1 64ch @112 b{n}",
                lambda x=x: impl.avg_pool2d(x, 3, 2, 1),
                lambda tx=tx: F.avg_pool2d(tx, 3, 2, 1),
                0.0,
            )
        )
        y = _rand(rng, (n, 256, 28, 28))
        ty = torch.from_numpy(y)
        cases.append(
            Case(
                f"avgpool 2x2s2 256ch @28 b{n}",
                lambda y=y: impl.avg_pool2d(y, 2),
                lambda ty=ty: F.avg_pool2d(ty, 2),
                0.0,
            )
        )
        z = _rand(rng, (n, 2048, 7, 7))
        tz = torch.from_numpy(z)
        cases.append(
            Case(
                f"adaptive avgpool 2048ch 7->1 b{n}",
                lambda z=z: impl.adaptive_avg_pool2d(z, 1),
                lambda tz=tz: F.adaptive_avg_pool2d(tz, 1),
                0.0,
            )
        )
    return cases


def _median_ms(fn: Callable[[], Any], repeat: int, warmup: int, budget_s: float) -> float:
    for _ in range(warmup):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= 3 and time.perf_counter() - start > budget_s:
            break
    return statistics.median(times) * 1e3


def _paired_ms(
    a: Callable[[], Any], b: Callable[[], Any], repeat: int, warmup: int, budget_s: float, rounds: int
) -> tuple[float, float]:
    """Min over rounds of the median time of a block of a-runs, then of b-runs.

    Blocks, not alternating calls: torch's OpenMP workers and OpenBLAS's threads both
    busy-wait after a parallel call, so alternating calls makes each library's spinning
    threads steal the cores from the other. A short sleep between blocks lets them park.
    Taking the best round's median discounts bursts of load from other processes.
    """
    best_a = best_b = math.inf
    for _ in range(rounds):
        time.sleep(0.05)
        best_a = min(best_a, _median_ms(a, repeat, warmup, budget_s))
        time.sleep(0.05)
        best_b = min(best_b, _median_ms(b, repeat, warmup, budget_s))
    return best_a, best_b


def _gemm_gflops(gemm: tuple[int, int, int, int], repeat: int, budget_s: float) -> float:
    batch, m, k, n = gemm
    rng = np.random.default_rng(1)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((batch, k, n), dtype=np.float32)
    ms = _median_ms(lambda: np.matmul(a, b), repeat, 2, budget_s)
    return 2.0 * batch * m * k * n / (ms * 1e-3) / 1e9


def _load_ops(path: Path) -> ModuleType:
    """Another version of convcalc/ops.py as a module of its own (it imports only numpy and the stdlib)."""
    spec = importlib.util.spec_from_file_location("convcalc_ops_baseline", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"--baseline: cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="batch 1 only, fewer repetitions")
    parser.add_argument("--json", type=Path, help="write the results to this JSON file")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads (default: cores)")
    parser.add_argument("--filter", default="", help="only cases whose name contains this text")
    parser.add_argument(
        "--ops-threads",
        type=int,
        default=None,
        help="threads for the NumPy kernels' copy stages (default: cores)",
    )
    parser.add_argument(
        "--baseline", type=Path, default=None, help="another convcalc/ops.py to time against this one, case by case"
    )
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    baseline = _load_ops(args.baseline) if args.baseline is not None else None
    if args.ops_threads is not None:
        for impl in (ops, baseline):
            if impl is not None:
                impl.set_num_threads(args.ops_threads)
    repeat, warmup, budget, rounds = (7, 2, 0.5, 2) if args.quick else (15, 3, 1.0, 3)
    batches = [1] if args.quick else [1, 8]
    cases = [c for c in build_cases(batches) if args.filter in c.name]
    # The same seeded inputs again, timed with the baseline's functions.
    base_cases = [c for c in build_cases(batches, baseline) if args.filter in c.name] if baseline else []

    blas = "unknown"
    try:
        cfg = np.show_config(mode="dicts")
        blas_cfg = cfg["Build Dependencies"]["blas"]  # type: ignore[index]
        blas = f"{blas_cfg['name']} {blas_cfg['version']}"
    except Exception:
        pass
    env = {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS", "OMP_", "MKL_"))}
    print(
        f"# python {platform.python_version()}, numpy {np.__version__} ({blas}), torch {torch.__version__}; "
        f"{os.cpu_count()} cores; torch threads {torch.get_num_threads()}; BLAS env {env or 'unset'}"
    )
    header = f"{'case':42s} {'torch ms':>9s} {'ours ms':>9s} {'ratio':>6s} {'GFLOP/s':>8s} {'GEMM GF/s':>9s}"
    if baseline is not None:
        header += f" {'base ms':>9s} {'vs base':>7s}"
    print(header)
    print("-" * len(header))
    rows: list[dict[str, Any]] = []
    for i, case in enumerate(cases):
        # Correctness guard: a fast wrong answer is worthless.
        ours_out = np.asarray(case.ours())
        ref = case.theirs().numpy()
        scale = max(float(np.abs(ref).max()), 1e-30)
        err = float(np.abs(ours_out - ref).max()) / scale
        if ours_out.shape != ref.shape or err > 1e-4:
            print(f"MISMATCH in {case.name}: shape {ours_out.shape} vs {ref.shape}, rel err {err:.2e}")
            return 1
        t_torch, t_ours = _paired_ms(case.theirs, case.ours, repeat, warmup, budget, rounds)
        ratio = t_ours / t_torch
        gflops = case.flops / (t_ours * 1e-3) / 1e9 if case.flops else None
        gemm = _gemm_gflops(case.gemm, repeat, budget) if case.gemm else None
        rows.append(
            {
                "case": case.name,
                "torch_ms": t_torch,
                "convcalc_ms": t_ours,
                "ratio": ratio,
                "gflops": gflops,
                "gemm_gflops": gemm,
                "gemm_shape": case.gemm,
            }
        )
        g1 = f"{gflops:8.1f}" if gflops is not None else f"{'-':>8s}"
        g2 = f"{gemm:9.1f}" if gemm is not None else f"{'-':>9s}"
        line = f"{case.name:42s} {t_torch:9.3f} {t_ours:9.3f} {ratio:6.2f} {g1} {g2}"
        if base_cases:
            # Timed in blocks next to each other, like torch and convcalc: the ratio of the pair.
            t_base, t_again = _paired_ms(base_cases[i].ours, case.ours, repeat, warmup, budget, rounds)
            rows[-1] |= {"baseline_ms": t_base, "vs_baseline": t_again / t_base}
            line += f" {t_base:9.3f} {t_again / t_base:7.2f}"
        print(line, flush=True)
    if not rows:
        print("no cases selected")
        return 1
    geo = math.exp(statistics.fmean(math.log(r["ratio"]) for r in rows))
    worst = max(rows, key=lambda r: r["ratio"])
    print("-" * len(header))
    print(f"geometric-mean ratio (convcalc/torch): {geo:.3f} over {len(rows)} cases")
    print(f"worst case: {worst['case']} ratio {worst['ratio']:.2f}")
    vs_base = None
    if base_cases:
        vs_base = math.exp(statistics.fmean(math.log(r["vs_baseline"]) for r in rows))
        slowest = max(rows, key=lambda r: r["vs_baseline"])
        print(f"geometric-mean time against the baseline (convcalc/baseline): {vs_base:.3f}")
        print(f"largest slow-down: {slowest['case']} {slowest['vs_baseline']:.2f}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "python": platform.python_version(),
                    "numpy": np.__version__,
                    "blas": blas,
                    "torch": torch.__version__,
                    "cores": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(),
                    "blas_env": env,
                    "geomean_ratio": geo,
                    "worst": {"case": worst["case"], "ratio": worst["ratio"]},
                    "baseline": None if args.baseline is None else str(args.baseline),
                    "geomean_vs_baseline": vs_base,
                    "rows": rows,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
