"""Input shapes written as text (`3x512x512`), as the CLI's `--input` takes them."""

from __future__ import annotations

import re
from typing import Final

from convcalc.errors import Problem, SpecError
from convcalc.stack.spec import InputSpec

__all__ = ["parse_input_shape"]

_SHAPE_SPLIT: Final = re.compile(r"\s*[x×X,]\s*")
_UNKNOWN_SIZES: Final = ("?", "null", "none")


def parse_input_shape(text: str) -> InputSpec:
    """Parse an input shape given as text: `3x512x512`, `3,512,512`, `3×512×512`; `?` or `null` = unknown size.

    Problems name the parameter `input` (the CLI's `--input`).
    """
    shape = text.strip()
    if shape[:1] in ("[", "(") and shape[-1:] in ("]", ")"):
        shape = shape[1:-1].strip()
    parts = _SHAPE_SPLIT.split(shape) if shape else []
    usage = "give channels then 1 to 3 spatial sizes, e.g. 3x224x224 (or 3,224,224; ? for an unknown size)"
    if not 2 <= len(parts) <= 4:
        raise SpecError(Problem(f"an input shape must {usage}; got '{text}'", parameter="input"))
    problems: list[Problem] = []
    if not re.fullmatch(r"[0-9]+", parts[0]) or int(parts[0]) < 1:
        problems.append(
            Problem(
                f"the channel count must be a positive integer, got '{parts[0]}' in '{text}'",
                parameter="input",
            )
        )
    spatial: list[int | None] = []
    for part in parts[1:]:
        if part.lower() in _UNKNOWN_SIZES:
            spatial.append(None)
        elif re.fullmatch(r"[0-9]+", part) and int(part) >= 1:
            spatial.append(int(part))
        else:
            problems.append(
                Problem(
                    f"spatial sizes must be positive integers or ? (unknown), got '{part}' in '{text}'",
                    parameter="input",
                )
            )
    if problems:
        raise SpecError(problems)
    return InputSpec(int(parts[0]), tuple(spatial))
