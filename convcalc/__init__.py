"""convcalc: exact convolution arithmetic — shapes, receptive fields, checkerboards — for layer stacks.

The public API, imported on first use (so `import convcalc` stays cheap and loads no numpy or yaml):

- `load_stack(path)`, `parse_stack(text)`: a stack file (or a bundled name) as a validated StackSpec;
  `open_stack(path)` takes model files (`.onnx`, `.pt2`) too;
- `analyze(stack)`: every layer's shape, receptive field, params, MACs and diagnostics (StackReport);
  `analyze(stack, gates="constant")` also the fields with squeeze-and-excitation gates as constants;
- `calculate(layer_settings(...))`: one conv, transposed conv or pooling layer, analysed as a one-layer
  stack by `analyze`, with what the calculators add (`calculator_document(result, command)`: its JSON);
- `from_onnx(path)`, `from_torch(module, example_input)`: a trained model imported as a StackSpec
  (optional packages onnx / torch, imported only then);
- `run_stack(stack)`: the stack executed by the NumPy reference ops, every shape checked;
- `report_document(report)`, `run_document(result, saved)`, `list_document(stacks)`: the JSON documents
  the command line prints; `stack_schema()`: the stack format as a JSON Schema;
- the errors: ConvCalcError and its kinds.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from convcalc.analysis.calculators import calculate, layer_settings
    from convcalc.analysis.engine import analyze
    from convcalc.analysis.report import LayerReport, StackReport
    from convcalc.documents.calculator import calculator_document, solution_document
    from convcalc.documents.library import list_document
    from convcalc.documents.report import report_document
    from convcalc.documents.run import run_document
    from convcalc.errors import (
        ConvCalcError,
        FileProblemError,
        MismatchError,
        Problem,
        ResourceError,
        ShapeError,
        SpecError,
    )
    from convcalc.execution.runner import run_stack
    from convcalc.format.loader import load_stack, parse_input_shape, parse_stack
    from convcalc.format.schema import stack_schema
    from convcalc.importers import open_stack
    from convcalc.importers.onnx import from_onnx
    from convcalc.importers.torch import from_torch
    from convcalc.stack.spec import InputSpec, LayerSpec, StackSpec

#: Public name → the module that defines it.
_PUBLIC = {
    "load_stack": "convcalc.format.loader",
    "open_stack": "convcalc.importers",
    "parse_stack": "convcalc.format.loader",
    "parse_input_shape": "convcalc.format.loader",
    "from_onnx": "convcalc.importers.onnx",
    "from_torch": "convcalc.importers.torch",
    "analyze": "convcalc.analysis.engine",
    "calculate": "convcalc.analysis.calculators",
    "layer_settings": "convcalc.analysis.calculators",
    "calculator_document": "convcalc.documents.calculator",
    "solution_document": "convcalc.documents.calculator",
    "run_stack": "convcalc.execution.runner",
    "report_document": "convcalc.documents.report",
    "run_document": "convcalc.documents.run",
    "list_document": "convcalc.documents.library",
    "stack_schema": "convcalc.format.schema",
    "StackReport": "convcalc.analysis.report",
    "LayerReport": "convcalc.analysis.report",
    "StackSpec": "convcalc.stack.spec",
    "LayerSpec": "convcalc.stack.spec",
    "InputSpec": "convcalc.stack.spec",
    "ConvCalcError": "convcalc.errors",
    "SpecError": "convcalc.errors",
    "ShapeError": "convcalc.errors",
    "FileProblemError": "convcalc.errors",
    "ResourceError": "convcalc.errors",
    "MismatchError": "convcalc.errors",
    "Problem": "convcalc.errors",
}

__all__ = [
    "ConvCalcError",
    "FileProblemError",
    "InputSpec",
    "LayerReport",
    "LayerSpec",
    "MismatchError",
    "Problem",
    "ResourceError",
    "ShapeError",
    "SpecError",
    "StackReport",
    "StackSpec",
    "__version__",
    "analyze",
    "calculate",
    "calculator_document",
    "from_onnx",
    "from_torch",
    "layer_settings",
    "list_document",
    "load_stack",
    "open_stack",
    "parse_input_shape",
    "parse_stack",
    "report_document",
    "run_document",
    "run_stack",
    "solution_document",
    "stack_schema",
]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'convcalc' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
