"""Standalone SVG pictures of count maps: coverage (`convcalc coverage --svg`) and overlap (`conv`, `deconv`,
`pool --svg`). Text only (no dependencies): every cell is a <rect> with its number in `data-count` and a
<title> (so the picture's numbers can be read back and equal the JSON's), holes hatched, boxes on top.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from xml.sax.saxutils import escape, quoteattr

from convcalc.analysis.calculators import LayerResult
from convcalc.analysis.coverage_map import CoverageMap, Picture
from convcalc.documents.calculator import MAP_MAX, map_data
from convcalc.geometry.coverage import Count
from convcalc.geometry.overlap import outer
from convcalc.notation import fraction_text

#: Cell size in SVG user units, and the most cells drawn per axis (larger maps are downsampled by the caller).
CELL = 14
MAX_CELLS = 96


@dataclass(frozen=True)
class Box:
    """A rectangle over the cells: [r0, r1] × [c0, c1] in (fractional) cell coordinates, inclusive of the
    far edge (r1, c1 are the last cells' far edges), with a label and a stroke colour."""

    label: str
    rows: tuple[Fraction, Fraction]
    cols: tuple[Fraction, Fraction]
    colour: str
    dashed: bool = False


def _shade(c: Count, peak: Count) -> str:
    """White (0) to dark blue (the peak)."""
    t = float(c) / float(peak) if peak else 0.0
    level = round(255 - 200 * t)
    return f"rgb({level},{min(255, level + 20)},255)" if c else "#ffffff"


def grid_svg(
    title: str,
    caption: str,
    cells: Sequence[Sequence[Count]],
    holes: Sequence[Sequence[bool]],
    boxes: Sequence[Box] = (),
    labels: tuple[Sequence[str], Sequence[str]] | None = None,
) -> str:
    """An SVG of `cells` (rows × columns), shaded by count; hole cells hatched red."""
    rows, cols = len(cells), max((len(r) for r in cells), default=0)
    margin = 28
    longest = max([len(caption), *(len(b.label) for b in boxes)])
    width = max(margin + cols * CELL + 10, 8 + 6 * longest)  # about 6 units per character at font-size 10
    height = margin + rows * CELL + 22 + 16 * (1 + len(boxes))
    peak = max((c for row in cells for c in row), default=0)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="10">',
        f"<title>{escape(title)}</title>",
        '<defs><pattern id="hole" width="4" height="4" patternUnits="userSpaceOnUse">'
        '<rect width="4" height="4" fill="#fde0e0"/><path d="M0,4 L4,0" stroke="#d03030" stroke-width="1"/>'
        "</pattern></defs>",
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<g class="cells" transform="translate({margin},{margin})">',
    ]
    for r, row in enumerate(cells):
        for c, value in enumerate(row):
            hole = holes[r][c] if r < len(holes) and c < len(holes[r]) else False
            fill = "url(#hole)" if hole else _shade(value, peak)
            text = fraction_text(value) if isinstance(value, Fraction) else str(value)
            tip = escape(text + (" (hole)" if hole else ""))
            flag = ' data-hole="1"' if hole else ""
            out.append(
                f'<rect x="{c * CELL}" y="{r * CELL}" width="{CELL}" height="{CELL}" fill="{fill}" '
                f'stroke="#c8c8c8" stroke-width="0.5" data-row="{r}" data-col="{c}" data-count="{text}"{flag}>'
                f"<title>{tip}</title></rect>"
            )
    if rows <= 32 and cols <= 32:
        # Small maps carry their numbers in the cells, as in Dumoulin & Visin's figures.
        for r, row in enumerate(cells):
            for c, value in enumerate(row):
                text = fraction_text(value) if isinstance(value, Fraction) else str(value)
                if value and len(text) <= 3:
                    x, y = c * CELL + CELL / 2, r * CELL + CELL - 4
                    out.append(f'<text x="{x:g}" y="{y}" text-anchor="middle" font-size="8">{text}</text>')
    for box in boxes:
        x0, x1 = (float(v) * CELL for v in box.cols)
        y0, y1 = (float(v) * CELL for v in box.rows)
        dash = ' stroke-dasharray="4,2"' if box.dashed else ""
        out.append(
            f'<rect class="box" data-label={quoteattr(box.label)} x="{x0:g}" y="{y0:g}" width="{x1 - x0:g}" '
            f'height="{y1 - y0:g}" fill="none" stroke="{box.colour}" stroke-width="1.5"{dash}/>'
        )
    out.append("</g>")
    if labels is not None:
        row_labels, col_labels = labels
        for r, text in enumerate(row_labels):
            if text:
                y = margin + r * CELL + CELL - 3
                out.append(f'<text x="{margin - 3}" y="{y}" text-anchor="end">{escape(text)}</text>')
        for c, text in enumerate(col_labels):
            if text:
                x = margin + c * CELL + CELL / 2
                out.append(f'<text x="{x:g}" y="{margin - 4}" text-anchor="middle">{escape(text)}</text>')
    y = margin + rows * CELL + 16
    out.append(f'<text x="4" y="{y}">{escape(caption)}</text>')
    for i, box in enumerate(boxes, start=1):
        out.append(f'<text x="4" y="{y + 16 * i}" fill="{box.colour}">{escape(box.label)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _every(lo: int, n: int, factor: int, step: int = 4) -> list[str]:
    """Axis labels: the first position of every `step`-th cell."""
    return [str(lo + i * factor) if i % step == 0 else "" for i in range(n)]


def _span(interval: tuple[Fraction, Fraction], lo: int, factor: int) -> tuple[Fraction, Fraction]:
    """Input positions [a, b] (inclusive) as cell coordinates of a window starting at `lo`."""
    a, b = interval
    return (Fraction(a - lo) / factor, Fraction(b + 1 - lo) / factor)


def coverage_svg(m: CoverageMap, p: Picture) -> str:
    """The coverage map of `m` as drawn in `p`, with the receptive-field box (region; dashed where it leaves
    the window), the support box and the ERF boxes (mean ± the 50/90/99 % radius per axis)."""
    rank = len(p.window)
    lo = [a for a, _ in p.window]
    rows = len(p.cells)

    def box(label: str, per_axis: Sequence[tuple[Fraction, Fraction]], colour: str, dashed: bool = False) -> Box:
        spans = [_span(iv, lo[axis], p.factor) for axis, iv in enumerate(per_axis)]
        cols = spans[-1]
        rs = spans[0] if rank == 2 else (Fraction(0), Fraction(rows))
        return Box(label, rs, cols, colour, dashed)

    boxes = []
    if all(r is not None for r in m.region):
        region = [(Fraction(r[0]), Fraction(r[1])) for r in m.region if r is not None]
        text = " × ".join(f"[{r[0]}, {r[1]}]" for r in m.region if r is not None)
        boxes.append(box(f"receptive field (region) {text}", region, "#303030", dashed=True))
    if all(s is not None for s in m.support):
        support = [(Fraction(s[0]), Fraction(s[1])) for s in m.support if s is not None]
        text = " × ".join(f"[{s[0]}, {s[1]}]" for s in m.support if s is not None)
        boxes.append(box(f"support {text}", support, "#208020"))
    colours = {50: "#e08000", 90: "#c04080", 99: "#8040c0"}
    if all(s is not None for s in m.spreads):
        for mass, colour in colours.items():
            spans = []
            for s in m.spreads:
                assert s is not None
                radius = dict(s.radius).get(mass)
                if radius is None:
                    break
                # Pixels whose centre lies within the radius of the mean: [mean − r, mean + r].
                spans.append((s.mean - radius, s.mean + radius))
            if len(spans) == rank:
                radii = ", ".join(fraction_text(dict(s.radius)[mass]) for s in m.spreads if s is not None)
                boxes.append(box(f"ERF {mass} %: mean ± {radii}", spans, colour))
    size = str(len(p.cells[0])) if rank == 1 else f"{len(p.cells)}×{len(p.cells[0])}"
    pixels = f"{p.factor}×{p.factor}" if rank == 2 else str(p.factor)
    cell = f"each cell the max of {pixels} pixels; " if p.factor > 1 else ""
    caption = (
        f"paths from each input pixel to unit {','.join(map(str, m.unit))} of {m.layer}; {cell}"
        f"{size} cells; hatched: holes (no path, inside the field)"
    )
    holes = [[h > 0 and h == f for h, f in zip(hr, fr, strict=True)] for hr, fr in zip(p.holes, p.field, strict=True)]
    labels = (
        _every(lo[0], rows, p.factor) if rank == 2 else [""],
        _every(lo[-1], len(p.cells[0]), p.factor),
    )
    title = f"coverage of unit {','.join(map(str, m.unit))} of layer {m.layer}"
    return grid_svg(title, caption, p.cells, holes, boxes, labels)


def overlap_values(result: LayerResult) -> tuple[str, tuple[tuple[int, ...], ...]]:
    """The map drawn for the last two axes: for a transposed conv the taps reaching each output (the
    JSON's overlap map), for a conv or pool the windows reading each input pixel (the outer product of the
    JSON's per-axis counts); the whole axes when each is at most MAP_MAX long, else one period (the phases).
    ("whole" | "period", values)."""
    if result.settings.kind == "deconv":
        kind, values, _ = map_data(result)
        return kind, values
    drawn = result.axes[-2:]
    counts = [a.overlap.counts for a in drawn]
    if all(c is not None and len(c) <= MAP_MAX for c in counts):
        return "whole", outer([c.values() for c in counts if c is not None])
    return "period", outer([a.overlap.taps for a in drawn])


def overlap_svg(result: LayerResult) -> str:
    """The overlap map as SVG: output cells shaded by the taps reaching them (transposed conv, as in
    Dumoulin & Visin's figures) or input pixels by the windows reading them (conv, pool); zero: a hole."""
    s = result.settings
    deconv = s.kind == "deconv"
    kind, values = overlap_values(result)
    what = "taps reaching each output" if deconv else "windows reading each input pixel"
    axes = " × ".join(a.axis for a in result.axes[-2:])
    where = "the whole axis" if kind == "whole" else "one period away from the borders (rows and columns: phases)"
    caption = f"{what} ({axes}), {where}; hatched: none (a hole)"
    holes = [[v == 0 for v in row] for row in values]
    boxes: list[Box] = []
    if not deconv and kind == "whole":
        # The first output's window: its taps start at −before and span the effective kernel.
        spans = []
        lengths = (len(values), len(values[0])) if len(result.axes) > 1 else (len(values[0]),)
        for a, n in zip(result.axes[-2:], lengths, strict=True):
            before = a.padding[0] if a.padding is not None else 0
            span = (a.kernel - 1) * a.dilation + 1
            # Clipped to the drawn input: the padding is not drawn.
            spans.append((Fraction(max(-before, 0)), Fraction(min(span - before, n))))
        cols = spans[-1]
        rows = spans[0] if len(spans) == 2 else (Fraction(0), Fraction(1))
        boxes.append(Box("the window of output 0 (dashed where it reads padding)", rows, cols, "#c04000", True))
    title = f"{s.torch_name}: {what}"
    return grid_svg(title, caption, values, holes, boxes)
