"""Options shared by several commands, defined once."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from cli.terminal import ColorMode


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"
    MARKDOWN = "markdown"


class FailOn(StrEnum):
    NEVER = "never"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


FormatOpt = Annotated[
    OutputFormat,
    typer.Option("--format", "-f", help="Output format: a table, JSON, CSV or Markdown.", case_sensitive=False),
]
InputOpt = Annotated[
    str | None,
    typer.Option(
        "--input",
        "-i",
        help="Override the stack's input shape: channels then spatial sizes, e.g. 3x512x512 (? = unknown).",
        metavar="CxHxW",
    ),
]
FailOnOpt = Annotated[
    FailOn,
    typer.Option(
        "--fail-on",
        help="Exit with code 3 when a diagnostic of this severity or worse is found.",
        case_sensitive=False,
    ),
]
ColorOpt = Annotated[
    ColorMode,
    typer.Option(
        "--color",
        help="Colour: auto (on a terminal, unless NO_COLOR is set; FORCE_COLOR forces it), always or never.",
        case_sensitive=False,
    ),
]
ChangeRankOpt = Annotated[
    bool,
    typer.Option(
        "--change-rank",
        help="Let --input change the number of spatial axes (e.g. 3x224 reads a 2-D stack as 1-D).",
    ),
]


class ReportFormat(StrEnum):
    """`rf`'s formats: OutputFormat's, and the CI formats that report the diagnostics only (cli.render_findings)."""

    TABLE = "table"
    JSON = "json"
    CSV = "csv"
    MARKDOWN = "markdown"
    GITHUB = "github"
    SARIF = "sarif"
    JUNIT = "junit"


#: The formats that report findings (diagnostics, broken contracts) rather than the whole report.
FINDINGS_FORMATS = frozenset({ReportFormat.GITHUB, ReportFormat.SARIF, ReportFormat.JUNIT})

ReportFormatOpt = Annotated[
    ReportFormat,
    typer.Option(
        "--format",
        "-f",
        help="Output format: a table, JSON, CSV or Markdown; or the diagnostics as GitHub workflow-command "
        "annotations (github), SARIF 2.1.0 (sarif) or JUnit XML (junit).",
        case_sensitive=False,
    ),
]
QuietOpt = Annotated[
    bool,
    typer.Option(
        "--quiet",
        "-q",
        help="Print nothing on success; errors, and the diagnostics that fail --fail-on, still go to stderr.",
    ),
]


class GatesMode(StrEnum):
    TRUE = "true"
    CONSTANT = "constant"


GatesOpt = Annotated[
    GatesMode,
    typer.Option(
        "--gates",
        help="true: fields as they are (global after a squeeze-and-excitation gate); constant: also the "
        "fields with every gate that reads a global pool taken as a per-channel constant (the spatial path).",
        case_sensitive=False,
    ),
]
