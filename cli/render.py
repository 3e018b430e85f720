"""Rendering of analysis reports: terminal tables (cli.grid), JSON, CSV and Markdown.

Display conventions: per-axis values collapse to one number when all axes agree and otherwise
join with ×; unknown values show as `?` (null in JSON); fractions are exact (`1/2`).
"""

from __future__ import annotations

import io
import math
import os
import sys
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from cli import grid
from cli.terminal import ColorMode, Terminal, open_terminal, printable
from convcalc.analysis.report import AxisField, LayerReport, StackReport
from convcalc.diagnostics import Diagnostic, Severity
from convcalc.documents.parts import SCHEMA_VERSION as SCHEMA_VERSION  # re-exported for cli's renderers
from convcalc.geometry.shape import Shape
from convcalc.notation import dims_text, fraction_text, ratio_text
from convcalc.stack.spec import AXIS_NAMES

if TYPE_CHECKING:
    from cli.options import OutputFormat

SEVERITY_STYLE = {Severity.INFO: "cyan", Severity.WARNING: "yellow", Severity.ERROR: "bold red"}


# -- value formatting -----------------------------------------------------------------------------
def frac(x: Fraction | int | None) -> str:
    """Exact rational as text: '2', '1/2', '-3/2'; '?' when unknown."""
    return "?" if x is None else fraction_text(x)


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
    table: Callable[[Terminal], None],
    color: ColorMode = ColorMode.AUTO,
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
        table(open_terminal(color))


# -- JSON -----------------------------------------------------------------------------------------
def dumps(payload: dict[str, Any]) -> str:
    import json  # json and csv are imported by the formats that use them: a table needs neither

    return json.dumps(payload, indent=2, ensure_ascii=False)


# -- rows shared by table and Markdown ----------------------------------------------------------------
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

#: The stack table's columns. On a narrow terminal the columns with a `drop` number are hidden, lowest
#: first (centre, P, MACs, k_eff, stride, params, op, #, diag); layer, output, jump and RF always show,
#: folding per-axis values onto more lines if they must (README, "Output formats").
TABLE_COLUMNS = (
    grid.Column("#", "right", drop=8),
    grid.Column("layer", breaks="."),
    grid.Column("op", drop=7),
    grid.Column("output", "right", breaks="×"),
    grid.Column("k_eff", "right", drop=4, breaks="×"),
    grid.Column("stride", "right", drop=5, breaks="×"),
    grid.Column("jump", "right", breaks="×"),
    grid.Column("RF", "right", breaks="×"),
    grid.Column("centre", "right", drop=1, breaks="×"),
    grid.Column("P", "right", drop=2, breaks="×"),
    grid.Column("params", "right", drop=6),
    grid.Column("MACs", "right", drop=3),
    grid.Column("diag", drop=9, breaks=" "),
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


#: The extra column of `rf --gates constant` (table and Markdown), after RF: the field with gates as constants.
GATED_HEADER = "RF gates const"
GATED_AT = COLUMNS.index("RF") + 1


def gated_fields(report: StackReport) -> list[tuple[AxisField, ...]] | None:
    """Each layer's field with gates as constants, in layer order; None unless `rf --gates constant`."""
    if report.constant_gates is None:
        return None
    return [layer.field for layer in report.constant_gates.layers]


def _gated_rows(report: StackReport, rows: list[list[str]], sep: str = "×") -> list[list[str]]:
    """`rows` with the constant-gate RF inserted after RF (unchanged without --gates constant)."""
    gated = gated_fields(report)
    if gated is None:
        return rows
    return [[*row[:GATED_AT], rf_text(f, sep), *row[GATED_AT:]] for row, f in zip(rows, gated, strict=True)]


def gates_lines(report: StackReport) -> list[str]:
    """The summary of `rf --gates constant`: which gates, and the output's field with them as constants."""
    if report.gates is None or report.constant_gates is None:
        return []
    if not report.gates:
        return ["gates: none found (a gate is a mul input computed from a global pool alone; see the README)"]
    names = ", ".join(f"{g.layer} ({g.input})" for g in report.gates)
    lines = [
        f"{GATED_HEADER}: the receptive field with every gate as a per-channel constant (the spatial path; RF "
        f"is the true field, global after a gate); {len(report.gates)} gate{'s' if len(report.gates) > 1 else ''}: "
        f"{names}"
    ]
    spatial = [
        layer for layer in report.constant_gates.layers if layer.field and not any(f.is_global for f in layer.field)
    ]
    if spatial:
        last = spatial[-1]
        f = last.field
        lines.append(
            f"receptive field with gates as constants at {last.name} (the last layer whose field is not global): "
            f"{rf_text(f)}   jump {jump_text(f)}   effective padding {padding_text(f)}"
        )
    return lines


def summary_lines(report: StackReport) -> list[str]:
    out = report.output
    f = out.field
    lines = [
        f"output {shape_text(out.output)} (layer {printable(out.name)})",
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
def hidden_note(layout: grid.Layout, terminal: Terminal) -> str | None:
    """Says which columns a narrow terminal hid, and where to see them."""
    if not layout.hidden:
        return None
    names = ", ".join(layout.hidden)
    return (
        f"(hidden to fit {terminal.width} columns: {names}; widen the terminal, or use --format json, csv or markdown)"
    )


def print_table(report: StackReport, terminal: Terminal) -> None:
    title = printable(report.name or (os.path.basename(report.file) if report.file else "stack"))
    terminal.line(f"{title}: input {shape_text(report.input)}")
    rows: list[list[grid.CellLike]] = []
    columns: tuple[grid.Column, ...] = TABLE_COLUMNS
    if report.constant_gates is not None:
        columns = (*columns[:GATED_AT], grid.Column(GATED_HEADER, "right", breaks="×"), *columns[GATED_AT:])
    for layer, text in zip(
        report.layers, _gated_rows(report, [layer_row(layer) for layer in report.layers]), strict=True
    ):
        row: list[grid.CellLike] = list(text)
        worst = max((d.severity for d in layer.diagnostics), key=lambda s: s.rank, default=None)
        if worst is not None:
            row[-1] = grid.Cell(str(row[-1]), SEVERITY_STYLE[worst])
        rows.append(row)
    layout = grid.write(terminal, columns, rows)
    note = hidden_note(layout, terminal)
    if note is not None:
        terminal.line(note)
    for line in summary_lines(report) + gates_lines(report):
        terminal.line(line)
    print_diagnostics(report.diagnostics, terminal)


def where_text(d: Diagnostic) -> str:
    """Where the diagnostic's layer is written, 'net.yaml:12:5', then inside a block the instance and the
    line of its use: 'net.yaml:15:9 (in layer3.4, used at line 33)'; '' when the stack did not come from a file."""
    if d.location is None:
        return ""
    where = ":".join(str(part) for part in (d.location.file, d.location.line, d.location.column) if part is not None)
    if d.instance is not None:
        line = f", used at line {d.call.line}" if d.call is not None and d.call.line is not None else ""
        where += f" (in {d.instance}{line})"
    return where


def diagnostic_head(d: Diagnostic) -> str:
    """'[layer] net.yaml:12:5': the layer and where it is written, for one-line diagnostics."""
    where = where_text(d)
    return f"[{d.layer}] {where}" if where else f"[{d.layer}]"


def print_diagnostics(diagnostics: Sequence[Diagnostic], terminal: Terminal) -> None:
    if not diagnostics:
        terminal.line("no diagnostics")
        return
    terminal.line(f"{len(diagnostics)} diagnostic{'s' if len(diagnostics) > 1 else ''}:")
    for d in diagnostics:
        # One line per diagnostic, however long: logs and grep stay simple.
        severity = terminal.style(f"{d.severity:<7}", SEVERITY_STYLE[d.severity])
        head = printable(diagnostic_head(d))
        terminal.line(f"  {severity} {terminal.style(d.code, 'bold')} {head} {printable(d.message)}")


def print_failing(diagnostics: Sequence[Diagnostic], fail_on: str) -> None:
    """`--quiet`: the diagnostics at or above `fail_on` (a FailOn value) on stderr, one line each, as the table
    lists them; nothing when none reaches it (or for `never`)."""
    if fail_on == "never":
        return
    threshold = Severity(fail_on).rank
    for d in diagnostics:
        if d.severity.rank >= threshold:
            print(f"{d.severity} {d.code} {printable(diagnostic_head(d))} {printable(d.message)}", file=sys.stderr)


# -- CSV and Markdown -----------------------------------------------------------------------------
#: Columns of `convcalc rf --format csv`: exact, machine-readable values, one per spatial axis joined with
#: 'x' (never collapsed), empty where unknown or not applicable; `global` is true where every unit sees
#: the whole input along every axis (then rf_min = rf_max = the input size; jump, centre and padding
#: are empty for the axes a unit sees whole).
CSV_COLUMNS = (
    "index",
    "layer",
    "op",
    "from",
    "output",
    "k_eff",
    "stride",
    "jump",
    "rf_min",
    "rf_max",
    "global",
    "centre",
    "padding",
    "params",
    "macs",
    "diagnostics",
)


def _axes_csv(values: Sequence[object] | None) -> str:
    """Per-axis values joined with 'x', an unknown one left empty ('x2'); empty when all are unknown."""
    if values is None or all(v is None for v in values):
        return ""
    return "x".join("" if v is None else fraction_text(v) if isinstance(v, Fraction) else str(v) for v in values)


def csv_row(cells: Sequence[object]) -> list[object]:
    """A CSV row with its text escaped (printable): a name with a newline stays on its row."""
    return [printable(c) if isinstance(c, str) else c for c in cells]


def report_csv(report: StackReport) -> str:
    """One row per layer, exact machine-readable numbers (see CSV_COLUMNS)."""
    import csv

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    gated = gated_fields(report)
    writer.writerow(CSV_COLUMNS if gated is None else (*CSV_COLUMNS, *CSV_GATED_COLUMNS))
    for i, layer in enumerate(report.layers):
        f = layer.field
        extra = [] if gated is None else _gated_csv(gated[i])
        writer.writerow(
            csv_row(
                [
                    layer.index + 1,
                    layer.name,
                    layer.op,
                    " ".join(layer.inputs),
                    dims_text([layer.output.channels, *layer.output.spatial], "x").replace("?", ""),
                    _axes_csv(layer.effective_kernel),
                    _axes_csv(layer.stride),
                    _axes_csv([None if a.is_global else a.jump for a in f]),
                    _axes_csv([a.rf_min for a in f]),
                    _axes_csv([a.rf for a in f]),
                    "true" if all(a.is_global for a in f) and f else "false",
                    _axes_csv([None if a.is_global else a.centre for a in f]),
                    _axes_csv([None if a.is_global else a.padding for a in f]),
                    "" if layer.params is None else layer.params,
                    "" if layer.macs is None else layer.macs,
                    " ".join(dict.fromkeys(d.code for d in layer.diagnostics)),
                    *extra,
                ]
            )
        )
    return buf.getvalue()


#: The columns `rf --gates constant` appends to the CSV: the field with gates as constants.
CSV_GATED_COLUMNS = ("jump_gates_constant", "rf_min_gates_constant", "rf_max_gates_constant", "global_gates_constant")


def _gated_csv(f: tuple[AxisField, ...]) -> list[str]:
    return [
        _axes_csv([None if a.is_global else a.jump for a in f]),
        _axes_csv([a.rf_min for a in f]),
        _axes_csv([a.rf for a in f]),
        "true" if all(a.is_global for a in f) and f else "false",
    ]


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def esc(cell: str) -> str:
        return printable(cell).replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def report_markdown(report: StackReport) -> str:
    title = printable(report.name or (os.path.basename(report.file) if report.file else "stack"))
    parts = [f"## {title}: input {shape_text(report.input)}", ""]
    header = list(COLUMNS)
    if report.constant_gates is not None:
        header.insert(GATED_AT, GATED_HEADER)
    rows = _gated_rows(report, [layer_row(layer, exact=True) for layer in report.layers])
    parts.append(markdown_table(header, rows))
    parts.append("")
    parts += [f"- {line}" for line in summary_lines(report) + gates_lines(report)]
    parts.append("")
    if report.diagnostics:
        parts.append("### Diagnostics")
        parts.append("")
        parts += [
            f"- **{d.severity}** `{d.code}` {printable(diagnostic_head(d))} {printable(d.message)}"
            for d in report.diagnostics
        ]
    else:
        parts.append("No diagnostics.")
    return "\n".join(parts) + "\n"
