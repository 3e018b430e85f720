"""The JSON Schema of the stack format against a real validator (jsonschema) and against the loader.

Laws: the schema is a valid draft 2020-12 schema; every bundled config validates; every document the
loader accepts, the schema accepts (random documents); the hand-written malformed catalogue of the
loader's tests fails the schema, except the refusals that depend on the graph, the rank or several
fields together (listed below with the reason), which only the loader can make.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from convcalc.errors import SpecError
from convcalc.format.library import list_configs
from convcalc.format.loader import parse_stack
from convcalc.format.schema import stack_schema
from convcalc.ops import registry
from convcalc.stack.fields import Choice, IntList, LayerName, PaddingKind, PerAxis, Scalar
from tests.test_loader import LAYER_CASES, TOP_CASES

jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parent.parent
VALIDATOR = jsonschema.Draft202012Validator(stack_schema())

#: Loader refusals a schema cannot make (ids of tests/test_loader.py's catalogue), and why.
LOADER_ONLY = {
    "kernel-float": "JSON Schema counts 3.0 as an integer; PyTorch, and so the loader, does not",
    "kernel-rank": "the number of per-axis entries must equal the input's rank",
    "trilinear-rank": "depends on the input's rank",
    "pixel-shuffle-rank": "depends on the input's rank",
    "from-unknown": "names are resolved in the graph",
    "from-later": "names are resolved in the graph",
    "from-self": "names are resolved in the graph",
    "duplicate-name": "unique names are a property of the whole list",
    "upsample-both": "a rule between fields (scale or size, not both): the op's check",
    "upsample-neither": "the same",
    "align-corners-nearest": "a rule between fields (align_corners needs mode linear)",
    "value-with-reflect": "a rule between fields (value needs mode constant)",
    "deconv-same-output-padding": "a rule between fields (same sets output_padding itself)",
    "p-nan": "JSON has no NaN: a schema validator sees a number",
    "unsafe-tag": "YAML tags never reach a JSON validator (safe_load refuses them)",
}


def _errors(document: object) -> list[str]:
    return [e.message for e in VALIDATOR.iter_errors(document)]


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(stack_schema())


@pytest.mark.parametrize("path", [*list_configs(), *sorted((ROOT / "tests" / "data").glob("*.yaml"))], ids=str)
def test_bundled_and_test_configs_validate(path: Path) -> None:
    assert _errors(yaml.safe_load(path.read_text(encoding="utf-8"))) == []


def _catalogue() -> list[Any]:
    cases = []
    for param in [*LAYER_CASES, *TOP_CASES]:
        case_id = param.id
        if case_id in LOADER_ONLY:
            continue
        cases.append(pytest.param(param.values[0], id=case_id))
    return cases


@pytest.mark.parametrize("text", _catalogue())
def test_the_malformed_catalogue_fails_the_schema(text: str) -> None:
    with pytest.raises(SpecError):
        parse_stack(text, "s.yaml")  # the loader refuses it (its own tests pin the message)
    assert _errors(yaml.safe_load(text)) != []


def test_the_loader_only_list_names_real_cases() -> None:
    ids = {p.id for p in [*LAYER_CASES, *TOP_CASES]}
    assert set(LOADER_ONLY) - ids == set()


def test_every_op_and_field_is_described() -> None:
    schema = stack_schema()
    by_op = {s["title"]: s for s in schema["$defs"]["layers"]["items"]["oneOf"] if "title" in s}
    assert set(registry.OPS) <= set(by_op)
    for name, op in registry.OPS.items():
        assert by_op[name]["description"] == op.summary
        for field in op.fields:
            assert by_op[name]["properties"][field.name]["description"] == field.doc


def test_cli_schema_prints_the_schema() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cli", "schema"], capture_output=True, text=True, check=False, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == json.loads(json.dumps(stack_schema()))


# -- random documents: whatever the loader accepts, the schema accepts ----------------------------------
POOL = [-1, 0, 1, 2, 3, 5, 0.5, 1.5, 1e-5, True, False, None, "same", "x"]


def valid_values(kind: object, rank: int) -> st.SearchStrategy[Any]:
    """Values the field's kind allows (the loader may still refuse them for other reasons)."""
    if isinstance(kind, Scalar):
        return st.sampled_from([v for v in POOL if kind.check(v)] or [None])
    if isinstance(kind, PerAxis):
        each = valid_values(kind.each, rank)
        return st.one_of(each, st.lists(each, min_size=rank, max_size=rank))
    if isinstance(kind, Choice):
        return st.sampled_from([*kind.choices, *kind.aliases])
    if isinstance(kind, PaddingKind):
        low = -1 if kind.negative else 0
        entry = st.integers(low, 2)
        per_axis = st.one_of(entry, st.lists(entry, min_size=2, max_size=2)) if kind.pairs else entry
        return st.one_of(entry, st.lists(per_axis, min_size=rank, max_size=rank), st.sampled_from(kind.modes or [0]))
    if isinstance(kind, IntList):
        return st.lists(valid_values(kind.each, rank), min_size=kind.length or 1, max_size=kind.length or 3)
    if isinstance(kind, LayerName):
        return st.just("a")
    raise AssertionError(f"no strategy for {kind!r}: add one")


@st.composite
def layer_documents(draw: st.DrawFn, rank: int) -> dict[str, Any]:
    name = draw(st.sampled_from(sorted(registry.OPS)))
    op = registry.OPS[name]
    layer: dict[str, Any] = {"op": draw(st.sampled_from([name, *op.aliases]))}
    for field in op.fields:
        if field.required or draw(st.booleans()):
            layer[field.name] = draw(
                valid_values(field.kind, rank) if draw(st.integers(0, 9)) else st.sampled_from(POOL)
            )
    if op.arity[0] >= 2:
        layer["from"] = ["input", "a"]
    return layer


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    spatial = draw(st.sampled_from([[None, None], [16, 16], [32], [8, 8, 8]]))
    layer = draw(layer_documents(len(spatial)))
    return {"input": [4, *spatial], "layers": [{"op": "identity", "name": "a"}, layer]}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=documents())
def test_what_the_loader_accepts_the_schema_accepts(document: dict[str, Any]) -> None:
    layer = document["layers"][1]
    text = yaml.safe_dump(document)
    try:
        parse_stack(text, "s.yaml")
        accepted = True
    except SpecError:
        accepted = False
    assume(accepted)
    event(f"op {layer['op']}")
    assert _errors(document) == [], (text, _errors(document))


def test_numbers_in_the_schema_are_finite() -> None:
    text = json.dumps(stack_schema())
    assert "NaN" not in text
    assert "Infinity" not in text
