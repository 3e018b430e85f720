"""Source locations on diagnostics, and the CI formats: GitHub workflow commands, SARIF 2.1.0, JUnit XML.

Independent checks: a diagnostic's line and column are read back from the stack file's text (the layer's
op and name must be written there); SARIF is validated against the official OASIS schema
(tests/data/sarif); JUnit is parsed with xml.etree; annotations are parsed back by the GitHub runner's
rules (actions/runner ActionCommand.cs: properties split at ',' and the first '=', then unescaped).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from cli.main import app
from convcalc.analysis.engine import analyze
from convcalc.diagnostics import CODES, Diagnostic
from convcalc.documents.findings import Finding, findings_of, github_annotations, junit_xml, sarif_log
from convcalc.format.loader import load_stack, parse_stack
from convcalc.ops.registry import ALIASES

ROOT = Path(__file__).parent.parent
CONFIGS = ROOT / "configs"
SCHEMA = Path(__file__).parent / "data" / "sarif" / "sarif-schema-2.1.0.json"
runner = CliRunner()

#: Bundled stacks whose diagnostics include layers expanded from blocks (checked below to stay so).
BLOCK_CONFIGS = ["resnet50", "resnet18", "deeplabv3_resnet50", "googlenet", "mobilenet_v2", "dcgan_generator"]


def invoke(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), input=input, env={"COLUMNS": "160"}, prog_name="convcalc")
    return result.exit_code, result.stdout, result.stderr


def _diagnostics(name: str) -> list[Diagnostic]:
    return list(analyze(load_stack(str(CONFIGS / f"{name}.yaml"))).diagnostics)


# -- locations ------------------------------------------------------------------------------------
def _written_at(lines: list[str], line: int, column: int) -> str:
    """The text of the YAML item starting at (line, column), 1-based: up to the next line indented no deeper
    than its start (a flow mapping on one line, or a block mapping over several)."""
    first = lines[line - 1][column - 1 :]
    indent = column - 1
    more = []
    for text in lines[line:]:
        stripped = text.lstrip()
        if stripped and len(text) - len(stripped) <= indent:
            break
        more.append(text)
    return "\n".join([first, *more])


def _op_written(text: str, op: str) -> bool:
    spellings = [op, *(alias for alias, canonical in ALIASES.items() if canonical == op)]
    return any(re.search(rf"\bop:\s*['\"]?{re.escape(s)}\b", text) for s in spellings)


@pytest.mark.parametrize("name", sorted(p.stem for p in CONFIGS.glob("*.yaml")))
def test_every_diagnostic_points_at_its_layer_as_written(name: str) -> None:
    path = CONFIGS / f"{name}.yaml"
    lines = path.read_text(encoding="utf-8").splitlines()
    report = analyze(load_stack(str(path)))
    for row in report.layers:
        for d in row.diagnostics:
            assert d.location is not None, d
            assert d.location.file == str(path), d
            assert d.location.line is not None
            assert d.location.column is not None
            text = _written_at(lines, d.location.line, d.location.column)
            assert _op_written(text, row.op), (d, text)
            # The layer's own name, without its instance prefix, where the file writes a name.
            local = d.layer if d.instance is None else d.layer.removeprefix(d.instance + ".")
            local = local.split(".")[0] if row.op in ("split", "chunk") else local
            if "name:" in text:
                assert re.search(rf"\bname:\s*['\"]?{re.escape(local)}['\"]?\s*[,}}\n]", text + "\n"), (d, text)
            if d.instance is None:
                assert d.call is None
            else:
                assert d.layer.startswith(d.instance + ".")
                assert d.call is not None
                assert d.call.line is not None
                assert d.call.column is not None
                use = _written_at(lines, d.call.line, d.call.column)
                outer = d.instance.split(".")[0]
                assert "block:" in use, (d, use)
                assert re.search(rf"\bname:\s*['\"]?{re.escape(outer)}\b", use) or outer[-1].isdigit(), (d, use)


@pytest.mark.parametrize("name", BLOCK_CONFIGS)
def test_block_configs_have_diagnostics_inside_blocks(name: str) -> None:
    """The test above checks instances and uses only where there are some: these configs have them."""
    assert any(d.instance is not None for d in _diagnostics(name))


def test_resnet50_instance_and_lines_by_hand() -> None:
    """layer3.4.conv2 is the bottleneck's conv2 (line 15 of resnet50.yaml), instance layer3.4, whose block
    use `layer3` is on line 33 — read off the file by hand."""
    found = [d for d in _diagnostics("resnet50") if d.layer == "layer3.4.conv2"]
    assert [d.code for d in found] == ["rf-exceeds-input"]
    d = found[0]
    assert d.location is not None
    assert (d.location.line, d.location.column) == (15, 9)
    assert d.instance == "layer3.4"
    assert d.call is not None
    assert (d.call.line, d.call.column) == (33, 5)


def test_an_imported_stack_has_no_location() -> None:
    from convcalc.stack.spec import Location

    spec = parse_stack(
        "input: [1, 4, 4]\nlayers:\n  - {op: deconv, name: up, out: 1, kernel: 3, stride: 2}\n", "x.yaml"
    )
    layer = spec.layers[0]
    moved = type(spec)(spec.input, (type(layer)(**{**layer.__dict__, "location": Location("m.onnx node 'up'")}),))
    (d,) = analyze(moved).diagnostics
    assert d.code == "checkerboard"
    assert d.location is None
    assert d.instance is None


def test_table_json_and_markdown_show_the_location() -> None:
    path = str(CONFIGS / "resnet50.yaml")
    _, out, _ = invoke("rf", path)
    assert f"[layer3.4.conv2] {path}:15:9 (in layer3.4, used at line 33) the receptive field" in out
    _, out, _ = invoke("rf", path, "--format", "markdown")
    assert f"[layer3.4.conv2] {path}:15:9 (in layer3.4, used at line 33)" in out
    _, out, _ = invoke("rf", path, "--format", "json")
    (d,) = [d for d in json.loads(out)["diagnostics"] if d["layer"] == "layer3.4.conv2"]
    assert d["location"] == {"file": path, "line": 15, "column": 9}
    assert d["instance"] == "layer3.4"
    assert d["call"] == {"file": path, "line": 33, "column": 5}
    _, out, _ = invoke("rf", str(CONFIGS / "seed_deconv.yaml"), "--format", "json")
    (d,) = json.loads(out)["diagnostics"]
    assert d["location"]["line"] == 7
    assert d["instance"] is None
    assert d["call"] is None


# -- GitHub workflow commands ---------------------------------------------------------------------
_COMMAND = re.compile(r"::(?P<command>[a-z]+)(?: (?P<props>[^:]*))?::(?P<data>.*)")


def _unescape_data(text: str) -> str:
    return text.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")


def _unescape_property(text: str) -> str:
    return text.replace("%0D", "\r").replace("%0A", "\n").replace("%3A", ":").replace("%2C", ",").replace("%25", "%")


def _parse_annotations(text: str) -> list[tuple[str, dict[str, str], str]]:
    """The runner's reading of workflow commands, one per line: command, properties, message."""
    out = []
    for line in text.splitlines():
        match = _COMMAND.fullmatch(line)
        assert match is not None, line
        props = {}
        for pair in (match["props"] or "").split(","):
            if pair:
                key, _, value = pair.partition("=")
                props[key] = _unescape_property(value)
        out.append((match["command"], props, _unescape_data(match["data"])))
    return out


_nasty = st.text(alphabet=st.sampled_from(list("ab %:,=\r\n\t0AD%25é")), min_size=1, max_size=40)


@given(message=_nasty, file=_nasty, line=st.integers(1, 10**6), column=st.integers(1, 500))
def test_github_annotations_round_trip(message: str, file: str, line: int, column: int) -> None:
    f = Finding("checkerboard", "warning", message, file, line, column)
    ((command, props, data),) = _parse_annotations(github_annotations([f]))
    assert command == "warning"
    assert props == {"file": file, "line": str(line), "col": str(column), "title": "convcalc checkerboard"}
    assert data == message
    assert github_annotations([f]).count("\n") == 1  # one command per line whatever the message holds


def test_github_levels_suppression_and_no_file() -> None:
    found = [
        Finding("holes", "error", "e", "a.yaml", 3, 5, "up"),
        Finding("rf-unknown", "note", "n", None, None, None, "c"),
        Finding("checkerboard", "warning", "s", "a.yaml", 4, 5, "up2", suppressed=True),
        Finding("checkerboard", "warning", "w", "a.yaml", 4, 5, "x.y", instance="x", call_line=9),
    ]
    parsed = _parse_annotations(github_annotations(found))
    assert [c for c, _, _ in parsed] == ["error", "notice", "warning"]
    assert parsed[1][1] == {"title": "convcalc rf-unknown"}
    assert parsed[0][2] == "[up] e"
    assert parsed[2][2] == "[x.y] (in x, used at line 9) w"
    assert github_annotations([]) == ""


def test_rf_format_github() -> None:
    path = str(CONFIGS / "seed_deconv.yaml")
    code, out, err = invoke("rf", path, "--format", "github")
    assert code == 0
    assert err == ""
    ((command, props, data),) = _parse_annotations(out)
    assert (command, props["file"], props["line"], props["col"]) == ("warning", path, "7", "5")
    assert data.startswith("[up] uneven overlap")


# -- SARIF ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sarif_validator() -> object:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema)


def _errors(validator: object, doc: object) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["seed_deconv", "resnet50", "deeplabv3_aspp", "seed_two_layer"])
def test_rf_sarif_is_valid_sarif(name: str, sarif_validator: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    path = f"configs/{name}.yaml"  # as a CI job names it: relative to the repository, so the uri is too
    code, out, err = invoke("rf", path, "--format", "sarif")
    assert code == 0
    assert err == ""
    doc = json.loads(out)
    assert _errors(sarif_validator, doc) == []
    (run,) = doc["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "convcalc"
    assert driver["version"]
    assert driver["informationUri"].startswith("https://")
    rules = [r["id"] for r in driver["rules"]]
    diagnostics = _diagnostics(name)
    assert len(run["results"]) == len(diagnostics) > 0 or name == "seed_two_layer"
    assert len(run["results"]) == len(diagnostics)
    for result, d in zip(run["results"], diagnostics, strict=True):
        assert rules[result["ruleIndex"]] == result["ruleId"] == d.code
        assert result["level"] == {"info": "note", "warning": "warning", "error": "error"}[d.severity]
        (location,) = result["locations"]
        physical = location["physicalLocation"]
        assert physical["artifactLocation"]["uri"] == path
        assert d.location is not None
        assert physical["region"] == {"startLine": d.location.line, "startColumn": d.location.column}
        assert d.message in result["message"]["text"]


def test_sarif_rules_suppressions_and_edge_cases(sarif_validator: object) -> None:
    found = [
        Finding("gridding", "warning", "holes", "dir with space/net.yaml", 2, 3, "a", suppressed=True),
        Finding("expect.rf", "error", "rf 5 < 7", "b.yaml", 9, 1),
        Finding("rf-unknown", "note", "no file"),
        Finding("holes", "error", "no line", "/abs/m.onnx"),
    ]
    doc = sarif_log(found, "1.2.3", {"expect.rf": "the receptive field a stack's expect: asks for"})
    assert _errors(sarif_validator, doc) == []
    (run,) = doc["runs"]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    assert set(CODES) <= set(rules)
    assert rules["checkerboard"]["shortDescription"]["text"] == CODES["checkerboard"][1]
    assert rules["expect.rf"]["shortDescription"]["text"].startswith("the receptive field")
    first, contract, nofile, noline = run["results"]
    assert first["suppressions"][0]["kind"] == "external"
    assert first["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "dir%20with%20space/net.yaml"
    assert "suppressions" not in contract
    assert contract["ruleId"] == "expect.rf"
    assert "locations" not in nofile
    assert noline["locations"][0]["physicalLocation"] == {"artifactLocation": {"uri": "file:///abs/m.onnx"}}
    assert _errors(sarif_validator, sarif_log([], "0")) == []


def test_sarif_schema_catches_a_broken_log(sarif_validator: object) -> None:
    """The validator is not vacuous: a result without a message is refused."""
    doc = sarif_log([Finding("holes", "error", "x", "a.yaml", 1, 1)], "0")
    del doc["runs"][0]["results"][0]["message"]
    assert _errors(sarif_validator, doc)


# -- JUnit ----------------------------------------------------------------------------------------
def _suites(text: str) -> ElementTree.Element:
    root = ElementTree.fromstring(text)
    assert root.tag == "testsuites"
    return root


def test_junit_counts() -> None:
    found = [
        Finding("checkerboard", "warning", "w1", "a.yaml", 3, 5, "up"),
        Finding("checkerboard", "warning", "w2", "a.yaml", 4, 5, "up2"),
        Finding("holes", "error", "e", "a.yaml", 4, 5, "up2"),
        Finding("rf-unknown", "note", "n", "a.yaml", 1, 3, "c"),
        Finding("gridding", "warning", "g", "b.yaml", 2, 3, "d", suppressed=True),
    ]
    files = ["a.yaml", "b.yaml", "clean.yaml"]
    # Threshold warning: up (warning), up2 checkerboard (warning) and up2 holes (error) fail; c (note) passes;
    # b's only case is suppressed (skipped); clean.yaml has one passing case.
    root = _suites(junit_xml(found, files, "warning"))
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert list(suites) == files
    assert [(s.get("tests"), s.get("failures"), s.get("skipped")) for s in suites.values()] == [
        ("4", "3", "0"),
        ("1", "0", "1"),
        ("1", "0", "0"),
    ]
    assert (root.get("tests"), root.get("failures"), root.get("skipped"), root.get("errors")) == ("6", "3", "1", "0")
    names = [c.get("name") for c in suites["a.yaml"].findall("testcase")]
    assert names == ["up: checkerboard", "up2: checkerboard", "up2: holes", "c: rf-unknown"]
    assert len(suites["a.yaml"].findall("testcase/failure")) == 3
    assert suites["a.yaml"].findall("testcase")[3].find("system-out") is not None
    assert suites["b.yaml"].find("testcase/skipped") is not None
    assert suites["clean.yaml"].find("testcase").get("name") == "analysis"  # type: ignore[union-attr]
    # Threshold error: only the holes case fails; never: none.
    assert _suites(junit_xml(found, files, "error")).get("failures") == "1"
    assert _suites(junit_xml(found, files, None)).get("failures") == "0"


def test_junit_escapes_markup() -> None:
    found = [Finding("holes", "error", 'a < b & "c" ]]> d', "x&y.yaml", 1, 1, "<l>")]
    root = _suites(junit_xml(found, ["x&y.yaml"]))
    failure = root.find("testsuite/testcase/failure")
    assert failure is not None
    assert failure.get("message") == 'a < b & "c" ]]> d'
    assert root.find("testsuite").get("name") == "x&y.yaml"  # type: ignore[union-attr]


def test_rf_format_junit_follows_fail_on() -> None:
    path = str(CONFIGS / "seed_deconv.yaml")
    code, out, _ = invoke("rf", path, "--format", "junit", "--fail-on", "warning")
    assert code == 3  # the checkerboard is a warning
    root = _suites(out)
    assert (root.get("tests"), root.get("failures")) == ("1", "1")
    case = root.find("testsuite/testcase")
    assert case is not None
    assert case.get("name") == "up: checkerboard"
    code, out, _ = invoke("rf", path, "--format", "junit")
    assert code == 0
    assert _suites(out).get("failures") == "0"


def test_findings_of_maps_severity_and_suppression() -> None:
    report = analyze(load_stack(str(CONFIGS / "resnet50.yaml")))
    found = findings_of(report, "r.yaml", suppressed=lambda d: d.code == "unused-input")
    assert [f.rule for f in found] == [d.code for d in report.diagnostics]
    assert {f.level for f in found} == {"note"}  # every resnet50 diagnostic is an info
    assert all(f.file == "r.yaml" for f in found)
    assert [f.suppressed for f in found] == [d.code == "unused-input" for d in report.diagnostics]
    (f,) = [f for f in found if f.layer == "layer3.4.conv2"]
    assert (f.line, f.column, f.instance, f.call_line) == (15, 9, "layer3.4", 33)


# -- CLI conventions ------------------------------------------------------------------------------
def test_quiet() -> None:
    path = str(CONFIGS / "seed_deconv.yaml")
    assert invoke("rf", path, "-q") == (0, "", "")
    code, out, err = invoke("rf", path, "--quiet", "--fail-on", "warning")
    assert (code, out) == (3, "")
    assert err.startswith(f"warning checkerboard [up] {path}:7:5 uneven overlap")
    code, out, err = invoke("rf", str(CONFIGS / "nope.yaml"), "-q")
    assert code == 1
    assert out == ""
    assert err.startswith("error:")


def test_unit_refuses_the_ci_formats() -> None:
    code, out, err = invoke("rf", str(CONFIGS / "seed_deconv.yaml"), "--unit", "0,0", "--format", "sarif")
    assert code == 1
    assert out == ""
    assert "--format table or json" in err


def test_traceback_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    import convcalc.analysis.engine

    def broken(spec: object, **options: object) -> object:
        raise RuntimeError("boom")

    monkeypatch.setattr(convcalc.analysis.engine, "analyze", broken)
    # Recorded by monkeypatch, so the variable --traceback sets in this process is removed afterwards.
    monkeypatch.setenv("CONVCALC_TRACEBACK", "")
    path = str(CONFIGS / "seed_deconv.yaml")
    code, out, err = invoke("rf", path)
    assert code == 70
    assert out == ""
    assert "internal error: RuntimeError: boom" in err
    result = runner.invoke(app, ["--traceback", "rf", path], prog_name="convcalc")
    assert isinstance(result.exception, RuntimeError)
    assert str(result.exception) == "boom"
    assert "CONVCALC_TRACEBACK=1" in invoke("--help")[1]


def test_shell_completion() -> None:
    # The console script as a shell runs it (see tests/test_cli_usage.py).
    done = subprocess.run(
        [sys.executable, "-m", "cli", "--show-completion", "bash"],
        capture_output=True,
        text=True,
        timeout=60,
        # Typer's switch for naming the shell instead of detecting it from the parent processes.
        env={**os.environ, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"},
    )
    assert done.returncode == 0, done.stderr
    assert "complete" in done.stdout
    assert "_CONVCALC_COMPLETE=complete_bash" in done.stdout
    # What the installed script asks: the values of rf's --format after `convcalc rf x --format `.
    env = {"_CONVCALC_COMPLETE": "complete_bash", "COMP_WORDS": "convcalc rf x --format ", "COMP_CWORD": "4"}
    result = runner.invoke(app, [], env=env, prog_name="convcalc")
    assert result.stdout.split() == ["table", "json", "csv", "markdown", "github", "sarif", "junit"]


# -- `check` in the CI formats ------------------------------------------------------------------------
_BROKEN = """\
input: [1, 8, 8]
layers:
  - {op: deconv, name: up, out: 4, kernel: 3, stride: 2}
  - {op: conv, name: skip, kernel: 2, stride: 3}
expect:
  - {layer: up, rf: {min: 100}}
ignore: [unused-input]
"""


def test_check_formats_report_contracts_and_diagnostics_where_written(
    tmp_path: Path, sarif_validator: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("net.yaml").write_text(_BROKEN, encoding="utf-8")
    Path("ok.yaml").write_text("input: [1, 8, 8]\nlayers:\n  - {op: conv, name: c, kernel: 3}\n", encoding="utf-8")
    lines = _BROKEN.splitlines()

    code, out, _ = invoke("check", "net.yaml", "ok.yaml", "--format", "github")
    assert code == 3
    parsed = {(c, p["title"]): (p, m) for c, p, m in _parse_annotations(out)}
    props, message = parsed[("error", "convcalc expect.rf")]
    assert "rf: {min: 100}" in lines[int(props["line"]) - 1]  # the expectation's own line
    assert "expected ≥ 100" in message
    props, _ = parsed[("warning", "convcalc checkerboard")]
    assert "name: up" in lines[int(props["line"]) - 1]
    assert props["file"] == "net.yaml"

    code, out, _ = invoke("check", "net.yaml", "ok.yaml", "--format", "sarif")
    assert code == 3
    log = json.loads(out)
    assert _errors(sarif_validator, log) == []
    results = log["runs"][0]["results"]
    by_rule = {r["ruleId"]: r for r in results}
    assert {"expect.rf", "checkerboard"} <= set(by_rule)
    assert "suppressions" in by_rule["unused-input"]  # listed, marked suppressed

    code, out, _ = invoke("check", "net.yaml", "ok.yaml", "--format", "junit")
    assert code == 3
    suites = {s.get("name"): s for s in _suites(out)}
    assert set(suites) == {"net.yaml", "ok.yaml"}
    assert suites["net.yaml"].get("failures") == "2"  # the broken contract and the checkerboard warning
    assert suites["ok.yaml"].get("failures") == "0"
    # a broken contract fails its case even when diagnostics never fail the run
    code, out, _ = invoke("check", "net.yaml", "--format", "junit", "--fail-on", "never")
    assert code == 3
    assert _suites(out)[0].get("failures") == "1"
