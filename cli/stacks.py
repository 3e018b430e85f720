"""Reading the STACK argument every command takes: a file, a bundled name, a model file, or - for stdin."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from convcalc.stack.spec import StackSpec


def read_stack(stack: str, input_shape: str | None, change_rank: bool) -> StackSpec:
    """The validated stack named by the STACK argument, with --input (and --change-rank) applied."""
    from convcalc.format.loader import decode_stack, parse_input_shape, parse_stack, read_limited
    from convcalc.importers import open_stack

    override = parse_input_shape(input_shape) if input_shape is not None else None
    if stack == "-":
        text = decode_stack(read_limited(sys.stdin.buffer, "<stdin>"), "<stdin>")
        return parse_stack(text, "<stdin>", override, allow_rank_change=change_rank)
    return open_stack(stack, override, allow_rank_change=change_rank)
