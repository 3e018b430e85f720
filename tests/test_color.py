"""Colour: on a terminal unless NO_COLOR is set, off elsewhere unless FORCE_COLOR is set, and --color decides
when given. Colour means real colours (a warning is yellow), not only bold."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli.terminal import ColorMode, color_wanted
from tests.pty_run import in_terminal

ROOT = Path(__file__).parent.parent
YELLOW = "\x1b[33m"
STACK = "configs/seed_deconv.yaml"  # one warning (checkerboard)

posix = pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


@pytest.mark.parametrize(
    ("mode", "tty", "env", "expected"),
    [
        (ColorMode.AUTO, True, {}, True),
        (ColorMode.AUTO, False, {}, False),
        (ColorMode.AUTO, True, {"NO_COLOR": "1"}, False),
        (ColorMode.AUTO, False, {"FORCE_COLOR": "1"}, True),
        (ColorMode.AUTO, True, {"NO_COLOR": "1", "FORCE_COLOR": "1"}, False),
        (ColorMode.AUTO, True, {"NO_COLOR": ""}, True),  # an empty NO_COLOR is unset (no-color.org)
        (ColorMode.ALWAYS, False, {"NO_COLOR": "1"}, True),
        (ColorMode.NEVER, True, {"FORCE_COLOR": "1"}, False),
    ],
)
def test_colour_rules(mode: ColorMode, tty: bool, env: dict[str, str], expected: bool) -> None:
    assert color_wanted(mode, _Stream(tty), env) is expected


@posix
def test_terminal_gets_colour() -> None:
    assert YELLOW in in_terminal(["rf", STACK])


@posix
def test_no_color_on_a_terminal_means_no_escape_codes() -> None:
    assert "\x1b[" not in in_terminal(["rf", STACK], env={"NO_COLOR": "1"})


@posix
def test_color_never_on_a_terminal() -> None:
    assert "\x1b[" not in in_terminal(["rf", STACK, "--color", "never"])


def _piped(*args: str, env: dict[str, str] | None = None) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    result = subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=ROOT,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout


def test_force_color_gives_colours_off_a_terminal() -> None:
    out = _piped("rf", STACK, env={"FORCE_COLOR": "1"})
    assert YELLOW in out


def test_pipes_get_no_colour_by_default_and_always_forces_it() -> None:
    assert "\x1b[" not in _piped("rf", STACK)
    assert YELLOW in _piped("rf", STACK, "--color", "always")
    assert YELLOW in _piped("deconv", "--k", "3", "--s", "2", "--color", "always")


def test_json_is_never_coloured() -> None:
    assert "\x1b[" not in _piped("rf", STACK, "--format", "json", env={"FORCE_COLOR": "1"})
