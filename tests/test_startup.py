"""Start-up discipline: the arithmetic commands never import numpy; the library never imports the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import pytest
import typer  # the annotations of the test app below are evaluated in this module

# The op families by name (the registry module imports none of them).
from convcalc.ops.registry import FAMILY_NAMES

ROOT = Path(__file__).parent.parent


#: Appended to a snippet: print the modules it loaded (listed before json, which prints them, is imported).
_PRINT_MODULES = "\nimport sys\nloaded = sorted(sys.modules)\nimport json\nprint(json.dumps(loaded))"


def modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + _PRINT_MODULES],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    ).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def run_cli_modules(*args: str) -> set[str]:
    """Modules loaded by a whole `convcalc ...` run (exit code ignored: only imports matter)."""
    code = (
        "import sys\n"
        f"sys.argv = ['convcalc', *{list(args)!r}]\n"
        "from cli.main import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
    )
    return modules_after(code)


@pytest.mark.parametrize(
    "args",
    [
        ["rf", "configs/vgg16.yaml"],
        ["rf", "configs/seed_deconv.yaml", "--format", "json"],
        ["check", "configs/vgg16.yaml", "configs/seed_deconv.yaml", "--format", "json"],
        ["--help"],
    ],
)
def test_arithmetic_commands_do_not_import_numpy(args: list[str]) -> None:
    loaded = run_cli_modules(*args)
    assert "numpy" not in loaded
    assert "torch" not in loaded
    assert "onnx" not in loaded
    # The importers package itself (which dispatches model files) is a few lines; its readers are not loaded.
    assert not {m for m in loaded if m.startswith("convcalc.importers.")}


def test_help_imports_no_yaml() -> None:
    assert "yaml" not in run_cli_modules("--help")


def test_library_imports_no_cli_toolkit() -> None:
    loaded = modules_after(
        "import convcalc, convcalc.analysis.engine, convcalc.format.loader, convcalc.geometry.receptive"
    )
    assert not {"typer", "rich", "click", "numpy"} & loaded


def test_python_dash_m_convcalc_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "convcalc", "rf", "configs/seed_two_layer.yaml", "-f", "json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["layers"][-1]["field"][0]["rf"] == 5


@pytest.mark.parametrize(
    ("model", "package", "command"),
    [("m.onnx", "onnx", "pip install 'convcalc[onnx]'"), ("m.pt2", "torch", "pip install torch")],
)
def test_a_missing_extra_prints_the_install_command(tmp_path: Path, model: str, package: str, command: str) -> None:
    (tmp_path / model).write_bytes(b"not a model")
    code = (
        "import sys\n"
        f"sys.modules[{package!r}] = None  # as if it were not installed\n"
        f"sys.argv = ['convcalc', 'import', {str(tmp_path / model)!r}]\n"
        "from cli.main import main\n"
        "main()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)
    assert result.returncode == 1
    assert command in result.stderr
    assert "Traceback" not in result.stderr


# -- option values coerced without pydantic (cli.adapter.PlainCoercion) ---------------------------------
#: Values a shell can pass or Typer can default to, including the ones only pydantic can judge.
COERCION_CATALOGUE: list[object] = [
    None,
    True,
    False,
    0,
    1,
    -2,
    "3",
    "-1",
    "0",
    "-0",
    "007",
    "+3",
    " 3",
    "3 ",
    "3.0",
    "1e3",
    "1_000",
    "\u0663",  # ARABIC-INDIC DIGIT THREE: int() reads it, the plain path must not
    "9" * 18,
    "9" * 19,
    "9" * 5000,
    "abc",
    "",
    "true",
    "0x10",
    "JSON",
    "json",
    "Table",
    "never",
    "ALWAYS",
    "warning ",
    b"3",
]


def _outcome(coerce: Any, value: object, param: Any, ctx: Any) -> tuple[str, object]:
    """What `coerce` makes of `value`: its type name and the value, or ("error", Typer's message)."""
    from typer._click.exceptions import BadParameter

    try:
        result = coerce.coerce(value, param=param, ctx=ctx)
    except BadParameter as exc:
        return ("error", exc.format_message())
    return (type(result).__name__, result)


def _choices(annotation: object) -> list[object]:
    """An enum's members, values and names (what a user or a default may give); nothing for other types."""
    if not (isinstance(annotation, type) and issubclass(annotation, Enum)):
        return []
    members = list(annotation)
    return [*members, *(m.value for m in members), *(m.name for m in members)]


def test_plain_coercion_agrees_with_typers_own_for_every_parameter() -> None:
    """Every parameter of every command gets exactly what Typer's own (pydantic) coercion gives, value
    and type, or the same error message, on the whole catalogue."""
    import typer.main
    from typer._click import Context
    from typer._coercion import build_runtime_param

    from cli.adapter import plain_coercion
    from cli.main import app

    group = typer.main.get_command(app)
    commands = [group, *group.commands.values()]  # type: ignore[attr-defined]
    checked = 0
    for command in commands:
        ctx = Context(command)
        params: list[Any] = [*command.params, command.get_help_option(ctx)]
        for param in params:
            if param is None:
                continue
            ours = plain_coercion(param)
            theirs = build_runtime_param(param.type_descriptor)
            for value in [*COERCION_CATALOGUE, param.default, *_choices(param.type_descriptor.annotation)]:
                param._runtime_param = None  # a fallback may have cached Typer's
                got = _outcome(ours, value, param, ctx)
                assert got == _outcome(theirs, value, param, ctx), (command.name, param.name, value)
                checked += 1
    assert checked > 1000  # every option of every command was compared


def test_a_bad_option_value_still_gets_typers_message() -> None:
    from typer.testing import CliRunner

    from cli.main import app

    result = CliRunner().invoke(app, ["conv", "--k", "3", "--groups", "two"])
    assert result.exit_code == 2
    assert "--groups" in result.output
    assert "'two'" in result.output


# -- what `convcalc deconv --k 3 --s 2` does not load -----------------------------------------------------
#: Modules a calculator command has no use for: pydantic (Typer's coercion, cli.adapter.PlainCoercion skips
#: it), the file formats, the other op families, the JSON/CSV documents of other commands, the solver and the
#: derivation (only with --target / --explain), Rich, and json/csv (only for those formats).
NOT_FOR_DECONV = [
    "pydantic",
    "json",
    "csv",
    "typer._adapters",
    "typer.rich_utils",
    "rich",
    "numpy",
    "yaml",
    "convcalc.format.loader",
    "convcalc.format.nodes",
    "convcalc.format.expansion",
    "convcalc.importers",
    "convcalc.documents.report",
    "convcalc.analysis.solver",
    "convcalc.analysis.explain",
    "convcalc.analysis.locate",
    "convcalc.execution",
    *(f"convcalc.ops.{family}" for family in FAMILY_NAMES if family != "convolution"),
]


def test_deconv_loads_only_what_it_needs() -> None:
    loaded = run_cli_modules("deconv", "--k", "3", "--s", "2")
    assert "convcalc.ops.convolution" in loaded  # the run did reach the calculator
    assert not {m for m in loaded for banned in NOT_FOR_DECONV if m == banned or m.startswith(banned + ".")}


def test_pool_loads_its_family_only() -> None:
    loaded = run_cli_modules("pool", "--k", "3", "--s", "2", "--i", "112")
    assert "convcalc.ops.pooling" in loaded
    assert "pydantic" not in loaded
    assert not {m for m in loaded if m.startswith("convcalc.ops.") and m.rsplit(".", 1)[1] in ("resampling", "merges")}


def test_invoked_app_builds_the_named_command_only() -> None:
    import typer.main

    from cli.main import app, invoked_app

    every = set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    assert {"rf", "conv", "deconv", "pool", "locate"} <= every
    for name in every:
        assert set(typer.main.get_command(invoked_app([name, "--help"])).commands) == {name}  # type: ignore[attr-defined]
    for args in ([], ["--help"], ["--version"], ["deconvv", "--k", "3"]):
        assert invoked_app(args) is app


def test_parameters_convcalc_does_not_coerce_get_typers_coercion() -> None:
    """A float, a Path, a list and a bounded int (types no convcalc command has yet) behave as in plain
    Typer: same output and exit code through convcalc's group as through Typer's own."""
    from typer.testing import CliRunner

    from cli.adapter import Group

    def make(cls: Any) -> typer.Typer:
        app = typer.Typer(cls=cls, add_completion=False)

        @app.callback()
        def root() -> None:
            """Root."""

        @app.command()
        def cmd(
            ratio: float | None = None,
            where: Path | None = None,
            sizes: list[int] | None = None,
            count: Annotated[int, typer.Option(min=1)] = 1,
        ) -> None:
            print(repr(ratio), repr(where), repr(sizes), repr(count))

        return app

    runs = [
        [],
        ["--ratio", "0.5"],
        ["--ratio", "x"],
        ["--where", "a/b"],
        ["--sizes", "3", "--sizes", "4"],
        ["--sizes", "x"],
        ["--count", "0"],
        ["--count", "7"],
    ]
    for args in runs:
        ours = CliRunner().invoke(make(Group), ["cmd", *args])
        theirs = CliRunner().invoke(make(typer.core.TyperGroup), ["cmd", *args])
        assert (ours.exit_code, ours.stdout) == (theirs.exit_code, theirs.stdout), args
