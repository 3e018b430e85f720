"""Usage errors and help: the option is named, JSON is JSON, and the help reads as the README does."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), prog_name="convcalc")
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["rf", "vgg16", "--format", "jsn"],
            "error: option --format: 'jsn' is not one of 'table', 'json', 'csv', 'markdown', 'github', 'sarif', "
            "'junit'",
        ),
        (["rf", "vgg16", "--bogus"], "error: option --bogus: no such option: --bogus"),
        (["rf"], "error: missing argument 'STACK'"),
        (["run", "vgg16", "--seed", "-1"], "error: option --seed: must be greater than or equal to 0; got '-1'"),
        (["conv", "--k", "3", "--groups", "x"], "error: option --groups: must be an integer; got 'x'"),
        (["conv"], "error: option --kernel: is required"),
    ],
)
def test_usage_errors_name_the_option_in_one_line(args: list[str], line: str) -> None:
    code, out, err = invoke(*args)
    assert code == 2
    assert out == ""
    first, *rest = err.splitlines()
    assert first == line
    assert "Value error" not in err
    assert all(r.startswith("usage: convcalc") for r in rest)


@pytest.mark.parametrize(
    "args",
    [
        ["rf", "vgg16", "--bogus", "--format", "json"],
        ["rf", "vgg16", "-f", "json", "--fail-on", "sometimes"],
        ["run", "vgg16", "--format=json", "--batch", "0"],
        ["rf", "-fjson"],
    ],
)
def test_usage_errors_are_json_when_json_was_asked_for(args: list[str]) -> None:
    code, out, err = invoke(*args)
    assert code == 2
    assert out == ""
    error = json.loads(err)["error"]
    assert error["kind"] == "usage"
    assert error["exit_code"] == 2
    assert error["usage"].startswith("convcalc ")
    (problem,) = error["problems"]
    assert problem["message"]
    assert problem["field"] is None


def test_json_usage_error_names_the_option() -> None:
    _, _, err = invoke("rf", "vgg16", "-f", "json", "--fail-on", "sometimes")
    (problem,) = json.loads(err)["error"]["problems"]
    assert problem["option"] == "--fail-on"
    assert "'sometimes' is not one of" in problem["message"]


@pytest.mark.parametrize("command", ["rf", "run", "expand"])
def test_help_shows_the_argument_as_in_the_readme(command: str) -> None:
    code, out, _ = invoke(command, "--help")
    assert code == 0
    assert f"Usage: convcalc {command} [OPTIONS] STACK" in out
    assert "{" not in out.split("\n", 1)[0]
    assert "<str>" not in out
    assert "<int range>" not in out
    assert "bundled name" in out


def test_shell_completion_is_available() -> None:
    code, out, _ = invoke("--help")
    assert code == 0
    assert "--install-completion" in out
    # The script itself: tests/test_findings.py test_shell_completion.
