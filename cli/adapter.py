"""How convcalc adapts Typer: usage errors in convcalc's own form, and help that reads like the README.

Typer writes a required argument as `{stack}` in the usage line and `stack <str>` in the argument list;
convcalc's commands show `STACK`, as their documentation does.
"""

from __future__ import annotations

import sys
from typing import Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup

from cli.errors import ExitCode, report_usage_error


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
