"""The layering of the code base (pyproject.toml, [tool.importlinter]) holds, and covers every package."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _config() -> dict[str, object]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)["tool"]["importlinter"]  # type: ignore[no-any-return]


def test_import_contracts_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlinter.cli import lint_imports

    monkeypatch.chdir(ROOT)
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True) == 0


def test_every_library_module_is_in_a_layer() -> None:
    """A new package or top-level module must be placed in the layers, or the contract would not see it."""
    contracts = _config()["contracts"]
    assert isinstance(contracts, list)
    layers = next(c for c in contracts if c["type"] == "layers")["layers"]
    placed = {name.strip() for layer in layers for name in layer.split("|")}
    package = ROOT / "convcalc"
    modules = {
        f"convcalc.{p.stem if p.is_file() else p.name}"
        for p in package.iterdir()
        if (p.is_dir() and (p / "__init__.py").exists()) or (p.suffix == ".py" and not p.name.startswith("__"))
    }
    assert modules - placed == set()
