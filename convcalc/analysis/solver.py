"""Solve for padding: which settings turn a given input size into a target output size, per axis.

The unknowns are the ones people tune to make shapes meet (a decoder's upsampled map matching a
skip connection): the symmetric padding PyTorch's `padding=p` takes, plus output_padding for a
transposed conv and ceil_mode for pooling. Kernel, stride and dilation stay as given. Every
candidate size comes from `convcalc.geometry.arithmetic`, so an answer is exactly what PyTorch computes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from convcalc.analysis.calculators import LayerSettings
from convcalc.errors import Problem, SpecError
from convcalc.geometry import arithmetic


@dataclass(frozen=True)
class Setting:
    """One way to get `output`: padding p on both sides, output_padding (deconv), ceil_mode (pool)."""

    padding: int
    output: int
    output_padding: int = 0
    ceil_mode: bool = False


@dataclass(frozen=True)
class AxisSolution:
    """The answer along one axis.

    exact: every setting giving `target`, smallest padding first (then output_padding, then the
    ceil_mode given first). below/above: when none is exact, the nearest sizes that can be reached
    (None when there is none on that side), each with its smallest setting. asymmetric: for a conv
    with no symmetric answer, the smallest (before, after) padding that gives the target (F.pad).
    """

    axis: str
    input_size: int
    target: int
    exact: tuple[Setting, ...]
    below: Setting | None = None
    above: Setting | None = None
    asymmetric: tuple[int, int] | None = None

    @property
    def solved(self) -> bool:
        return bool(self.exact)


@dataclass(frozen=True)
class Solution:
    settings: LayerSettings
    axes: tuple[AxisSolution, ...]

    @property
    def solved(self) -> bool:
        return all(a.solved for a in self.axes)


def _candidates(settings: LayerSettings, axis: int, size: int, target: int) -> list[Setting]:
    """Every reachable setting up to the first size beyond the target (sizes are monotone in padding)."""
    k, s, d = settings.kernel[axis], settings.stride[axis], settings.dilation[axis]
    k_eff = arithmetic.effective_kernel(k, d)
    found: list[Setting] = []
    if settings.kind == "conv":
        # Past this padding, floor((i + 2p − k_eff)/s) + 1 exceeds the target.
        for p in range((target * s + k_eff) // 2 + 2):
            try:
                found.append(Setting(p, arithmetic.conv_output_size(size, k, s, p, p, d)))
            except ValueError:
                continue
    elif settings.kind == "deconv":
        op_max = max(s, d) - 1
        p = 0
        # The output shrinks by 2 per padding step; stop once even the largest output_padding gives < 1.
        while (size - 1) * s - 2 * p + k_eff + op_max >= 1:
            for op in range(op_max + 1):
                try:
                    found.append(Setting(p, arithmetic.deconv_output_size(size, k, s, p, op, d), output_padding=op))
                except ValueError:
                    continue
            p += 1
    else:
        for p in range(k // 2 + 1):
            for ceil in (settings.ceil_mode, not settings.ceil_mode):
                try:
                    out = arithmetic.pool_output_size(size, k, s, p, p, d, ceil)
                except ValueError:
                    continue
                found.append(Setting(p, out, ceil_mode=ceil))
    return found


def _asymmetric(settings: LayerSettings, axis: int, size: int, target: int) -> tuple[int, int] | None:
    k, s, d = settings.kernel[axis], settings.stride[axis], settings.dilation[axis]
    for total in range(target * s + arithmetic.effective_kernel(k, d) + 2):
        before, after = total // 2, total - total // 2
        try:
            out = arithmetic.conv_output_size(size, k, s, before, after, d)
        except ValueError:
            continue
        if out == target:
            return before, after
        if out > target:
            return None
    return None


def solve_axis(settings: LayerSettings, axis: int, target: int) -> AxisSolution:
    """The settings giving `target` along one axis of a layer whose input size is known."""
    assert settings.input_size is not None, "the solver needs the input size"
    size = settings.input_size[axis]
    found = _candidates(settings, axis, size, target)
    exact = tuple(c for c in found if c.output == target)
    label = settings.axes[axis]
    if exact:
        return AxisSolution(label, size, target, exact)
    below = [c for c in found if c.output < target]
    above = [c for c in found if c.output > target]
    # Candidates come smallest setting first, so min/max by size keep the first (smallest) on ties.
    nearest_below = max(below, key=lambda c: c.output) if below else None
    nearest_above = min(above, key=lambda c: c.output) if above else None
    asym = _asymmetric(settings, axis, size, target) if settings.kind == "conv" else None
    return AxisSolution(label, size, target, (), nearest_below, nearest_above, asym)


def solve(settings: LayerSettings, target: Sequence[int]) -> Solution:
    """Solve every axis for `target` (one value for all axes, or one per axis).

    >>> from convcalc.analysis.calculators import layer_settings
    >>> sol = solve(layer_settings("deconv", [3], [2], input_size=[8]), [16])
    >>> sol.axes[0].exact
    (Setting(padding=1, output=16, output_padding=1, ceil_mode=False),)
    """
    if settings.input_size is None:
        raise SpecError(Problem("the solver needs the input size (e.g. 64)", parameter="input_size"))
    if len(target) not in (1, settings.rank):
        raise SpecError(
            Problem(
                f"{len(target)} values, but the layer has {settings.rank} spatial axes: give 1 or {settings.rank}",
                parameter="target",
            )
        )
    for t in target:
        if t < 1:
            raise SpecError(Problem(f"{t} is not a size: a target must be at least 1", parameter="target"))
    targets = tuple(target) * settings.rank if len(target) == 1 else tuple(target)
    return Solution(settings, tuple(solve_axis(settings, a, t) for a, t in enumerate(targets)))
