"""The JSON of what a unit sees (`rf --unit`, its "unit" object) and of `locate`: plain JSON-ready data.

Intervals are inclusive [lo, hi] input positions per spatial axis (null where nothing reaches); exact
rationals are strings ('1/2'); `std` is the only float (the square root of the exact variance).
"""

from __future__ import annotations

from typing import Any

from convcalc.analysis.locate import Reach, Spread, Support
from convcalc.analysis.report import StackReport
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
