"""One-layer calculators: convcalc conv, deconv and pool.

Each command parses its options, calls convcalc.analysis.calculators (a one-layer stack through the stack
engine; convcalc.analysis.solver with --target) and renders (the JSON documents come from
convcalc.documents). Only typer is imported at module level; the library and Rich come in inside the
commands, and numpy never (a test checks sys.modules).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from cli.errors import user_errors
from cli.options import ColorOpt, FailOn, FailOnOpt, FormatOpt, OutputFormat
from cli.pictures import SvgOpt
from cli.terminal import ColorMode

if TYPE_CHECKING:
    from convcalc.analysis.calculators import LayerKind
    from convcalc.errors import ConvCalcError
    from convcalc.stack.spec import PaddingMode

_AXES = "one value for every axis or one per axis, e.g. 3 or 3,5 (the number of values sets 1-D/2-D/3-D)"

KernelOpt = Annotated[str, typer.Option("--kernel", "--k", help=f"Kernel size: {_AXES}.", metavar="K")]
StrideOpt = Annotated[str | None, typer.Option("--stride", "--s", help="Stride (default 1).", metavar="S")]
PaddingOpt = Annotated[
    str | None,
    typer.Option(
        "--padding",
        "--p",
        help="Padding on both sides: integers, or 'same' / 'valid' (default 0).",
        metavar="P",
    ),
]
DilationOpt = Annotated[str | None, typer.Option("--dilation", "--d", help="Dilation (default 1).", metavar="D")]
InputSizeOpt = Annotated[
    str | None,
    typer.Option("--input", "--i", help="Input size per spatial axis, e.g. 224 or 32,48 (no channels).", metavar="I"),
]
TargetOpt = Annotated[
    str | None,
    typer.Option(
        "--target",
        help="Solve for the padding giving this output size from --i (exit 1 if none does).",
        metavar="N",
    ),
]
ExplainOpt = Annotated[
    bool, typer.Option("--explain", help="Print the derivation step by step with your numbers substituted.")
]
DimsOpt = Annotated[
    int | None,
    typer.Option(
        "--dims", help="Spatial rank 1, 2 or 3 when every option has a single value (default 2).", metavar="N"
    ),
]
GroupsOpt = Annotated[int, typer.Option("--groups", help="Groups (needs --cin).")]
CinOpt = Annotated[int | None, typer.Option("--cin", help="Input channels (for parameters and MACs).")]
CoutOpt = Annotated[int | None, typer.Option("--cout", help="Output channels (default: --cin).")]


def _option_error(parameter: str, message: str) -> ConvCalcError:
    """A problem with one option's value; the error boundary names the option (cli.errors.OPTION_FLAGS)."""
    from convcalc.errors import Problem, SpecError

    return SpecError(Problem(message, parameter=parameter))


def _ints(parameter: str, raw: str | None) -> list[int] | None:
    """'3', '3,5' or '32x48' as integers; an error names the option and the value."""
    if raw is None:
        return None
    parts = [p.strip() for p in raw.replace("×", ",").replace("x", ",").split(",")]
    try:
        return [int(p) for p in parts]
    except ValueError:
        raise _option_error(parameter, f"expected integers separated by commas, e.g. 3 or 3,5; got {raw!r}") from None


def _padding(raw: str | None) -> list[int] | PaddingMode | None:
    """Integers, or a mode word; which modes the op takes is the op's field's to say (as in a stack file)."""
    mode = None if raw is None else raw.strip().lower()
    if raw is not None and mode in ("same", "valid"):
        return "same" if mode == "same" else "valid"
    return _ints("padding", raw)


def _run(
    command: str,
    kind: LayerKind,
    *,
    kernel: str,
    stride: str | None,
    padding: str | None,
    dilation: str | None,
    output_padding: str | None,
    input_size: str | None,
    target: str | None,
    explain: bool,
    dims: int | None,
    ceil: bool,
    groups: int,
    cin: int | None,
    cout: int | None,
    output_format: OutputFormat,
    fail_on: FailOn,
    color: ColorMode,
    svg: str | None = None,
) -> None:
    worst = None
    solved = True
    with user_errors(json_errors=output_format is OutputFormat.JSON):
        if target is not None and padding is not None:
            raise _option_error("target", "--target solves for the padding; drop --padding")
        if target is not None and output_padding is not None:
            raise _option_error("target", "--target solves for output_padding too; drop --output-padding")
        if explain and output_format is OutputFormat.CSV:
            raise _option_error("explain", "the derivation has no CSV form; use --format table, markdown or json")
        if target is not None and explain:
            raise _option_error("explain", "--explain explains one layer; drop --target to see it")
        if target is not None and svg is not None:
            raise _option_error("svg", "--svg draws one layer; drop --target to draw it")
        from convcalc.analysis.calculators import calculate, layer_settings

        settings = layer_settings(
            kind,
            kernel=_ints("kernel", kernel) or [],
            stride=_ints("stride", stride),
            padding=_padding(padding),
            dilation=_ints("dilation", dilation),
            output_padding=_ints("output_padding", output_padding),
            ceil_mode=ceil,
            input_size=_ints("input_size", input_size),
            in_channels=cin,
            out_channels=cout,
            groups=groups,
            rank=dims,
        )
        if target is not None:
            from convcalc.analysis.solver import solve

            solution = solve(settings, _ints("target", target) or [])
        else:
            result = calculate(settings)
        from cli import render, render_calc
        from convcalc.documents import calculator as documents

        if target is not None:
            solved = solution.solved
            render.emit(
                output_format,
                json_doc=lambda: documents.solution_document(solution, command),
                csv_text=lambda: render_calc.solution_csv(solution),
                markdown_text=lambda: render_calc.solution_markdown(solution),
                table=lambda terminal: render_calc.print_solution(solution, terminal),
                color=color,
            )
        else:
            derivations = None
            if explain:
                from convcalc.analysis.explain import explain as derive

                derivations = derive(result)
            render.emit(
                output_format,
                json_doc=lambda: documents.calculator_document(result, command, derivations),
                csv_text=lambda: render_calc.result_csv(result),
                markdown_text=lambda: render_calc.result_markdown(result, derivations),
                table=lambda terminal: render_calc.print_result(result, terminal, derivations),
                color=color,
            )
            worst = max((d.severity for d in result.diagnostics), key=lambda sev: sev.rank, default=None)
            if svg is not None:
                from cli.files import write_text
                from convcalc.documents.svg import overlap_svg

                write_text(svg, overlap_svg(result), "svg")
    if not solved:
        from cli.errors import ExitCode

        raise typer.Exit(int(ExitCode.INVALID_INPUT))
    from cli.errors import fail_if

    fail_if(worst, fail_on)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the convcalc app."""

    @app.command()
    def conv(
        kernel: KernelOpt,
        stride: StrideOpt = None,
        padding: PaddingOpt = None,
        dilation: DilationOpt = None,
        input_size: InputSizeOpt = None,
        groups: GroupsOpt = 1,
        cin: CinOpt = None,
        cout: CoutOpt = None,
        target: TargetOpt = None,
        explain: ExplainOpt = False,
        dims: DimsOpt = None,
        output_format: FormatOpt = OutputFormat.TABLE,
        fail_on: FailOnOpt = FailOn.ERROR,
        color: ColorOpt = ColorMode.AUTO,
        svg: SvgOpt = None,
    ) -> None:
        """One convolution: output size, effective kernel, receptive-field growth, jump, 'same' padding,
        params and MACs. Example: convcalc conv --k 3 --s 2 --p 1 --i 224 --explain"""
        _run(
            "conv",
            "conv",
            kernel=kernel,
            stride=stride,
            padding=padding,
            dilation=dilation,
            output_padding=None,
            input_size=input_size,
            target=target,
            explain=explain,
            dims=dims,
            ceil=False,
            groups=groups,
            cin=cin,
            cout=cout,
            output_format=output_format,
            fail_on=fail_on,
            color=color,
            svg=svg,
        )

    @app.command()
    def deconv(
        kernel: KernelOpt,
        stride: StrideOpt = None,
        padding: PaddingOpt = None,
        output_padding: Annotated[
            str | None,
            typer.Option(
                "--output-padding",
                "--op",
                help="Extra output on the end side; must be below the stride or the dilation (default 0).",
                metavar="OP",
            ),
        ] = None,
        dilation: DilationOpt = None,
        input_size: InputSizeOpt = None,
        groups: GroupsOpt = 1,
        cin: CinOpt = None,
        cout: CoutOpt = None,
        target: TargetOpt = None,
        explain: ExplainOpt = False,
        dims: DimsOpt = None,
        output_format: FormatOpt = OutputFormat.TABLE,
        fail_on: FailOnOpt = FailOn.ERROR,
        color: ColorOpt = ColorMode.AUTO,
        svg: SvgOpt = None,
    ) -> None:
        """One transposed convolution (ConvTranspose): output size, the equivalent stride-1 conv, the overlap
        map and checkerboard ratio. Example: convcalc deconv --k 3 --s 2 --p 1 --i 4"""
        _run(
            "deconv",
            "deconv",
            kernel=kernel,
            stride=stride,
            padding=padding,
            dilation=dilation,
            output_padding=output_padding,
            input_size=input_size,
            target=target,
            explain=explain,
            dims=dims,
            ceil=False,
            groups=groups,
            cin=cin,
            cout=cout,
            output_format=output_format,
            fail_on=fail_on,
            color=color,
            svg=svg,
        )

    @app.command()
    def pool(
        kernel: KernelOpt,
        stride: Annotated[
            str | None, typer.Option("--stride", "--s", help="Stride (default: the kernel).", metavar="S")
        ] = None,
        padding: PaddingOpt = None,
        dilation: DilationOpt = None,
        input_size: InputSizeOpt = None,
        ceil: Annotated[bool, typer.Option("--ceil", help="ceil_mode=True: round the output size up.")] = False,
        avg: Annotated[bool, typer.Option("--avg", help="Average pooling (default: max pooling).")] = False,
        target: TargetOpt = None,
        explain: ExplainOpt = False,
        dims: DimsOpt = None,
        output_format: FormatOpt = OutputFormat.TABLE,
        fail_on: FailOnOpt = FailOn.ERROR,
        color: ColorOpt = ColorMode.AUTO,
        svg: SvgOpt = None,
    ) -> None:
        """One max or average pooling layer: output size (with ceil_mode's last-window rule), receptive-field
        growth and jump. Example: convcalc pool --k 3 --s 2 --i 112 --ceil"""
        _run(
            "pool",
            "avgpool" if avg else "maxpool",
            kernel=kernel,
            stride=stride,
            padding=padding,
            dilation=dilation,
            output_padding=None,
            input_size=input_size,
            target=target,
            explain=explain,
            dims=dims,
            ceil=ceil,
            groups=1,
            cin=None,
            cout=None,
            output_format=output_format,
            fail_on=fail_on,
            color=color,
            svg=svg,
        )
