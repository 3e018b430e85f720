"""The exceptions convcalc raises for bad input; the CLI maps each class to one exit code."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the user's input, with everything needed to find and fix it.

    `line` and `column` are 1-based, as editors show them. `layer` is the layer's name (or
    `#index` when it has none yet); `field` is the key in the layer mapping. `parameter` names the
    argument of a library function the problem is about (`max_memory`, `input`), for problems with
    what a caller passed rather than with a stack file; the CLI shows it as its option (`--max-memory`).
    `allowed_by` names the argument that lets through what was refused (`allow_rank_change`); it is
    rendered after the message, as an option by the CLI.
    """

    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None
    layer: str | None = None
    field: str | None = None
    parameter: str | None = None
    allowed_by: str | None = None

    def __str__(self) -> str:
        return self.render()

    def render(self, parameter_name: str | None = None, allowed_by_name: str | None = None) -> str:
        """The problem as one line; `parameter_name` replaces `parameter 'x'` (the CLI passes `option --x`),
        `allowed_by_name` likewise for `allowed_by`."""
        where = ""
        if self.file is not None:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            where += ": "
        who = ""
        if self.layer is not None:
            who = f"layer {self.layer}"
            if self.field is not None:
                who += f", field '{self.field}'"
            who += ": "
        elif self.field is not None:
            who = f"field '{self.field}': "
        if self.parameter is not None:
            who = f"{parameter_name or f'parameter {self.parameter!r}'}: {who}"
        allowed = ""
        if self.allowed_by is not None:
            allowed = f" ({allowed_by_name or f'parameter {self.allowed_by!r}'} allows it)"
        return f"{where}{who}{self.message}{allowed}"


class ConvCalcError(Exception):
    """Base class: a problem with what the user asked for (never a bug in convcalc)."""

    def __init__(self, problems: list[Problem] | Problem | str) -> None:
        if isinstance(problems, str):
            problems = [Problem(problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class SpecError(ConvCalcError):
    """The stack file (or a command-line layer description) is malformed: wrong types, unknown keys..."""


class ShapeError(ConvCalcError):
    """A layer is well formed but PyTorch would refuse it on this input (too small, bad padding...)."""


class FileProblemError(ConvCalcError):
    """The file cannot be read at all: missing, a directory, not UTF-8, not YAML."""


class ResourceError(ConvCalcError):
    """The request would need more memory or time than the user allowed."""


class MismatchError(ConvCalcError):
    """A reference run produced a shape different from the one the arithmetic predicted."""
