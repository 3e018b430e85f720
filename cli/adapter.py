"""How convcalc adapts Typer: usage errors in convcalc's own form, help that reads like the README, and
option values coerced without pydantic where no coercion is needed.

Typer writes a required argument as `{stack}` in the usage line and `stack <str>` in the argument list;
convcalc's commands show `STACK`, as their documentation does.

Typer 0.29 coerces every parameter's value through a pydantic TypeAdapter, built on the first dispatch:
importing pydantic and building the adapters costs more than the rest of a calculator command. Most
values need no coercion at all (an option left at its default None, a `str` option given a string, an
enum or bool default), and the others convcalc's commands mostly get are a plain decimal integer or an
enum member's name; the command group coerces those itself, with Typer's own choice matching, and hands
every other value to Typer's coercion (so a bad value still gets Typer's message). tests/test_startup.py
checks the two agree, value, type or message, on a catalogue of values for every parameter of every
command.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from enum import Enum
from typing import Any

import typer
from typer._click import Command as ClickCommand
from typer._click import Context
from typer._coercion import RuntimeParam, TypeDescriptor, build_runtime_param
from typer._param_types import coerce_cli_choice
from typer.core import TyperArgument, TyperCommand, TyperGroup, _TyperParameter

from cli.errors import ExitCode, report_usage_error

#: A decimal integer whose meaning no parser can dispute (no sign +, no leading zero, no `_`, no spaces,
#: ASCII digits only), short enough to be far from any digit limit.
_PLAIN_INT = re.compile(r"-?(?:0|[1-9][0-9]{0,17})")


@dataclass(frozen=True)
class PlainCoercion(RuntimeParam):
    """Typer's coercion of one parameter, done directly for values that need none or a trivial one;
    any other value goes to Typer's own coercion (`build_runtime_param`, pydantic), built on first use.

    `plain`: the parameter is a str, int, bool or enum one without bounds or a parser (the only ones
    whose values are coerced here); for the others only None (handled by RuntimeParam.coerce, as
    Typer's own does) skips Typer's coercion."""

    descriptor: TypeDescriptor
    plain: bool

    def _coerce_value(self, value: Any, param: _TyperParameter, ctx: Context) -> Any:
        annotation = self.annotation
        if self.plain:
            if (annotation is str or annotation is bool) and type(value) is annotation:
                return value
            if annotation is int and (type(value) is int or (type(value) is str and _PLAIN_INT.fullmatch(value))):
                return int(value)
            if isinstance(annotation, type) and issubclass(annotation, Enum):
                if isinstance(value, annotation):
                    return value
                if type(value) is str:
                    try:
                        return coerce_cli_choice(
                            value, choices=list(annotation), case_sensitive=self.parameter_info.case_sensitive, ctx=ctx
                        )
                    except ValueError:
                        pass  # not a choice: Typer's coercion reports it, in its words
        typer_own = build_runtime_param(self.descriptor)
        param._runtime_param = typer_own
        return typer_own._coerce_value(value, param=param, ctx=ctx)


def plain_coercion(param: _TyperParameter) -> PlainCoercion:
    """The coercion `param` gets: values coerced here for a plain str, int, bool or enum parameter, None
    for any parameter, and Typer's own coercion for everything else (lists, tuples, files, paths,
    floats, numbers with bounds, custom parsers)."""
    desc = param.type_descriptor
    info = desc.parameter_info
    annotation = desc.annotation
    simple = annotation in (str, int, bool) or (isinstance(annotation, type) and issubclass(annotation, Enum))
    bounded = info.min is not None or info.max is not None or bool(info.clamp)
    plain = simple and not bounded and info.parser is None and desc.file_annotation is None
    return PlainCoercion(parameter_info=info, annotation=annotation, descriptor=desc, plain=plain)


def use_plain_coercion(command: ClickCommand, ctx: Context) -> None:
    """Give each parameter of `command` PlainCoercion (idempotent). `ctx` is the command's context or its
    parent's: the help option (made once, on first use) takes its names from it, as the command's own
    context inherits them (unless the command sets help names of its own)."""
    params: list[Any] = list(command.params)
    if "help_option_names" not in (command.context_settings or {}):
        params.append(command.get_help_option(ctx))
    for param in params:
        if isinstance(param, _TyperParameter) and param._runtime_param is None:
            param._runtime_param = plain_coercion(param)


class Group(TyperGroup):
    """The command group, with usage errors reported in convcalc's own form (and as JSON when asked)."""

    def main(  # type: ignore[override]  # same parameters as click's main, passed through
        self,
        args: list[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        argv = list(sys.argv[1:] if args is None else args)
        try:
            rv = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.TyperException as exc:  # click's ClickException: usage errors
            if type(exc).__name__ == "NoArgsIsHelpError":
                exc.show()  # type: ignore[attr-defined]  # prints the help, as the user asked for nothing
                sys.exit(int(getattr(exc, "exit_code", ExitCode.USAGE)))
            sys.exit(report_usage_error(exc, argv))
        except typer.Abort:
            print("aborted", file=sys.stderr)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        use_plain_coercion(self, ctx)  # the group's own options (--version, completion, --help)
        return super().parse_args(ctx, args)

    def get_command(self, ctx: Context, cmd_name: str) -> ClickCommand | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            use_plain_coercion(command, ctx)
        return command


class _Argument(TyperArgument):
    """An argument shown by its metavar alone: `STACK` in the usage line and in the argument list."""

    def _usage_display_name(self) -> str:
        name = self.display_name_raw
        return name if self.required else f"[{name}]"

    def display_type_rich(self, ctx: Any) -> str | None:
        return None if self.metavar is not None else super().display_type_rich(ctx)


class Command(TyperCommand):
    """A convcalc command: its arguments render as `STACK` (see _Argument)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if type(param) is TyperArgument:
                param.__class__ = _Argument
