"""Every op convcalc knows, by name: the one place the family modules are listed.

Adding an op is adding its class (with its `OPS` entry) to its family's module and its name to
`FAMILY_OF` below; the loader's validation, the JSON Schema, the analysis and the reference execution
all find it here. A family module is imported the first time one of its ops is looked up, so a
command pays only for the ops its stack uses (tests/test_registry.py checks this index against the
modules).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from types import ModuleType
from typing import Any, Final

from convcalc.ops.base import Op
from convcalc.stack.spec import LayerSpec

#: The op families, in the order the README and the schema list them.
FAMILY_NAMES: Final = (
    "convolution",
    "pooling",
    "resampling",
    "merges",
    "channels",
    "pointwise",
    "normalisation",
    "attention",
    "dense",
)

#: Each op's family module, in family order.
FAMILY_OF: Final[dict[str, str]] = {
    **dict.fromkeys(("conv", "deconv"), "convolution"),
    **dict.fromkeys(("maxpool", "avgpool", "adaptive_avgpool", "adaptive_maxpool"), "pooling"),
    **dict.fromkeys(("upsample", "pixel_shuffle", "pixel_unshuffle", "pad"), "resampling"),
    **dict.fromkeys(("add", "sub", "mul", "concat"), "merges"),
    **dict.fromkeys(("split", "chunk", "slice", "channel_shuffle"), "channels"),
    **dict.fromkeys(
        (
            "relu",
            "relu6",
            "leaky_relu",
            "gelu",
            "silu",
            "sigmoid",
            "tanh",
            "hardswish",
            "hardsigmoid",
            "elu",
            "celu",
            "selu",
            "softplus",
            "mish",
            "hardtanh",
            "prelu",
            "softmax",
            "scalar",
            "dropout",
            "identity",
        ),
        "pointwise",
    ),
    **dict.fromkeys(("batchnorm", "layernorm", "groupnorm", "instancenorm", "scale"), "normalisation"),
    "attention": "attention",
    **dict.fromkeys(("flatten", "linear"), "dense"),
}

#: Other spellings people use (`conv_transpose`, `cat`, `bn`), mapped to the canonical name (each op's
#: `aliases`, indexed here so that reading a name imports nothing).
ALIASES: Final[dict[str, str]] = {
    **dict.fromkeys(("conv_transpose", "convtranspose", "transposed_conv"), "deconv"),
    "max_pool": "maxpool",
    "avg_pool": "avgpool",
    "adaptive_avg_pool": "adaptive_avgpool",
    "adaptive_max_pool": "adaptive_maxpool",
    "interpolate": "upsample",
    "cat": "concat",
    **dict.fromkeys(("bn", "batch_norm"), "batchnorm"),
    "layer_norm": "layernorm",
    "group_norm": "groupnorm",
    "instance_norm": "instancenorm",
}

#: Fields that name another layer (upsample's `like`): resolved in blocks as `from` is.
REFERENCE_FIELDS: Final = frozenset({"like"})


def family(name: str) -> ModuleType:
    """The family module called `name` (convcalc.ops.<name>), imported on first use."""
    return importlib.import_module(f"convcalc.ops.{name}")


class _Ops(Mapping[str, "Op[Any]"]):
    """Every op by canonical name, in family order; a family is imported when one of its ops is read."""

    def __init__(self) -> None:
        self._found: dict[str, Op[Any]] = {}

    def __getitem__(self, name: str) -> Op[Any]:
        found = self._found.get(name)
        if found is None:
            module = FAMILY_OF[name]  # KeyError for an unknown op, as a dict
            for op in family(module).OPS:
                self._found[op.name] = op
            found = self._found[name]
        return found

    def __contains__(self, name: object) -> bool:
        return name in FAMILY_OF

    def __iter__(self) -> Iterator[str]:
        return iter(FAMILY_OF)

    def __len__(self) -> int:
        return len(FAMILY_OF)


#: Every op by its canonical name, in family order.
OPS: Final = _Ops()


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
