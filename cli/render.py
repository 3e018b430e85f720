"""Rendering of analysis reports: Rich tables, JSON, CSV and Markdown. Rich is imported lazily here only.

Display conventions: per-axis values collapse to one number when all axes agree and otherwise
join with ×; unknown values show as `?` (null in JSON); fractions are exact (`1/2`).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from convcalc.diagnostics import Diagnostic, Severity
from convcalc.notation import dims_text, fraction_text, ratio_text
from convcalc.report import AxisField, LayerReport, Shape, StackReport
from convcalc.spec import AXIS_NAMES

if TYPE_CHECKING:
    from rich.console import Console

    from cli.options import OutputFormat

#: Version of the JSON documents convcalc prints; bumped on any incompatible change.
SCHEMA_VERSION = 1

SEVERITY_STYLE = {Severity.INFO: "cyan", Severity.WARNING: "yellow", Severity.ERROR: "bold red"}


# -- value formatting -----------------------------------------------------------------------------
def frac(x: Fraction | int | None) -> str:
    """Exact rational as text: '2', '1/2', '-3/2'; '?' when unknown."""
    return "?" if x is None else fraction_text(x)


def frac_json(x: Fraction | int | None) -> str | None:
    """Exact rational for JSON: a string ('2', '1/2') or null."""
    return None if x is None else frac(x)


def per_axis(values: Sequence[object], sep: str = "×") -> str:
    """One value when all axes agree, else the values joined with ×."""
    texts = ["?" if v is None else str(v) for v in values]
    if not texts:
        return "-"
    return texts[0] if len(set(texts)) == 1 else sep.join(texts)


def shape_text(shape: Shape, sep: str = "×") -> str:
    return dims_text([shape.channels, *shape.spatial], sep)


def compact(n: int | None) -> str:
    """Short human form of a count: 1792 → 1.79K, 15360178176 → 15.36G."""
    if n is None:
        return "?"
    for unit, size in (("G", 10**9), ("M", 10**6), ("K", 10**3)):
        if abs(n) >= size:
            return f"{n / size:.2f}".rstrip("0").rstrip(".") + unit
    return str(n)


def thousands(n: int | None) -> str:
    return "?" if n is None else f"{n:,}"


def rf_text(fields: Sequence[AxisField], sep: str = "×") -> str:
    """RF per axis; 'min–max' where it depends on the output phase; 'all' for global."""

    def one(f: AxisField) -> str:
        if f.is_global:
            return f"all({f.rf})" if f.rf is not None else "all"
        if f.rf is None:
            return "?"
        return str(f.rf) if f.rf_min == f.rf else f"{f.rf_min}–{f.rf}"

    return per_axis([one(f) for f in fields], sep)


def jump_text(fields: Sequence[AxisField], sep: str = "×") -> str:
    return per_axis(["-" if f.is_global else frac(f.jump) for f in fields], sep)


def centre_text(fields: Sequence[AxisField], sep: str = "×") -> str:
    """Centre of unit 0 per axis."""
    return per_axis(["-" if f.is_global else frac(f.centre) for f in fields], sep)


def padding_text(fields: Sequence[AxisField], sep: str = "×") -> str:
    """Effective padding P per axis."""
    return per_axis(["-" if f.is_global else frac(f.padding) for f in fields], sep)


def codes(diagnostics: Sequence[Diagnostic]) -> str:
    """The distinct diagnostic codes of a layer, in order."""
    return " ".join(dict.fromkeys(d.code for d in diagnostics))


def axis_names(rank: int) -> tuple[str, ...]:
    return AXIS_NAMES.get(rank, tuple(str(i) for i in range(rank)))


def emit(
    output_format: OutputFormat,
    *,
    json_doc: Callable[[], dict[str, Any]],
    csv_text: Callable[[], str],
    markdown_text: Callable[[], str],
    table: Callable[[Console], None],
) -> None:
    """Write one result to stdout in the requested format (each renderer runs only when chosen)."""
    fmt = str(output_format)
    if fmt == "json":
        print(dumps(json_doc()))
    elif fmt == "csv":
        sys.stdout.write(csv_text())
    elif fmt == "markdown":
        sys.stdout.write(markdown_text())
    else:
        table(make_console())


# -- JSON -----------------------------------------------------------------------------------------
def field_json(fields: Sequence[AxisField]) -> list[dict[str, Any]]:
    names = axis_names(len(fields))
    return [
        {
            "axis": name,
            "rf": f.rf,
            "rf_min": f.rf_min,
            "jump": frac_json(f.jump),
            "padding": frac_json(f.padding),
            "centre": frac_json(f.centre),
            "global": f.is_global,
            "overlap": frac_json(f.overlap),
        }
        for name, f in zip(names, fields, strict=True)
    ]


def shape_json(shape: Shape) -> dict[str, Any]:
    return {"channels": shape.channels, "spatial": list(shape.spatial)}


def diagnostic_json(d: Diagnostic) -> dict[str, Any]:
    return {
        "severity": str(d.severity),
        "code": d.code,
        "layer": d.layer,
        "message": d.message,
        "data": d.data,
    }


def layer_json(layer: LayerReport) -> dict[str, Any]:
    return {
        "index": layer.index + 1,
        "name": layer.name,
        "op": layer.op,
        "from": list(layer.inputs),
        "output": shape_json(layer.output),
        "kernel": None if layer.kernel is None else list(layer.kernel),
        "effective_kernel": None if layer.effective_kernel is None else list(layer.effective_kernel),
        "stride": None if layer.stride is None else list(layer.stride),
        "padding": None if layer.padding is None else [None if p is None else list(p) for p in layer.padding],
        "field": field_json(layer.field),
        "params": layer.params,
        "macs": layer.macs,
        "diagnostics": list(dict.fromkeys(d.code for d in layer.diagnostics)),
    }


def report_json(report: StackReport) -> dict[str, Any]:
    out = report.output
    return {
        "convcalc_schema": SCHEMA_VERSION,
        "command": "rf",
        "name": report.name,
        "file": report.file,
        "input": shape_json(report.input),
        "axes": list(axis_names(len(report.input.spatial))),
        "layers": [layer_json(layer) for layer in report.layers],
        "summary": {
            "output": shape_json(out.output),
            "field": field_json(out.field),
            "params": report.total_params,
            "macs": report.total_macs,
        },
        "diagnostics": [diagnostic_json(d) for d in report.diagnostics],
    }


def dumps(payload: dict[str, Any]) -> str:
    return json.dumps(payload, indent=2, ensure_ascii=False)


# -- rows shared by table, CSV and Markdown ---------------------------------------------------------
COLUMNS = (
    "#",
    "layer",
    "op",
    "output",
    "k_eff",
    "stride",
    "jump",
    "RF",
    "centre",
    "P",
    "params",
    "MACs",
    "diag",
)


def layer_row(layer: LayerReport, sep: str = "×", exact: bool = False) -> list[str]:
    count = thousands if not exact else (lambda n: "?" if n is None else str(n))
    return [
        str(layer.index + 1),
        layer.name,
        layer.op,
        shape_text(layer.output, sep),
        "-" if layer.effective_kernel is None else per_axis(layer.effective_kernel, sep),
        "-" if layer.stride is None else per_axis(layer.stride, sep),
        jump_text(layer.field, sep),
        rf_text(layer.field, sep),
        centre_text(layer.field, sep),
        padding_text(layer.field, sep),
        count(layer.params) if exact else compact(layer.params),
        count(layer.macs) if exact else compact(layer.macs),
        codes(layer.diagnostics),
    ]


def summary_lines(report: StackReport) -> list[str]:
    out = report.output
    f = out.field
    lines = [
        f"output {shape_text(out.output)} (layer {out.name})",
        f"receptive field {rf_text(f)}   jump {jump_text(f)}   effective padding {padding_text(f)}   "
        f"centre of unit 0 {centre_text(f)}",
        f"params {thousands(report.total_params)}   MACs {thousands(report.total_macs)}",
    ]
    ratios = [a.overlap for a in f if not a.is_global]
    names = axis_names(len(f))
    uneven = [f"{ratio_text(a.overlap)} along {name}" for name, a in zip(names, f, strict=True) if a.overlap != 1]
    if uneven and all(r is not None for r in ratios):
        total = math.prod((r for r in ratios if r is not None), start=Fraction(1))
        nd = f", {ratio_text(total)} in {len(ratios)}-D" if len(ratios) > 1 else ""
        lines.append(f"uneven overlap (checkerboard) at the output: max:min {', '.join(uneven)}{nd}")
    return lines


# -- table ----------------------------------------------------------------------------------------
def make_console(stream: Any = None) -> Console:
    """A console for stdout: colour only on a terminal; a wide fixed width when piped or in CI."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            # Leave it to the CLI's error boundary, so every format ends the same way.
            raise BrokenPipeError

    stream = stream if stream is not None else sys.stdout
    is_tty = hasattr(stream, "isatty") and stream.isatty()
    width_env = os.environ.get("COLUMNS", "")
    width = int(width_env) if width_env.isdigit() else (None if is_tty else 200)
    return _Console(file=stream, width=width, no_color=not is_tty, highlight=False, soft_wrap=False)


def print_table(report: StackReport, console: Console) -> None:
    from rich.table import Table
    from rich.text import Text

    title = report.name or (os.path.basename(report.file) if report.file else "stack")
    table = Table(title=f"{title}: input {shape_text(report.input)}", title_justify="left")
    right = {"#", "output", "k_eff", "stride", "jump", "RF", "centre", "P", "params", "MACs"}
    for col in COLUMNS:
        table.add_column(col, justify="right" if col in right else "left", no_wrap=col != "diag")
    for layer in report.layers:
        row = layer_row(layer)
        worst = max((d.severity for d in layer.diagnostics), key=lambda s: s.rank, default=None)
        cells: list[Text | str] = list(row[:-1])
        cells.append(Text(row[-1], style=SEVERITY_STYLE[worst]) if worst else "")
        table.add_row(*cells)
    console.print(table)
    for line in summary_lines(report):
        console.print(line, soft_wrap=True)
    print_diagnostics(report.diagnostics, console)


def print_diagnostics(diagnostics: Sequence[Diagnostic], console: Console) -> None:
    from rich.text import Text

    if not diagnostics:
        console.print("no diagnostics")
        return
    console.print(f"{len(diagnostics)} diagnostic{'s' if len(diagnostics) > 1 else ''}:")
    for d in diagnostics:
        text = Text()
        text.append(f"  {d.severity:<7} ", style=SEVERITY_STYLE[d.severity])
        text.append(f"{d.code} ", style="bold")
        text.append(f"[{d.layer}] {d.message}")
        # One line per diagnostic, however long: logs and grep stay simple.
        console.print(text, soft_wrap=True)


# -- CSV and Markdown -----------------------------------------------------------------------------
def report_csv(report: StackReport) -> str:
    """One row per layer, exact numbers, per-axis values joined with 'x'."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(
        [
            "index",
            "layer",
            "op",
            "from",
            "output",
            "k_eff",
            "stride",
            "jump",
            "rf",
            "centre",
            "padding",
            "params",
            "macs",
            "diagnostics",
        ]
    )
    for layer in report.layers:
        f = layer.field
        writer.writerow(
            [
                layer.index + 1,
                layer.name,
                layer.op,
                " ".join(layer.inputs),
                shape_text(layer.output, "x"),
                "" if layer.effective_kernel is None else per_axis(layer.effective_kernel, "x"),
                "" if layer.stride is None else per_axis(layer.stride, "x"),
                jump_text(f, "x"),
                rf_text(f, "x"),
                centre_text(f, "x"),
                padding_text(f, "x"),
                "" if layer.params is None else layer.params,
                "" if layer.macs is None else layer.macs,
                codes(layer.diagnostics),
            ]
        )
    return buf.getvalue()


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def esc(cell: str) -> str:
        return cell.replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def report_markdown(report: StackReport) -> str:
    title = report.name or (os.path.basename(report.file) if report.file else "stack")
    parts = [f"## {title}: input {shape_text(report.input)}", ""]
    parts.append(markdown_table(COLUMNS, [layer_row(layer, exact=True) for layer in report.layers]))
    parts.append("")
    parts += [f"- {line}" for line in summary_lines(report)]
    parts.append("")
    if report.diagnostics:
        parts.append("### Diagnostics")
        parts.append("")
        parts += [f"- **{d.severity}** `{d.code}` [{d.layer}] {d.message}" for d in report.diagnostics]
    else:
        parts.append("No diagnostics.")
    return "\n".join(parts) + "\n"
