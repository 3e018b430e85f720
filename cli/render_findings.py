"""Findings in the CI formats: GitHub workflow commands, SARIF 2.1.0, JUnit XML (convcalc.documents.findings)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from cli.options import FailOn
from convcalc.documents.findings import Finding, Level, github_annotations, junit_xml, sarif_log

#: The JUnit failure threshold `--fail-on` names (never: no testcase fails), so the XML fails when the exit code does.
FAIL_LEVEL: dict[FailOn, Level | None] = {
    FailOn.NEVER: None,
    FailOn.INFO: "note",
    FailOn.WARNING: "warning",
    FailOn.ERROR: "error",
}


def findings_text(output_format: str, findings: Sequence[Finding], files: Sequence[str], fail_on: FailOn) -> str:
    """The findings of `files` as one document in `output_format` (github, sarif or junit)."""
    if output_format == "github":
        return github_annotations(findings)
    if output_format == "sarif":
        from cli.render import dumps
        from convcalc import __version__

        return dumps(sarif_log(findings, __version__)) + "\n"
    if output_format == "junit":
        return junit_xml(findings, files, FAIL_LEVEL[fail_on])
    raise ValueError(f"not a findings format: {output_format}")


def emit_findings(output_format: str, findings: Sequence[Finding], files: Sequence[str], fail_on: FailOn) -> None:
    """Write the findings document to stdout."""
    sys.stdout.write(findings_text(output_format, findings, files, fail_on))
