"""The public API in convcalc/__init__.py: every name resolves, importing it is cheap, documents are data."""

from __future__ import annotations

import json
import subprocess
import sys

import convcalc


def test_every_public_name_resolves() -> None:
    missing = [name for name in convcalc.__all__ if getattr(convcalc, name, None) is None]
    assert missing == []


def test_import_convcalc_loads_no_layer() -> None:
    code = "import sys, convcalc; print(sorted(m for m in sys.modules if m.startswith(('convcalc.', 'numpy', 'yaml'))))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_rf_document_is_plain_json_data() -> None:
    report = convcalc.analyze(convcalc.parse_stack("input: [3, 8, 8]\nlayers: [{op: conv, kernel: 3, stride: 2}]\n"))
    document = convcalc.report_document(report)
    assert json.loads(json.dumps(document)) == document
    # Hand derivation: floor((8 - 3) / 2) + 1 = 3; the field of one unit is the kernel, 3.
    assert document["summary"]["output"] == {"channels": 3, "spatial": [3, 3]}
    assert [axis["rf"] for axis in document["summary"]["field"]] == [3, 3]
    assert report.layer("conv1").output.spatial == (3, 3)
