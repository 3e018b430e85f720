"""Exit codes and the one boundary where library errors become messages on stderr."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum

import typer

from cli.options import FailOn
from convcalc.diagnostics import Severity
from convcalc.errors import (
    ConvCalcError,
    FileProblemError,
    MismatchError,
    Problem,
    ResourceError,
    ShapeError,
    SpecError,
)


class ExitCode(IntEnum):
    """Stable exit codes; shell scripts in CI rely on them (documented in the README)."""

    OK = 0
    INVALID_INPUT = 1  # the stack file or an option value is wrong, or PyTorch would refuse a layer
    USAGE = 2  # unknown command or option, missing argument (Typer's own code)
    DIAGNOSTICS = 3  # diagnostics at or above --fail-on were found; `check`: also a broken contract (expect:)
    MISMATCH = 4  # `run`: a layer's actual shape differs from the predicted one
    RESOURCE = 5  # `run`: the estimated memory exceeds --max-memory
    INTERNAL = 70  # a bug in convcalc (EX_SOFTWARE); --traceback or CONVCALC_TRACEBACK=1 shows it
    BROKEN_PIPE = 141  # stdout closed early (`| head`): what a Unix tool killed by SIGPIPE reports


#: The command-line option that carries each library parameter (the library never names a flag).
OPTION_FLAGS: dict[str, str] = {
    "input": "--input",
    "input_size": "--input",
    "max_memory": "--max-memory",
    "weights": "--weights",
    "dtype": "--dtype",
    "seed": "--seed",
    "batch": "--batch",
    "data": "--data",
    "save": "--save",
    "kernel": "--kernel",
    "stride": "--stride",
    "padding": "--padding",
    "dilation": "--dilation",
    "output_padding": "--output-padding",
    "target": "--target",
    "rank": "--dims",
    "groups": "--groups",
    "in_channels": "--cin",
    "out_channels": "--cout",
    "ceil_mode": "--ceil",
    "explain": "--explain",
    "format": "--format",
    "allow_rank_change": "--change-rank",
}


def flag_of(parameter: str | None) -> str | None:
    """The option that carries a library parameter (`max_memory` → `--max-memory`)."""
    if parameter is None:
        return None
    return OPTION_FLAGS.get(parameter, "--" + parameter.replace("_", "-"))


def option_of(problem: Problem) -> str | None:
    """The option a problem is about (`--max-memory`), or None for problems with a file or a layer."""
    return flag_of(problem.parameter)


def problem_text(problem: Problem) -> str:
    """One problem as the CLI prints it: options named as the user typed them."""
    from convcalc.notation import printable

    option = option_of(problem)
    # One line, read left to right: a name with a newline or a bidi override is shown escaped.
    return printable(problem.render(None if option is None else f"option {option}", flag_of(problem.allowed_by)))


_KIND = {
    FileProblemError: "file",
    SpecError: "invalid-stack",
    ShapeError: "invalid-shape",
    MismatchError: "shape-mismatch",
    ResourceError: "resource",
}


def exit_code_for(exc: ConvCalcError) -> ExitCode:
    if isinstance(exc, MismatchError):
        return ExitCode.MISMATCH
    if isinstance(exc, ResourceError):
        return ExitCode.RESOURCE
    return ExitCode.INVALID_INPUT


def _kind(exc: ConvCalcError) -> str:
    if all(p.parameter is not None for p in exc.problems) and not isinstance(exc, (MismatchError, ResourceError)):
        return "invalid-option"
    for cls, kind in _KIND.items():
        if isinstance(exc, cls):
            return kind
    return "error"


def broken_pipe() -> ExitCode:
    """The reader went away (`convcalc rf net.yaml | head`): silence stdout and stop like other Unix tools."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return ExitCode.BROKEN_PIPE


@contextmanager
def user_errors(json_errors: bool = False) -> Iterator[None]:
    """Turn ConvCalcError into one stderr line per problem and its exit code; bugs into exit 70.

    With `json_errors`, stderr gets one JSON object instead, so scripts can parse failures too.
    """
    try:
        yield
    except ConvCalcError as exc:
        code = exit_code_for(exc)
        if json_errors:
            from convcalc.documents.parts import problem_json  # only for JSON errors: not on the start-up path

            payload = {
                "convcalc_schema": 1,
                "error": {
                    "kind": _kind(exc),
                    "exit_code": int(code),
                    "problems": [
                        {**problem_json(p), "option": option_of(p), "allowed_by": flag_of(p.allowed_by)}
                        for p in exc.problems
                    ],
                },
            }
            import json  # only for JSON errors: not on the start-up path

            print(json.dumps(payload, indent=2), file=sys.stderr)
        else:
            for problem in exc.problems:
                print(f"error: {problem_text(problem)}", file=sys.stderr)
        raise typer.Exit(int(code)) from None
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except BrokenPipeError:
        raise typer.Exit(int(broken_pipe())) from None
    except Exception as exc:
        if os.environ.get("CONVCALC_TRACEBACK"):
            raise
        print(
            f"internal error: {type(exc).__name__}: {exc}\n"
            "This is a bug in convcalc. Run again as convcalc --traceback ... (or with CONVCALC_TRACEBACK=1) to see "
            "the traceback and report it.",
            file=sys.stderr,
        )
        raise typer.Exit(int(ExitCode.INTERNAL)) from None


def _json_requested(argv: list[str]) -> bool:
    """Whether the command line asks for JSON (`--format json`, `--format=json`, `-f json`, `-fjson`)."""
    for i, arg in enumerate(argv):
        low = arg.lower()
        if low in ("--format=json", "-fjson"):
            return True
        if arg in ("--format", "-f") and i + 1 < len(argv) and argv[i + 1].lower() == "json":
            return True
    return False


_PYDANTIC = (
    (re.compile(r"Input should be a valid integer.*"), "must be an integer"),
    (re.compile(r"Input should be a valid number.*"), "must be a number"),
    (re.compile(r"Input should be "), "must be "),
    (re.compile(r"Value error, "), ""),
)


def _given_value(argv: list[str], opts: list[str]) -> str | None:
    """The value the user wrote after one of `opts` (the last occurrence wins, as in the parser)."""
    value = None
    for i, arg in enumerate(argv):
        for opt in opts:
            if arg == opt and i + 1 < len(argv):
                value = argv[i + 1]
            elif arg.startswith(opt + "="):
                value = arg[len(opt) + 1 :]
    return value


def report_usage_error(exc: Exception, argv: list[str]) -> int:
    """Print a usage error (unknown option, bad value, missing argument) on stderr, naming the option and
    the value given, as one `error:` line and the usage line (one JSON object when JSON was asked for);
    returns its exit code (2)."""
    code = int(getattr(exc, "exit_code", ExitCode.USAGE))
    param = getattr(exc, "param", None)
    opts = [o for o in getattr(param, "opts", []) if o.startswith("-")]
    format_message = getattr(exc, "format_message", None)
    message = format_message() if callable(format_message) else str(exc)
    option = getattr(exc, "option_name", None)  # unknown options and options missing their value
    if opts:
        option = max(opts, key=len)  # the long form
        if re.match(r"^Missing option", message):
            message = "is required"
        message = re.sub(r"^Invalid value for [^:]*: ", "", message)
        for pattern, text in _PYDANTIC:
            message = pattern.sub(text, message)
        message = message.rstrip(".")
        given = _given_value(argv, opts)
        if given is not None and repr(given) not in message:
            message += f"; got {given!r}"
    elif param is not None and getattr(param, "param_type_name", "") == "argument":
        message = message.replace(f"'{param.name}'", param.metavar or param.name.upper())
    message = message[:1].lower() + message[1:].rstrip(".")
    ctx = getattr(exc, "ctx", None)
    usage = ctx.get_usage().removeprefix("Usage: ").strip() if ctx is not None else None
    command = ctx.command_path if ctx is not None else "convcalc"
    if _json_requested(argv):
        payload = {
            "convcalc_schema": 1,
            "error": {
                "kind": "usage",
                "exit_code": code,
                "usage": usage,
                "problems": [
                    {
                        "file": None,
                        "line": None,
                        "column": None,
                        "layer": None,
                        "field": None,
                        "option": option,
                        "message": message,
                    }
                ],
            },
        }
        import json

        print(json.dumps(payload, indent=2), file=sys.stderr)
    else:
        print(f"error: {f'option {option}: ' if option else ''}{message}", file=sys.stderr)
        if usage:
            print(f"usage: {usage}  (see {command} --help)", file=sys.stderr)
    return code


def fail_if(report_worst: Severity | None, fail_on: FailOn) -> None:
    """Exit 3 when the worst diagnostic reaches the --fail-on level."""
    if fail_on is FailOn.NEVER or report_worst is None:
        return
    if report_worst.rank >= Severity(fail_on.value).rank:
        raise typer.Exit(int(ExitCode.DIAGNOSTICS))
