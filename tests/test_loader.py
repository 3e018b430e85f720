"""Tests for convcalc.format.loader: every validation rule pins its message (line, layer, field, value, hint)."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from convcalc.errors import FileProblemError, Problem, SpecError
from convcalc.format.loader import TOP_LEVEL_KEYS, load_stack, parse_input_shape, parse_stack
from convcalc.format.nodes import Reader
from convcalc.ops import registry
from convcalc.stack.spec import InputSpec, Location, StackSpec
from convcalc.stack.values import BAD as _BAD

HEADER = "input: [3, 32, 32]\nlayers:\n"  # layers written after it start on line 3

OP_FIELDS = {name: tuple(f.name for f in op.fields) for name, op in registry.OPS.items()}
REQUIRED_FIELDS = {name: tuple(f.name for f in op.fields if f.required) for name, op in registry.OPS.items()}
OP_ALIASES = registry.ALIASES


def parse(text: str, **kwargs: Any) -> StackSpec:
    return parse_stack(textwrap.dedent(text), file="s.yaml", **kwargs)


def problems(text: str, **kwargs: Any) -> list[Problem]:
    with pytest.raises(SpecError) as info:
        parse(text, **kwargs)
    return list(info.value.problems)


def only_problem(text: str, **kwargs: Any) -> Problem:
    found = problems(text, **kwargs)
    assert len(found) == 1, "\n".join(map(str, found))
    return found[0]


def layers(*lines: str, header: str = HEADER) -> str:
    """A stack whose layers are one flow mapping per line: layer k (1-based) is on line k + 2."""
    return header + "".join(f"  - {line}\n" for line in lines)


# --------------------------------------------------------------------------- one rule, one message


def case(case_id: str, body: str | list[str], where: str, *parts: str, header: str = HEADER) -> Any:
    """One table row: the layer(s) to write, `"<line> <layer> <field>"` (`-` = None), message parts."""
    bodies = [body] if isinstance(body, str) else body
    return pytest.param(layers(*bodies, header=header), where, parts, id=case_id)


LAYER_CASES = [
    case(
        "stride-zero",
        "{op: conv, kernel: 3, stride: 0}",
        "3 conv1 stride",
        "stride must be a positive integer or a list of 2 positive integers, got 0",
    ),
    case("kernel-float", "{op: conv, kernel: 3.0}", "3 conv1 kernel", "positive integer", "got 3.0"),
    case("kernel-bool", "{op: conv, kernel: true}", "3 conv1 kernel", "got true", "boolean"),
    case("kernel-string", "{op: conv, kernel: '3'}", "3 conv1 kernel", "got '3'", "string"),
    case(
        "kernel-rank",
        ["{op: relu}", "{op: conv, kernel: [3, 3, 3]}"],
        "4 conv1 kernel",
        "kernel has 3 entries but the input has 2 spatial axes",
    ),
    case("kernel-entry", "{op: conv, kernel: [3, 0]}", "3 conv1 kernel", "got 0 in [3, 0]"),
    case("kernel-mapping", "{op: conv, kernel: {a: 1}}", "3 conv1 kernel", "got {'a': 1}"),
    case("dilation-zero", "{op: maxpool, kernel: 2, dilation: 0}", "3 maxpool1 dilation", "got 0"),
    case(
        "output-padding-negative",
        "{op: deconv, kernel: 3, output_padding: -1}",
        "3 deconv1 output_padding",
        "non-negative integer",
        "got -1",
    ),
    case("out-zero", "{op: linear, out: 0}", "3 linear1 out", "out must be a positive integer, got 0"),
    case("groups-zero", "{op: conv, kernel: 1, groups: 0}", "3 conv1 groups", "got 0"),
    case("factor-zero", "{op: pixel_shuffle, factor: 0}", "3 pixel_shuffle1 factor", "got 0"),
    case(
        "unknown-op",
        "{op: convv, kernel: 3}",
        "3 #1 op",
        "unknown op 'convv'; did you mean 'conv'?",
        "deconv",
        "identity",
    ),
    case("op-missing", "{kernel: 3}", "3 #1 op", "missing 'op'"),
    case("op-not-string", "{op: 3}", "3 #1 op", "op must be a string", "got 3"),
    case(
        "unknown-field",
        "{op: conv, kernel: 3, strid: 2}",
        "3 conv1 strid",
        "unknown field 'strid' for conv; did you mean 'stride'?",
        "conv accepts: op, name, from",
    ),
    case(
        "field-of-other-op",
        "{op: conv, kernel: 3, output_padding: 1}",
        "3 conv1 output_padding",
        "'output_padding' is a field of deconv, not conv",
    ),
    case("missing-required", "{op: conv, out: 8}", "3 conv1 kernel", "conv needs 'kernel'"),
    case("name-input", "{op: relu, name: input}", "3 #1 name", "'input' is reserved"),
    case("name-empty", "{op: relu, name: ''}", "3 #1 name", "non-empty string", "got ''"),
    case("name-int", "{op: relu, name: 7}", "3 #1 name", "non-empty string", "got 7"),
    case(
        "duplicate-name",
        ["{op: relu, name: a}", "{op: relu, name: a}"],
        "4 a name",
        "duplicate layer name 'a'",
        "line 3",
    ),
    case(
        "from-unknown",
        ["{op: relu, name: block1}", "{op: relu, from: blok1}"],
        "4 relu2 from",
        "unknown layer 'blok1'; did you mean 'block1'?",
        "input, block1",
    ),
    case(
        "from-later",
        ["{op: relu, from: b}", "{op: relu, name: b}"],
        "3 relu1 from",
        "'b' is defined later (line 4); a layer can only read from layers above it",
    ),
    case("from-self", "{op: relu, name: a, from: a}", "3 a from", "cannot read from itself ('a')"),
    case("from-empty-list", "{op: relu, from: []}", "3 relu1 from", "non-empty list", "got []"),
    case("from-not-string", "{op: relu, from: [3]}", "3 relu1 from", "from must name layers", "got 3"),
    case(
        "merge-one-input",
        ["{op: relu}", "{op: add, from: relu1}"],
        "4 add1 from",
        "add merges 2 or more layers",
        "got 1 input",
    ),
    case("merge-default-from", ["{op: relu}", "{op: concat}"], "4 concat1 from", "concat merges 2 or more"),
    case(
        "single-input-op-two-inputs",
        ["{op: relu}", "{op: relu, from: [input, relu1]}"],
        "4 relu2 from",
        "relu takes exactly one input, but 'from' lists 2",
    ),
    case(
        "deconv-valid",
        "{op: deconv, kernel: 3, padding: valid}",
        "3 deconv1 padding",
        "got 'valid'",
        "'same' gives s·i; 'valid' is padding 0",
    ),
    case(
        "deconv-same-output-padding",
        "{op: deconv, kernel: 3, stride: 2, padding: same, output_padding: 1}",
        "3 deconv1 output_padding",
        "output_padding is chosen by padding 'same'",
    ),
    case("pad-valid", "{op: pad, padding: valid}", "3 pad1 padding", "got 'valid'", "explicit sizes"),
    case(
        "conv-negative-padding",
        "{op: conv, kernel: 3, padding: -1}",
        "3 conv1 padding",
        "a non-negative integer, a list of 2 entries",
        "'same', 'valid' or 'same_lower'",
        "got -1",
    ),
    case("padding-triple", "{op: conv, kernel: 3, padding: [[1, 1, 1], 0]}", "3 conv1 padding", "got [1, 1, 1]"),
    case(
        "padding-mode",
        "{op: conv, kernel: 3, padding_mode: zero}",
        "3 conv1 padding_mode",
        "one of 'zeros', 'reflect', 'replicate', 'circular'",
        "got 'zero'",
        "did you mean 'zeros'?",
    ),
    case(
        "upsample-mode",
        "{op: upsample, scale: 2, mode: area}",
        "3 upsample1 mode",
        "one of 'nearest', 'nearest-exact', 'linear', 'bicubic'",
        "got 'area'",
    ),
    case("pad-mode", "{op: pad, padding: 1, mode: edge}", "3 pad1 mode", "'constant'", "got 'edge'"),
    case(
        "align-corners-nearest",
        "{op: upsample, scale: 2, align_corners: true}",
        "3 upsample1 align_corners",
        "only be set with mode 'linear' or 'bicubic'",
        "mode is 'nearest'",
    ),
    case("upsample-both", "{op: upsample, scale: 2, size: 4}", "3 upsample1 size", "not both"),
    case(
        "upsample-neither", "{op: upsample}", "3 upsample1 scale", "needs 'scale'", "'size' (the output size) or 'like'"
    ),
    case("scale-zero", "{op: upsample, scale: 0}", "3 upsample1 scale", "positive number", "got 0"),
    case("scale-string", "{op: upsample, scale: x}", "3 upsample1 scale", "got 'x'"),
    case("upsample-size-null", "{op: upsample, size: [null, 4]}", "3 upsample1 size", "got null"),
    case("adaptive-size-zero", "{op: adaptive_avgpool, size: [null, 0]}", "3 adaptive_avgpool1 size", "got 0"),
    case(
        "trilinear-rank",
        "{op: upsample, scale: 2, mode: trilinear}",
        "3 upsample1 mode",
        "mode 'trilinear' needs 3 spatial axes, but the input has 2",
        "write 'linear'",
    ),
    case(
        "pixel-shuffle-rank",
        "{op: pixel_shuffle, factor: 2}",
        "3 pixel_shuffle1 op",
        "exactly 2 spatial axes",
        "has 1",
        header="input: [4, 8]\nlayers:\n",
    ),
    case("bias-int", "{op: conv, kernel: 1, bias: 1}", "3 conv1 bias", "true or false, got 1"),
    case("ceil-mode", "{op: maxpool, kernel: 2, ceil_mode: 'no'}", "3 maxpool1 ceil_mode", "got 'no'"),
    case("eps-zero", "{op: bn, eps: 0}", "3 batchnorm1 eps", "positive number, got 0"),
    case("p-one", "{op: dropout, p: 1}", "3 dropout1 p", "number in [0, 1), got 1"),
    case("p-nan", "{op: dropout, p: .nan}", "3 dropout1 p", "got .nan"),
    case("value-string", "{op: pad, padding: 1, value: a}", "3 pad1 value", "a number, got 'a'"),
    case(
        "value-with-reflect",
        "{op: pad, padding: 1, mode: reflect, value: 1}",
        "3 pad1 value",
        "only applies to mode 'constant'",
    ),
    case("slope-bool", "{op: leaky_relu, negative_slope: false}", "3 leaky_relu1 negative_slope", "got false"),
    case("layer-not-mapping", "conv", "3 #1 -", "each layer must be a mapping", "got 'conv'"),
    case(
        "unsafe-tag",
        "{op: conv, kernel: !!python/object/apply:os.system [echo hi]}",
        "3 conv1 kernel",
        "python/object/apply",
    ),
]


def check(problem: Problem, where: str, parts: Sequence[str]) -> None:
    line, layer, field = where.split()
    expected = (int(line), None if layer == "-" else layer, None if field == "-" else field)
    assert (problem.line, problem.layer, problem.field) == expected, problem
    assert problem.column is not None
    for part in parts:
        assert part in problem.message


@pytest.mark.parametrize(("text", "where", "parts"), LAYER_CASES)
def test_layer_rule_messages(text: str, where: str, parts: tuple[str, ...]) -> None:
    problem = only_problem(text)
    assert problem.file == "s.yaml"
    check(problem, where, parts)


def top(case_id: str, text: str, where: str, *parts: str) -> Any:
    return pytest.param(text, where, parts, id=case_id)


ONE_LAYER = "layers: [{op: relu}]\n"
TOP_CASES = [
    top(
        "unknown-key",
        "input: [3, 8]\nlayer: []\n" + ONE_LAYER,
        "2 - layer",
        "unknown top-level key 'layer'; did you mean 'layers'?",
        "Allowed keys: " + ", ".join(TOP_LEVEL_KEYS),
    ),
    top("version", "version: 2\ninput: [3, 8]\n" + ONE_LAYER, "1 - version", "version must be 1", "got 2"),
    top("version-bool", "version: true\ninput: [3, 8]\n" + ONE_LAYER, "1 - version", "got true"),
    top("name", "name: [a]\ninput: [3, 8]\n" + ONE_LAYER, "1 - name", "name must be a string"),
    top("input-missing", ONE_LAYER, "1 - input", "missing 'input'", "[3, 224, 224]"),
    top("input-short", "input: [3]\n" + ONE_LAYER, "1 - input", "1 to 3 spatial sizes", "got 1 entry"),
    top("input-long", "input: [3, 1, 2, 3, 4]\n" + ONE_LAYER, "1 - input", "got 5 entries"),
    top("input-scalar", "input: 224\n" + ONE_LAYER, "1 - input", "got 224"),
    top("input-channels", "input: [0, 8]\n" + ONE_LAYER, "1 - input", "channels", "got 0"),
    top("input-spatial", "input: [3, 2.5]\n" + ONE_LAYER, "1 - input", "null (unknown)", "got 2.5"),
    top("layers-missing", "input: [3, 8]\n", "1 - layers", "missing 'layers'"),
    top("layers-empty", "input: [3, 8]\nlayers: []\n", "2 - layers", "non-empty list", "got []"),
    top("layers-mapping", "input: [3, 8]\nlayers: {op: relu}\n", "2 - layers", "non-empty list", "mapping"),
]


@pytest.mark.parametrize(("text", "where", "parts"), TOP_CASES)
def test_top_level_rule_messages(text: str, where: str, parts: tuple[str, ...]) -> None:
    check(only_problem(text), where, parts)


def test_every_problem_is_reported_at_once_in_file_order() -> None:
    text = layers(
        "{op: conv, kernel: 3, stride: 0}",
        "{op: relu, strid: 1}",
        "{op: maxpool}",
        header="nmae: x\ninput: [3, 32, 32]\nlayers:\n",
    )
    found = problems(text)
    assert [(p.line, p.field) for p in found] == [(1, "nmae"), (4, "stride"), (5, "strid"), (6, "kernel")]


def test_three_independent_mistakes_give_three_problems() -> None:
    found = problems(layers("{op: convv}", "{op: conv, kernel: 0}", "{op: relu, from: nowhere}"))
    assert len(found) == 3
    assert [p.layer for p in found] == ["#1", "conv1", "relu1"]


def test_problem_str_names_file_line_layer_and_field() -> None:
    problem = only_problem(layers("{op: conv, kernel: 3, stride: 0}"))
    assert str(problem).startswith("s.yaml:3:")
    assert "layer conv1, field 'stride': stride must be" in str(problem)


def test_bad_value_points_at_the_value_node() -> None:
    problem = only_problem(HEADER + "  - op: conv\n    kernel: 3\n    stride:   0\n")
    assert (problem.line, problem.column) == (5, 15)


def test_unknown_key_points_at_the_key_and_missing_field_at_the_layer() -> None:
    found = problems(HEADER + "  - op: conv\n    strid: 2\n")
    by_field = {p.field: p for p in found}
    assert (by_field["strid"].line, by_field["strid"].column) == (4, 5)
    assert (by_field["kernel"].line, by_field["kernel"].column) == (3, 5)


# --------------------------------------------------------------------------- duplicate keys


def test_duplicate_layer_key_names_both_lines() -> None:
    problem = only_problem(HEADER + "  - op: conv\n    kernel: 3\n    stride: 1\n    kernel: 5\n")
    assert (problem.line, problem.layer, problem.field) == (6, "conv1", "kernel")
    assert "duplicate key 'kernel' on lines 4 and 6" in problem.message


def test_duplicate_top_level_key() -> None:
    problem = only_problem("input: [3, 8]\nlayers: [{op: relu}]\ninput: [3, 9]\n")
    assert problem.line == 3
    assert "duplicate key 'input' on lines 1 and 3" in problem.message


def test_non_string_key() -> None:
    problem = only_problem(layers("{op: relu, 3: x}"))
    assert "keys must be field names" in problem.message
    assert "got 3" in problem.message


def test_yaml_merge_keys_apply_and_written_keys_win() -> None:
    text = textwrap.dedent(
        """\
        input: [3, 32, 32]
        layers:
          - &c3 {op: conv, kernel: 3, padding: 1, out: 8}
          - <<: *c3
            out: 16
        """
    )
    stack = parse(text)
    second = stack.layers[1]
    assert (second.op, second.kernel, second.out, second.name) == ("conv", (3, 3), 16, "conv2")
    assert second.field_locations["kernel"].line == 3
    assert second.field_locations["out"].line == 5


# --------------------------------------------------------------------------- accepted stacks


def test_full_stack_round_trip() -> None:
    stack = parse(
        """\
        name: demo
        version: 1
        input: [3, 224, null]
        layers:
          - op: conv
            out: 64
            kernel: 3
            stride: [1, 2]
            padding: [[0, 1], 2]
          - op: max_pool
            kernel: 2
          - {op: deconv, kernel: 4, stride: 2, padding: 1, output_padding: [0, 1], name: up}
          - {op: add, from: [up, input]}
        """
    )
    assert stack.name == "demo"
    assert stack.file == "s.yaml"
    assert stack.input == InputSpec(3, (224, None))
    assert stack.input_location == Location("s.yaml", 3, 8)
    conv, pool, up, add = stack.layers
    assert (conv.index, conv.name, conv.inputs) == (0, "conv1", ("input",))
    assert (conv.kernel, conv.stride, conv.padding) == ((3, 3), (1, 2), ((0, 1), (2, 2)))
    assert (conv.dilation, conv.groups, conv.bias) == ((1, 1), 1, True)
    assert conv.location == Location("s.yaml", 5, 5)
    assert conv.field_locations["stride"] == Location("s.yaml", 8, 13)
    assert set(conv.field_locations) == {"op", "out", "kernel", "stride", "padding"}
    assert (pool.op, pool.name, pool.inputs, pool.stride) == ("maxpool", "maxpool1", ("conv1",), (2, 2))
    assert pool.padding == ((0, 0), (0, 0))
    assert (up.padding, up.output_padding, up.stride) == (((1, 1), (1, 1)), (0, 1), (2, 2))
    assert (add.name, add.inputs) == ("add1", ("up", "input"))
    assert stack.layer("up") is up


def test_each_op_has_its_own_typed_fields() -> None:
    """A layer holds exactly its op's fields (typed per op): a relu has no kernel, a conv no output_padding."""
    relu, conv = parse(layers("{op: relu}", "{op: conv, kernel: 3}")).layers
    assert not hasattr(relu, "kernel")
    assert not hasattr(conv, "output_padding")
    assert (conv.kernel, conv.padding_mode) == ((3, 3), "zeros")


@pytest.mark.parametrize(
    ("layer", "attr", "expected"),
    [
        ("{op: conv, kernel: 3}", "stride", (1, 1)),
        ("{op: maxpool, kernel: 3}", "stride", (3, 3)),
        ("{op: avgpool, kernel: [2, 3]}", "stride", (2, 3)),
        ("{op: avgpool, kernel: 2}", "dilation", (1, 1)),
        ("{op: conv, kernel: 3, padding: same}", "padding", "same"),
        ("{op: conv, kernel: 3, padding: valid}", "padding", "valid"),
        ("{op: conv, kernel: 3, padding: [1, 2]}", "padding", ((1, 1), (2, 2))),
        ("{op: pad, padding: [-1, [2, -3]]}", "padding", ((-1, -1), (2, -3))),
        ("{op: pad, padding: 2}", "mode", "constant"),
        ("{op: pad, padding: 2, mode: zeros}", "mode", "constant"),
        ("{op: pad, padding: 2, mode: reflect, value: 0}", "mode", "reflect"),
        ("{op: upsample, scale: 2}", "mode", "nearest"),
        ("{op: upsample, scale: 2}", "scale", (2.0, 2.0)),
        ("{op: upsample, scale: [1.5, 2]}", "scale", (1.5, 2.0)),
        ("{op: upsample, size: 7, mode: bilinear, align_corners: false}", "mode", "linear"),
        ("{op: upsample, size: 7, mode: bilinear, align_corners: false}", "align_corners", False),
        ("{op: upsample, size: [7, 9]}", "size", (7, 9)),
        ("{op: adaptive_max_pool, size: [null, 7]}", "size", (None, 7)),
        ("{op: adaptive_avgpool, size: 1}", "size", (1, 1)),
        ("{op: adaptive_avgpool, size: null}", "size", (None, None)),
        ("{op: conv, kernel: 1, padding_mode: circular}", "padding_mode", "circular"),
        ("{op: conv_transpose, kernel: 2}", "op", "deconv"),
        ("{op: bn}", "name", "batchnorm1"),
        ("{op: pixel_shuffle, factor: 2}", "factor", 2),
        ("{op: leaky_relu, negative_slope: 0.2}", "negative_slope", 0.2),
        ("{op: dropout, p: 0}", "p", 0.0),
        ("{op: linear, out: 10, bias: false}", "bias", False),
    ],
)
def test_accepted_values(layer: str, attr: str, expected: object) -> None:
    assert getattr(parse(layers(layer)).layers[0], attr) == expected


def test_default_names_count_per_op_and_skip_explicit_names() -> None:
    stack = parse(
        layers(
            "{op: conv, kernel: 1}",
            "{op: relu}",
            "{op: conv, kernel: 1, name: conv3}",
            "{op: conv, kernel: 1}",
            "{op: conv, kernel: 1}",
            "{op: relu, name: relu2}",
            "{op: relu}",
            "{op: cat, from: [conv1, relu1]}",
        )
    )
    assert [layer.name for layer in stack.layers] == [
        "conv1",
        "relu1",
        "conv3",
        "conv4",
        "conv5",
        "relu2",
        "relu3",
        "concat1",
    ]


def test_default_name_skips_a_name_given_later_in_the_file() -> None:
    stack = parse(layers("{op: relu}", "{op: relu, name: relu1}", header="input: [3, 8]\nlayers:\n"))
    assert [layer.name for layer in stack.layers] == ["relu2", "relu1"]


def test_from_defaults_and_resolution() -> None:
    stack = parse(
        layers(
            "{op: conv, kernel: 1, name: a}",
            "{op: relu}",
            "{op: relu, from: a}",
            "{op: relu, from: [input]}",
            "{op: mul, from: [a, relu1, relu2, input]}",
        )
    )
    assert [layer.inputs for layer in stack.layers] == [
        ("input",),
        ("a",),
        ("a",),
        ("input",),
        ("a", "relu1", "relu2", "input"),
    ]


def test_from_may_use_a_default_name() -> None:
    stack = parse(layers("{op: relu}", "{op: relu}", "{op: add, from: [relu1, relu2]}"))
    assert stack.layers[2].inputs == ("relu1", "relu2")


# --------------------------------------------------------------------------- rank and --input


def test_scalar_broadcasts_to_rank() -> None:
    stack = parse(layers("{op: conv, kernel: 3, dilation: 2}", header="input: [1, 9, 9, 9]\nlayers:\n"))
    assert (stack.layers[0].kernel, stack.layers[0].dilation) == ((3, 3, 3), (2, 2, 2))


def test_input_override_sets_the_rank_and_the_input() -> None:
    override = InputSpec(1, (16,))
    stack = parse(layers("{op: conv, kernel: 3}"), input_override=override, allow_rank_change=True)
    assert stack.input == override
    assert stack.layers[0].kernel == (3,)
    assert stack.input_location == Location()


def test_input_override_rank_is_named_in_length_errors() -> None:
    problem = only_problem(
        layers("{op: conv, kernel: [3, 3]}"), input_override=InputSpec(3, (8, 8, 8)), allow_rank_change=True
    )
    assert "kernel has 2 entries but the input (from the input override) has 3 spatial axes" in problem.message


def test_input_override_may_not_change_the_rank_silently() -> None:
    """A 2-D file with a 1-D override would read every layer as 1-D: refused, naming both ranks."""
    problem = only_problem(layers("{op: conv, out: 8, kernel: 3}"), input_override=InputSpec(3, (224,)))
    assert problem.parameter == "input"
    assert problem.allowed_by == "allow_rank_change"
    assert (problem.file, problem.line) == ("s.yaml", 1)  # the file's `input`
    assert "input 3×32×32 has 2 spatial axes but the given input 3×224 has 1" in problem.message
    assert "give 2 spatial sizes (e.g. 3×224×224)" in problem.message
    assert str(problem).endswith("(parameter 'allow_rank_change' allows it)")


def test_refused_rank_change_still_reports_the_file_at_its_own_rank() -> None:
    found = problems(layers("{op: conv, kernel: [3, 3]}", "{op: conv, kernel: [3]}"), input_override=InputSpec(1, (8,)))
    assert [p.parameter for p in found] == ["input", None]
    assert "kernel has 1 entry but the input has 2 spatial axes" in found[1].message


def test_input_override_changes_the_rank_when_allowed() -> None:
    stack = parse(layers("{op: conv, out: 8, kernel: 3}"), input_override=InputSpec(3, (224,)), allow_rank_change=True)
    assert stack.input == InputSpec(3, (224,))
    assert stack.layers[0].kernel == (3,)


def test_input_override_of_the_same_rank_needs_no_permission() -> None:
    stack = parse(layers("{op: conv, kernel: 3}"), input_override=InputSpec(1, (None, 9)))
    assert stack.input == InputSpec(1, (None, 9))


def test_input_override_makes_file_input_optional() -> None:
    stack = parse("layers: [{op: relu}]\n", input_override=InputSpec(3, (None, None)))
    assert stack.input.rank == 2


# --------------------------------------------------------------------------- file-level failures


def file_problem(path: Path | str) -> Problem:
    with pytest.raises(FileProblemError) as info:
        load_stack(path)
    assert len(info.value.problems) == 1
    return info.value.problems[0]


def test_load_stack_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text(HEADER + "  - {op: relu}\n", encoding="utf-8")
    stack = load_stack(path)
    assert stack.file == str(path)
    assert stack.layers[0].location.file == str(path)


def test_load_stack_spec_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(HEADER + "  - {op: conv}\n", encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_stack(str(path))
    assert info.value.problems[0].file == str(path)
    assert str(info.value).startswith(f"{path}:3:")


def test_missing_file(tmp_path: Path) -> None:
    problem = file_problem(tmp_path / "nope.yaml")
    assert problem.file == str(tmp_path / "nope.yaml")
    assert "no such file" in problem.message


def test_directory(tmp_path: Path) -> None:
    assert "is a directory" in file_problem(tmp_path).message


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file the user may not read is one clear problem. Root (how CI runs) reads any file, so there the
    refusal comes from a stand-in for open() that fails as the kernel would (EACCES)."""
    path = tmp_path / "secret.yaml"
    path.write_text("input: [3, 8]\n", encoding="utf-8")
    if os.name == "posix" and os.geteuid() != 0:
        path.chmod(0)
    else:
        real_open = open

        def refuse(file: object, *args: object, **kwargs: object) -> object:
            if str(file) == str(path):
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(file, *args, **kwargs)  # type: ignore[call-overload]

        monkeypatch.setattr("builtins.open", refuse)
    try:
        problem = file_problem(path)
        assert problem.message == "cannot read the file: Permission denied"
        assert problem.file == str(path)
    finally:
        path.chmod(0o600)


def test_not_utf8_gives_the_byte_offset(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"name: caf\xe9\ninput: [3, 8]\n")
    problem = file_problem(path)
    assert "not UTF-8" in problem.message
    assert "0xe9 at byte offset 9" in problem.message
    assert (problem.line, problem.column) == (1, 10)


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes("\ufeffinput: [3, 8]\nlayers: [{op: relu}]\n".encode())
    assert load_stack(path).input == InputSpec(3, (8,))


@pytest.mark.parametrize("content", ["", "\n\n", "# just a comment\n  # another\n"])
def test_empty_or_comment_only(tmp_path: Path, content: str) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text(content, encoding="utf-8")
    assert "empty" in file_problem(path).message


def test_yaml_syntax_error_has_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("input: [3, 8]\nlayers:\n  - {op: conv, kernel: [3, 3}\n", encoding="utf-8")
    problem = file_problem(path)
    assert problem.message.startswith("not valid YAML")
    assert problem.line == 3
    assert problem.column is not None


def test_yaml_control_character(tmp_path: Path) -> None:
    path = tmp_path / "ctl.yaml"
    path.write_text("input: [3, 8]\nname: a\x01b\n", encoding="utf-8")
    problem = file_problem(path)
    assert "not valid YAML: character U+0001 is not allowed" in problem.message
    assert (problem.line, problem.column) == (2, 8)


def test_two_documents_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "two.yaml"
    path.write_text("input: [3, 8]\n---\nlayers: []\n", encoding="utf-8")
    problem = file_problem(path)
    assert "single document" in problem.message
    assert problem.line == 2


@pytest.mark.parametrize(("content", "kind"), [("- op: conv\n", "a list"), ("hello\n", "a single value")])
def test_top_level_must_be_a_mapping(tmp_path: Path, content: str, kind: str) -> None:
    path = tmp_path / "top.yaml"
    path.write_text(content, encoding="utf-8")
    problem = file_problem(path)
    assert "top level must be a mapping" in problem.message
    assert kind in problem.message
    assert problem.line == 1


def test_parse_stack_without_a_file_name() -> None:
    with pytest.raises(SpecError) as info:
        parse_stack(layers("{op: conv}"))
    assert info.value.problems[0].file is None
    assert str(info.value).startswith("layer conv1")


# --------------------------------------------------------------------------- --input


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3x512x512", InputSpec(3, (512, 512))),
        ("3,512,512", InputSpec(3, (512, 512))),
        ("3×512×512", InputSpec(3, (512, 512))),
        ("3 x 64", InputSpec(3, (64,))),
        ("1x?x?", InputSpec(1, (None, None))),
        ("4x8xnullx8", InputSpec(4, (8, None, 8))),
        ("[3, 32, 32]", InputSpec(3, (32, 32))),
    ],
)
def test_parse_input_shape(text: str, expected: InputSpec) -> None:
    assert parse_input_shape(text) == expected


@pytest.mark.parametrize(
    ("text", "part"),
    [
        ("3", "channels then 1 to 3 spatial sizes"),
        ("3x1x2x3x4", "got '3x1x2x3x4'"),
        ("", "got ''"),
        ("0x8", "channel count must be a positive integer, got '0'"),
        ("?x8", "got '?'"),
        ("3x0", "got '0' in '3x0'"),
        ("3x8.5", "got '8.5'"),
        ("3x-2", "got '-2'"),
    ],
)
def test_parse_input_shape_errors(text: str, part: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_input_shape(text)
    assert info.value.problems[0].parameter == "input"
    assert part in str(info.value)


# --------------------------------------------------------------------------- property: round trip

PROPERTY_OPS = sorted(set(OP_FIELDS) - {"add", "sub", "mul", "concat"})
Case = tuple[object, object]  # (value written in YAML, value the LayerSpec must hold)


def ints(lo: int, hi: int = 9) -> st.SearchStrategy[int]:
    return st.integers(lo, hi)


def per_axis(rank: int, values: st.SearchStrategy[Any], cast: type = object) -> st.SearchStrategy[Case]:
    def convert(v: Any) -> Any:
        return float(v) if cast is float and v is not None else v

    scalar = values.filter(lambda v: v is not None).map(lambda v: (v, (convert(v),) * rank))
    listed = st.lists(values, min_size=rank, max_size=rank).map(lambda vs: (vs, tuple(convert(v) for v in vs)))
    return st.one_of(scalar, listed)


def padding(rank: int, op: str) -> st.SearchStrategy[Case]:
    lo = -3 if op == "pad" else 0
    scalar = ints(lo).map(lambda p: (p, ((p, p),) * rank))
    entry = st.one_of(ints(lo).map(lambda p: (p, (p, p))), st.tuples(ints(lo), ints(lo)).map(lambda b: (list(b), b)))
    listed = st.lists(entry, min_size=rank, max_size=rank).map(lambda es: ([w for w, _ in es], tuple(e for _, e in es)))
    choices: list[st.SearchStrategy[Case]] = [scalar, listed]
    if op not in ("pad", "deconv"):  # deconv's `same` refuses a written output_padding: test_resize.py
        choices.append(st.sampled_from(["same", "valid"]).map(same))
    return st.one_of(*choices)


def floats(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


def same(value: object) -> Case:
    return (value, value)


def field_values(field: str, op: str, rank: int) -> st.SearchStrategy[Case]:
    if field in ("kernel", "stride", "dilation"):
        return per_axis(rank, ints(1))
    if field == "output_padding":
        return per_axis(rank, ints(0))
    if field in ("out", "groups", "factor", "num_parameters", "heads"):
        return ints(1, 512).map(same)
    if field in ("bias", "ceil_mode", "count_include_pad", "affine", "elementwise_affine"):
        return st.booleans().map(same)
    if field == "padding":
        return padding(rank, op)
    if field == "padding_mode":
        return st.sampled_from(["zeros", "reflect", "replicate", "circular"]).map(same)
    if field == "size" and op == "split":
        return ints(1, 64).map(same)
    if field == "size":
        return per_axis(rank, ints(1, 64) if op == "upsample" else st.one_of(st.none(), ints(1, 64)))
    if field == "chunks":
        return ints(1, 64).map(same)
    if field == "sizes":
        return st.lists(ints(1, 64), min_size=1, max_size=4).map(lambda vs: (vs, tuple(vs)))
    if field == "channels":
        end = st.one_of(st.none(), st.integers(-9, 9))
        return st.lists(end, min_size=2, max_size=2).map(lambda vs: (vs, tuple(vs)))
    if field == "scale":
        return per_axis(rank, st.one_of(ints(1, 4), floats(0.1, 8)), float)
    if field in ("value", "negative_slope", "alpha", "threshold", "init", "add", "mul"):
        nonzero = op == "celu" or field == "mul"  # celu divides by alpha; a zero mul cuts the input off
        return floats(-10, 10).filter(lambda v: v != 0 or not nonzero).map(same)
    if field == "beta":
        return floats(1e-3, 10).map(same)
    if field == "min_val":
        return floats(-10, -1.5).map(same)  # below max_val's default (1) and every drawn max_val
    if field == "max_val":
        return floats(-0.5, 10).map(same)  # above min_val's default (-1) and every drawn min_val
    if field == "approximate":
        return st.sampled_from(["none", "tanh"]).map(same)
        return floats(-10, 10).map(same)
    if field == "eps":
        return floats(1e-12, 1).filter(lambda v: v > 0).map(same)
    if field == "p":
        return st.floats(0, 1, exclude_max=True).map(same)
    raise AssertionError(field)


@st.composite
def random_layer(draw: st.DrawFn) -> tuple[int, str, dict[str, object], dict[str, object]]:
    """(rank, op, fields written, what the LayerSpec must hold for each)."""
    op = draw(st.sampled_from(PROPERTY_OPS))
    rank = 2 if op in ("pixel_shuffle", "pixel_unshuffle") else draw(st.integers(1, 3))
    aliases = [alias for alias, canonical in OP_ALIASES.items() if canonical == op]
    written: dict[str, object] = {"op": draw(st.sampled_from([op, *aliases]))}
    expected: dict[str, object] = {"op": op}
    fields = [f for f in OP_FIELDS[op] if f not in ("mode", "align_corners", "antialias", "scale", "size", "like")]
    if op in ("adaptive_avgpool", "adaptive_maxpool"):
        fields.append("size")
    if op == "upsample":
        fields.append(draw(st.sampled_from(["scale", "size"])))  # `like` needs a layer above: test_resize.py
        mode = draw(st.sampled_from(["nearest", "linear", None, *(["bilinear"] if rank == 2 else [])]))
        if mode is not None:
            written["mode"] = mode
            expected["mode"] = "nearest" if mode == "nearest" else "linear"
            if mode != "nearest" and draw(st.booleans()):
                written["align_corners"] = expected["align_corners"] = draw(st.booleans())
    if op == "split":  # sizes (a list) or size, exactly one
        fields = [draw(st.sampled_from(["sizes", "size"]))]
    if op == "pad":
        mode = draw(st.sampled_from(["constant", "zeros", "reflect", "replicate", "circular"]))
        written["mode"] = mode
        expected["mode"] = "constant" if mode in ("constant", "zeros") else mode
        if expected["mode"] != "constant":
            fields.remove("value")
    for name in fields:
        if name in REQUIRED_FIELDS.get(op, ()) or name in ("scale", "size") or op == "split" or draw(st.booleans()):
            written[name], expected[name] = draw(field_values(name, op, rank))
    if draw(st.booleans()):
        written["name"] = expected["name"] = draw(
            st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True).filter(lambda n: n != "input")
        )
    return rank, op, written, expected


@settings(max_examples=300, deadline=None)
@given(random_layer())
def test_random_valid_layer_round_trips(case: tuple[int, str, dict[str, object], dict[str, object]]) -> None:
    rank, _, written, expected = case
    text = yaml.safe_dump({"input": [4, *[16] * rank], "layers": [written]}, sort_keys=False)
    layer = parse_stack(text).layers[0]
    for name, value in expected.items():
        assert getattr(layer, name) == value, name
    assert set(layer.field_locations) == set(written)
    assert layer.inputs == ("input",)


# --------------------------------------------------------------------------- scalars as PyYAML types them

_SCALAR_TEXT = st.one_of(
    st.from_regex(r"[-+]?(0[xbo]?)?[0-9_:]{0,5}", fullmatch=True),  # octal 010, 0x1f, 1_000, 1:30, -0
    st.text(alphabet="0123456789+-_:xXbBoO.eE", max_size=8),
    st.sampled_from(["yes", "No", "ON", "off", "TRUE", "false", "y", "null", "Null", "~", "", "maybe", ".inf"]),
    st.text(max_size=6),
)


@settings(max_examples=400)
@given(st.sampled_from(["int", "bool", "null", "str", "float", "binary"]), _SCALAR_TEXT)
def test_scalars_are_typed_exactly_as_pyyaml_types_them(tag: str, text: str) -> None:
    # The loader reads common scalars without PyYAML's constructor; PyYAML's SafeConstructor is the reference.
    node = yaml.ScalarNode(f"tag:yaml.org,2002:{tag}", text)
    try:
        expected: object = yaml.constructor.SafeConstructor().construct_object(node, deep=True)
    except Exception:
        expected = _BAD
    got = Reader("s.yaml").scalar(node)
    assert (type(got), repr(got)) == (type(expected), repr(expected))


# --------------------------------------------------------------------------- without libyaml


def test_pure_python_loader_reports_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    text = layers("{op: conv, kernel: 3, stride: 0}", "{op: relu, strid: 1}")
    with_libyaml = problems(text)
    monkeypatch.setattr("convcalc.format.nodes._Loader", yaml.SafeLoader)
    assert problems(text) == with_libyaml


def test_absurd_nesting_is_a_file_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    # The pure-Python composer recurses once per level; that must not escape as RecursionError.
    monkeypatch.setattr("convcalc.format.nodes._Loader", yaml.SafeLoader)
    with pytest.raises(FileProblemError, match="nested too deeply"):
        parse_stack("input: " + "[" * 5000 + "]" * 5000 + "\n")
