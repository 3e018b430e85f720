"""`python -m cli`: the same command line as the `convcalc` script."""

from __future__ import annotations

from cli.main import main

main()
