"""The terminal table never cuts a value: at 60, 80, 100 and 120 columns every layer's shape, RF and jump
stay whole (hidden columns are named), and output that is not a terminal gets every column."""

from __future__ import annotations

import io
import os
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


def _cells_of(lines: list[str], shown: list[str]) -> dict[str, str]:
    """Re-assemble each column's text from a row's lines (folded pieces joined back)."""
    pieces: dict[str, list[str]] = {title: [] for title in shown}
    for line in lines:
        parts = line.split("│")[1:-1]
        assert len(parts) == len(shown), line
        for title, part in zip(shown, parts, strict=True):
            if part.strip():
                pieces[title].append(part.strip())
    # Folded cells break after × and ., and at spaces (restored as one space).
    return {t: "".join(p) if t != "diag" else " ".join(p) for t, p in pieces.items()}


CASES = [(p.stem, None) for p in CONFIGS] + [("resnet18", "3x512x512")]


@pytest.mark.parametrize("width", [60, 80, 100, 120])
@pytest.mark.parametrize(("name", "shape"), CASES, ids=[f"{n}-{s}" if s else n for n, s in CASES])
def test_no_value_is_cut(name: str, shape: str | None, width: int) -> None:
    report = _report(ROOT / "configs" / f"{name}.yaml", shape)
    rows = [render.layer_row(layer) for layer in report.layers]
    layout = grid.plan(render.TABLE_COLUMNS, rows, width, "box")
    shown = [render.TABLE_COLUMNS[j].title for j in layout.shown]
    assert set(ESSENTIAL) <= set(shown)
    terminal = Terminal(io.StringIO(), width, color=False)
    for row in rows:
        lines = grid.row_lines(render.TABLE_COLUMNS, row, layout, terminal)
        if width >= 80:
            assert all(cell_width(line) <= width for line in lines), (name, width, lines)
        cells = _cells_of(lines, shown)
        for j, title in zip(layout.shown, shown, strict=True):
            assert cells[title] == row[j].strip(), (title, row[j], lines)
    if width >= 100:
        # Hidden columns are the low-priority ones, and only as many as needed.
        assert "centre" not in layout.hidden or "P" in layout.hidden or "MACs" not in layout.hidden


def test_hidden_columns_are_named_below_the_table() -> None:
    report = _report(ROOT / "configs" / "unet_small.yaml")
    out = io.StringIO()
    render.print_table(report, Terminal(out, 60, color=False))
    text = out.getvalue()
    assert "(hidden to fit 60 columns: centre, P, MACs" in text
    assert all(cell_width(line) <= 60 for line in text.splitlines() if line[:1] in "┏┃┡│└")
    assert "…" not in text


def test_full_width_keeps_every_column() -> None:
    report = _report(ROOT / "configs" / "unet_small.yaml")
    out = io.StringIO()
    render.print_table(report, Terminal(out, None, color=False))
    header = out.getvalue().splitlines()[2]
    assert [c.strip() for c in header.split("┃")[1:-1]] == list(render.COLUMNS)
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
    assert "│ diag" not in result.stdout  # diag is a header cell (┃), the body has values
    assert "┃ centre ┃" in result.stdout


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
)
def test_folding_never_loses_characters(rows: list[tuple[str, str]], width: int) -> None:
    """Law: whatever the width, each cell's folded pieces join back to the cell, at the planned width."""
    columns = (grid.Column("name", breaks="."), grid.Column("size", "right", breaks="×"))
    table = [list(r) for r in rows]
    layout = grid.plan(columns, table, width, "box")
    terminal = Terminal(io.StringIO(), width, color=False)
    for row in table:
        lines = grid.row_lines(columns, row, layout, terminal)
        cells = _cells_of(lines, ["name", "size"])
        assert cells == {"name": row[0].strip(), "size": row[1].strip()}
        for line in lines:
            parts = line.split("│")[1:-1]
            for part, w in zip(parts, layout.widths, strict=True):
                assert cell_width(part) == w + 2


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
