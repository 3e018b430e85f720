"""The registry's index (op → family, aliases, layer-name fields) is what the family modules define,
and a stack loads only the families its ops belong to."""

from __future__ import annotations

import ast
import subprocess
import sys

from convcalc.ops import registry
from convcalc.stack.fields import LayerName


def _defined() -> list[tuple[str, object]]:
    return [(op.name, op) for name in registry.FAMILY_NAMES for op in registry.family(name).OPS]


def test_the_index_lists_every_op_of_every_family_in_order() -> None:
    expected = [(op.name, name) for name in registry.FAMILY_NAMES for op in registry.family(name).OPS]
    assert list(registry.FAMILY_OF.items()) == expected


def test_the_aliases_are_the_ops_own() -> None:
    own = {alias: name for name, op in _defined() for alias in op.aliases}  # type: ignore[attr-defined]
    assert own == registry.ALIASES


def test_the_layer_name_fields_are_the_ops_own() -> None:
    own = {f.name for _, op in _defined() for f in op.fields if isinstance(f.kind, LayerName)}  # type: ignore[attr-defined]
    assert own == registry.REFERENCE_FIELDS


def test_ops_behaves_as_a_mapping() -> None:
    assert list(registry.OPS) == list(registry.FAMILY_OF)
    assert len(registry.OPS) == len(registry.FAMILY_OF)
    assert registry.OPS["conv"].name == "conv"
    assert "bn" not in registry.OPS  # an alias is not a canonical name
    assert registry.canonical("bn") == "batchnorm"


def test_a_stack_imports_only_the_families_it_uses() -> None:
    code = (
        "import sys\n"
        "from convcalc.analysis.engine import analyze\n"
        "from convcalc.format.loader import parse_stack\n"
        "analyze(parse_stack('input: [3, 8, 8]\\nlayers: [{op: conv, kernel: 3}, {op: relu}]\\n'))\n"
        "print(sorted(m.rsplit('.', 1)[1] for m in sys.modules if m.startswith('convcalc.ops.')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(ast.literal_eval(done.stdout))
    assert {"convolution", "pointwise"} <= loaded
    assert not loaded & {"attention", "channels", "normalisation", "merges", "dense"}
