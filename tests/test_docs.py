"""The README is the front door: keep what it says true."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import typer

from cli.errors import ExitCode
from cli.main import app
from convcalc.diagnostics import CODES
from convcalc.ops.registry import OPS as OP_FIELDS

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _strip(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def test_readme_example_output_is_the_golden_output() -> None:
    """Each `<!-- golden: path -->` marker is followed by a text block equal to that golden file."""
    blocks = re.findall(r"<!-- golden: (\S+) -->\n```text\n(.*?)```", README, flags=re.S)
    assert blocks
    for path, block in blocks:
        assert _strip(block) == _strip((ROOT / path).read_text(encoding="utf-8")), path


def test_readme_setup_commands_are_what_ci_runs() -> None:
    setup = README.split("## Set up", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```sh\n(.*?)\n```", setup, flags=re.S)
    assert commands == ["pip install . && convcalc rf configs/vgg16.yaml", "pip install '.[test]' && python -m pytest"]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert commands[1] in ci


def test_readme_library_example_prints_what_it_says() -> None:
    block = README.split("## Use as a library", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    code, expected = block.rsplit("  # ", 1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README", "exec"), {})
    assert out.getvalue().strip() == expected.strip()


def test_readme_lists_every_diagnostic_code_with_its_severity() -> None:
    for code, (severity, _) in CODES.items():
        assert re.search(rf"\| `{re.escape(code)}` \| {severity} \|", README), code


def test_readme_lists_every_exit_code() -> None:
    table = README.split("## Exit codes", 1)[1]
    for code in ExitCode:
        assert re.search(rf"^\| {int(code)} \|", table, flags=re.M), code


def test_readme_documents_every_op() -> None:
    table = README.split("## The stack format", 1)[1].split("\n## ", 1)[0]
    for op in OP_FIELDS:
        assert f"`{op}`" in table, op


def test_every_command_has_help_and_is_in_the_readme() -> None:
    group = typer.main.get_group(app)
    assert group.commands
    for name, command in group.commands.items():
        assert command.help, name
        assert f"`convcalc {name}" in README, name


def test_readme_line_counts_of_configs_are_true() -> None:
    """Claims such as "`configs/resnet50.yaml` is 37 lines" match the files."""
    claims = re.findall(r"`(configs/[\w.]+\.yaml)` is (\d+) lines", README)
    assert claims
    for path, count in claims:
        assert len((ROOT / path).read_text(encoding="utf-8").splitlines()) == int(count), path


def test_readme_states_the_bounds_on_mapping_receptive_fields() -> None:
    from convcalc.geometry.receptive import MAX_PERIOD, MAX_UNITS

    what = README.split("## What the numbers mean", 1)[1].split("\n## ", 1)[0]
    assert f"more than {MAX_PERIOD} units" in what
    assert f"at most {MAX_UNITS} units per axis" in what
    row = re.search(r"^\| `rf-unknown` \|.*$", README, flags=re.M)
    assert row is not None
    assert f"{MAX_PERIOD} units" in row.group(0)
    assert f"{MAX_UNITS} units" in row.group(0)


def test_every_op_has_a_row_in_the_readme_op_table() -> None:
    from convcalc.ops import registry

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("| op | fields |") :]
    table = table[: table.index("\n\n")]
    assert [op for op in registry.OPS if f"`{op}`" not in table] == []


def test_readme_states_the_bound_on_exact_supports_behind_merges() -> None:
    from convcalc.geometry.coverage import MAX_TERMS

    assert f"more than {MAX_TERMS} products per layer" in README
