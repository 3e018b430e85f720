"""The bundled architecture library: stack files shipped with convcalc, found by name.

The files live in the repository's top-level `configs/` (the source of truth); a wheel carries
them as `convcalc/configs/` (hatch force-include), so lookup works installed or from a checkout.
A bundled name is the file's stem: `resnet50` is `configs/resnet50.yaml`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from convcalc.errors import FileProblemError, Problem
from convcalc.stack.spec import InputSpec

__all__ = [
    "BUNDLED_PREFIX",
    "BundledStack",
    "bundled_config",
    "config_dir",
    "describe_bundled",
    "find_config",
    "list_configs",
    "resolve_bundled",
]

_SUFFIX = ".yaml"
#: How reports name a bundled stack (`bundled:resnet50`); accepted wherever a stack file is.
BUNDLED_PREFIX = "bundled:"


def config_dir() -> Path | None:
    """The directory holding the bundled stack files, or None if this install has none."""
    package = Path(__file__).resolve().parent.parent  # convcalc/
    for candidate in (package / "configs", package.parent / "configs"):
        if candidate.is_dir():
            return candidate
    return None


def list_configs() -> list[Path]:
    """Every bundled stack file, sorted by name."""
    directory = config_dir()
    if directory is None:
        return []
    return sorted(directory.glob(f"*{_SUFFIX}"), key=lambda p: p.stem)


def bundled_config(name: str) -> Path | None:
    """The bundled file called `name` (with or without `.yaml`), or None.

    >>> bundled_config("resnet50").name
    'resnet50.yaml'
    >>> bundled_config("no/such") is None
    True
    """
    stem = name.removesuffix(_SUFFIX)
    if not stem or "/" in stem or "\\" in stem or stem.startswith("."):
        return None
    for path in list_configs():
        if path.stem == stem:
            return path
    return None


def resolve_bundled(label: str) -> Path | None:
    """The file behind a report's `bundled:NAME` label (None for other labels).

    >>> resolve_bundled("bundled:vgg16").name, resolve_bundled("configs/vgg16.yaml")
    ('vgg16.yaml', None)
    """
    if not label.startswith(BUNDLED_PREFIX):
        return None
    return bundled_config(label.removeprefix(BUNDLED_PREFIX))


def find_config(name: str) -> Path:
    """The bundled file called `name`; FileProblemError naming the bundled ones if there is none."""
    path = bundled_config(name)
    if path is None:
        names = ", ".join(p.stem for p in list_configs()) or "none"
        raise FileProblemError(Problem(f"no bundled stack called '{name}'. Bundled: {names}"))
    return path


@dataclass(frozen=True)
class BundledStack:
    """One bundled architecture: its name, description, input and number of layers (blocks expanded)."""

    name: str
    description: str
    input: InputSpec
    layers: int


def describe_bundled() -> list[BundledStack]:
    """Every bundled stack, loaded and validated, sorted by name."""
    from convcalc.format.loader import load_stack  # the loader imports this module

    found = []
    for path in list_configs():
        spec = load_stack(path)
        found.append(BundledStack(path.stem, spec.description or spec.name or "", spec.input, len(spec.layers)))
    return found
