"""Files a command writes: which input a write would replace, and the umask new files get.

Only the standard library: the arithmetic commands write pictures too and must not import numpy.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

__all__ = ["overwritten_input", "umask"]


def overwritten_input(path: str, inputs: Iterable[str]) -> str | None:
    """The first of `inputs` (files a command reads) that writing `path` would replace, or None.

    Files are compared, not names (os.path.samefile): relative and absolute spellings, `..`,
    symlinks either way and hard links of one file are that file.
    """
    if not os.path.exists(path):
        return None
    for given in inputs:
        try:
            if os.path.samefile(given, path):
                return given
        except OSError:  # an input that is gone, or cannot be looked at, cannot be replaced either
            continue
    return None


_PROC_STATUS = "/proc/self/status"


def umask() -> int:
    """The process's umask, from /proc on Linux. Elsewhere os.umask has to set a mask to read the
    old one: it sets the strictest for that moment, so a file another thread creates meanwhile is
    more private, never less."""
    try:
        with open(_PROC_STATUS, encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o777)
    os.umask(mask)
    return mask
