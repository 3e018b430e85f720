"""`convcalc coverage` (heat map, JSON, SVG) and `--svg` on conv, deconv and pool: hand-derived numbers,
the pictures' numbers equal the JSON's, holes visible without colour, and the file guard."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()

# Three 3×3 convs with dilation 2 and padding 2 on 32×32. The centre unit's counts along each axis are the
# coefficients of (1 + x² + x⁴)³ at even offsets: 1 0 3 0 6 0 7 0 6 0 3 0 1 from position 9 (field 13).
GRIDDING = """\
input: [1, 32, 32]
layers:
  - {op: conv, kernel: 3, dilation: 2, padding: 2}
  - {op: conv, kernel: 3, dilation: 2, padding: 2}
  - {op: conv, kernel: 3, dilation: 2, padding: 2}
"""
TRINOMIAL = [1, 0, 3, 0, 6, 0, 7, 0, 6, 0, 3, 0, 1]


def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), input=input, env={"COLUMNS": "120", **(env or {})}, prog_name="convcalc")
    return result.exit_code, result.stdout, result.stderr


def coverage_json(*args: str, input: str | None = None) -> dict[str, Any]:
    code, out, err = invoke("coverage", *args, "--format", "json", input=input)
    assert code == 0, err
    return dict(json.loads(out))


def one_d(dilations: list[int], n: int = 64) -> str:
    layers = "".join(f"  - {{op: conv, kernel: 3, dilation: {d}, padding: {d}}}\n" for d in dilations)
    return f"input: [1, {n}]\nlayers:\n{layers}"


def test_gridding_counts_holes_and_erf() -> None:
    doc = coverage_json("-", input=GRIDDING)
    assert doc["index"] == [15, 15]
    assert doc["field"] == [[9, 21], [9, 21]]
    assert [axis[9:22] for axis in doc["counts"]] == [TRINOMIAL, TRINOMIAL]
    # 7 of the 13 positions per axis are reached: 169 − 49 holes.
    assert doc["field_pixels"] == 169
    assert doc["holes"] == 120
    assert doc["hole_fraction"] == "120/169"
    # Variance of (1 + x² + x⁴)³: 3 · variance of {0, 2, 4} uniform = 3 · 8/3 = 8.
    assert [e["variance"] for e in doc["erf"]] == ["8", "8"]
    # The picture at one pixel per cell is the 2-D map: the outer product of the two axes.
    cells = doc["map"]["cells"]
    assert doc["map"]["factor"] == 1
    assert cells == [[a * b for b in TRINOMIAL] for a in TRINOMIAL]
    assert doc["map"]["holes"] == [[int(not (a * b)) for b in TRINOMIAL] for a in TRINOMIAL]


@pytest.mark.parametrize(("dilations", "holes"), [([2, 2, 2], True), ([1, 2, 5], False)])
def test_dilation_rates_with_and_without_holes(dilations: list[int], holes: bool) -> None:
    # [2, 2, 2] reaches only even offsets (field 13, 7 reached); [1, 2, 5] (HDC) reaches every one of its 17.
    doc = coverage_json("-", input=one_d(dilations))
    field = 1 + 2 * sum(dilations)
    assert doc["field_pixels"] == field
    assert (doc["holes"] > 0) is holes
    assert doc["holes"] == (field - 7 if holes else 0)


def test_context_module_has_no_holes() -> None:
    # Yu & Koltun's context module: 3×3 convs with dilations 1, 1, 2, 4, 8, 16, 1: fields 3 5 9 17 33 65 67.
    stack = one_d([1, 1, 2, 4, 8, 16, 1], n=160)
    doc = coverage_json("-", input=stack)
    assert doc["field_pixels"] == 67
    assert doc["holes"] == 0


def test_a_residual_sum_is_not_the_product_of_its_axes() -> None:
    # y = conv3×3(x) + x on 5×5: the centre unit is reached by 9 pixels once and by the centre once more, so
    # its 2-D map is ones with a 2 in the middle; the product of the axes' counts (1 2 1) would put 4 there.
    stack = """\
input: [1, 5, 5]
layers:
  - {name: a, op: conv, kernel: 3, padding: 1}
  - {name: s, op: add, from: [a, input]}
"""
    doc = coverage_json("-", input=stack)
    assert doc["separable"] is False
    assert doc["counts"] == [[0, 1, 2, 1, 0], [0, 1, 2, 1, 0]]
    assert doc["map"]["cells"] == [[1, 1, 1], [1, 2, 1], [1, 1, 1]]


def test_downsampled_cells_are_the_max_of_their_pixels() -> None:
    # Ten 3×3 convs with dilation 2: along each axis the counts are the coefficients of (1 + x² + x⁴)¹⁰
    # (field 41, more than the 32 rows drawn): each cell is the max of its f×f block of their outer product.
    stack = "input: [1, 64, 64]\nlayers:\n" + "  - {op: conv, kernel: 3, dilation: 2, padding: 2}\n" * 10
    line = [1]
    for _ in range(10):
        line = [sum(line[i - j] for j in (0, 2, 4) if 0 <= i - j < len(line)) for i in range(len(line) + 4)]
    doc = coverage_json("-", input=stack)
    f = doc["map"]["factor"]
    assert f > 1
    assert doc["field"] == [[11, 51], [11, 51]]
    blocks = [line[i : i + f] for i in range(0, 41, f)]
    assert doc["map"]["cells"] == [[max(a) * max(b) for b in blocks] for a in blocks]
    # Every block of two or more positions holds a reached one and a hole: every cell has some holes.
    assert all(h > 0 for row in doc["map"]["holes"] for h in row)


def test_heat_map_without_colour_shows_holes_and_legend() -> None:
    code, out, _ = invoke("coverage", "-", input=GRIDDING, env={"NO_COLOR": "1"})
    assert code == 0
    assert "\x1b[" not in out
    rows = map_rows(out)
    assert len(rows) == 13  # one row per pixel of the field at factor 1 (two characters per cell)
    # Row 2 of the field (position 10) is all holes; the others alternate shade and hole.
    assert rows[1] == "×" * 26
    # The centre row is 7 × (1 3 6 7 6 3 1) over the max 49: 1/7 ░, 3/7 ▒, 6/7 and 1 █ (above 3/4).
    assert rows[0].startswith("░░××")
    assert rows[6] == "░░××▒▒××██××██××██××▒▒××░░"
    assert "× hole" in out
    assert "each cell: one pixel" in out
    assert "holes 120" in out


def test_heat_map_legend_says_the_factor() -> None:
    code, out, _ = invoke("coverage", "wavenet_tcn")
    assert code == 0
    assert "each cell: the max of" in out
    assert "downsampled by" in out
    assert len(map_rows(out)) == 1  # a 1-D stack: one strip


def map_rows(out: str) -> list[str]:
    """The heat map's rows: lines made of the map's glyphs up to the statistics (the legend's lines have words)."""
    return [w[0] for line in out.splitlines() if (w := line.split()) and set(w[0]) <= set("░▒▓█×÷·") and len(w[0]) > 1]


def svg_cells(path: Path) -> list[list[str]]:
    root = ET.parse(path).getroot()
    rects = [r for r in root.iter("{http://www.w3.org/2000/svg}rect") if "data-count" in r.attrib]
    rows = 1 + max(int(r.attrib["data-row"]) for r in rects)
    out: list[list[str]] = [[] for _ in range(rows)]
    for r in rects:
        out[int(r.attrib["data-row"])].append(r.attrib["data-count"])
    return out


def test_coverage_svg_equals_the_json(tmp_path: Path) -> None:
    svg = tmp_path / "cov.svg"
    code, _, err = invoke("coverage", "-", "--svg", str(svg), input=GRIDDING)
    assert code == 0, err
    doc = coverage_json("-", input=GRIDDING)
    assert svg_cells(svg) == [[str(c) for c in row] for row in doc["map"]["cells"]]
    labels = [b.attrib["data-label"] for b in ET.parse(svg).getroot().iter() if "data-label" in b.attrib]
    assert any(label.startswith("receptive field") for label in labels)
    assert any(label.startswith("ERF 90 %") for label in labels)


def expand(counts: dict[str, Any]) -> list[int]:
    return [*counts["head"], *(counts["period"] * counts["repeats"]), *counts["tail"]]


@pytest.mark.parametrize(
    "args",
    [
        ["conv", "--k", "3", "--s", "2", "--p", "1", "--i", "9,7"],
        ["conv", "--k", "3", "--d", "2", "--i", "16"],
        ["pool", "--k", "3", "--s", "2", "--i", "9,9"],
        ["pool", "--k", "2", "--i", "8,8", "--avg"],
    ],
)
def test_window_svg_equals_the_json(tmp_path: Path, args: list[str]) -> None:
    svg = tmp_path / "o.svg"
    code, _, err = invoke(*args, "--svg", str(svg))
    assert code == 0, err
    code, out, _ = invoke(*args, "--format", "json")
    axes = [expand(a["overlap"]["counts"]) for a in json.loads(out)["per_axis"]][-2:]
    # Each input pixel is read by (windows along H) × (windows along W): the outer product of the axes.
    expected = [[r * c for c in axes[1]] for r in axes[0]] if len(axes) == 2 else [axes[0]]
    assert svg_cells(svg) == [[str(c) for c in row] for row in expected]


@pytest.mark.parametrize("size", ["4", "40"])
def test_deconv_svg_equals_the_json(tmp_path: Path, size: str) -> None:
    # The seed's 4×4 example: the 7×7 map 1 2 1 2 1 2 1 (outer); at 40 the period 1·2 of each axis.
    svg = tmp_path / "d.svg"
    args = ["deconv", "--k", "3", "--s", "2", "--p", "1", "--i", size]
    code, _, err = invoke(*args, "--svg", str(svg))
    assert code == 0, err
    code, out, _ = invoke(*args, "--format", "json")
    values = json.loads(out)["overlap"]["map"]["values"]
    assert svg_cells(svg) == [[str(c) for c in row] for row in values]
    if size == "4":
        line = [1, 2, 1, 2, 1, 2, 1]
        assert values == [[a * b for b in line] for a in line]


def test_svg_never_overwrites_an_input(tmp_path: Path) -> None:
    stack = tmp_path / "net.yaml"
    stack.write_text(GRIDDING, encoding="utf-8")
    code, _, err = invoke("coverage", str(stack), "--svg", str(tmp_path / "." / "net.yaml"))
    assert code == 1
    assert "one of the command's inputs" in err
    assert "--svg" in err
    assert stack.read_text(encoding="utf-8") == GRIDDING
    code, _, err = invoke("report", str(stack), "-o", str(stack))
    assert code == 1
    assert "--output" in err
    assert stack.read_text(encoding="utf-8") == GRIDDING
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.yaml"]  # no temporary file left


def test_svg_into_a_missing_directory(tmp_path: Path) -> None:
    code, _, err = invoke("deconv", "--k", "3", "--s", "2", "--i", "4", "--svg", str(tmp_path / "no" / "d.svg"))
    assert code == 1
    assert "does not exist" in err


def test_readme_picture_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shlex

    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- pictures:", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    lines = [line.split("#", 1)[0].strip() for line in block.splitlines()]
    stack = str(Path(__file__).parent.parent / "configs" / "seed_dilation.yaml")
    monkeypatch.chdir(tmp_path)
    for line in lines:
        args = [stack if a == "net.yaml" else a for a in shlex.split(line)[1:]]
        code, _, err = invoke(*args)
        assert code == 0, (line, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d2.svg", "net.html", "overlap.svg"]


def test_a_3d_stack_shows_one_strip_per_axis() -> None:
    # Two 3×3×3 convs on 8×8×8: along each axis the centre unit's counts are 1 2 3 2 1 from position 1.
    stack = "input: [1, 8, 8, 8]\nlayers:\n" + "  - {op: conv, kernel: 3, padding: 1}\n" * 2
    code, out, err = invoke("coverage", "-", input=stack, env={"NO_COLOR": "1"})
    assert code == 0, err
    # 1 2 3 2 1 over the max 3: 1/3 ▒, 2/3 ▓, 1 █.
    assert map_rows(out) == ["▒▓█▓▒"] * 3
    assert "D input [1, 5]; each cell: one pixel; max 3" in out
