"""What an analysis returns: plain, typed data for every layer and the whole stack (the CLI renders it)."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dataclass_field
from fractions import Fraction
from functools import cached_property
from typing import TYPE_CHECKING

from convcalc.diagnostics import Diagnostic, Severity
from convcalc.geometry.receptive import AxisMap, Step
from convcalc.geometry.shape import Shape

if TYPE_CHECKING:
    from convcalc.analysis.gates import Gate


@dataclass(frozen=True)
class AxisField:
    """The receptive field of a layer's units along one axis of the stack input, in input pixels.

    rf: the largest field over output phases; rf_min: the smallest (equal unless phase-dependent).
    jump: input pixels between adjacent units (exact; a fraction after upsampling).
    padding: effective padding P, how far unit 0's field starts before input pixel 0 (left/top).
    centre: centre of unit 0; centre(i) = centre + i·jump. is_global: sees the whole input.
    overlap: max/min over output phases of the ones-kernel skeleton's values away from the
    borders (1 = even; above 1 = a checkerboard along this axis).
    None means unknown (depends on an unknown input size; overlap: or some phase gets nothing).
    """

    rf: int | None
    rf_min: int | None
    jump: Fraction | None
    padding: Fraction | None
    centre: Fraction | None
    is_global: bool = False
    overlap: Fraction | None = Fraction(1)


@dataclass(frozen=True)
class LayerReport:
    """One analysed layer. Per-axis tuples follow the layer's spatial axes (stride, kernel, padding)
    or the stack input's axes (`field`)."""

    index: int
    name: str
    op: str
    inputs: tuple[str, ...]
    output: Shape
    kernel: tuple[int, ...] | None
    effective_kernel: tuple[int, ...] | None
    stride: tuple[int, ...] | None
    padding: tuple[tuple[int, int] | None, ...] | None
    field: tuple[AxisField, ...]
    params: int | None
    macs: int | None
    diagnostics: tuple[Diagnostic, ...]
    maps: tuple[AxisMap | None, ...] = dataclass_field(default=(), compare=False, repr=False)
    #: The step the layer applies along each of its input's spatial axes (None = identity); None for ops
    #: that step through no window (pointwise, merges, flatten, linear). See convcalc.analysis.locate.
    steps: tuple[Step | None, ...] | None = dataclass_field(default=None, compare=False, repr=False)

    def region(self, unit: tuple[int, ...]) -> tuple[tuple[int, int] | None, ...] | None:
        """Inclusive [lo, hi] of stack-input pixels reaching `unit` (one index per axis), per axis.

        None for an axis whose field is unknown or which the unit does not reach (a hole); the
        whole result is None for a layer without spatial axes (its units see everything).
        Positions may lie outside the input (in the padding), as in the Distill convention.
        """
        if len(unit) != len(self.maps) or len(self.output.spatial) != len(self.maps):
            return None
        out: list[tuple[int, int] | None] = []
        for u, m in zip(unit, self.maps, strict=True):
            out.append(None if m is None or m.is_global else m.at(u))
        return tuple(out)


@dataclass(frozen=True)
class StackReport:
    """A whole analysed stack: the input, every layer in file order, and every diagnostic.

    gates / constant_gates: set by `analyze(..., gates="constant")` only (None otherwise): the gates
    found (`convcalc.analysis.gates.Gate`, in file order) and the analysis with every gate taken as a
    per-channel constant — the fields of the spatial path alone, beside this report's true fields.
    Its layers are this report's, layer for layer, with those fields (its diagnostics are not the
    stack's: read them here); without gates it is this analysis itself.
    """

    name: str | None
    file: str | None
    input: Shape
    layers: tuple[LayerReport, ...]
    gates: tuple[Gate, ...] | None = None
    constant_gates: StackReport | None = dataclass_field(default=None, compare=False, repr=False)

    @property
    def output(self) -> LayerReport:
        """The last layer: the stack's output."""
        return self.layers[-1]

    # Computed once per report (cached_property): renderers and callers may ask for them per layer.
    @cached_property
    def diagnostics(self) -> tuple[Diagnostic, ...]:
        """Every layer's diagnostics, in layer order."""
        return tuple(d for layer in self.layers for d in layer.diagnostics)

    @cached_property
    def total_params(self) -> int | None:
        values = [layer.params for layer in self.layers]
        return None if None in values else sum(v for v in values if v is not None)

    @cached_property
    def total_macs(self) -> int | None:
        values = [layer.macs for layer in self.layers]
        return None if None in values else sum(v for v in values if v is not None)

    @cached_property
    def _by_name(self) -> dict[str, LayerReport]:
        return {layer.name: layer for layer in self.layers}

    def layer(self, name: str) -> LayerReport:
        """The report of the layer called `name` (KeyError naming the layers if there is none)."""
        found = self._by_name.get(name)
        if found is None:
            raise KeyError(f"no layer {name!r} in {self.name or self.file or 'the stack'}")
        return found

    def worst_severity(self) -> Severity | None:
        """The most severe diagnostic level present, or None when there are none."""
        severities = [d.severity for d in self.diagnostics]
        return max(severities, key=lambda s: s.rank) if severities else None
