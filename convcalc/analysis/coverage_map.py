"""The coverage map of one unit: path counts over the input, its field, its holes, and a downsampled picture.

Built on `convcalc.analysis.locate` (per-axis counts, spreads) and `convcalc.geometry.coverage`. In N-D the
count at a pixel is the product of the axes' counts when no layer sums several inputs; behind a merge it
is not, and the exact N-D map is walked cell by cell (bounded by GRID_LIMIT cells; beyond it only the
per-axis maps are given).

The *field* of the unit along an axis is its region (receptive field) clipped to the input, or its support
when the region is unknown; a *hole* is a pixel of the field (the box of the axes' fields) with no path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from fractions import Fraction

from convcalc.analysis import locate
from convcalc.analysis.locate import Interval, Spread
from convcalc.analysis.report import StackReport
from convcalc.geometry import coverage as cov
from convcalc.geometry.coverage import Cell, Count
from convcalc.stack.spec import INPUT_NAME

#: The most work (reached cells times kernel taps, over the layers) of the exact N-D walk behind merges
#: before it gives up on the N-D map (about a second of pure Python).
GRID_LIMIT = 1_000_000


@dataclass(frozen=True)
class CoverageMap:
    """Path counts from the input to one unit.

    counts: per spatial axis of the input, the count at each position. grid: the exact N-D counts
    (sparse) when the stack is not separable; None when it is (the N-D count is then the product of
    `counts`) or when the field is over GRID_LIMIT (`has_grid` False).
    """

    layer: str
    unit: tuple[int, ...]
    sizes: tuple[int, ...]
    counts: tuple[tuple[Count, ...], ...]
    region: tuple[Interval | None, ...]
    support: tuple[Interval | None, ...]
    field: tuple[Interval, ...] | None
    separable: bool
    grid: Mapping[Cell, Count] | None
    spreads: tuple[Spread | None, ...]
    support_exact: bool

    @property
    def has_grid(self) -> bool:
        """Whether the N-D counts are known (the product of the axes', or the exact walk)."""
        return self.separable or self.grid is not None

    def count(self, cell: Cell) -> Count:
        """The N-D count at one input pixel."""
        if self.grid is not None:
            return self.grid.get(cell, 0)
        if not self.separable:
            raise ValueError("the N-D map is over GRID_LIMIT cells; only the per-axis counts are known")
        out: Count = 1
        for axis, p in enumerate(cell):
            out *= self.counts[axis][p]
        return out

    @property
    def field_pixels(self) -> int:
        """Pixels in the field's box (0 when nothing reaches the unit)."""
        if self.field is None:
            return 0
        out = 1
        for a, b in self.field:
            out *= b - a + 1
        return out

    @property
    def reached_pixels(self) -> int | None:
        """Pixels of the field with at least one path (None without the N-D map)."""
        if self.field is None:
            return 0
        if self.grid is not None:
            return sum(1 for cell, c in self.grid.items() if c and _inside(cell, self.field))
        if not self.separable:
            return None
        out = 1
        for axis, (a, b) in enumerate(self.field):
            out *= sum(1 for c in self.counts[axis][a : b + 1] if c)
        return out

    @property
    def holes(self) -> int | None:
        """Pixels of the field with no path (None without the N-D map)."""
        reached = self.reached_pixels
        return None if reached is None else self.field_pixels - reached


def _inside(cell: Cell, box: tuple[Interval, ...]) -> bool:
    return all(a <= p <= b for p, (a, b) in zip(cell, box, strict=True))


def coverage_map(report: StackReport, layer: str | None = None, unit: tuple[int, ...] | None = None) -> CoverageMap:
    """The coverage map of `unit` of `layer` (default: the centre unit of the last layer)."""
    found = report.layer(layer) if layer is not None else report.output
    unit = locate.centre_unit(found) if unit is None else unit
    sup = locate.support(report, unit, found.name)
    counts = locate.coverage(report, found.name, unit)
    sizes = tuple(len(c) for c in counts)
    chains = [locate.links(report, axis, found.name) for axis in range(len(sizes))]
    separable = len(sizes) < 2 or cov.separable(chains)
    grid = None
    if not separable:
        grid = cov.paths_back_grid(chains, found.name, unit if unit else (0,) * len(sizes), GRID_LIMIT, INPUT_NAME)
    field: tuple[Interval, ...] | None = None
    if all(s is not None for s in sup.support):
        box = []
        for axis, n in enumerate(sizes):
            r, s = sup.region[axis], sup.support[axis]
            assert s is not None
            lo, hi = (max(r[0], 0), min(r[1], n - 1)) if r is not None else s
            box.append((min(lo, s[0]), max(hi, s[1])))
        field = tuple(box)
    return CoverageMap(
        found.name,
        unit,
        sizes,
        tuple(tuple(c) for c in counts),
        sup.region,
        sup.support,
        field,
        separable,
        grid,
        tuple(locate.spread(c) for c in counts),
        sup.exact,
    )


# -- the picture ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Picture:
    """The map over `window` (input positions per axis shown, rows then columns; one axis: a strip),
    in cells of `factor` pixels per axis: each cell holds the largest count of its pixels (`cells`), how
    many of its pixels are holes (`holes`) and how many lie in the field (`field`)."""

    window: tuple[Interval, ...]
    factor: int
    cells: tuple[tuple[Count, ...], ...]
    holes: tuple[tuple[int, ...], ...]
    field: tuple[tuple[int, ...], ...]

    @property
    def peak(self) -> Count:
        return max((c for row in self.cells for c in row), default=0)


def _blocks(interval: Interval, factor: int) -> list[range]:
    a, b = interval
    return [range(s, min(s + factor, b + 1)) for s in range(a, b + 1, factor)]


def _window(m: CoverageMap, axes: tuple[int, ...]) -> tuple[Interval, ...]:
    if m.field is None:
        return tuple((0, m.sizes[a] - 1) for a in axes)
    return tuple(m.field[a] for a in axes)


def picture(m: CoverageMap, max_rows: int, max_cols: int) -> Picture | None:
    """The map of a 1-D or 2-D input downsampled to at most max_rows × max_cols cells (one factor for
    both axes, so cells stay square); None for other ranks or without the N-D map."""
    rank = len(m.sizes)
    if rank not in (1, 2) or not m.has_grid:
        return None
    window = _window(m, tuple(range(rank)))
    lengths = [b - a + 1 for a, b in window]
    across = -(-lengths[-1] // max_cols)
    factor = across if rank == 1 else max(-(-lengths[0] // max_rows), across, 1)
    blocks = [_blocks(w, factor) for w in window]
    row_blocks = blocks[0] if rank == 2 else [range(0, 1)]
    col_blocks = blocks[-1]
    field = m.field

    def in_field(axis: int, block: range) -> list[int]:
        if field is None:
            return []
        a, b = field[axis]
        return [p for p in block if a <= p <= b]

    cells: list[tuple[Count, ...]] = []
    holes: list[tuple[int, ...]] = []
    fields: list[tuple[int, ...]] = []
    col_axis = rank - 1
    grid_peak: dict[Cell, Count] = {}
    grid_reached: dict[Cell, int] = {}
    if rank == 2 and m.grid is not None:
        # Bin the reached pixels into cells (the grid is sparse; the window may be far larger).
        (r0, _), (c0, _) = window
        for (r, c), value in m.grid.items():
            if not value or not all(a <= p <= b for p, (a, b) in zip((r, c), window, strict=True)):
                continue
            key = ((r - r0) // factor, (c - c0) // factor)
            grid_peak[key] = max(grid_peak.get(key, 0), value)
            if field is not None and _inside((r, c), field):
                grid_reached[key] = grid_reached.get(key, 0) + 1
    for i, rb in enumerate(row_blocks):
        rows_in = in_field(0, rb) if rank == 2 else [0]
        row_cells: list[Count] = []
        row_holes: list[int] = []
        row_field: list[int] = []
        for j, cb in enumerate(col_blocks):
            cols_in = in_field(col_axis, cb)
            peak: Count
            if rank == 2 and m.grid is not None:
                peak, reached = grid_peak.get((i, j), 0), grid_reached.get((i, j), 0)
            elif rank == 2:
                ys, xs = m.counts[0], m.counts[1]
                peak = max(ys[r] for r in rb) * max(xs[c] for c in cb)
                reached = sum(1 for r in rows_in if ys[r]) * sum(1 for c in cols_in if xs[c])
            else:
                xs = m.counts[0]
                peak = max(xs[c] for c in cb)
                reached = sum(1 for c in cols_in if xs[c])
            inside = len(rows_in) * len(cols_in) if field is not None else 0
            row_cells.append(peak)
            row_holes.append(inside - reached)
            row_field.append(inside)
        cells.append(tuple(row_cells))
        holes.append(tuple(row_holes))
        fields.append(tuple(row_field))
    return Picture(window, factor, tuple(cells), tuple(holes), tuple(fields))


def axis_picture(m: CoverageMap, axis: int, max_cols: int) -> Picture:
    """One axis's counts as a strip (for a 3-D input, or a 2-D map over GRID_LIMIT): holes are the
    positions of the axis's field with no path along that axis."""
    one = replace(
        m,
        sizes=(m.sizes[axis],),
        counts=(m.counts[axis],),
        region=(m.region[axis],),
        support=(m.support[axis],),
        field=None if m.field is None else (m.field[axis],),
        separable=True,
        grid=None,
        spreads=(m.spreads[axis],),
    )
    drawn = picture(one, 1, max_cols)
    assert drawn is not None  # one axis is always drawn
    return drawn


def hole_fraction(m: CoverageMap) -> Fraction | None:
    """Holes over the field's pixels (None without the N-D map or without a field)."""
    holes = m.holes
    if holes is None or not m.field_pixels:
        return None
    return Fraction(holes, m.field_pixels)
