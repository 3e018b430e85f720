"""The JSON of what a unit sees (`rf --unit`, its "unit" object), of `locate` and of `coverage`: plain JSON-ready data.

Intervals are inclusive [lo, hi] input positions per spatial axis (null where nothing reaches); exact
rationals are strings ('1/2'); `std` is the only float (the square root of the exact variance).
"""

from __future__ import annotations

from typing import Any

from convcalc.analysis.coverage_map import CoverageMap, Picture, hole_fraction
from convcalc.analysis.locate import Reach, Spread, Support
from convcalc.analysis.report import StackReport
from convcalc.documents.parts import SCHEMA_VERSION
from convcalc.geometry.coverage import Count
from convcalc.notation import fraction_text


def interval_json(h: tuple[int, int] | None) -> list[int] | None:
    return None if h is None else [h[0], h[1]]


def spread_json(s: Spread | None) -> dict[str, Any] | None:
    if s is None:
        return None
    return {
        "paths": fraction_text(s.total),
        "mean": fraction_text(s.mean),
        "variance": fraction_text(s.variance),
        "std": round(s.std, 6),
        "radius": {f"{mass}%": fraction_text(r) for mass, r in s.radius},
    }


def unit_document(report: StackReport, result: Support, spreads: list[Spread | None]) -> dict[str, Any]:
    found = report.layer(result.layer)
    doc: dict[str, Any] = {
        "layer": result.layer,
        "index": list(result.unit),
        "region": [interval_json(h) for h in result.region],
        "support": [interval_json(h) for h in result.support],
        "support_exact": result.exact,
    }
    if spreads:
        doc["erf"] = [{"rf": f.rf, **(spread_json(s) or {})} for f, s in zip(found.field, spreads, strict=True)]
    return doc


def reach_document(result: Reach) -> dict[str, Any]:
    return {
        "layer": result.layer,
        "pixel": list(result.pixel),
        "units": [[[a, b] for a, b in runs] for runs in result.units],
        "exact": result.exact,
    }


def count_json(c: Count) -> int | str:
    """A path count: an int, or an exact fraction as a string ('3/2')."""
    return c if isinstance(c, int) else fraction_text(c)


def picture_json(p: Picture) -> dict[str, Any]:
    return {
        "window": [[a, b] for a, b in p.window],
        "factor": p.factor,
        "cell": "max",
        "cells": [[count_json(c) for c in row] for row in p.cells],
        "holes": [list(row) for row in p.holes],
        "field_pixels": [list(row) for row in p.field],
    }


def coverage_document(report: StackReport, m: CoverageMap, p: Picture | None) -> dict[str, Any]:
    """`convcalc coverage --format json`: the per-axis counts, the statistics and the picture's cells."""
    found = report.layer(m.layer)
    fraction = hole_fraction(m)
    return {
        "convcalc_schema": SCHEMA_VERSION,
        "command": "coverage",
        "layer": m.layer,
        "index": list(m.unit),
        "input": list(m.sizes),
        "region": [interval_json(h) for h in m.region],
        "support": [interval_json(h) for h in m.support],
        "support_exact": m.support_exact,
        "field": None if m.field is None else [interval_json(h) for h in m.field],
        "separable": m.separable,
        "counts": [[count_json(c) for c in axis] for axis in m.counts],
        "field_pixels": m.field_pixels,
        "holes": m.holes,
        "hole_fraction": None if fraction is None else fraction_text(fraction),
        "erf": [{"rf": f.rf, **(spread_json(s) or {})} for f, s in zip(found.field, m.spreads, strict=True)],
        "map": None if p is None else picture_json(p),
    }
