"""Solve for padding: which settings turn a given input size into a target output size, per axis.

The unknowns are the ones people tune to make shapes meet (a decoder's upsampled map matching a
skip connection): the symmetric padding PyTorch's `padding=p` takes, plus output_padding for a
transposed conv and ceil_mode for pooling. Kernel, stride and dilation stay as given. Every
candidate size comes from `convcalc.geometry.arithmetic`, so an answer is exactly what PyTorch computes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
    ceil_mode given first), at most MAX_SETTINGS; `unlisted` counts the further ones (larger paddings).
    below/above: when none is exact, the nearest sizes that can be reached
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
    unlisted: int = 0

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


#: The most exact settings listed per axis (a large stride makes many paddings give the same size); the
#: rest are counted in `AxisSolution.unlisted`.
MAX_SETTINGS = 100


def _first_at_least(f: Callable[[int], int], lo: int, hi: int, value: int) -> int | None:
    """The smallest p in [lo, hi] with f(p) ≥ value for a nondecreasing f (binary search), or None."""
    if lo > hi or f(hi) < value:
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        if f(mid) >= value:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _valid_from(f: Callable[[int], int], hi: int) -> int | None:
    """The smallest p in [0, hi] where f does not raise (PyTorch accepts the layer from there on), or None."""

    def ok(p: int) -> int:
        try:
            f(p)
        except ValueError:
            return 0
        return 1

    return _first_at_least(ok, 0, hi, 1)


def _monotone(
    f: Callable[[int], int], lo: int, hi: int, target: int, make: Callable[[int, int], Setting]
) -> tuple[list[Setting], int, Setting | None, Setting | None]:
    """(exact, unlisted, below, above) for a nondecreasing size f(p) over p in [lo, hi], in O(log) calls:
    the paddings giving `target` (at most MAX_SETTINGS listed), else the nearest sizes each with its
    smallest padding."""
    first = _first_at_least(f, lo, hi, target)
    if first is not None and f(first) == target:
        end = _first_at_least(f, first, hi, target + 1)
        last = hi if end is None else end - 1
        listed = range(first, min(last, first + MAX_SETTINGS - 1) + 1)
        return [make(p, target) for p in listed], last - first + 1 - len(listed), None, None
    below = above = None
    if first is None or first > lo:
        size = f(hi if first is None else first - 1)
        smallest = _first_at_least(f, lo, hi, size)
        assert smallest is not None
        below = make(smallest, size)
    if first is not None:
        above = make(first, f(first))
    return [], 0, below, above


def _solve_conv(settings: LayerSettings, axis: int, size: int, target: int) -> AxisSolution:
    k, s, d = settings.kernel[axis], settings.stride[axis], settings.dilation[axis]
    # Past this padding, floor((i + 2p − k_eff)/s) + 1 exceeds the target.
    hi = (target * s + arithmetic.effective_kernel(k, d)) // 2 + 2

    def f(p: int) -> int:
        return arithmetic.conv_output_size(size, k, s, p, p, d)

    lo = _valid_from(f, hi)
    label = settings.axes[axis]
    if lo is None:
        return AxisSolution(label, size, target, (), asymmetric=_asymmetric(settings, axis, size, target))
    exact, unlisted, below, above = _monotone(f, lo, hi, target, lambda p, out: Setting(p, out))
    if exact:
        return AxisSolution(label, size, target, tuple(exact), unlisted=unlisted)
    return AxisSolution(label, size, target, (), below, above, _asymmetric(settings, axis, size, target))


def _solve_pool(settings: LayerSettings, axis: int, size: int, target: int) -> AxisSolution:
    k, s, d = settings.kernel[axis], settings.stride[axis], settings.dilation[axis]
    label = settings.axes[axis]
    # Per ceil_mode (the one given first) the size is nondecreasing in the padding, up to k // 2.
    found: list[tuple[list[Setting], int, Setting | None, Setting | None]] = []
    for ceil in (settings.ceil_mode, not settings.ceil_mode):

        def f(p: int, ceil: bool = ceil) -> int:
            return arithmetic.pool_output_size(size, k, s, p, p, d, ceil)

        def make(p: int, out: int, ceil: bool = ceil) -> Setting:
            return Setting(p, out, ceil_mode=ceil)

        lo = _valid_from(f, k // 2)
        if lo is not None:
            found.append(_monotone(f, lo, k // 2, target, make))
    exact = sorted((st for e, _, _, _ in found for st in e), key=lambda st: st.padding)  # stable: given mode first
    if exact:
        unlisted = sum(u for _, u, _, _ in found) + max(len(exact) - MAX_SETTINGS, 0)
        return AxisSolution(label, size, target, tuple(exact[:MAX_SETTINGS]), unlisted=unlisted)
    belows = [b for _, _, b, _ in found if b is not None]
    aboves = [a for _, _, _, a in found if a is not None]
    # The nearest size, the smaller padding on ties (then the ceil_mode given first).
    below = max(belows, key=lambda st: (st.output, -st.padding)) if belows else None
    above = min(aboves, key=lambda st: (st.output, st.padding)) if aboves else None
    return AxisSolution(label, size, target, (), below, above)


def _solve_deconv(settings: LayerSettings, axis: int, size: int, target: int) -> AxisSolution:
    """Closed form: the output is B − 2p + op with B = (i−1)s + d(k−1) + 1 and 0 ≤ op ≤ max(s, d) − 1."""
    k, s, d = settings.kernel[axis], settings.stride[axis], settings.dilation[axis]
    label = settings.axes[axis]
    base = (size - 1) * s + d * (k - 1) + 1
    op_max = max(s, d) - 1

    def smallest(out: int) -> Setting | None:
        """The setting giving `out` with the smallest padding (one output_padding per padding), or None."""
        if out < 1:
            return None
        p = max(-(-(base - out) // 2), 0)
        op = 2 * p - (base - out)
        if not 0 <= op <= op_max:
            return None
        return Setting(p, arithmetic.deconv_output_size(size, k, s, p, op, d), output_padding=op)

    first = smallest(target)
    if first is not None:
        # Every padding p with op = 2p − (B − target) in [0, op_max] gives the target.
        last = (base - target + op_max) // 2
        listed = range(first.padding, min(last, first.padding + MAX_SETTINGS - 1) + 1)
        exact = tuple(Setting(p, target, output_padding=2 * p - (base - target)) for p in listed)
        return AxisSolution(label, size, target, exact, unlisted=last - first.padding + 1 - len(listed))
    # Reachable sizes: every one from 1 to B + op_max (op_max ≥ 1), or those of B's parity up to B (op_max 0).
    below = smallest(min(target - 1, base + op_max)) or smallest(min(target - 2, base + op_max))
    above = smallest(target + 1) or smallest(target + 2)
    return AxisSolution(label, size, target, (), below, above)


def _asymmetric(settings: LayerSettings, axis: int, size: int, target: int) -> tuple[int, int] | None:
    """The smallest total padding giving `target`, split (before, after) with the odd pixel after; None when
    no total does (the size is nondecreasing in the total: binary search)."""
    k, s, d = settings.kernel[axis], settings.stride[axis], settings.dilation[axis]

    def f(total: int) -> int:
        return arithmetic.conv_output_size(size, k, s, total // 2, total - total // 2, d)

    hi = target * s + arithmetic.effective_kernel(k, d) + 2
    lo = _valid_from(f, hi)
    total = None if lo is None else _first_at_least(f, lo, hi, target)
    if total is None or f(total) != target:
        return None
    return total // 2, total - total // 2


def solve_axis(settings: LayerSettings, axis: int, target: int) -> AxisSolution:
    """The settings giving `target` along one axis of a layer whose input size is known, in O(log) size
    evaluations (each size from `convcalc.geometry.arithmetic`)."""
    assert settings.input_size is not None, "the solver needs the input size"
    size = settings.input_size[axis]
    if settings.kind == "conv":
        return _solve_conv(settings, axis, size, target)
    if settings.kind == "deconv":
        return _solve_deconv(settings, axis, size, target)
    return _solve_pool(settings, axis, size, target)


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
