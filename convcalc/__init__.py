"""convcalc: exact convolution arithmetic — shapes, receptive fields, checkerboards — for layer stacks."""

from __future__ import annotations

__version__ = "0.1.0"
