"""Tables that never cut a number: column widths planned for the terminal, rows streamed line by line.

When a table is wider than the terminal, columns are hidden in their documented order (`Column.drop`,
lowest first; columns without one are never hidden), then cells that may break (`Column.breaks`: after
`×` between per-axis values, after `.` in qualified names, at spaces) fold onto more lines. A value is
never truncated: if even the folded essentials do not fit, the line is simply longer than the
terminal. Output that is not a terminal has no width limit, so it always gets every column whole,
and no box drawing: `write` draws every frame as "plain" there (`Terminal.boxes`).
Rendering is linear in the number of rows (a 100,000-layer table takes about a second).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from cli.terminal import Terminal, cell_width, printable


@dataclass(frozen=True)
class Column:
    """One column: its title, alignment, drop order (None: never hidden) and where its cells may break."""

    title: str
    justify: Literal["left", "right"] = "left"
    drop: int | None = None
    breaks: str = ""


@dataclass(frozen=True)
class Cell:
    """A cell's text with a style ('bold red', ...), applied only when colour is on."""

    text: str
    style: str | None = None


CellLike = str | Cell


@dataclass(frozen=True)
class Layout:
    """The planned table: which columns show (indices into the columns), at what widths, and which were hidden."""

    shown: tuple[int, ...]
    widths: tuple[int, ...]
    hidden: tuple[str, ...]


def _text(cell: CellLike) -> str:
    return printable(cell.text if isinstance(cell, Cell) else cell)


def _atoms(text: str, breaks: str) -> list[str]:
    """`text` cut after each break character: the pieces a folded cell is made of."""
    if not breaks:
        return [text]
    atoms: list[str] = []
    start = 0
    for i, ch in enumerate(text):
        if ch in breaks:
            atoms.append(text[start : i + 1])
            start = i + 1
    if start < len(text):
        atoms.append(text[start:])
    return atoms or [""]


def _fold(text: str, breaks: str, width: int) -> list[str]:
    """`text` as lines of at most `width` columns, broken only after break characters."""
    if cell_width(text) <= width:
        return [text]
    lines: list[str] = []
    line = ""
    for atom in _atoms(text, breaks):
        if line and cell_width((line + atom).rstrip()) > width:
            lines.append(line.rstrip())
            line = atom.lstrip()
        else:
            line += atom
    lines.append(line.rstrip())
    return lines


#: How a table is drawn on a terminal: "box" (heavy header, light body), "rule" (a line under the
#: header, for two-column reports), "plain" (aligned columns two spaces apart, the header first: what
#: every table becomes off a terminal).
Frame = Literal["box", "rule", "plain"]


def _total(widths: Sequence[int], frame: Frame) -> int:
    n = len(widths)
    return sum(widths) + (3 * n + 1 if frame == "box" else 2 * max(n - 1, 0))


def plan(columns: Sequence[Column], rows: Sequence[Sequence[CellLike]], width: int | None, frame: Frame) -> Layout:
    """Choose the columns and widths for a terminal `width` columns wide (None: unlimited)."""
    n = len(columns)
    natural = [cell_width(c.title) for c in columns]
    smallest = list(natural)
    for row in rows:
        for j in range(n):
            text = _text(row[j])
            w = cell_width(text)
            if w > natural[j]:
                natural[j] = w
            if columns[j].breaks and w > smallest[j]:
                piece = max(cell_width(a.strip()) for a in _atoms(text, columns[j].breaks))
                if piece > smallest[j]:
                    smallest[j] = piece
            elif not columns[j].breaks:
                smallest[j] = natural[j]
    shown = list(range(n))
    hidden: list[str] = []
    if width is not None:
        droppable = sorted((c.drop, j) for j, c in enumerate(columns) if c.drop is not None)
        for _, j in droppable:
            if _total([natural[k] for k in shown], frame) <= width:
                break
            shown.remove(j)
            hidden.append(columns[j].title)
    widths = {j: natural[j] for j in shown}
    if width is not None:
        excess = _total(list(widths.values()), frame) - width
        # Fold the breakable columns, the widest excess first, down to their widest unbreakable piece.
        while excess > 0:
            candidates = [j for j in shown if widths[j] > smallest[j]]
            if not candidates:
                break
            j = max(candidates, key=lambda k: widths[k] - smallest[k])
            cut = min(excess, widths[j] - smallest[j], max(1, (widths[j] - smallest[j] + 1) // 2))
            widths[j] -= cut
            excess -= cut
    return Layout(tuple(shown), tuple(widths[j] for j in shown), tuple(hidden))


# Box drawing as Rich's default table style: a heavy header, a light body.
_TOP = ("┏", "━", "┳", "┓")
_UNDER_HEADER = ("┡", "━", "╇", "┩")
_BOTTOM = ("└", "─", "┴", "┘")
_HEADER_EDGE, _BODY_EDGE = "┃", "│"


def _rule(parts: tuple[str, str, str, str], widths: Sequence[int]) -> str:
    left, fill, joint, right = parts
    return left + joint.join(fill * (w + 2) for w in widths) + right


def _pad(text: str, width: int, justify: str) -> str:
    gap = " " * (width - cell_width(text))
    return gap + text if justify == "right" else text + gap


def _join(cells: list[str], edge: str, frame: Frame) -> str:
    if frame == "box":
        return f"{edge} " + f" {edge} ".join(cells) + f" {edge}"
    return "  ".join(cells).rstrip()


def row_lines(
    columns: Sequence[Column],
    row: Sequence[CellLike],
    layout: Layout,
    terminal: Terminal,
    frame: Frame = "box",
) -> list[str]:
    """One body row as lines: its cells padded, folded where the layout needs it, and styled."""
    cols = [columns[j] for j in layout.shown]
    cells = [row[j] for j in layout.shown]
    folded = [_fold(_text(cell), c.breaks, w) for cell, c, w in zip(cells, cols, layout.widths, strict=True)]
    out = []
    for i in range(max(len(f) for f in folded)):
        parts = []
        for cell, c, w, f in zip(cells, cols, layout.widths, folded, strict=True):
            piece = _pad(f[i] if i < len(f) else "", w, c.justify)
            parts.append(terminal.style(piece, cell.style if isinstance(cell, Cell) else None))
        out.append(_join(parts, _BODY_EDGE, frame))
    return out


def lines(
    columns: Sequence[Column],
    rows: Sequence[Sequence[CellLike]],
    layout: Layout,
    terminal: Terminal,
    frame: Frame = "box",
) -> Iterator[str]:
    """The table's lines, header first, then every row (see row_lines)."""
    cols = [columns[j] for j in layout.shown]
    widths = layout.widths
    if frame == "box":
        yield _rule(_TOP, widths)
    header = [terminal.style(_pad(c.title, w, c.justify), "bold") for c, w in zip(cols, widths, strict=True)]
    yield _join(header, _HEADER_EDGE, frame)
    if frame == "box":
        yield _rule(_UNDER_HEADER, widths)
    elif frame == "rule":
        yield "─" * _total(widths, frame)
    for row in rows:
        yield from row_lines(columns, row, layout, terminal, frame)
    if frame == "box":
        yield _rule(_BOTTOM, widths)


def write(
    terminal: Terminal,
    columns: Sequence[Column],
    rows: Sequence[Sequence[CellLike]],
    frame: Frame = "box",
) -> Layout:
    """Plan the table for the terminal's width and write it, in `frame` on a terminal and "plain" elsewhere;
    returns the layout (hidden columns to report)."""
    if not terminal.boxes:
        frame = "plain"
    layout = plan(columns, rows, terminal.width, frame)
    for text in lines(columns, rows, layout, terminal, frame):
        terminal.line(text)
    return layout
