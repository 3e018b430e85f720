"""The JSON documents of `convcalc conv|deconv|pool`: one layer, and the padding solver's answer.

A layer's document carries the stack analysis's own layer (`layer`, the same keys as a layer of `convcalc
rf`'s document, from `convcalc.documents.parts.layer_json`), the input as `rf` writes it (`input`:
channels and spatial sizes), the axis names (`axes`) and its diagnostics (`diagnostics`, with their
messages), plus what only the calculators add: the PyTorch call (`layer.torch`), the options the layer
was given (`layer.dilation`, `output_padding`, `ceil_mode`, `groups`, `padding_given`), and per axis
(`per_axis`) the `same` padding, the overlap (taps per output phase of a transposed conv, windows per
input phase otherwise, with the counts at every position), the equivalent direct conv of a transposed
conv and ceil_mode's last window; `overlap` is the N-D ratio and, for a transposed conv, the map.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from convcalc.analysis.calculators import AxisResult, LayerResult, LayerSettings, SamePadding
from convcalc.documents.parts import SCHEMA_VERSION, diagnostic_json, frac_json, layer_json, shape_json
from convcalc.geometry.overlap import Counts, outer
from convcalc.geometry.shape import Shape
from convcalc.notation import counts_text

if TYPE_CHECKING:
    # Type-only: the solver and the derivations are loaded by the commands that use them.
    from convcalc.analysis.explain import Derivation
    from convcalc.analysis.solver import Setting, Solution

#: The whole overlap map is drawn when every drawn axis of the output is at most this long.
MAP_MAX = 32
#: One period of the map (the product of the drawn axes' strides) is drawn up to this many cells.
MAP_CELLS = 4096


# -- the PyTorch call -------------------------------------------------------------------------------
def _tuple(values: Sequence[int]) -> str:
    return str(values[0]) if len(set(values)) == 1 else "(" + ", ".join(map(str, values)) + ")"


def torch_call(
    s: LayerSettings,
    padding: Sequence[int] | None = None,
    output_padding: Sequence[int] | None = None,
    ceil_mode: bool | None = None,
) -> str:
    """The PyTorch module call, e.g. nn.Conv2d(16, 32, kernel_size=3, stride=2, padding=1)."""
    args: list[str] = []
    if s.in_channels is not None and s.out_channels is not None:
        args += [str(s.in_channels), str(s.out_channels)]
    elif not s.is_pool:
        args += ["C_in", "C_out"]
    args.append(f"kernel_size={_tuple(s.kernel)}")
    if s.stride != s.kernel or not s.is_pool:
        args.append(f"stride={_tuple(s.stride)}")
    if padding is not None:
        if any(padding):
            args.append(f"padding={_tuple(padding)}")
    elif isinstance(s.padding, str):
        args.append(f"padding='{s.padding}'")
    elif any(b or a for b, a in s.padding):
        args.append(f"padding={_tuple([b for b, _ in s.padding])}")
    ops = output_padding if output_padding is not None else s.output_padding
    if any(ops):
        args.append(f"output_padding={_tuple(ops)}")
    if any(d != 1 for d in s.dilation):
        args.append(f"dilation={_tuple(s.dilation)}")
    if s.groups != 1:
        args.append(f"groups={s.groups}")
    if ceil_mode if ceil_mode is not None else s.ceil_mode:
        args.append("ceil_mode=True")
    return f"nn.{s.torch_name}({', '.join(args)})"


def module_text(result: LayerResult) -> str:
    """What a PyTorch port writes for this layer. PyTorch takes padding='same' only on a stride-1 conv;
    otherwise (strided, or a pool) it is the explicit F.pad, last axis first, then the module with
    padding=0 — padding a max pool with −inf, so that a window over the padding never wins."""
    s = result.settings
    if s.padding != "same" or (s.kind == "conv" and all(st == 1 for st in s.stride)):
        return torch_call(s)
    module = torch_call(s, padding=[0] * s.rank)
    pads = [a.padding for a in result.axes]
    if any(p is None for p in pads):
        return f"{module} after TF-style SAME padding (its F.pad depends on the input size: give the input size)"
    flat = ", ".join(f"{p[0]}, {p[1]}" for p in reversed(pads) if p is not None)
    fill = ", value=float('-inf')" if s.kind == "maxpool" else ""
    return f"F.pad(x, ({flat}){fill}) then {module}"


# -- the overlap map --------------------------------------------------------------------------------
def map_data(result: LayerResult) -> tuple[str, tuple[tuple[int, ...], ...], str]:
    """(kind, values, caption) for a transposed conv: the whole output when small, else one period."""
    axes = result.axes
    drawn = axes[-2:]
    counts = [a.overlap.counts for a in drawn]
    names = " × ".join(a.axis for a in drawn)
    depth = ""
    if len(axes) == 3:
        d = axes[0]
        whole = d.overlap.counts is not None and len(d.overlap.counts) <= MAP_MAX
        vec = (
            " ".join(map(str, d.overlap.counts.values())) if whole and d.overlap.counts else counts_text(d.overlap.taps)
        )
        depth = f"; along D the counts are {vec}: each D slice is this map times its D count"
    if all(c is not None and len(c) <= MAP_MAX for c in counts):
        values = outer([c.values() for c in counts if c is not None])
        size = "×".join(str(len(c or ())) for c in counts)
        return (
            "whole",
            values,
            (
                "taps reaching each output (conv_transpose of ones with a ones kernel), "
                f"the whole {size} output "
                f"({names}){depth}"
            ),
        )
    cells = math.prod(a.stride for a in drawn)
    if cells > MAP_CELLS:
        return (
            "none",
            (),
            f"the overlap map is not drawn: one period has {cells} cells, more than the {MAP_CELLS} convcalc "
            "draws (MAP_CELLS); the taps per output phase are listed above",
        )
    values = outer([a.overlap.taps for a in drawn])
    why = "" if all(c is None for c in counts) else f" (the output is over {MAP_MAX} per axis)"
    phases = " × ".join(f"o_{a.axis} mod {a.stride}" for a in drawn)
    return (
        "period",
        values,
        f"taps reaching each output, one period away from the borders{why}: rows and columns "
        f"are the phases {phases}{depth}",
    )


# -- one layer --------------------------------------------------------------------------------------
def _same_json(same: SamePadding | None) -> dict[str, Any] | None:
    if same is None:
        return None
    return {
        "before": same.before,
        "after": same.after,
        "output_padding": same.output_padding,
        "pytorch_same": same.native,
    }


def counts_json(counts: Counts) -> dict[str, Any]:
    """Per-position counts as the axis stores them: head, one period repeated `repeats` times, tail."""
    return {
        "length": len(counts),
        "head": list(counts.head),
        "period": list(counts.period),
        "repeats": counts.repeats,
        "tail": list(counts.tail),
    }


def axis_json(a: AxisResult) -> dict[str, Any]:
    """The calculators' own numbers along one axis (the shared ones are in the layer's `field`)."""
    eq = a.equivalent
    return {
        "axis": a.axis,
        "same_padding": _same_json(a.same_padding),
        "overlap": {
            "taps_per_phase": list(a.overlap.taps),
            "ratio": frac_json(a.overlap.ratio),
            "holes": a.overlap.holes,
            "counts": None if a.overlap.counts is None else counts_json(a.overlap.counts),
        },
        "equivalent_conv": None
        if eq is None
        else {
            "zeros_between": eq.zeros_between,
            "stretched_size": eq.stretched_size,
            "pad_before": eq.pad_before,
            "pad_after": eq.pad_after,
            "padded_size": eq.padded_size,
            "output": eq.output_size,
            "stride": 1,
            "kernel_flipped": True,
        },
        "ceil_mode": None
        if a.last_window_start is None
        else {
            "floor_output": a.floor_output_size,
            "last_window_start": a.last_window_start,
            "dropped": a.ceil_dropped,
        },
        "unread": a.unread,
    }


def derivation_json(derivations: Sequence[Derivation]) -> list[dict[str, Any]]:
    return [
        {
            "axes": list(d.axes),
            "steps": [
                {
                    "title": st.title,
                    "formula": st.formula,
                    "numbers": list(st.numbers),
                    "result": st.result,
                    "note": st.note,
                }
                for st in d.steps
            ],
        }
        for d in derivations
    ]


def calculator_document(
    result: LayerResult, command: str, derivations: Sequence[Derivation] | None = None
) -> dict[str, Any]:
    """The document `convcalc conv|deconv|pool --format json` prints for one layer."""
    s = result.settings
    layer = layer_json(result.report)
    layer.update(
        {
            "torch": module_text(result),
            "rank": s.rank,
            "padding_given": s.padding if isinstance(s.padding, str) else [list(p) for p in s.padding],
            "dilation": list(s.dilation),
            "output_padding": list(s.output_padding),
            "ceil_mode": s.ceil_mode,
            "groups": s.groups,
        }
    )
    payload: dict[str, Any] = {
        "convcalc_schema": SCHEMA_VERSION,
        "command": command,
        "input": shape_json(Shape(s.input.channels, s.input.spatial)),
        "axes": list(s.axes),
        "layer": layer,
        "per_axis": [axis_json(a) for a in result.axes],
        "overlap": {"ratio": frac_json(result.overlap_ratio), "holes": result.holes},
        "diagnostics": [diagnostic_json(d) for d in result.diagnostics],
    }
    if s.kind == "deconv":
        kind, values, _caption = map_data(result)
        payload["overlap"]["map"] = {
            "kind": kind,
            "axes": [a.axis for a in result.axes[-2:]],
            "values": [list(row) for row in values],
        }
    if derivations is not None:
        payload["derivation"] = derivation_json(derivations)
    return payload


# -- the solver -------------------------------------------------------------------------------------
def _setting_json(st: Setting | None) -> dict[str, Any] | None:
    if st is None:
        return None
    return {
        "padding": st.padding,
        "output_padding": st.output_padding,
        "ceil_mode": st.ceil_mode,
        "output": st.output,
    }


def solution_document(sol: Solution, command: str) -> dict[str, Any]:
    """The document `convcalc conv|deconv|pool --target N --format json` prints."""
    s = sol.settings
    return {
        "convcalc_schema": SCHEMA_VERSION,
        "command": command,
        "solve": "padding",
        "layer": {
            "op": s.kind,
            "kernel": list(s.kernel),
            "stride": list(s.stride),
            "dilation": list(s.dilation),
            "ceil_mode": s.ceil_mode,
        },
        "input": shape_json(Shape(s.input.channels, s.input.spatial)),
        "target": [ax.target for ax in sol.axes],
        "solved": sol.solved,
        "axes": [
            {
                "axis": ax.axis,
                "input": ax.input_size,
                "target": ax.target,
                "settings": [_setting_json(st) for st in ax.exact],
                "unlisted": ax.unlisted,
                "nearest_below": _setting_json(ax.below),
                "nearest_above": _setting_json(ax.above),
                "asymmetric_padding": None if ax.asymmetric is None else list(ax.asymmetric),
            }
            for ax in sol.axes
        ],
    }
