"""The limits on what a stack file may ask for: each keeps reading a hostile or mistaken file within
seconds and a few hundred MB, and each is named in the message that refuses a file beyond it.

The README's "Limits" list is this table.
"""

from __future__ import annotations

from typing import Final

from convcalc.notation import MAX_SHOWN_CHARS, shorten

__all__ = [
    "MAX_BLOCK_NESTING",
    "MAX_EXPRESSION_CHARS",
    "MAX_EXPRESSION_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_INT_DIGITS",
    "MAX_LAYERS",
    "MAX_PARAMETER_NODES",
    "MAX_SHOWN_CHARS",
    "shorten",
]

#: Values a block parameter pasted into a layer may hold, written out (an alias counts each time it is
#: used): a field needs a few; an alias bomb (`&a9 [*a8, *a8]`) holds billions.
MAX_PARAMETER_NODES: Final = 10_000

#: Bytes of a stack file (or of stdin): a 20,000-layer stack is under 1 MB.
MAX_FILE_BYTES: Final = 16 * 1024 * 1024
#: Layers in a stack, written out or made by blocks, counting the ones a false `when:` leaves out
#: (checked before any layer is validated).
MAX_LAYERS: Final = 20_000
#: Blocks and groups inside blocks and groups.
MAX_BLOCK_NESTING: Final = 100
#: Parentheses, `not` and unary signs nested inside one `${...}` expression.
MAX_EXPRESSION_DEPTH: Final = 100
#: Characters of one `${...}` expression.
MAX_EXPRESSION_CHARS: Final = 1000
#: Decimal digits of an integer literal (Python itself refuses to read more than 4300).
MAX_INT_DIGITS: Final = 1000
# MAX_SHOWN_CHARS (characters of a value echoed in a message before it is cut) is in convcalc.notation.
