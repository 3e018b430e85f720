"""Rendering of `convcalc run` results: Rich table, JSON, CSV and Markdown. Rich is imported lazily.

Shapes exclude the batch axis and join with × (x in CSV); times are milliseconds of the op alone;
statistics show 4 significant digits in tables and full precision in JSON and CSV (non-finite
values, e.g. a max pool over -inf padding, are null in JSON).
"""

from __future__ import annotations

import csv
import io
import math
import os
from typing import TYPE_CHECKING, Any

from cli.render import SCHEMA_VERSION, dumps, make_console, markdown_table
from convcalc.notation import dims_text
from convcalc.runner import LayerRun, RunResult, format_bytes

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["dumps", "print_run", "run_csv", "run_json", "run_markdown"]

COLUMNS = ("#", "layer", "op", "predicted", "actual", "ok", "ms", "mean", "std", "min", "max")


def number(x: float) -> str:
    """4 significant digits: 0.0001234 → '0.0001234', 12345.6 → '1.235e+04'."""
    return f"{x:.4g}"


def milliseconds(seconds: float) -> str:
    return f"{seconds * 1e3:.2f}"


def finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def title(result: RunResult) -> str:
    name = result.name or (os.path.basename(result.file) if result.file else "stack")
    return f"{name}: input {dims_text(result.input_shape)} ({result.data}), weights {result.weights}, {result.dtype}"


def layer_row(layer: LayerRun) -> list[str]:
    s = layer.stats
    return [
        str(layer.index + 1),
        layer.name,
        layer.op,
        dims_text(layer.predicted),
        dims_text(layer.actual),
        "✓" if layer.matches else "✗",
        milliseconds(layer.seconds),
        number(s.mean),
        number(s.std),
        number(s.min),
        number(s.max),
    ]


def summary_lines(result: RunResult, saved: str | None) -> list[str]:
    mismatches = len(result.mismatches)
    count = len(result.layers)
    lines = [
        f"{count} layer{'s' if count != 1 else ''} in {milliseconds(result.total_seconds)} ms, "
        f"{mismatches} shape mismatch{'es' if mismatches != 1 else ''}",
        f"memory estimate {format_bytes(result.memory.total)} (limit {format_bytes(result.max_memory)}), "
        f"batch {result.batch}, seed {result.seed}",
    ]
    if result.failure is not None:
        lines.append(f"stopped at layer {result.failure.layer}: {result.failure.message}")
    if saved is not None:
        lines.append(f"saved every layer's output to {saved}")
    return lines


# -- table ------------------------------------------------------------------------------------------
def print_run(result: RunResult, saved: str | None, console: Console | None = None) -> None:
    from rich.table import Table
    from rich.text import Text

    console = console if console is not None else make_console()
    table = Table(title=title(result), title_justify="left")
    right = {"#", "predicted", "actual", "ms", "mean", "std", "min", "max"}
    for col in COLUMNS:
        table.add_column(col, justify="right" if col in right else "left", no_wrap=True)
    for layer in result.layers:
        row: list[Text | str] = list(layer_row(layer))
        row[5] = Text(str(row[5]), style="green" if layer.matches else "bold red")
        table.add_row(*row)
    console.print(table)
    for line in summary_lines(result, saved):
        console.print(line)


# -- JSON, CSV, Markdown --------------------------------------------------------------------------
def layer_json(layer: LayerRun) -> dict[str, Any]:
    s = layer.stats
    return {
        "index": layer.index + 1,
        "name": layer.name,
        "op": layer.op,
        "from": list(layer.inputs),
        "predicted": list(layer.predicted),
        "actual": list(layer.actual),
        "match": layer.matches,
        "seconds": layer.seconds,
        "stats": {"mean": finite(s.mean), "std": finite(s.std), "min": finite(s.min), "max": finite(s.max)},
    }


def run_json(result: RunResult, saved: str | None) -> dict[str, Any]:
    m = result.memory
    return {
        "convcalc_schema": SCHEMA_VERSION,
        "command": "run",
        "name": result.name,
        "file": result.file,
        "input": {"shape": list(result.input_shape), "data": result.data},
        "weights": result.weights,
        "seed": result.seed,
        "batch": result.batch,
        "dtype": result.dtype,
        "memory": {
            "estimate_bytes": m.total,
            "limit_bytes": result.max_memory,
            "data_bytes": m.data,
            "activation_bytes": m.activations,
            "weight_bytes": m.weights,
            "workspace_bytes": m.workspace,
            "bookkeeping_bytes": m.bookkeeping,
            "peak_layer": m.layer,
        },
        "layers": [layer_json(layer) for layer in result.layers],
        "summary": {
            "layers": len(result.layers),
            "mismatches": [layer.name for layer in result.mismatches],
            "failure": None
            if result.failure is None
            else {"layer": result.failure.layer, "message": result.failure.message},
            "ok": result.ok,
            "total_seconds": result.total_seconds,
            "output": list(result.layers[-1].actual) if result.layers else None,
        },
        "saved": saved,
    }


def run_csv(result: RunResult) -> str:
    """One row per layer; shapes joined with 'x', time in seconds, statistics at full precision."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(
        ["index", "layer", "op", "from", "predicted", "actual", "match", "seconds", "mean", "std", "min", "max"]
    )
    for layer in result.layers:
        s = layer.stats
        writer.writerow(
            [
                layer.index + 1,
                layer.name,
                layer.op,
                " ".join(layer.inputs),
                dims_text(layer.predicted, "x"),
                dims_text(layer.actual, "x"),
                "yes" if layer.matches else "no",
                repr(layer.seconds),
                repr(s.mean),
                repr(s.std),
                repr(s.min),
                repr(s.max),
            ]
        )
    return buf.getvalue()


def run_markdown(result: RunResult, saved: str | None) -> str:
    parts = [f"## {title(result)}", ""]
    parts.append(markdown_table(COLUMNS, [layer_row(layer) for layer in result.layers]))
    parts.append("")
    parts += [f"- {line}" for line in summary_lines(result, saved)]
    return "\n".join(parts) + "\n"
