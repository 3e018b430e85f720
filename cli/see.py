"""What a unit really sees: `rf --unit` (region and support of one unit, its effective field) and `locate`
(the units one input pixel reaches). Rendering only; the numbers come from convcalc.analysis.locate."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.options import ChangeRankOpt, FormatOpt, InputOpt, OutputFormat

if TYPE_CHECKING:
    from convcalc.analysis.locate import Spread, Support
    from convcalc.analysis.report import LayerReport, StackReport

UnitOpt = Annotated[
    str | None,
    typer.Option(
        "--unit",
        help="Also give the region and the support of this output unit, one index per spatial axis (e.g. 10,12).",
        metavar="I,J",
    ),
]
LayerOpt = Annotated[
    str | None,
    typer.Option("--layer", help="The layer of --unit / --pixel (default: the last layer).", metavar="NAME"),
]
ErfOpt = Annotated[
    bool,
    typer.Option(
        "--erf",
        help="With --unit (default: the centre unit of the layer): its effective receptive field, the spread of "
        "its path counts per axis (radius holding 50/90/99 % of the paths, standard deviation).",
    ),
]


def parse_index(text: str, parameter: str) -> tuple[int, ...]:
    """'10,12' → (10, 12); a SpecError naming the parameter otherwise."""
    from convcalc.errors import Problem, SpecError

    parts = [p.strip() for p in text.replace("x", ",").split(",")] if text.strip() else []
    try:
        return tuple(int(p) for p in parts)
    except ValueError:
        raise SpecError(
            Problem(f"expected integers separated by commas (e.g. 10,12), got {text!r}", parameter=parameter)
        ) from None


def find_layer(report: StackReport, name: str | None) -> LayerReport:
    from convcalc.errors import Problem, SpecError

    if name is None:
        return report.output
    try:
        return report.layer(name)
    except KeyError:
        names = ", ".join(layer.name for layer in report.layers)
        raise SpecError(Problem(f"no layer {name!r}; the layers are {names}", parameter="layer")) from None


def interval_text(h: tuple[int, int] | None) -> str:
    return "none" if h is None else f"[{h[0]}, {h[1]}]"


def runs_text(runs: tuple[tuple[int, int], ...]) -> str:
    if not runs:
        return "none"
    return " ".join(str(a) if a == b else f"{a}–{b}" for a, b in runs)


def unit_result(report: StackReport, unit: str | None, layer: str | None, erf: bool) -> tuple[Support, list[Any]]:
    """The support of the unit asked for, and per axis its spread (when --erf)."""
    from convcalc.analysis import locate

    found = find_layer(report, layer)
    index = locate.centre_unit(found) if unit is None else parse_index(unit, "unit")
    result = locate.support(report, index, found.name)
    spreads: list[Any] = []
    if erf:
        spreads = [locate.spread(counts) for counts in locate.coverage(report, found.name, index)]
    return result, spreads


def unit_lines(report: StackReport, result: Support, spreads: list[Spread | None]) -> list[str]:
    from cli.render import axis_names
    from convcalc.notation import fraction_text

    names = axis_names(len(result.support))
    index = ",".join(map(str, result.unit)) or "()"
    region = "  ".join(f"{a} {interval_text(h)}" for a, h in zip(names, result.region, strict=True))
    support = "  ".join(f"{a} {interval_text(h)}" for a, h in zip(names, result.support, strict=True))
    lines = [
        f"unit {index} of layer {result.layer}:",
        f"  region   {region}   (receptive field: positions in the padding count)",
        f"  support  {support}   (the input pixels that reach it at this input size)",
    ]
    if not result.exact:
        lines.append(
            "  (support: an upper bound: behind a merge, a branch unit that receives nothing along one axis "
            "contributes nothing along the others, which the per-axis walk cannot see)"
        )
    found = report.layer(result.layer)
    for name, f, s in zip(names, found.field, spreads, strict=True) if spreads else ():
        if s is None:
            lines.append(f"  erf {name}: no input pixel reaches the unit")
            continue
        radii = ", ".join(f"{mass} % within {fraction_text(r)}" for mass, r in s.radius)
        rf = "?" if f.rf is None else str(f.rf)
        lines.append(
            f"  erf {name}: {radii} of the mean {fraction_text(s.mean)}; std {s.std:.3g} "
            f"(variance {fraction_text(s.variance)}); theoretical field {rf}"
        )
    return lines


def emit_unit(
    report: StackReport, output_format: OutputFormat, unit: str | None, layer: str | None, erf: bool, color: Any
) -> None:
    """`rf --unit`: the report with the unit's region and support (a top-level "unit" object in JSON)."""
    from cli import render
    from convcalc.documents.locate import unit_document
    from convcalc.documents.report import report_document
    from convcalc.errors import Problem, SpecError

    if output_format not in (OutputFormat.TABLE, OutputFormat.JSON):
        raise SpecError(Problem("--unit and --erf need --format table or json", parameter="unit"))
    result, spreads = unit_result(report, unit, layer, erf)

    def table(terminal: Any) -> None:
        render.print_table(report, terminal)
        print("\n".join(unit_lines(report, result, spreads)))

    render.emit(
        output_format,
        json_doc=lambda: {**report_document(report), "unit": unit_document(report, result, spreads)},
        csv_text=lambda: "",
        markdown_text=lambda: "",
        table=table,
        color=color,
    )


def register(app: typer.Typer) -> None:
    from cli.adapter import Command

    @app.command(cls=Command)
    def locate(
        stack: Annotated[str, typer.Argument(help="A layer-stack YAML file, a bundled name, or - for stdin.")],
        pixel: Annotated[
            str,
            typer.Option("--pixel", help="An input pixel, one index per spatial axis (e.g. 100,80).", metavar="I,J"),
        ],
        layer: LayerOpt = None,
        input_shape: InputOpt = None,
        output_format: FormatOpt = OutputFormat.TABLE,
        change_rank: ChangeRankOpt = False,
    ) -> None:
        """The units of a layer (default: the last) that one input pixel reaches, per axis.

        A unit is reached when its index along every axis is in the ranges given; along one axis, pixel p
        reaches unit u exactly when some path of the stack joins them (p then lies in u's support).
        """
        from cli.errors import user_errors

        with user_errors(json_errors=output_format is OutputFormat.JSON):
            from cli.render import axis_names, dumps
            from cli.stacks import read_stack
            from convcalc.analysis import locate as library
            from convcalc.analysis.engine import analyze
            from convcalc.documents.locate import reach_document

            spec = read_stack(stack, input_shape, change_rank)
            report = analyze(spec)
            found = find_layer(report, layer)
            result = library.reach(report, parse_index(pixel, "pixel"), found.name)
            if output_format is OutputFormat.JSON:
                print(dumps(reach_document(result)))
                return
            names = axis_names(len(result.units))
            print(f"input pixel {','.join(map(str, result.pixel))} reaches units of layer {result.layer}:")
            for name, runs in zip(names, result.units, strict=True):
                print(f"  {name} {runs_text(runs)}")
            if not result.exact:
                print("  (an upper bound: behind a merge the per-axis walk may count units the pixel does not reach)")
