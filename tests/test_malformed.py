"""The input path never crashes: the malformed catalogue (tests/data/malformed, one exact message each), the
limits of convcalc.format.limits (each refused fast, with the limit named), and messages that must not mislead.

Every case runs the CLI in-process (`convcalc rf FILE`) and checks the exit code and the exact first line of
stderr, and none of them hangs (HANG below).
"""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.main import app
from convcalc.format.limits import MAX_FILE_BYTES, MAX_LAYERS
from convcalc.ops import registry

#: A hang guard, not a speed test (these machines are shared and noisy): the cases below ran for ever or
#: for minutes before their limits; each now ends in about a second.
HANG = 60
DATA = Path(__file__).parent / "data" / "malformed"
runner = CliRunner()


def invoke(*args: str, stdin: bytes | str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), input=stdin, env={"COLUMNS": "160"}, prog_name="convcalc")
    return result.exit_code, result.stdout, result.stderr


def catalogue() -> list[Any]:
    """(name, exit code, message) rows of EXPECTED.tsv; `{ops}` stands for every op name."""
    ops = ", ".join(registry.OPS)
    rows = []
    for line in (DATA / "EXPECTED.tsv").read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        name, code, message = line.split("\t")
        rows.append(pytest.param(name, int(code), message.replace("{ops}", ops), id=name))
    return rows


CATALOGUE = catalogue()


def test_the_catalogue_has_a_row_for_every_file_and_at_least_60() -> None:
    names = {p.values[0] for p in CATALOGUE}
    assert names == {p.stem for p in DATA.glob("*.yaml")}
    assert len(names) >= 60


@pytest.mark.parametrize(("name", "code", "message"), CATALOGUE)
def test_malformed_file_message(name: str, code: int, message: str) -> None:
    path = DATA / f"{name}.yaml"
    start = time.monotonic()
    exit_code, out, err = invoke("rf", str(path))
    assert time.monotonic() - start < HANG
    assert (exit_code, out) == (code, "")
    assert "Traceback" not in err
    assert "internal error" not in err
    where = f"error: {path}:" if message[:1].isdigit() else f"error: {path}: "
    assert err.splitlines()[0] == where + message


# --------------------------------------------------------------------------- limits


def stack_file(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def refused(*args: str, stdin: bytes | str | None = None) -> str:
    """The one error line of a refused command (exit 1, not hanging)."""
    start = time.monotonic()
    code, out, err = invoke(*args, stdin=stdin)
    assert time.monotonic() - start < HANG, err
    assert code == 1, err
    assert out == ""
    assert "Traceback" not in err
    assert "internal error" not in err
    return err.splitlines()[0]


def block_file(expression: str) -> str:
    return (
        "input: [3, 32, 32]\nblocks:\n  c:\n    layers:\n"
        f'      - {{op: conv, kernel: "${{{expression}}}"}}\nlayers:\n  - {{block: c, name: c}}\n'
    )


def test_a_5000_digit_integer_names_the_digit_limit(tmp_path: Path) -> None:
    path = stack_file(tmp_path, "input: [3, 32, 32]\nlayers:\n  - {op: conv, kernel: " + "7" * 5000 + "}\n")
    line = refused("rf", str(path))
    assert "(an integer of 5,000 digits; convcalc reads at most 1,000)" in line
    assert "… (5,000 characters)" in line


def test_2000_deep_block_nesting_names_the_nesting_limit(tmp_path: Path) -> None:
    lines = ["input: [3, 8, 8]", "blocks:", "  b0:", "    layers:", "      - {op: relu}"]
    for i in range(1, 2000):
        lines += [f"  b{i}:", "    layers:", f"      - {{block: b{i - 1}, name: x}}"]
    lines += ["layers:", "  - {block: b1999, name: top}"]
    line = refused("rf", str(stack_file(tmp_path, "\n".join(lines) + "\n")))
    assert "blocks and groups nest more than 100 deep" in line


@pytest.mark.parametrize(
    ("expression", "said"),
    [
        ("(" * 3000 + "3" + ")" * 3000, "is longer than 1,000 characters"),
        ("(" * 400 + "3" + ")" * 400, "nests parentheses, signs, 'not' or '**' more than 100 deep"),
        ("-" * 900 + "3", "more than 100 deep"),
        ("not " * 200 + "true", "more than 100 deep"),
        ("**".join(["1"] * 300), "more than 100 deep"),
        ("1" + "+1" * 1_000_000, "is longer than 1,000 characters"),
    ],
    ids=["parens-3000", "parens-400", "unary-900", "not-200", "power-300", "sum-2MB"],
)
def test_deep_or_long_expressions_are_refused_fast(tmp_path: Path, expression: str, said: str) -> None:
    line = refused("rf", str(stack_file(tmp_path, block_file(expression))))
    assert said in line
    assert len(line) < 400  # the expression is cut, not echoed


def test_an_expression_of_the_longest_allowed_length_is_read() -> None:
    from convcalc.format.expressions import evaluate

    assert evaluate("1" + "+1" * 499, {}) == 500  # 999 characters: 500 ones


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
@pytest.mark.parametrize("where", ["stack", "data"])
def test_a_fifo_is_refused_without_blocking(tmp_path: Path, where: str) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    if where == "stack":
        line = refused("rf", str(fifo))
        assert line == f"error: {fifo}: is a named pipe (FIFO), not a regular file; give a stack file, or - for stdin"
    else:
        path = stack_file(tmp_path, "input: [3, 4, 4]\nlayers:\n  - {op: relu}\n")
        line = refused("run", str(path), "--data", str(fifo))
        assert line == (f"error: {fifo}: option --data: is not a regular file (a pipe or a device); give a .npy file")


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_device_is_refused(device: str) -> None:
    if not os.path.exists(device) or not stat.S_ISCHR(os.stat(device).st_mode):
        pytest.skip(f"no {device}")
    assert refused("rf", device) == (
        f"error: {device}: is a device, not a regular file; give a stack file, or - for stdin"
    )


def test_a_file_above_the_size_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    row = "  - {op: conv, kernel: 3, padding: 1}\n"
    path.write_text("input: [3, 32, 32]\nlayers:\n" + row * (MAX_FILE_BYTES // len(row) + 1), encoding="utf-8")
    line = refused("rf", str(path))
    assert line == (
        f"error: {path}: larger than 16 MB, the largest stack file convcalc reads (a 20,000-layer stack is under 1 MB)"
    )


def test_stdin_is_read_with_the_same_bound() -> None:
    line = refused("rf", "-", stdin=b"#" * (MAX_FILE_BYTES + 10))
    assert line.startswith("error: <stdin>: larger than 16 MB")


def test_stdin_still_reads_a_stack() -> None:
    code, out, err = invoke("rf", "-", stdin="\ufeffinput: [3, 8, 8]\r\nlayers:\r\n  - {op: conv, kernel: 3}\r\n")
    assert code == 0, err
    assert "3×6×6" in out


def test_100k_plain_layers_are_refused_in_seconds(tmp_path: Path) -> None:
    path = stack_file(tmp_path, "input: [3, 32, 32]\nlayers:\n" + "  - {op: conv, kernel: 3, padding: 1}\n" * 100_000)
    line = refused("rf", str(path))
    assert line == (
        f"error: {path}:3:3: field 'layers': more than 20,000 layers: a stack has at most 20,000 "
        "(written out or made by blocks)"
    )


def test_exactly_the_layer_cap_is_accepted() -> None:
    from convcalc.format.loader import parse_stack

    spec = parse_stack("input: [3, 8]\nlayers:\n" + "  - {op: relu}\n" * MAX_LAYERS, "s.yaml")
    assert len(spec.layers) == MAX_LAYERS


def test_the_layer_cap_counts_aliases_too(tmp_path: Path) -> None:
    text = "input: [3, 8]\nlayers:\n  - &r {op: relu}\n" + "  - *r\n" * MAX_LAYERS
    line = refused("rf", str(stack_file(tmp_path, text)))
    assert "more than 20,000 layers" in line


def test_a_merge_key_bomb_is_read_in_linear_time() -> None:
    from convcalc.format.loader import parse_stack

    lines = ["input: [3, 8]", "layers:", "  - &a0 {op: relu}"]
    lines += [f"  - &a{n} {{<<: [*a{n - 1}, *a{n - 1}]}}" for n in range(1, 41)]
    start = time.monotonic()
    spec = parse_stack("\n".join(lines) + "\n", "s.yaml")
    assert time.monotonic() - start < HANG  # 2⁴⁰ merged reads would never end
    assert [layer.op for layer in spec.layers] == ["relu"] * 41


def test_a_when_false_repeat_bomb_is_refused_fast(tmp_path: Path) -> None:
    text = (
        'input: [3, 8, 8]\nblocks:\n  e:\n    layers:\n      - {op: relu, when: "${false}"}\n'
        "  r1:\n    layers:\n      - {block: e, name: e, repeat: 10000}\n"
        "  r2:\n    layers:\n      - {block: r1, name: r, repeat: 10000}\n"
        "  r3:\n    layers:\n      - {block: r2, name: r, repeat: 10000}\n"
        "layers:\n  - {op: relu}\n  - {block: r3, name: r, repeat: 10000}\n"
    )
    line = refused("rf", str(stack_file(tmp_path, text)))
    assert "the blocks expand to more than 20,000 layers" in line
    assert "a false 'when:' leaves out count too" in line


# --------------------------------------------------------------------------- messages that must not mislead


def test_a_2mb_value_is_cut_in_the_message(tmp_path: Path) -> None:
    path = stack_file(tmp_path, "input: [3, 8, 8]\nlayers:\n  - {op: conv, kernel: " + "k" * 2_000_000 + "}\n")
    line = refused("rf", str(path))
    assert line.endswith("got 'kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk… (2,000,000 characters)'")


def test_a_tab_indent_is_named(tmp_path: Path) -> None:
    path = stack_file(tmp_path, "input: [3, 8, 8]\nlayers:\n  - op: conv\n\tkernel: 3\n")
    assert refused("rf", str(path)) == (
        f"error: {path}:4:1: not valid YAML: tabs are not allowed for indentation in YAML; use spaces"
    )


@pytest.mark.parametrize(("written", "hint"), [("1e3", "write 1000"), ("2e-1", "write 2.0e-1"), ("1E+2", "write 100")])
def test_exponent_notation_is_explained(tmp_path: Path, written: str, hint: str) -> None:
    path = stack_file(tmp_path, f"input: [3, 8, 8]\nlayers:\n  - {{op: conv, kernel: {written}}}\n")
    assert f"('{written}' is a string to YAML; {hint})" in refused("rf", str(path))


NAME = "a\nb\u202ec"
ESCAPED = "a\\nb\\u202ec"


@pytest.fixture
def control_stack(tmp_path: Path) -> Path:
    return stack_file(tmp_path, 'input: [3, 8, 8]\nlayers:\n  - {op: conv, name: "a\\nb\\u202ec", kernel: 3}\n')


@pytest.mark.parametrize("fmt", ["table", "csv", "markdown"])
def test_control_characters_in_names_are_escaped(control_stack: Path, fmt: str) -> None:
    code, out, err = invoke("rf", str(control_stack), "--format", fmt)
    assert code == 0, err
    assert ESCAPED in out
    assert "\u202e" not in out
    assert all("\n" not in line for line in out.splitlines())
    assert "a\nb" not in out


def test_json_keeps_the_real_name(control_stack: Path) -> None:
    code, out, err = invoke("rf", str(control_stack), "--format", "json")
    assert code == 0, err
    assert json.loads(out)["layers"][0]["name"] == NAME


def test_control_characters_in_messages_are_escaped(tmp_path: Path) -> None:
    path = stack_file(tmp_path, 'input: [3, 8, 8]\nlayers:\n  - {op: conv, name: "a\\nb\\u202ec", kernel: 30}\n')
    code, _, err = invoke("rf", str(path))
    assert code == 1
    assert err.count("\n") == 1
    assert f"layer {ESCAPED}, field 'kernel'" in err


np = pytest.importorskip("numpy")


def small_stack(tmp_path: Path) -> Path:
    return stack_file(tmp_path, "input: [3, 2, 2]\nlayers:\n  - {op: conv, kernel: 1}\n  - {op: relu}\n")


def test_data_that_is_not_a_npy_says_so(tmp_path: Path) -> None:
    data = tmp_path / "x.npy"
    data.write_text("hello", encoding="utf-8")
    line = refused("run", str(small_stack(tmp_path)), "--data", str(data))
    assert line == (
        f"error: {data}: option --data: not a .npy file (it does not start with the .npy header); "
        "save one with numpy.save"
    )


class _Bomb:
    """Unpickling it would create a file: proof that a pickle was never loaded."""

    def __init__(self, flag: str) -> None:
        self.flag = flag

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (Path(self.flag),))


def test_a_pickle_bearing_npy_is_never_unpickled(tmp_path: Path) -> None:
    flag = tmp_path / "unpickled"
    data = tmp_path / "obj.npy"
    np.save(data, np.array([_Bomb(str(flag))], dtype=object), allow_pickle=True)
    line = refused("run", str(small_stack(tmp_path)), "--data", str(data))
    assert line == (
        f"error: {data}: option --data: not a usable .npy array: it holds Python objects, not numbers; "
        "save an array of numbers with numpy.save"
    )
    message = line.split("option --data: ")[1]
    assert "pickle" not in message
    assert "unsafe" not in message
    assert not flag.exists()


def test_a_0d_array_is_named(tmp_path: Path) -> None:
    data = tmp_path / "scalar.npy"
    np.save(data, np.array(3.0))
    line = refused("run", str(small_stack(tmp_path)), "--data", str(data))
    assert "the array is 0-d (one number, no dimensions), but the stack's input is 3×2×2" in line


def test_nan_and_inf_data_give_one_note_and_no_warning(tmp_path: Path) -> None:
    data = tmp_path / "bad.npy"
    np.save(data, np.array([[[np.nan, np.inf], [1, 2]]] * 3, dtype=np.float32))
    code, out, err = invoke("run", str(small_stack(tmp_path)), "--data", str(data))
    assert code == 0, err
    assert err == ""  # no RuntimeWarning
    assert out.count("note: the data holds 6 NaN or infinite value(s)") == 1


# --------------------------------------------------------------------------- what already holds


def test_no_yaml_tag_runs_code(tmp_path: Path) -> None:
    flag = tmp_path / "ran"
    for tag in ("!!python/object/apply:os.system", "!!python/object/new:os.system", "!!python/name:os.system"):
        text = f"input: [3, 8, 8]\nlayers:\n  - {{op: conv, kernel: {tag} ['touch {flag}']}}\n"
        code, _, err = invoke("rf", str(stack_file(tmp_path, text)))
        assert code == 1, err
    assert not flag.exists()


def test_no_expression_runs_code(tmp_path: Path) -> None:
    line = refused("rf", str(stack_file(tmp_path, block_file("__import__('os').system('true')"))))
    assert "unexpected" in line


def test_an_alias_bomb_is_refused_fast(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]" for n in range(1, 9)]
    text = "\n".join(lines) + "\ninput: [3, 8, 8]\nlayers:\n  - {op: conv, kernel: *a8}\n"
    line = refused("rf", str(stack_file(tmp_path, text)))
    assert "unknown top-level key 'a0'" in line


def test_100k_deep_nesting_is_refused(tmp_path: Path) -> None:
    text = "input: [3, 8, 8]\nlayers:\n  - {op: conv, kernel: " + "[" * 100_000 + "]" * 100_000 + "}\n"
    line = refused("rf", str(stack_file(tmp_path, text)))
    assert "not valid YAML" in line or "nested too deeply" in line


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (b"\xef\xbb\xbfinput: [3, 8, 8]\nlayers:\n  - {op: conv, kernel: 30}\n", ":3:24: layer conv1"),
        (b"input: [3, 8, 8]\r\nlayers:\r\n  - {op: conv, kernel: 30}\r\n", ":3:24: layer conv1"),
        (b"input: [3, 8, 8]\nlayers:\n  - {op: relu\x00}\n", ":3:14: not valid YAML: character U+0000 is not allowed"),
        (b"input: [3, 8, 8]\nlayers:\n  - {op: \xff}\n", ":3:10: not UTF-8 text: byte 0xff"),
    ],
    ids=["bom", "crlf", "nul", "invalid-utf8"],
)
def test_encodings_are_read_or_named(tmp_path: Path, data: bytes, said: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_bytes(data)
    assert said in refused("rf", str(path))


def test_a_from_cycle_is_refused(tmp_path: Path) -> None:
    text = "input: [3, 8, 8]\nlayers:\n  - {op: relu, name: a, from: b}\n  - {op: relu, name: b, from: a}\n"
    assert "'b' is defined later (line 4)" in refused("rf", str(stack_file(tmp_path, text)))


def test_a_10000_way_concat_is_answered(tmp_path: Path) -> None:
    text = (
        "input: [1, 4, 4]\nlayers:\n  - {op: relu, name: r}\n  - {op: concat, from: ["
        + ", ".join(["r"] * 10_000)
        + "]}\n"
    )
    start = time.monotonic()
    code, out, err = invoke("rf", str(stack_file(tmp_path, text)), "--format", "json")
    assert time.monotonic() - start < HANG
    assert code == 0, err
    assert json.loads(out)["layers"][-1]["output"]["channels"] == 10_000


def _param_file(params: list[str], use: str) -> str:
    return "\n".join(
        [
            *["input: [1, 8, 8]", "blocks:", "  b:", "    params:", *params],
            *["    layers:", f"      - {use}", "layers:", "  - {block: b, name: x}", ""],
        ]
    )


def test_an_alias_bomb_as_a_block_parameter_is_refused(tmp_path: Path) -> None:
    # 2**29 leaves written out: pasting it into the layer never ended.
    params = ["      a0: &a0 [1, 1]"] + [f"      a{i}: &a{i} [*a{i - 1}, *a{i - 1}]" for i in range(1, 30)]
    text = _param_file(params, '{op: conv, kernel: 3, name: c, padding: "${a29}"}')
    line = refused("rf", str(stack_file(tmp_path, text)))
    assert "layer x.c, field 'padding': parameter 'a29' holds more than 10,000 values written out" in line


def test_a_block_parameter_that_contains_itself_is_refused(tmp_path: Path) -> None:
    # `&a [*a]` is a list holding itself: pasting it recursed until Python's limit (exit 70).
    text = _param_file(["      k: &a [*a]"], '{op: conv, kernel: "${k}"}')
    line = refused("rf", str(stack_file(tmp_path, text)))
    assert "field 'kernel': parameter 'k' holds more than 10,000 values written out" in line
