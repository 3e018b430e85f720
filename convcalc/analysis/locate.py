"""What a unit really sees: its region and support, the units an input pixel reaches, its coverage.

For an output unit of a layer, per spatial axis of the stack input:
- the *region*: the receptive field in the Distill convention (positions in the padding count, as if the
  input were unbounded) — what `rf` sizes describe (`LayerReport.region`);
- the *support*: the hull [lo, hi] of the input pixels that really reach the unit at this input size,
  after every layer's padding, cropping and holes (None when no pixel reaches it);
- the *coverage*: the number of paths from each input position (`convcalc.geometry.coverage`).

Everything is computed one axis at a time. For ops that act per axis that is exact in 1-D, and in N-D for
the support hull: a merge's support is the union of its branches', whose hull is the per-axis hull. One
case is not separable: at a merge, a branch unit that receives nothing along one axis contributes
nothing along the others either, which a per-axis walk cannot see. When a stack of rank ≥ 2 has such a
unit behind a merge, the support is computed exactly as a union of products of per-axis sets
(`coverage.reach_nd`); only when that needs more than `coverage.MAX_TERMS` products per tensor is
`Support.exact` False, and the per-axis hull given an upper bound. (`Reach` keeps the per-axis answer.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from convcalc.analysis.report import LayerReport, StackReport
from convcalc.errors import Problem, SpecError
from convcalc.geometry import coverage as cov
from convcalc.geometry.coverage import Count, Link
from convcalc.ops import registry
from convcalc.stack.spec import INPUT_NAME, axis_label

Interval = tuple[int, int]


@dataclass(frozen=True)
class Support:
    """One unit's region and support, per spatial axis of the stack input (inclusive [lo, hi]).

    region: None per axis where the field is unknown or the unit is a hole. support: None where no
    input pixel reaches the unit (then on every axis: the unit receives nothing at all). exact: False
    when the support is an upper bound (see the module docstring).
    """

    layer: str
    unit: tuple[int, ...]
    region: tuple[Interval | None, ...]
    support: tuple[Interval | None, ...]
    exact: bool = True


@dataclass(frozen=True)
class Reach:
    """The units of `layer` that input pixel `pixel` reaches, per axis, as inclusive runs (one run when
    they are contiguous). An N-D unit is reached iff its index along every axis is (see `reach`)."""

    layer: str
    pixel: tuple[int, ...]
    units: tuple[tuple[Interval, ...], ...]
    exact: bool = True


def _problem(message: str, parameter: str) -> SpecError:
    return SpecError(Problem(message, parameter=parameter))


def _sizes(report: StackReport) -> tuple[int, ...]:
    sizes = report.input.spatial
    if any(s is None for s in sizes):
        raise _problem("the input size is unknown; give it to locate units (e.g. input [3, 224, 224])", "input")
    return tuple(s for s in sizes if s is not None)


def _size(shape_spatial: tuple[int | None, ...], axis: int, rank: int, name: str, unbounded: bool = False) -> int:
    if len(shape_spatial) != rank:
        return 1
    size = shape_spatial[axis]
    if size is None:
        if unbounded:
            return 0  # not read: an unbounded walk has no borders (see coverage.interior)
        raise _problem(f"the size of layer {name} is unknown; give the input size", "input")
    return size


class Skeleton:
    """The stack along one spatial axis of its input as coverage links, built layer by layer (file order).

    unbounded=True accepts unknown sizes (as 0): for `coverage.interior`, which reads no size but the
    broadcast of a one-unit input.
    """

    def __init__(self, input_spatial: tuple[int | None, ...], axis: int, unbounded: bool = False) -> None:
        self.rank = len(input_spatial)
        self.axis = axis
        self.unbounded = unbounded
        self.shapes: dict[str, tuple[int | None, ...]] = {INPUT_NAME: input_spatial}
        self.global_field = {INPUT_NAME: False}  # whether each tensor's field along the axis is the whole input
        self.links: list[Link] = []

    def add(self, layer: LayerReport) -> Link:
        axis, rank = self.axis, self.rank
        sizes = tuple(_size(self.shapes[name], axis, rank, name, self.unbounded) for name in layer.inputs)
        size = _size(layer.output.spatial, axis, rank, layer.name, self.unbounded)
        in_rank = len(self.shapes[layer.inputs[0]])
        self.shapes[layer.name] = layer.output.spatial
        axis_global = bool(layer.field) and layer.field[min(axis, len(layer.field) - 1)].is_global
        self.global_field[layer.name] = axis_global
        if axis_global and not any(self.global_field.get(name, False) for name in layer.inputs) and sizes == (size,):
            # A size-keeping op whose statistics span every position (groupnorm, instancenorm, attention):
            # each unit reads every unit of its input.
            link = Link(layer.name, layer.inputs, sizes, size, "global")
        else:
            try:
                link = _link(layer, sizes, size, axis, rank, in_rank)
            except SpecError:
                if not self.unbounded:
                    raise
                # A size change that cannot be traced with unknown sizes: no finite interior value.
                link = Link(layer.name, layer.inputs, sizes, size, "global")
        self.links.append(link)
        return link

    def extend(self, layers: Sequence[LayerReport]) -> list[Link]:
        """Add the layers of `layers` beyond those added so far (a growing list of reports); the links."""
        for layer in layers[len(self.links) :]:
            self.add(layer)
        return self.links


def links(report: StackReport, axis: int, until: str | None = None) -> list[Link]:
    """The stack along one spatial axis of its input, as coverage links in file order (up to `until`)."""
    skeleton = Skeleton(report.input.spatial, axis)
    for layer in report.layers:
        skeleton.add(layer)
        if layer.name == until:
            break
    out = skeleton.links
    cost = cov.work(out)
    if cost > cov.MAX_WORK:
        raise SpecError(
            Problem(
                f"tracing path counts along {axis_label(skeleton.rank, axis)} would visit about {cost} taps, "
                f"more than the {cov.MAX_WORK} convcalc spends per axis (MAX_WORK): give a smaller input size"
            )
        )
    return out


def _link(layer: LayerReport, sizes: tuple[int, ...], size: int, axis: int, rank: int, in_rank: int) -> Link:
    op = registry.OPS[layer.op]
    if in_rank == rank and len(layer.output.spatial) == 0:
        return Link(layer.name, layer.inputs, sizes, size, "global")
    if op.arity[1] is None or op.arity[1] > 1:
        return Link(layer.name, layer.inputs, sizes, size, "merge")
    if layer.steps is not None and in_rank == rank and layer.steps[axis] is not None:
        return Link(layer.name, layer.inputs, sizes, size, "step", layer.steps[axis])
    if in_rank != rank or sizes == (size,):
        return Link(layer.name, layer.inputs, sizes, size, "identity")
    raise _problem(f"layer {layer.name} changes the size along an axis in a way convcalc cannot trace", "layer")


def _check_unit(report: StackReport, layer: LayerReport, unit: tuple[int, ...]) -> None:
    spatial = layer.output.spatial
    if len(unit) != len(spatial):
        raise _problem(
            f"layer {layer.name} has {len(spatial)} spatial ax{'is' if len(spatial) == 1 else 'es'}, "
            f"but the unit gives {len(unit)} index{'' if len(unit) == 1 else 'es'}",
            "unit",
        )
    for u, n in zip(unit, spatial, strict=True):
        if n is not None and not 0 <= u < n:
            raise _problem(f"unit {unit} is outside layer {layer.name} (size {'×'.join(map(str, spatial))})", "unit")


def centre_unit(layer: LayerReport) -> tuple[int, ...]:
    """The centre unit of a layer: index (n − 1) // 2 along each spatial axis."""
    return tuple((n - 1) // 2 for n in layer.output.spatial if n is not None)


def coverage(report: StackReport, layer: str | None = None, unit: tuple[int, ...] | None = None) -> list[list[Count]]:
    """Per spatial axis of the stack input, the path count from each input position to `unit` of `layer`
    (default: the centre unit of the last layer); see `convcalc.geometry.coverage`.

    A layer without spatial axes (after flatten) takes the unit (): its one value sees every input pixel.
    """
    found = report.layer(layer) if layer is not None else report.output
    unit = centre_unit(found) if unit is None else unit
    return _coverages(report, found, [unit])[0]


def _coverages(report: StackReport, found: LayerReport, units: list[tuple[int, ...]]) -> list[list[list[Count]]]:
    sizes = _sizes(report)
    for unit in units:
        _check_unit(report, found, unit)
    chains = [links(report, axis, found.name) for axis in range(len(sizes))]
    return [
        [cov.paths_back(chain, found.name, unit[axis] if unit else 0)[INPUT_NAME] for axis, chain in enumerate(chains)]
        for unit in units
    ]


def _exact(report: StackReport, until: str) -> bool:
    """Whether per-axis supports are exact: rank 1, or no merge reads a branch with a unit that receives
    nothing along some axis (see the module docstring)."""
    sizes = _sizes(report)
    if len(sizes) < 2:
        return True
    for axis, n in enumerate(sizes):
        chain = links(report, axis, until)
        ones = cov.reached(chain, n)
        for link in chain:
            if link.kind == "merge" and any(not all(ones[name]) for name in link.inputs):
                return False
    return True


def support(report: StackReport, unit: tuple[int, ...], layer: str | None = None) -> Support:
    """The region and the support of `unit` of `layer` (default: the last layer)."""
    return supports(report, [unit], layer)[0]


def supports(report: StackReport, units: list[tuple[int, ...]], layer: str | None = None) -> list[Support]:
    """`support` of several units of one layer (the stack's links are built once)."""
    found = report.layer(layer) if layer is not None else report.output
    separable = _exact(report, found.name)
    chains = None if separable else [links(report, axis, found.name) for axis in range(len(_sizes(report)))]
    out = []
    for unit, maps in zip(units, _coverages(report, found, units), strict=True):
        hulls = tuple(cov.hull(m) for m in maps)
        if any(h is None for h in hulls):
            hulls = tuple(None for _ in hulls)
        exact = separable
        if chains is not None:
            # Behind a merge the per-axis hulls are an upper bound; the union of products is exact.
            nd = cov.reach_nd(chains, found.name, unit)
            if nd is not None:
                hulls, exact = nd, True
        region = found.region(unit) if unit else None
        out.append(Support(found.name, unit, region if region is not None else tuple(None for _ in maps), hulls, exact))
    return out


def reach(report: StackReport, pixel: tuple[int, ...], layer: str | None = None) -> Reach:
    """The units of `layer` (default: the last) that input pixel `pixel` reaches, per axis.

    Along one axis, pixel p reaches unit u iff some path of the skeleton joins them: exactly when the
    coverage of u is non-zero at p (so p ∈ support(u) when u's input set has no holes).
    """
    found = report.layer(layer) if layer is not None else report.output
    sizes = _sizes(report)
    if len(pixel) != len(sizes):
        raise _problem(f"the input has {len(sizes)} spatial axes, but the pixel gives {len(pixel)} indexes", "pixel")
    for p, n in zip(pixel, sizes, strict=True):
        if not 0 <= p < n:
            raise _problem(f"pixel {pixel} is outside the input (size {'×'.join(map(str, sizes))})", "pixel")
    units = []
    for axis, n in enumerate(sizes):
        chain = links(report, axis, found.name)
        units.append(tuple(cov.runs(cov.paths_forward(chain, pixel[axis], n)[found.name])))
    return Reach(found.name, pixel, tuple(units), _exact(report, found.name))


# -- effective receptive field ------------------------------------------------------------------------


@dataclass(frozen=True)
class Spread:
    """The path-count distribution of one axis, as a distribution over input positions.

    mean and variance exact (Fractions); radius: for each mass fraction (50, 90, 99 %), the smallest
    distance r from the mean such that the positions within r hold at least that fraction of the paths.
    """

    total: Count
    mean: Fraction
    variance: Fraction
    radius: tuple[tuple[int, Fraction], ...]

    @property
    def std(self) -> float:
        return math.sqrt(self.variance)


MASSES = (50, 90, 99)


def spread(counts: list[Count], masses: tuple[int, ...] = MASSES) -> Spread | None:
    """The distribution of `counts` (None when every count is 0).

    Integer sums throughout (fractional counts are scaled by the common denominator first): exact, and
    cheap for fields of many thousand pixels.
    """
    reached = [(p, c) for p, c in enumerate(counts) if c]
    if not reached:
        return None
    scale = math.lcm(*(Fraction(c).denominator for _, c in reached))
    weights = [(p, int(c * scale)) for p, c in reached]
    total = sum(w for _, w in weights)
    first = sum(p * w for p, w in weights)
    second = sum(p * p * w for p, w in weights)
    mean = Fraction(first, total)
    variance = Fraction(total * second - first * first, total * total)
    # Distance from the mean, times the total (an integer): |p·total − Σ p·w|.
    by_distance = sorted((abs(p * total - first), w) for p, w in weights)
    radii = []
    for mass in masses:
        held = 0
        for i, (dist, w) in enumerate(by_distance):
            held += w
            if 100 * held >= mass * total and (i + 1 == len(by_distance) or by_distance[i + 1][0] != dist):
                radii.append((mass, Fraction(dist, total)))
                break
    paths = Fraction(total, scale)
    return Spread(paths.numerator if paths.denominator == 1 else paths, mean, variance, tuple(radii))
