"""The `convcalc` command: each command parses options, calls one library function and renders.

Heavy modules (yaml, rich tables, numpy) are imported inside the commands that need them so
that start-up stays fast; numpy is never imported by the arithmetic commands.
"""

from __future__ import annotations

from typing import Annotated

import typer

from cli.adapter import Command, Group
from cli.errors import fail_if, user_errors
from cli.options import (
    ChangeRankOpt,
    ColorOpt,
    FailOn,
    FailOnOpt,
    FormatOpt,
    GatesMode,
    GatesOpt,
    InputOpt,
    OutputFormat,
)
from cli.see import ErfOpt, LayerOpt, UnitOpt
from cli.terminal import ColorMode

app = typer.Typer(
    name="convcalc",
    cls=Group,
    help=(
        "Convolution arithmetic: PyTorch-exact output sizes, receptive fields, jumps and checkerboard "
        "diagnostics for layer stacks.\n\n"
        "Exit codes: 0 ok, 1 invalid input, 2 usage, 3 diagnostics at or above --fail-on, "
        "4 shape mismatch (run), 5 over the memory limit (run), 70 internal error."
    ),
    add_completion=True,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

StackArg = Annotated[
    str,
    typer.Argument(
        help="A layer-stack YAML file (see the README for the format), a bundled name (see convcalc list), "
        "or - for standard input.",
        metavar="STACK",
        show_default=False,
    ),
]


def _version(value: bool) -> None:
    if value:
        from convcalc import __version__

        print(f"convcalc {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Convolution arithmetic for layer stacks."""


@app.command(cls=Command)
def rf(
    stack: StackArg,
    input_shape: InputOpt = None,
    output_format: FormatOpt = OutputFormat.TABLE,
    fail_on: FailOnOpt = FailOn.ERROR,
    color: ColorOpt = ColorMode.AUTO,
    change_rank: ChangeRankOpt = False,
    unit: UnitOpt = None,
    layer: LayerOpt = None,
    erf: ErfOpt = False,
    gates: GatesOpt = GatesMode.TRUE,
) -> None:
    """Per layer: output shape, effective kernel, stride, jump, receptive field, centre/padding, params, MACs.

    With --unit (or --erf): also the region and the support of one unit of --layer, and with --erf its
    effective receptive field. With --gates constant: also each layer's field with squeeze-and-excitation
    gates taken as constants."""
    with user_errors(json_errors=output_format is OutputFormat.JSON):
        from cli import render, see
        from cli.stacks import read_stack
        from convcalc.analysis.engine import analyze
        from convcalc.documents.report import report_document

        spec = read_stack(stack, input_shape, change_rank)
        report = analyze(spec, gates="constant" if gates is GatesMode.CONSTANT else "true")
        if unit is None and not erf:
            render.emit(
                output_format,
                json_doc=lambda: report_document(report),
                csv_text=lambda: render.report_csv(report),
                markdown_text=lambda: render.report_markdown(report),
                table=lambda terminal: render.print_table(report, terminal),
                color=color,
            )
        else:
            see.emit_unit(report, output_format, unit, layer, erf, color)
    fail_if(report.worst_severity(), fail_on)


def _register_commands() -> None:
    # Each command family lives in its own module with a register(app) function; the modules
    # import only typer at the top, so registering them costs nothing at start-up.
    from cli import calc, importer, library, run, see

    for module in (calc, run, library, importer, see):
        module.register(app)


_register_commands()


def main() -> None:
    """Console-script entry point."""
    app(prog_name="convcalc")
