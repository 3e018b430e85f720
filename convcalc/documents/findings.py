"""Findings: what a CI format reports — a diagnostic or a broken contract — with where it was written.

The renderers for GitHub workflow commands, SARIF 2.1.0 and JUnit XML read only this type, so
`rf` and `check` report the same layer the same way in every format.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: SARIF's levels; a diagnostic's severity maps info → note, warning → warning, error → error.
Level = Literal["note", "warning", "error"]


@dataclass(frozen=True)
class Finding:
    """One reportable result.

    `rule` is a diagnostic code (`checkerboard`) or a contract's id (`expect.rf`); `file`, `line`,
    `column` (1-based) locate the layer (or the `expect:` entry) in its stack file, None when the
    stack did not come from a file; `instance` names the block instance inside which the layer was
    written (`layer3.2`), None outside blocks. A suppressed finding is still reported, marked so,
    and never fails a run.
    """

    rule: str
    level: Level
    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None
    layer: str | None = None
    instance: str | None = None
    suppressed: bool = False
