"""convcalc conv / deconv / pool through the CLI: formats, golden derivations and maps, errors, imports."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "120"})
    return result.exit_code, result.stdout, result.stderr


# -- golden output: derivations and maps ----------------------------------------------------------
GOLDEN_CASES = {
    "calc/deconv_k3_s2_p1_i4_explain.txt": [
        "deconv",
        "--k",
        "3",
        "--s",
        "2",
        "--p",
        "1",
        "--i",
        "4",
        "--explain",
    ],
    "calc/conv_k3_s2_p1_i224_explain.txt": [
        "conv",
        "--k",
        "3",
        "--s",
        "2",
        "--p",
        "1",
        "--i",
        "224",
        "--explain",
    ],
    "calc/pool_k3_s2_i112_ceil_explain.txt": [
        "pool",
        "--k",
        "3",
        "--s",
        "2",
        "--i",
        "112",
        "--ceil",
        "--explain",
    ],
    "calc/conv_k3_d2_rf_explain.txt": ["conv", "--k", "3", "--d", "2", "--dims", "1", "--explain"],
    "calc/deconv_k3_s2_p1_i4.txt": ["deconv", "--k", "3", "--s", "2", "--p", "1", "--i", "4"],
    "calc/deconv_k4_s2_p1_i4.txt": [
        "deconv",
        "--kernel",
        "4",
        "--stride",
        "2",
        "--padding",
        "1",
        "--input",
        "4",
    ],
    "calc/deconv_k3_s2_i64_period.txt": ["deconv", "--k", "3", "--s", "2", "--p", "1", "--i", "64"],
    "calc/deconv_k3_s2_i8_target16.txt": ["deconv", "--k", "3", "--s", "2", "--i", "8", "--target", "16"],
    "calc/pool_k3_s2_i112_ceil.txt": ["pool", "--k", "3", "--s", "2", "--i", "112", "--ceil"],
    "calc/conv_groups_markdown.md": [
        "conv",
        "--k",
        "3",
        "--s",
        "2",
        "--p",
        "1",
        "--i",
        "32",
        "--cin",
        "16",
        "--cout",
        "32",
        "--groups",
        "4",
        "--format",
        "markdown",
    ],
}


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_golden(name: str, golden: Callable[[str, str], None]) -> None:
    code, out, err = run(*GOLDEN_CASES[name])
    assert code == 0, err
    golden(name, out)


def test_seed_map_in_the_table_output() -> None:
    """The issue's seed: rows 1 2 1 2 1 2 1 / 2 4 2 4 2 4 2 appear in the 7×7 map."""
    code, out, _ = run("deconv", "--k", "3", "--s", "2", "--p", "1", "--i", "4")
    assert code == 0
    lines = out.splitlines()
    start = lines.index("1 2 1 2 1 2 1")
    assert lines[start : start + 7] == ["1 2 1 2 1 2 1", "2 4 2 4 2 4 2"] * 3 + ["1 2 1 2 1 2 1"]
    code, out, _ = run("deconv", "--k", "4", "--s", "2", "--p", "1", "--i", "4")
    assert "1 2 2 2 2 2 2 1" in out
    assert "2 4 4 4 4 4 4 2" in out


def test_without_input_says_what_it_would_add() -> None:
    code, out, _ = run("deconv", "--k", "3", "--s", "2")
    assert code == 0
    assert "give --i SIZE" in out
    assert "one period" in out


# -- formats ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [10**6, 10**8, 10**12])
def test_huge_inputs_cost_what_small_ones_cost(size: int) -> None:
    """The overlap counts are one period plus the borders: output size and work do not grow with --i.

    The counts away from the borders are the phase counts 1 · 2 (Distill's k3 s2 pattern); the first
    output gets 1 tap, the last (2·size − 1 outputs for p = 1) gets 1.
    """
    code, out, _ = run("deconv", "--k", "3", "--s", "2", "--p", "1", "--i", str(size), "--format", "json")
    assert code == 0
    assert len(out) < 20_000
    doc = json.loads(out)
    counts = doc["per_axis"][0]["overlap"]["counts"]
    assert counts["length"] == 2 * size - 1 == doc["layer"]["output"]["spatial"][0]
    assert counts["period"] in ([1, 2], [2, 1])
    assert len(counts["head"]) + len(counts["period"]) * counts["repeats"] + len(counts["tail"]) == 2 * size - 1
    assert counts["head"][:1] == [1]
    assert counts["tail"][-1:] == [1]


def test_json_carries_every_number() -> None:
    code, out, _ = run("deconv", "--k", "3", "--s", "2", "--p", "1", "--i", "4", "--format", "json", "--explain")
    assert code == 0
    doc = json.loads(out)
    assert doc["command"] == "deconv"
    assert doc["layer"]["output"] == {"channels": None, "spatial": [7, 7]}
    assert doc["axes"] == ["H", "W"]
    h = doc["per_axis"][0]
    assert h["overlap"]["taps_per_phase"] == [1, 2]
    assert h["overlap"]["ratio"] == "2"
    counts = h["overlap"]["counts"]
    whole = counts["head"] + counts["period"] * counts["repeats"] + counts["tail"]
    assert whole == [1, 2, 1, 2, 1, 2, 1]
    assert counts["length"] == 7
    assert h["equivalent_conv"]["stretched_size"] == 7
    assert (h["equivalent_conv"]["pad_before"], h["equivalent_conv"]["pad_after"]) == (1, 1)
    # An output reads 1 or 2 inputs (k 3, s 2), outputs sit half an input apart; unit 0's field is input 0.
    field = doc["layer"]["field"][0]
    assert (field["rf_min"], field["rf"], field["jump"], field["centre"]) == (1, 2, "1/2", "0")
    assert doc["overlap"]["ratio"] == "4"
    assert doc["overlap"]["map"]["kind"] == "whole"
    assert doc["overlap"]["map"]["values"][1] == [2, 4, 2, 4, 2, 4, 2]
    assert [d["code"] for d in doc["diagnostics"]] == ["checkerboard"]
    assert doc["diagnostics"][0]["severity"] == "warning"
    steps = doc["derivation"][0]["steps"]
    assert steps[0]["numbers"] == ["4 + (4 - 1)*(2 - 1)"]
    assert steps[0]["result"] == "7"


def test_csv_one_row_per_axis() -> None:
    code, out, _ = run("conv", "--k", "3,5", "--s", "2", "--p", "1,2", "--i", "32,48", "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    # H: floor((32 + 2 - 3)/2) + 1 = 16; W: floor((48 + 4 - 5)/2) + 1 = 24
    assert [(r["axis"], r["output"], r["effective_kernel"]) for r in rows] == [
        ("H", "16", "3"),
        ("W", "24", "5"),
    ]


def test_markdown_table() -> None:
    code, out, _ = run("pool", "--k", "2", "--i", "9", "--avg", "--format", "markdown")
    assert code == 0
    assert out.startswith("## `nn.AvgPool2d(kernel_size=2)")
    assert "| output size | 4 | 4 |" in out


def test_solver_json_and_csv() -> None:
    code, out, _ = run("conv", "--k", "3", "--s", "2", "--i", "224", "--target", "112", "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["solved"] is True
    assert doc["axes"][0]["settings"][0] == {
        "padding": 1,
        "output_padding": 0,
        "ceil_mode": False,
        "output": 112,
    }
    code, out, _ = run("deconv", "--k", "3", "--s", "2", "--i", "8", "--target", "16", "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["padding"], r["output_padding"], r["output"]) for r in rows] == [("1", "1", "16")] * 2


def test_unreachable_target_exits_1_with_nearest_sizes() -> None:
    code, out, err = run("deconv", "--k", "3", "--s", "2", "--i", "8", "--target", "19")
    assert code == 1
    # The largest output is (8 − 1)·2 + 3 + 1 = 18 (padding 0, output_padding 1).
    assert "nearest achievable: 18 (padding 0, output_padding 1)" in out
    assert err == ""


def test_rank_from_the_number_of_values() -> None:
    code, out, _ = run("conv", "--k", "3", "--i", "5,6,7", "--format", "json")
    assert code == 0
    assert json.loads(out)["axes"] == ["D", "H", "W"]
    code, out, _ = run("conv", "--k", "3", "--i", "5", "--dims", "1", "--format", "json")
    assert json.loads(out)["layer"]["output"]["spatial"] == [3]


# -- errors ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["conv", "--k", "3", "--s", "0"], 1, "option --stride: stride must be a positive integer or a list of 2"),
        (
            ["deconv", "--k", "3", "--s", "2", "--op", "2"],
            1,
            "option --output-padding: H: output_padding 2 must be smaller than either stride 2 or dilation 1",
        ),
        (
            ["conv", "--k", "5", "--p", "1", "--i", "2"],
            1,
            "option --kernel: H: padded input size 4 (= 2 + 1 + 1) is smaller than the effective kernel 5",
        ),
        (["conv", "--k", "3", "--i=-3"], 1, "option --input: input sizes must be positive integers, got -3"),
        (["conv", "--k", "3", "--p=-1"], 1, "option --padding: padding must be a non-negative integer, a list of 2"),
        # (2 - 1)*1 - 2*3 + 1*(1 - 1) + 0 + 1 = -4
        (["deconv", "--k", "1", "--p", "3", "--i", "2"], 1, "option --padding: H: output size -4 is below 1"),
        (
            ["conv", "--k", "3,5", "--i", "4,4,4"],
            1,
            "option --kernel: 2 values, but the layer has 3 spatial axes",
        ),
        (["conv", "--k", "abc"], 1, "option --kernel: expected integers separated by commas, e.g. 3 or 3,5; got 'abc'"),
        (
            ["deconv", "--k", "2", "--s", "1", "--p", "same", "--i", "8"],
            1,
            "option --padding: padding 'same' (output s·i) needs a total crop of d·(k−1)+1−s = 1, odd",
        ),
        (["pool", "--k", "3", "--p", "2"], 1, "option --padding: H: padding 2 must be at most half of the kernel size"),
        (["conv", "--k", "3", "--target", "8"], 1, "option --input: the solver needs the input size"),
        (
            ["conv", "--k", "3", "--cin", "6", "--cout", "4", "--groups", "4"],
            1,
            "option --groups: input channels 6",
        ),
        (
            ["conv", "--k", "3", "--explain", "--format", "csv"],
            1,
            "--explain: the derivation has no CSV form",
        ),
        (["conv", "--s", "2"], 2, "error: option --kernel: is required"),
        (["conv", "--k", "3", "--dims", "x"], 2, "error: option --dims: must be an integer; got 'x'"),
    ],
)
def test_invalid_input_is_one_line_on_stderr(args: list[str], code: int, needle: str) -> None:
    got, out, err = run(*args)
    assert got == code
    assert out == ""
    assert needle in err
    assert "Traceback" not in err
    if code == 1:
        assert err.startswith("error: ")
        assert err.count("\n") == 1


def test_json_errors_are_json() -> None:
    code, out, err = run("conv", "--k", "3", "--s", "0", "--format", "json")
    assert code == 1
    assert out == ""
    error = json.loads(err)["error"]
    assert error["kind"] == "invalid-option"
    problem = error["problems"][0]
    assert problem["option"] == "--stride"
    assert problem["field"] is None
    assert problem["message"].startswith("stride must be a positive integer")


def test_holes_exit_3_unless_fail_on_never() -> None:
    code, out, _ = run("deconv", "--k", "1", "--s", "2")
    assert code == 3
    assert "holes" in out
    code, _, _ = run("deconv", "--k", "1", "--s", "2", "--fail-on", "never")
    assert code == 0
    code, _, _ = run("deconv", "--k", "3", "--s", "2", "--fail-on", "warning")
    assert code == 3


# -- start-up: no numpy ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [
        ["conv", "--k", "3", "--s", "2", "--i", "224"],
        ["deconv", "--k", "3", "--s", "2", "--p", "1", "--i", "4", "--explain"],
        ["pool", "--k", "3", "--s", "2", "--i", "112", "--ceil", "--format", "json"],
        ["deconv", "--k", "3", "--s", "2", "--i", "8", "--target", "16"],
    ],
)
def test_calculators_do_not_import_numpy(argv: list[str]) -> None:
    code = (
        "import sys, runpy\n"
        f"sys.argv = ['convcalc', *{argv!r}]\n"
        "try:\n"
        "    runpy.run_module('cli', run_name='__main__')\n"
        "except SystemExit as exc:\n"
        "    assert exc.code in (0, None), exc.code\n"
        "print('NUMPY' if 'numpy' in sys.modules else 'CLEAN',\n"
        "      'YAML' if 'yaml' in sys.modules else 'NOYAML')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "CLEAN NOYAML"
