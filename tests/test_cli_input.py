"""The --input override shared by `rf`, `run` and `expand`: a rank change must be asked for (--change-rank)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app

CONFIGS = Path(__file__).parent.parent / "configs"
runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "160"}, prog_name="convcalc")
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("command", ["rf", "run", "expand"])
def test_rank_change_is_refused_without_the_option(command: str) -> None:
    code, out, err = invoke(command, str(CONFIGS / "seed_two_layer.yaml"), "--input", "1x9")
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1, err  # one clear line
    assert "option --input" in err
    assert "input 1×5×5 has 2 spatial axes but the given input 1×9 has 1" in err
    assert "(--change-rank allows it)" in err


@pytest.mark.parametrize("command", ["rf", "run", "expand"])
def test_change_rank_reads_the_stack_at_the_given_rank(command: str) -> None:
    code, out, err = invoke(command, str(CONFIGS / "seed_two_layer.yaml"), "--input", "1x9", "--change-rank")
    assert code == 0, err
    if command == "expand":
        assert "input: [1, 9]" in out


def test_change_rank_in_the_rf_report() -> None:
    """Kernels broadcast to the new rank: 3 then 3 stride 2 on 9 pixels gives 5 outputs, RF 5 (hand-derived)."""
    code, out, _ = invoke("rf", str(CONFIGS / "seed_two_layer.yaml"), "--input", "1x9", "--change-rank", "-f", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["layers"][-1]["output"] == {"channels": 1, "spatial": [5]}
    assert doc["layers"][-1]["field"][0]["rf"] == 5


def test_refused_rank_change_as_json() -> None:
    code, _, err = invoke("rf", str(CONFIGS / "seed_two_layer.yaml"), "--input", "1x9x9x9", "-f", "json")
    assert code == 1
    (problem,) = json.loads(err)["error"]["problems"]
    assert (problem["option"], problem["allowed_by"]) == ("--input", "--change-rank")
    assert "has 3" in problem["message"]
