"""Diagnostics: findings about a stack that are not errors (PyTorch would run it) but deserve attention."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Severity(StrEnum):
    """How much a diagnostic matters; `--fail-on` compares against this order."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}

#: Every diagnostic code convcalc emits, with its severity and what it means (stable: scripts key on it).
CODES: dict[str, tuple[Severity, str]] = {
    "checkerboard": (
        Severity.WARNING,
        "a transposed conv whose output phases receive unequal numbers of input taps (kernel not divisible by stride)",
    ),
    "checkerboard-compound": (
        Severity.WARNING,
        "stacked transposed convs or upsampling compound the uneven overlap beyond each layer's own",
    ),
    "holes": (Severity.ERROR, "some outputs of a transposed conv receive no input at all (only the bias)"),
    "misaligned-merge": (
        Severity.WARNING,
        "the branches of a merge disagree in jump or centre: the same output unit looks at different places",
    ),
    "rf-exceeds-input": (Severity.INFO, "the receptive field is larger than the input along an axis"),
    "same-strided": (
        Severity.INFO,
        "padding 'same' with stride > 1: PyTorch refuses it; a port needs the explicit padding given",
    ),
    "same-asymmetric": (Severity.INFO, "padding 'same' splits an odd total: the extra pixel goes after"),
    "ceil-mode-dropped": (
        Severity.INFO,
        "ceil_mode dropped a last window that would start in the right padding (PyTorch's rule)",
    ),
    "unused-input": (
        Severity.INFO,
        "some input pixels are read by no window: the stride skips the last ones, or the kernel is shorter "
        "than the stride",
    ),
    "padding-unknown": (
        Severity.INFO,
        "the effective padding depends on the unknown input size (SAME with stride > 1)",
    ),
    "rf-unknown": (
        Severity.INFO,
        "the receptive field depends on an unknown input size, or its phase pattern is too long to enumerate",
    ),
    "scale-rounding": (
        Severity.INFO,
        "size × scale_factor lands just below an integer and PyTorch floors it (e.g. 100 × 0.29 → 28)",
    ),
}


@dataclass(frozen=True)
class Diagnostic:
    """One finding: a stable `code` (see CODES), the layer it concerns and a one-line message with numbers.

    `data` carries the numbers for machine-readable output (JSON-friendly values).
    """

    code: str
    layer: str
    message: str
    data: dict[str, object] = field(default_factory=dict, compare=False, hash=False)

    @property
    def severity(self) -> Severity:
        return CODES[self.code][0]
