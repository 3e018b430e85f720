"""convcalc run: execute a stack with the NumPy reference ops."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the convcalc app."""
