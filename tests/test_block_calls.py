"""Block calls with `when:`, repeats with a `names:` template, and groups of plain layers (`group:`)."""

from __future__ import annotations

import textwrap

import pytest

from convcalc.analysis.engine import analyze
from convcalc.errors import Problem, SpecError
from convcalc.format.dump import dump_stack
from convcalc.format.loader import parse_stack
from convcalc.stack.spec import StackSpec


def parse(text: str) -> StackSpec:
    return parse_stack(textwrap.dedent(text), file="s.yaml")


def only(text: str) -> Problem:
    with pytest.raises(SpecError) as info:
        parse(text)
    assert len(info.value.problems) == 1, "\n".join(map(str, info.value.problems))
    return info.value.problems[0]


def names(spec: StackSpec) -> list[tuple[str, tuple[str, ...]]]:
    return [(layer.name, layer.inputs) for layer in spec.layers]


SE = """\
input: [8, 16, 16]
blocks:
  se:
    layers:
      - {op: adaptive_avgpool, name: pool, size: 1}
      - {op: conv, name: fc, kernel: 1}
      - {op: sigmoid, name: gate}
      - {op: mul, name: scale, from: [input, gate]}
  mbconv:
    params: {expand: 1, use_se: false}
    layers:
      - {op: conv, name: expand, out: "${8 * expand}", kernel: 1, when: "${expand > 1}"}
      - {op: conv, name: dw, kernel: 3, padding: 1, groups: 8}
      - {block: se, name: se, when: "${use_se}"}
      - {op: conv, name: project, out: 8, kernel: 1}
layers:
  - {block: mbconv, name: b0}
  - {block: mbconv, name: b1, with: {use_se: true}}
"""


def test_a_false_when_leaves_out_the_call_and_its_readers_read_its_input() -> None:
    got = names(parse(SE))
    assert got[:2] == [("b0.dw", ("input",)), ("b0.project", ("b0.dw",))]
    assert ("b1.se.scale", ("b1.dw", "b1.se.gate")) in got
    assert ("b1.project", ("b1.se.scale",)) in got


def test_a_top_level_call_can_be_switched_off() -> None:
    text = SE.replace("  - {block: mbconv, name: b0}\n", "  - {block: mbconv, name: b0, when: false}\n")
    assert names(parse(text))[0][0] == "b1.dw"


def test_when_must_be_a_boolean() -> None:
    problem = only(SE.replace('when: "${use_se}"', 'when: "${expand}"'))
    assert (problem.line, problem.layer, problem.field) == (14, "b0.se", "when")
    assert "when must be true or false" in problem.message
    assert "got 1" in problem.message


DENSE = """\
input: [64, 8, 8]
blocks:
  dense:
    layers:
      - {op: conv, name: conv1, out: 32, kernel: 1}
      - {op: conv, name: conv2, out: 8, kernel: 3, padding: 1}
      - {op: concat, name: cat, from: [input, conv2]}
layers:
  - {block: dense, name: denseblock1, repeat: 3, names: "denselayer${index + 1}"}
  - {op: conv, name: head, from: denseblock1.denselayer2, kernel: 1}
"""


#: Without the reader of instance 2 (which a bad template leaves undefined: a second problem).
DENSE_ALONE = DENSE.rsplit("  - {op: conv, name: head", 1)[0]


def test_names_template_gives_the_instances_torchs_names() -> None:
    spec = parse(DENSE)
    assert [layer.name for layer in spec.layers][:3] == [
        "denseblock1.denselayer1.conv1",
        "denseblock1.denselayer1.conv2",
        "denseblock1.denselayer1.cat",
    ]
    assert spec.layers[-1].inputs == ("denseblock1.denselayer2.cat",)
    # DenseNet growth: 64 + 3·8 channels after three layers (hand count), reached through the instances.
    assert analyze(spec).layers[-2].output.channels == 64 + 3 * 8


def test_names_template_can_count_alone_and_round_trips() -> None:
    spec = parse(DENSE.replace('"denselayer${index + 1}"', '"${index + 1}"').replace("denselayer2", "2"))
    assert spec.layers[0].name == "denseblock1.1.conv1"
    again = parse_stack(dump_stack(spec))
    assert names(again) == names(spec)


@pytest.mark.parametrize(
    ("template", "part"),
    [
        ('"layer"', "names gives 'layer' to instances 0 and 1"),
        ('"a.${index}"', "a name without '.'"),
        ('"l${nope}"', "unknown parameter 'nope'"),
        ("3", 'names must be a name template such as "denselayer${index + 1}", got 3'),
    ],
)
def test_names_messages(template: str, part: str) -> None:
    problem = only(DENSE_ALONE.replace('"denselayer${index + 1}"', template))
    assert (problem.file, problem.line, problem.layer, problem.field) == ("s.yaml", 9, "denseblock1", "names")
    assert part in problem.message


def test_names_needs_repeat() -> None:
    problem = only(DENSE_ALONE.replace("repeat: 3, ", ""))
    assert (problem.line, problem.field) == (9, "names")
    assert "names the instances of a repeat" in problem.message


GROUP = """\
input: [3, 32, 32]
layers:
  - group: stem
    layers:
      - {op: conv, name: conv, out: 8, kernel: 3, stride: 2, padding: 1}
      - {op: relu, name: relu}
  - {op: conv, name: skip, from: stem.conv, kernel: 1}
  - {group: head, from: stem, layers: [{op: conv, name: conv, kernel: 1}, {op: add, name: add, from: [conv, skip]}]}
  - {op: flatten, from: head}
"""


def test_a_group_names_its_layers_and_stands_for_the_last() -> None:
    assert names(parse(GROUP)) == [
        ("stem.conv", ("input",)),
        ("stem.relu", ("stem.conv",)),
        ("skip", ("stem.conv",)),
        ("head.conv", ("stem.relu",)),
        ("head.add", ("head.conv", "skip")),
        ("flatten1", ("head.add",)),
    ]


def test_a_group_inside_a_block() -> None:
    text = """\
    input: [3, 8, 8]
    blocks:
      b:
        params: {out: 4}
        layers:
          - {group: g, layers: [{op: conv, name: c, out: "${out}", kernel: 1}]}
          - {op: relu, name: r, from: g}
    layers:
      - {block: b, name: x, repeat: 2}
    """
    assert names(parse(text)) == [
        ("x.0.g.c", ("input",)),
        ("x.0.r", ("x.0.g.c",)),
        ("x.1.g.c", ("x.0.r",)),
        ("x.1.r", ("x.1.g.c",)),
    ]


@pytest.mark.parametrize(
    ("old", "new", "line", "layer", "field", "part"),
    [
        ("from: [conv, skip]", "from: [conv, skp]", 8, "head.add", "from", "unknown layer 'skp' in group 'head'"),
        ("from: stem, layers", "from: stm, layers", 8, "head", "from", "did you mean 'stem'?"),
        ("  - group: stem\n", "  - group: 3\n", 3, "#1", "group", "group must be the group's name"),
        ("{group: head, from: stem,", "{group: head, form: stem,", 8, "head", "form", "did you mean 'from'?"),
        (
            "layers: [{op: conv, name: conv, kernel: 1}, {op: add, name: add, from: [conv, skip]}]",
            "layers: []",
            8,
            "head",
            "layers",
            "a group needs 'layers': a non-empty list",
        ),
    ],
)
def test_group_messages(old: str, new: str, line: int, layer: str, field: str, part: str) -> None:
    assert old in GROUP
    with pytest.raises(SpecError) as info:
        parse(GROUP.replace(old, new))
    problem = info.value.problems[0]  # in file order: a nameless group's layers cannot be found either
    assert (problem.file, problem.line, problem.layer, problem.field) == ("s.yaml", line, layer, field)
    assert part in problem.message
