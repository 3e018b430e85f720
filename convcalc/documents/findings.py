"""Findings: what a CI format reports — a diagnostic or a broken contract — with where it was written.

The renderers for GitHub workflow commands, SARIF 2.1.0 and JUnit XML read only this type, so
`rf` and `check` report the same layer the same way in every format. Each renderer takes the
findings of any number of stack files (one document for the whole run).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, Literal
from xml.etree import ElementTree

from convcalc.analysis.report import StackReport
from convcalc.diagnostics import CODES, Diagnostic, Severity

#: SARIF's levels; a diagnostic's severity maps info → note, warning → warning, error → error.
Level = Literal["note", "warning", "error"]

LEVEL_OF: dict[Severity, Level] = {Severity.INFO: "note", Severity.WARNING: "warning", Severity.ERROR: "error"}
_LEVEL_RANK: dict[Level, int] = {"note": 0, "warning": 1, "error": 2}

#: Where SARIF viewers send a reader for the tool (the package's page under its distribution name).
INFORMATION_URI = "https://pypi.org/project/convcalc/"
SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"


@dataclass(frozen=True)
class Finding:
    """One reportable result.

    `rule` is a diagnostic code (`checkerboard`) or a contract's id (`expect.rf`); `file`, `line`,
    `column` (1-based) locate the layer (or the `expect:` entry) in its stack file, None when the
    stack did not come from a file; `instance` names the block instance inside which the layer was
    written (`layer3.2`), None outside blocks, and `call_line` the line of that instance's block use.
    A suppressed finding is still reported, marked so, and never fails a run.
    """

    rule: str
    level: Level
    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None
    layer: str | None = None
    instance: str | None = None
    suppressed: bool = False
    call_line: int | None = None


def findings_of(
    report: StackReport, file: str | None = None, suppressed: Callable[[Diagnostic], bool] | None = None
) -> list[Finding]:
    """The findings of one analysed stack: one per diagnostic, in layer order.

    `file` is the path to report (as the user gave it; default: where the layer was read, else the
    report's file, e.g. a model file without lines); `suppressed` says which diagnostics are silenced.
    """
    found = []
    for d in report.diagnostics:
        where = d.location
        found.append(
            Finding(
                rule=d.code,
                level=LEVEL_OF[d.severity],
                message=d.message,
                file=file if file is not None else where.file if where is not None else report.file,
                line=None if where is None else where.line,
                column=None if where is None else where.column,
                layer=d.layer,
                instance=d.instance,
                suppressed=suppressed is not None and suppressed(d),
                call_line=None if d.call is None else d.call.line,
            )
        )
    return found


def at_or_above(level: Level, threshold: Level | None) -> bool:
    """Whether `level` reaches `threshold` (None: nothing does)."""
    return threshold is not None and _LEVEL_RANK[level] >= _LEVEL_RANK[threshold]


def context(f: Finding) -> str:
    """'[layer] (in layer3.2, used at line 33) ': what the message needs besides the file position."""
    parts = []
    if f.layer is not None:
        parts.append(f"[{f.layer}]")
    if f.instance is not None:
        parts.append(f"(in {f.instance}" + (f", used at line {f.call_line})" if f.call_line is not None else ")"))
    return " ".join(parts) + " " if parts else ""


# -- GitHub workflow commands ---------------------------------------------------------------------
#: GitHub's annotation commands by level (`::notice`, `::warning`, `::error`).
_GITHUB_COMMAND: dict[Level, str] = {"note": "notice", "warning": "warning", "error": "error"}


def escape_data(text: str) -> str:
    """A workflow command's message as the runner reads it back: `%`, CR and LF percent-encoded."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value: as data, and `:` and `,` too (they delimit properties)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotations(findings: Iterable[Finding]) -> str:
    """One `::warning file=…,line=…,col=…,title=…::message` line per unsuppressed finding
    (GitHub Actions turns them into annotations on the file's line); '' when there are none."""
    lines = []
    for f in findings:
        if f.suppressed:
            continue
        props = []
        if f.file is not None:
            props.append(("file", f.file))
            if f.line is not None:
                props.append(("line", str(f.line)))
            if f.column is not None:
                props.append(("col", str(f.column)))
        props.append(("title", f"convcalc {f.rule}"))
        head = ",".join(f"{key}={escape_property(value)}" for key, value in props)
        lines.append(f"::{_GITHUB_COMMAND[f.level]} {head}::{escape_data(context(f) + f.message)}\n")
    return "".join(lines)


# -- SARIF 2.1.0 ----------------------------------------------------------------------------------
def artifact_uri(path: str) -> str:
    """A file as a SARIF artifactLocation uri: a relative path stays relative (a URI reference with `/`
    separators, percent-encoded), an absolute one becomes a file: URI."""
    pure = PurePath(path)
    if pure.is_absolute():
        return "file://" + urllib.parse.quote(pure.as_posix())
    return urllib.parse.quote(pure.as_posix(), safe="/:")


def sarif_log(
    findings: Sequence[Finding], version: str, descriptions: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A SARIF 2.1.0 log with one run: convcalc as the driver, a rule per diagnostic code (plus any other rule
    the findings name, described by `descriptions`, e.g. contracts), one result per finding; a suppressed
    finding carries an external suppression, as SARIF asks, instead of being left out."""
    rules = {code: text for code, (_, text) in CODES.items()}
    for f in findings:
        if f.rule not in rules:
            rules[f.rule] = (descriptions or {}).get(f.rule, f.rule)
    index = {rule: i for i, rule in enumerate(rules)}
    results = []
    for f in findings:
        result: dict[str, Any] = {
            "ruleId": f.rule,
            "ruleIndex": index[f.rule],
            "level": f.level,
            "message": {"text": context(f) + f.message},
        }
        if f.file is not None:
            physical: dict[str, Any] = {"artifactLocation": {"uri": artifact_uri(f.file)}}
            if f.line is not None:
                region: dict[str, int] = {"startLine": f.line}
                if f.column is not None:
                    region["startColumn"] = f.column
                physical["region"] = region
            location: dict[str, Any] = {"physicalLocation": physical}
            if f.layer is not None:
                location["logicalLocations"] = [{"fullyQualifiedName": f.layer, "kind": "member"}]
            result["locations"] = [location]
        properties = {key: value for key, value in (("layer", f.layer), ("instance", f.instance)) if value is not None}
        if properties:
            result["properties"] = properties
        if f.suppressed:
            result["suppressions"] = [{"kind": "external", "justification": "ignored by the stack file or --ignore"}]
        results.append(result)
    driver = {
        "name": "convcalc",
        "version": version,
        "informationUri": INFORMATION_URI,
        "rules": [
            {"id": rule, "name": rule, "shortDescription": {"text": text}, "defaultConfiguration": _default(rule)}
            for rule, text in rules.items()
        ],
    }
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{"tool": {"driver": driver}, "columnKind": "unicodeCodePoints", "results": results}],
    }


def _default(rule: str) -> dict[str, str]:
    """A rule's default level: its diagnostic severity; a contract (not a diagnostic code) is an error."""
    return {"level": LEVEL_OF[CODES[rule][0]] if rule in CODES else "error"}


# -- JUnit XML ------------------------------------------------------------------------------------
def junit_xml(findings: Sequence[Finding], files: Sequence[str], fail_on: Level | None = "error") -> str:
    """JUnit XML: one <testsuite> per stack file (those of `files` in order, then any other file the
    findings name), one <testcase> per (layer, rule) found, named `layer: rule`.

    A testcase fails (<failure>) when one of its unsuppressed findings is at or above `fail_on` (the
    level `--fail-on` names, so the XML fails exactly when the exit code does; None: never);
    one below it passes, its messages in <system-out>; one whose findings are all suppressed is
    <skipped>. A file without findings has one passing testcase, `analysis`."""
    order = list(dict.fromkeys([*files, *(f.file or "" for f in findings)]))
    root = ElementTree.Element("testsuites", name="convcalc")
    totals = {"tests": 0, "failures": 0, "skipped": 0}
    for file in order:
        cases: dict[tuple[str, str], list[Finding]] = {}
        for f in findings:
            if (f.file or "") == file:
                cases.setdefault((f.layer or "", f.rule), []).append(f)
        suite = ElementTree.SubElement(root, "testsuite", name=file or "<no file>")
        counts = {"tests": 0, "failures": 0, "skipped": 0}
        if not cases:
            ElementTree.SubElement(suite, "testcase", name="analysis", classname=file)
            counts["tests"] += 1
        for (layer, rule), found in cases.items():
            case = ElementTree.SubElement(suite, "testcase", name=f"{layer}: {rule}" if layer else rule, classname=file)
            counts["tests"] += 1
            live = [f for f in found if not f.suppressed]
            text = "\n".join(f"{_position(f)}{f.level}: {context(f)}{f.message}" for f in found)
            failing = [f for f in live if at_or_above(f.level, fail_on)]
            if failing:
                counts["failures"] += 1
                failure = ElementTree.SubElement(case, "failure", message=failing[0].message, type=rule)
                failure.text = text
            elif not live:
                counts["skipped"] += 1
                ElementTree.SubElement(case, "skipped", message="suppressed")
            else:
                ElementTree.SubElement(case, "system-out").text = text
        suite.set("tests", str(counts["tests"]))
        suite.set("failures", str(counts["failures"]))
        suite.set("errors", "0")
        suite.set("skipped", str(counts["skipped"]))
        for key in totals:
            totals[key] += counts[key]
    root.set("tests", str(totals["tests"]))
    root.set("failures", str(totals["failures"]))
    root.set("errors", "0")
    root.set("skipped", str(totals["skipped"]))
    ElementTree.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(root, encoding="unicode") + "\n"


def _position(f: Finding) -> str:
    """'net.yaml:12:5: ' (as far as known), '' without a file."""
    if f.file is None:
        return ""
    return ":".join(str(p) for p in (f.file, f.line, f.column) if p is not None) + ": "
