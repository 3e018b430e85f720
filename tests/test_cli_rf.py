"""`convcalc rf`: formats, exit codes, stdout/stderr discipline, golden tables."""

from __future__ import annotations

import csv
import io
import json
from fractions import Fraction
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app

CONFIGS = Path(__file__).parent.parent / "configs"
runner = CliRunner()


def invoke(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), input=input, env={"COLUMNS": "160"}, prog_name="convcalc")
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("name", ["seed_deconv", "seed_two_layer", "unet_small"])
def test_table_golden(name: str, golden: object) -> None:
    code, out, err = invoke("rf", str(CONFIGS / f"{name}.yaml"))
    assert code == 0
    assert err == ""
    golden(f"rf/{name}.txt", out.replace(str(CONFIGS) + "/", ""))  # type: ignore[operator]


def test_markdown_golden(golden: object) -> None:
    code, out, _ = invoke("rf", str(CONFIGS / "seed_dilation.yaml"), "--format", "markdown")
    assert code == 0
    golden("rf/seed_dilation.md", out)  # type: ignore[operator]


def test_table_has_no_colour_when_not_a_terminal() -> None:
    _, out, _ = invoke("rf", str(CONFIGS / "seed_deconv.yaml"))
    assert "\x1b[" not in out


def test_json_is_exact_and_structured() -> None:
    code, out, err = invoke("rf", str(CONFIGS / "seed_deconv.yaml"), "--format", "json")
    assert code == 0
    assert err == ""
    doc = json.loads(out)
    assert doc["convcalc_schema"] == 1
    assert doc["command"] == "rf"
    (layer,) = doc["layers"]
    assert layer["output"] == {"channels": 1, "spatial": [7, 7]}
    assert layer["field"][0] == {
        "axis": "H",
        "rf": 2,
        "rf_min": 1,
        "jump": "1/2",
        "padding": "0",
        "centre": "0",
        "global": False,
        "overlap": "2",
    }
    (diag,) = doc["diagnostics"]
    assert diag["code"] == "checkerboard"
    assert diag["severity"] == "warning"
    assert diag["layer"] == "up"
    assert diag["data"]["ratio"] == "4"
    assert doc["summary"]["params"] == 10


def test_json_rf_table_agrees_with_rendered_table() -> None:
    """The table's last RF cell and the JSON summary come from the same numbers (VGG-16 pool5 212)."""
    _, out, _ = invoke("rf", str(CONFIGS / "vgg16.yaml"), "-f", "json")
    doc = json.loads(out)
    pool5 = next(layer for layer in doc["layers"] if layer["name"] == "pool5")
    assert [f["rf"] for f in pool5["field"]] == [212, 212]
    _, table, _ = invoke("rf", str(CONFIGS / "vgg16.yaml"))
    row = next(line for line in table.splitlines() if " pool5 " in line)
    assert " 212 " in row
    assert "receptive field all(224)" in table


def test_csv_has_one_row_per_layer() -> None:
    code, out, _ = invoke("rf", str(CONFIGS / "seed_dilation.yaml"), "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["layer"] for r in rows] == ["d1", "d2", "d3"]
    assert [r["rf_max"] for r in rows] == ["3x3", "7x7", "13x13"]
    assert [r["k_eff"] for r in rows] == ["3x3", "5x5", "7x7"]


@pytest.mark.parametrize("name", ["seed_deconv", "resnet18", "googlenet", "deeplabv3_aspp", "wavenet"])
def test_csv_holds_machine_readable_numbers_equal_to_the_json(name: str) -> None:
    """Every CSV cell parses as numbers (no '1–2', 'all(224)', '-'), and they are the JSON's numbers."""
    _, out, _ = invoke("rf", name, "--format", "csv")
    _, doc_text, _ = invoke("rf", name, "--format", "json")
    doc = json.loads(doc_text)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == len(doc["layers"])
    for row, layer in zip(rows, doc["layers"], strict=True):
        field = layer["field"]
        assert row["rf_min"] == "x".join(str(a["rf_min"]) for a in field)
        assert row["rf_max"] == "x".join(str(a["rf"]) for a in field)
        assert row["global"] == ("true" if all(a["global"] for a in field) else "false")
        for key, json_key in (("jump", "jump"), ("centre", "centre"), ("padding", "padding")):
            expected = "x".join("" if a["global"] or a[json_key] is None else a[json_key] for a in field)
            assert row[key] == ("" if not expected.strip("x") else expected), (layer["name"], key)
        for cell in (row["rf_min"], row["rf_max"], row["jump"], row["centre"], row["padding"]):
            for part in filter(None, cell.split("x")):
                Fraction(part)  # an exact rational, nothing else
        assert row["params"] == ("" if layer["params"] is None else str(layer["params"]))


def test_input_override_changes_sizes_not_fields() -> None:
    _, out, _ = invoke("rf", str(CONFIGS / "seed_two_layer.yaml"), "--input", "1x9x9", "-f", "json")
    doc = json.loads(out)
    assert doc["input"]["spatial"] == [9, 9]
    assert doc["layers"][-1]["output"]["spatial"] == [5, 5]
    assert doc["layers"][-1]["field"][0]["rf"] == 5


def test_input_override_with_unknown_size() -> None:
    _, out, _ = invoke("rf", str(CONFIGS / "seed_two_layer.yaml"), "--input", "1x?x?", "-f", "json")
    doc = json.loads(out)
    assert doc["layers"][-1]["output"]["spatial"] == [None, None]
    assert doc["layers"][-1]["field"][0]["rf"] == 5


def test_reads_standard_input() -> None:
    code, out, _ = invoke("rf", "-", "-f", "json", input="input: [1, 8]\nlayers:\n  - {op: conv, kernel: 3}\n")
    assert code == 0
    assert json.loads(out)["layers"][0]["output"]["spatial"] == [6]


# -- exit codes --------------------------------------------------------------------------------------
def test_missing_file_exit_1_message_on_stderr(tmp_path: Path) -> None:
    code, out, err = invoke("rf", str(tmp_path / "nope.yaml"))
    assert code == 1
    assert out == ""
    assert err.startswith("error: ")
    assert "nope.yaml" in err
    assert "Traceback" not in err


def test_bad_layer_reports_every_problem_with_file_line_layer_field(tmp_path: Path) -> None:
    path = tmp_path / "net.yaml"
    path.write_text("input: [3, 32, 32]\nlayers:\n  - {op: convv, kernel: 3}\n  - {op: conv, stride: 0, kernel: 3}\n")
    code, out, err = invoke("rf", str(path))
    assert code == 1
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 2
    assert f"{path}:3:" in lines[0]
    assert "did you mean 'conv'" in lines[0]
    assert f"{path}:4:" in lines[1]
    assert "stride" in lines[1]
    assert "got 0" in lines[1]


def test_shape_refusal_exit_1_names_layer(tmp_path: Path) -> None:
    path = tmp_path / "net.yaml"
    path.write_text("input: [1, 4, 4]\nlayers:\n  - {op: conv, name: big, kernel: 7}\n")
    code, _, err = invoke("rf", str(path))
    assert code == 1
    assert "layer big" in err
    assert "effective kernel 7" in err


def test_json_errors_are_json_on_stderr(tmp_path: Path) -> None:
    path = tmp_path / "net.yaml"
    path.write_text("input: [1, 4, 4]\nlayers:\n  - {op: conv, name: big, kernel: 7}\n")
    code, out, err = invoke("rf", str(path), "--format", "json")
    assert code == 1
    assert out == ""
    doc = json.loads(err)
    (problem,) = doc["error"]["problems"]
    assert (problem["layer"], problem["line"], doc["error"]["exit_code"]) == ("big", 3, 1)


def test_usage_error_exit_2() -> None:
    code, _, err = invoke("rf", str(CONFIGS / "seed_deconv.yaml"), "--format", "yaml")
    assert code == 2
    assert "yaml" in err


def test_bad_input_override_exit_1() -> None:
    code, _, err = invoke("rf", str(CONFIGS / "seed_deconv.yaml"), "--input", "3xbanana")
    assert code == 1
    assert "--input" in err


def test_fail_on_levels() -> None:
    """seed_deconv has one warning (checkerboard): it fails at --fail-on warning, not at the default (error)."""
    deconv = str(CONFIGS / "seed_deconv.yaml")
    assert invoke("rf", deconv)[0] == 0
    code, out, _ = invoke("rf", deconv, "--fail-on", "warning")
    assert code == 3
    assert "checkerboard" in out  # the report is still printed
    assert invoke("rf", deconv, "--fail-on", "never")[0] == 0


@pytest.mark.parametrize("name", ["wavenet", "wavenet_tcn"])
def test_causal_audio_networks_pass_fail_on_warning(name: str) -> None:
    """Causal convs (padding [d(k−1), 0]) end every branch on the same sample: no misaligned-merge."""
    code, out, _ = invoke("rf", name, "--fail-on", "warning", "-f", "json")
    assert code == 0
    assert not [d for d in json.loads(out)["diagnostics"] if d["severity"] != "info"]


def test_holes_fail_by_default(tmp_path: Path) -> None:
    path = tmp_path / "holes.yaml"
    path.write_text("input: [1, 8]\nlayers:\n  - {op: deconv, kernel: 1, stride: 2}\n")
    code, out, _ = invoke("rf", str(path))
    assert code == 3
    assert "holes" in out


def test_version() -> None:
    from convcalc import __version__

    code, out, _ = invoke("--version")
    assert code == 0
    assert out.strip() == f"convcalc {__version__}"
