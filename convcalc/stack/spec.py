"""The layer-stack format (version 1) as typed data: what a stack file means once it is parsed.

Sizes are per spatial axis, in the order PyTorch uses (D, H, W). Every per-axis field is already
broadcast to the stack's rank; padding is normalised to per-axis (before, after) pairs or a mode.
Parameter names and defaults are PyTorch's (dilation 1 = dense).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

#: Version of the stack format this module describes.
FORMAT_VERSION = 1

PaddingMode = Literal["same", "valid"]
#: Explicit per-axis (before, after) pairs, or a mode.
Padding = tuple[tuple[int, int], ...] | PaddingMode

ACTIVATIONS = ("relu", "relu6", "leaky_relu", "gelu", "silu", "sigmoid", "tanh")
SHAPE_PRESERVING = (*ACTIVATIONS, "batchnorm", "dropout", "identity")
MERGES = ("add", "mul", "concat")

#: Fields every op accepts.
COMMON_FIELDS = ("op", "name", "from")

#: The fields each op accepts besides COMMON_FIELDS, in the order the README lists them.
OP_FIELDS: dict[str, tuple[str, ...]] = {
    "conv": ("out", "kernel", "stride", "padding", "dilation", "groups", "bias", "padding_mode"),
    "deconv": ("out", "kernel", "stride", "padding", "output_padding", "dilation", "groups", "bias"),
    "maxpool": ("kernel", "stride", "padding", "dilation", "ceil_mode"),
    "avgpool": ("kernel", "stride", "padding", "ceil_mode", "count_include_pad"),
    "adaptive_avgpool": ("size",),
    "adaptive_maxpool": ("size",),
    "upsample": ("scale", "size", "mode", "align_corners"),
    "pixel_shuffle": ("factor",),
    "pixel_unshuffle": ("factor",),
    "pad": ("padding", "mode", "value"),
    "add": (),
    "mul": (),
    "concat": (),
    "flatten": (),
    "linear": ("out", "bias"),
    "relu": (),
    "relu6": (),
    "leaky_relu": ("negative_slope",),
    "gelu": (),
    "silu": (),
    "sigmoid": (),
    "tanh": (),
    "batchnorm": ("eps",),
    "dropout": ("p",),
    "identity": (),
}

#: Fields an op cannot do without.
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "conv": ("kernel",),
    "deconv": ("kernel",),
    "maxpool": ("kernel",),
    "avgpool": ("kernel",),
    "adaptive_avgpool": ("size",),
    "adaptive_maxpool": ("size",),
    "pixel_shuffle": ("factor",),
    "pixel_unshuffle": ("factor",),
    "pad": ("padding",),
    "linear": ("out",),
}

#: Other spellings people use, mapped to the canonical op.
OP_ALIASES: dict[str, str] = {
    "conv_transpose": "deconv",
    "convtranspose": "deconv",
    "transposed_conv": "deconv",
    "max_pool": "maxpool",
    "avg_pool": "avgpool",
    "adaptive_avg_pool": "adaptive_avgpool",
    "adaptive_max_pool": "adaptive_maxpool",
    "interpolate": "upsample",
    "cat": "concat",
    "bn": "batchnorm",
    "batch_norm": "batchnorm",
}

CONV_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
PAD_MODES = ("constant", "reflect", "replicate", "circular")
UPSAMPLE_MODES = ("nearest", "linear")
#: Accepted for `upsample.mode` and mapped to "linear" (PyTorch names the rank in the mode).
UPSAMPLE_MODE_ALIASES = {"bilinear": "linear", "trilinear": "linear"}

#: The name a layer's `from` uses for the stack's input.
INPUT_NAME = "input"

#: Names of the spatial axes by rank, as PyTorch orders them.
AXIS_NAMES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


@dataclass(frozen=True)
class Location:
    """Where something was written: file and 1-based line/column (None when not from a file)."""

    file: str | None = None
    line: int | None = None
    column: int | None = None


@dataclass(frozen=True)
class InputSpec:
    """The stack input: channels and spatial sizes (None = unknown), 1 to 3 spatial axes."""

    channels: int
    spatial: tuple[int | None, ...]

    @property
    def rank(self) -> int:
        """Number of spatial axes."""
        return len(self.spatial)


@dataclass(frozen=True)
class LayerSpec:
    """One layer, validated, with defaults filled in and per-axis values broadcast to the rank.

    Fields an op does not use keep their neutral defaults. `inputs` names the producers
    (`"input"` is the stack input). `location` is the layer's mapping in the file and
    `field_locations` the line of each key the user wrote, for error messages downstream.
    """

    index: int
    name: str
    op: str
    inputs: tuple[str, ...]
    out: int | None = None
    kernel: tuple[int, ...] = ()
    stride: tuple[int, ...] = ()
    padding: Padding = ()
    dilation: tuple[int, ...] = ()
    groups: int = 1
    bias: bool = True
    padding_mode: str = "zeros"
    output_padding: tuple[int, ...] = ()
    ceil_mode: bool = False
    count_include_pad: bool = True
    size: tuple[int | None, ...] = ()
    scale: tuple[float, ...] = ()
    mode: str = ""
    align_corners: bool | None = None
    factor: int = 1
    value: float = 0.0
    negative_slope: float = 0.01
    eps: float = 1e-5
    p: float = 0.5
    location: Location = field(default_factory=Location)
    field_locations: dict[str, Location] = field(default_factory=dict, compare=False, hash=False)

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
