"""Where rendered text goes: the stream, its width and whether it gets colour, decided once per command.

Colour follows `--color auto|always|never`; with `auto` it is on for a terminal, off otherwise, and
the NO_COLOR (off) and FORCE_COLOR (on) conventions apply, NO_COLOR first. A terminal's width comes
from the terminal itself (or COLUMNS); output that is not a terminal has no width limit, so a file
or a pipe always gets every column whole. Box drawing (table frames and rules) is for a terminal
only, whatever the colour flags say: a file or a pipe gets plain columns that a script can split,
even when FORCE_COLOR or `--color always` colour it (a CI log wants colour, not a frame to parse).
"""

from __future__ import annotations

import os
import shutil
import sys
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TextIO

# Re-exported: the one escaping of names lives in convcalc.notation.
from convcalc.notation import printable as printable


class ColorMode(StrEnum):
    AUTO = "auto"
    ALWAYS = "always"
    NEVER = "never"


#: SGR parameters of the few styles convcalc uses; "on NNN" / "fg NNN" are 256-colour backgrounds/foregrounds.
_SGR = {
    "bold": "1",
    "dim": "2",
    "black": "30",
    "red": "31",
    "green": "32",
    "yellow": "33",
    "cyan": "36",
    "white": "37",
}


def color_wanted(mode: ColorMode, stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """Whether to colour output to `stream` (see the module docstring for the rules)."""
    env = os.environ if environ is None else environ
    if mode is ColorMode.ALWAYS:
        return True
    if mode is ColorMode.NEVER:
        return False
    if env.get("NO_COLOR", ""):
        return False
    if env.get("FORCE_COLOR", ""):
        return True
    return _is_tty(stream)


def _is_tty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty())


def sgr(style: str) -> str:
    """The escape sequence that starts `style` ('bold red', 'black on 244', 'fg 250')."""
    codes: list[str] = []
    words = style.split()
    i = 0
    while i < len(words):
        word = words[i]
        if word in ("on", "fg") and i + 1 < len(words):
            codes.append(("48;5;" if word == "on" else "38;5;") + words[i + 1])
            i += 2
            continue
        codes.append(_SGR[word])
        i += 1
    return f"\x1b[{';'.join(codes)}m"


def cell_width(text: str) -> int:
    """Columns `text` takes in a terminal: East Asian wide characters count 2, combining marks 0.

    >>> cell_width("conv1"), cell_width("层1"), cell_width("e\u0301")
    (5, 3, 1)
    """
    if text.isascii():
        return len(text)
    width = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


@dataclass(frozen=True)
class Terminal:
    """A text stream with its width (None: unlimited), colour decision and whether tables get box drawing."""

    stream: TextIO
    width: int | None
    color: bool
    boxes: bool

    def style(self, text: str, style: str | None) -> str:
        """`text` in `style` when colour is on, else unchanged."""
        if not style or not self.color or not text:
            return text
        return f"{sgr(style)}{text}\x1b[0m"

    def line(self, text: str = "") -> None:
        """Write one line (the text already styled)."""
        self.stream.write(text + "\n")


def open_terminal(mode: ColorMode = ColorMode.AUTO, stream: TextIO | None = None) -> Terminal:
    """The terminal for `stream` (default stdout): its width and box drawing if it is a terminal, and the
    colour decision."""
    out = stream if stream is not None else sys.stdout
    tty = _is_tty(out)
    width = shutil.get_terminal_size(fallback=(80, 24)).columns if tty else None
    return Terminal(out, width, color_wanted(mode, out), boxes=tty)
