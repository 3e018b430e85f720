"""Rendering of the one-layer calculators (conv, deconv, pool): tables, overlap maps, derivations, solver.

Imported only inside the calculator commands.
Display conventions follow cli/render.py: exact fractions, per-axis values in columns H, W
(D, H, W; L for 1-D), plain text when stdout is not a terminal.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from fractions import Fraction
from typing import TYPE_CHECKING

from cli import grid
from cli.render import centre_text, frac, jump_text, markdown_table, padding_text, print_diagnostics, rf_text
from cli.terminal import Terminal
from convcalc.analysis.calculators import AxisResult, LayerResult, LayerSettings, SamePadding
from convcalc.documents.calculator import map_data, module_text, torch_call
from convcalc.notation import counts_text, dims_text, ratio_text

if TYPE_CHECKING:
    # Type-only: the solver and the derivations are loaded by the commands that use them.
    from convcalc.analysis.explain import Derivation, Step
    from convcalc.analysis.solver import AxisSolution, Setting, Solution


# -- small texts ----------------------------------------------------------------------------------
def size_text(sizes: Sequence[int | None] | None, sep: str = "×") -> str:
    return "?" if sizes is None else dims_text(sizes, sep)


def _pair(p: tuple[int, int] | None) -> str:
    if p is None:
        return "?"
    return str(p[0]) if p[0] == p[1] else f"{p[0]}, {p[1]}"


def same_text(s: LayerSettings, same: SamePadding | None) -> str:
    if same is None:
        return "none"
    if s.kind == "deconv":
        return f"{same.before} (op {same.output_padding})" if same.output_padding else str(same.before)
    if same.before is None:
        return "? (needs --i)"
    if same.after is None:
        return f"{same.before}, ? (needs --i)"
    return _pair((same.before, same.after))


def _taps(a: AxisResult) -> str:
    return counts_text(a.overlap.taps)


def _ratio(r: Fraction | None) -> str:
    return ratio_text(r)


def axis_rows(result: LayerResult) -> list[tuple[str, list[str]]]:
    """(label, one value per axis) for the table and Markdown views."""
    s = result.settings
    axes = result.axes
    rows: list[tuple[str, list[str]]] = []

    def add(label: str, values: Sequence[object]) -> None:
        rows.append((label, ["?" if v is None else str(v) for v in values]))

    if s.input_size is not None:
        add("input size", [a.input_size for a in axes])
        add("output size", [a.output_size for a in axes])
    add("kernel", [a.kernel for a in axes])
    add("stride", [a.stride for a in axes])
    add("padding" + ("" if s.kind == "deconv" else " (before, after)"), [_pair(a.padding) for a in axes])
    if s.kind == "deconv":
        add("output_padding", [a.output_padding for a in axes])
    if s.kind != "avgpool":
        add("dilation", [a.dilation for a in axes])
    add("effective kernel d(k-1)+1", [a.effective_kernel for a in axes])
    if s.ceil_mode and s.input_size is not None:
        add(
            "without ceil_mode",
            ["none" if a.floor_output_size is None else a.floor_output_size for a in axes],
        )
        add("last window starts at", [a.last_window_start for a in axes])
    if s.kind == "deconv":
        add("zeros inserted between inputs", [a.stride - 1 for a in axes])
        if s.input_size is not None:
            add(
                "zero-inserted input size",
                [a.equivalent.stretched_size if a.equivalent else None for a in axes],
            )
        add(
            "equivalent conv padding",
            ["?" if a.equivalent is None else f"{a.equivalent.pad_before}, {a.equivalent.pad_after}" for a in axes],
        )
        if s.input_size is not None:
            add("equivalent conv output", [a.equivalent.output_size if a.equivalent else None for a in axes])
    label = "padding 'same' (out = s·i)" if s.kind == "deconv" else "padding 'same' (out = ceil(i/s))"
    add(label, [same_text(s, a.same_padding) for a in axes])
    # The stack analysis's words (convcalc rf's summary line): the layer is the first of its stack.
    add("receptive field", [rf_text([a.field]) for a in axes])
    add("jump", [jump_text([a.field]) for a in axes])
    add("effective padding", [padding_text([a.field]) for a in axes])
    add("centre of unit 0", [centre_text([a.field]) for a in axes])
    add("taps per output phase" if s.kind == "deconv" else "windows per input phase", [_taps(a) for a in axes])
    add(
        "overlap max:min",
        [
            _ratio(a.overlap.ratio) if s.kind == "deconv" or a.overlap.ratio is not None else "phases unread"
            for a in axes
        ],
    )
    if s.input_size is not None and s.kind != "deconv":
        add("unread input pixels", [a.unread for a in axes])
    return rows


def _title(result: LayerResult) -> str:
    s = result.settings
    text = module_text(result)
    if s.input_size is not None:
        text += f" on {size_text(s.input_size)} → {size_text(result.output_size)}"
    return text


def summary_lines(result: LayerResult) -> list[str]:
    s = result.settings
    lines: list[str] = []
    if s.kind == "deconv" and s.rank > 1:
        nd = (
            "holes: some output phases get no input"
            if result.overlap_ratio is None
            else ratio_text(result.overlap_ratio)
        )
        lines.append(f"overlap {s.rank}-D max:min {nd} (the product of the axes' ratios, borders excluded)")
    if s.kind == "conv" and any(a.overlap.ratio is not None and a.overlap.ratio != 1 for a in result.axes):
        lines.append(
            "windows per input pixel are uneven: the gradient of this conv carries the same checkerboard (Distill 2016)"
        )
    if s.ceil_mode and s.input_size is not None:
        lines.append(
            "ceil_mode: o = ceil((i + 2p - d(k-1) - 1)/s) + 1, but a last window that would start in the "
            "right padding is dropped (PyTorch's rule)"
        )
        for a in result.axes:
            if a.ceil_dropped:
                lines.append(f"  {a.axis}: dropped, output {a.output_size} instead of {(a.output_size or 0) + 1}")
            elif a.last_window_start is not None and a.input_size is not None:
                lines.append(
                    f"  {a.axis}: the last window starts at {a.last_window_start} < {a.input_size}, "
                    "inside the input: "
                    f"kept ({a.output_size}; floor mode gives {a.floor_output_size or 'no output'})"
                )
    if result.params is not None and not s.is_pool:
        macs = "?" if result.macs is None else f"{result.macs:,}"
        lines.append(f"params {result.params:,} (weights + bias)   MACs {macs} (batch 1, bias adds included)")
    if s.input_size is None:
        extra = "the output size"
        if s.kind == "deconv":
            extra += ", the equivalent conv's zero-inserted size, the whole overlap map"
        if s.in_channels is not None:
            extra += ", MACs"
        lines.append(f"give --i SIZE (e.g. --i 32 or --i 32,48) to add {extra} and the --target solver")
    return lines


# -- overlap map ----------------------------------------------------------------------------------
def map_lines(values: Sequence[Sequence[int]], terminal: Terminal) -> list[str]:
    """The map as right-aligned numbers; with colour each cell is shaded by its value (holes in red)."""
    flat = [v for row in values for v in row]
    lo, hi = min(flat), max(flat)
    width = len(str(hi))
    out = []
    for row in values:
        cells = []
        for v in row:
            if v == 0:
                style = "bold white on 1"
            else:
                t = 1.0 if hi == lo else (v - lo) / (hi - lo)
                style = f"{'black' if t > 0.45 else 'white'} on {237 + round(t * 15)}"
            cells.append(terminal.style(str(v).rjust(width), style))
        out.append(" ".join(cells))
    return out


def grid_plain(values: Sequence[Sequence[int]]) -> str:
    width = len(str(max(v for row in values for v in row)))
    return "\n".join(" ".join(str(v).rjust(width) for v in row) for row in values)


# -- derivation -----------------------------------------------------------------------------------
def step_lines(step: Step, indent: str = "    ", width: int = 100) -> list[str]:
    """The formula, then `= numbers` lines aligned under its `=` and `= result` (or, for a step that lists
    cases, the cases indented and `=> result`), then the note in parentheses, wrapped."""
    import textwrap

    head, sep, rhs = step.formula.partition(" = ")
    lines = [indent + step.formula]
    if step.chain:
        pad = indent + " " * len(head) + " = " if sep and len(head) < 24 else indent + "  = "
        seen = {rhs}
        for line in [*step.numbers, step.result]:
            if line not in seen:
                lines.append(pad + line)
                seen.add(line)
    else:
        lines += [indent + "  " + line for line in step.numbers]
        lines.append(indent + "  => " + step.result)
    if step.note:
        lines += textwrap.wrap(f"({step.note})", width=width, initial_indent=indent, subsequent_indent=indent + " ")
    return lines


def derivation_text(result: LayerResult, derivations: Sequence[Derivation]) -> str:
    s = result.settings
    lines = [_title(result), ""]
    n = 0
    for der in derivations:
        if der.axes:
            if s.rank == 1:
                where = "Along the axis"
            elif len(der.axes) == s.rank:
                names = " and ".join(der.axes) if s.rank == 2 else ", ".join(der.axes)
                where = f"Along {names} (the same numbers)"
            else:
                where = f"Along {', '.join(der.axes)}"
        else:
            where = "For the whole layer"
        lines += [where + ":", ""]
        for step in der.steps:
            n += 1
            lines.append(f"  Step {n}. {step.title}")
            lines += step_lines(step)
            lines.append("")
    lines.append(
        f"Result: {size_text(s.input_size)} → {size_text(result.output_size)}"
        if s.input_size is not None
        else "Result: give --i to get the output size"
    )
    return "\n".join(lines) + "\n"


# -- table ----------------------------------------------------------------------------------------
def print_result(result: LayerResult, terminal: Terminal, derivations: Sequence[Derivation] | None = None) -> None:
    if derivations is not None:
        for line in derivation_text(result, derivations).splitlines():
            terminal.line(line)
        terminal.line()
        print_diagnostics(result.diagnostics, terminal)
        return
    terminal.line(_title(result))
    columns = [grid.Column(""), *(grid.Column(a.axis, "right") for a in result.axes)]
    rows = [[label, *values] for label, values in axis_rows(result)]
    grid.write(terminal, columns, rows, frame="rule")
    # Long lines stay whole: logs and CI output are read with a pager or grep, not a fixed width.
    for line in summary_lines(result):
        terminal.line(line)
    if result.settings.kind == "deconv":
        _kind, values, caption = map_data(result)
        terminal.line()
        terminal.line(caption + (":" if values else ""))
        for line in map_lines(values, terminal) if values else []:
            terminal.line(line)
    terminal.line()
    print_diagnostics(result.diagnostics, terminal)


# -- JSON, CSV, Markdown --------------------------------------------------------------------------
CSV_COLUMNS = (
    "axis",
    "input",
    "output",
    "kernel",
    "stride",
    "padding_before",
    "padding_after",
    "output_padding",
    "dilation",
    "effective_kernel",
    "same_padding_before",
    "same_padding_after",
    "same_output_padding",
    "rf_min",
    "rf_max",
    "jump",
    "effective_padding",
    "centre",
    "taps_per_phase",
    "overlap_ratio",
    "equivalent_pad_before",
    "equivalent_pad_after",
    "equivalent_output",
    "diagnostics",
)


def result_csv(result: LayerResult) -> str:
    """One row per axis, exact machine-readable numbers (empty where unknown or not applicable); taps per
    phase are space-separated in phase order; the diagnostics' codes repeat on every row."""
    import csv  # only for --format csv

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    codes = " ".join(dict.fromkeys(d.code for d in result.diagnostics))

    def cell(v: object) -> object:
        return "" if v is None else v

    for a in result.axes:
        eq = a.equivalent
        writer.writerow(
            [
                a.axis,
                cell(a.input_size),
                cell(a.output_size),
                a.kernel,
                a.stride,
                cell(a.padding[0] if a.padding else None),
                cell(a.padding[1] if a.padding else None),
                a.output_padding,
                a.dilation,
                a.effective_kernel,
                cell(a.same_padding.before if a.same_padding else None),
                cell(a.same_padding.after if a.same_padding else None),
                cell(a.same_padding.output_padding if a.same_padding else None),
                cell(a.field.rf_min),
                cell(a.field.rf),
                "" if a.field.jump is None else frac(a.field.jump),
                "" if a.field.padding is None else frac(a.field.padding),
                "" if a.field.centre is None else frac(a.field.centre),
                " ".join(map(str, a.overlap.taps)),
                "" if a.overlap.ratio is None else frac(a.overlap.ratio),
                cell(eq.pad_before if eq else None),
                cell(eq.pad_after if eq else None),
                cell(eq.output_size if eq else None),
                codes,
            ]
        )
    return buf.getvalue()


def result_markdown(result: LayerResult, derivations: Sequence[Derivation] | None = None) -> str:
    parts = [f"## `{_title(result)}`", ""]
    header = ["", *[a.axis for a in result.axes]]
    parts.append(markdown_table(header, [[label, *values] for label, values in axis_rows(result)]))
    parts.append("")
    parts += [f"- {line.strip()}" for line in summary_lines(result)]
    if result.settings.kind == "deconv":
        _kind, values, caption = map_data(result)
        if values:
            parts += ["", caption[0].upper() + caption[1:] + ":", "", "```", grid_plain(values), "```"]
        else:
            parts += ["", caption[0].upper() + caption[1:] + "."]
    if derivations is not None:
        text = derivation_text(result, derivations)
        parts += ["", "### Derivation", "", "```", text.rstrip("\n"), "```"]
    parts.append("")
    if result.diagnostics:
        parts += ["### Diagnostics", ""]
        parts += [f"- **{d.severity}** `{d.code}` {d.message}" for d in result.diagnostics]
    else:
        parts.append("No diagnostics.")
    return "\n".join(parts) + "\n"


# -- solver ---------------------------------------------------------------------------------------
def _setting_cells(s: LayerSettings, st: Setting) -> list[str]:
    cells = [str(st.padding)]
    if s.kind == "deconv":
        cells.append(str(st.output_padding))
    if s.is_pool:
        cells.append("yes" if st.ceil_mode else "no")
    return cells


def solution_header(s: LayerSettings) -> list[str]:
    header = ["axis", "input", "target", "padding"]
    if s.kind == "deconv":
        header.append("output_padding")
    if s.is_pool:
        header.append("ceil_mode")
    return [*header, "output"]


def solution_rows(sol: Solution) -> list[list[str]]:
    s = sol.settings
    rows: list[list[str]] = []
    for ax in sol.axes:
        if ax.exact:
            rows += [
                [ax.axis, str(ax.input_size), str(ax.target), *_setting_cells(s, st), str(st.output)] for st in ax.exact
            ]
        else:
            blanks = ["-"] * (len(solution_header(s)) - 4)
            rows.append([ax.axis, str(ax.input_size), str(ax.target), "none", *blanks[:-1], "-"])
    return rows


def _describe(s: LayerSettings, st: Setting) -> str:
    text = f"padding {st.padding}"
    if s.kind == "deconv":
        text += f", output_padding {st.output_padding}"
    if s.is_pool:
        text += ", ceil_mode" if st.ceil_mode else ", floor mode"
    return text


def _missing_lines(s: LayerSettings, ax: AxisSolution) -> list[str]:
    what = "padding (the same on both sides)" if s.kind == "conv" else "setting"
    lines = [f"{ax.axis}: no {what} gives {ax.target} from {ax.input_size}."]
    near = []
    if ax.below is not None:
        near.append(f"{ax.below.output} ({_describe(s, ax.below)})")
    if ax.above is not None:
        near.append(f"{ax.above.output} ({_describe(s, ax.above)})")
    lines.append("  nearest achievable: " + (" or ".join(near) if near else "none"))
    if ax.asymmetric is not None:
        b, a = ax.asymmetric
        lines.append(f"  an asymmetric padding works: {b} before and {a} after (F.pad, then padding=0)")
    if s.kind == "deconv" and ax.above is None:
        lines.append("  (padding only shrinks a transposed conv's output; a larger kernel or stride grows it)")
    return lines


def solution_lines(sol: Solution) -> list[str]:
    s = sol.settings
    if not sol.solved:
        lines: list[str] = []
        for ax in sol.axes:
            if not ax.solved:
                lines += _missing_lines(s, ax)
        return lines
    firsts = [ax.exact[0] for ax in sol.axes]
    call = torch_call(
        s,
        padding=[st.padding for st in firsts],
        output_padding=[st.output_padding for st in firsts] if s.kind == "deconv" else None,
        ceil_mode=any(st.ceil_mode for st in firsts) if s.is_pool else None,
    )
    lines = [f"smallest: {call}"]
    for ax in sol.axes:
        if ax.unlisted:
            last = ax.exact[-1].padding + ax.unlisted
            lines.append(
                f"{ax.axis}: {ax.unlisted} more paddings up to {last} give {ax.target} too (the first "
                f"{len(ax.exact)} are listed)"
            )
    if s.kind == "deconv" and all(st.output_padding < stride for st, stride in zip(firsts, s.stride, strict=True)):
        targets = tuple(ax.target for ax in sol.axes)
        out = f"({', '.join(map(str, targets))})" if len(targets) > 1 else f"({targets[0]},)"
        lines.append(
            f"or set only the padding and call the module with output_size={out}: PyTorch then picks output_padding"
        )
    return lines


def print_solution(sol: Solution, terminal: Terminal) -> None:
    s = sol.settings
    title = (
        f"{torch_call(s, padding=[0] * s.rank, output_padding=[0] * s.rank)} on {size_text(s.input_size)}: "
        f"settings giving {size_text([ax.target for ax in sol.axes])}, smallest first"
    )
    terminal.line(title)
    columns = [grid.Column(col, "left" if col == "axis" else "right") for col in solution_header(s)]
    grid.write(terminal, columns, solution_rows(sol), frame="rule")
    for line in solution_lines(sol):
        terminal.line(line)


def solution_csv(sol: Solution) -> str:
    import csv  # only for --format csv

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["axis", "input", "target", "padding", "output_padding", "ceil_mode", "output", "exact"])
    for ax in sol.axes:
        shown = list(ax.exact) or [st for st in (ax.below, ax.above) if st is not None]
        for st in shown:
            writer.writerow(
                [
                    ax.axis,
                    ax.input_size,
                    ax.target,
                    st.padding,
                    st.output_padding,
                    str(st.ceil_mode).lower(),
                    st.output,
                    str(bool(ax.exact)).lower(),
                ]
            )
    return buf.getvalue()


def solution_markdown(sol: Solution) -> str:
    s = sol.settings
    parts = [
        f"## Settings giving {size_text([ax.target for ax in sol.axes])} from {size_text(s.input_size)}",
        "",
    ]
    parts.append(markdown_table(solution_header(s), solution_rows(sol)))
    parts.append("")
    parts += [f"- {line.strip()}" for line in solution_lines(sol)]
    return "\n".join(parts) + "\n"
