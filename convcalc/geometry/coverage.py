"""Exact path counts along one spatial axis: which input pixels really reach a unit, and by how many paths.

The linear skeleton of a stack (every kernel all ones, pooling summing its window, interpolation and
adaptive pooling with their own weights, `mul` as a sum, activations and normalisation the identity) maps
a one-hot unit back to the input: the value at input position p is the number of paths from p to the
unit (weighted by the interpolation weights, so an exact Fraction where they are fractional). Unlike the
receptive-field maps of `convcalc.geometry.receptive`, this follows the real borders: a tap in zero
padding brings nothing, one in reflect / replicate / circular padding brings the pixel it copies.

`interior` gives the same counts as if the input were unbounded (no border anywhere): the value of a unit
of each output phase away from the borders, which the `checkerboard-compound` diagnostic compares.

Each layer is a `Link` per axis; a stack is its links in file order (a layer reads only layers above it).
Pure Python integers and Fractions: exact, and enough for one axis at a time (an N-D map of a stack without
merges is the outer product of its axes' vectors).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from convcalc.geometry.receptive import Fill, Step, Transposed, Window, weighted_taps

#: A path count: an int, or an exact Fraction after interpolation or adaptive pooling.
Count = int | Fraction

LinkKind = Literal["step", "identity", "merge", "global"]


@dataclass(frozen=True)
class Link:
    """One layer along one axis.

    kind: "step" applies `step` to its one input; "identity" passes it through; "merge" sums its
    inputs unit by unit (an input of size 1 against a larger output is broadcast: every unit reads its
    one unit); "global" reads every unit of its input with weight 1 (flatten, linear: an all-ones
    linear layer sums every feature). `sizes` are the inputs' sizes along the axis and `size` the
    layer's (1 for an input or layer without spatial axes).
    """

    name: str
    inputs: tuple[str, ...]
    sizes: tuple[int, ...]
    size: int
    kind: LinkKind = "step"
    step: Step | None = None


#: The most tap visits (units × taps read per unit, summed over the layers of one axis) convcalc spends on
#: path counts; a stack and input size beyond it are refused (a few seconds of pure Python at most).
MAX_WORK = 20_000_000


def work(links: Sequence[Link]) -> int:
    """An upper bound on the tap visits (and list cells) `forward` and `paths_back` spend on `links`."""
    total = 0
    for link in links:
        reads = 1
        step = link.step
        if link.kind == "global":
            reads = max(link.sizes, default=1)
        elif link.kind == "merge":
            reads = len(link.sizes)
        elif isinstance(step, Window):
            reads = min(step.kernel, max(link.sizes, default=1))
        elif isinstance(step, Transposed):
            every = step.stride // math.gcd(step.dilation, step.stride)  # one tap in `every` reaches a unit
            reads = min(-(-step.kernel // every), max(link.sizes, default=1))
        elif step is not None:
            # Resampling reads a few pixels per unit, or a bin / an antialiased filter of `ratio` pixels.
            reads = max(math.ceil(2 * step.ratio) + 4, 4)
        total += link.size * (reads + 1) + sum(link.sizes)
    return total


def resolve(t: int, n: int, fill: Fill) -> int | None:
    """The input unit that position `t` of an input of `n` units holds (None: zero padding)."""
    if 0 <= t < n:
        return t
    if fill == "zeros":
        return None
    if fill == "replicate":
        return 0 if t < 0 else n - 1
    if fill == "circular":
        return t % n
    # reflect (PyTorch refuses a padding of n or more): -1 → 1, n → n − 2
    return -t if t < 0 else 2 * (n - 1) - t


def _taps(step: Step, u: int, n: int) -> list[tuple[int, Count]]:
    """Output unit `u`'s input units (after the fill) with their skeleton weights, for an input of n units."""
    if isinstance(step, Window):
        # Weight 1 per tap; integers only (this is the inner loop of long stacks). Only the taps inside the
        # input are walked: zero padding brings nothing, replicate padding brings the edge pixel once per
        # tap (lumped), and reflect / circular padding is below the input size (PyTorch's rule), so the
        # cost is O(n) whatever the kernel.
        start, d = u * step.stride - step.before, step.dilation
        first = max(-(start // d), 0)  # the first tap at t ≥ 0
        stop = min((n - 1 - start) // d + 1, step.kernel) if n - 1 >= start else 0  # taps at t ≤ n − 1
        stop = max(stop, first)
        out: list[tuple[int, Count]] = [(start + j * d, 1) for j in range(first, stop)]
        if step.fill == "zeros" or (first == 0 and stop == step.kernel):
            return out
        if step.fill == "replicate":
            if first:
                out.append((0, min(first, step.kernel)))
            if stop < step.kernel and stop >= first:
                out.append((n - 1, step.kernel - max(stop, first)))
            return out
        for j in (*range(min(first, step.kernel)), *range(max(stop, first), step.kernel)):
            r = resolve(start + j * d, n, step.fill)
            if r is not None:
                out.append((r, 1))
        return out
    if isinstance(step, Transposed):
        return [(t, 1) for a, b in step.taps(u) for t in range(max(a, 0), min(b, n - 1) + 1)]
    # PyTorch clamps a half-pixel source below 0 to 0, and its upper neighbour to n − 1.
    edge: Fill = "replicate" if step.kind == "linear" else "zeros"
    out = []
    for a, b, w in weighted_taps(step, u):
        weight: Count = w.numerator if w.denominator == 1 else w
        for t in range(a, b + 1):
            r = resolve(t, n, edge)
            if r is not None:
                out.append((r, weight))
    return out


def _zeros(n: int) -> list[Count]:
    return [0] * n


def paths_back(links: Sequence[Link], layer: str, unit: int, source: str = "input") -> dict[str, list[Count]]:
    """Path counts from every unit of every layer on the way (and of `source`) to `unit` of `layer`.

    Walks the links from `layer` back up in reverse file order, spreading each layer's counts over its
    inputs' units (a transposed conv of the counts with the ones kernel). The result maps each layer
    reached (and `source`) to its counts; `result[source]` is the coverage of the unit. Counts are kept
    sparse on the way (only the units reached), so the cost follows the field, not the layers' sizes.
    """
    index = {link.name: i for i, link in enumerate(links)}
    sizes = {link.name: link.size for link in links}
    for link in links:
        sizes.update(zip(link.inputs, link.sizes, strict=True))
    acc: dict[str, dict[int, Count]] = {layer: {unit: 1}}
    done: dict[str, list[Count]] = {}
    for link in reversed(links[: index[layer] + 1]):
        vec = acc.pop(link.name, None)
        if vec is None:
            continue
        done[link.name] = _dense(vec, link.size)
        targets = [acc.setdefault(name, {}) for name in link.inputs]
        if link.kind == "identity":
            _add(targets[0], vec.items())
        elif link.kind == "merge":
            for target, n in zip(targets, link.sizes, strict=True):
                if n == 1 and link.size > 1:
                    _add(target, [(0, sum(vec.values()))])
                else:
                    _add(target, vec.items())
        elif link.kind == "global":
            total = sum(vec.values())
            for target, n in zip(targets, link.sizes, strict=True):
                _add(target, [(t, total) for t in range(n)])
        else:
            assert link.step is not None
            target, n = targets[0], link.sizes[0]
            for u, c in vec.items():
                _add(target, [(t, c * w) for t, w in _taps(link.step, u, n)])
    done[source] = _dense(acc.pop(source, {}), sizes.get(source, 0))
    return done


def _add(target: dict[int, Count], items: Iterable[tuple[int, Count]]) -> None:
    for t, c in items:
        if c:
            target[t] = target.get(t, 0) + c


def _dense(vec: dict[int, Count], n: int) -> list[Count]:
    out = _zeros(n)
    for t, c in vec.items():
        out[t] = c
    return out


def paths_forward(links: Sequence[Link], pixel: int, size: int, source: str = "input") -> dict[str, list[Count]]:
    """Path counts from input position `pixel` (of `size`) to every unit of every layer.

    The same skeleton as `paths_back`, walked the other way: a unit's count is the weighted sum of its
    inputs' counts. paths_forward(p)[L][u] == paths_back(L, u)[input][p] (a test checks the two ways agree).
    """
    start = _zeros(size)
    start[pixel] = 1
    return forward(links, start, source)


def reached(links: Sequence[Link], size: int, source: str = "input") -> dict[str, list[bool]]:
    """Which units of every layer receive anything at all from an input of `size` pixels."""
    return {name: [bool(c) for c in vec] for name, vec in forward(links, [1] * size, source).items()}


def forward(links: Sequence[Link], start: list[Count], source: str = "input") -> dict[str, list[Count]]:
    """The skeleton applied to input values `start`: every layer's values (see `paths_forward`)."""
    values: dict[str, list[Count]] = {source: start}
    for link in links:
        ins = [values[name] for name in link.inputs]
        out = _zeros(link.size)
        if link.kind == "identity":
            out = list(ins[0])
        elif link.kind == "merge":
            for vec, n in zip(ins, link.sizes, strict=True):
                if n == 1 and link.size > 1:
                    for u in range(link.size):
                        out[u] += vec[0]
                else:
                    for u in range(link.size):
                        out[u] += vec[u]
        elif link.kind == "global":
            # Every unit reads every unit of its inputs (one unit after flatten; all of them for a
            # size-keeping global op such as groupnorm).
            whole = sum((sum(vec) for vec in ins), start=0)
            for u in range(link.size):
                out[u] = whole
        else:
            assert link.step is not None
            vec, n = ins[0], link.sizes[0]
            for u in range(link.size):
                total: Count = 0
                for t, w in _taps(link.step, u, n):
                    if vec[t]:
                        total += vec[t] * w
                out[u] = total
        values[link.name] = out
    return values


def _unbounded_taps(step: Step, u: int) -> list[tuple[int, Count]]:
    """Output unit `u`'s input positions with their skeleton weights, on an input without borders
    (positions below 0 or beyond the size are units like any other: the receptive-field convention)."""
    if isinstance(step, Window):
        start = u * step.stride - step.before
        return [(start + j * step.dilation, 1) for j in range(step.kernel)]
    out: list[tuple[int, Count]] = []
    for a, b, w in weighted_taps(step, u):
        weight: Count = w.numerator if w.denominator == 1 else w
        out.extend((t, weight) for t in range(a, b + 1))
    return out


def interior(links: Sequence[Link], layer: str, units: Sequence[int], source: str = "input") -> list[Count] | None:
    """The path counts from the whole input to each of `units` of `layer`, as if the input were unbounded
    (no border anywhere: a ones input that goes on forever, every padding position a real unit).

    This is the value the skeleton gives a unit away from every border, the same for units of the same
    output phase: what `checkerboard-compound` compares across phases. Units may be any integers (beyond
    a layer's size, too). None when the value is not finite: the path reaches a layer that reads every
    unit of its input ("global") or broadcasts a one-unit input (both read the whole unbounded input).

    Exact and cheap: a backward pass finds the range of units each layer on the way must hold, a forward
    pass computes them (cost: the units in those ranges times their taps).
    """
    index = {link.name: i for i, link in enumerate(links)}
    if not units:
        return []
    need: dict[str, tuple[int, int]] = {layer: (min(units), max(units))}
    chain = links[: index[layer] + 1]
    for link in reversed(chain):
        if link.name not in need:
            continue
        lo, hi = need[link.name]
        if link.kind == "global" or (link.kind == "merge" and any(n == 1 and link.size > 1 for n in link.sizes)):
            return None
        if link.kind == "step":
            assert link.step is not None
            taps = [t for u in range(lo, hi + 1) for t, _ in _unbounded_taps(link.step, u)]
            reach = (min(taps), max(taps)) if taps else None
        else:
            reach = (lo, hi)
        if reach is None:
            continue
        for name in link.inputs:
            old = need.get(name)
            need[name] = reach if old is None else (min(old[0], reach[0]), max(old[1], reach[1]))
    values: dict[str, dict[int, Count]] = {}
    if source in need:
        lo, hi = need[source]
        values[source] = dict.fromkeys(range(lo, hi + 1), 1)
    for link in chain:
        if link.name not in need:
            continue
        lo, hi = need[link.name]
        out: dict[int, Count] = {}
        ins = [values[name] for name in link.inputs if name in values]
        for u in range(lo, hi + 1):
            total: Count = 0
            if link.kind == "step":
                assert link.step is not None
                for t, w in _unbounded_taps(link.step, u):
                    total += ins[0][t] * w
            else:  # identity, or a merge summing its inputs unit by unit
                for vec in ins:
                    total += vec[u]
            out[u] = total
        values[link.name] = out
    return [values[layer][u] for u in units]


#: The most product terms `reach_nd` keeps per tensor before it gives up (see there).
MAX_TERMS = 64

#: A set of N-D units that is a product: one set of units per axis.
Term = tuple[frozenset[int], ...]


def _back(link: Link, units: frozenset[int]) -> list[frozenset[int]]:
    """The units of each input of `link` (one axis) that reach some unit of `units`."""
    if link.kind == "identity":
        return [units]
    if link.kind == "global":
        return [frozenset(range(n)) for n in link.sizes]
    if link.kind == "merge":
        return [frozenset({0}) if n == 1 and link.size > 1 else units for n in link.sizes]
    assert link.step is not None
    n = link.sizes[0]
    return [frozenset(t for u in units for t, _ in _taps(link.step, u, n))]


def _keep(terms: list[Term], term: Term) -> bool:
    """Add `term` to a union of products, dropping the terms it contains; False past MAX_TERMS."""
    if any(all(mine <= theirs for mine, theirs in zip(term, other, strict=True)) for other in terms):
        return True
    terms[:] = [other for other in terms if not all(o <= t for o, t in zip(other, term, strict=True))]
    terms.append(term)
    return len(terms) <= MAX_TERMS


def reach_nd(
    chains: Sequence[Sequence[Link]], layer: str, unit: Sequence[int], source: str = "input"
) -> tuple[tuple[int, int] | None, ...] | None:
    """The exact N-D support of `unit` of `layer`: per axis, the hull [lo, hi] of the input pixels that reach it.

    `chains`: the stack's links along each axis (the same layers in the same order). The input pixels
    that reach a unit are a union of products of per-axis sets: a layer acting per axis maps a product
    to a product, and a merge sends it to each branch. A product one of whose axes receives nothing is
    empty on every axis, which a per-axis walk cannot see, and is dropped here. Products contained in
    another of the same tensor are dropped too (residual branches: the shortcut's inside the convs').
    None (unknown) when a tensor needs more than MAX_TERMS products; all None when nothing reaches.
    """
    rank = len(chains)
    first = chains[0]
    index = {link.name: i for i, link in enumerate(first)}
    pending: dict[str, list[Term]] = {layer: [tuple(frozenset({unit[a] if unit else 0}) for a in range(rank))]}
    for i in range(index[layer], -1, -1):
        links = [chain[i] for chain in chains]
        terms = pending.pop(links[0].name, None)
        if not terms:
            continue
        inputs = links[0].inputs
        merge = [link.kind == "merge" for link in links]
        if any(merge) and not all(merge):
            return None  # not met: merges are merges along every axis
        for term in terms:
            per_axis = [_back(link, units) for link, units in zip(links, term, strict=True)]
            for k, name in enumerate(inputs):
                mapped = tuple(sets[k] for sets in per_axis)
                if not all(mapped):
                    continue  # no unit of this input reaches the unit along some axis: none at all
                if not _keep(pending.setdefault(name, []), mapped):
                    return None
    found = pending.get(source, [])
    if not found:
        return tuple(None for _ in range(rank))
    return tuple((min(min(t[a]) for t in found), max(max(t[a]) for t in found)) for a in range(rank))


def hull(counts: Sequence[Count]) -> tuple[int, int] | None:
    """First and last position with a non-zero count (None when nothing reaches)."""
    reached = [p for p, c in enumerate(counts) if c]
    return (reached[0], reached[-1]) if reached else None


def runs(counts: Sequence[Count]) -> list[tuple[int, int]]:
    """The positions with a non-zero count as inclusive runs [a, b], in order."""
    out: list[tuple[int, int]] = []
    for p, c in enumerate(counts):
        if not c:
            continue
        if out and out[-1][1] == p - 1:
            out[-1] = (out[-1][0], p)
        else:
            out.append((p, p))
    return out


# -- the N-D map ---------------------------------------------------------------------------------------

#: An N-D position (one index per spatial axis).
Cell = tuple[int, ...]


def separable(chains: Sequence[Sequence[Link]]) -> bool:
    """Whether the N-D path counts are the outer product of the axes' counts: no layer sums several inputs.

    Each link of a chain without merges multiplies independently along every axis (an all-ones N-D kernel
    is the product of all-ones 1-D kernels), so the N-D count is the product of the per-axis counts.
    """
    return not any(link.kind == "merge" for chain in chains for link in chain)


def _axis_taps(link: Link, u: int) -> list[list[tuple[int, Count]]]:
    """Per input of `link`, the units it reads for output unit `u` along one axis, with their weights."""
    if link.kind == "identity":
        return [[(u, 1)]]
    if link.kind == "merge":
        return [[(0, 1)] if n == 1 and link.size > 1 else [(u, 1)] for n in link.sizes]
    if link.kind == "global":
        return [[(t, 1) for t in range(n)] for n in link.sizes]
    assert link.step is not None
    return [_taps(link.step, u, link.sizes[0])]


def paths_back_grid(
    chains: Sequence[Sequence[Link]], layer: str, unit: Cell, limit: int, source: str = "input"
) -> dict[Cell, Count] | None:
    """The N-D path counts from the input to `unit` of `layer`, sparse (only the cells reached).

    `chains` are the stack's links along each axis (the same layers in the same order). Exact for any
    stack, merges included. The work is the reached cells times the kernels' taps over the layers (a
    Fraction count costing 20): the walk stops and returns None once it exceeds `limit`.
    """
    names = [link.name for link in chains[0]]
    stop = names.index(layer)
    acc: dict[str, dict[Cell, Count]] = {layer: {unit: 1}}
    work = 0
    for i in range(stop, -1, -1):
        links_i = [chain[i] for chain in chains]
        vec = acc.pop(links_i[0].name, None)
        if vec is None:
            continue
        targets = [acc.setdefault(name, {}) for name in links_i[0].inputs]
        cache: list[dict[int, list[list[tuple[int, Count]]]]] = [{} for _ in chains]
        for cell, c in vec.items():
            per_axis = []
            for axis, u in enumerate(cell):
                taps = cache[axis].get(u)
                if taps is None:
                    taps = cache[axis][u] = _axis_taps(links_i[axis], u)
                per_axis.append(taps)
            # Exact Fractions (interpolation, adaptive pooling) cost about 20 integer operations each.
            cost = 20 if isinstance(c, Fraction) else 1
            work += cost * len(targets) * math.prod(len(taps[0]) for taps in per_axis)
            if work > limit:
                return None
            for k, target in enumerate(targets):
                product: list[tuple[Cell, Count]] = [((), c)]
                for taps in per_axis:
                    product = [((*p, t), w * x) for p, w in product for t, x in taps[k]]
                _add_cells(target, product)
    return acc.pop(source, {})


def _add_cells(target: dict[Cell, Count], items: Iterable[tuple[Cell, Count]]) -> None:
    for t, c in items:
        if c:
            target[t] = target.get(t, 0) + c
