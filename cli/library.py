"""The bundled architecture library: convcalc list, and stack expansion (convcalc expand)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from cli.adapter import Command
from cli.errors import user_errors
from cli.options import ChangeRankOpt, FormatOpt, InputOpt, OutputFormat

if TYPE_CHECKING:
    pass

StackArg = Annotated[
    str,
    typer.Argument(
        help="A layer-stack YAML file, a bundled name (see convcalc list), or - for standard input.",
        metavar="STACK",
    ),
]


def list_stacks(output_format: FormatOpt = OutputFormat.TABLE) -> None:
    """List the bundled architectures: name, description, input shape and layer count (blocks expanded).

    Any of them can be given by name wherever a stack file is expected, e.g. convcalc rf resnet50.
    """
    with user_errors(json_errors=output_format is OutputFormat.JSON):
        from cli import render
        from convcalc.documents.library import input_text, list_document
        from convcalc.format.library import describe_bundled

        stacks = describe_bundled()
        rows = [(s.name, s.description, input_text(s), s.layers) for s in stacks]
        if output_format is OutputFormat.JSON:
            print(render.dumps(list_document(stacks)))
        elif output_format is OutputFormat.CSV:
            import csv

            writer = csv.writer(sys.stdout, lineterminator="\n")
            writer.writerow(["name", "description", "input", "layers"])
            writer.writerows(rows)
        elif output_format is OutputFormat.MARKDOWN:
            header = ("name", "description", "input", "layers")
            print(render.markdown_table(header, [(n, d, s, str(c)) for n, d, s, c in rows]))
        else:
            name_w = max((len(r[0]) for r in rows), default=4)
            shape_w = max((len(r[2]) for r in rows), default=5)
            for name, text, shape, count in rows:
                print(f"{name:<{name_w}}  {shape:>{shape_w}}  {count:>4} layers  {text}")


def expand(stack: StackArg, input_shape: InputOpt = None, change_rank: ChangeRankOpt = False) -> None:
    """Print the stack as plain version-1 YAML: blocks expanded, names qualified, every value explicit."""
    with user_errors():
        from cli.stacks import read_stack
        from convcalc.format.dump import dump_stack

        sys.stdout.write(dump_stack(read_stack(stack, input_shape, change_rank)))


def schema() -> None:
    """Print the JSON Schema (draft 2020-12) of the stack format, for editors and validators.

    Save it (convcalc schema > stack.schema.json) and start a stack file with
    # yaml-language-server: $schema=stack.schema.json
    """
    with user_errors():
        from cli import render
        from convcalc.format.schema import stack_schema

        print(render.dumps(stack_schema()))


def register(app: typer.Typer) -> None:
    """Add this module's commands to the convcalc app."""
    app.command("list")(list_stacks)
    app.command(cls=Command)(expand)
    app.command()(schema)
