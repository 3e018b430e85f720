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
    GatesMode,
    GatesOpt,
    InputOpt,
    QuietOpt,
    ReportFormat,
    ReportFormatOpt,
)
from cli.see import ErfOpt, LayerOpt, UnitOpt
from cli.terminal import ColorMode

app = typer.Typer(
    name="convcalc",
    cls=Group,
    help=(
        "Convolution arithmetic: PyTorch-exact output sizes, receptive fields, jumps and checkerboard "
        "diagnostics for layer stacks.\n\n"
        "Exit codes: 0 ok, 1 invalid input, 2 usage, 3 diagnostics at or above --fail-on (check: or a broken "
        "contract), 4 shape mismatch (run), 5 over the memory limit (run), 70 internal error."
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
    traceback: Annotated[
        bool,
        typer.Option(
            "--traceback",
            help="On an internal error (exit 70) print the Python traceback, for a bug report "
            "(as CONVCALC_TRACEBACK=1 does).",
        ),
    ] = False,
) -> None:
    """Convolution arithmetic for layer stacks."""
    if traceback:
        import os

        os.environ["CONVCALC_TRACEBACK"] = "1"  # read where errors are turned into exit codes (cli.errors)


@app.command(cls=Command)
def rf(
    stack: StackArg,
    input_shape: InputOpt = None,
    output_format: ReportFormatOpt = ReportFormat.TABLE,
    fail_on: FailOnOpt = FailOn.ERROR,
    color: ColorOpt = ColorMode.AUTO,
    change_rank: ChangeRankOpt = False,
    unit: UnitOpt = None,
    layer: LayerOpt = None,
    erf: ErfOpt = False,
    quiet: QuietOpt = False,
    gates: GatesOpt = GatesMode.TRUE,
) -> None:
    """Per layer: output shape, effective kernel, stride, jump, receptive field, centre/padding, params, MACs.

    With --unit (or --erf): also the region and the support of one unit of --layer, and with --erf its
    effective receptive field. With --gates constant: also each layer's field with squeeze-and-excitation
    gates taken as constants. The CI formats (github, sarif, junit) report the diagnostics with their
    source lines; --quiet prints nothing but errors and the diagnostics that fail --fail-on (on stderr)."""
    with user_errors(json_errors=output_format is ReportFormat.JSON):
        from cli import render, see
        from cli.options import FINDINGS_FORMATS, OutputFormat
        from cli.stacks import read_stack
        from convcalc.analysis.engine import analyze
        from convcalc.documents.report import report_document

        spec = read_stack(stack, input_shape, change_rank)
        report = analyze(spec, gates="constant" if gates is GatesMode.CONSTANT else "true")
        if (unit is not None or erf) and output_format in FINDINGS_FORMATS:
            from convcalc.errors import Problem, SpecError

            raise SpecError(Problem("--unit and --erf need --format table or json", parameter="unit"))
        if quiet:
            render.print_failing(report.diagnostics, fail_on)
        elif output_format in FINDINGS_FORMATS:
            from cli.render_findings import emit_findings
            from convcalc.documents.findings import findings_of

            emit_findings(str(output_format), findings_of(report), [report.file or "<stdin>"], fail_on)
        elif unit is None and not erf:
            render.emit(
                OutputFormat(str(output_format)),
                json_doc=lambda: report_document(report),
                csv_text=lambda: render.report_csv(report),
                markdown_text=lambda: render.report_markdown(report),
                table=lambda terminal: render.print_table(report, terminal),
                color=color,
            )
        else:
            see.emit_unit(report, OutputFormat(str(output_format)), unit, layer, erf, color)
    fail_if(report.worst_severity(), fail_on)


def _register_commands() -> None:
    # Each command family lives in its own module with a register(app) function; the modules
    # import only typer at the top, so registering them costs nothing at start-up.
    from cli import calc, check, importer, library, pictures, run, see

    for module in (calc, run, library, importer, see, pictures, check):
        module.register(app)


_register_commands()


def invoked_app(args: list[str]) -> typer.Typer:
    """The app to run for the command line `args`: when it names a command, a copy of `app` with only
    that command, since Typer builds the parameters of every registered command (signatures and type
    hints: a few milliseconds each) before dispatching to one; otherwise `app` itself (help, --version,
    an unknown command, shell completion)."""
    import copy
    import os

    from typer.main import get_command_name

    if not args or args[0].startswith("-") or any(k.startswith("_CONVCALC_COMPLETE") for k in os.environ):
        return app
    wanted = [
        info
        for info in app.registered_commands
        if (info.name or get_command_name(getattr(info.callback, "__name__", ""))) == args[0]
    ]
    if not wanted:
        return app
    one = copy.copy(app)
    one.registered_commands = wanted
    return one


def main() -> None:
    """Console-script entry point."""
    import sys

    invoked_app(sys.argv[1:])(prog_name="convcalc")
