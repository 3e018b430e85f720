"""Loading, analysing and rendering cost the same per layer however long the stack is.

Nothing here is timed. The work is counted as the lines of convcalc's (and cli's) own Python code
executed, through `sys.settrace`: deterministic for a given input, and it sees what made loading
quadratic before (a list of every earlier layer name rebuilt for every layer, a comprehension
looping over all of them). Stacks are built from identical units, so with linear code every
added unit costs exactly the same number of lines whether the stack has 70 layers or 1,000;
quadratic code makes the units near the end of a long stack cost more.

Work done inside C functions (a `name in some_list`) and inside the standard library is not
counted; the did-you-mean search (difflib) is checked separately: it must not run at all when
nothing is wrong, and once per unknown name when something is.
"""

from __future__ import annotations

import difflib
import gc
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

import cli
import convcalc
from cli import render
from convcalc.analysis.engine import analyze
from convcalc.documents.report import report_document
from convcalc.errors import ShapeError, SpecError
from convcalc.format.loader import parse_stack

_OWN_CODE = (str(Path(convcalc.__file__).parent), str(Path(cli.__file__).parent))


def flat_stack(units: int) -> str:
    """`units` × 17 layers written flat: three residual blocks (conv → relu → conv → add with the
    block input), then two branches from the last one joined by a concat, a 1×1 conv and a relu."""
    lines = ["input: [4, 16, 16]", "layers:"]
    previous = "input"
    for u in range(units):
        for j in range(3):
            b = f"u{u}r{j}"
            lines += [
                f"  - {{op: conv, name: {b}c1, out: 4, kernel: 3, padding: 1}}",
                "  - {op: relu}",
                f"  - {{op: conv, name: {b}c2, out: 4, kernel: 3, padding: 1}}",
                f"  - {{op: add, name: {b}, from: [{b}c2, {previous}]}}",
            ]
            previous = b
        b = f"u{u}br"
        lines += [
            f"  - {{op: conv, name: {b}l, from: {previous}, out: 2, kernel: 1}}",
            f"  - {{op: conv, name: {b}r, from: {previous}, out: 2, kernel: 3, padding: 1}}",
            f"  - {{op: concat, name: {b}cat, from: [{b}l, {b}r]}}",
            "  - {op: conv, out: 4, kernel: 1}",
            f"  - {{op: relu, name: {b}}}",
        ]
        previous = b
    return "\n".join(lines) + "\n"


def block_stack(units: int) -> str:
    """The same units as flat_stack, written as a block used with `repeat: units`."""
    return (
        "input: [4, 16, 16]\n"
        "blocks:\n"
        "  res:\n"
        "    layers:\n"
        "      - {op: conv, name: c1, out: 4, kernel: 3, padding: 1}\n"
        "      - {op: relu}\n"
        "      - {op: conv, name: c2, out: 4, kernel: 3, padding: 1}\n"
        "      - {op: add, from: [c2, input]}\n"
        "  unit:\n"
        "    layers:\n"
        "      - {block: res, name: r, repeat: 3}\n"
        "      - {op: conv, name: l, out: 2, kernel: 1}\n"
        "      - {op: conv, name: rr, from: r, out: 2, kernel: 3, padding: 1}\n"
        "      - {op: concat, from: [l, rr]}\n"
        "      - {op: conv, out: 4, kernel: 1}\n"
        "      - {op: relu}\n"
        "layers:\n"
        f"  - {{block: unit, name: u, repeat: {units}}}\n"
    )


def lines_executed(work: Callable[[], object]) -> int:
    """How many lines of convcalc's and cli's code `work()` executes (a loop's line counts per pass)."""
    count = 0

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        if event == "line":
            count += 1
        return local

    def scope(frame: FrameType, event: str, arg: Any) -> Any:
        # Other code (the standard library, PyYAML's pure-Python parts) is not traced at all.
        return local if frame.f_code.co_filename.startswith(_OWN_CODE) else None

    previous = sys.gettrace()
    sys.settrace(scope)
    try:
        work()
    finally:
        sys.settrace(previous)
    return count


def rf_pipeline(text: str) -> Callable[[], object]:
    """What `convcalc rf --format json` and `--format csv` do with the text."""

    def run() -> object:
        report = analyze(parse_stack(text, file="stack.yaml"))
        return report_document(report), render.report_csv(report)

    return run


@pytest.mark.parametrize("stack", [flat_stack, block_stack], ids=["flat", "blocks"])
def test_every_unit_costs_the_same_at_70_and_at_1000_layers(stack: Callable[[int], str]) -> None:
    rf_pipeline(stack(2))()  # first-use work (imports, caches) is not per layer
    counts = {units: lines_executed(rf_pipeline(stack(units))) for units in (4, 8, 56, 60)}
    short = (counts[8] - counts[4]) / 4  # one unit in a 70- to 140-layer stack
    long = (counts[60] - counts[56]) / 4  # one unit in a 950- to 1,020-layer stack
    assert short > 0
    # Linear code gives exactly equal costs; the quadratic loader gave 1.5× at these sizes.
    assert long <= 1.02 * short, f"a unit costs {long:.0f} lines in a long stack, {short:.0f} in a short one"


def test_a_valid_stack_never_searches_for_a_did_you_mean(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = difflib.get_close_matches

    def counted(word: str, *args: Any, **kwargs: Any) -> list[str]:
        calls.append(word)
        return real(word, *args, **kwargs)

    monkeypatch.setattr(difflib, "get_close_matches", counted)
    for text in (flat_stack(20), block_stack(20)):
        rf_pipeline(text)()
    assert calls == []


def test_unknown_names_search_once_per_name_and_list_a_bounded_number(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = difflib.get_close_matches

    def counted(word: str, *args: Any, **kwargs: Any) -> list[str]:
        calls.append(word)
        return real(word, *args, **kwargs)

    monkeypatch.setattr(difflib, "get_close_matches", counted)
    # 595 layers (lines 3-597), then 100 layers each reading the same misspelt name, then one
    # reading another misspelt name.
    text = flat_stack(35) + "".join("  - {op: relu, from: u3r1c}\n" for _ in range(100))
    text += "  - {op: relu, from: u34br_l}\n"
    with pytest.raises(SpecError) as info:
        parse_stack(text, file="long.yaml")
    problems = info.value.problems
    assert len(problems) == 101
    assert calls == ["u3r1c", "u34br_l"]
    first = problems[0]
    # Each unit has 4 relus (3 unnamed, 1 named u<n>br; default names count every relu), so the
    # first added layer is the 141st relu.
    assert (first.line, first.layer, first.field) == (598, "relu141", "from")
    # u3r1c1 and u3r1c2 are equally close (difflib ratio 10/11); get_close_matches takes the larger.
    assert first.message.startswith("unknown layer 'u3r1c'; did you mean 'u3r1c2'? Layers above this one: ")
    # Above it: the input and 595 named layers; the message shows the first 5 and the last 15.
    listed = first.message.split("Layers above this one: ", 1)[1]
    assert listed.startswith("input, u0r0c1, relu1, u0r0c2, u0r0, … 576 more …, ")
    assert listed.endswith(", u34br")
    assert len(listed.split(", ")) == 5 + 1 + 15  # names, the count of the rest, names
    # The suggestion is the closest name above each layer, whatever the layers below define.
    assert "did you mean 'u34brl'?" in problems[-1].message


def test_did_you_mean_only_offers_layers_above() -> None:
    text = "input: [1, 8]\nlayers:\n  - {op: relu, name: early}\n  - {op: relu, from: branch1}\n"
    text += "  - {op: relu, name: branch2}\n  - {op: relu, name: branch}\n"
    with pytest.raises(SpecError) as info:
        parse_stack(text, file="s.yaml")
    (problem,) = info.value.problems
    # 'branch2' and 'branch' are closer, but they come later; nothing above is close enough.
    assert problem.message == "unknown layer 'branch1'. Layers above this one: input, early"


def test_looking_up_layers_and_report_totals_once_per_layer_is_linear() -> None:
    # What a caller (a renderer, the runner) may do in a loop over the layers: StackSpec.layer()
    # and the report's diagnostics and totals must not scan every layer each time.
    def per_layer_lookups(units: int) -> Callable[[], object]:
        spec = parse_stack(flat_stack(units), file="stack.yaml")
        report = analyze(spec)

        def run() -> object:
            totals = []
            for layer in spec.layers:
                assert spec.layer(layer.name) is layer
                totals.append((len(report.diagnostics), report.total_params, report.total_macs))
            return totals

        return run

    counts = {units: lines_executed(per_layer_lookups(units)) for units in (4, 8, 56, 60)}
    short, long = (counts[8] - counts[4]) / 4, (counts[60] - counts[56]) / 4
    assert long <= 1.02 * short, f"a unit costs {long:.0f} lines in a long stack, {short:.0f} in a short one"


def test_loading_and_analysing_run_without_collections_and_leave_the_collector_as_found() -> None:
    text = flat_stack(60)  # 1,020 layers: hundreds of automatic collections if the collector ran
    started: list[int] = []

    def watch(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started.append(info["generation"])

    gc.callbacks.append(watch)
    try:
        report = analyze(parse_stack(text, file="stack.yaml"))
    finally:
        gc.callbacks.remove(watch)
    # None while loading or analysing: one pass when each call hands back, over what it allocated.
    assert len(started) <= 2, f"{len(started)} collections"
    assert len(report.layers) == 1020
    assert gc.isenabled()

    with pytest.raises(SpecError):
        parse_stack(text + "  - {op: relu, from: nowhere}\n")
    assert gc.isenabled()
    with pytest.raises(ShapeError):
        analyze(parse_stack(text + "  - {op: conv, kernel: 17}\n"))  # larger than the 16×16 input
    assert gc.isenabled()

    gc.disable()  # the caller's choice is kept
    try:
        analyze(parse_stack(text))
        assert not gc.isenabled()
    finally:
        gc.enable()
