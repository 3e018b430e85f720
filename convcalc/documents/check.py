"""The `check` JSON document, its findings, and the comparison against a baseline `rf` document.

One document holds every file checked: per file its `rf` report (so a `check` document can itself
serve as the next `--baseline`), every expectation with expected and actual values, every diagnostic
(suppressed ones marked), what changed against the baseline, and the Findings CI formats render.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from convcalc.analysis.contracts import ContractResult, StackCheck
from convcalc.diagnostics import Severity
from convcalc.documents.findings import Finding, Level
from convcalc.documents.parts import SCHEMA_VERSION, diagnostic_json, problem_json
from convcalc.documents.report import report_document
from convcalc.errors import ConvCalcError, FileProblemError, MismatchError, Problem, ResourceError
from convcalc.notation import dims_text

#: A diagnostic's severity as a Finding's level (SARIF's names).
LEVELS: dict[Severity, Level] = {Severity.INFO: "note", Severity.WARNING: "warning", Severity.ERROR: "error"}
#: What a baseline comparison looks at, per layer (the `rf` document's keys).
COMPARED = ("output", "rf", "jump", "params", "macs")


@dataclass(frozen=True)
class Change:
    """One difference against the baseline: `what` (`added`, `removed`, or one of COMPARED) of `layer`
    (None: the stack's totals), old and new values as text (None where there is none)."""

    layer: str | None
    what: str
    old: str | None
    new: str | None

    @property
    def message(self) -> str:
        """`rf 196×196 → 212×212`, `added (conv, output 64×56×56)`; the layer is the Finding's."""
        if self.what == "added":
            return f"added ({self.new})"
        if self.what == "removed":
            return f"removed (was {self.old})"
        total = "total " if self.layer is None else ""
        return f"{total}{self.what} {self.old} → {self.new}"


@dataclass(frozen=True)
class FileCheck:
    """What `check` found for one file: its check (None when it could not be analysed), the error that
    stopped it (invalid input, or with a run: a mismatch or the memory limit), the changes against a
    baseline (None without one) and whether it was run."""

    source: str
    check: StackCheck | None = None
    error: ConvCalcError | None = None
    changes: tuple[Change, ...] | None = None
    ran: bool = False
    #: Why the file fails (empty: it passes), filled by `verdict`.
    reasons: tuple[str, ...] = field(default=())

    @property
    def file(self) -> str:
        if self.check is not None and self.check.spec.file is not None:
            return self.check.spec.file
        return self.source


def verdict(result: FileCheck, fail_on: Severity | None, fail_on_change: bool) -> tuple[str, ...]:
    """Why `result` fails, one short phrase per reason (empty: it passes). `fail_on` None: diagnostics never fail."""
    reasons: list[str] = []
    if result.error is not None:
        kind = error_kind(result.error)
        problems = result.error.problems
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}, the first: " if len(problems) > 1 else ""
        reasons.append(f"{kind}: {count}{problems[0]}" if problems else kind)
    if result.check is not None:
        broken = len(result.check.broken)
        if broken:
            reasons.append(f"{broken} broken expectation{'s' if broken != 1 else ''}")
        failing = result.check.failing(fail_on)
        if failing:
            assert fail_on is not None
            reasons.append(f"{len(failing)} diagnostic{'s' if len(failing) != 1 else ''} at {fail_on} or worse")
    if fail_on_change and result.changes:
        reasons.append(f"{len(result.changes)} change{'s' if len(result.changes) != 1 else ''} against the baseline")
    return tuple(reasons)


def error_kind(exc: ConvCalcError) -> str:
    if isinstance(exc, MismatchError):
        return "run mismatch"
    if isinstance(exc, ResourceError):
        return "over the memory limit"
    return "invalid input"


# --------------------------------------------------------------------------- findings


def findings(result: FileCheck) -> list[Finding]:
    """Every reportable item of one file, in file order within each kind: errors, broken contracts,
    diagnostics (suppressed ones marked), changes against the baseline (as notes)."""
    out: list[Finding] = []
    if result.error is not None:
        rule = "run-mismatch" if isinstance(result.error, MismatchError) else "invalid-input"
        for p in result.error.problems:
            out.append(Finding(rule, "error", _problem_text(p), p.file or result.file, p.line, p.column, p.layer))
    check = result.check
    if check is not None:
        for r in check.broken:
            out.append(_contract_finding(r, result.file))
        for d in check.diagnostics:
            # The diagnostic's own location (inside a block: the line in the block, with the instance
            # and the call line) when the engine set one, else where its layer was read.
            at = d.diagnostic.location or d.where
            out.append(
                Finding(
                    d.diagnostic.code,
                    LEVELS[d.diagnostic.severity],
                    d.diagnostic.message,
                    at.file or result.file,
                    at.line,
                    at.column,
                    d.diagnostic.layer,
                    instance=d.diagnostic.instance,
                    suppressed=d.suppressed,
                    call_line=None if d.diagnostic.call is None else d.diagnostic.call.line,
                )
            )
    for c in result.changes or ():
        line, column = _layer_where(check, c.layer)
        out.append(Finding(f"baseline.{c.what}", "note", c.message, result.file, line, column, c.layer))
    return out


def _problem_text(p: Problem) -> str:
    """A problem without its file:line:column prefix (a Finding carries those)."""
    return Problem(p.message, None, None, None, p.layer, p.field).render()


def _contract_finding(r: ContractResult, file: str) -> Finding:
    return Finding(r.rule, "error", r.message, r.where.file or file, r.where.line, r.where.column, r.layer)


def _layer_where(check: StackCheck | None, layer: str | None) -> tuple[int | None, int | None]:
    if check is None or layer is None:
        return None, None
    try:
        loc = check.spec.layer(layer).location
    except KeyError:
        return None, None
    return loc.line, loc.column


# --------------------------------------------------------------------------- baseline


def baseline_reports(document: object, source: str) -> dict[str | None, dict[str, Any]]:
    """The `rf` reports in a baseline: an `rf --format json` document, or a `check --format json` one
    (every file's report), keyed by file. FileProblemError naming `source` when it is neither."""
    if isinstance(document, dict) and document.get("command") == "rf" and isinstance(document.get("layers"), list):
        return {document.get("file"): document}
    if isinstance(document, dict) and document.get("command") == "check" and isinstance(document.get("files"), list):
        out: dict[str | None, dict[str, Any]] = {}
        for entry in document["files"]:
            report = entry.get("report") if isinstance(entry, dict) else None
            if isinstance(report, dict) and isinstance(report.get("layers"), list):
                out[report.get("file")] = report
        return out
    raise FileProblemError(
        Problem(
            "is not a `convcalc rf --format json` (or `convcalc check --format json`) document",
            source,
            parameter="baseline",
        )
    )


def compare(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[Change, ...]:
    """What changed from the `rf` document `old` to `new`: per layer (by name) the output shape, receptive
    field, jump, params and MACs; layers added and removed; the stack's total params and MACs."""
    old_layers = {str(layer.get("name")): layer for layer in old.get("layers", []) if isinstance(layer, dict)}
    new_layers = {str(layer.get("name")): layer for layer in new.get("layers", []) if isinstance(layer, dict)}
    changes: list[Change] = []
    for name, layer in new_layers.items():
        before = old_layers.get(name)
        if before is None:
            changes.append(Change(name, "added", None, f"{layer.get('op')}, output {_shape(layer.get('output'))}"))
            continue
        for what in COMPARED:
            a, b = _value(before, what), _value(layer, what)
            if a != b:
                changes.append(Change(name, what, a, b))
    for name, layer in old_layers.items():
        if name not in new_layers:
            changes.append(Change(name, "removed", f"{layer.get('op')}, output {_shape(layer.get('output'))}", None))
    for what in ("params", "macs"):
        a, b = _text(_get(old, "summary", what)), _text(_get(new, "summary", what))
        if a != b:
            changes.append(Change(None, what, a, b))
    return tuple(changes)


def _get(doc: Mapping[str, Any], *keys: str) -> object:
    value: object = doc
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _text(value: object) -> str:
    return "unknown" if value is None else str(value)


def _shape(value: object) -> str:
    if not isinstance(value, dict):
        return "unknown"
    spatial = value.get("spatial")
    dims = [value.get("channels"), *(spatial if isinstance(spatial, list) else [])]
    return dims_text([d if isinstance(d, int) else None for d in dims])


def _value(layer: Mapping[str, Any], what: str) -> str:
    """One compared value of an `rf` layer as text, the way the tables write it."""
    if what == "output":
        return _shape(layer.get("output"))
    if what in ("rf", "jump"):
        fields = layer.get("field")
        if not isinstance(fields, list) or not fields:
            return "none"
        return "×".join("?" if not isinstance(f, dict) or f.get(what) is None else str(f.get(what)) for f in fields)
    return _text(layer.get(what))


# --------------------------------------------------------------------------- the document


def file_document(result: FileCheck) -> dict[str, Any]:
    check = result.check
    error = result.error
    return {
        "file": result.file,
        "ok": not result.reasons,
        "reasons": list(result.reasons),
        "error": None
        if error is None
        else {
            "kind": error_kind(error),
            "problems": [problem_json(p) for p in error.problems],
        },
        "expectations": None if check is None else [_contract_json(r) for r in check.contracts],
        "diagnostics": None
        if check is None
        else [
            {
                **diagnostic_json(d.diagnostic),
                "suppressed": d.suppressed,
                "line": d.where.line,
                "column": d.where.column,
            }
            for d in check.diagnostics
        ],
        "changes": None if result.changes is None else [_change_json(c) for c in result.changes],
        "ran": result.ran,
        "findings": [_finding_json(f) for f in findings(result)],
        "report": None if check is None else report_document(check.report),
    }


def _contract_json(r: ContractResult) -> dict[str, Any]:
    at = r.expectation.at
    return {
        "entry": r.expectation.index + 1,
        "check": r.check,
        "layer": r.layer,
        "at": None if at is None else [at.channels, *at.spatial],
        "ok": r.ok,
        "expected": r.expected,
        "actual": r.actual,
        "line": r.where.line,
        "column": r.where.column,
    }


def _change_json(c: Change) -> dict[str, Any]:
    return {"layer": c.layer, "what": c.what, "old": c.old, "new": c.new}


def _finding_json(f: Finding) -> dict[str, Any]:
    return {
        "rule": f.rule,
        "level": f.level,
        "message": f.message,
        "file": f.file,
        "line": f.line,
        "column": f.column,
        "layer": f.layer,
        "suppressed": f.suppressed,
    }


def check_document(results: Sequence[FileCheck], exit_code: int, fail_on: str) -> dict[str, Any]:
    """The whole `convcalc check --format json` document."""
    return {
        "convcalc_schema": SCHEMA_VERSION,
        "command": "check",
        "exit_code": exit_code,
        "fail_on": fail_on,
        "files": [file_document(r) for r in results],
        "summary": {
            "files": len(results),
            "failed": sum(1 for r in results if r.reasons),
            "invalid": sum(1 for r in results if r.check is None),
            "broken_expectations": sum(len(r.check.broken) for r in results if r.check is not None),
        },
    }


__all__ = ["Change", "FileCheck", "baseline_reports", "check_document", "compare", "findings", "verdict"]
