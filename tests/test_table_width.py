"""The terminal table never cuts a value: at 60, 80, 100 and 120 columns every layer's shape, RF and jump
stay whole (hidden columns are named), and output that is not a terminal gets every column, aligned, with
no box drawing (while a real terminal keeps the box)."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cli import grid, render
from cli.terminal import Terminal, cell_width
from convcalc.analysis.engine import analyze
from convcalc.analysis.report import StackReport
from convcalc.format.loader import load_stack, parse_input_shape
from tests.pty_run import in_terminal, strip_colour

ROOT = Path(__file__).parent.parent
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
ESSENTIAL = ("layer", "output", "jump", "RF")


def _report(path: Path, shape: str | None = None) -> StackReport:
    return analyze(load_stack(path, parse_input_shape(shape) if shape else None))


def _split(line: str, widths: list[int], frame: grid.Frame) -> list[str]:
    """A row line's cells: between `│` in a box, by the planned widths (two spaces apart) when plain."""
    if frame == "box":
        return line.split("│")[1:-1]
    parts, start = [], 0
    for w in widths:
        # Walk `w` terminal columns (wide characters count 2) from `start`, then skip the two-space gap.
        end, taken = start, 0
        while end < len(line) and taken < w:
            taken += cell_width(line[end])
            end += 1
        parts.append(line[start:end])
        assert line[end : end + 2].strip() == "", line
        start = end + 2
    assert line[start:].strip() == "", line  # nothing past the last column
    return parts


def _cells_of(lines: list[str], shown: list[str], widths: list[int], frame: grid.Frame = "box") -> dict[str, str]:
    """Re-assemble each column's text from a row's lines (folded pieces joined back)."""
    pieces: dict[str, list[str]] = {title: [] for title in shown}
    for line in lines:
        parts = _split(line, widths, frame)
        assert len(parts) == len(shown), line
        for title, part in zip(shown, parts, strict=True):
            if part.strip():
                pieces[title].append(part.strip())
    # Folded cells break after × and ., and at spaces (restored as one space).
    return {t: "".join(p) if t != "diag" else " ".join(p) for t, p in pieces.items()}


CASES = [(p.stem, None) for p in CONFIGS] + [("resnet18", "3x512x512")]


@pytest.mark.parametrize("frame", ["box", "plain"])
@pytest.mark.parametrize("width", [60, 80, 100, 120, None])
@pytest.mark.parametrize(("name", "shape"), CASES, ids=[f"{n}-{s}" if s else n for n, s in CASES])
def test_no_value_is_cut(name: str, shape: str | None, width: int | None, frame: grid.Frame) -> None:
    report = _report(ROOT / "configs" / f"{name}.yaml", shape)
    rows = [render.layer_row(layer) for layer in report.layers]
    layout = grid.plan(render.TABLE_COLUMNS, rows, width, frame)
    shown = [render.TABLE_COLUMNS[j].title for j in layout.shown]
    assert set(ESSENTIAL) <= set(shown)
    if width is None:
        assert layout.hidden == ()
    terminal = Terminal(io.StringIO(), width, color=False, boxes=frame == "box")
    for row in rows:
        lines = grid.row_lines(render.TABLE_COLUMNS, row, layout, terminal, frame)
        if width is not None and width >= 80:
            assert all(cell_width(line) <= width for line in lines), (name, width, lines)
        cells = _cells_of(lines, shown, list(layout.widths), frame)
        for j, title in zip(layout.shown, shown, strict=True):
            assert cells[title] == row[j].strip(), (title, row[j], lines)
    if width is not None and width >= 100:
        # Hidden columns are the low-priority ones, and only as many as needed.
        assert "centre" not in layout.hidden or "P" in layout.hidden or "MACs" not in layout.hidden


def test_hidden_columns_are_named_below_the_table() -> None:
    report = _report(ROOT / "configs" / "unet_small.yaml")
    out = io.StringIO()
    render.print_table(report, Terminal(out, 60, color=False, boxes=True))
    text = out.getvalue()
    assert "(hidden to fit 60 columns: centre, P, MACs" in text
    assert all(cell_width(line) <= 60 for line in text.splitlines() if line[:1] in "┏┃┡│└")
    assert "…" not in text


@pytest.mark.parametrize("boxes", [True, False])
def test_full_width_keeps_every_column(boxes: bool) -> None:
    report = _report(ROOT / "configs" / "unet_small.yaml")
    out = io.StringIO()
    render.print_table(report, Terminal(out, None, color=False, boxes=boxes))
    if boxes:
        header = out.getvalue().splitlines()[2]
        assert [c.strip() for c in header.split("┃")[1:-1]] == list(render.COLUMNS)
    else:
        assert out.getvalue().splitlines()[1].split() == list(render.COLUMNS)
    assert "hidden" not in out.getvalue()


def test_exported_columns_do_not_narrow_a_file() -> None:
    """COLUMNS=80 exported in the environment: output to a file still has every column, nothing cut."""
    env = {**os.environ, "COLUMNS": "80"}
    result = subprocess.run(
        [sys.executable, "-m", "cli", "rf", "configs/unet_small.yaml"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "…" not in result.stdout
    assert "hidden" not in result.stdout
    header = result.stdout.splitlines()[1]
    assert header.split() == list(render.COLUMNS)
    assert "16×64×64" in result.stdout


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text(st.sampled_from("ab.×1"), min_size=1, max_size=12),
            st.text(st.sampled_from("12×?"), min_size=1, max_size=14),
        ),
        min_size=1,
        max_size=6,
    ),
    st.integers(8, 60),
    st.sampled_from(["box", "plain"]),
)
def test_folding_never_loses_characters(rows: list[tuple[str, str]], width: int, frame: grid.Frame) -> None:
    """Law: whatever the width and frame, each cell's folded pieces join back to the cell, at the planned
    width (in a box every cell is padded to it; plain, every cell but the last, whose padding is stripped)."""
    columns = (grid.Column("name", breaks="."), grid.Column("size", "right", breaks="×"))
    table = [list(r) for r in rows]
    layout = grid.plan(columns, table, width, frame)
    terminal = Terminal(io.StringIO(), width, color=False, boxes=frame == "box")
    for row in table:
        lines = grid.row_lines(columns, row, layout, terminal, frame)
        cells = _cells_of(lines, ["name", "size"], list(layout.widths), frame)
        assert cells == {"name": row[0].strip(), "size": row[1].strip()}
        for line in lines:
            if frame == "box":
                parts = line.split("│")[1:-1]
                for part, w in zip(parts, layout.widths, strict=True):
                    assert cell_width(part) == w + 2
            else:
                assert cell_width(line) <= sum(layout.widths) + 2 * (len(layout.widths) - 1)


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_a_real_80_column_terminal_cuts_nothing() -> None:
    text = strip_colour(in_terminal(["rf", "configs/unet_small.yaml"], 80))
    table = [line for line in text.splitlines() if line[:1] in "┏┃┡│└"]
    assert table
    assert all(cell_width(line) <= 80 for line in table)
    assert "…" not in text
    assert "16×64×64" in text
    assert "40–44" in text
    assert "(hidden to fit 80 columns:" in text


#: One command line per command that prints a table, a rule or a picture to stdout.
PIPED = {
    "rf": ["rf", "configs/unet_small.yaml"],
    "run": ["run", "configs/seed_two_layer.yaml", "--data", "ones", "--weights", "ones"],
    "conv": ["conv", "--k", "3", "--s", "2", "--p", "1", "--i", "32"],
    "deconv": ["deconv", "--k", "3", "--s", "2", "--i", "8", "--target", "16"],
    "pool": ["pool", "--k", "3", "--s", "2", "--i", "112", "--ceil"],
    "locate": ["locate", "configs/unet_small.yaml", "--pixel", "10,20"],
    "coverage": ["coverage", "configs/seed_deconv.yaml"],
    "list": ["list"],
    "check": ["check", "configs/seed_deconv.yaml", "configs/unet_small.yaml"],
}
_BOX_DRAWING = re.compile("[\u2500-\u257f]")


def _piped(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=ROOT,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("command", sorted(PIPED))
def test_piped_output_has_no_box_drawing(command: str) -> None:
    """Off a terminal every table and rule is plain columns: no U+2500–U+257F character anywhere."""
    result = _piped(PIPED[command])
    assert result.returncode in (0, 3), result.stderr
    assert result.stdout.strip()
    assert not _BOX_DRAWING.findall(result.stdout), result.stdout


@pytest.mark.parametrize("command", ["rf", "conv"])
def test_forced_colour_does_not_force_boxes(command: str) -> None:
    """FORCE_COLOR colours a pipe (a CI log) but leaves its tables plain for scripts."""
    result = _piped(PIPED[command], {"FORCE_COLOR": "1"})
    assert result.returncode == 0, result.stderr
    assert "\x1b[" in result.stdout
    assert not _BOX_DRAWING.findall(result.stdout)
    always = _piped([*PIPED[command], "--color", "always"])
    assert "\x1b[" in always.stdout
    assert not _BOX_DRAWING.findall(always.stdout)


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_a_terminal_still_gets_the_box() -> None:
    rf = strip_colour(in_terminal(PIPED["rf"], 200)).splitlines()
    assert rf[1].startswith("┏")
    assert rf[3].startswith("┡")
    assert [c.strip() for c in rf[2].split("┃")[1:-1]] == list(render.COLUMNS)
    assert any(line.startswith("└") for line in rf)
    conv = strip_colour(in_terminal(["conv", "--k", "3", "--s", "2", "--i", "32"], 200)).splitlines()
    assert any(line and set(line) == {"─"} for line in conv), conv
