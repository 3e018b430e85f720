"""The `rf` JSON document: a stack report as plain JSON-ready data (dicts, lists, str, int, bool, None).

Its layers are built by `convcalc.documents.parts.layer_json`, as the calculators' layer is, so the same
layer has the same keys and notations in both. The keys are documented in the README ("Output formats").
"""

from __future__ import annotations

from typing import Any

from convcalc.analysis.report import StackReport
from convcalc.documents.parts import SCHEMA_VERSION, diagnostic_json, field_json, layer_json, shape_json
from convcalc.stack.spec import axis_label


def report_document(report: StackReport) -> dict[str, Any]:
    """The whole `convcalc rf --format json` document of `report`."""
    out = report.output
    rank = len(report.input.spatial)
    doc: dict[str, Any] = {
        "convcalc_schema": SCHEMA_VERSION,
        "command": "rf",
        "name": report.name,
        "file": report.file,
        "input": shape_json(report.input),
        "axes": [axis_label(rank, a) for a in range(rank)],
        "layers": [layer_json(layer) for layer in report.layers],
        "summary": {
            "output": shape_json(out.output),
            "field": field_json(out.field),
            "params": report.total_params,
            "macs": report.total_macs,
        },
        "diagnostics": [diagnostic_json(d) for d in report.diagnostics],
    }
    gated = report.constant_gates
    if report.gates is not None and gated is not None:
        # `rf --gates constant`: the fields with every gate as a per-channel constant, under their own keys;
        # `field` stays the true field.
        for layer, spatial in zip(doc["layers"], gated.layers, strict=True):
            layer["field_gates_constant"] = field_json(spatial.field)
        doc["summary"]["field_gates_constant"] = field_json(gated.output.field)
        doc["gates"] = [{"layer": g.layer, "input": g.input, "pool": g.pool} for g in report.gates]
    return doc
