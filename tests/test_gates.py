"""`analyze(spec, gates="constant")` and `rf --gates constant`: which inputs are gates, and the fields with
them as constants (hand-derived here; autograd with the gates detached in test_gates_torch)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from cli.main import app
from convcalc.analysis.engine import analyze
from convcalc.errors import SpecError
from convcalc.format.loader import parse_stack
from convcalc.stack.spec import StackSpec

SE = [
    {"op": "adaptive_avgpool", "name": "pool", "size": 1, "from": "x"},
    {"op": "conv", "name": "fc1", "kernel": 1, "out": 2},
    {"op": "relu", "name": "relu"},
    {"op": "conv", "name": "fc2", "kernel": 1, "out": 4},
    {"op": "sigmoid", "name": "gate"},
    {"op": "mul", "name": "scale", "from": ["x", "gate"]},
]


def _stack(layers: list[dict[str, Any]], shape: list[int] | None = None) -> StackSpec:
    doc = {"input": shape or [4, 32], "layers": layers}
    return parse_stack(yaml.safe_dump(doc, sort_keys=False), "se.yaml")


def _gated() -> StackSpec:
    """conv k3 → SE → conv k5 s2 → conv k3: the spatial path's fields are 3, 3, 3 + 4 = 7, 7 + 2·2 = 11."""
    return _stack(
        [
            {"op": "conv", "name": "x", "kernel": 3, "padding": 1},
            *SE,
            {"op": "conv", "name": "down", "kernel": 5, "stride": 2, "padding": 2},
            {"op": "conv", "name": "last", "kernel": 3, "padding": 1},
        ]
    )


def test_the_gate_of_a_squeeze_and_excitation_block() -> None:
    report = analyze(_gated(), gates="constant")
    assert report.gates is not None
    assert [(g.layer, g.input, g.index, g.pool) for g in report.gates] == [("scale", "gate", 1, "pool")]


def test_fields_with_gates_as_constants_follow_the_spatial_path_and_the_true_ones_stay_global() -> None:
    report = analyze(_gated(), gates="constant")
    spatial = report.constant_gates
    assert spatial is not None
    # by hand: conv k3 → 3 (jump 1); the gate adds nothing; k5 s2 → 3 + 4·1 = 7 (jump 2); k3 → 7 + 2·2 = 11
    assert [(n, spatial.layer(n).field[0].rf, spatial.layer(n).field[0].jump) for n in ("scale", "down", "last")] == [
        ("scale", 3, 1),
        ("down", 7, 2),
        ("last", 11, 2),
    ]
    assert [report.layer(n).field[0].is_global for n in ("x", "scale", "down", "last")] == [False, True, True, True]
    assert [f.rf for f in report.layer("last").field] == [32]  # all(32): the true field
    # Unit 5 of `last`: centre 2·5 = 10 (every layer is padded to keep the centres), ± (11 − 1)/2.
    assert spatial.layer("last").region((5,)) == ((5, 15),)


def test_the_true_analysis_is_the_same_with_or_without_the_option() -> None:
    spec = _gated()
    plain, gated = analyze(spec), analyze(spec, gates="constant")
    assert plain.gates is None
    assert plain.constant_gates is None
    assert gated.layers == plain.layers  # fields, shapes and diagnostics
    assert [d.code for d in gated.diagnostics] == [d.code for d in plain.diagnostics]


def test_without_gates_the_constant_gate_fields_are_the_true_ones() -> None:
    spec = _stack([{"op": "conv", "kernel": 3}, {"op": "conv", "kernel": 3, "stride": 2}])
    report = analyze(spec, gates="constant")
    assert report.gates == ()
    assert report.constant_gates is not None
    assert [layer.field for layer in report.constant_gates.layers] == [layer.field for layer in report.layers]


@pytest.mark.parametrize(
    "between",
    [
        # anything that keeps the pooled tensor 1×1 and reads it alone: a k3 conv padded 1 on one unit
        [{"op": "conv", "name": "fc", "kernel": 3, "padding": 1, "out": 4}],
        [{"op": "batchnorm", "name": "fc"}, {"op": "hardsigmoid", "name": "act"}],
        [],  # the pool itself
    ],
)
def test_what_may_stand_between_the_pool_and_the_mul(between: list[dict[str, Any]]) -> None:
    layers = [
        {"op": "conv", "name": "x", "kernel": 3, "padding": 1},
        {"op": "adaptive_maxpool", "name": "pool", "size": 1},
        *between,
        {"op": "mul", "name": "scale", "from": [between[-1]["name"] if between else "pool", "x"]},
    ]
    report = analyze(_stack(layers), gates="constant")
    assert report.gates is not None
    assert [(g.layer, g.index) for g in report.gates] == [("scale", 0)]
    assert report.constant_gates is not None
    assert report.constant_gates.layer("scale").field[0].rf == 3


@pytest.mark.parametrize(
    ("layers", "shape"),
    [
        # two spatial branches: neither is a gate
        (
            [
                {"op": "conv", "name": "x", "kernel": 3, "padding": 1},
                {"op": "conv", "name": "y", "kernel": 5, "padding": 2, "from": "input"},
                {"op": "mul", "from": ["x", "y"]},
            ],
            [4, 32],
        ),
        # a 1-unit tensor that no global pool makes: an adaptive pool to 2, then a k2 conv
        (
            [
                {"op": "conv", "name": "x", "kernel": 3, "padding": 1},
                {"op": "adaptive_avgpool", "name": "pool", "size": 2},
                {"op": "conv", "name": "g", "kernel": 2},
                {"op": "mul", "from": ["x", "g"]},
            ],
            [4, 32],
        ),
        # pooled along one axis only (size [1, null]): still spatial along W
        (
            [
                {"op": "conv", "name": "x", "kernel": 3, "padding": 1},
                {"op": "adaptive_avgpool", "name": "pool", "size": [1, None]},
                {"op": "mul", "from": ["x", "pool"]},
            ],
            [4, 16, 16],
        ),
        # a gate of a merge that is not a mul (an add of a global term is not a scale)
        (
            [
                {"op": "conv", "name": "x", "kernel": 3, "padding": 1},
                {"op": "adaptive_avgpool", "name": "pool", "size": 1},
                {"op": "add", "from": ["x", "pool"]},
            ],
            [4, 32],
        ),
        # every input a gate: nothing is scaled
        (
            [
                {"op": "adaptive_avgpool", "name": "p1", "size": 1},
                {"op": "adaptive_maxpool", "name": "p2", "size": 1, "from": "input"},
                {"op": "mul", "from": ["p1", "p2"]},
            ],
            [4, 32],
        ),
    ],
)
def test_what_is_not_a_gate(layers: list[dict[str, Any]], shape: list[int]) -> None:
    report = analyze(_stack(layers, shape), gates="constant")
    assert report.gates == ()


def test_an_unknown_gates_mode_is_refused() -> None:
    with pytest.raises(SpecError, match="unknown gates mode 'detach'; allowed: true, constant"):
        analyze(_gated(), gates="detach")  # type: ignore[arg-type]


def _cli(*args: str) -> str:
    result = CliRunner().invoke(app, ["rf", *args])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def gated_file(tmp_path: Any) -> str:
    path = tmp_path / "se.yaml"
    path.write_text(yaml.safe_dump({"input": [4, 32], "layers": _gated_layers()}, sort_keys=False))
    return str(path)


def _gated_layers() -> list[dict[str, Any]]:
    return [
        {"op": "conv", "name": "x", "kernel": 3, "padding": 1},
        *SE,
        {"op": "conv", "name": "down", "kernel": 5, "stride": 2, "padding": 2},
        {"op": "conv", "name": "last", "kernel": 3, "padding": 1},
    ]


def test_cli_table_shows_both_fields_labelled(gated_file: str) -> None:
    out = _cli(gated_file, "--gates", "constant")
    assert "RF gates const" in out
    last = next(line for line in out.splitlines() if " last " in line)
    assert "all(32)" in last
    assert " 11 " in last
    assert "1 gate: scale (gate)" in out
    assert "receptive field with gates as constants at last (the last layer whose field is not global): 11" in out
    assert "RF gates const" not in _cli(gated_file)


def test_cli_json_keeps_the_true_field_and_adds_its_own_keys(gated_file: str) -> None:
    plain = json.loads(_cli(gated_file, "-f", "json"))
    doc = json.loads(_cli(gated_file, "-f", "json", "--gates", "constant"))
    assert "gates" not in plain
    assert "field_gates_constant" not in plain["summary"]
    assert [layer["field"] for layer in doc["layers"]] == [layer["field"] for layer in plain["layers"]]
    assert doc["summary"]["field"] == plain["summary"]["field"]
    assert doc["gates"] == [{"layer": "scale", "input": "gate", "pool": "pool"}]
    last = doc["layers"][-1]
    assert (last["field"][0]["global"], last["field"][0]["rf"]) == (True, 32)
    assert (last["field_gates_constant"][0]["rf"], last["field_gates_constant"][0]["jump"]) == (11, "2")
    assert doc["summary"]["field_gates_constant"] == last["field_gates_constant"]


def test_cli_csv_and_markdown_add_the_constant_gate_columns(gated_file: str) -> None:
    rows = _cli(gated_file, "-f", "csv", "--gates", "constant").splitlines()
    header = rows[0].split(",")
    last = dict(zip(header, rows[-1].split(","), strict=True))
    assert (last["rf_max"], last["global"]) == ("32", "true")
    assert (last["rf_max_gates_constant"], last["jump_gates_constant"], last["global_gates_constant"]) == (
        "11",
        "2",
        "false",
    )
    markdown = _cli(gated_file, "-f", "markdown", "--gates", "constant")
    assert "| RF | RF gates const |" in markdown
