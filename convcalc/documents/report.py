"""The `rf` JSON document: a stack report as plain JSON-ready data (dicts, lists, str, int, bool, None).

Exact rationals are strings ('2', '1/2', '-3/2') so that no float rounds them; per-axis lists follow the
stack's spatial axes (`axes`). The keys are documented in the README ("Output formats").
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from convcalc.analysis.report import AxisField, LayerReport, StackReport
from convcalc.diagnostics import Diagnostic
from convcalc.geometry.shape import Shape
from convcalc.notation import fraction_text
from convcalc.stack.spec import axis_label

#: Version of the JSON documents convcalc prints; bumped on any incompatible change.
SCHEMA_VERSION = 1


def exact(x: Fraction | int | None) -> str | None:
    """An exact rational for JSON: a string, or None when unknown.

    >>> exact(Fraction(1, 2)), exact(3), exact(None)
    ('1/2', '3', None)
    """
    return None if x is None else fraction_text(x)


def axis_names(rank: int) -> list[str]:
    """The spatial axes' names, as the documents label them: ['H', 'W'] for 2-D."""
    return [axis_label(rank, a) for a in range(rank)]


def shape_document(shape: Shape) -> dict[str, Any]:
    return {"channels": shape.channels, "spatial": list(shape.spatial)}


def field_document(fields: Sequence[AxisField]) -> list[dict[str, Any]]:
    """Per axis: rf (largest), rf_min, jump, effective padding, centre, global, overlap (max:min as a rational)."""
    return [
        {
            "axis": name,
            "rf": f.rf,
            "rf_min": f.rf_min,
            "jump": exact(f.jump),
            "padding": exact(f.padding),
            "centre": exact(f.centre),
            "global": f.is_global,
            "overlap": exact(f.overlap),
        }
        for name, f in zip(axis_names(len(fields)), fields, strict=True)
    ]


def diagnostic_document(d: Diagnostic) -> dict[str, Any]:
    return {
        "severity": str(d.severity),
        "code": d.code,
        "layer": d.layer,
        "message": d.message,
        "data": d.data,
    }


def layer_document(layer: LayerReport) -> dict[str, Any]:
    """One layer; `index` is 1-based as in the table, `diagnostics` the codes (details in the top level)."""
    return {
        "index": layer.index + 1,
        "name": layer.name,
        "op": layer.op,
        "from": list(layer.inputs),
        "output": shape_document(layer.output),
        "kernel": None if layer.kernel is None else list(layer.kernel),
        "effective_kernel": None if layer.effective_kernel is None else list(layer.effective_kernel),
        "stride": None if layer.stride is None else list(layer.stride),
        "padding": None if layer.padding is None else [None if p is None else list(p) for p in layer.padding],
        "field": field_document(layer.field),
        "params": layer.params,
        "macs": layer.macs,
        "diagnostics": list(dict.fromkeys(d.code for d in layer.diagnostics)),
    }


def report_document(report: StackReport) -> dict[str, Any]:
    """The whole `convcalc rf --format json` document of `report`."""
    out = report.output
    return {
        "convcalc_schema": SCHEMA_VERSION,
        "command": "rf",
        "name": report.name,
        "file": report.file,
        "input": shape_document(report.input),
        "axes": axis_names(len(report.input.spatial)),
        "layers": [layer_document(layer) for layer in report.layers],
        "summary": {
            "output": shape_document(out.output),
            "field": field_document(out.field),
            "params": report.total_params,
            "macs": report.total_macs,
        },
        "diagnostics": [diagnostic_document(d) for d in report.diagnostics],
    }
