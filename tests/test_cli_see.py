"""`convcalc rf --unit / --erf` and `convcalc locate`: what they print, and their refusals."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()

# Three 3×3 convs with dilation 2 and padding 2 on 32×32 (hand-derived fields below).
GRIDDING = """\
input: [1, 32, 32]
layers:
  - {op: conv, kernel: 3, dilation: 2, padding: 2}
  - {op: conv, kernel: 3, dilation: 2, padding: 2}
  - {op: conv, kernel: 3, dilation: 2, padding: 2}
"""


def invoke(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), input=input, env={"COLUMNS": "160"}, prog_name="convcalc")
    return result.exit_code, result.stdout, result.stderr


def test_unit_json_gives_region_and_support() -> None:
    # Unit (0, 12): the field is 13 wide and starts 6 before the unit (padding 2 per layer, 3 layers).
    # Along H the region [-6, 6] reaches into the padding; only pixels 0..6 exist.
    code, out, err = invoke("rf", "-", "--unit", "0,12", "--format", "json", input=GRIDDING)
    assert code == 0, err
    unit = json.loads(out)["unit"]
    assert unit["region"] == [[-6, 6], [6, 18]]
    assert unit["support"] == [[0, 6], [6, 18]]
    assert unit["index"] == [0, 12]
    assert unit["layer"] == "conv3"


def test_unit_table_lines() -> None:
    code, out, _ = invoke("rf", "-", "--unit", "0,12", "--layer", "conv1", input=GRIDDING)
    assert code == 0
    assert "unit 0,12 of layer conv1:" in out
    assert "region   H [-2, 2]  W [10, 14]" in out
    assert "support  H [0, 2]  W [10, 14]" in out


def test_erf_of_the_centre_unit(tmp_path: Path) -> None:
    # Centre unit (15, 15): path counts 1 0 3 0 6 0 7 0 6 0 3 0 1 along each axis: variance 3·4·8/12 = 8.
    code, out, _ = invoke("rf", "-", "--erf", "--format", "json", input=GRIDDING)
    assert code == 0
    unit = json.loads(out)["unit"]
    assert unit["index"] == [15, 15]
    assert [e["variance"] for e in unit["erf"]] == ["8", "8"]
    assert [e["rf"] for e in unit["erf"]] == [13, 13]
    assert unit["erf"][0]["radius"] == {"50%": "2", "90%": "4", "99%": "6"}
    assert unit["erf"][0]["paths"] == "27"


def test_locate_lists_the_units_a_pixel_reaches() -> None:
    code, out, _ = invoke("locate", "-", "--pixel", "3,4", input=GRIDDING)
    assert code == 0
    assert "H 1 3 5 7 9" in out
    assert "W 0 2 4 6 8 10" in out
    code, out, _ = invoke("locate", "-", "--pixel", "3,4", "--layer", "conv1", "--format", "json", input=GRIDDING)
    assert json.loads(out)["units"] == [[[1, 1], [3, 3], [5, 5]], [[2, 2], [4, 4], [6, 6]]]


def test_bad_requests_are_one_line_each() -> None:
    for args, message in [
        (("rf", "-", "--unit", "1"), "option --unit: layer conv3 has 2 spatial axes, but the unit gives 1 index"),
        (("rf", "-", "--unit", "a,b"), "option --unit: expected integers separated by commas"),
        (("rf", "-", "--unit", "1,1", "--layer", "nope"), "option --layer: no layer 'nope'"),
        (("rf", "-", "--unit", "40,1"), "option --unit: unit (40, 1) is outside layer conv3"),
        (("locate", "-", "--pixel", "3,40"), "option --pixel: pixel (3, 40) is outside the input (size 32×32)"),
        (("rf", "-", "--unit", "1,1", "--format", "csv"), "need --format table or json"),
    ]:
        code, _, err = invoke(*args, input=GRIDDING)
        assert code == 1, args
        assert message in err
        assert "Traceback" not in err
        assert len(err.strip().splitlines()) == 1
