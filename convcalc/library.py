"""The bundled architecture library: stack files shipped with convcalc, found by name.

The files live in the repository's top-level `configs/` (the source of truth); a wheel carries
them as `convcalc/configs/` (hatch force-include), so lookup works installed or from a checkout.
A bundled name is the file's stem: `resnet50` is `configs/resnet50.yaml`.
"""

from __future__ import annotations

from pathlib import Path

from convcalc.errors import FileProblemError, Problem

__all__ = ["bundled_config", "config_dir", "find_config", "list_configs"]

_SUFFIX = ".yaml"


def config_dir() -> Path | None:
    """The directory holding the bundled stack files, or None if this install has none."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "configs", here.parent / "configs"):
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


def find_config(name: str) -> Path:
    """The bundled file called `name`; FileProblemError naming the bundled ones if there is none."""
    path = bundled_config(name)
    if path is None:
        names = ", ".join(p.stem for p in list_configs()) or "none"
        raise FileProblemError(Problem(f"no bundled stack called '{name}'. Bundled: {names}"))
    return path
