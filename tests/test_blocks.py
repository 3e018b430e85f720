"""Blocks: expansion semantics, names, repeat, parameters, expressions and errors inside instances.

The reference for expansions is a flat stack written out by hand in each test (or
tests/data/resnet18_flat.yaml, the pre-blocks ResNet-18); expressions are checked against Python's
own integer arithmetic.
"""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from convcalc.errors import FileProblemError, Problem, SpecError
from convcalc.format import expressions
from convcalc.format.dump import dump_stack
from convcalc.format.library import list_configs
from convcalc.format.loader import load_stack, parse_stack
from convcalc.stack.spec import LayerSpec, StackSpec
from tests import stacks

DATA = Path(__file__).parent / "data"


def parse(text: str) -> StackSpec:
    return parse_stack(textwrap.dedent(text), "net.yaml")


def plain(spec: StackSpec) -> list[LayerSpec]:
    """The layers without source positions (an expansion and its flat equivalent sit on other lines)."""
    return [dataclasses.replace(layer, location=None, field_locations={}) for layer in spec.layers]  # type: ignore[arg-type]


def problems(text: str) -> list[Problem]:
    with pytest.raises(SpecError) as info:
        parse(text)
    return list(info.value.problems)


def line_of(text: str, needle: str) -> int:
    """1-based line of the first line of `text` (dedented) containing `needle`."""
    for number, line in enumerate(textwrap.dedent(text).splitlines(), 1):
        if needle in line:
            return number
    raise AssertionError(needle)


BASIC = """\
    input: [3, 32, 32]
    blocks:
      basic:
        params: {out: 8, stride: 1}
        layers:
          - {op: conv, name: conv1, out: "${out}", kernel: 3, stride: "${stride}", padding: 1}
          - {op: relu, name: relu1}
          - {op: conv, name: conv2, out: "${out}", kernel: 3, padding: 1}
          - {op: conv, name: down, from: input, out: "${out}", kernel: 1, stride: "${stride}",
             when: "${stride > 1}"}
          - {op: add, name: add, from: [conv2, down]}
    layers:
      - {op: conv, name: stem, out: 8, kernel: 3, padding: 1}
      - {block: basic, name: stage, repeat: 2, with: {out: 16}, first: {stride: 2}}
      - {op: relu, name: head, from: stage}
"""

BASIC_FLAT = """\
    input: [3, 32, 32]
    layers:
      - {op: conv, name: stem, out: 8, kernel: 3, padding: 1}
      - {op: conv, name: stage.0.conv1, out: 16, kernel: 3, stride: 2, padding: 1}
      - {op: relu, name: stage.0.relu1}
      - {op: conv, name: stage.0.conv2, out: 16, kernel: 3, padding: 1}
      - {op: conv, name: stage.0.down, from: stem, out: 16, kernel: 1, stride: 2}
      - {op: add, name: stage.0.add, from: [stage.0.conv2, stage.0.down]}
      - {op: conv, name: stage.1.conv1, out: 16, kernel: 3, stride: 1, padding: 1}
      - {op: relu, name: stage.1.relu1}
      - {op: conv, name: stage.1.conv2, out: 16, kernel: 3, padding: 1}
      - {op: add, name: stage.1.add, from: [stage.1.conv2, stage.0.add]}
      - {op: relu, name: head}
"""


# --------------------------------------------------------------------------- expansion semantics


def test_expansion_equals_the_hand_written_flat_stack() -> None:
    assert plain(parse(BASIC)) == plain(parse(BASIC_FLAT))


def test_resnet18_with_blocks_equals_the_hand_written_one() -> None:
    bundled = load_stack(Path(__file__).parent.parent / "configs" / "resnet18.yaml")
    assert plain(bundled) == plain(load_stack(DATA / "resnet18_flat.yaml"))


def test_names_are_instance_qualified_and_index_only_with_repeat() -> None:
    spec = parse(
        """\
        input: [1, 16]
        blocks:
          pair:
            layers:
              - {op: conv, kernel: 3, padding: 1}
              - {op: relu}
              - {op: conv, kernel: 1}
        layers:
          - {block: pair, name: a, repeat: 3}
          - {block: pair, name: b}
          - {block: pair}
        """
    )
    names = [layer.name for layer in spec.layers]
    assert names[:3] == ["a.0.conv1", "a.0.relu1", "a.0.conv2"]
    assert names[6:9] == ["a.2.conv1", "a.2.relu1", "a.2.conv2"]
    assert names[9:12] == ["b.conv1", "b.relu1", "b.conv2"]
    # An unnamed use is named like an unnamed layer: <block><n>, n counting the uses of that block so far.
    assert names[12:] == ["pair3.conv1", "pair3.relu1", "pair3.conv2"]
    # Instances chain: each reads the previous instance's output.
    assert spec.layer("a.1.conv1").inputs == ("a.0.conv2",)
    assert spec.layer("b.conv1").inputs == ("a.2.conv2",)


def test_use_name_and_instance_name_stand_for_outputs() -> None:
    spec = parse(
        """\
        input: [1, 16]
        blocks:
          unit:
            layers:
              - {op: conv, name: main, kernel: 3, padding: 1}
              - {op: relu, name: after}
            output: main
        layers:
          - {block: unit, name: s, repeat: 3}
          - {op: concat, name: cat, from: [s, s.0, s.1.after]}
        """
    )
    assert spec.layer("cat").inputs == ("s.2.main", "s.0.main", "s.1.after")
    # The explicit output, not the last layer, feeds the next instance.
    assert spec.layer("s.1.main").inputs == ("s.0.main",)


def test_when_false_layers_pass_their_input_through() -> None:
    spec = parse(BASIC)
    assert "stage.1.down" not in [layer.name for layer in spec.layers]
    assert spec.layer("stage.1.add").inputs == ("stage.1.conv2", "stage.0.add")


def test_parameters_defaults_with_first_and_index() -> None:
    spec = parse(
        """\
        input: [1, 64]
        blocks:
          dil:
            params: {d: 1, width: null, double: "${width * 2}"}
            layers:
              - {op: conv, name: conv, out: "${double}", kernel: 2, dilation: "${d}", padding: [["${d}", 0]]}
        layers:
          - {block: dil, name: l, repeat: 4, with: {d: "${2 ** index}", width: 3}, first: {width: 5}}
        """
    )
    convs = spec.layers
    assert [c.dilation for c in convs] == [(1,), (2,), (4,), (8,)]
    assert [c.padding for c in convs] == [((1, 0),), ((2, 0),), ((4, 0),), ((8, 0),)]
    assert [c.out for c in convs] == [10, 6, 6, 6]


def test_list_parameter_is_pasted_whole() -> None:
    spec = parse(
        """\
        input: [1, 20, 20]
        blocks:
          b:
            params: {k: [3, 5], pad: [[1, 1], [2, 3]]}
            layers:
              - {op: conv, name: c, kernel: "${k}", padding: "${pad}"}
        layers:
          - {block: b, name: x}
        """
    )
    assert spec.layer("x.c").kernel == (3, 5)
    assert spec.layer("x.c").padding == ((1, 1), (2, 3))


def test_nested_blocks_and_lookup_where_the_block_is_used() -> None:
    spec = parse(
        """\
        input: [2, 16, 16]
        blocks:
          cbr:
            params: {out: 4, k: 1}
            layers:
              - {op: conv, name: conv, out: "${out}", kernel: "${k}", padding: "${k // 2}"}
              - {op: relu, name: relu}
          branchy:
            params: {skip: null}
            layers:
              - {block: cbr, name: b1}
              - {block: cbr, name: b2.0, from: input, with: {out: 3}}
              - {block: cbr, name: b2.1, with: {k: 3}}
              - {op: concat, name: cat, from: [b1, b2.1, "${skip}"]}
        layers:
          - {op: conv, name: stem, out: 5, kernel: 1}
          - {block: branchy, name: m, with: {skip: stem}}
        """
    )
    assert spec.layer("m.b1.conv").inputs == ("stem",)
    assert spec.layer("m.b2.0.conv").inputs == ("stem",)
    assert spec.layer("m.b2.0.conv").out == 3
    assert spec.layer("m.b2.1.conv").kernel == (3, 3)
    assert spec.layer("m.b2.1.conv").padding == ((1, 1), (1, 1))
    assert spec.layer("m.cat").inputs == ("m.b1.relu", "m.b2.1.relu", "stem")


def test_files_without_blocks_are_read_exactly_as_before() -> None:
    text = "input: [1, 8]\nlayers:\n  - {op: conv, kernel: 3}\n  - {op: conv, kernel: 3}\n"
    assert [layer.name for layer in parse(text).layers] == ["conv1", "conv2"]


def test_description_is_read() -> None:
    spec = parse("description: a tiny net\ninput: [1, 8]\nlayers:\n  - {op: relu}\n")
    assert spec.description == "a tiny net"


# --------------------------------------------------------------------------- expressions


def test_expressions() -> None:
    env: dict[str, expressions.Value] = {"out": 64, "index": 2, "down": True}
    assert expressions.evaluate("out * 4 + 1", env) == 257
    assert expressions.evaluate("(out - 4) // 3 % 7", env) == (64 - 4) // 3 % 7
    assert expressions.evaluate("-2 ** 2", env) == -4  # as in Python: ** binds tighter than unary minus
    assert expressions.evaluate("2 ** 3 ** 2", env) == 512  # right-associative
    assert expressions.evaluate("index == 2 and not down or false", env) is False
    assert expressions.evaluate("index >= 2 and index < 3", env) is True
    assert expressions.substitute("conv${index + 1}", env) == "conv3"
    assert expressions.substitute("  ${down}  ", env) is True


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("out / 2", "use //"),
        ("out // 0", "division by zero"),
        ("outt * 2", "unknown parameter 'outt'"),
        ("down + 1", "needs integers, got a boolean"),
        ("out and down", "needs true or false"),
        ("2 ** 200", "exponent"),
        ("(out", "ends too early"),
        ("out out", "unexpected 'out'"),
        ("out $ 2", "unexpected '$'"),
        ("", "empty"),
        ("lst * 2", "is a list"),
    ],
)
def test_expression_errors(expr: str, fragment: str) -> None:
    env: dict[str, expressions.Value] = {"out": 64, "down": True, "lst": expressions.Opaque("a list")}
    with pytest.raises(expressions.ExprError, match=None) as info:
        expressions.evaluate(expr, env)
    assert fragment in str(info.value)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(-50, 50), min_size=1, max_size=6),
    st.lists(st.sampled_from(["+", "-", "*", "//", "%"]), min_size=5, max_size=5),
)
def test_arithmetic_agrees_with_python(numbers: list[int], ops: list[str]) -> None:
    """Differential check: our parser against Python's own integer arithmetic (precedence included)."""
    names = [f"v{i}" for i in range(len(numbers))]
    text = " ".join(f"{name} {op}" for name, op in zip(names[:-1], ops, strict=False)) + f" {names[-1]}"
    env: dict[str, expressions.Value] = dict(zip(names, numbers, strict=True))
    try:
        expected: object = eval(text, {"__builtins__": {}}, dict(env))
    except ZeroDivisionError:
        with pytest.raises(expressions.ExprError, match="division by zero"):
            expressions.evaluate(text, env)
    else:
        assert expressions.evaluate(text, env) == expected


# --------------------------------------------------------------------------- errors


def test_error_points_into_the_instance_and_the_inner_line() -> None:
    text = """\
        input: [1, 16]
        blocks:
          b:
            params: {k: 3}
            layers:
              - {op: relu, name: act}
              - {op: conv, name: conv, kernel: "${k - index}", padding: 1}
        layers:
          - {block: b, name: stage, repeat: 4}
        """
    [problem] = problems(text)
    assert problem.layer == "stage.3.conv"  # k - index = 0 first in instance 3
    assert problem.field == "kernel"
    assert problem.line == line_of(text, "name: conv,")
    assert "got 0" in problem.message
    assert "from '${k - index}'" in problem.message
    assert str(problem).startswith(f"net.yaml:{problem.line}:")


def test_the_same_mistake_in_every_instance_is_reported_once() -> None:
    text = """\
        input: [1, 16]
        blocks:
          b:
            layers:
              - {op: conv, name: conv, kernel: 0}
        layers:
          - {block: b, name: s, repeat: 3}
        """
    [problem] = problems(text)
    assert problem.layer == "s.0.conv"
    assert problem.line == line_of(text, "kernel: 0")
    assert problem.message.endswith("(and in 2 more instances)")


def test_bad_parameter_value_from_with_names_the_instance() -> None:
    text = """\
        input: [1, 16]
        blocks:
          b:
            params: {stride: 1}
            layers:
              - {op: conv, name: conv, kernel: 3, stride: "${stride}"}
        layers:
          - {block: b, name: s, repeat: 2, first: {stride: -1}}
        """
    [problem] = problems(text)
    assert (problem.layer, problem.field) == ("s.0.conv", "stride")
    assert "got -1" in problem.message


@pytest.mark.parametrize(
    ("layers", "blocks_text", "fragment", "field"),
    [
        ("{block: basci, name: x}", "", "unknown block 'basci'; did you mean 'basic'?", "block"),
        ("{block: basic, name: x, with: {outt: 3}}", "", "no parameter 'outt'; did you mean 'out'?", "with"),
        ("{block: basic, name: x, repeat: 0}", "", "repeat must be an integer from 1", "repeat"),
        ("{block: basic, name: x, op: conv}", "", "a layer has either 'op' or 'block'", "op"),
        ("{block: basic, name: x, from: [a, b]}", "", "a block has one input", "from"),
        ("{block: needs, name: x}", "", "needs 'width'", "with"),
        ("{block: loop, name: x}", "", "block 'loop' uses itself (loop → loop)", "block"),
        (
            "{block: typo, name: x}",
            "",
            "unknown layer 'conv9' in block 'typo' (x); did you mean 'conv1'?",
            "from",
        ),
        ("{block: badwhen, name: x}", "", "when must be true or false", "when"),
        ("{block: basic, name: x}", "  other: {layer: []}\n", "unknown key 'layer' in a block", "layer"),
    ],
)
def test_block_errors(layers: str, blocks_text: str, fragment: str, field: str) -> None:
    text = (
        "input: [1, 16]\n"
        "blocks:\n"
        "  basic:\n"
        "    params: {out: 4}\n"
        "    layers:\n"
        '      - {op: conv, name: conv1, out: "${out}", kernel: 3}\n'
        "  needs:\n"
        "    params: {width: null}\n"
        "    layers:\n"
        '      - {op: conv, out: "${width}", kernel: 1}\n'
        "  loop:\n"
        "    layers:\n"
        "      - {block: loop}\n"
        "  typo:\n"
        "    layers:\n"
        "      - {op: conv, name: conv1, kernel: 1}\n"
        "      - {op: relu, from: conv9}\n"
        "  badwhen:\n"
        "    layers:\n"
        "      - {op: relu, when: maybe}\n"
        f"{blocks_text}"
        "layers:\n"
        f"  - {layers}\n"
    )
    found = problems(text)
    assert any(fragment in p.message and p.field == field for p in found), found
    assert all(p.file == "net.yaml" and p.line is not None for p in found)


def test_when_is_only_for_layers_inside_blocks() -> None:
    [problem] = problems("input: [1, 8]\nlayers:\n  - {op: relu, when: true}\n")
    assert "unknown field 'when'" in problem.message


def test_unquoted_reference_in_flow_style_gets_a_hint() -> None:
    with pytest.raises(FileProblemError) as info:
        parse("input: [1, 8]\nlayers:\n  - {op: conv, kernel: ${k}}\n")
    assert 'write a block parameter in quotes: "${name}"' in str(info.value)


def test_runaway_expansion_is_refused() -> None:
    text = """\
        input: [1, 16]
        blocks:
          leaf:
            layers:
              - {op: relu}
          wide:
            layers:
              - {block: leaf, repeat: 1000}
        layers:
          - {block: wide, repeat: 1000}
        """
    [problem] = problems(text)
    assert "more than 20,000 layers" in problem.message


# --------------------------------------------------------------------------- the plain form


@pytest.mark.parametrize("path", list_configs(), ids=lambda p: p.stem)
def test_dump_reads_back_to_the_same_stack(path: Path) -> None:
    spec = load_stack(path)
    again = parse_stack(dump_stack(spec), "expanded.yaml")
    assert plain(again) == plain(spec)
    assert (again.name, again.description, again.input) == (spec.name, spec.description, spec.input)


@settings(max_examples=100, deadline=None)
@given(stacks.stack(rank=2, max_layers=5, size_range=(1, 24)))
def test_dump_round_trips_random_stacks(doc: dict[str, Any]) -> None:
    spec = parse_stack(yaml.safe_dump(doc), "random.yaml")
    assert plain(parse_stack(dump_stack(spec), "again.yaml")) == plain(spec)
