"""Every op convcalc knows, by name: the one place the family modules are listed.

Adding an op is adding its class (with its `OPS` entry) to its family's module; the loader's
validation, the JSON Schema, the analysis and the reference execution all find it here.
"""

from __future__ import annotations

from typing import Any, Final

from convcalc.ops import attention, channels, convolution, dense, merges, normalisation, pointwise, pooling, resampling
from convcalc.ops.base import Op
from convcalc.stack.fields import LayerName
from convcalc.stack.spec import LayerSpec

#: The op families, in the order the README and the schema list them.
FAMILIES: Final = (convolution, pooling, resampling, merges, channels, pointwise, normalisation, attention, dense)

#: Every op by its canonical name, in family order.
OPS: Final[dict[str, Op[Any]]] = {op.name: op for family in FAMILIES for op in family.OPS}

#: Other spellings people use (`conv_transpose`, `cat`, `bn`), mapped to the canonical name.
ALIASES: Final[dict[str, str]] = {alias: op.name for op in OPS.values() for alias in op.aliases}

#: Fields that name another layer (upsample's `like`): resolved in blocks as `from` is.
REFERENCE_FIELDS: Final = frozenset(f.name for op in OPS.values() for f in op.fields if isinstance(f.kind, LayerName))


def canonical(name: str) -> str | None:
    """The canonical op name for `name` (an alias or the name itself), or None for an unknown op.

    >>> canonical("conv_transpose"), canonical("conv"), canonical("convolution") is None
    ('deconv', 'conv', True)
    """
    if name in OPS:
        return name
    return ALIASES.get(name)


def op_of(layer: LayerSpec) -> Op[Any]:
    """The op of a validated layer."""
    return OPS[layer.op]


def reads(layer: LayerSpec) -> tuple[str, ...]:
    """Every layer whose output `layer` needs: its `from`, then the layers its fields name (`like`)."""
    extra = op_of(layer).references(layer)
    return layer.inputs + extra if extra else layer.inputs


def field_owners(field: str) -> list[str]:
    """The ops that have a field called `field` (for 'is a field of deconv, not conv' messages)."""
    return [name for name, op in OPS.items() if any(f.name == field for f in op.fields)]


def merge_ops() -> list[str]:
    """The ops that read two or more layers."""
    return [name for name, op in OPS.items() if op.arity[1] is None or op.arity[1] > 1]
