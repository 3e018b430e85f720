"""Rendering of `convcalc run` results: terminal table (cli.grid), JSON, CSV and Markdown.

Shapes exclude the batch axis and join with × (x in CSV); times are milliseconds of the op alone;
statistics show 4 significant digits in tables and full precision in JSON and CSV (non-finite
values, e.g. a max pool over -inf padding, are null in JSON).
"""

from __future__ import annotations

import csv
import io
import os

from cli import grid
from cli.render import csv_row, dumps, hidden_note, markdown_table
from cli.terminal import Terminal, open_terminal, printable
from convcalc.execution.runner import LayerRun, RunResult, format_bytes
from convcalc.notation import dims_text

__all__ = ["dumps", "print_run", "run_csv", "run_markdown"]

COLUMNS = ("#", "layer", "op", "predicted", "actual", "ok", "ms", "mean", "std", "min", "max")


def number(x: float) -> str:
    """4 significant digits: 0.0001234 → '0.0001234', 12345.6 → '1.235e+04'."""
    return f"{x:.4g}"


def milliseconds(seconds: float) -> str:
    return f"{seconds * 1e3:.2f}"


def title(result: RunResult) -> str:
    name = printable(result.name or (os.path.basename(result.file) if result.file else "stack"))
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
    count = len({layer.index for layer in result.layers})  # a split's outputs are rows of one layer
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
#: The run table's columns (statistics are hidden first on a narrow terminal; shapes and ✓/✗ always show).
TABLE_COLUMNS = (
    grid.Column("#", "right", drop=6),
    grid.Column("layer", breaks="."),
    grid.Column("op", drop=5),
    grid.Column("predicted", "right", breaks="×"),
    grid.Column("actual", "right", breaks="×"),
    grid.Column("ok"),
    grid.Column("ms", "right", drop=7),
    grid.Column("mean", "right", drop=4),
    grid.Column("std", "right", drop=3),
    grid.Column("min", "right", drop=2),
    grid.Column("max", "right", drop=1),
)


def print_run(result: RunResult, saved: str | None, terminal: Terminal | None = None) -> None:
    terminal = terminal if terminal is not None else open_terminal()
    terminal.line(title(result))
    rows: list[list[grid.CellLike]] = []
    for layer in result.layers:
        row: list[grid.CellLike] = list(layer_row(layer))
        row[5] = grid.Cell(str(row[5]), "green" if layer.matches else "bold red")
        rows.append(row)
    layout = grid.write(terminal, TABLE_COLUMNS, rows)
    note = hidden_note(layout, terminal)
    if note is not None:
        terminal.line(note)
    for line in result.notes:
        terminal.line(f"note: {line}")
    for line in summary_lines(result, saved):
        terminal.line(line)


# -- JSON, CSV, Markdown --------------------------------------------------------------------------
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
            csv_row(
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
        )
    return buf.getvalue()


def run_markdown(result: RunResult, saved: str | None) -> str:
    parts = [f"## {title(result)}", ""]
    parts.append(markdown_table(COLUMNS, [layer_row(layer) for layer in result.layers]))
    parts.append("")
    parts += [f"- {line}" for line in summary_lines(result, saved)]
    return "\n".join(parts) + "\n"
