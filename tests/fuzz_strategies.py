"""Hypothesis strategies for the fuzz suite (tests/test_fuzz.py): random YAML documents, mutations of the
bundled configs, and random command-line values.

The default ranges keep clear of the inputs known to hang or exhaust memory until their fixes land
(kernels, strides and sizes of 10⁹ and more, ints of 4300+ digits, deep expressions): numbers stay within
`BOUND` = 10⁶. `CONVCALC_FUZZ_FULL=1` lifts the bounds (huge ints up to 5000 digits, deep nesting).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

from convcalc.format.blocks import CALL_FIELDS
from convcalc.ops import registry

#: Every range (huge ints, nesting, expression depth) in full, not only those known to be handled today.
FULL = os.environ.get("CONVCALC_FUZZ_FULL", "") not in ("", "0")
#: The largest magnitude of a generated number in a stack file in the default profile.
BOUND = 10**6
#: The calculators' kernel, stride, dilation and output padding (the closed forms and named bounds of
#: tests/test_limits.py answer or refuse these within seconds).
GEOMETRY_BOUND = 10**9
#: The calculators' input sizes and --target.
SIZE_BOUND = 10**12
#: Digits of the largest huge int (Python refuses int <-> str beyond 4300 digits by default).
HUGE_DIGITS = 5000 if FULL else 6
#: How deep generated values and expressions nest.
DEEP = 200 if FULL else 20

CONFIGS = sorted((Path(__file__).resolve().parent.parent / "configs").glob("*.yaml"))
CONFIG_TEXT = {p.name: p.read_text(encoding="utf-8") for p in CONFIGS}
CONFIG_DATA: dict[str, Any] = {name: yaml.load(text, Loader=yaml.CSafeLoader) for name, text in CONFIG_TEXT.items()}

OP_NAMES = sorted(registry.OPS)
ALIAS_NAMES = sorted(registry.ALIASES)
FIELD_NAMES = sorted({f.name for name in OP_NAMES for f in registry.OPS[name].fields})
TOP_KEYS = ("name", "description", "version", "input", "blocks", "layers", "expect", "ignore")
LAYER_KEYS = ("op", "name", "from", *CALL_FIELDS)

#: Strings that mean something to YAML, the format or a terminal.
SPECIAL_STRINGS = (
    "",
    " ",
    "same",
    "valid",
    "full",
    "1e3",
    "3.0",
    "0x10",
    "0o7",
    "1_000",
    "~",
    "null",
    "yes",
    "no",
    "on",
    ".inf",
    "-.inf",
    ".nan",
    "3,4",
    "3x4",
    "${",
    "}",
    "${out}",
    "${index}",
    "${x + 1}",
    "${1 // 0}",
    "${2 ** 100}",
    "a\nb",
    "tab\there",
    "\u202eevil",
    "\x00",
    "\x1b[31mred",
    "ü",
    "名前",
    "😀",
    "\ufeff",
    "-",
    "#",
    "&a",
    "*a",
    "!!python/object:os.system",
    "conv1",
    "input",
)


def ints(bound: int = BOUND) -> st.SearchStrategy[int]:
    """Integers a fuzz may use: small ones often, up to ±`bound`, 10**k (k < HUGE_DIGITS) and its negation."""
    huge = st.integers(0, HUGE_DIGITS - 1).flatmap(lambda k: st.sampled_from([10**k, -(10**k), 10**k - 1, 10**k + 1]))
    return st.one_of(
        st.integers(-2, 8), st.integers(-bound, bound), huge, st.sampled_from([2**31, 2**63, -(2**63)])
    ).filter(lambda n: FULL or abs(n) <= bound)


def texts() -> st.SearchStrategy[str]:
    """Strings: the special ones, short unicode text, identifiers."""
    return st.one_of(
        st.sampled_from(SPECIAL_STRINGS),
        st.text(max_size=12),
        st.from_regex(r"[A-Za-z_][A-Za-z0-9_.]{0,10}", fullmatch=True),
    )


def scalars() -> st.SearchStrategy[Any]:
    """Any YAML scalar: ints, floats (NaN and infinities too), strings, booleans, null."""
    return st.one_of(
        ints(),
        st.floats(allow_nan=True, allow_infinity=True),
        texts(),
        st.booleans(),
        st.none(),
    )


def values(max_leaves: int = 8) -> st.SearchStrategy[Any]:
    """Any YAML value: scalars, lists and mappings of them, a few levels deep."""
    return st.recursive(
        scalars(),
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(st.one_of(texts(), st.sampled_from(FIELD_NAMES + list(LAYER_KEYS))), inner, max_size=4),
        ),
        max_leaves=max_leaves,
    )


def nested(value: Any, depth: int, kind: str) -> Any:
    """`value` wrapped `depth` times in one-element lists (kind "list") or mappings (kind "map")."""
    for _ in range(depth):
        value = [value] if kind == "list" else {"x": value}
    return value


# ---------------------------------------------------------------------------------------------------
# Random stack documents: plausible top level and layers of real ops with plausible or random fields.


def per_axis(rank: int, element: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(element, st.lists(element, min_size=max(rank - 1, 0), max_size=rank + 1))


def field_value(field: str, rank: int) -> st.SearchStrategy[Any]:
    """A value for `field`: mostly one of the right kind (small, per axis), sometimes anything."""
    small = st.integers(0, 5)
    plausible: dict[str, st.SearchStrategy[Any]] = {
        "kernel": per_axis(rank, st.integers(1, 5)),
        "stride": per_axis(rank, st.integers(1, 4)),
        "dilation": per_axis(rank, st.integers(1, 3)),
        "padding": st.one_of(
            per_axis(rank, small),
            st.sampled_from(["same", "valid", "full"]),
            st.lists(st.lists(small, min_size=2, max_size=2), min_size=rank, max_size=rank),
        ),
        "output_padding": per_axis(rank, st.integers(0, 2)),
        "out": st.integers(1, 16),
        "groups": st.integers(1, 4),
        "size": per_axis(rank, st.integers(1, 8)),
        "scale": per_axis(rank, st.one_of(st.integers(1, 4), st.floats(0.25, 4))),
        "factor": st.integers(1, 3),
        "heads": st.integers(1, 4),
        "chunks": st.integers(1, 4),
        "sizes": st.lists(st.integers(1, 4), min_size=1, max_size=3),
        "channels": st.lists(st.integers(0, 8), min_size=2, max_size=2),
        "mode": st.sampled_from(["nearest", "bilinear", "linear", "bicubic", "trilinear", "constant", "reflect"]),
        "padding_mode": st.sampled_from(["zeros", "reflect", "replicate", "circular"]),
    }
    right = plausible.get(field, st.one_of(st.booleans(), st.floats(0, 2), st.integers(0, 3)))
    return st.one_of(right, right, values(max_leaves=4))


@st.composite
def random_layer(draw: st.DrawFn, rank: int, names: list[str]) -> dict[str, Any]:
    op = draw(st.one_of(st.sampled_from(OP_NAMES), st.sampled_from(ALIAS_NAMES), texts()))
    own = [f.name for f in registry.OPS[op].fields] if op in registry.OPS else FIELD_NAMES
    layer: dict[str, Any] = {}
    if draw(st.integers(0, 9)) > 0:
        layer["op"] = op
    for key in draw(st.lists(st.sampled_from(own), max_size=4, unique=True)) if own else []:
        layer[key] = draw(field_value(key, rank))
    if draw(st.booleans()):
        layer["name"] = draw(st.one_of(st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True), texts()))
    if names and draw(st.integers(0, 3)) == 0:
        layer["from"] = draw(st.one_of(st.sampled_from(names), st.lists(st.sampled_from(names), max_size=3), texts()))
    if draw(st.integers(0, 5)) == 0:
        layer[draw(st.one_of(st.sampled_from(FIELD_NAMES + list(LAYER_KEYS)), texts()))] = draw(values(4))
    return layer


@st.composite
def random_stack(draw: st.DrawFn) -> dict[str, Any]:
    """A stack document: often nearly valid (an input shape, layers of real ops), never guaranteed valid."""
    rank = draw(st.integers(1, 3))
    doc: dict[str, Any] = {}
    if draw(st.integers(0, 9)) > 0:
        shape = draw(st.lists(st.integers(1, 40), min_size=rank + 1, max_size=rank + 1))
        doc["input"] = shape if draw(st.integers(0, 4)) > 0 else draw(values(4))
    layers: list[Any] = []
    names: list[str] = []
    for _ in range(draw(st.integers(0, 6))):
        layer = draw(random_layer(rank, names))
        if isinstance(layer.get("name"), str):
            names.append(layer["name"])
        layers.append(layer)
    if draw(st.integers(0, 9)) > 0:
        doc["layers"] = layers if draw(st.integers(0, 6)) > 0 else draw(values(4))
    for key in draw(st.lists(st.sampled_from(TOP_KEYS), max_size=2, unique=True)):
        doc.setdefault(key, draw(values(4)))
    return doc


# ---------------------------------------------------------------------------------------------------
# Mutations of the bundled configs.

Path_ = tuple[Any, ...]


def paths(node: Any, prefix: Path_ = (), above: frozenset[int] = frozenset()) -> list[Path_]:
    """Every path (keys and indices) to a node below `node`, the root excluded; an alias of a node
    above (a cycle) is a path but is not followed."""
    found: list[Path_] = []
    if id(node) in above:
        return found
    above = above | {id(node)}
    items: list[tuple[Any, Any]] = []
    if isinstance(node, dict):
        items = list(node.items())
    elif isinstance(node, list):
        items = list(enumerate(node))
    for key, child in items:
        found.append((*prefix, key))
        found.extend(paths(child, (*prefix, key), above))
    return found


def get(node: Any, path: Path_) -> Any:
    for key in path:
        node = node[key]
    return node


def copy(node: Any, above: frozenset[int] = frozenset()) -> Any:
    """A deep copy of YAML data (shared nodes become separate copies; a cycle stays an alias)."""
    if id(node) in above:
        return node
    above = above | {id(node)}
    if isinstance(node, dict):
        return {k: copy(v, above) for k, v in node.items()}
    if isinstance(node, list):
        return [copy(v, above) for v in node]
    return node


@dataclass(frozen=True)
class Mutant:
    """A mutated stack file: its text, what was done (for the failure report) and where."""

    text: str
    steps: tuple[str, ...]
    #: The paths changed; a path into `layers` starts ("layers", index, ...).
    where: tuple[Path_, ...]

    @property
    def in_layers(self) -> bool:
        return any(len(p) >= 2 and p[0] == "layers" for p in self.where)


MERGE_KEY = "__merge__"


def dump(doc: Any, flow: bool) -> str:
    """YAML text of `doc`, with real merge keys where `doc` holds MERGE_KEY (shared nodes become aliases)."""
    text = yaml.dump(
        doc, Dumper=yaml.CSafeDumper, default_flow_style=flow, allow_unicode=True, sort_keys=False, width=100
    )
    return text.replace(f"{MERGE_KEY}:", "<<:")


#: The mutations of one node, by name: (doc, path, draw) -> None, changing doc in place.
Mutation = Callable[[Any, Path_, st.DrawFn], None]


def _set(doc: Any, path: Path_, value: Any) -> None:
    get(doc, path[:-1])[path[-1]] = value


def _replace(doc: Any, path: Path_, draw: st.DrawFn) -> None:
    _set(doc, path, draw(values()))


def _number(doc: Any, path: Path_, draw: st.DrawFn) -> None:
    _set(doc, path, draw(st.one_of(ints(), st.floats(allow_nan=True, allow_infinity=True))))


def _delete(doc: Any, path: Path_, draw: st.DrawFn) -> None:
    parent = get(doc, path[:-1])
    del parent[path[-1]]


def _add_key(doc: Any, path: Path_, draw: st.DrawFn) -> None:
    node = get(doc, path)
    if isinstance(node, dict):
        node[draw(st.one_of(st.sampled_from(FIELD_NAMES + list(LAYER_KEYS) + list(TOP_KEYS)), texts()))] = draw(
            values()
        )
    elif isinstance(node, list):
        node.insert(draw(st.integers(0, len(node))), draw(values()))
    else:
        _replace(doc, path, draw)


def _rename(doc: Any, path: Path_, draw: st.DrawFn) -> None:
    """A string value (a layer name, a `from`, an op) replaced by unicode or special text."""
    _set(doc, path, draw(texts()))


def _nest(doc: Any, path: Path_, draw: st.DrawFn) -> None:
    _set(doc, path, nested(get(doc, path), draw(st.integers(1, DEEP)), draw(st.sampled_from(["list", "map"]))))


def _duplicate(doc: Any, path: Path_, draw: st.DrawFn) -> None:
    """A list element twice (a layer twice: duplicate names), or a mapping's value under a second key."""
    parent = get(doc, path[:-1])
    if isinstance(parent, list):
        parent.insert(path[-1], copy(parent[path[-1]]))
    else:
        parent[draw(texts())] = copy(parent[path[-1]])


def _alias(doc: Any, path: Path_, draw: st.DrawFn) -> None:
    """The node becomes an alias of another node of the document (dumped as &anchor / *alias)."""
    others = [p for p in paths(doc) if p[: len(path)] != path and path[: len(p)] != p]
    if others:
        _set(doc, path, get(doc, draw(st.sampled_from(others))))


def _merge(doc: Any, path: Path_, draw: st.DrawFn) -> None:
    """A mapping gets a merge key (`<<: *other`, or a list of them) naming other mappings of the document."""
    node = get(doc, path)
    maps = [p for p in paths(doc) if isinstance(get(doc, p), dict) and p[: len(path)] != path]
    if not isinstance(node, dict) or not maps:
        return
    chosen = draw(st.lists(st.sampled_from(maps), min_size=1, max_size=3))
    sources = [get(doc, p) for p in chosen]
    node[MERGE_KEY] = sources[0] if len(sources) == 1 else sources


MUTATIONS: dict[str, Mutation] = {
    "replace": _replace,
    "number": _number,
    "delete": _delete,
    "add": _add_key,
    "rename": _rename,
    "nest": _nest,
    "duplicate": _duplicate,
    "alias": _alias,
    "merge": _merge,
}


def expression(names: list[str], depth: int) -> st.SearchStrategy[str]:
    """A `${...}` expression body: integers, parameter names, `index`, operators, parentheses."""
    atom = st.one_of(
        st.integers(0, 9).map(str),
        ints().map(lambda n: str(abs(n))),
        st.sampled_from([*names, "index", "true", "false", "nope", "None", "__import__"]),
    )
    if depth <= 0:
        return atom
    inner = expression(names, depth - 1)
    ops = ["+", "-", "*", "//", "%", "**", "/", "==", "!=", "<", "<=", ">", ">=", "and", "or"]
    return st.one_of(
        atom,
        st.tuples(inner, st.sampled_from(ops), inner).map(" ".join),
        inner.map(lambda e: f"({e})"),
        inner.map(lambda e: f"not {e}"),
        inner.map(lambda e: f"-{e}"),
        st.sampled_from(["(", ")", "1 +", "$", "{}", "1..2", "f(1)", "x[0]", "'a'"]),
    )


@st.composite
def _expression_mutation(draw: st.DrawFn, doc: Any) -> Path_ | None:
    """A value under `blocks:` (or a block use's `with:`/`when:`) replaced by a random `${...}` string."""
    blocks = doc.get("blocks") if isinstance(doc, dict) else None
    if not isinstance(blocks, dict) or not blocks:
        return None
    names = [k for b in blocks.values() if isinstance(b, dict) for k in (b.get("params") or {})]
    targets = [("blocks", *p) for p in paths(blocks) if not isinstance(get(blocks, p), dict | list)]
    targets += [p for p in paths(doc.get("layers", [])) if len(p) >= 2 and p[1] in ("with", "when", "repeat")]
    targets = [p if p[0] == "blocks" else ("layers", *p) for p in targets]
    if not targets:
        return None
    path = draw(st.sampled_from(targets))
    body = draw(expression(names, draw(st.integers(0, 4 if not FULL else DEEP))))
    text = draw(st.sampled_from(["${%s}", "${%s}_x", "a${%s}b${index}", "${%s"])) % body
    _set(doc, path, text)
    return path


def _text_mutation(text: str, draw: st.DrawFn) -> tuple[str, str]:
    """A change to the YAML text itself: a duplicate key, a tab, CRLF, a cut, an inserted character."""
    lines = text.split("\n")
    keyed = [i for i, line in enumerate(lines) if re.match(r"^\s*(- )?[\w.]+: ", line)]
    kind = draw(st.sampled_from(["duplicate-key", "tab", "crlf", "cut", "insert", "bom"]))
    if kind == "duplicate-key" and keyed:
        i = draw(st.sampled_from(keyed))
        m = re.match(r"^(\s*)(- )?([\w.]+): ", lines[i])
        assert m is not None
        indent = m.group(1) + ("  " if m.group(2) else "")
        lines.insert(i + 1, f"{indent}{m.group(3)}: {draw(st.sampled_from(['1', 'x', '[1, 2]', 'null']))}")
        return "\n".join(lines), kind
    if kind == "tab" and keyed:
        i = draw(st.sampled_from(keyed))
        lines[i] = "\t" + lines[i].lstrip(" ")
        return "\n".join(lines), kind
    if kind == "crlf":
        return text.replace("\n", "\r\n"), kind
    if kind == "bom":
        return "\ufeff" + text, kind
    at = draw(st.integers(0, len(text)))
    if kind == "cut":
        return text[:at], kind
    char = draw(st.sampled_from(list(":-[]{},&*!|>'\"%@`#?\t\n\x00\x7f\u2028\ufffd")))
    return text[:at] + char + text[at:], "insert"


@st.composite
def mutated_config(draw: st.DrawFn, names: list[str] | None = None, text_level: bool = True) -> Mutant:
    """One bundled config with one to three mutations of its data (see MUTATIONS), perhaps a `${...}`
    expression in a block, and perhaps a change to its text."""
    name = draw(st.sampled_from(names or sorted(CONFIG_DATA)))
    doc = copy(CONFIG_DATA[name])
    steps = [name]
    where: list[Path_] = []
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.integers(0, 4)) == 0:
            path = draw(_expression_mutation(doc))
            if path is not None:
                steps.append(f"expression at {path}")
                where.append(path)
                continue
        candidates = paths(doc)
        if not candidates:
            break
        # Layers hold most of a file: a quarter of the mutations go to the top level and the blocks.
        layer_paths = [p for p in candidates if p[0] == "layers" and len(p) >= 2]
        pool = layer_paths if layer_paths and draw(st.integers(0, 3)) > 0 else candidates
        path = draw(st.sampled_from(pool))
        kind = draw(st.sampled_from(sorted(MUTATIONS)))
        MUTATIONS[kind](doc, path, draw)
        steps.append(f"{kind} at {path}")
        where.append(path)
    text = dump(doc, flow=draw(st.booleans()))
    if text_level and draw(st.integers(0, 4)) == 0:
        text, kind = _text_mutation(text, draw)
        steps.append(kind)
    return Mutant(text, tuple(steps), tuple(where))


@st.composite
def random_yaml_text(draw: st.DrawFn) -> str:
    """Random YAML text: a random value dumped, a random stack dumped, or lines of YAML-ish tokens."""
    kind = draw(st.sampled_from(["value", "stack", "tokens"]))
    if kind == "value":
        return dump(draw(values(12)), flow=draw(st.booleans()))
    if kind == "stack":
        return dump(draw(random_stack()), flow=draw(st.booleans()))
    pieces = st.sampled_from(
        [
            "input: [3, 8, 8]\n",
            "layers:\n",
            "  - ",
            "op: conv",
            "{op: relu}",
            "kernel: 3",
            "&a ",
            "*a",
            "<<: *a",
            "- ",
            "  ",
            "\n",
            ": ",
            "[",
            "]",
            "{",
            "}",
            ", ",
            "!!str ",
            "!!binary ",
            "? ",
            "|\n",
            ">-\n",
            "---\n",
            "...\n",
            "%YAML 1.1\n",
            "# c\n",
            '"\\u0000"',
            "'x'",
            "${a}",
            "blocks:\n",
            "\t",
        ]
    )
    return "".join(draw(st.lists(st.one_of(pieces, texts()), max_size=30)))


# ---------------------------------------------------------------------------------------------------
# Command-line values.


def int_text(bound: int = BOUND) -> st.SearchStrategy[str]:
    """An option's integer, as typed: plain, signed, huge, a float, scientific, with spaces, junk."""
    exp = st.integers(0, HUGE_DIGITS + 1 if FULL else len(str(bound)) - 1)
    return st.one_of(
        ints(bound).map(str),
        ints(bound).map(lambda n: f"+{n}"),
        st.floats(allow_nan=True, allow_infinity=True).filter(lambda x: FULL or not abs(x) > bound).map(repr),
        st.tuples(st.integers(1, 9), exp).map(lambda t: f"{t[0]}e{t[1]}"),
        st.tuples(st.integers(1, 9), exp).map(lambda t: f"{t[0]}E-{t[1]}"),
        st.sampled_from(["", " ", " 3", "3 ", "0x10", "1_000", "٣", "３", "3.", ".5", "-0", "nan", "inf", "1/2"]),
        texts(),
    )


def axes_text(bound: int = BOUND) -> st.SearchStrategy[str]:
    """A per-axis option value: one integer, or `a,b` / `a,b,c` (and mistakes: `3x4`, `3,`, `,`)."""
    one = int_text(bound)
    return st.one_of(
        one,
        st.lists(st.integers(0, 8).map(str), min_size=2, max_size=4).map(",".join),
        st.lists(one, min_size=2, max_size=3).map(",".join),
        st.lists(st.integers(0, 8).map(str), min_size=2, max_size=3).map("x".join),
        st.sampled_from(["3,", ",", ",,", "3,,4", "[3,4]", "(3, 4)", "3;4", "3 4"]),
    )


def padding_text(bound: int = BOUND) -> st.SearchStrategy[str]:
    return st.one_of(axes_text(bound), st.sampled_from(["same", "valid", "full", "SAME", "same,1", "1-2", "1:2"]))


def shape_text(bound: int = BOUND) -> st.SearchStrategy[str]:
    """An --input shape: CxHxW-like, with random sizes and separators."""
    n = st.one_of(st.integers(0, 64).map(str), int_text(bound))
    return st.one_of(
        st.lists(n, min_size=1, max_size=5).map("x".join),
        st.lists(st.integers(1, 32).map(str), min_size=2, max_size=4).map("x".join),
        st.lists(n, min_size=1, max_size=4).map(",".join),
        st.sampled_from(["", "x", "3x", "x3", "3×8×8", "3X8X8", "3 x 8 x 8"]),
        texts(),
    )


def size_text() -> st.SearchStrategy[str]:
    """A --max-memory size: bytes with a unit, and junk."""
    number = st.one_of(st.integers(0, 10**6).map(str), st.floats(0, 1e6).map(str), int_text())
    unit = st.sampled_from(["", "B", "K", "KB", "KiB", "M", "MB", "MiB", "G", "GB", "GiB", "T", "x", " MB"])
    return st.one_of(st.tuples(number, unit).map("".join), texts())
