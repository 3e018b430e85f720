"""Coverage and effective-receptive-field benchmark: the cost must follow the field, not the layers' sizes.

Usage: python3 bench/bench_see.py [--runs 5]

A WaveNet-like 1-D stack (width-2 causal convs, dilations 1..512 twice: a field of 2047 samples) and a
2-D stack of 3×3 convs with dilations 1..256 (a field of 1023 pixels per axis), each at two field sizes
(the same stacks with half the layers' dilations, field about half). Per case: the median time of
`locate.coverage` plus `locate.spread` on every axis, and its ratio to the half-field case measured in the
same run (about 2 when the cost is linear in the field's extent per axis). The "(coverage)" cases time what
`convcalc coverage` computes: the map with its support, holes and ERF, and the downsampled picture. Machines
are noisy: read the ratios, not the absolute times.
"""

from __future__ import annotations

import argparse
import statistics
import time

from convcalc.analysis import coverage_map, locate
from convcalc.analysis.engine import analyze
from convcalc.analysis.report import StackReport
from convcalc.format.loader import parse_stack


def wavenet(levels: int, length: int = 16000) -> StackReport:
    convs = [f"{{op: conv, kernel: 2, dilation: {2**i}, padding: [[{2**i}, 0]]}}" for i in range(levels)] * 2
    text = f"input: [1, {length}]\nlayers:\n" + "".join(f"  - {c}\n" for c in convs)
    return analyze(parse_stack(text, "wavenet.yaml"))


def dilated_2d(levels: int, size: int = 2048) -> StackReport:
    convs = [f"{{op: conv, kernel: 3, dilation: {2**i}, padding: {2**i}}}" for i in range(levels)]
    text = f"input: [1, {size}, {size}]\nlayers:\n" + "".join(f"  - {c}\n" for c in convs)
    return analyze(parse_stack(text, "dilated.yaml"))


def once(report: StackReport) -> float:
    start = time.perf_counter()
    for counts in locate.coverage(report):
        locate.spread(counts)
    return time.perf_counter() - start


def picture(report: StackReport) -> float:
    """What `convcalc coverage` computes: the map with its statistics, and the terminal picture."""
    start = time.perf_counter()
    m = coverage_map.coverage_map(report)
    coverage_map.picture(m, 32, 40)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    cases = {
        "wavenet field 1023": wavenet(9),
        "wavenet field 2047": wavenet(10),
        "2-D field 511": dilated_2d(8),
        "2-D field 1023": dilated_2d(9),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    times.update({f"{name} (coverage)": [] for name in cases})
    for report in cases.values():
        once(report)  # warm-up
    for _ in range(args.runs):
        for name, report in cases.items():
            times[name].append(once(report))
        for name, report in cases.items():
            times[f"{name} (coverage)"].append(picture(report))
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"{'case':<33} {'median ms':>10} {'ratio':>7}")
    for i, (name, median) in enumerate(medians.items()):
        base = list(medians.values())[i - 1] if i % 2 else median
        print(f"{name:<33} {median * 1000:>10.1f} {median / base:>7.2f}")


if __name__ == "__main__":
    main()
