"""The README's set-up works on a new machine: the suite collects and skips cleanly without torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_suite_collects_without_torch(tmp_path: Path) -> None:
    """With torch unimportable, collection (doctest modules included) succeeds and the oracle tests skip."""
    blocker = tmp_path / "block"
    blocker.mkdir()
    # A `torch` that fails to import, found before any installed one: what a machine without torch sees.
    stub = "raise ModuleNotFoundError(\"No module named 'torch' (blocked)\", name='torch')\n"
    (blocker / "torch.py").write_text(stub)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env={"PYTHONPATH": str(blocker), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "error" not in result.stdout.lower().split("\n")[-2], result.stdout[-2000:]
    assert "skipped" in result.stdout, result.stdout[-2000:]
