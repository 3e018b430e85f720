"""convcalc run: execute a stack with the NumPy reference ops and check every predicted shape."""

from __future__ import annotations

import math
import os
import re
import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from cli.adapter import Command
from cli.errors import user_errors
from cli.options import ChangeRankOpt, ColorOpt, FormatOpt, InputOpt, OutputFormat
from cli.terminal import ColorMode

if TYPE_CHECKING:
    from collections.abc import Iterator
    from contextlib import AbstractContextManager

    from convcalc.analysis.report import StackReport
    from convcalc.execution.runner import LayerRun, Progress

#: A progress bar appears (on a terminal) above this many layers or this many multiply-accumulates.
PROGRESS_LAYERS = 20
PROGRESS_MACS = 2 * 10**9

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1000,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1000**3,
    "gib": 1024**3,
    "t": 1024**4,
    "tb": 1000**4,
    "tib": 1024**4,
}
#: The most digits a --max-memory number may have (10⁴⁰ bytes is beyond any memory).
MAX_SIZE_DIGITS = 40
_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([a-zA-Z]*)\s*")


class Weights(StrEnum):
    RANDN = "randn"
    ONES = "ones"


class DType(StrEnum):
    FLOAT32 = "float32"
    FLOAT64 = "float64"


def parse_size(text: str) -> int:
    """Bytes from a size: plain bytes, decimal units (KB, MB, GB, TB) or binary (KiB..TiB; K, M, G, T).

    >>> parse_size("2GiB"), parse_size("1.5GB"), parse_size("512M"), parse_size("1000")
    (2147483648, 1500000000, 536870912, 1000)
    """
    from fractions import Fraction

    from convcalc.errors import Problem, SpecError

    match = _SIZE.fullmatch(text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise SpecError(
            Problem(
                f"must be a size such as 2GiB, 512MiB, 1.5GB or a number of bytes; got '{text}'",
                parameter="max_memory",
            )
        )
    number = match.group(1)
    if len(number) > MAX_SIZE_DIGITS:
        raise SpecError(
            Problem(
                f"a size of {len(number)} digits is more than the {MAX_SIZE_DIGITS} convcalc reads "
                "(MAX_SIZE_DIGITS); every machine's memory fits in far fewer",
                parameter="max_memory",
            )
        )
    # Exact (no float: a long number would overflow to infinity); Fraction reads '1.5' and '.5' as written.
    value = math.floor(Fraction(number) * _UNITS[unit])
    if value < 1:
        raise SpecError(Problem(f"must be at least 1 byte; got '{text}'", parameter="max_memory"))
    return value


def register(app: typer.Typer) -> None:
    """Add this module's commands to the convcalc app."""
    app.command(name="run", cls=Command)(run)


def run(
    stack: Annotated[
        str,
        typer.Argument(
            help="A layer-stack YAML file (see the README for the format), a bundled name (see convcalc list), "
            "or - for standard input.",
            metavar="STACK",
        ),
    ],
    data: Annotated[
        str,
        typer.Option(
            "--data",
            help="Sample input: randn, ones, zeros, or a .npy array shaped (N, C, *spatial) or (C, *spatial).",
            metavar="randn|ones|zeros|PATH.npy",
        ),
    ] = "randn",
    input_shape: InputOpt = None,
    change_rank: ChangeRankOpt = False,
    weights: Annotated[
        Weights,
        typer.Option(
            "--weights",
            help="randn: N(0, gain/fan_in) per layer; ones: every weight 1 and every bias 0.",
            case_sensitive=False,
        ),
    ] = Weights.RANDN,
    seed: Annotated[
        int, typer.Option("--seed", min=0, help="Seed of the sample data and the weights.", metavar="N")
    ] = 0,
    batch: Annotated[
        int | None, typer.Option("--batch", min=1, help="Batch size N [default: 1, or the .npy's N].", metavar="N")
    ] = None,
    dtype: Annotated[
        DType, typer.Option("--dtype", help="Floating-point type of the run.", case_sensitive=False)
    ] = DType.FLOAT32,
    save: Annotated[
        str | None,
        typer.Option(
            "--save", help="Write every layer's output (and the input) by name to this .npz file.", metavar="PATH.npz"
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Let --save overwrite an existing file.")] = False,
    max_memory: Annotated[
        str,
        typer.Option(
            "--max-memory",
            help="Refuse runs whose estimated memory exceeds this (e.g. 512MiB, 2GiB, 1.5GB, bytes).",
            metavar="SIZE",
        ),
    ] = "2GiB",
    output_format: FormatOpt = OutputFormat.TABLE,
    color: ColorOpt = ColorMode.AUTO,
) -> None:
    """Run the stack on sample data with the NumPy reference ops: per layer predicted and actual shape,
    time and output statistics. Exit 4 when a shape differs from the prediction, 5 over --max-memory."""
    with user_errors(json_errors=output_format is OutputFormat.JSON):
        from cli import render, render_run
        from cli.stacks import read_stack
        from convcalc.analysis.engine import analyze
        from convcalc.documents.run import run_document
        from convcalc.errors import MismatchError, Problem
        from convcalc.execution.runner import DATA_KINDS, check_result, run_stack, save_outputs
        from convcalc.format.library import resolve_bundled

        limit = parse_size(max_memory)
        spec = read_stack(stack, input_shape, change_rank)
        # The files the run reads, as the loader found them: a bundled name (`bundled:resnet50` in the
        # report) is the file it resolved to.
        stack_file = None if stack == "-" or spec.file is None else str(resolve_bundled(spec.file) or spec.file)
        inputs = [f for f in (stack_file, None if data in DATA_KINDS else data) if f]
        if save is not None:
            _check_save_target(save, force, inputs)
        report = analyze(spec)
        with _progress_bar(report, batch or 1) as progress:
            result = run_stack(
                spec,
                data=data,
                weights=weights.value,
                seed=seed,
                batch=batch,
                dtype=dtype.value,
                keep_outputs=save is not None,
                max_memory=limit,
                check=False,
                report=report,
                progress=progress,
            )
        saved = None
        if save is not None and result.ok:
            save_outputs(result.outputs, save, overwrite=force, keep=inputs)
            saved = save
        render.emit(
            output_format,
            json_doc=lambda: run_document(result, saved),
            csv_text=lambda: render_run.run_csv(result),
            markdown_text=lambda: render_run.run_markdown(result, saved),
            table=lambda terminal: render_run.print_run(result, saved, terminal),
            color=color,
        )
        if not result.ok:
            try:
                check_result(result)
            except MismatchError as exc:
                problems = list(exc.problems)
                if save is not None:
                    # The arrays of a failed run would mislead whoever loads them later.
                    problems.append(
                        Problem("not written: the run disagrees with the prediction", save, parameter="save")
                    )
                raise MismatchError(problems) from None


def _check_save_target(save: str, force: bool, inputs: list[str]) -> None:
    """Refuse before running: a directory, one of the run's inputs (--force or not), an existing file
    without --force, or a missing directory."""
    from convcalc.errors import FileProblemError, Problem
    from convcalc.execution.files import overwritten_input

    if os.path.isdir(save):
        raise FileProblemError(Problem("names a directory; give a file name such as out.npz", save, parameter="save"))
    clash = overwritten_input(save, inputs)
    if clash is not None:
        raise FileProblemError(
            Problem(
                f"would overwrite {clash}, one of the run's own inputs; choose another name", save, parameter="save"
            )
        )
    if os.path.exists(save) and not force:
        raise FileProblemError(
            Problem("would overwrite an existing file; choose another name or pass --force", save, parameter="save")
        )
    parent = os.path.dirname(os.path.abspath(save))
    if not os.path.isdir(parent):
        raise FileProblemError(Problem(f"the directory {parent} does not exist", save, parameter="save"))


def _progress_bar(report: StackReport, batch: int) -> AbstractContextManager[Progress | None]:
    """A Rich progress bar on stderr for long runs on a terminal; no callback otherwise."""
    from contextlib import contextmanager, nullcontext

    macs = (report.total_macs or 0) * batch
    long_run = len(report.layers) > PROGRESS_LAYERS or macs > PROGRESS_MACS
    if not (long_run and sys.stderr.isatty()):
        return nullcontext(None)

    @contextmanager
    def bar() -> Iterator[Progress]:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=Console(file=sys.stderr), transient=True) as rich_progress:
            task = rich_progress.add_task("running", total=len(report.layers))

            def update(done: int, total: int, layer: LayerRun) -> None:
                rich_progress.update(task, completed=done, total=total, description=layer.name)

            yield update

    return bar()
