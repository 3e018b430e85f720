"""`python -m convcalc`: the same command line as the `convcalc` script."""

from __future__ import annotations


def _run() -> None:
    # The one sanctioned library-to-CLI edge: a leaf module nothing imports.
    from cli.main import main

    main()


if __name__ == "__main__":
    _run()
