"""The pieces every JSON document shares: shapes, receptive fields, one analysed layer, diagnostics.

`convcalc rf` and the calculators build a layer with the same `layer_json`, so the same layer has the
same keys and notations in both. Exact rationals are strings ('1/2'); unknown values are null.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from convcalc.analysis.report import AxisField, LayerReport
from convcalc.diagnostics import Diagnostic
from convcalc.errors import Problem
from convcalc.geometry.shape import Shape
from convcalc.notation import fraction_text
from convcalc.stack.spec import Location, axis_label

#: Version of the JSON documents convcalc prints; bumped on any incompatible change.
SCHEMA_VERSION = 1


def frac_json(x: Fraction | int | None) -> str | None:
    """Exact rational for JSON: a string ('2', '1/2') or null."""
    return None if x is None else fraction_text(x)


def field_json(fields: Sequence[AxisField]) -> list[dict[str, Any]]:
    return [
        {
            "axis": axis_label(len(fields), axis),
            "rf": f.rf,
            "rf_min": f.rf_min,
            "jump": frac_json(f.jump),
            "padding": frac_json(f.padding),
            "centre": frac_json(f.centre),
            "global": f.is_global,
            "overlap": frac_json(f.overlap),
        }
        for axis, f in enumerate(fields)
    ]


def shape_json(shape: Shape) -> dict[str, Any]:
    return {"channels": shape.channels, "spatial": list(shape.spatial)}


def problem_json(p: Problem) -> dict[str, Any]:
    """One problem of a refused input: where (file, 1-based line and column), the layer and field, the message."""
    where = {"file": p.file, "line": p.line, "column": p.column}
    return {**where, "layer": p.layer, "field": p.field, "message": p.message}


def location_json(where: Location | None) -> dict[str, Any] | None:
    """A place in a stack file (1-based line and column), None when the stack did not come from a file."""
    return None if where is None else {"file": where.file, "line": where.line, "column": where.column}


def diagnostic_json(d: Diagnostic) -> dict[str, Any]:
    """One diagnostic; `location` is the layer as written (inside a block: in the block's definition),
    `instance` the block instance and `call` where that instance's use is written (null outside blocks)."""
    return {
        "severity": str(d.severity),
        "code": d.code,
        "layer": d.layer,
        "message": d.message,
        "data": d.data,
        "location": location_json(d.location),
        "instance": d.instance,
        "call": location_json(d.call),
    }


def layer_json(layer: LayerReport) -> dict[str, Any]:
    return {
        "index": layer.index + 1,
        "name": layer.name,
        "op": layer.op,
        "from": list(layer.inputs),
        "output": shape_json(layer.output),
        "kernel": None if layer.kernel is None else list(layer.kernel),
        "effective_kernel": None if layer.effective_kernel is None else list(layer.effective_kernel),
        "stride": None if layer.stride is None else list(layer.stride),
        "padding": None if layer.padding is None else [None if p is None else list(p) for p in layer.padding],
        "field": field_json(layer.field),
        "params": layer.params,
        "macs": layer.macs,
        "diagnostics": list(dict.fromkeys(d.code for d in layer.diagnostics)),
    }
