"""Reusable blocks in stack files: the rules that expand them into the plain version-1 format.

A block is a sub-graph written once under the top-level `blocks:` key and used in `layers` (or in
another block) as many times as needed::

    blocks:
      basic:                                   # block name
        params: {out: 64, stride: 1}           # parameters and their defaults (null = required)
        layers:                                # ordinary layers; `from` names are block-local
          - {op: conv, name: conv1, out: "${out}", kernel: 3, stride: "${stride}", padding: 1}
          - {op: conv, name: conv2, out: "${out}", kernel: 3, padding: 1}
          - {op: conv, name: down, from: input, out: "${out}", kernel: 1, stride: "${stride}",
             when: "${stride > 1}"}            # only in instances where the condition holds
          - {op: add, name: add, from: [conv2, down]}
    layers:
      - {block: basic, name: layer2, repeat: 2, with: {out: 128}, first: {stride: 2}}

Conventions:

* An instance is named `NAME.i` (i = 0, 1, ...) when the use says `repeat:`, else `NAME`; its
  layers are `NAME.i.inner` (`layer2.0.conv1`), so names stay unique and read like torchvision's.
* Inside a block, `input` is the instance's input (the use's `from`, default the layer above) and
  the block's output is its last layer, or the layer named by `output:`. Elsewhere, the use's name
  (`layer2`) stands for the output of its last instance and `layer2.0` for that of instance 0.
* `from` names are looked up among the block's own layers first, then where the block is used.
* `with:` sets parameters for every instance, `first:` overrides them for instance 0; `index` is
  the instance number, usable in `with:` values and inside the block.
* A layer whose `when:` is false is left out and passes its input through: whoever reads it reads
  its input instead (a disabled downsample is an identity shortcut). A block use may have `when:` too
  (an optional expand conv or squeeze-and-excitation): false leaves out the whole call.
* `names:` on a repeated use is a template for the instance names instead of `0, 1, ...`:
  `{block: dense, name: denseblock1, repeat: 6, names: "denselayer${index + 1}"}` gives
  `denseblock1.denselayer1.conv1`, ... (torch's names); each instance needs its own name.
* `{group: stem, layers: [...]}` in a layer list names a group of plain layers without defining a
  block: its layers are `stem.conv`, ..., `stem` stands for its last layer, and `from` names resolve
  inside the group first (its `input` is the group's `from`, default the layer above).
* A string value that is exactly `${expr}` becomes the expression's value (an int or a bool, or a
  parameter's value as written, list or not); `${expr}` inside a longer string is replaced by text.
  Expressions are integer arithmetic only, parsed here (never eval): `+ - * // % **`, parentheses,
  comparisons `== != < <= > >=`, `and or not`, `true`, `false`, parameter names and `index`.

convcalc.format.expansion applies these rules while the loader reads the file; the expressions are
convcalc.format.expressions; convcalc.format.dump writes any parsed stack back as plain version-1 YAML
(what `convcalc expand` prints).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from convcalc.format import limits

__all__ = [
    "BLOCK_FIELDS",
    "CALL_FIELDS",
    "GROUP_FIELDS",
    "INDEX_NAME",
    "MAX_LAYERS",
    "Scope",
    "instance_prefix",
    "qualify",
]

#: Keys of a block definition under `blocks:`.
BLOCK_FIELDS: Final = ("params", "layers", "output")
#: Keys of a layer entry that uses a block.
CALL_FIELDS: Final = ("block", "name", "from", "repeat", "names", "with", "first", "when")
#: Keys of a group of plain layers in a layer list: `{group: stem, layers: [...]}`.
GROUP_FIELDS: Final = ("group", "from", "layers")
#: The parameter every instance has: its 0-based number.
INDEX_NAME: Final = "index"
#: An expansion larger than this is refused (nested repeats multiply): the one layer cap.
MAX_LAYERS: Final = limits.MAX_LAYERS


def qualify(prefix: str, name: str) -> str:
    """`name` inside the instance called `prefix` ('' at the top level).

    >>> qualify("layer3.2", "conv2"), qualify("", "conv1")
    ('layer3.2.conv2', 'conv1')
    """
    return f"{prefix}.{name}" if prefix else name


def instance_prefix(name: str, index: int, repeated: bool) -> str:
    """The qualified name of instance `index` of a block use called `name`.

    >>> instance_prefix("layer3", 2, True), instance_prefix("aspp", 0, False)
    ('layer3.2', 'aspp')
    """
    return f"{name}.{index}" if repeated else name


@dataclass
class Scope:
    """The names a `from` can use at one place: a block instance's layers, or the top level.

    `names` maps a local name to the qualified layer that produces it (a left-out layer maps to
    its input; a block use to its output). `qualified` holds every layer name expanded so far,
    so a path into a nested instance (`branch.0.conv`) also resolves. Lookup falls back to the
    scope the block was used in.
    """

    prefix: str
    names: dict[str, str] = field(default_factory=dict)
    parent: Scope | None = None
    qualified: set[str] = field(default_factory=set)

    def resolve(self, ref: str) -> str | None:
        """The qualified producer `ref` names here, or None if no scope up the chain knows it."""
        scope: Scope | None = self
        while scope is not None:
            if ref in scope.names:
                return scope.names[ref]
            path = f"{scope.prefix}.{ref}" if scope.prefix else ref
            if path in self.qualified:
                return path
            scope = scope.parent
        return None

    def visible(self) -> list[str]:
        """The local names, for 'did you mean' messages."""
        return list(self.names)
