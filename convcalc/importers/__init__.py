"""Importers: a trained model (an ONNX file, a PyTorch module or `.pt2` program) as a convcalc stack.

Each importer turns the model's graph into the raw layer documents a YAML file would hold and sends
them through the same validation (convcalc.format.validate), so every PyTorch refusal applies and
messages name the model's node. Shapes always come from convcalc's own arithmetic, never from the
model's recorded or inferred shapes. The optional packages (onnx, torch) are imported only here,
inside the functions that read a model.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from convcalc.importers.builder import Imported, OnUnsupported
    from convcalc.stack.spec import InputSpec, StackSpec

#: The model files convcalc imports wherever a stack file is accepted.
MODEL_SUFFIXES = (".onnx", ".pt2")


def open_stack(
    path: str | os.PathLike[str], input_override: InputSpec | None = None, allow_rank_change: bool = False
) -> StackSpec:
    """A stack from a stack file, a bundled name (`convcalc.format.loader.load_stack`) or a model file
    (`.onnx`, `.pt2`: imported, `input_override` fixing its input); the same errors as load_stack."""
    file = os.fspath(path)
    if file.endswith(MODEL_SUFFIXES):
        return read_model(file, input_override).stack
    from convcalc.format.loader import load_stack

    return load_stack(file, input_override, allow_rank_change)


def read_model(
    path: str | os.PathLike[str],
    input: InputSpec | None = None,
    output: str | None = None,
    on_unsupported: OnUnsupported = "error",
) -> Imported:
    """The model file at `path` (`.onnx`, or `.pt2` from torch.export.save) as an imported stack."""
    file = os.fspath(path)
    if file.endswith(".pt2"):
        from convcalc.importers.torch import read_pt2

        return read_pt2(file, input, output, on_unsupported)
    from convcalc.importers.onnx import read_onnx

    return read_onnx(file, input, output, on_unsupported)
