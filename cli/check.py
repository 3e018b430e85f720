"""convcalc check: many stack files in one call, their contracts (`expect:`), suppressions and a baseline.

The exit code combines every file: 1 when any file is invalid (it could not be checked), else 4 / 5 when
a `--run` mismatched / went over the memory limit, else 3 when a contract is broken, a diagnostic reaches
--fail-on or (with --fail-on-change) something changed against the baseline, else 0. Every file is checked
and reported whatever the others do.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from cli.adapter import Command
from cli.errors import ExitCode, user_errors
from cli.options import FailOn

if TYPE_CHECKING:
    from convcalc.documents.check import FileCheck
    from convcalc.documents.findings import Finding

#: Exit codes by precedence: the first one any file earns is the command's.
PRECEDENCE = (ExitCode.INVALID_INPUT, ExitCode.MISMATCH, ExitCode.RESOURCE, ExitCode.DIAGNOSTICS)


class CheckFormat(StrEnum):
    TEXT = "text"
    JSON = "json"
    GITHUB = "github"
    SARIF = "sarif"
    JUNIT = "junit"


def register(app: typer.Typer) -> None:
    """Add this module's commands to the convcalc app."""
    app.command(name="check", cls=Command)(check)


def check(
    files: Annotated[
        list[str],
        typer.Argument(
            help="Stack files (shell globs; a quoted pattern is expanded too), bundled names, or - for standard input.",
            metavar="FILE...",
            show_default=False,
        ),
    ],
    output_format: Annotated[
        CheckFormat,
        typer.Option(
            "--format",
            "-f",
            help="text: one line per finding; json: one document with every file; github: workflow-command "
            "annotations; sarif: SARIF 2.1.0; junit: JUnit XML (a testsuite per file).",
            case_sensitive=False,
        ),
    ] = CheckFormat.TEXT,
    fail_on: Annotated[
        FailOn,
        typer.Option(
            "--fail-on",
            help="Exit with code 3 when an unsuppressed diagnostic of this severity or worse is found.",
            case_sensitive=False,
        ),
    ] = FailOn.WARNING,
    ignore: Annotated[
        list[str] | None,
        typer.Option("--ignore", help="Suppress a diagnostic code in every file (repeatable).", metavar="CODE"),
    ] = None,
    baseline: Annotated[
        str | None,
        typer.Option(
            "--baseline",
            help="Report what changed against an earlier `convcalc rf --format json` (or check) document.",
            metavar="OLD.json",
        ),
    ] = None,
    fail_on_change: Annotated[
        bool, typer.Option("--fail-on-change", help="Exit with code 3 when anything changed against --baseline.")
    ] = False,
    run: Annotated[
        bool,
        typer.Option(
            "--run", help="Also run each stack with the NumPy reference ops and check every shape (as `run`)."
        ),
    ] = False,
) -> None:
    """Check stack files for CI: analysis, contracts (`expect:`), diagnostics at --fail-on (minus `ignore:`
    and --ignore), changes against --baseline. Exit 0 clean, 3 failed, 1 invalid input, 4/5 with --run."""
    json_out = output_format is CheckFormat.JSON
    with user_errors(json_errors=json_out):
        import json
        from dataclasses import replace

        from convcalc.diagnostics import CODES, Severity
        from convcalc.documents.check import check_document, verdict
        from convcalc.errors import Problem, SpecError

        codes = list(ignore or [])
        unknown = [c for c in codes if c not in CODES]
        if unknown:
            from convcalc.stack.fields import did_you_mean

            raise SpecError(
                [
                    Problem(
                        f"unknown diagnostic code '{c}'{did_you_mean(c, list(CODES))} Codes: {', '.join(CODES)}",
                        parameter="ignore",
                    )
                    for c in unknown
                ]
            )
        baselines = _read_baseline(baseline) if baseline is not None else None
        level = None if fail_on is FailOn.NEVER else Severity(fail_on.value)
        sources = _expand(files)
        results: list[FileCheck] = []
        for source in sources:
            result = _check_one(source, codes, run)
            if baselines is not None:
                result = _with_changes(result, baselines, len(sources))
            results.append(replace(result, reasons=verdict(result, level, fail_on_change)))
        code = _exit_code(results)
        if json_out:
            print(json.dumps(check_document(results, int(code), fail_on.value), indent=2))
        elif output_format in (CheckFormat.GITHUB, CheckFormat.SARIF, CheckFormat.JUNIT):
            from cli.render_findings import emit_findings
            from convcalc.documents.check import findings

            # A broken contract fails the run whatever --fail-on says, so JUnit fails its case too.
            threshold = FailOn.ERROR if fail_on is FailOn.NEVER else fail_on
            emit_findings(
                output_format.value,
                [f for result in results for f in findings(result)],
                [result.file for result in results],
                threshold,
            )
        else:
            _print_text(results, level)
        for result in results:
            if result.reasons:
                print(f"check: {result.file}: {'; '.join(result.reasons)}", file=sys.stderr)
    if code is not ExitCode.OK:
        failed = sum(1 for r in results if r.reasons)
        print(
            f"check: {failed} of {len(results)} file{'s' if len(results) != 1 else ''} failed (exit {int(code)})",
            file=sys.stderr,
        )
    raise typer.Exit(int(code))


def _expand(files: list[str]) -> list[str]:
    """The arguments with quoted glob patterns expanded (shells expand unquoted ones); a pattern matching
    nothing is kept, so its file reports the problem."""
    import glob
    import os

    out: list[str] = []
    for arg in files:
        if arg != "-" and not os.path.exists(arg) and any(c in arg for c in "*?["):
            matches = sorted(glob.glob(arg, recursive=True))
            out.extend(matches or [arg])
        else:
            out.append(arg)
    return out


def _read_baseline(path: str) -> dict[str | None, dict[str, object]]:
    import json

    from convcalc.documents.check import baseline_reports
    from convcalc.errors import FileProblemError, Problem

    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except FileNotFoundError:
        raise FileProblemError(Problem("no such file", path, parameter="baseline")) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise FileProblemError(Problem(f"cannot be read as JSON: {exc}", path, parameter="baseline")) from None
    return baseline_reports(document, path)


def _check_one(source: str, ignore: list[str], run: bool) -> FileCheck:
    from cli.stacks import read_stack
    from convcalc.analysis.contracts import check_stack
    from convcalc.documents.check import FileCheck
    from convcalc.errors import ConvCalcError

    label = "<stdin>" if source == "-" else source  # as the loader names standard input
    try:
        spec = read_stack(source, None, False)
        checked = check_stack(spec, ignore)
    except ConvCalcError as exc:
        return FileCheck(label, error=exc)
    if run:
        from convcalc.execution.runner import run_stack

        try:
            run_stack(spec, report=checked.report, check=True)
        except ConvCalcError as exc:
            return FileCheck(label, checked, error=exc, ran=True)
    return FileCheck(label, checked, ran=run)


def _with_changes(result: FileCheck, baselines: dict[str | None, dict[str, object]], count: int) -> FileCheck:
    """`result` with what changed against its baseline report: the one of the same file, or the only one
    when one file is checked against one report."""
    from dataclasses import replace

    from convcalc.documents.check import compare
    from convcalc.documents.report import report_document

    if result.check is None:
        return result
    old = baselines.get(result.file)
    if old is None and count == 1 and len(baselines) == 1:
        old = next(iter(baselines.values()))
    if old is None:
        return result
    return replace(result, changes=compare(old, report_document(result.check.report)))


def _exit_code(results: list[FileCheck]) -> ExitCode:
    from convcalc.errors import MismatchError, ResourceError

    earned: set[ExitCode] = set()
    for r in results:
        if r.error is not None:
            if isinstance(r.error, MismatchError):
                earned.add(ExitCode.MISMATCH)
            elif isinstance(r.error, ResourceError):
                earned.add(ExitCode.RESOURCE)
            else:
                earned.add(ExitCode.INVALID_INPUT)
        if r.reasons:
            earned.add(ExitCode.DIAGNOSTICS)
    return next((code for code in PRECEDENCE if code in earned), ExitCode.OK)


#: A finding's level as the text report writes it (the word `rf` uses for a diagnostic's severity).
_WORDS = {"note": "info", "warning": "warning", "error": "error"}


def _print_text(results: list[FileCheck], level: object) -> None:
    """One line per finding (`net.yaml:12:5: warning checkerboard [up] ...`), then one status line per file.

    Info diagnostics are listed only with --fail-on info (the JSON lists every one); suppressed ones
    are counted, not listed.
    """
    from convcalc.diagnostics import Severity
    from convcalc.documents.check import findings

    show_info = level is Severity.INFO
    for result in results:
        listed = findings(result)
        for f in listed:
            if f.suppressed or (f.level == "note" and not show_info and not f.rule.startswith("baseline.")):
                continue
            print(_line(f))
        print(f"{result.file}: {'FAILED' if result.reasons else 'ok'} ({_status(result, listed)})")


def _line(f: Finding) -> str:
    where = f.file or "<stack>"
    if f.line is not None:
        where += f":{f.line}"
        if f.column is not None:
            where += f":{f.column}"
    word = "change" if f.rule.startswith("baseline.") else _WORDS[f.level]
    rule = "" if f.rule.startswith("baseline.") else f" {f.rule}"
    layer = f" [{f.layer}]" if f.layer is not None else ""
    return f"{where}: {word}{rule}{layer} {f.message}"


def _status(result: FileCheck, listed: list[Finding]) -> str:
    parts: list[str] = []
    check = result.check
    if check is None:
        return "invalid input, not checked"
    layers = len(check.report.layers)
    parts.append(f"{layers} layer{'s' if layers != 1 else ''}")
    if check.contracts:
        met = sum(1 for r in check.contracts if r.ok)
        parts.append(f"{met} of {len(check.contracts)} expectation{'s' if len(check.contracts) != 1 else ''} met")
    counts: dict[str, int] = {}
    for d in check.diagnostics:
        if not d.suppressed:
            counts[str(d.diagnostic.severity)] = counts.get(str(d.diagnostic.severity), 0) + 1
    parts.extend(f"{n} {word}" for word, n in counts.items())
    suppressed = sum(1 for f in listed if f.suppressed)
    if suppressed:
        parts.append(f"{suppressed} suppressed")
    if result.changes is not None:
        parts.append(
            f"{len(result.changes)} changes against the baseline"
            if result.changes
            else "no changes against the baseline"
        )
    if result.ran:
        parts.append("run: ok" if result.error is None else "run: failed")
    return ", ".join(parts)
