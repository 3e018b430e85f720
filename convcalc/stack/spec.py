"""The layer-stack format (version 1) as typed data: what a stack means once it is validated.

Sizes are per spatial axis, in the order PyTorch uses (D, H, W). Every per-axis field is already
broadcast to the stack's rank; padding is normalised to per-axis (before, after) pairs or a mode.
Parameter names and defaults are PyTorch's (dilation 1 = dense). Each op has its own layer type, a
subclass of `LayerSpec` defined with the op (convcalc.ops); this module holds what every layer and
every stack has.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from convcalc.stack.contracts import Expectation, Suppression

#: Version of the stack format this module describes.
FORMAT_VERSION = 1

PaddingMode = Literal["same", "valid", "same_lower"]
#: Explicit per-axis (before, after) pairs, or a mode: 'same' is TF/Keras SAME (the odd extra pixel
#: after), 'same_lower' ONNX's SAME_LOWER (before), 'valid' no padding.
Padding = tuple[tuple[int, int], ...] | PaddingMode

#: Fields every layer accepts, whatever its op.
COMMON_FIELDS = ("op", "name", "from")

#: The name a layer's `from` uses for the stack's input.
INPUT_NAME = "input"

#: Names of the spatial axes by rank, as PyTorch orders them.
AXIS_NAMES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


_OUTPUT = re.compile(r"(?P<layer>.+)\.(?P<index>0|[1-9][0-9]*)")


def output_name(layer: str, index: int) -> str:
    """The name of output `index` of a multi-output layer (split, chunk): what `from` writes.

    >>> output_name("sp", 1), output_name("stage2.0.split", 0)
    ('sp.1', 'stage2.0.split.0')
    """
    return f"{layer}.{index}"


def output_of(ref: str) -> tuple[str, int] | None:
    """(layer, index) if `ref` is spelled like an output of a multi-output layer, else None. The loader
    refuses layer names that would read as another layer's output, so the spelling is unambiguous.

    >>> output_of("sp.1"), output_of("layer2.0.conv1"), output_of("sp.01")
    (('sp', 1), None, None)
    """
    match = _OUTPUT.fullmatch(ref)
    return None if match is None else (match["layer"], int(match["index"]))


def outputs_text(layer: str, count: int) -> str:
    """The names of a multi-output layer's `count` outputs, for a message (long lists shortened).

    >>> outputs_text("sp", 2), outputs_text("sp", 12)
    ('sp.0, sp.1', 'sp.0, sp.1, sp.2, …, sp.11')
    """
    names = [output_name(layer, i) for i in range(count)]
    return ", ".join(names) if count <= 8 else f"{', '.join(names[:3])}, …, {names[-1]}"


def axis_label(rank: int, axis: int) -> str:
    """The name of spatial axis `axis` of a `rank`-D tensor: H, W for 2-D; L for 1-D.

    >>> axis_label(2, 1), axis_label(3, 0)
    ('W', 'D')
    """
    return AXIS_NAMES.get(rank, tuple(str(i) for i in range(rank)))[axis]


@dataclass(frozen=True)
class Location:
    """Where something was written: file and 1-based line/column (None when not from a file)."""

    file: str | None = None
    line: int | None = None
    column: int | None = None


@dataclass(frozen=True)
class InputSpec:
    """The stack input: channels (None: unknown, for one-layer calculations without channels) and
    spatial sizes (None = unknown), 1 to 3 spatial axes."""

    channels: int | None
    spatial: tuple[int | None, ...]

    @property
    def rank(self) -> int:
        """Number of spatial axes."""
        return len(self.spatial)


@dataclass(frozen=True)
class LayerSpec:
    """One validated layer: what every op has. Each op's subclass adds its fields, with defaults filled
    in and per-axis values broadcast to the rank.

    `index` is the 0-based position in the stack; `inputs` names the producers (`"input"` is the
    stack input). `location` is where the layer was written and `field_locations` where each field
    the user wrote was, for messages downstream. A layer expanded from a block was written inside the
    block's definition (`location`); `instance` names the block instance it belongs to (`layer3.2`,
    the innermost when blocks nest) and `call` is where that instance's use sits in the top-level
    layer list (the outermost use); both None outside blocks.
    """

    index: int
    name: str
    op: str
    inputs: tuple[str, ...]
    location: Location = field(default_factory=Location)
    field_locations: dict[str, Location] = field(default_factory=dict, compare=False, hash=False)
    instance: str | None = field(default=None, compare=False)
    call: Location | None = field(default=None, compare=False)

    def where(self, field_name: str | None = None) -> Location:
        """The location of `field_name` if the user wrote it, else of the layer."""
        if field_name is not None and field_name in self.field_locations:
            return self.field_locations[field_name]
        return self.location


@dataclass(frozen=True)
class StackSpec:
    """A whole layer stack: a DAG of layers in file order (every `from` names an earlier layer)."""

    input: InputSpec
    layers: tuple[LayerSpec, ...]
    name: str | None = None
    file: str | None = None
    input_location: Location = field(default_factory=Location)
    description: str | None = None
    #: The file's `expect:` and `ignore:` sections (convcalc.stack.contracts), empty when absent.
    expect: tuple[Expectation, ...] = ()
    ignore: tuple[Suppression, ...] = ()

    def layer(self, name: str) -> LayerSpec:
        """The layer called `name` (KeyError if there is none); O(1), so callers may look up in loops."""
        return self._by_name[name]

    @cached_property
    def _by_name(self) -> dict[str, LayerSpec]:
        # Built on the first lookup; the first layer of a name wins, as a linear search would find it.
        by_name: dict[str, LayerSpec] = {}
        for layer in self.layers:
            by_name.setdefault(layer.name, layer)
        return by_name
