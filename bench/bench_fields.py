"""Receptive-field analysis benchmark: stacks whose maps list every unit against periodic ones.

Usage: python3 bench/bench_fields.py [--runs 7]

align_corners upsampling (ratio (in−1)/(out−1)), nested or after a size change, repeats only after more
than MAX_PERIOD units, so convcalc maps every unit of such layers (and their units beyond the borders
that later padding reads). Each case is analysed in-process, round-robin with the others after one
warm-up run each; the table gives the median and its ratio to the baseline (the same stack with
nearest upsampling, whose maps stay periodic) measured in the same run. Machines are noisy: read the
ratios, not the absolute times.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from convcalc.analysis.engine import analyze
from convcalc.format.loader import parse_stack
from convcalc.stack.spec import StackSpec


def decoder(mode: str, size: int) -> str:
    """A U-Net-style decoder on size×size: two ×2 upsamplings, each followed by 3×3 convs."""
    up = f"{{op: upsample, scale: 2, mode: {mode}{', align_corners: true' if mode == 'linear' else ''}}}"
    layers = [up, "{op: conv, kernel: 3}", *["{op: conv, kernel: 3, padding: 1}"] * 3]
    layers += [up, *["{op: conv, kernel: 3, padding: 1}"] * 4]
    return f"input: [3, {size}, {size}]\nlayers:\n" + "".join(f"  - {layer}\n" for layer in layers)


def causal(mode: str, length: int) -> str:
    """A 1-D stack: ×2 upsampling, then 20 width-2 causal convs with dilations 1..512 (twice)."""
    up = f"{{op: upsample, scale: 2, mode: {mode}{', align_corners: true' if mode == 'linear' else ''}}}"
    convs = [f"{{op: conv, kernel: 2, dilation: {2**i}, padding: [[{2**i}, 0]]}}" for i in range(10)] * 2
    return f"input: [1, {length}]\nlayers:\n" + "".join(f"  - {layer}\n" for layer in [up, *convs])


CASES: dict[str, tuple[Callable[[str, int], str], int]] = {
    "decoder 128² → 512²": (decoder, 128),
    "decoder 256² → 1024²": (decoder, 256),
    "causal 1-D 4000 → 8000": (causal, 4000),
}


def _time(spec: StackSpec) -> float:
    start = time.perf_counter()
    analyze(spec)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    specs = {
        (name, mode): parse_stack(build(mode, size), f"<{name}>")
        for name, (build, size) in CASES.items()
        for mode in ("nearest", "linear")
    }
    times: dict[tuple[str, str], list[float]] = {key: [] for key in specs}
    for spec in specs.values():
        _time(spec)
    for _ in range(args.runs):
        for key, spec in specs.items():
            times[key].append(_time(spec))
    print(f"medians of {args.runs} runs")
    print("| stack | nearest (periodic), ms | align_corners (every unit), ms | ratio |")
    print("|---|---:|---:|---:|")
    for name in CASES:
        base = statistics.median(times[(name, "nearest")])
        listed = statistics.median(times[(name, "linear")])
        print(f"| {name} | {base * 1e3:.1f} | {listed * 1e3:.1f} | {listed / base:.1f} |")


if __name__ == "__main__":
    main()
