"""`convcalc import`: a model file (ONNX, or a torch.export `.pt2`) as a plain version-1 stack YAML."""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from typing import Annotated

import typer

from cli.adapter import Command
from cli.errors import user_errors
from cli.options import InputOpt


class OnUnsupported(StrEnum):
    ERROR = "error"
    STOP = "stop"


def import_model(
    model: Annotated[
        str, typer.Argument(help="An ONNX file (.onnx) or a torch.export program (.pt2).", metavar="MODEL")
    ],
    out: Annotated[
        str | None,
        typer.Option("-o", "--out", help="Write the stack to this file instead of standard output.", metavar="FILE"),
    ] = None,
    input_shape: InputOpt = None,
    output: Annotated[
        str | None,
        typer.Option("--output", help="Import up to this tensor (the stack ends there).", metavar="TENSOR"),
    ] = None,
    on_unsupported: Annotated[
        OnUnsupported,
        typer.Option(
            "--on-unsupported",
            help="error: refuse a model with an op convcalc cannot express; stop: import the layers before it.",
        ),
    ] = OnUnsupported.ERROR,
    force: Annotated[bool, typer.Option("--force", help="Let -o overwrite an existing file.")] = False,
) -> None:
    """Import a model: every layer with a comment naming the node it came from, shapes from convcalc's arithmetic."""
    with user_errors():
        from convcalc.errors import FileProblemError, Problem
        from convcalc.execution.files import overwritten_input
        from convcalc.format.dump import dump_stack
        from convcalc.format.loader import parse_input_shape
        from convcalc.importers import read_model

        if out is not None:
            if os.path.isdir(out):
                raise FileProblemError(
                    Problem("names a directory; give a file name such as net.yaml", out, parameter="out")
                )
            if overwritten_input(out, [model]) is not None:
                raise FileProblemError(
                    Problem("would overwrite the model itself; choose another name", out, parameter="out")
                )
            if os.path.exists(out) and not force:
                raise FileProblemError(
                    Problem(
                        "would overwrite an existing file; choose another name or pass --force", out, parameter="out"
                    )
                )
        override = parse_input_shape(input_shape) if input_shape is not None else None
        imported = read_model(model, override, output, on_unsupported.value)
        header = [f"imported from {model} by convcalc: {len(imported.stack.layers)} layers"]
        header += [f"note: {note}" for note in imported.notes]
        if imported.stopped is not None:
            header.append(f"stopped at {imported.stopped}")
        text = dump_stack(imported.stack, imported.origins, header)
        if out is None:
            sys.stdout.write(text)
        else:
            with open(out, "w", encoding="utf-8") as handle:
                handle.write(text)
        if imported.stopped is not None:
            print(f"convcalc: stopped at {imported.stopped}", file=sys.stderr)


def register(app: typer.Typer) -> None:
    """Add `convcalc import` to the app."""
    app.command("import", cls=Command)(import_model)
