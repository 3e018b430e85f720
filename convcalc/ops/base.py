"""What an op is: its spelling, its fields, and what it does to a tensor shape, a receptive field, a budget
and an array. One subclass of `Op` per op, in its family's module; `convcalc.ops.registry` finds them.

An op's `analyze` sees its typed layer spec and a `Context` (what arrives from its producers: shapes and
receptive-field maps, plus helpers); it fills the context's report fields and returns the output `Node`,
raising `LayerProblem` where PyTorch would refuse the layer. Its `execute` runs the NumPy reference
kernel (numpy is imported there, lazily: the arithmetic commands never load it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from convcalc.diagnostics import Diagnostic
from convcalc.geometry.receptive import AxisMap, Step, Unmapped, compose_map
from convcalc.geometry.shape import Shape
from convcalc.notation import dims_text
from convcalc.stack.fields import Field, LayerName
from convcalc.stack.spec import LayerSpec, axis_label

S = TypeVar("S", bound=LayerSpec)

#: An array of the NumPy reference execution (typed loosely: numpy is never imported here).
Array = Any


class LayerProblem(Exception):
    """PyTorch would refuse this layer on this input: the field to blame and why, in PyTorch's words."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Node:
    """A tensor of the graph: its shape and, per axis of the stack input, its receptive-field map."""

    shape: Shape
    maps: tuple[AxisMap | None, ...]


def prod(values: Sequence[int | None]) -> int | None:
    """The product, or None when a factor is unknown."""
    if any(v is None for v in values):
        return None
    return math.prod(v for v in values if v is not None)


class Graph(Protocol):
    """The layers analysed so far, for advice that looks at a merge's branches."""

    def branch_windows(self, branch: str, other: str, axis: int) -> list[tuple[LayerSpec, int, Fraction]]:
        """The window layers on `branch` back to where it forks from `other`, nearest first, with their
        padding before and their input's jump along `axis`."""
        ...


class Context:
    """One layer's analysis in progress: what arrives, and the report fields the op fills in."""

    def __init__(
        self,
        layer: LayerSpec,
        inputs: list[Node],
        stack_input: Shape,
        graph: Graph,
        refs: Mapping[str, Node] | None = None,
    ) -> None:
        self.layer = layer
        self.inputs = inputs
        #: The layers named by the op's layer-name fields (upsample's `like`), by name.
        self.refs: Mapping[str, Node] = refs or {}
        self.stack_input = stack_input
        self.graph = graph
        self.diagnostics: list[Diagnostic] = []
        self.kernel: tuple[int, ...] | None = None
        self.effective_kernel: tuple[int, ...] | None = None
        self.stride: tuple[int, ...] | None = None
        self.padding: tuple[tuple[int, int] | None, ...] | None = None
        self.params: int | None = 0
        self.macs: int | None = 0
        self.own_overlap = Fraction(1)  # this layer's overlap ratio on its own (transposed convs)
        self.unmapped: dict[int, Unmapped] = {}  # axes whose map this layer could not compute, and why
        # The per-axis step the layer applies to its input (None = identity), for support and coverage.
        self.steps: tuple[Step | None, ...] | None = None
        #: Inputs (positions in `from`) a merge treats as per-channel constants: gates, in the analysis
        #: with gates as constants (see convcalc.analysis.gates); they add nothing to any unit's field.
        self.constant_inputs: frozenset[int] = frozenset()

    @property
    def source(self) -> Node:
        """The first (for most ops the only) input."""
        return self.inputs[0]

    @property
    def rank(self) -> int:
        """Spatial axes of the first input (0 after flatten)."""
        return len(self.source.shape.spatial)

    def diag(self, code: str, message: str, **data: object) -> None:
        self.diagnostics.append(Diagnostic(code, self.layer.name, message, dict(data)))

    def add(self, diagnostic: Diagnostic | None) -> None:
        if diagnostic is not None:
            self.diagnostics.append(diagnostic)

    def need_spatial(self) -> None:
        """Refuse a flattened input (PyTorch's spatial ops need the axes)."""
        if self.rank == 0:
            raise LayerProblem(
                "op",
                f"{self.layer.op} needs spatial axes, but its input was flattened to "
                f"{self.source.shape.channels} features",
            )

    def label(self, axis: int) -> str:
        return axis_label(self.rank, axis)

    def describe_inputs(self) -> str:
        return ", ".join(
            f"{name} {dims_text([node.shape.channels, *node.shape.spatial])}"
            for name, node in zip(self.layer.inputs, self.inputs, strict=True)
        )

    def mapped(
        self,
        steps: Sequence[Step | None],
        sizes: Sequence[int | None],
        known: Sequence[bool] | None = None,
        causal: Sequence[bool] | None = None,
    ) -> tuple[AxisMap | None, ...]:
        """Compose each axis's step onto the input maps (None step = identity on that axis); `sizes` are
        the layer's output sizes (an explicit map lists that many units); `known` says which steps' left
        padding is known; `causal` which steps pad only before (see convcalc.ops.window)."""
        self.steps = tuple(steps)
        out: list[AxisMap | None] = []
        for axis, (inner, step) in enumerate(zip(self.source.maps, steps, strict=True)):
            if inner is None or step is None:
                out.append(inner)
                continue
            result = compose_map(
                inner,
                step,
                known[axis] if known else True,
                units=sizes[axis],
                causal=causal[axis] if causal else False,
            )
            out.append(self.known_map(axis, result))
        return tuple(out)

    def known_map(self, axis: int, result: AxisMap | Unmapped) -> AxisMap | None:
        """The map, or None after noting why there is none."""
        if isinstance(result, Unmapped):
            self.unmapped[axis] = result
            return None
        return result


@dataclass(frozen=True)
class Parameter:
    """A learnable tensor of a layer, in PyTorch's layout, with the fan-in its initialisation uses."""

    name: str  # "weight" or "bias"
    shape: tuple[int, ...]
    fan_in: float


class Op(Generic[S]):
    """One op. Class attributes declare it; the methods analyse and execute one layer of it."""

    #: The name a stack file writes (`op: conv`), and other spellings accepted for it.
    name: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    #: One line for the README's op table and the JSON Schema.
    summary: ClassVar[str]
    #: The typed layer class the loader builds for this op.
    spec: ClassVar[type[LayerSpec]]
    fields: ClassVar[tuple[Field, ...]] = ()
    #: How many producers `from` may name: (at least, at most); None = no limit.
    arity: ClassVar[tuple[int, int | None]] = (1, 1)
    #: A sliding window over its input (conv, pooling, pad): alignment advice may change its padding.
    window: ClassVar[bool] = False
    #: Spreads units apart (transposed convs, upsampling): may compound an uneven overlap.
    upsamples: ClassVar[bool] = False
    #: Names `relu`-like: the weights feeding it are initialised with gain 2 (He) by the runner.
    relu_like: ClassVar[bool] = False
    #: Passes values through in scale (batchnorm, dropout, identity): looked through for the gain.
    passes_scale: ClassVar[bool] = False
    #: Its output is a view of its input's array (identity, flatten): the run allocates nothing for it.
    view: ClassVar[bool] = False
    #: Produces several tensors (split, chunk): layer `sp` has outputs `sp.0`, `sp.1`, ... (see
    #: `convcalc.stack.spec.output_name`), analysed by `analyze_outputs`, run by `execute_output`.
    multi_output: ClassVar[bool] = False

    def references(self, layer: S) -> tuple[str, ...]:
        """The layers this layer reads besides `from` (its layer-name fields, e.g. upsample's `like`): they
        come before it, and their values live until it has run. Only the sizes of their outputs are used."""
        found = (getattr(layer, f.name) for f in self.fields if isinstance(f.kind, LayerName))
        return tuple(name for name in found if name is not None)

    def check(self, values: dict[str, Any], rules: Rules) -> None:
        """Rules between fields (and with the rank), checked when the layer is read. None by default."""

    def analyze(self, layer: S, ctx: Context) -> Node:
        raise NotImplementedError

    def analyze_outputs(self, layer: S, ctx: Context) -> tuple[Node, ...]:
        """A multi-output op's output tensors, in order (ops with one output: `analyze`)."""
        raise NotImplementedError

    def max_outputs(self, layer: S) -> tuple[int | None, bool]:
        """How many outputs a multi-output op has before its input is known: (at most that many, or None
        when it depends on the channels; whether exactly)."""
        return 1, True

    def output_count(self, layer: S, channels: int) -> int:
        """How many outputs it has on an input of `channels` channels."""
        return 1

    def execute_output(self, layer: S, xs: list[Array], index: int) -> Array:
        """Output `index` of a multi-output op on its input arrays (ops with one output: `execute`)."""
        raise NotImplementedError

    def parameters(self, layer: S, inputs: Sequence[Shape]) -> tuple[Parameter, ...]:
        """The learnable tensors the reference execution creates (none by default)."""
        return ()

    def execute(self, layer: S, xs: list[Array], params: Mapping[str, Array]) -> Array:
        """The layer on its input arrays (N, C, *spatial) with the NumPy kernels; ValueError when a kernel
        refuses."""
        raise NotImplementedError

    def workspace(self, layer: S, inputs: Sequence[tuple[int, ...]], output: Shape, itemsize: int) -> int:
        """Bytes of the temporaries `execute` allocates besides its inputs and output, for inputs of these
        array shapes (N, C, *spatial). By default the elementwise kernel's own (chunked) temporaries."""
        from convcalc.kernels import functional as F

        return F.elementwise_workspace(self.name, math.prod(inputs[0]), itemsize)


class Rules(Protocol):
    """What `Op.check` uses to report problems between fields, at the place they were written."""

    @property
    def rank(self) -> int | None: ...

    @property
    def rank_source(self) -> str: ...

    def written(self, name: str) -> bool: ...

    def order(self, name: str) -> int: ...

    def raw(self, name: str) -> object:
        """The value as written (before aliases are mapped), or None."""
        ...

    def got(self, name: str) -> str:
        """`got <value as written>` for a message."""
        ...

    def problem(self, message: str, name: str) -> None:
        """A problem with field `name`, at its value (at the layer if it was not written)."""
        ...

    def layer_problem(self, message: str, name: str) -> None:
        """A problem with field `name` (e.g. missing), at the layer."""
        ...
