"""The `list` JSON document: the bundled architectures."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from convcalc.documents.parts import SCHEMA_VERSION
from convcalc.format.library import BundledStack
from convcalc.notation import dims_text


def input_text(stack: BundledStack) -> str:
    """The input as C×H×W text ('?' for an unknown size)."""
    return dims_text([stack.input.channels, *stack.input.spatial])


def list_document(stacks: Sequence[BundledStack]) -> dict[str, Any]:
    """`convcalc list --format json`: name, description, input (C×H×W text) and layer count of each."""
    entries = [
        {"name": s.name, "description": s.description, "input": input_text(s), "layers": s.layers} for s in stacks
    ]
    return {"convcalc_schema": SCHEMA_VERSION, "command": "list", "stacks": entries}
