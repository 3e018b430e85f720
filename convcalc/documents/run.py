"""The `run` JSON document: what the NumPy reference run found, as plain JSON-ready data.

Shapes are lists (batch and channels first); times in seconds; statistics at full precision, with
non-finite values (NaN, ±inf) as null, since JSON has no spelling for them; memory in bytes.
"""

from __future__ import annotations

import math
from typing import Any

from convcalc.documents.parts import SCHEMA_VERSION
from convcalc.execution.runner import LayerRun, RunResult


def finite(x: float) -> float | None:
    """`x`, or None where JSON cannot hold it (NaN, ±inf).

    >>> finite(1.5), finite(float("nan"))
    (1.5, None)
    """
    return x if math.isfinite(x) else None


def layer_run_document(layer: LayerRun) -> dict[str, Any]:
    s = layer.stats
    return {
        "index": layer.index + 1,
        "name": layer.name,
        "op": layer.op,
        "from": list(layer.inputs),
        "predicted": list(layer.predicted),
        "actual": list(layer.actual),
        "match": layer.matches,
        "seconds": layer.seconds,
        "stats": {"mean": finite(s.mean), "std": finite(s.std), "min": finite(s.min), "max": finite(s.max)},
    }


def run_document(result: RunResult, saved: str | None) -> dict[str, Any]:
    """The whole `convcalc run --format json` document; `saved` is where --save wrote the arrays, if anywhere."""
    m = result.memory
    return {
        "convcalc_schema": SCHEMA_VERSION,
        "command": "run",
        "name": result.name,
        "file": result.file,
        "input": {"shape": list(result.input_shape), "data": result.data},
        "weights": result.weights,
        "seed": result.seed,
        "batch": result.batch,
        "dtype": result.dtype,
        "memory": {
            "estimate_bytes": m.total,
            "limit_bytes": result.max_memory,
            "data_bytes": m.data,
            "activation_bytes": m.activations,
            "weight_bytes": m.weights,
            "workspace_bytes": m.workspace,
            "bookkeeping_bytes": m.bookkeeping,
            "peak_layer": m.layer,
        },
        "layers": [layer_run_document(layer) for layer in result.layers],
        "summary": {
            "layers": len({layer.index for layer in result.layers}),  # a split's outputs are one layer
            "mismatches": [layer.name for layer in result.mismatches],
            "failure": None
            if result.failure is None
            else {"layer": result.failure.layer, "message": result.failure.message},
            "ok": result.ok,
            "total_seconds": result.total_seconds,
            "output": list(result.layers[-1].actual) if result.layers else None,
        },
        "saved": saved,
    }
