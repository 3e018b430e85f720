"""What a stack file promises about itself (`expect:`) and which diagnostics it accepts (`ignore:`).

Read by convcalc.format.contracts, evaluated by convcalc.analysis.contracts. Receptive fields and
params/MACs are integers (input pixels, counts); jumps exact rationals; sizes in input pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Final

from convcalc.stack.spec import InputSpec, Location

#: The most input sizes one `accepts:` range may ask for (each size is one full analysis).
MAX_ACCEPTED_SIZES: Final = 128


@dataclass(frozen=True)
class Bound:
    """An inclusive range of integers, open where None; a bare number in the file is min = max."""

    min: int | None = None
    max: int | None = None

    def holds(self, x: int) -> bool:
        return (self.min is None or x >= self.min) and (self.max is None or x <= self.max)

    def text(self) -> str:
        """`= 212`, `≥ 200`, `≤ 30000000`, `200..300`."""
        if self.min is not None and self.min == self.max:
            return f"= {self.min}"
        if self.max is None:
            return f"≥ {self.min}"
        if self.min is None:
            return f"≤ {self.max}"
        return f"{self.min}..{self.max}"


@dataclass(frozen=True)
class SizeRange:
    """The spatial sizes `min, min + step, ... ≤ max`, the same along every axis (`accepts:`)."""

    min: int
    max: int
    step: int = 1

    def sizes(self) -> range:
        return range(self.min, self.max + 1, self.step)

    def text(self) -> str:
        return f"{self.min}..{self.max} step {self.step}"


@dataclass(frozen=True)
class Expectation:
    """One entry of `expect:`: the checks it makes on `layer` (None: the stack's last layer, and for
    params / MACs / `forbid` the whole stack), measured at input `at` (None: the stack's input).

    `rf` holds one bound for every axis or one per axis; `jump` likewise; `shape` is the expected
    output [channels, spatial...] with None where any size will do; `forbid` lists diagnostic codes
    that must not appear. `index` is the 0-based position in `expect:`; `field_locations` where
    each check was written.
    """

    index: int
    location: Location
    layer: str | None = None
    at: InputSpec | None = None
    rf: tuple[Bound, ...] | None = None
    jump: tuple[Fraction, ...] | None = None
    shape: tuple[int | None, ...] | None = None
    params: Bound | None = None
    macs: Bound | None = None
    forbid: tuple[str, ...] = ()
    accepts: SizeRange | None = None
    field_locations: dict[str, Location] = field(default_factory=dict, compare=False, hash=False)

    def where(self, check: str) -> Location:
        """Where the check `check` (`rf`, `params`, ...) was written, else the entry."""
        return self.field_locations.get(check, self.location)


@dataclass(frozen=True)
class Suppression:
    """One entry of `ignore:`: diagnostics of `code` (at `layer` only, when given) never fail a check."""

    code: str
    layer: str | None = None
    location: Location = field(default_factory=Location)

    def covers(self, code: str, layer: str) -> bool:
        return code == self.code and (self.layer is None or self.layer == layer)
