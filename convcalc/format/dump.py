"""Writing a parsed stack back as plain version-1 YAML (no blocks): what `convcalc expand` prints."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Final

from convcalc.notation import fraction_text
from convcalc.ops import registry
from convcalc.stack.contracts import Bound, Expectation
from convcalc.stack.spec import INPUT_NAME, LayerSpec, StackSpec

__all__ = ["dump_stack"]


_PLAIN: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
# Plain words YAML 1.1 (PyYAML) would read as booleans or null.
_YAML_WORDS: Final = {"true", "false", "yes", "no", "on", "off", "null", "y", "n"}


def _string(text: str) -> str:
    if _PLAIN.fullmatch(text) and text.lower() not in _YAML_WORDS:
        return text
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar


def _scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        mantissa, _, exponent = text.partition("e")
        if "." not in mantissa:  # PyYAML reads 1e-05 as a string: it wants a dot
            mantissa += ".0"
        return f"{mantissa}e{exponent}" if exponent else mantissa
    return _string(str(value))


def _per_axis(values: tuple[object, ...]) -> str:
    if len(set(values)) == 1:
        return _scalar(values[0])
    return "[" + ", ".join(_scalar(v) for v in values) + "]"


def _padding(value: object) -> str:
    if isinstance(value, str):
        return _scalar(value)
    assert isinstance(value, tuple)
    if all(before == after for before, after in value) and len(set(value)) == 1:
        return _scalar(value[0][0])
    axes = [_scalar(b) if b == a else f"[{b}, {a}]" for b, a in value]
    return "[" + ", ".join(axes) + "]"


def _layer_line(layer: LayerSpec, previous: str) -> str:
    parts = [f"op: {layer.op}", f"name: {_string(layer.name)}"]
    if layer.inputs != (previous,):
        refs = [_string(ref) for ref in layer.inputs]
        parts.append(f"from: {refs[0]}" if len(refs) == 1 else f"from: [{', '.join(refs)}]")
    for fname in (f.name for f in registry.OPS[layer.op].fields):
        # Exactly the fields the file wrote; the rest take the same defaults when read back.
        if fname not in layer.field_locations:
            continue
        value = getattr(layer, fname)
        if fname == "padding":
            text = _padding(value)
        elif isinstance(value, tuple):
            text = _per_axis(value)
        else:
            text = _scalar(value)
        parts.append(f"{fname}: {text}")
    return "  - {" + ", ".join(parts) + "}"


def dump_stack(spec: StackSpec, comments: Mapping[str, str] | None = None, header: Sequence[str] = ()) -> str:
    """The stack as plain version-1 YAML (no blocks): one flow mapping per layer, `from` written
    only where it is not the layer above. Reading it back gives the same layers. `comments` gives
    layers a comment line above them (an imported layer's node), `header` the file's first comments."""
    lines = [f"# {line}" for line in header]
    if spec.file is not None and not header:
        lines.append(f"# {spec.file}, expanded by convcalc: {len(spec.layers)} layers")
    if spec.name is not None:
        lines.append(f"name: {_string(spec.name)}")
    description = getattr(spec, "description", None)
    if description is not None:
        lines.append(f"description: {json.dumps(description, ensure_ascii=False)}")
    lines.append("version: 1")
    sizes = ", ".join(_scalar(s) for s in spec.input.spatial)
    lines.append(f"input: [{spec.input.channels}, {sizes}]")
    lines.append("layers:")
    previous = INPUT_NAME
    for layer in spec.layers:
        if comments is not None and layer.name in comments:
            lines.append(f"  # {comments[layer.name]}")
        lines.append(_layer_line(layer, previous))
        previous = layer.name
    if spec.expect:
        lines.append("expect:")
        lines.extend(f"  - {{{_expectation(e)}}}" for e in spec.expect)
    if spec.ignore:
        entries = [
            _string(s.code) if s.layer is None else f"{{code: {s.code}, layer: {_string(s.layer)}}}"
            for s in spec.ignore
        ]
        lines.append(f"ignore: [{', '.join(entries)}]")
    return "\n".join(lines) + "\n"


def _bound(b: Bound) -> str:
    if b.min is not None and b.min == b.max:
        return str(b.min)
    ends = [f"{k}: {v}" for k, v in (("min", b.min), ("max", b.max)) if v is not None]
    return "{" + ", ".join(ends) + "}"


def _expectation(e: Expectation) -> str:
    """One `expect:` entry as a flow mapping that reads back to the same expectation."""
    parts: list[str] = []
    if e.layer is not None:
        parts.append(f"layer: {_string(e.layer)}")
    if e.at is not None:
        parts.append(f"at: [{', '.join(str(d) for d in (e.at.channels, *e.at.spatial))}]")
    if e.rf is not None:
        rf = [_bound(b) for b in e.rf]
        parts.append(f"rf: {rf[0] if len(rf) == 1 else '[' + ', '.join(rf) + ']'}")
    if e.jump is not None:
        jumps = [fraction_text(j) if j.denominator == 1 else f'"{fraction_text(j)}"' for j in e.jump]
        parts.append(f"jump: {jumps[0] if len(jumps) == 1 else '[' + ', '.join(jumps) + ']'}")
    if e.shape is not None:
        parts.append(f"shape: [{', '.join(_scalar(d) for d in e.shape)}]")
    for name in ("params", "macs"):
        bound = getattr(e, name)
        if bound is not None:
            parts.append(f"{name}: {_bound(bound)}")
    if e.forbid:
        parts.append(f"forbid: [{', '.join(e.forbid)}]")
    if e.accepts is not None:
        a = e.accepts
        parts.append(f"accepts: {{min: {a.min}, max: {a.max}, step: {a.step}}}")
    return ", ".join(parts)
