"""Start-up discipline: the arithmetic commands never import numpy; the library never imports the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
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
