"""Checking a stack against its contracts (`expect:`) and suppressions (`ignore:`): what `convcalc check` runs.

Every expectation is measured on the same StackReport `rf` prints (or, with `at:` or `accepts:`, on the
report of the same stack at another input), so a contract and the table never disagree.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

from convcalc.analysis.engine import analyze
from convcalc.analysis.report import LayerReport, StackReport
from convcalc.diagnostics import Diagnostic, Severity
from convcalc.errors import ConvCalcError
from convcalc.notation import dims_text, fraction_text
from convcalc.stack.contracts import Expectation, Suppression
from convcalc.stack.spec import InputSpec, Location, StackSpec, axis_label

#: The checks of an expectation, in the order they are reported; a result's rule is `expect.<check>`.
CHECKS = ("rf", "jump", "shape", "params", "macs", "forbid", "accepts")
#: How many refused sizes an `accepts:` result names (the count says how many there are).
SHOWN_SIZES = 5


@dataclass(frozen=True)
class ContractResult:
    """One check of one expectation: met (`ok`) or broken, with what was expected and what was found.

    `layer` is the layer measured (None: the whole stack); `where` is the check's key in the file.
    """

    expectation: Expectation
    check: str
    ok: bool
    expected: str
    actual: str
    layer: str | None
    where: Location

    @property
    def rule(self) -> str:
        return f"expect.{self.check}"

    @property
    def message(self) -> str:
        at = self.expectation.at
        where = "" if at is None else f" at input {dims_text([at.channels, *at.spatial])}"
        return f"{self.check}{where} expected {self.expected}, got {self.actual}"


@dataclass(frozen=True)
class CheckedDiagnostic:
    """A diagnostic of the stack, where its layer was written, and whether `ignore:` / the caller suppressed it."""

    diagnostic: Diagnostic
    suppressed: bool
    where: Location


@dataclass(frozen=True)
class StackCheck:
    """A stack, its report, every contract result and every diagnostic (suppressed ones marked)."""

    spec: StackSpec
    report: StackReport
    contracts: tuple[ContractResult, ...]
    diagnostics: tuple[CheckedDiagnostic, ...]

    @cached_property
    def broken(self) -> tuple[ContractResult, ...]:
        return tuple(r for r in self.contracts if not r.ok)

    def failing(self, level: Severity | None) -> tuple[CheckedDiagnostic, ...]:
        """The unsuppressed diagnostics at `level` or worse (none for None: diagnostics never fail)."""
        if level is None:
            return ()
        return tuple(d for d in self.diagnostics if not d.suppressed and d.diagnostic.severity.rank >= level.rank)


def check_stack(spec: StackSpec, ignore: Sequence[str] = ()) -> StackCheck:
    """Analyse `spec`, evaluate its `expect:` entries and mark the diagnostics its `ignore:` (or the
    codes in `ignore`) suppresses. ShapeError when the stack itself is refused at its input."""
    report = analyze(spec)
    checked = tuple(
        CheckedDiagnostic(d, is_suppressed(d, spec.ignore, ignore), _layer_location(spec, d.layer))
        for d in report.diagnostics
    )
    return StackCheck(spec, report, evaluate(spec, report), checked)


def is_suppressed(d: Diagnostic, suppressions: Iterable[Suppression], codes: Iterable[str] = ()) -> bool:
    return d.code in codes or any(s.covers(d.code, d.layer) for s in suppressions)


def _layer_location(spec: StackSpec, name: str) -> Location:
    try:
        return spec.layer(name).location
    except KeyError:
        return Location(spec.file)


def evaluate(spec: StackSpec, report: StackReport) -> tuple[ContractResult, ...]:
    """Every check of every expectation of `spec`, `report` being its analysis at its own input."""
    reports: dict[InputSpec, StackReport | ConvCalcError] = {spec.input: report}

    def at(shape: InputSpec) -> StackReport | ConvCalcError:
        if shape not in reports:
            try:
                reports[shape] = analyze(dataclasses.replace(spec, input=shape))
            except ConvCalcError as exc:
                reports[shape] = exc
        return reports[shape]

    results: list[ContractResult] = []
    for e in spec.expect:
        if e.accepts is not None:
            results.append(_accepts(spec, e, at))
        measured = at(e.at) if e.at is not None else report
        for check in CHECKS:
            if check == "accepts" or not _asks(e, check):
                continue
            if isinstance(measured, ConvCalcError):
                assert e.at is not None
                shown = dims_text([e.at.channels, *e.at.spatial])
                refused = f"the stack refused at {shown}: {measured.problems[0].message}"
                results.append(ContractResult(e, check, False, _expected(e, check), refused, e.layer, e.where(check)))
            else:
                results.append(_measure(e, check, measured))
    return tuple(results)


def _asks(e: Expectation, check: str) -> bool:
    return bool(e.forbid) if check == "forbid" else getattr(e, check) is not None


def _expected(e: Expectation, check: str) -> str:
    """What the entry asks, as the results print it."""
    if check == "rf":
        assert e.rf is not None
        if len(e.rf) == 1:
            return e.rf[0].text()
        return ", ".join(f"{axis_label(len(e.rf), a)} {b.text()}" for a, b in enumerate(e.rf))
    if check == "jump":
        assert e.jump is not None
        return "= " + "×".join(fraction_text(j) for j in e.jump)
    if check == "shape":
        assert e.shape is not None
        return dims_text(e.shape).replace("?", "*")
    if check in ("params", "macs"):
        bound = getattr(e, check)
        return str(bound.text())
    if check == "forbid":
        return "none of " + ", ".join(e.forbid)
    assert e.accepts is not None
    return f"every size {e.accepts.text()}"


def _measure(e: Expectation, check: str, report: StackReport) -> ContractResult:
    layer: LayerReport = report.layer(e.layer) if e.layer is not None else report.output
    name: str | None = layer.name
    ok: bool
    if check == "rf":
        assert e.rf is not None
        sizes = [f.rf for f in layer.field]
        bounds = e.rf * len(sizes) if len(e.rf) == 1 else e.rf
        actual = dims_text(sizes) if sizes else "none (no spatial axes)"
        ok = (
            bool(sizes)
            and len(bounds) == len(sizes)
            and all(s is not None and b.holds(s) for s, b in zip(sizes, bounds, strict=True))
        )
        if None in sizes:
            actual += " (? = unknown: depends on an unknown input size)"
    elif check == "jump":
        assert e.jump is not None
        jumps = [f.jump for f in layer.field]
        wanted = e.jump * len(jumps) if len(e.jump) == 1 else e.jump
        ok = bool(jumps) and list(wanted) == jumps
        actual = "×".join("?" if j is None else fraction_text(j) for j in jumps) or "none (no spatial axes)"
    elif check == "shape":
        assert e.shape is not None
        dims = [layer.output.channels, *layer.output.spatial]
        ok = len(dims) == len(e.shape) and all(w is None or w == d for w, d in zip(e.shape, dims, strict=True))
        actual = dims_text(dims)
    elif check in ("params", "macs"):
        bound = getattr(e, check)
        if e.layer is None:
            name = None
            value = report.total_params if check == "params" else report.total_macs
        else:
            value = layer.params if check == "params" else layer.macs
        ok = value is not None and bound.holds(value)
        actual = "unknown (depends on an unknown input size)" if value is None else str(value)
    else:  # forbid
        found = [d for d in report.diagnostics if d.code in e.forbid and (e.layer is None or d.layer == e.layer)]
        if e.layer is None:
            name = None
        ok = not found
        actual = "none" if ok else "; ".join(f"{d.code} at {d.layer}" for d in found)
    return ContractResult(e, check, ok, _expected(e, check), actual, name, e.where(check))


def _accepts(spec: StackSpec, e: Expectation, at: Callable[[InputSpec], StackReport | ConvCalcError]) -> ContractResult:
    """Every size of the range analysed: the ones the stack refuses, with the first reason."""
    assert e.accepts is not None
    refused: list[tuple[int, str]] = []
    sizes = e.accepts.sizes()
    for size in sizes:
        shape = InputSpec(spec.input.channels, (size,) * spec.input.rank)
        measured = at(shape)
        if isinstance(measured, ConvCalcError):
            problem = measured.problems[0]
            refused.append((size, f"{problem.layer}: {problem.message}" if problem.layer else problem.message))
    if not refused:
        actual = f"all {len(sizes)} accepted"
    else:
        shown = "; ".join(f"{size} ({why})" for size, why in refused[:SHOWN_SIZES])
        more = f"; and {len(refused) - SHOWN_SIZES} more" if len(refused) > SHOWN_SIZES else ""
        actual = f"{len(refused)} of {len(sizes)} refused: {shown}{more}"
    return ContractResult(e, "accepts", not refused, _expected(e, "accepts"), actual, None, e.where("accepts"))
