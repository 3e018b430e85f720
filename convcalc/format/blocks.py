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
  its input instead (a disabled downsample is an identity shortcut).
* A string value that is exactly `${expr}` becomes the expression's value (an int or a bool, or a
  parameter's value as written, list or not); `${expr}` inside a longer string is replaced by text.
  Expressions are integer arithmetic only, parsed here (never eval): `+ - * // % **`, parentheses,
  comparisons `== != < <= > >=`, `and or not`, `true`, `false`, parameter names and `index`.

The loader (the only YAML reader) walks the file with these rules; `dump_stack` writes any parsed
stack back as plain version-1 YAML (what `convcalc expand` prints).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from convcalc.ops import registry
from convcalc.stack.spec import INPUT_NAME, LayerSpec, StackSpec

__all__ = [
    "BLOCK_FIELDS",
    "CALL_FIELDS",
    "INDEX_NAME",
    "ExprError",
    "Opaque",
    "Scope",
    "dump_stack",
    "evaluate",
    "has_refs",
    "instance_prefix",
    "qualify",
    "substitute",
]

#: Keys of a block definition under `blocks:`.
BLOCK_FIELDS: Final = ("params", "layers", "output")
#: Keys of a layer entry that uses a block.
CALL_FIELDS: Final = ("block", "name", "from", "repeat", "with", "first")
#: The parameter every instance has: its 0-based number.
INDEX_NAME: Final = "index"
#: An expansion larger than this is refused (nested repeats multiply).
MAX_LAYERS: Final = 20_000
#: Integers in expressions stay within this magnitude (no 9**9**9).
_MAX_INT: Final = 2**62

_REF: Final = re.compile(r"\$\{([^{}]*)\}")
_TOKEN: Final = re.compile(r"\s*(?:(\d+)|([A-Za-z_][A-Za-z0-9_]*)|(\*\*|//|==|!=|<=|>=|[-+*%<>()/]))")


class ExprError(ValueError):
    """A `${...}` expression that cannot be evaluated; the message says why, for the user."""


@dataclass(frozen=True)
class Opaque:
    """A parameter value expressions cannot compute with (a list or a mapping); `${name}` alone copies it."""

    kind: str  # "a list", "a mapping"


Value = int | bool | str | float | None | Opaque


def has_refs(text: str) -> bool:
    """True when `text` contains a `${...}` reference.

    >>> has_refs("${out * 4}"), has_refs("conv1")
    (True, False)
    """
    return "${" in text


def _describe(value: Value) -> str:
    if isinstance(value, Opaque):
        return value.kind
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if value is None:
        return "null"
    return "a string" if isinstance(value, str) else "a number"


class _Parser:
    """Recursive descent over the token list, evaluating as it goes (expressions have no side effects)."""

    def __init__(self, text: str, env: Mapping[str, Value]) -> None:
        self.text = text
        self.env = env
        self.tokens: list[str] = []
        pos = 0
        while pos < len(text):
            if not text[pos:].strip():
                break
            match = _TOKEN.match(text, pos)
            if match is None or match.end() == pos:
                raise ExprError(f"unexpected '{text[pos:].strip()[0]}' in '{text}'")
            self.tokens.append(match.group(match.lastindex or 0))
            pos = match.end()
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise ExprError(f"'{self.text}' ends too early")
        self.pos += 1
        return token

    def parse(self) -> Value:
        if not self.tokens:
            raise ExprError("empty ${}: write a parameter name or an expression, e.g. ${out * 4}")
        value = self.disjunction()
        if self.peek() is not None:
            raise ExprError(f"unexpected '{self.peek()}' in '{self.text}'")
        return value

    def _bool(self, value: Value, op: str) -> bool:
        if not isinstance(value, bool):
            raise ExprError(f"'{op}' needs true or false, got {_describe(value)} in '{self.text}'")
        return value

    def _int(self, value: Value, op: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ExprError(f"'{op}' needs integers, got {_describe(value)} in '{self.text}'")
        return value

    def _bounded(self, value: int) -> int:
        if abs(value) > _MAX_INT:
            raise ExprError(f"'{self.text}' is too large")
        return value

    def disjunction(self) -> Value:
        value = self.conjunction()
        while self.peek() == "or":
            self.take()
            right = self.conjunction()
            value = self._bool(value, "or") or self._bool(right, "or")
        return value

    def conjunction(self) -> Value:
        value = self.negation()
        while self.peek() == "and":
            self.take()
            right = self.negation()
            value = self._bool(value, "and") and self._bool(right, "and")
        return value

    def negation(self) -> Value:
        if self.peek() == "not":
            self.take()
            return not self._bool(self.negation(), "not")
        return self.comparison()

    def comparison(self) -> Value:
        left = self.sum()
        op = self.peek()
        if op not in ("==", "!=", "<", "<=", ">", ">="):
            return left
        self.take()
        right = self.sum()
        if op == "==":
            return left == right and type(left) is type(right)
        if op == "!=":
            return not (left == right and type(left) is type(right))
        a, b = self._int(left, op), self._int(right, op)
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]

    def sum(self) -> Value:
        value = self.product()
        while self.peek() in ("+", "-"):
            op = self.take()
            a, b = self._int(value, op), self._int(self.product(), op)
            value = self._bounded(a + b if op == "+" else a - b)
        return value

    def product(self) -> Value:
        value = self.unary()
        while self.peek() in ("*", "//", "%", "/"):
            op = self.take()
            if op == "/":
                raise ExprError(f"use // for integer division in '{self.text}' (expressions are integers)")
            a, b = self._int(value, op), self._int(self.unary(), op)
            if op != "*" and b == 0:
                raise ExprError(f"division by zero in '{self.text}'")
            value = self._bounded(a * b if op == "*" else a // b if op == "//" else a % b)
        return value

    def unary(self) -> Value:
        if self.peek() == "-":
            self.take()
            return -self._int(self.unary(), "-")
        if self.peek() == "+":
            self.take()
            return self._int(self.unary(), "+")
        return self.power()

    def power(self) -> Value:
        base = self.atom()
        if self.peek() != "**":
            return base
        self.take()
        a, b = self._int(base, "**"), self._int(self.unary(), "**")
        if b < 0 or (b > 64 and abs(a) > 1):
            raise ExprError(f"'**' needs an exponent in 0..64, got {b} in '{self.text}'")
        return self._bounded(a**b)

    def atom(self) -> Value:
        token = self.take()
        if token == "(":
            value = self.disjunction()
            if self.take() != ")":
                raise ExprError(f"missing ')' in '{self.text}'")
            return value
        if token.isdigit():
            return self._bounded(int(token))
        if token in ("true", "false"):
            return token == "true"
        if token[0].isalpha() or token[0] == "_":
            if token not in self.env:
                names = ", ".join(sorted(self.env)) or "none"
                raise ExprError(f"unknown parameter '{token}' in '{self.text}'; parameters here: {names}")
            value = self.env[token]
            if isinstance(value, Opaque) and len(self.tokens) > 1:
                raise ExprError(f"'{token}' is {value.kind}: use it alone, as ${{{token}}}")
            return value
        raise ExprError(f"unexpected '{token}' in '{self.text}'")


def evaluate(text: str, env: Mapping[str, Value]) -> Value:
    """The value of one expression (the text between `${` and `}`) with parameters `env`.

    >>> evaluate("out * 4", {"out": 64}), evaluate("2 ** index", {"index": 3})
    (256, 8)
    >>> evaluate("index == 0 and down", {"index": 0, "down": True})
    True
    """
    return _Parser(text, env).parse()


def _text(value: Value, expr: str) -> str:
    if isinstance(value, Opaque):
        raise ExprError(f"'{expr}' is {value.kind} and cannot be part of a longer string")
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


def substitute(text: str, env: Mapping[str, Value]) -> Value:
    """Replace the `${...}` references in a string value.

    Exactly one reference and nothing else: the expression's value, typed. Otherwise the string
    with each reference replaced by its value as text.

    >>> substitute("${out * 4}", {"out": 64})
    256
    >>> substitute("conv${index}", {"index": 2})
    'conv2'
    """
    whole = _REF.fullmatch(text.strip())
    if whole is not None:
        return evaluate(whole.group(1), env)
    rest = _REF.sub("", text)
    if "${" in rest:
        raise ExprError(f"unclosed or nested '${{' in '{text}': write ${{name}} or ${{expression}}")
    return _REF.sub(lambda m: _text(evaluate(m.group(1), env), m.group(1)), text)


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


# --------------------------------------------------------------------------- writing plain YAML

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
    return "\n".join(lines) + "\n"
