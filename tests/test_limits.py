"""Resource safety of the arithmetic: huge kernels, strides, dilations, sizes and targets are answered
exactly in seconds or refused with exit 1 and the limit named, never a hang, gigabytes or exit 70.

Each CLI case runs in a subprocess with a wall-clock timeout and an address-space cap, so a regression
fails (TimeoutExpired, MemoryError → exit 70) instead of swapping. Expected answers are derived by hand in
the comments; the closed forms are also checked against brute-force enumeration on small values.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from convcalc.analysis.calculators import layer_settings
from convcalc.analysis.solver import solve_axis
from convcalc.geometry import arithmetic
from convcalc.geometry.receptive import Transposed

B = 10**9
#: Seconds a case may take (a few seconds of work on a loaded 2-core machine, plus interpreter start-up).
TIMEOUT = 60
#: The address-space cap of a case: a regression that allocates gigabytes fails with MemoryError.
CAP = 1_500_000_000


def _cap() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (CAP, CAP))


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    env.pop("CONVCALC_TRACEBACK", None)
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        preexec_fn=_cap,
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
        check=False,
    )


def stack(tmp_path: Path, input_shape: str, layer: str, name: str = "s.yaml") -> str:
    path = tmp_path / name
    path.write_text(f"input: {input_shape}\nlayers:\n  - {layer}\n", encoding="utf-8")
    return str(path)


def refused(result: subprocess.CompletedProcess[str], limit: str) -> None:
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert limit in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def answered(result: subprocess.CompletedProcess[str], code: int = 0) -> dict[str, object]:
    assert result.returncode == code, (result.returncode, result.stderr)
    document: dict[str, object] = json.loads(result.stdout)
    return document


def layer0(document: dict[str, object]) -> dict[str, object]:
    layers = document["layers"]
    assert isinstance(layers, list)
    first: dict[str, object] = layers[0]
    return first


def codes(document: dict[str, object]) -> list[str]:
    found = document["diagnostics"]
    assert isinstance(found, list)
    return [d["code"] for d in found]


def diagnostic(document: dict[str, object], code: str) -> dict[str, object]:
    found = document["diagnostics"]
    assert isinstance(found, list)
    (d,) = [d for d in found if d["code"] == code]
    return dict(d)


# -- the calculators ----------------------------------------------------------------------------------
def test_conv_kernel_1e20_answers_exactly() -> None:
    # One phase (stride 1) gets every tap: 10²⁰. SAME at stride 1 pads d(k−1) = 10²⁰ − 1 in total, the odd
    # pixel after: 49999999999999999999 before, 5·10¹⁹ after.
    doc = answered(cli("conv", "--k", str(10**20), "-f", "json"))
    axis = doc["per_axis"][0]  # type: ignore[index]
    assert axis["overlap"]["taps_per_phase"] == [10**20]
    assert axis["same_padding"]["before"] == 5 * 10**19 - 1
    assert axis["same_padding"]["after"] == 5 * 10**19


@pytest.mark.parametrize(
    "args",
    [
        ("pool", "--k", str(B), "--s", str(B)),
        ("deconv", "--k", str(B), "--s", str(B)),
        ("deconv", "--k", "3", "--s", str(B)),
        ("conv", "--k", "3", "--s", str(B)),
    ],
    ids=["pool-k1e9-s1e9", "deconv-k1e9-s1e9", "deconv-k3-s1e9", "conv-s1e9"],
)
def test_calculator_stride_1e9_is_refused_naming_the_phase_limit(args: tuple[str, ...]) -> None:
    result = cli(*args)
    refused(result, "MAX_PHASES")
    assert "--stride" in result.stderr
    assert f"stride {B} is above the {arithmetic.MAX_PHASES} phases" in result.stderr


def test_conv_target_1e12_is_solved_in_closed_form() -> None:
    # Output i + 2p − (k − 1) = 100 + 2p − 2 = 10¹²  ⇔  p = (10¹² − 98)/2 = 499999999951, the only padding.
    doc = answered(cli("conv", "--k", "3", "--i", "100", "--target", str(10**12), "-f", "json"))
    for axis in doc["axes"]:  # type: ignore[attr-defined]
        assert [(s["padding"], s["output"]) for s in axis["settings"]] == [(499_999_999_951, 10**12)]
        assert axis["unlisted"] == 0


def test_conv_target_with_a_huge_stride_lists_the_first_settings_and_counts_the_rest() -> None:
    # floor((100 + 2p − 3)/1000) + 1 = 10⁶  ⇔  999999000 ≤ 2p + 97 ≤ 999999999  ⇔  499999452 ≤ p ≤ 499999951:
    # 500 paddings, the first MAX_SETTINGS (100) listed, 400 counted.
    doc = answered(cli("conv", "--k", "3", "--s", "1000", "--i", "100", "--target", str(10**6), "-f", "json"))
    axis = doc["axes"][0]  # type: ignore[index]
    assert [s["padding"] for s in axis["settings"]] == list(range(499_999_452, 499_999_552))
    assert axis["unlisted"] == 400


def test_deconv_target_with_a_huge_input_is_solved_in_closed_form() -> None:
    # B = (i − 1)s + (k − 1) + 1 = 999999999·1000 + 3; output B − 2p + op = 10⁹ with 0 ≤ op ≤ 999:
    # 2p − op = 998999999003, the smallest p = ceil(998999999003 / 2) = 499499999502 with op = 1; the largest
    # p = floor((998999999003 + 999)/2) = 499500000001: 500 paddings, 100 listed.
    doc = answered(cli("deconv", "--k", "3", "--s", "1000", "--i", str(B), "--target", str(B), "-f", "json"))
    axis = doc["axes"][0]  # type: ignore[index]
    assert axis["settings"][0] == {"padding": 499_499_999_502, "output": B, "output_padding": 1, "ceil_mode": False}
    assert axis["unlisted"] == 400


def test_conv_input_1e9_answers_without_the_whole_overlap_map() -> None:
    # floor((10⁹ − 3)/1) + 1 = 999999998 outputs; every input pixel away from the two borders is read 3 times.
    doc = answered(cli("conv", "--k", "3", "--i", str(B), "-f", "json"))
    axis = doc["per_axis"][0]  # type: ignore[index]
    counts = axis["overlap"]["counts"]
    assert counts["head"] == [1, 2]
    assert counts["tail"] == [2, 1]
    assert counts["period"] == [3]
    assert counts["repeats"] == B - 4


def test_deconv_with_a_large_stride_does_not_draw_a_million_cell_map() -> None:
    # s = 1000: one period is 1000 × 1000 cells, over MAP_CELLS; k = 3 < s leaves 997 of 1000 phases empty.
    doc = answered(cli("deconv", "--k", "3", "--s", "1000", "--i", "4", "-f", "json"), code=3)
    assert doc["overlap"]["map"]["kind"] == "none"  # type: ignore[index]
    assert doc["per_axis"][0]["overlap"]["taps_per_phase"] == [1, 1, 1] + [0] * 997  # type: ignore[index]


# -- rf on stack files ----------------------------------------------------------------------------------
@pytest.mark.parametrize("same", [False, True])
def test_rf_conv_stride_1e9(tmp_path: Path, same: bool) -> None:
    # Output floor((100 − 3)/10⁹) + 1 = 1 (SAME: ceil(100/10⁹) = 1, total max(0·s + 3 − 100, 0) = 0: no
    # padding). Phase counts c_r = 1 for r = 0, 1, 2 and 0 for the other 10⁹ − 3: 3 of every 10⁹ pixels read.
    padding = ", padding: same" if same else ""
    path = stack(tmp_path, "[1, 100, 100]", f"{{op: conv, out: 1, kernel: 3, stride: {B}{padding}}}")
    doc = answered(cli("rf", path, "-f", "json"))
    layer = layer0(doc)
    assert layer["output"] == {"channels": 1, "spatial": [1, 1]}
    assert layer["padding"] == [[0, 0], [0, 0]]
    assert f"reads only 3 of every {B} input pixels" in str(diagnostic(doc, "unused-input")["message"])


def test_rf_same_with_stride_1e9_and_an_unknown_size(tmp_path: Path) -> None:
    # The SAME total is max(3 − m, 0) for m = 1..10⁹ (the size's residues): 2, 1, 0, …, so the left padding
    # (0 or 1) depends on the size and the right one (1 or 0) too.
    path = stack(tmp_path, "[1, null, null]", f"{{op: conv, out: 1, kernel: 3, stride: {B}, padding: same}}")
    doc = answered(cli("rf", path, "-f", "json"))
    assert "padding-unknown" in codes(doc)
    assert layer0(doc)["output"] == {"channels": 1, "spatial": [None, None]}


def test_rf_deconv_stride_1e9_counts_phases_per_value(tmp_path: Path) -> None:
    # k = 3, s = 10⁹, d = 1: g = 1, s' = 10⁹, k = 0·s' + 3, so 3 phases get ceil(3/10⁹) = 1 tap and the other
    # 10⁹ − 3 get floor(3/10⁹) = 0: holes. Output (100 − 1)·10⁹ + 3 = 99000000003.
    path = stack(tmp_path, "[1, 100, 100]", f"{{op: deconv, out: 1, kernel: 3, stride: {B}}}")
    doc = answered(cli("rf", path, "-f", "json"), code=3)
    assert layer0(doc)["output"] == {"channels": 1, "spatial": [99 * B + 3] * 2}
    holes = diagnostic(doc, "holes")
    assert holes["data"]["taps"] == [{"1": 3, "0": B - 3}] * 2  # type: ignore[index]


def test_rf_deconv_checkerboard_with_a_kernel_just_above_a_1e9_stride(tmp_path: Path) -> None:
    # k = 10⁹ + 1 = 1·s' + 1: one phase gets 2 taps, 10⁹ − 1 phases get 1: max:min 2 per axis, 4 in 2-D.
    # Output (4 − 1)·10⁹ + 10⁹ + 1 = 4·10⁹ + 1.
    path = stack(tmp_path, "[1, 4, 4]", f"{{op: deconv, out: 1, kernel: {B + 1}, stride: {B}}}")
    doc = answered(cli("rf", path, "-f", "json"))
    assert layer0(doc)["output"] == {"channels": 1, "spatial": [4 * B + 1] * 2}
    board = diagnostic(doc, "checkerboard")
    assert board["data"]["taps"] == [{"2": 1, "1": B - 1}] * 2  # type: ignore[index]
    assert board["data"]["ratio"] == "4"  # type: ignore[index]


@pytest.mark.parametrize(
    ("shape", "layer", "spatial", "rf"),
    [
        # SAME at stride 1 keeps the size; the field is the kernel.
        ("[1, 100, 100]", f"{{op: conv, out: 1, kernel: {B}, padding: same}}", [100, 100], B),
        ("[1, null, null]", f"{{op: conv, out: 1, kernel: {B}}}", [None, None], B),
        ("[1, null, null]", f"{{op: maxpool, kernel: {B}, stride: 1}}", [None, None], B),
        ("[1, null, null]", f"{{op: avgpool, kernel: {B}, stride: {B}}}", [None, None], B),
        # 2·10⁹ − 10⁹ + 1 windows.
        ("[1, 2000000000, 2000000000]", f"{{op: maxpool, kernel: {B}, stride: 1}}", [B + 1, B + 1], B),
        # A transposed conv at stride 1: (100 − 1) + (10⁹ − 1) + 1 outputs, each reading 100 inputs at most
        # (the field, positions in the padding counted, is the kernel: 10⁹).
        ("[1, 100, 100]", f"{{op: deconv, out: 1, kernel: {B}}}", [B + 99, B + 99], B),
        ("[1, null, null]", f"{{op: deconv, out: 1, kernel: {B}}}", [None, None], B),
    ],
    ids=["conv-same", "conv-unknown", "maxpool-unknown", "avgpool-unknown", "maxpool-2e9", "deconv", "deconv-unknown"],
)
def test_rf_kernel_1e9_answers(tmp_path: Path, shape: str, layer: str, spatial: list[int | None], rf: int) -> None:
    doc = answered(cli("rf", stack(tmp_path, shape, layer), "-f", "json"))
    found = layer0(doc)
    assert found["output"]["spatial"] == spatial  # type: ignore[index]
    assert [f["rf"] for f in found["field"]] == [rf, rf]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("shape", "layer", "spatial"),
    [
        # Nearest upsampling by 10⁹ repeats every 10⁹ units: beyond MAX_PERIOD, and 4·10⁹ units beyond MAX_UNITS.
        ("[1, 4, 4]", f"{{op: upsample, scale: {B}}}", [4 * B, 4 * B]),
        ("[1, 4, 4]", f"{{op: upsample, scale: {B}, mode: linear}}", [4 * B, 4 * B]),
        ("[1, 100, 100]", f"{{op: adaptive_avgpool, size: {B}}}", [B, B]),
        # k = s = 10⁹ on 4: (4 − 1)·10⁹ + 10⁹ = 4·10⁹ outputs, phases repeating every 10⁹.
        ("[1, 4, 4]", f"{{op: deconv, out: 1, kernel: {B}, stride: {B}}}", [4 * B, 4 * B]),
    ],
    ids=["upsample-nearest", "upsample-linear", "adaptive", "deconv-k-s"],
)
def test_rf_huge_scales_note_the_unit_limit(tmp_path: Path, shape: str, layer: str, spatial: list[int]) -> None:
    doc = answered(cli("rf", stack(tmp_path, shape, layer), "-f", "json"))
    assert layer0(doc)["output"]["spatial"] == spatial  # type: ignore[index]
    note = str(diagnostic(doc, "rf-unknown")["message"])
    assert "65536" in note
    assert "4096" in note


@pytest.mark.parametrize(
    ("shape", "layer", "spatial", "axis"),
    [
        # k_eff = 2·(10⁸ − 1) + 1 = 199999999 on 3·10⁸: 3·10⁸ − 199999999 + 1 = 100000002 outputs.
        ("[1, 300000000, 1]", "{op: conv, out: 1, kernel: [100000000, 1], dilation: [2, 1]}", [100_000_002, 1], "H"),
        # Both axes: the note names the last.
        ("[1, null, null]", "{op: conv, out: 1, kernel: 100000000, dilation: 2}", [None, None], "W"),
        # A transposed conv at stride 1, dilation 2: 10⁸ taps, each a separate input point.
        ("[1, null, null]", "{op: deconv, out: 1, kernel: 100000000, dilation: 2}", [None, None], "W"),
    ],
    ids=["conv-2d", "conv-unknown", "deconv-unknown"],
)
def test_rf_dilated_1e8_kernel_notes_the_tap_limit(
    tmp_path: Path, shape: str, layer: str, spatial: list[int | None], axis: str
) -> None:
    doc = answered(cli("rf", stack(tmp_path, shape, layer), "-f", "json"))
    assert layer0(doc)["output"]["spatial"] == spatial  # type: ignore[index]
    note = str(diagnostic(doc, "rf-unknown")["message"])
    assert f"a unit reads 100000000 separate taps along {axis}, more than the 65536" in note


def test_rf_dilation_1e9_with_an_unknown_size_answers(tmp_path: Path) -> None:
    # k_eff = 10⁹·2 + 1; the field (2·10⁹ + 1 pixels, 3 read) is wider than MAX_MASK_BITS: not checked.
    path = stack(tmp_path, "[1, null, null]", f"{{op: conv, out: 1, kernel: 3, dilation: {B}}}")
    doc = answered(cli("rf", path, "-f", "json"))
    assert [f["rf"] for f in layer0(doc)["field"]] == [2 * B + 1] * 2  # type: ignore[attr-defined]
    assert "gridding" not in codes(doc)


def test_gridding_of_a_400001_pixel_field(tmp_path: Path) -> None:
    # Two k = 3 convs at dilation 10⁵: offsets {0, 1, 2}·10⁵ + {0, 1, 2}·10⁵ = {0, …, 4}·10⁵: 5 of 400001
    # pixels read, one in 100000.
    path = tmp_path / "g.yaml"
    path.write_text(
        "input: [1, null]\nlayers:\n"
        "  - {op: conv, out: 1, kernel: 3, dilation: 100000}\n"
        "  - {op: conv, out: 1, kernel: 3, dilation: 100000}\n",
        encoding="utf-8",
    )
    doc = answered(cli("rf", str(path), "-f", "json"))
    grid = diagnostic(doc, "gridding")["data"]
    assert grid["width"] == [400_001]  # type: ignore[index]
    assert grid["read"] == [5]  # type: ignore[index]
    assert grid["period"] == [100_000]  # type: ignore[index]


# -- --unit, --erf, locate ---------------------------------------------------------------------------
def test_unit_of_a_1e9_same_kernel_on_100_pixels(tmp_path: Path) -> None:
    # SAME at stride 1 pads 10⁹ − 1: 499999999 before. Unit 0 spans [−499999999, −499999999 + 10⁹ − 1] and
    # reads every input pixel, 0..99.
    path = stack(tmp_path, "[1, 100, 100]", f"{{op: conv, out: 1, kernel: {B}, padding: same}}")
    result = cli("rf", path, "--unit", "0,0")
    assert result.returncode == 0, result.stderr
    assert "H [-499999999, 500000000]" in result.stdout
    assert "support  H [0, 99]" in result.stdout
    result = cli("locate", path, "--pixel", "0,0")
    assert result.returncode == 0, result.stderr
    assert "H 0–99" in result.stdout


@pytest.mark.parametrize(
    ("shape", "layer"),
    [
        ("[1, 1000000000, 1000000000]", "{op: conv, out: 1, kernel: 3, stride: 2}"),
        ("[1, 100, 100]", f"{{op: deconv, out: 1, kernel: {B}}}"),
        ("[1, 100, 100]", f"{{op: deconv, out: 1, kernel: 3, stride: {B}}}"),
        ("[1, 2000000000, 2000000000]", f"{{op: maxpool, kernel: {B}, stride: 1}}"),
    ],
    ids=["conv-1e9", "deconv-k1e9", "deconv-s1e9", "maxpool-k1e9"],
)
@pytest.mark.parametrize("command", [("rf", "--unit", "0,0"), ("rf", "--erf"), ("locate", "--pixel", "0,0")])
def test_path_counts_on_huge_axes_are_refused(tmp_path: Path, shape: str, layer: str, command: tuple[str, ...]) -> None:
    path = stack(tmp_path, shape, layer)
    refused(cli(command[0], path, *command[1:]), "MAX_WORK")


# -- run ------------------------------------------------------------------------------------------------
def _small(tmp_path: Path) -> str:
    return stack(tmp_path, "[1, 8, 8]", "{op: conv, out: 2, kernel: 3}")


def test_max_memory_with_400_digits_is_refused(tmp_path: Path) -> None:
    result = cli("run", _small(tmp_path), "--max-memory", "9" * 400)
    refused(result, "MAX_SIZE_DIGITS")
    assert "--max-memory" in result.stderr


def test_max_memory_of_40_digits_is_read_exactly(tmp_path: Path) -> None:
    # 10⁴⁰ − 1 GiB is far above the run's estimate: it runs.
    result = cli("run", _small(tmp_path), "--max-memory", "9" * 40 + "GiB")
    assert result.returncode == 0, result.stderr


def test_batch_0_data_is_refused(tmp_path: Path) -> None:
    np = pytest.importorskip("numpy")
    data = tmp_path / "b0.npy"
    np.save(data, np.zeros((0, 1, 8, 8), dtype=np.float32))
    result = cli("run", _small(tmp_path), "--data", str(data))
    refused(result, "a batch of 0 samples")


# -- the closed forms against enumeration ------------------------------------------------------------
small = st.integers(1, 12)


@given(small, small, small, st.integers(0, 30))
def test_phase_counts_are_the_enumerated_counts(k: int, s: int, d: int, r: int) -> None:
    enumerated = [0] * s
    for j in range(k):
        enumerated[j * d % s] += 1
    assert arithmetic.phase_count(r, k, s, d) == enumerated[r % s]
    histogram: dict[int, int] = {}
    for c in enumerated:
        histogram[c] = histogram.get(c, 0) + 1
    assert arithmetic.phase_histogram(k, s, d) == histogram


@given(small, small, small, st.booleans())
def test_same_padding_with_an_unknown_size_agrees_with_every_residue(k: int, s: int, d: int, lower: bool) -> None:
    pads = {arithmetic.same_padding(size, k, s, d) for size in range(1, 3 * s + 1)}
    befores = {(a if lower else b) for b, a in pads}
    afters = {(b if lower else a) for b, a in pads}
    before, after = arithmetic.same_padding_unknown(k, s, d, lower)
    assert before == (befores.pop() if len(befores) == 1 else None)
    assert after == (afters.pop() if len(afters) == 1 else None)


@given(small, small, small, st.integers(0, 6), st.integers(-5, 40))
def test_transposed_taps_are_the_enumerated_taps(k: int, s: int, d: int, p: int, u: int) -> None:
    # Output u receives input i through tap j when u + p = i·s + j·d.
    enumerated = sorted((u + p - j * d) // s for j in range(k) if (u + p - j * d) % s == 0)
    listed = sorted(x for a, b in Transposed(k, s, d, p).taps(u) for x in range(a, b + 1))
    assert listed == enumerated


@given(st.sampled_from(["conv", "deconv", "maxpool"]), small, st.integers(1, 4), st.integers(1, 3), small, st.data())
def test_solver_agrees_with_enumerating_every_padding(
    kind: str, k: int, s: int, d: int, i: int, data: st.DataObject
) -> None:
    target = data.draw(st.integers(1, 60))
    ceil_mode = kind == "maxpool" and data.draw(st.booleans())
    settings = layer_settings(kind, [k], [s], dilation=[d], input_size=[i], ceil_mode=ceil_mode)  # type: ignore[arg-type]
    found = solve_axis(settings, 0, target)
    # Every setting, by brute force over a range wide enough to pass the target.
    every: list[tuple[int, int, int, bool]] = []
    if kind == "maxpool":
        paddings = k // 2 + 1
    elif kind == "deconv":  # the output shrinks by 2 per padding: past this, even the largest op gives < 1
        paddings = ((i - 1) * s + d * (k - 1) + max(s, d)) // 2 + 2
    else:  # the conv output passes the target
        paddings = target * s + k * d + 2
    for p in range(paddings):
        for op in range(max(s, d) if kind == "deconv" else 1):
            for ceil in (ceil_mode, not ceil_mode) if kind == "maxpool" else (False,):
                try:
                    if kind == "conv":
                        out = arithmetic.conv_output_size(i, k, s, p, p, d)
                    elif kind == "deconv":
                        out = arithmetic.deconv_output_size(i, k, s, p, op, d)
                    else:
                        out = arithmetic.pool_output_size(i, k, s, p, p, d, ceil)
                except ValueError:
                    continue
                every.append((p, out, op, ceil))
    exact = [(p, op, c) for p, out, op, c in every if out == target]
    assert [(x.padding, x.output_padding, x.ceil_mode) for x in found.exact] == exact[:100]
    assert found.unlisted == max(len(exact) - 100, 0)
    if not exact:
        below = [out for _, out, _, _ in every if out < target]
        above = [out for _, out, _, _ in every if out > target]
        assert (found.below.output if found.below else None) == (max(below) if below else None)
        assert (found.above.output if found.above else None) == (min(above) if above else None)


def test_closed_forms_stay_fast_at_1e18() -> None:
    # Only the three counts 0, q, q + 1 exist: k = 10¹⁸ + 7 over s' = 10⁹ (d = 2, s = 2·10⁹, g = 2) is
    # q = 10⁹, m = 7: 7 phases get 10⁹ + 1 taps, 10⁹ − 7 get 10⁹, the 10⁹ odd residues none.
    assert arithmetic.phase_histogram(10**18 + 7, 2 * B, 2) == {B + 1: 7, B: B - 7, 0: B}
    assert arithmetic.phase_count(2 * 6, 10**18 + 7, 2 * B, 2) == B + 1  # residue 12 = 2·6: j₀ = 6 < m
    assert arithmetic.phase_count(2 * 7, 10**18 + 7, 2 * B, 2) == B  # j₀ = 7 ≥ m
    assert arithmetic.phase_count(3, 10**18 + 7, 2 * B, 2) == 0  # odd
