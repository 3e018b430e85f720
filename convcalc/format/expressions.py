"""The expressions of block files: `${expr}` references in string values (rules in convcalc.format.blocks).

Integer arithmetic only, parsed here (never eval): `+ - * // % **`, parentheses, comparisons
`== != < <= > >=`, `and or not`, `true`, `false`, parameter names and `index`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from convcalc.format.limits import MAX_EXPRESSION_CHARS, MAX_EXPRESSION_DEPTH, shorten
from convcalc.stack.fields import did_you_mean

__all__ = ["ExprError", "Opaque", "Value", "evaluate", "has_refs", "substitute"]

#: Integers in expressions stay within this magnitude (no 9**9**9).
_MAX_INT: Final = 2**62

_REF: Final = re.compile(r"\$\{([^{}]*)\}")
_SPACE: Final = re.compile(r"\s*\Z")
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
        self.shown = shorten(text)  # in messages: a 2 MB expression is not echoed in full
        self.env = env
        self.depth = 0
        if len(text) > MAX_EXPRESSION_CHARS:
            raise ExprError(
                f"'{self.shown}' is longer than {MAX_EXPRESSION_CHARS:,} characters, the longest expression "
                "convcalc reads"
            )
        self.tokens: list[str] = []
        pos = 0
        # One pass over the text (a 2 MB expression is read in linear time).
        while pos < len(text):
            if _SPACE.match(text, pos):
                break
            match = _TOKEN.match(text, pos)
            if match is None or match.end() == pos:
                raise ExprError(f"unexpected '{text[pos:].strip()[0]}' in '{self.shown}'")
            self.tokens.append(match.group(match.lastindex or 0))
            pos = match.end()
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise ExprError(f"'{self.shown}' ends too early")
        self.pos += 1
        return token

    def parse(self) -> Value:
        if not self.tokens:
            raise ExprError("empty ${}: write a parameter name or an expression, e.g. ${out * 4}")
        value = self.disjunction()
        if self.peek() is not None:
            raise ExprError(f"unexpected '{self.peek()}' in '{self.shown}'")
        return value

    def _nest(self) -> None:
        """Enter one more parenthesis, sign or `not` (the parser recurses on each: bounded)."""
        self.depth += 1
        if self.depth > MAX_EXPRESSION_DEPTH:
            raise ExprError(
                f"'{self.shown}' nests parentheses, signs, 'not' or '**' more than {MAX_EXPRESSION_DEPTH} deep"
            )

    def _bool(self, value: Value, op: str) -> bool:
        if not isinstance(value, bool):
            raise ExprError(f"'{op}' needs true or false, got {_describe(value)} in '{self.shown}'")
        return value

    def _int(self, value: Value, op: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ExprError(f"'{op}' needs integers, got {_describe(value)} in '{self.shown}'")
        return value

    def _bounded(self, value: int) -> int:
        if abs(value) > _MAX_INT:
            raise ExprError(f"'{self.shown}' is too large")
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
            self._nest()
            value = not self._bool(self.negation(), "not")
            self.depth -= 1
            return value
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
                raise ExprError(f"use // for integer division in '{self.shown}' (expressions are integers)")
            a, b = self._int(value, op), self._int(self.unary(), op)
            if op != "*" and b == 0:
                raise ExprError(f"division by zero in '{self.shown}'")
            value = self._bounded(a * b if op == "*" else a // b if op == "//" else a % b)
        return value

    def unary(self) -> Value:
        sign = self.peek()
        if sign in ("-", "+"):
            self.take()
            self._nest()
            value = self._int(self.unary(), sign)
            self.depth -= 1
            return -value if sign == "-" else value
        return self.power()

    def power(self) -> Value:
        base = self.atom()
        if self.peek() != "**":
            return base
        self.take()
        self._nest()
        a, b = self._int(base, "**"), self._int(self.unary(), "**")
        self.depth -= 1
        if b < 0 or (b > 64 and abs(a) > 1):
            raise ExprError(f"'**' needs an exponent in 0..64, got {b} in '{self.shown}'")
        return self._bounded(a**b)

    def atom(self) -> Value:
        token = self.take()
        if token == "(":
            self._nest()
            value = self.disjunction()
            if self.take() != ")":
                raise ExprError(f"missing ')' in '{self.shown}'")
            self.depth -= 1
            return value
        if token.isdigit():
            return self._bounded(int(token))
        if token in ("true", "false"):
            return token == "true"
        if token[0].isalpha() or token[0] == "_":
            if token not in self.env:
                names = ", ".join(sorted(self.env)) or "none"
                hint = did_you_mean(token, list(self.env))
                raise ExprError(f"unknown parameter '{token}' in '{self.shown}'{hint} Parameters here: {names}")
            value = self.env[token]
            if isinstance(value, Opaque) and len(self.tokens) > 1:
                raise ExprError(f"'{token}' is {value.kind}: use it alone, as ${{{token}}}")
            return value
        raise ExprError(f"unexpected '{token}' in '{self.shown}'")


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
        raise ExprError(f"unclosed or nested '${{' in '{shorten(text)}': write ${{name}} or ${{expression}}")
    return _REF.sub(lambda m: _text(evaluate(m.group(1), env), m.group(1)), text)
