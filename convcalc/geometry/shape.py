"""The shape of a tensor without its batch axis, as every analysis passes it along."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Shape:
    """A tensor shape without the batch axis: channels (features after flatten) and spatial sizes.

    None marks a size that depends on an unknown input size. After flatten `spatial` is ().
    """

    channels: int | None
    spatial: tuple[int | None, ...]
