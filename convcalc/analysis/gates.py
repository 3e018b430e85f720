"""Gates: the inputs of a `mul` that scale a feature map by numbers read off a global pool.

A squeeze-and-excitation block multiplies a feature map by a per-channel gate computed from its global
average. The gate sees the whole input, so every field after the first such block is global (true:
autograd agrees). Treating each gate as a per-channel constant gives the field of the spatial path alone,
which is what a user of EfficientNet or MobileNetV3 wants to know; `analyze(spec, gates="constant")`
reports it beside the true field.

Definition. An input G of a `mul` layer is a *gate* when
- walking back from G through layers that read exactly one tensor and whose output is one unit along
  every spatial axis (activations, batchnorm, 1×1 convs, ... on a 1×1 tensor), one reaches a *global
  pool*: an `adaptive_avgpool` or `adaptive_maxpool` with output size 1 along every spatial axis
  (G may be that pool itself); every unit of G is then a function of the pool's output alone;
- and the `mul` has at least one input that is not a gate (the map the gate scales).
A gate has a spatial size of 1 and is broadcast over the map it scales; as a constant it contributes
nothing to any unit's field, so the `mul`'s field is its other inputs' (see `convcalc.ops.merges`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from convcalc.analysis.report import LayerReport
from convcalc.ops import registry
from convcalc.stack.spec import StackSpec, output_of

#: The pools a gate reads (with output size 1 on every spatial axis).
GLOBAL_POOLS = frozenset({"adaptive_avgpool", "adaptive_maxpool"})


@dataclass(frozen=True)
class Gate:
    """Input `input` (position `index` in `from`) of mul layer `layer` is a gate reading global pool `pool`."""

    layer: str
    input: str
    index: int
    pool: str


def _pool_of(name: str, stack: StackSpec, reports: Mapping[str, LayerReport]) -> str | None:
    """The global pool that tensor `name` is a function of alone (see the module docstring), or None."""
    specs = {layer.name: layer for layer in stack.layers}
    seen: set[str] = set()
    current = name
    while current not in seen:
        seen.add(current)
        report = reports.get(current)
        if report is None or not report.output.spatial or any(n != 1 for n in report.output.spatial):
            return None
        found = output_of(current)
        spec = specs.get(current) or (specs.get(found[0]) if found is not None else None)
        if spec is None:
            return None
        if spec.op in GLOBAL_POOLS and all(s == 1 for s in getattr(spec, "size", ())):
            return current
        sources = registry.reads(spec)
        if len(sources) != 1:
            return None
        current = sources[0]
    return None


def find(stack: StackSpec, layers: tuple[LayerReport, ...]) -> tuple[Gate, ...]:
    """Every gate of the analysed stack (`layers`: its reports, which give the output sizes), in file order."""
    reports = {layer.name: layer for layer in layers}
    out: list[Gate] = []
    for layer in layers:
        if layer.op != "mul":
            continue
        pools = [_pool_of(name, stack, reports) for name in layer.inputs]
        if all(p is not None for p in pools):
            continue  # nothing left to scale: every input is a gate
        out.extend(
            Gate(layer.name, name, i, pool)
            for i, (name, pool) in enumerate(zip(layer.inputs, pools, strict=True))
            if pool is not None
        )
    return tuple(out)
