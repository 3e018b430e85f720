"""Writing a picture or a page (`--svg`, `report -o`): never over one of the command's inputs, atomically.

Only the standard library (the arithmetic commands use it too, and must not import numpy).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable


def write_text(path: str, text: str, parameter: str, inputs: Iterable[str] = ()) -> None:
    """Write `text` to `path`: to a temporary file next to it, then renamed over it (a reader never sees
    half a file; a failed write leaves nothing). An existing file is replaced, unless it is one of
    `inputs` (files the command read: compared as files, so other spellings and links count) or a
    directory. `parameter` names the option in the error."""
    from convcalc.errors import FileProblemError, Problem
    from convcalc.execution.files import overwritten_input, umask

    def refuse(message: str) -> FileProblemError:
        return FileProblemError(Problem(message, path, parameter=parameter))

    if os.path.isdir(path):
        raise refuse("names a directory; give a file name")
    inputs = tuple(inputs)
    clash = overwritten_input(path, inputs)
    if clash is not None:
        raise refuse(f"would overwrite {clash}, one of the command's inputs; choose another name")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise refuse(f"the directory {directory} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".convcalc-", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise refuse(f"cannot write here: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            os.fchmod(handle.fileno(), 0o666 & ~umask())
        if overwritten_input(path, inputs) is not None:
            raise refuse("was pointed at one of the command's inputs while writing; not overwritten")
        os.replace(tmp, path)
    except OSError as exc:
        raise refuse(f"cannot write the file: {exc.strerror or exc}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
