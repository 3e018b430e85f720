"""Running a stack: the NumPy reference execution, its memory estimate and its results."""
