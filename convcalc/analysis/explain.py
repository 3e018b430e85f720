"""Worked derivations of one layer's numbers, as data: the formula, the user's numbers, the result.

Each `Step` reads like a textbook line: `formula`, then `numbers` (the formula with the values
substituted, then each simplification), then `result`. Formulas are plain ASCII (`*`, `/`,
`floor`) so that they read the same in a terminal and in a CI log. Axes with identical numbers
share one derivation.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from convcalc.analysis.calculators import AxisResult, LayerResult
from convcalc.notation import counts_text, fraction_text, ratio_text


@dataclass(frozen=True)
class Step:
    """One line of reasoning. With `chain`, each of `numbers` and `result` equals the formula's right-hand
    side (print them as `= ...`); without, `numbers` are cases listed under the formula."""

    title: str
    formula: str
    numbers: tuple[str, ...]
    result: str
    note: str = ""
    chain: bool = True


@dataclass(frozen=True)
class Derivation:
    """Steps that hold for `axes` (all the axes sharing these numbers); () means the whole layer."""

    axes: tuple[str, ...]
    steps: tuple[Step, ...]


def _n(x: int) -> str:
    """A value substituted into a formula: negatives in parentheses."""
    return f"({x})" if x < 0 else str(x)


def linear(a: int, b: int, var: str = "i") -> str:
    """a*i + b as text.

    >>> linear(2, -1), linear(1, 0), linear(1, 3), linear(2, 0)
    ('2*i - 1', 'i', 'i + 3', '2*i')
    """
    head = var if a == 1 else f"{a}*{var}"
    if b == 0:
        return head
    return f"{head} {'-' if b < 0 else '+'} {abs(b)}"


def _k_eff(a: AxisResult) -> Step:
    note = f"dilation {a.dilation} leaves {a.dilation - 1} pixel{'s' if a.dilation > 2 else ''} between taps"
    return Step(
        "Effective kernel (the span of the dilated kernel)",
        "k_eff = d*(k - 1) + 1",
        (f"{a.dilation}*({a.kernel} - 1) + 1",),
        str(a.effective_kernel),
        note,
    )


def _window_output(a: AxisResult, ceil: bool) -> list[Step]:
    rnd = "ceil" if ceil else "floor"
    assert a.padding is not None
    before, after = a.padding
    sym = before == after
    pad_f = "2p" if sym else "p_before + p_after"
    pad_n = f"2*{before}" if sym else f"{before} + {after}"
    formula = f"o = {rnd}((i + {pad_f} - d*(k - 1) - 1) / s) + 1"
    num = before + after - a.dilation * (a.kernel - 1) - 1
    first = f"{rnd}(({{i}} + {pad_n} - {a.dilation}*({a.kernel} - 1) - 1) / {a.stride}) + 1"
    if a.input_size is None:
        result = linear(1, num + 1) if a.stride == 1 else f"{rnd}(({linear(1, num)}) / {a.stride}) + 1"
        return [Step("Output size", formula, (first.format(i="i"),), result, "give the input size to evaluate it")]
    total = a.input_size + num
    naive = (-(-total // a.stride) if ceil else total // a.stride) + 1
    steps = [
        Step(
            "Output size",
            formula,
            (first.format(i=a.input_size), f"{rnd}({total} / {a.stride}) + 1", f"{naive - 1} + 1"),
            str(naive),
            ""
            if not ceil or a.floor_output_size == naive
            else f"without ceil_mode, floor gives {a.floor_output_size or 'no output'}",
        )
    ]
    if ceil:
        start = (naive - 1) * a.stride - before
        verdict = (
            f"{start} >= {a.input_size}: it starts in the right padding and is dropped, so o = {naive - 1}"
            if a.ceil_dropped
            else f"{start} < {a.input_size}: it starts inside the input and is kept, so o = {naive}"
        )
        steps.append(
            Step(
                "ceil_mode's last-window rule",
                "start = (o - 1)*s - p; the last window is dropped if start >= i (in the right padding)",
                (f"start = ({naive} - 1)*{a.stride} - {before} = {start}",),
                verdict,
                chain=False,
            )
        )
    return steps


def _rf_steps(a: AxisResult, transposed: bool) -> list[Step]:
    lo, hi = a.rf_growth_min, a.rf_growth_max
    if transposed:
        if lo is None or hi is None:
            rf = Step(
                "Receptive-field growth",
                "RF_out = RF_in + (n - 1)*jump_in, n = input positions the taps of one output span",
                ("no output phase receives any input",),
                "undefined (holes everywhere)",
            )
        else:
            spans = (
                f"{hi + 1} at every output phase" if lo == hi else f"{lo + 1} to {hi + 1} depending on the output phase"
            )
            raw = f"{hi + 1}" if lo == hi else f"{lo + 1} to {hi + 1}"
            rf = Step(
                "Receptive-field growth",
                "RF_out = RF_in + (n - 1)*jump_in",
                (f"RF_in + ({hi + 1} - 1)*jump_in",),
                f"RF_in + {hi}*jump_in" + ("" if lo == hi else f" at most (RF_in + {lo}*jump_in at least)"),
                f"n, the input positions spanned by the taps reaching one output, is {spans}; "
                f"on the raw input (RF_in = 1, jump_in = 1): {raw} pixel{'s' if hi > 0 else ''}",
            )
        jump = Step(
            "Jump (input pixels between neighbouring outputs)",
            "jump_out = jump_in / s",
            (),
            f"jump_in / {a.stride}" if a.stride > 1 else "jump_in",
            f"a transposed conv divides the jump: outputs sit 1/{a.stride} of an input step apart"
            if a.stride > 1
            else "stride 1 keeps the jump",
        )
        return [rf, jump]
    growth = a.effective_kernel - 1
    rf = Step(
        "Receptive-field growth",
        "RF_out = RF_in + (k_eff - 1)*jump_in",
        (f"RF_in + ({a.effective_kernel} - 1)*jump_in",),
        f"RF_in + {growth}*jump_in",
        f"on the raw input (RF_in = 1, jump_in = 1): {growth + 1} pixel{'s' if growth else ''}",
    )
    jump = Step(
        "Jump (input pixels between neighbouring outputs)",
        "jump_out = jump_in * s",
        (),
        f"jump_in * {a.stride}" if a.stride > 1 else "jump_in",
        f"each output step moves {a.stride} input steps" if a.stride > 1 else "stride 1 keeps the jump",
    )
    return [rf, jump]


def _deconv_steps(a: AxisResult) -> list[Step]:
    eq = a.equivalent
    assert eq is not None
    assert a.padding is not None
    p, s, k, d, op, i = a.padding[0], a.stride, a.kernel, a.dilation, a.output_padding, a.input_size
    zeros = "zero" if s == 2 else "zeros"
    if i is None:
        insert = Step(
            f"Insert s - 1 = {s - 1} {zeros} between neighbouring inputs",
            "i_z = i + (i - 1)*(s - 1)",
            (f"i + (i - 1)*({s} - 1)",),
            linear(s, 1 - s),
        )
    else:
        insert = Step(
            f"Insert s - 1 = {s - 1} {zeros} between neighbouring inputs",
            "i_z = i + (i - 1)*(s - 1)",
            (f"{i} + ({i} - 1)*({s} - 1)",),
            str(eq.stretched_size),
        )
    if d == 1:
        pad_formula, pad_numbers = "p' = k - p - 1", f"{k} - {p} - 1"
    else:
        pad_formula, pad_numbers = "p' = d*(k - 1) - p", f"{d}*({k} - 1) - {p}"
    after = f"p' + output_padding = {_n(eq.pad_before)} + {op} = {eq.pad_after}" if op else f"{eq.pad_after}"
    crop = " (negative: crop that many instead of padding)" if eq.pad_before < 0 or eq.pad_after < 0 else ""
    pad = Step(
        "Pad for the equivalent stride-1 convolution",
        pad_formula,
        (pad_numbers,),
        str(eq.pad_before),
        f"pad {eq.pad_before} before and {after} after{crop}",
    )
    conv_formula = "o = i_z + p'_before + p'_after - d*(k - 1)"
    torch_formula = "o = (i - 1)*s - 2p + d*(k - 1) + output_padding + 1"
    if i is None:
        const = 1 - s + eq.pad_before + eq.pad_after - d * (k - 1)
        conv = Step(
            "Convolve at stride 1 with the kernel flipped",
            conv_formula,
            (f"({linear(s, 1 - s)}) + {_n(eq.pad_before)} + {_n(eq.pad_after)} - {d}*({k} - 1)",),
            linear(s, const),
            f"the same as PyTorch's {torch_formula}",
        )
    else:
        conv = Step(
            "Convolve at stride 1 with the kernel flipped",
            conv_formula,
            (f"{eq.stretched_size} + {_n(eq.pad_before)} + {_n(eq.pad_after)} - {d}*({k} - 1)",),
            str(eq.output_size),
        )
    phases = []
    for q in range(s):
        taps = [j for j in range(k) if (j * d - q - p) % s == 0]
        which = f"j in {{{', '.join(map(str, taps))}}}" if taps else "no j"
        phases.append(f"q = {q}: {which}, {len(taps)} tap{'' if len(taps) == 1 else 's'}")
    taps_text = counts_text(a.overlap.taps)
    if a.overlap.ratio is None:
        verdict = f"taps per output phase {taps_text}: some phases get no input (holes)"
    else:
        verdict = f"taps per output phase {taps_text}; max:min {ratio_text(a.overlap.ratio)}"
    over = Step(
        "Overlap: kernel taps reaching each output phase q = o mod s",
        "taps(q) = #{ j in 0..k-1 : j*d = q + p (mod s) }",
        tuple(phases),
        verdict,
        "away from the borders every output of phase q sums taps(q) inputs; even overlap needs k divisible "
        "by s (and d coprime to s)",
        chain=False,
    )
    steps = [insert, pad, conv]
    if i is not None:
        steps.append(
            Step(
                "Check with PyTorch's formula",
                torch_formula,
                (f"({i} - 1)*{s} - 2*{p} + {d}*({k} - 1) + {op} + 1",),
                str(a.output_size),
            )
        )
    return [*steps, over]


def _axis_steps(result: LayerResult, a: AxisResult) -> list[Step]:
    kind = result.settings.kind
    # The effective kernel is k itself without dilation; the step would only repeat it.
    steps = [_k_eff(a)] if a.dilation > 1 else []
    if kind == "deconv":
        steps += _deconv_steps(a)
    elif a.padding is None:
        steps.append(
            Step(
                "Output size",
                "o = ceil(i / s)  (padding 'same', TF/Keras rule)",
                (f"ceil(i / {a.stride})",),
                f"ceil(i/{a.stride})",
                "the padding itself depends on the input size",
            )
        )
    else:
        steps += _window_output(a, result.settings.ceil_mode and result.settings.is_pool)
    steps += _rf_steps(a, kind == "deconv")
    return steps


def _layer_steps(result: LayerResult) -> list[Step]:
    s = result.settings
    steps: list[Step] = []
    ratios = [a.overlap.ratio for a in result.axes]
    if s.kind == "deconv" and s.rank > 1:
        names = " * ".join(f"ratio_{a.axis}" for a in result.axes)
        if result.overlap_ratio is None:
            steps.append(Step(f"{s.rank}-D overlap ratio", f"ratio = {names}", ("an axis has holes",), "undefined"))
        else:
            nums = " * ".join(fraction_text(r) for r in ratios if r is not None)
            steps.append(
                Step(
                    f"{s.rank}-D overlap ratio (the axes' counts multiply)",
                    f"ratio = {names}",
                    (nums,),
                    fraction_text(result.overlap_ratio),
                )
            )
    if result.params is not None and s.in_channels is not None and s.out_channels is not None:
        ks = "*".join(map(str, s.kernel))
        k_names = "*".join(f"k_{a}" for a in s.axes)
        g = s.groups
        if s.kind == "deconv":
            formula = f"params = C_in*(C_out/g)*{k_names} + C_out"
            nums = f"{s.in_channels}*({s.out_channels}/{g})*{ks} + {s.out_channels}"
        else:
            formula = f"params = C_out*(C_in/g)*{k_names} + C_out"
            nums = f"{s.out_channels}*({s.in_channels}/{g})*{ks} + {s.out_channels}"
        steps.append(Step("Parameters (weights + bias)", formula, (nums,), str(result.params)))
        if result.macs is not None and s.input_size is not None:
            out = result.output_size
            assert out is not None
            if s.kind == "deconv":
                spatial = "*".join(map(str, s.input_size))
                formula = "MACs = prod(i)*C_in*(C_out/g)*prod(k) + C_out*prod(o)"
                nums = f"{spatial}*{s.in_channels}*({s.out_channels}/{g})*{ks} + {s.out_channels}*" + "*".join(
                    map(str, out)
                )
                note = "counted on the input a transposed conv reads; the bias adds one per output"
            else:
                spatial = "*".join(map(str, out))
                formula = "MACs = prod(o)*C_out*(C_in/g)*prod(k) + C_out*prod(o)"
                nums = f"{spatial}*{s.out_channels}*({s.in_channels}/{g})*{ks} + {s.out_channels}*" + "*".join(
                    map(str, out)
                )
                note = "the bias adds one per output element"
            steps.append(Step("Multiply-accumulates (batch 1)", formula, (nums,), f"{result.macs:,}", note))
    return steps


def explain(result: LayerResult) -> tuple[Derivation, ...]:
    """The derivation of every number of `result`, axes with the same numbers sharing one.

    >>> from convcalc.analysis.calculators import calculate, layer_settings
    >>> d = explain(calculate(layer_settings("conv", [3], [2], [1], input_size=[224])))
    >>> d[0].axes, d[0].steps[0].numbers[-1], d[0].steps[0].result
    (('H', 'W'), '111 + 1', '112')
    """
    groups: dict[AxisResult, list[AxisResult]] = {}
    for a in result.axes:
        groups.setdefault(dataclasses.replace(a, axis=""), []).append(a)
    out: list[Derivation] = [
        Derivation(tuple(a.axis for a in members), tuple(_axis_steps(result, members[0])))
        for members in groups.values()
    ]
    layer = _layer_steps(result)
    if layer:
        out.append(Derivation((), tuple(layer)))
    return tuple(out)
