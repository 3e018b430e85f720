"""Crashes the fuzz suite (tests/test_fuzz.py) found, each pinned with its message and exit code."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from convcalc.errors import Problem, SpecError
from convcalc.format.loader import parse_stack

runner = CliRunner()


def problems(text: str) -> list[Problem]:
    with pytest.raises(SpecError) as info:
        parse_stack(textwrap.dedent(text), file="s.yaml")
    return list(info.value.problems)


@pytest.mark.parametrize(("value", "got"), [("[]", "got [] (a list)"), ("{}", "got {} (a mapping)"), ("3", "got 3")])
def test_a_block_use_whose_name_is_not_a_string_is_refused(value: str, got: str) -> None:
    # Was: the use was dropped without a word, the stack had no layer left, and rf crashed (exit 70).
    text = f"""\
        input: [1, 8, 8]
        blocks:
          b:
            layers:
              - {{op: relu, name: r}}
        layers:
          - {{op: relu, name: first}}
          - {{block: b, name: {value}}}
        """
    (problem,) = problems(text)
    assert (problem.line, problem.field) == (8, "name")
    assert problem.message == f"name must be a non-empty string, {got}"


def test_a_block_use_whose_name_expression_fails_is_refused() -> None:
    # Was: the failed `${...}` of the name was swallowed and the use silently dropped.
    text = """\
        input: [1, 8, 8]
        blocks:
          inner:
            layers:
              - {op: relu, name: r}
          outer:
            layers:
              - {block: inner, name: "${nope}"}
        layers:
          - {block: outer, name: o}
        """
    (problem,) = problems(text)
    assert problem.field == "name"
    assert problem.line == 8
    assert "unknown parameter 'nope'" in problem.message


def test_a_stack_whose_every_layer_is_left_out_is_refused() -> None:
    # Was: zero layers, and rf's summary line crashed on `report.output` (IndexError, exit 70).
    text = """\
        input: [1, 8, 8]
        blocks:
          b:
            layers:
              - {op: relu, name: r, when: false}
        layers:
          - {block: b}
        """
    (problem,) = problems(text)
    assert problem.field == "layers"
    assert problem.message == "layers must give at least one layer; every layer here is left out by 'when:'"


def test_rf_on_an_empty_expansion_exits_1_with_the_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text(
        "input: [1, 8, 8]\nblocks:\n  b:\n    layers:\n      - {op: relu, when: false}\nlayers:\n  - {block: b}\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["rf", str(path)], prog_name="convcalc")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: {path}:7:")
