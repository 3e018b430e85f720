"""`convcalc check`: contracts (`expect:`), suppression (`ignore:`, --ignore), --baseline, combined exit codes.

Expected values come from outside convcalc: published receptive fields (VGG-16's pool5: 212, jump 32;
conv5_3: 196, jump 16 — tests/../shared reference, receptive-fields.md), torchvision's parameter counts
(the weights' `num_params` metadata, as tests/test_published.py uses them), and hand derivations with
PyTorch's size rule out = floor((i + 2p - k) / s) + 1, written next to each case.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from cli.main import app
from convcalc.errors import SpecError
from convcalc.format.loader import parse_stack
from convcalc.stack.spec import Location, StackSpec

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"
runner = CliRunner()

#: A transposed conv with kernel 3, stride 2: phases get 2 and 1 taps, the textbook checkerboard.
DECONV = """\
input: [8, 16, 16]
layers:
  - {op: conv, name: c1, out: 8, kernel: 3, padding: 1}
  - {op: deconv, name: up, out: 4, kernel: 3, stride: 2}
"""


def invoke(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, ["check", *args], input=input, env={"COLUMNS": "160"}, prog_name="convcalc")
    return result.exit_code, result.stdout, result.stderr


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def vgg16_with(expect: str) -> str:
    """configs/vgg16.yaml's layers with another `expect:` section."""
    text = (CONFIGS / "vgg16.yaml").read_text(encoding="utf-8")
    return text.split("\n# What `convcalc check` verifies", 1)[0] + "\nexpect:\n" + expect


def document(*args: str, input: str | None = None) -> tuple[int, dict[str, object]]:
    code, out, _ = invoke(*args, "--format", "json", input=input)
    return code, json.loads(out)


def expectations(doc: dict[str, object], index: int = 0) -> list[dict[str, object]]:
    files = doc["files"]
    assert isinstance(files, list)
    return list(files[index]["expectations"])


# --------------------------------------------------------------------------- contracts met and broken


def test_the_bundled_vgg16_meets_its_published_contracts() -> None:
    code, out, err = invoke(str(CONFIGS / "vgg16.yaml"))
    assert code == 0, err
    assert out.strip().endswith("ok (40 layers, 10 of 10 expectations met)")
    assert err == ""


def test_published_receptive_fields_met_and_the_next_integer_broken(tmp_path: Path) -> None:
    # Published: pool5 RF 212, jump 32; conv5_3 RF 196, jump 16 (VGG-16, 224×224).
    met = vgg16_with(
        "  - {layer: pool5, rf: 212, jump: 32}\n"
        "  - {layer: conv5_3, rf: {min: 196, max: 196}, jump: [16, 16]}\n"
        "  - {layer: pool5, rf: [{max: 212}, {min: 212}]}\n"
    )
    code, doc = document(write(tmp_path, "met.yaml", met))
    assert code == 0
    assert [e["ok"] for e in expectations(doc)] == [True] * 5
    broken = vgg16_with(
        "  - {layer: pool5, rf: {min: 213}}\n  - {layer: pool5, rf: {max: 211}}\n  - {layer: conv5_3, jump: 32}\n"
    )
    path = write(tmp_path, "broken.yaml", broken)
    code, out, err = invoke(path)
    assert code == 3
    line = len(broken.split("\nexpect:\n")[0].splitlines()) + 2  # the first entry's line
    assert f"{path}:{line}:24: error expect.rf [pool5] rf expected ≥ 213, got 212×212" in out.splitlines()
    assert f"{path}:{line + 1}:24: error expect.rf [pool5] rf expected ≤ 211, got 212×212" in out.splitlines()
    assert f"{path}:{line + 2}:28: error expect.jump [conv5_3] jump expected = 32, got 16×16" in out.splitlines()
    assert err.splitlines()[0] == f"check: {path}: 3 broken expectations"


@pytest.mark.parametrize(
    ("name", "params"),
    [("resnet18", 11_689_512), ("vgg16", 138_357_544), ("mobilenet_v2", 3_504_872)],
)
def test_torchvision_parameter_counts_as_budgets(tmp_path: Path, name: str, params: int) -> None:
    text = (CONFIGS / f"{name}.yaml").read_text(encoding="utf-8").split("\nexpect:", 1)[0]
    ok = write(tmp_path, "ok.yaml", text + f"\nexpect:\n  - {{params: {params}}}\n  - {{params: {{max: {params}}}}}\n")
    assert invoke(ok)[0] == 0
    over = write(tmp_path, "over.yaml", text + f"\nexpect:\n  - {{params: {{max: {params - 1}}}}}\n")
    code, doc = document(over)
    assert code == 3
    (result,) = expectations(doc)
    assert (result["check"], result["ok"], result["actual"]) == ("params", False, str(params))


def test_counts_written_as_yaml_reads_them(tmp_path: Path) -> None:
    # YAML 1.1 reads 30e6 as a string and 3.0e+7 as a float: both mean 30,000,000 here.
    text = (
        DECONV
        + "expect:\n"
        + "".join(f"  - {{params: {{max: {v}}}}}\n" for v in ("30e6", "3.0e+7", "30M", "'0.03G'", "30_000_000"))
    )
    spec = parse_stack(text, "s.yaml")
    assert [e.params.max if e.params else None for e in spec.expect] == [30_000_000] * 5


def test_jump_as_a_fraction_after_upsampling(tmp_path: Path) -> None:
    # conv stride 2 (jump 2), then ×4 nearest upsampling: jump 2/4 = 1/2 input pixel between outputs.
    text = """\
input: [1, 32, 32]
layers:
  - {op: conv, out: 4, kernel: 3, stride: 2, padding: 1}
  - {op: upsample, name: up, scale: 4}
expect:
  - {layer: up, jump: "1/2"}
  - {layer: up, jump: 2}
"""
    code, doc = document(write(tmp_path, "up.yaml", text))
    assert code == 3
    assert [(e["ok"], e["actual"]) for e in expectations(doc)] == [(True, "1/2×1/2"), (False, "1/2×1/2")]


def test_shape_at_another_input(tmp_path: Path) -> None:
    # kernel 3, stride 2, no padding: floor((65 - 3) / 2) + 1 = 32; floor((64 - 3) / 2) + 1 = 31.
    text = """\
input: [3, null, null]
layers:
  - {op: conv, name: c, out: 16, kernel: 3, stride: 2}
expect:
  - {layer: c, shape: [16, 32, 32], at: [3, 65, 65]}
  - {shape: [16, 32, null], at: 3x64x64}
  - {shape: [16, 31, 31], at: [3, 64, 64], rf: 3, jump: 2}
"""
    code, doc = document(write(tmp_path, "at.yaml", text))
    assert code == 3
    got = [(e["check"], e["ok"], e["actual"]) for e in expectations(doc)]
    assert got == [
        ("shape", True, "16×32×32"),
        ("shape", False, "16×31×31"),
        ("rf", True, "3×3"),
        ("jump", True, "2×2"),
        ("shape", True, "16×31×31"),
    ]


def test_accepts_names_the_refused_sizes(tmp_path: Path) -> None:
    # Two 3×3 stride-2 convs without padding: the first gives a = floor((s - 3) / 2) + 1, the second needs
    # a ≥ 3, so s ≥ 7. Sizes 1, 3, 5, ..., 13: 1, 3 and 5 are refused (1 by the first conv).
    text = """\
input: [1, 64, 64]
layers:
  - {op: conv, name: a, out: 2, kernel: 3, stride: 2}
  - {op: conv, name: b, out: 2, kernel: 3, stride: 2}
expect:
  - {accepts: {min: 1, max: 13, step: 2}}
  - {accepts: {min: 7, max: 13}}
"""
    code, doc = document(write(tmp_path, "acc.yaml", text))
    assert code == 3
    first, second = expectations(doc)
    assert first["ok"] is False
    assert str(first["actual"]).startswith("3 of 7 refused: 1 (a: ")
    assert "; 3 (b: " in str(first["actual"])
    assert "; 5 (b: " in str(first["actual"])
    assert (second["ok"], second["actual"]) == (True, "all 7 accepted")


def test_forbid_names_where_the_diagnostic_is(tmp_path: Path) -> None:
    text = DECONV + "expect:\n  - {forbid: [checkerboard, gridding]}\n  - {layer: c1, forbid: checkerboard}\n"
    code, doc = document(write(tmp_path, "f.yaml", text), "--fail-on", "never")
    assert code == 3
    assert [(e["ok"], e["actual"]) for e in expectations(doc)] == [(False, "checkerboard at up"), (True, "none")]


def test_an_input_the_stack_refuses_breaks_the_entry_not_the_file(tmp_path: Path) -> None:
    text = DECONV.replace("[8, 16, 16]", "[8, null, null]") + "expect:\n  - {shape: [4, 33, 33], at: [8, 16, 16]}\n"
    text += "  - {rf: 4, at: [8, 8, 8]}\n"
    code, doc = document(write(tmp_path, "r.yaml", text), "--fail-on", "never")
    # (16 − 1)·2 + 3 = 33 at 16. The RF of up: an even output reads 2 adjacent units of c1 (RF 3, jump 1): 4.
    assert [(e["ok"], e["actual"]) for e in expectations(doc)] == [(True, "4×33×33"), (True, "4×4")]
    assert code == 0
    refused = DECONV + "expect:\n  - {layer: up, rf: 7, at: [8, 1, 1]}\n"
    refused = refused.replace("padding: 1}", "padding: 0}")
    code, doc = document(write(tmp_path, "r2.yaml", refused), "--fail-on", "never")
    assert code == 3
    (result,) = expectations(doc)
    assert str(result["actual"]).startswith("the stack refused at 8×1×1: ")


# --------------------------------------------------------------------------- malformed `expect:` / `ignore:`

MALFORMED = [
    ("expect: {rf: 3}", "s.yaml:5:9: field 'expect': expect must be a list of expectations"),
    (
        "expect:\n  - {layer: c2, rf: 3}",
        "s.yaml:6:13: field 'expect': entry #1, layer: no layer named 'c2' in the stack. Layers: c1, up",
    ),
    (
        "expect:\n  - {lyer: up, rf: 3}",
        "s.yaml:6:6: field 'expect': entry #1: unknown key 'lyer'; did you mean 'layer'? Allowed keys: layer, at, rf",
    ),
    ("expect:\n  - {rf: {mn: 3}}", "s.yaml:6:11: field 'expect': entry #1, rf: unknown key 'mn'; did you mean 'min'?"),
    ("expect:\n  - {rf: {min: 9, max: 3}}", "s.yaml:6:10: field 'expect': entry #1, rf: min 9 is above max 3"),
    ("expect:\n  - {rf: 0}", "s.yaml:6:10: field 'expect': entry #1, rf: must be an integer ≥ 1"),
    ("expect:\n  - {rf: [3, 3, 3]}", "s.yaml:6:10: field 'expect': entry #1, rf: a list must hold 2 values"),
    ("expect:\n  - {params: 30e6x}", "s.yaml:6:14: field 'expect': entry #1, params: must be a non-negative integer"),
    ("expect:\n  - {params: -1}", "s.yaml:6:14: field 'expect': entry #1, params: must be a non-negative integer"),
    (
        "expect:\n  - {jump: 1/0}",
        "s.yaml:6:12: field 'expect': entry #1, jump: must be a positive integer or a fraction",
    ),
    ("expect:\n  - {no: [checkerboard]}", "s.yaml:6:6: field 'expect': entry #1: YAML reads the key `no` as false"),
    (
        "expect:\n  - {forbid: [checkerbord]}",
        "s.yaml:6:15: field 'expect': entry #1, forbid: unknown diagnostic code 'checkerbord'; did you mean "
        "'checkerboard'?",
    ),
    ("expect:\n  - {shape: [4, 0]}", "s.yaml:6:17: field 'expect': entry #1, shape: sizes must be positive integers"),
    ("expect:\n  - {shape: [4], at: [8, 16]}", "s.yaml:6:22: field 'expect': entry #1, at: must have 2 spatial sizes"),
    (
        "expect:\n  - {accepts: {min: 1, max: 1000}}",
        "s.yaml:6:15: field 'expect': entry #1, accepts: 1..1000 step 1 is 1000 sizes, more than the 128",
    ),
    ("expect:\n  - {accepts: {min: 8}}", "s.yaml:6:15: field 'expect': entry #1, accepts: missing 'max'"),
    (
        "expect:\n  - {layer: up, accepts: {min: 8, max: 9}}",
        "s.yaml:6:26: field 'expect': entry #1, accepts: is about the whole stack",
    ),
    ("expect:\n  - {layer: up}", "s.yaml:6:5: field 'expect': entry #1: says nothing to check"),
    ("expect:\n  - 5", "s.yaml:6:5: field 'expect': entry #1: must be a mapping"),
    ("ignore: [checkerbord]", "s.yaml:5:10: field 'ignore': entry #1, code: unknown diagnostic code 'checkerbord'"),
    ("ignore: [{layer: up}]", "s.yaml:5:10: field 'ignore': entry #1: missing 'code'"),
    ("ignore: [{code: holes, layer: upp}]", "s.yaml:5:31: field 'ignore': entry #1, layer: no layer named 'upp'"),
]


@pytest.mark.parametrize(("section", "message"), MALFORMED, ids=[m[1].split(": ", 2)[-1][:40] for m in MALFORMED])
def test_malformed_sections_are_refused_with_place_entry_and_value(section: str, message: str) -> None:
    text = DECONV + section + "\n"
    with pytest.raises(SpecError) as info:
        parse_stack(text, "s.yaml")
    rendered = [str(p) for p in info.value.problems]
    assert any(r.startswith(message) for r in rendered), rendered


def test_the_schema_refuses_what_the_loader_refuses_in_expect() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from convcalc.format.schema import stack_schema

    validator = jsonschema.Draft202012Validator(stack_schema())
    good = yaml.safe_load(
        DECONV + "expect:\n  - {layer: up, rf: {min: 3}, jump: '1/2', params: 30M}\nignore: [holes]\n"
    )
    assert list(validator.iter_errors(good)) == []
    for section in ("expect: [{lyer: up}]", "expect: [{rf: {mn: 3}}]", "expect: [{forbid: [x]}]", "ignore: [nope]"):
        assert list(validator.iter_errors(yaml.safe_load(DECONV + section + "\n"))) != [], section


# --------------------------------------------------------------------------- suppression


def test_a_warning_fails_check_unless_suppressed(tmp_path: Path) -> None:
    path = write(tmp_path, "d.yaml", DECONV)
    code, out, err = invoke(path)
    assert code == 3
    assert out.splitlines()[0].startswith(f"{path}:4:5: warning checkerboard [up] uneven overlap")
    assert err.splitlines()[0] == f"check: {path}: 1 diagnostic at warning or worse"
    assert invoke(path, "--fail-on", "error")[0] == 0
    for extra in ("ignore: [checkerboard]\n", "ignore: [{code: checkerboard, layer: up}]\n", "ignore: checkerboard\n"):
        code, doc = document(write(tmp_path, "s.yaml", DECONV + extra))
        assert code == 0, extra
        (diagnostic,) = doc["files"][0]["diagnostics"]  # type: ignore[index]
        assert (diagnostic["code"], diagnostic["suppressed"], diagnostic["line"]) == ("checkerboard", True, 4)
    # Another layer's suppression does not cover it.
    other = write(tmp_path, "o.yaml", DECONV + "ignore: [{code: checkerboard, layer: c1}]\n")
    assert invoke(other)[0] == 3
    code, doc = document(path, "--ignore", "checkerboard", "--ignore", "holes")
    assert code == 0
    assert doc["files"][0]["findings"][0]["suppressed"] is True  # type: ignore[index]


def test_an_unknown_ignore_option_names_the_option() -> None:
    code, out, err = invoke(str(CONFIGS / "vgg16.yaml"), "--ignore", "checkerbord")
    assert code == 1
    assert out == ""
    assert err.startswith("error: option --ignore: unknown diagnostic code 'checkerbord'; did you mean 'checkerboard'?")


def test_suppression_never_hides_a_broken_contract(tmp_path: Path) -> None:
    text = DECONV + "expect:\n  - {forbid: checkerboard}\nignore: [checkerboard]\n"
    code, doc = document(write(tmp_path, "s.yaml", text))
    assert code == 3
    assert doc["files"][0]["reasons"] == ["1 broken expectation"]  # type: ignore[index]


# --------------------------------------------------------------------------- many files, stdin, exit codes


def test_several_files_one_exit_code_and_every_file_reported(tmp_path: Path) -> None:
    ok = str(CONFIGS / "vgg16.yaml")
    broken = write(tmp_path, "broken.yaml", vgg16_with("  - {layer: pool5, rf: 300}\n"))
    invalid = write(tmp_path, "invalid.yaml", DECONV.replace("kernel: 3, stride: 2", "kernel: -3, stride: 2"))
    code, out, err = invoke(ok, broken)
    assert code == 3
    code, out, err = invoke(ok, invalid, broken)
    assert code == 1  # invalid input wins over a broken contract
    assert f"{ok}: ok (40 layers, 10 of 10 expectations met)" in out
    assert any(
        line.startswith(f"{broken}:") and "expect.rf [pool5] rf expected = 300, got 212×212" in line
        for line in out.splitlines()
    )
    assert any(
        line.startswith(f"{invalid}:4:44: error invalid-input [up] layer up, field 'kernel'")
        for line in out.splitlines()
    )
    assert err.splitlines() == [
        f"check: {invalid}: invalid input: {invalid}:4:44: layer up, field 'kernel': "
        + err.splitlines()[0].split("field 'kernel': ", 1)[1],
        f"check: {broken}: 1 broken expectation",
        "check: 2 of 3 files failed (exit 1)",
    ]
    code, doc = document(ok, invalid, broken)
    assert (code, doc["exit_code"], doc["summary"]) == (
        1,
        1,
        {"files": 3, "failed": 2, "invalid": 1, "broken_expectations": 1},
    )


def test_standard_input_and_bundled_names_and_quoted_globs(tmp_path: Path) -> None:
    code, out, _ = invoke("-", input=(CONFIGS / "vgg16.yaml").read_text(encoding="utf-8"))
    assert (code, out) == (0, "<stdin>: ok (40 layers, 10 of 10 expectations met)\n")
    code, out, _ = invoke("-", input="input: [3, 8, 8]\nlayers: [{op: conv, out: 2, kernel: 3}]\nexpect: [{rf: 4}]\n")
    assert (code, out.splitlines()[-1]) == (3, "<stdin>: FAILED (1 layer, 0 of 1 expectation met)")
    code, out, _ = invoke("-", input="input: [3, 8, 8]\nlayers: [{op: conv, out: 2, kernel: 3}]\nexpect: [{rf: x}]\n")
    assert (code, out.splitlines()[-1]) == (1, "<stdin>: FAILED (invalid input, not checked)")
    code, out, _ = invoke("vgg16")
    assert (code, out) == (0, "bundled:vgg16: ok (40 layers, 10 of 10 expectations met)\n")
    write(tmp_path, "a.yaml", DECONV)
    write(tmp_path, "b.yaml", DECONV + "ignore: [checkerboard]\n")
    code, doc = document(str(tmp_path / "*.yaml"))
    assert code == 3
    assert [f["ok"] for f in doc["files"]] == [False, True]  # type: ignore[index, union-attr]
    code, out, err = invoke(str(tmp_path / "none*.yaml"))
    assert code == 1
    assert "no such file" in err


def test_run_checks_every_shape_with_the_reference_ops(tmp_path: Path) -> None:
    code, out, _ = invoke(write(tmp_path, "d.yaml", DECONV), "--run", "--fail-on", "never")
    assert code == 0
    assert out.strip().endswith("run: ok)")


# --------------------------------------------------------------------------- baseline


def test_baseline_reports_what_an_edit_changed(tmp_path: Path) -> None:
    before = DECONV
    old = tmp_path / "old.json"
    result = runner.invoke(app, ["rf", write(tmp_path, "net.yaml", before), "--format", "json"])
    old.write_text(result.stdout, encoding="utf-8")
    # c1 kernel 3 → 5 (padding 2 keeps 16×16), and a layer added at the end.
    after = before.replace("kernel: 3, padding: 1", "kernel: 5, padding: 2") + "  - {op: relu, name: act}\n"
    path = write(tmp_path, "net.yaml", after)
    code, doc = document(path, "--baseline", str(old), "--fail-on", "never")
    assert code == 0
    changes = {(c["layer"], c["what"]): (c["old"], c["new"]) for c in doc["files"][0]["changes"]}  # type: ignore[index]
    # c1: 3×3×8×8 + 8 = 584 params → 5×5×8×8 + 8 = 1608; RF 3 → 5.
    assert changes[("c1", "rf")] == ("3×3", "5×5")
    assert changes[("c1", "params")] == ("584", "1608")
    # up (deconv k3 s2 p0): output o reads input units i = (o − t)/2 for taps t in {0, 1, 2}: an even o
    # reads 2 adjacent units of c1 (jump 1), so its RF is c1's + 1: 3 → 4 and 5 → 6.
    assert changes[("up", "rf")] == ("4×4", "6×6")
    assert changes[("act", "added")] == (None, "relu, output 4×33×33")
    assert changes[(None, "params")] == ("876", "1900")
    assert ("up", "params") not in changes
    assert ("up", "output") not in changes
    code, out, _ = invoke(path, "--baseline", str(old), "--fail-on", "never")
    assert f"{path}:3:5: change [c1] rf 3×3 → 5×5" in out.splitlines()
    assert invoke(path, "--baseline", str(old), "--fail-on", "never", "--fail-on-change")[0] == 3
    # A check document is a baseline too: nothing changed against itself.
    (tmp_path / "check.json").write_text(json.dumps(doc), encoding="utf-8")
    code, doc = document(path, "--baseline", str(tmp_path / "check.json"), "--fail-on-change", "--fail-on", "never")
    assert (code, doc["files"][0]["changes"]) == (0, [])  # type: ignore[index]


def test_a_bad_baseline_is_invalid_input(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.json", '{"command": "run"}')
    code, _, err = invoke(str(CONFIGS / "vgg16.yaml"), "--baseline", bad)
    assert code == 1
    assert err.startswith(f"error: {bad}: option --baseline: is not a `convcalc rf --format json`")
    code, _, err = invoke(str(CONFIGS / "vgg16.yaml"), "--baseline", str(tmp_path / "missing.json"))
    assert (code, "no such file" in err) == (1, True)


# --------------------------------------------------------------------------- pre-commit


def test_the_pre_commit_hook_runs_check_on_yaml_files() -> None:
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    assert hook["id"] == "convcalc-check"
    assert hook["entry"] == "convcalc check"
    assert hook["language"] == "python"
    assert re.search(hook["files"], "nets/resnet.yaml")
    assert re.search(hook["files"], "a.yml")
    assert not re.search(hook["files"], "model.onnx")


def test_the_readme_contract_example_holds_for_vgg16() -> None:
    """The README's `expect:` example on VGG-16's layers plus an `up` layer (×64 nearest after pool5: jump
    32/64 = 1/2): every entry holds by the published values (pool5 212 / 32, conv5_3 196, 138,357,544 params)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### `convcalc check`", 1)[1].split("\n### ", 1)[0]
    block = section.split("**Contracts.**", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    layers = (CONFIGS / "vgg16.yaml").read_text(encoding="utf-8").split("\n# What `convcalc check` verifies", 1)[0]
    text = layers + "\n  - {op: upsample, name: up, from: pool5, scale: 64}\n" + block
    spec = parse_stack(text, "readme.yaml")
    assert len(spec.expect) == 8
    jsonschema = pytest.importorskip("jsonschema")
    from convcalc.format.schema import stack_schema

    assert list(jsonschema.Draft202012Validator(stack_schema()).iter_errors(yaml.safe_load(text))) == []
    from convcalc.analysis.contracts import check_stack

    results = check_stack(spec).contracts
    assert [r.check for r in results if r.ok] == [r.check for r in results]
    assert len(results) == 10


def _plain(spec: StackSpec) -> list[tuple[object, ...]]:
    """The contracts without where they were written."""
    expect = [dataclasses.replace(e, index=0, location=Location(), field_locations={}) for e in spec.expect]
    ignore = [(s.code, s.layer) for s in spec.ignore]
    return [tuple(expect), tuple(ignore)]


def test_expand_keeps_the_contracts() -> None:
    from convcalc.format.dump import dump_stack

    text = DECONV + (
        "expect:\n  - {layer: up, at: 8x9x9, rf: [{min: 2}, 4], jump: '1/2', shape: [4, null, 19]}\n"
        "  - {params: 30e6, macs: {max: 2G}, forbid: holes}\n  - {accepts: {min: 4, max: 40, step: 4}}\n"
        "ignore: [checkerboard, {code: holes, layer: up}]\n"
    )
    spec = parse_stack(text, "s.yaml")
    again = parse_stack(dump_stack(spec), "again.yaml")
    assert _plain(again) == _plain(spec)
    assert len(spec.expect) == 3
    assert len(spec.ignore) == 2


@given(
    n=st.integers(min_value=0, max_value=10**12),
    suffix=st.sampled_from([("", 1), ("K", 10**3), ("k", 10**3), ("M", 10**6), ("G", 10**9), ("T", 10**12)]),
    exponent=st.integers(min_value=0, max_value=12),
)
def test_counts_as_text_mean_their_decimal_value(n: int, suffix: tuple[str, int], exponent: int) -> None:
    """`n` with a decimal suffix, or in e-notation, is n · 10^k exactly; a fraction of a unit is refused."""
    from convcalc.format.contracts import count_of
    from convcalc.stack.values import scalar

    letter, scale = suffix
    assert count_of(scalar(f"{n}{letter}")) == n * scale
    assert count_of(scalar(f"{n}e{exponent}")) == n * 10**exponent
    assert count_of(scalar(f"{n:_}")) == n
    assert count_of(scalar(f"{n}.5")) is None  # half a parameter
    assert count_of(scalar(-n - 1)) is None
