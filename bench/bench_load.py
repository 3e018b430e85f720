"""Load benchmark: reading and analysing long stacks against PyYAML composing the same file.

Usage: python3 bench/bench_load.py [--sizes 1000,10000] [--runs 7] [--table 1000,10000,100000]
                                   [--markdown docs/load-benchmark.md]

For each size a flat residual graph is generated (see `residual_graph`: blocks of conv → relu →
conv → add with the block input, and every fourth block two branches joined by a concat). Each
run times, in one process and in this order, `yaml.compose(text, Loader=yaml.CSafeLoader)` (the
baseline: what reading the file costs at least) and the pipeline `convcalc rf` runs: `load_stack`
(which composes the file itself, with the garbage collector paused), `analyze`, the JSON document
(`convcalc.documents.report.report_document`) and the CSV (`cli.render.report_csv`); serialising the JSON document
(`render.dumps`) is timed on its own. compose is also timed with the collector paused, as
load_stack runs it: the stricter baseline.

Sizes run round-robin after one warm-up run each, with a full garbage collection before every
run, and medians are reported. Each stage is timed by the process's CPU clock (what the work
costs; a shared machine's other processes do not add to it) and by the wall clock. Machines are
shared and noisy: read the ratios (pipeline / compose, paired within each run, and 10,000 /
1,000 layers), not the absolute times. `--table` also times the Rich table
(`cli.render.print_table` into a string, as `convcalc rf` prints it when piped) for the given sizes.
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# Imported after the path set-up, so that the checkout is measured.
from cli import render
from convcalc.analysis.engine import analyze
from convcalc.documents.report import report_document
from convcalc.format.loader import load_stack

STAGES = ("compose", "compose, collector off", "load", "analyze", "json document", "csv", "json text")
#: The stages the goal counts (load includes composing the file).
PIPELINE = ("load", "analyze", "json document", "csv")


def residual_graph(layers: int) -> str:
    """A flat stack of exactly `layers` layers, 16×32×32 in and out, every `from` written out.

    Blocks of four (conv → relu → conv → add with the block input) and, every fourth block, five
    (two convs reading the block input, a concat, a 1×1 conv, a relu); some layers keep their
    default names. The receptive field grows by 4 per residual block, so there are real numbers
    to compute all the way down.
    """
    lines = ["name: residual", "input: [16, 32, 32]", "layers:"]
    count = block = 0
    previous = "input"
    while count < layers:
        b = f"b{block}"
        if block % 4 == 3 and layers - count >= 5:
            lines += [
                f"  - {{op: conv, name: {b}_l, from: {previous}, out: 8, kernel: 1}}",
                f"  - {{op: conv, name: {b}_r, from: {previous}, out: 8, kernel: 3, padding: 1}}",
                f"  - {{op: concat, name: {b}_cat, from: [{b}_l, {b}_r]}}",
                "  - {op: conv, out: 16, kernel: 1}",
                f"  - {{op: relu, name: {b}}}",
            ]
            count += 5
        elif layers - count >= 4:
            lines += [
                f"  - {{op: conv, name: {b}_c1, out: 16, kernel: 3, padding: 1}}",
                "  - {op: relu}",
                f"  - {{op: conv, name: {b}_c2, out: 16, kernel: 3, padding: 1}}",
                f"  - {{op: add, name: {b}, from: [{b}_c2, {previous}]}}",
            ]
            count += 4
        else:
            lines.append(f"  - {{op: relu, name: {b}}}")
            count += 1
        previous = b
        block += 1
    return "\n".join(lines) + "\n"


#: One timing: (CPU seconds, wall seconds).
Timing = tuple[float, float]
#: One run: a timing per stage.
Run = dict[str, Timing]


def _timed(fn: Callable[[], object]) -> tuple[Timing, object]:
    cpu, wall = time.process_time(), time.perf_counter()
    result = fn()
    return (time.process_time() - cpu, time.perf_counter() - wall), result


def run_once(path: Path, text: str) -> Run:
    """One run of every stage on one file, in pipeline order."""
    gc.collect()
    times: Run = {}
    times["compose"], tree = _timed(lambda: yaml.compose(text, Loader=yaml.CSafeLoader))
    del tree
    gc.collect()
    gc.disable()  # as load_stack composes: the stricter baseline
    try:
        times["compose, collector off"], tree = _timed(lambda: yaml.compose(text, Loader=yaml.CSafeLoader))
        del tree
    finally:
        gc.enable()
    gc.collect()
    times["load"], spec = _timed(lambda: load_stack(path))
    times["analyze"], report = _timed(lambda: analyze(spec))  # type: ignore[arg-type]
    times["json document"], doc = _timed(lambda: report_document(report))  # type: ignore[arg-type]
    times["csv"], _ = _timed(lambda: render.report_csv(report))  # type: ignore[arg-type]
    times["json text"], _ = _timed(lambda: render.dumps(doc))  # type: ignore[arg-type]
    return times


def measure(files: dict[int, Path], runs: int) -> dict[int, list[Run]]:
    texts = {n: path.read_text(encoding="utf-8") for n, path in files.items()}
    for n, path in files.items():
        run_once(path, texts[n])  # warm-up: imports, caches
    results: dict[int, list[Run]] = {n: [] for n in files}
    for _ in range(runs):
        for n, path in files.items():
            results[n].append(run_once(path, texts[n]))
    return results


def measure_table(files: dict[int, Path], runs: int) -> dict[int, list[Timing]]:
    """The Rich table (as `convcalc rf` prints it when piped), rendered into a string."""
    out: dict[int, list[Timing]] = {}
    for n, path in files.items():
        report = analyze(load_stack(path))
        out[n] = []
        for _ in range(runs):
            gc.collect()
            console = render.make_console(io.StringIO())
            timing, _ = _timed(lambda: render.print_table(report, console))  # noqa: B023 - called at once
            out[n].append(timing)
    return out


def _pipeline(run: Run, clock: int) -> float:
    return sum(run[stage][clock] for stage in PIPELINE)


def _median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def report(results: dict[int, list[Run]], runs: int, table: dict[int, list[Timing]] | None) -> str:
    sizes = sorted(results)
    cpu, wall = 0, 1
    header = (
        "| layers | "
        + " | ".join(f"{s} ms" for s in STAGES)
        + " | pipeline ms | pipeline / compose (CPU) | pipeline / compose (wall)"
        + " | pipeline / compose, collector off (CPU) |"
    )
    lines = [header, "|---:|" + "---:|" * (len(STAGES) + 4)]
    medians: dict[tuple[int, int], float] = {}
    for n in sizes:
        rows = results[n]
        for clock in (cpu, wall):
            medians[n, clock] = _median(_pipeline(r, clock) for r in rows)
        paired = [_median(_pipeline(r, clock) / r["compose"][clock] for r in rows) for clock in (cpu, wall)]
        strict = _median(_pipeline(r, cpu) / r["compose, collector off"][cpu] for r in rows)
        cells = " | ".join(f"{_median(r[s][cpu] for r in rows) * 1000:.1f}" for s in STAGES)
        ratios = f"{paired[0]:.2f} | {paired[1]:.2f} | {strict:.2f}"
        lines.append(f"| {n:,} | {cells} | {medians[n, cpu] * 1000:.1f} | {ratios} |")
    env = (
        f"{runs} runs per size, round-robin after one warm-up, a full garbage collection before each run; "
        f"medians; times by the CPU clock. Python {platform.python_version()}, PyYAML {yaml.__version__} "
        f"(libyaml {'yes' if getattr(yaml, '__with_libyaml__', False) else 'no'}) on {platform.system()} "
        f"{platform.machine()}, {os.cpu_count()} CPUs. Pipeline = {' + '.join(PIPELINE)}; "
        "pipeline / compose is the median over runs of each run's ratio."
    )
    text = [env, "", *lines]
    if len(sizes) > 1:
        small, large = sizes[0], sizes[-1]
        scaling = []
        for clock, name in ((cpu, "CPU"), (wall, "wall")):
            compose = [_median(r["compose"][clock] for r in results[n]) for n in (small, large)]
            scaling.append(
                f"{name} clock: pipeline {medians[large, clock] / medians[small, clock]:.2f}, "
                f"compose {compose[1] / compose[0]:.2f}"
            )
        text += [
            "",
            f"Scaling from {small:,} to {large:,} layers (linear: {large / small:.0f}): {'; '.join(scaling)}.",
        ]
    if table:
        text += ["", "| layers | Rich table ms (CPU) | wall ms | CPU µs per layer |", "|---:|---:|---:|---:|"]
        for n, values in sorted(table.items()):
            med_cpu, med_wall = _median(v[cpu] for v in values), _median(v[wall] for v in values)
            text.append(f"| {n:,} | {med_cpu * 1000:.1f} | {med_wall * 1000:.1f} | {med_cpu / n * 1e6:.1f} |")
    return "\n".join(text) + "\n"


def _sizes(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", type=_sizes, default=[1000, 10000], help="layer counts (default 1000,10000)")
    parser.add_argument("--runs", type=int, default=7, help="timed runs per size (default 7)")
    parser.add_argument("--table", type=_sizes, default=[], help="also time the Rich table at these layer counts")
    parser.add_argument("--table-runs", type=int, default=3, help="timed table renderings per size (default 3)")
    parser.add_argument("--markdown", type=Path, help="write the figures into this Markdown file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:

        def write(n: int) -> Path:
            path = Path(tmp) / f"residual_{n}.yaml"
            path.write_text(residual_graph(n), encoding="utf-8")
            return path

        results = measure({n: write(n) for n in args.sizes}, args.runs)
        table = measure_table({n: write(n) for n in args.table}, args.table_runs) if args.table else None
    text = report(results, args.runs, table)
    print(text, end="")
    if args.markdown is not None:
        marker = "<!-- figures -->"
        old = args.markdown.read_text(encoding="utf-8") if args.markdown.exists() else marker
        head, _, _ = old.partition(marker)
        args.markdown.write_text(f"{head}{marker}\n\n{text}", encoding="utf-8")


if __name__ == "__main__":
    main()
