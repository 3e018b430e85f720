"""Pictures: `convcalc coverage` (a unit's path-count map as a terminal heat map, JSON or SVG) and
`convcalc report -o net.html` (one self-contained page). Rendering only; the numbers come from
convcalc.analysis.coverage_map and the documents."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from cli.options import ChangeRankOpt, ColorOpt, FailOn, FailOnOpt, FormatOpt, InputOpt, OutputFormat
from cli.see import LayerOpt
from cli.terminal import ColorMode

if TYPE_CHECKING:
    from cli.terminal import Terminal
    from convcalc.analysis.coverage_map import CoverageMap, Picture
    from convcalc.geometry.coverage import Count

SvgOpt = Annotated[
    str | None,
    typer.Option(
        "--svg",
        help="Also write the picture as a standalone SVG file (replaced if it exists; never one of the inputs).",
        metavar="FILE.svg",
    ),
]

#: Shades for a cell's count relative to the largest (a quarter each); holes and pixels outside the field.
SHADES = "░▒▓█"
HOLE = "×"
PART_HOLE = "÷"
OUTSIDE = "·"
#: 256-colour backgrounds for the four shades (light to dark), when colour is on.
COLOURS = ("230", "221", "208", "160")
#: The heat map's size: at most this many rows (2-D), and the columns the terminal leaves (80 off a terminal).
MAX_ROWS = 32
DEFAULT_WIDTH = 80
STATS_WIDTH = 44


def _level(c: Count, peak: Count) -> int:
    from fractions import Fraction

    value, top = Fraction(c), Fraction(peak)
    return min(3, max(0, -(-4 * value // top) - 1)) if top else 0


def glyphs(p: Picture) -> list[list[tuple[str, int | None]]]:
    """Per cell, its glyph and its shade level (None: a hole or outside the field)."""
    out = []
    peak = p.peak
    for cells, holes, field in zip(p.cells, p.holes, p.field, strict=True):
        row: list[tuple[str, int | None]] = []
        for c, h, f in zip(cells, holes, field, strict=True):
            if not c:
                row.append((HOLE if f and h == f else OUTSIDE, None))
            elif h:
                row.append((PART_HOLE, None))
            else:
                level = _level(c, peak)
                row.append((SHADES[level], level))
        out.append(row)
    return out


def legend(m: CoverageMap, p: Picture) -> list[str]:
    from convcalc.notation import fraction_text

    peak = fraction_text(p.peak)
    rank = len(p.window)
    window = " × ".join(f"[{a}, {b}]" for a, b in p.window)
    pixels = f"{p.factor}×{p.factor}" if rank == 2 else str(p.factor)
    cell = f"each cell: the max of {pixels} pixels" if p.factor > 1 else "each cell: one pixel"
    return [
        f"input {window}; {cell} (downsampled by {p.factor})" if p.factor > 1 else f"input {window}; {cell}",
        f"{SHADES[0]} up to 1/4 of the max {peak}  {SHADES[1]} to 1/2  {SHADES[2]} to 3/4  {SHADES[3]} to the max",
        f"{HOLE} hole (no path, in the field)  {PART_HOLE} paths and holes in one cell  {OUTSIDE} outside the field",
    ]


def stats_lines(m: CoverageMap) -> list[str]:
    from cli.render import axis_names
    from cli.see import interval_text
    from convcalc.analysis.coverage_map import hole_fraction

    names = axis_names(len(m.sizes))
    fraction = hole_fraction(m)
    holes = "unknown (the N-D map is over the limit)" if m.holes is None else str(m.holes)
    lines = [
        f"unit {','.join(map(str, m.unit)) or '()'} of {m.layer}",
        "region  " + "  ".join(f"{a} {interval_text(h)}" for a, h in zip(names, m.region, strict=True)),
        "support " + "  ".join(f"{a} {interval_text(h)}" for a, h in zip(names, m.support, strict=True)),
        f"field   {m.field_pixels} px, holes {holes}" + ("" if fraction is None else f" ({float(fraction):.1%})"),
    ]
    for name, s in zip(names, m.spreads, strict=True):
        if s is None:
            lines.append(f"erf {name}: nothing reaches the unit")
            continue
        radii = " ".join(f"{float(r):.4g}" for _, r in s.radius)
        lines.append(f"erf {name}: r50/90/99 {radii}, std {s.std:.3g}")
    if not m.separable:
        lines.append("exact N-D walk (merges)" if m.grid is not None else "N-D map over the limit: per axis only")
    return lines


def print_coverage(m: CoverageMap, p: Picture | None, terminal: Terminal) -> None:
    stats = stats_lines(m)
    if p is None:
        from cli.render import axis_names
        from convcalc.analysis.coverage_map import axis_picture
        from convcalc.notation import fraction_text

        for line in stats:
            terminal.line(line)
        terminal.line("no N-D picture (the map is drawn whole for 1-D and 2-D inputs with a known N-D map); per axis:")
        width = (terminal.width or DEFAULT_WIDTH) - 4
        for name, axis in zip(axis_names(len(m.sizes)), range(len(m.sizes)), strict=True):
            strip = axis_picture(m, axis, width)
            terminal.line(f"{name} {legend(m, strip)[0]}; max {fraction_text(strip.peak)}")
            terminal.line("  " + "".join(terminal.style(g, _style(level)) for g, level in glyphs(strip)[0]))
        a, b, c, d = tuple(SHADES)
        terminal.line(f"{a} up to 1/4 of the strip's max  {b} to 1/2  {c} to 3/4  {d} to it")
        terminal.line(legend(m, strip)[2])
        return
    rows = [
        "".join(terminal.style(g * (2 if len(p.window) == 2 else 1), _style(level)) for g, level in row)
        for row in glyphs(p)
    ]
    width = len(p.cells[0]) * (2 if len(p.window) == 2 else 1)
    total = terminal.width or DEFAULT_WIDTH
    beside = width + 2 + STATS_WIDTH <= total
    for line in legend(m, p):
        terminal.line(line)
    if beside:
        for i in range(max(len(rows), len(stats))):
            left = rows[i] if i < len(rows) else " " * width
            terminal.line((left + "  " + (stats[i] if i < len(stats) else "")).rstrip())
    else:
        for text in rows:
            terminal.line(text)
        for line in stats:
            terminal.line(line)


def _style(level: int | None) -> str | None:
    return None if level is None else f"black on {COLOURS[level]}"


def coverage_picture(m: CoverageMap, width: int | None) -> Picture | None:
    """The picture sized for a terminal of `width` columns (None: DEFAULT_WIDTH)."""
    from convcalc.analysis.coverage_map import picture

    total = width or DEFAULT_WIDTH
    rank = len(m.sizes)
    room = total - 2 - STATS_WIDTH if total - 2 - STATS_WIDTH >= 24 else total
    cols = max(8, room // 2 if rank == 2 else room)
    return picture(m, MAX_ROWS, cols)


def register(app: typer.Typer) -> None:
    from cli.adapter import Command

    @app.command(cls=Command)
    def coverage(
        stack: Annotated[str, typer.Argument(help="A layer-stack YAML file, a bundled name, or - for stdin.")],
        layer: LayerOpt = None,
        unit: Annotated[
            str | None,
            typer.Option("--unit", help="The unit, one index per spatial axis (default: the centre).", metavar="I,J"),
        ] = None,
        svg: SvgOpt = None,
        input_shape: InputOpt = None,
        output_format: FormatOpt = OutputFormat.TABLE,
        color: ColorOpt = ColorMode.AUTO,
        change_rank: ChangeRankOpt = False,
    ) -> None:
        """The path-count map of one unit (default: the centre unit of the last layer) over the input: a heat
        map (1-D: a strip), its holes, its field, support and effective receptive field.

        Each input pixel's count is the number of paths from it to the unit through the all-ones skeleton
        of the stack; a hole is a pixel of the field no path reaches."""
        import os

        from cli.errors import user_errors

        with user_errors(json_errors=output_format is OutputFormat.JSON):
            from cli import render
            from cli.see import find_layer, parse_index
            from cli.stacks import read_stack
            from cli.terminal import open_terminal
            from convcalc.analysis.coverage_map import coverage_map
            from convcalc.analysis.engine import analyze
            from convcalc.documents.locate import coverage_document
            from convcalc.errors import Problem, SpecError

            if output_format not in (OutputFormat.TABLE, OutputFormat.JSON):
                raise SpecError(Problem("coverage has --format table or json", parameter="format"))
            report = analyze(read_stack(stack, input_shape, change_rank))
            found = find_layer(report, layer)
            m = coverage_map(report, found.name, None if unit is None else parse_index(unit, "unit"))
            terminal = open_terminal(color)
            p = coverage_picture(m, terminal.width)
            if svg is not None:
                from cli.files import write_text
                from convcalc.analysis.coverage_map import picture
                from convcalc.documents.svg import MAX_CELLS, coverage_svg

                drawn = picture(m, MAX_CELLS, MAX_CELLS)
                if drawn is None:
                    raise SpecError(Problem("the SVG map is drawn for 1-D and 2-D inputs", parameter="svg"))
                inputs = [stack] if stack != "-" and os.path.exists(stack) else []
                write_text(svg, coverage_svg(m, drawn), "svg", inputs)
            if output_format is OutputFormat.JSON:
                print(render.dumps(coverage_document(report, m, p)))
            else:
                print_coverage(m, p, terminal)

    @app.command(cls=Command)
    def report(
        stack: Annotated[str, typer.Argument(help="A layer-stack YAML file, a bundled name, or - for stdin.")],
        output: Annotated[
            str,
            typer.Option("--output", "-o", help="The HTML file to write (replaced if it exists).", metavar="FILE.html"),
        ],
        layer: LayerOpt = None,
        input_shape: InputOpt = None,
        fail_on: FailOnOpt = FailOn.ERROR,
        change_rank: ChangeRankOpt = False,
    ) -> None:
        """One self-contained HTML page: the per-layer table, the diagnostics, and the input grid where
        clicking (or hovering) a unit of --layer (default: the last) shows its receptive field and support."""
        import os

        from cli.errors import fail_if, user_errors

        with user_errors():
            from cli.files import write_text
            from cli.stacks import read_stack
            from convcalc.analysis.engine import analyze
            from convcalc.documents.html import report_html

            analysed = analyze(read_stack(stack, input_shape, change_rank))
            page = report_html(analysed, layer)
            inputs = [stack] if stack != "-" and os.path.exists(stack) else []
            write_text(output, page, "output", inputs)
        fail_if(analysed.worst_severity(), fail_on)
