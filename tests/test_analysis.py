"""Stack analysis against independent numbers: published receptive fields, the Google library's test
networks, worked examples and hand derivations (shared reference receptive-fields.md §1.3, §5)."""

from __future__ import annotations

import math
import textwrap
from fractions import Fraction
from pathlib import Path

import pytest

from convcalc.analysis.engine import analyze
from convcalc.analysis.report import Shape, StackReport
from convcalc.errors import ShapeError
from convcalc.format.loader import load_stack, parse_stack
from convcalc.geometry.receptive import MAX_PERIOD, MAX_UNITS
from convcalc.notation import fraction_text

CONFIGS = Path(__file__).parent.parent / "configs"


def run(text: str) -> StackReport:
    return analyze(parse_stack(textwrap.dedent(text), "<test>"))


def chain(input_size: int, rows: list[tuple[str, int, int, int, int]], rank: int = 1) -> StackReport:
    """A plain stack from (op, kernel, stride, padding, dilation) rows."""
    lines = [
        f"input: [1{', ' + str(input_size) * 1 if rank == 1 else ''}{', ' + str(input_size) if rank == 2 else ''}]"
    ]
    if rank == 2:
        lines = [f"input: [1, {input_size}, {input_size}]"]
    lines.append("layers:")
    for op, k, s, p, d in rows:
        extra = f", dilation: {d}" if op != "avgpool" else ""
        lines.append(f"  - {{op: {op}, kernel: {k}, stride: {s}, padding: {p}{extra}}}")
    return run("\n".join(lines) + "\n")


def rfs(report: StackReport, axis: int = 0) -> list[int | None]:
    return [layer.field[axis].rf for layer in report.layers]


# -- seed configs --------------------------------------------------------------------------------
def test_two_layer_seed_rf_grows_by_previous_strides() -> None:
    """conv 3×3 s1 then conv 3×3 s2: RF 3 then 5; on 5×5, sizes 5 then 3 (hand derivation)."""
    report = analyze(load_stack(CONFIGS / "seed_two_layer.yaml"))
    assert rfs(report) == [3, 5]
    assert [layer.output.spatial for layer in report.layers] == [(5, 5), (3, 3)]
    assert [layer.field[0].jump for layer in report.layers] == [1, 2]


def test_dilation_seed_effective_kernels_and_fields() -> None:
    """Rates 1, 2, 3 on 3×3: effective kernels 3, 5, 7; RF 3, 7, 13 (3 + 4 + 6)."""
    report = analyze(load_stack(CONFIGS / "seed_dilation.yaml"))
    assert [layer.effective_kernel for layer in report.layers] == [(3, 3), (5, 5), (7, 7)]
    assert rfs(report) == [3, 7, 13]


def test_deconv_seed_shape_phases_and_checkerboard() -> None:
    """k3 s2 p1 on 4×4: 7×7; odd phases read 2 inputs, even ones 1; overlap ratio 2 per axis, 4 in 2-D."""
    report = analyze(load_stack(CONFIGS / "seed_deconv.yaml"))
    layer = report.layers[0]
    assert layer.output.spatial == (7, 7)
    assert (layer.field[0].rf, layer.field[0].rf_min, layer.field[0].jump) == (2, 1, Fraction(1, 2))
    (diag,) = layer.diagnostics
    assert diag.code == "checkerboard"
    assert diag.data["ratio"] == "4"
    assert diag.data["ratios"] == ["2", "2"]
    assert "e.g. 4 for stride 2" in diag.message


def test_wavenet_config_rf_is_1025() -> None:
    """Width-2 causal convs, dilations 1..512, plus the initial causal conv: 1025 (ibab/tensorflow-wavenet#259)."""
    report = analyze(load_stack(CONFIGS / "wavenet_tcn.yaml"))
    assert report.output.field[0].rf == 1025
    dilated = [layer for layer in report.layers if layer.name.startswith("dil")]
    assert dilated[-1].field[0].rf - 1 == 1024  # the dilated stack alone
    # Causal: unit i sees only the past, so the field of unit 0 ends at pixel 0.
    assert report.output.region((0,)) == ((-1024, 0),)


def test_vgg16_published_per_layer_fields() -> None:
    """VGG-16 (kkrunal77/EVA 7.md; Google vgg_16): RF, jump and P per layer; conv5_3 196 and pool5 212."""
    report = analyze(load_stack(CONFIGS / "vgg16.yaml"))
    by_name = {layer.name: layer.field[0] for layer in report.layers}
    expected = {
        "conv1_1": (3, 1, 1),
        "conv1_2": (5, 1, 2),
        "pool1": (6, 2, 2),
        "conv2_1": (10, 2, 4),
        "conv2_2": (14, 2, 6),
        "pool2": (16, 4, 6),
        "conv3_1": (24, 4, 10),
        "conv3_2": (32, 4, 14),
        "conv3_3": (40, 4, 18),
        "pool3": (44, 8, 18),
        "conv4_1": (60, 8, 26),
        "conv4_2": (76, 8, 34),
        "conv4_3": (92, 8, 42),
        "pool4": (100, 16, 42),
        "conv5_1": (132, 16, 58),
        "conv5_2": (164, 16, 74),
        "conv5_3": (196, 16, 90),
        "pool5": (212, 32, 90),
    }
    for name, (rf, jump, pad) in expected.items():
        f = by_name[name]
        assert (f.rf, f.jump, f.padding) == (rf, jump, pad), name
    assert report.total_params == 138_357_544  # torchvision vgg16


def test_resnet18_params_match_torchvision() -> None:
    assert analyze(load_stack(CONFIGS / "resnet18.yaml")).total_params == 11_689_512


# -- Google receptive_field library test networks (receptive_field_computation_test.py) -----------
NET1 = """
input: [1, {n}, {n}]
layers:
  - {{op: conv, name: l1, from: input, kernel: 1, stride: 4}}
  - {{op: pad, name: p2, from: input, padding: [[1, 0], [1, 0]]}}
  - {{op: {op3}, name: l2, kernel: 3, stride: 2}}
  - {{op: {op4}, name: l3, kernel: 1, stride: 2}}
  - {{op: add, name: out, from: [l1, l3]}}
"""


@pytest.mark.parametrize(("op3", "op4"), [("conv", "conv"), ("maxpool", "maxpool")])
def test_google_net1_net2_aligned(op3: str, op4: str) -> None:
    report = run(NET1.format(n="null", op3=op3, op4=op4))
    f = report.output.field
    assert [(a.rf, a.jump, a.padding) for a in f] == [(3, 4, 1), (3, 4, 1)]
    assert not report.diagnostics


def test_google_net3_misaligned_merge_names_both_branches() -> None:
    report = run(
        """
        input: [1, null, null]
        layers:
          - {op: pad, name: lpad, padding: [[2, 1], [2, 1]]}
          - {op: conv, name: left, kernel: 5, stride: 2}
          - {op: conv, name: r1, from: input, kernel: 3, stride: 1}
          - {op: conv, name: right, kernel: 3, stride: 1}
          - {op: add, name: out, from: [left, right]}
        """
    )
    diags = [d for d in report.diagnostics if d.code == "misaligned-merge"]
    assert diags
    assert "left" in diags[0].message
    assert "right" in diags[0].message
    assert diags[0].data["branches"] == ["left", "right"]
    assert diags[0].data["jumps"] == ["2", "1"]


def test_google_net4_same_padding_unknown_then_known_then_misaligned() -> None:
    text = """
        input: [1, {n}, {n}]
        layers:
          - {{op: conv, name: l1, from: input, kernel: 1, stride: 4}}
          - {{op: conv, name: l2, from: input, kernel: 3, stride: 2, padding: same}}
          - {{op: conv, name: l3, kernel: 1, stride: 2}}
          - {{op: add, name: out, from: [l1, l3]}}
        """
    unknown = run(text.format(n="null"))
    f = unknown.output.field[0]
    assert (f.rf, f.jump, f.padding) == (3, 4, None)
    assert unknown.output.output.spatial == (None, None)
    assert any(d.code == "padding-unknown" for d in unknown.diagnostics)
    known = run(text.format(n=9))
    f = known.output.field[0]
    assert (f.rf, f.jump, f.padding) == (3, 4, 1)
    assert not [d for d in known.diagnostics if d.code == "misaligned-merge"]
    eight = run(text.format(n=8))
    assert [d for d in eight.diagnostics if d.code == "misaligned-merge"]


# -- alignment of causal stacks: branches end on the same sample ------------------------------------
TCN = """
    input: [1, 1000]
    blocks:
      residual:
        params: {dilation: 1, shortcut: false}
        layers:
          - {op: conv, name: conv1, out: 8, kernel: 3, dilation: "${dilation}", padding: [["${2 * dilation}", 0]]}
          - {op: relu, name: relu1}
          - {op: conv, name: conv2, out: 8, kernel: 3, dilation: "${dilation}", padding: [["${2 * dilation}", 0]]}
          - {op: dropout, name: drop}
          - {op: conv, name: down, from: input, out: 8, kernel: 1, when: "${shortcut}"}
          - {op: add, name: add, from: [drop, down]}
        output: add
    layers:
      - {block: residual, name: block, repeat: 4, with: {dilation: "${2 ** index}"}, first: {shortcut: true}}
    """


def test_causal_residual_branches_that_end_on_the_same_sample_are_aligned() -> None:
    """A TCN (Bai et al. 2018: two width-3 causal dilated convs per block, a 1×1 conv or the identity on the
    shortcut): unit u of both branches ends on sample u, though their centres differ (fields 1 and 4d+1)."""
    report = run(TCN)
    adds = [layer for layer in report.layers if layer.op == "add"]
    assert len(adds) == 4
    assert not [d for d in report.diagnostics if d.code == "misaligned-merge"]
    block0 = {layer.name: layer for layer in report.layers}
    conv2, down = block0["block.0.conv2"].field[0], block0["block.0.down"].field[0]
    assert (conv2.rf, down.rf) == (5, 1)  # 1 + 2·(3 − 1)·1
    assert (conv2.centre, down.centre) == (-2, 0)  # the centre rule would warn
    assert block0["block.0.conv2"].region((10,)) == ((6, 10),)
    assert block0["block.0.down"].region((10,)) == ((10, 10),)


def test_causal_branches_that_end_on_different_samples_warn_with_the_fix() -> None:
    """k2 s2 padded [1, 0] ends unit i on sample 2i; k3 s2 padded [1, 0] on 2i + 1: one sample later.
    One more pixel before on the second (padding [2, 0]) ends it on 2i too."""
    text = """
        input: [1, 64]
        layers:
          - {{op: conv, name: a, kernel: 2, stride: 2, padding: [[1, 0]]}}
          - {{op: conv, name: b, from: input, kernel: 3, stride: 2, padding: [[{before}, 0]]}}
          - {{op: add, name: out, from: [a, b]}}
        """
    report = run(text.format(before=1))
    (warning,) = [d for d in report.diagnostics if d.code == "misaligned-merge"]
    assert (warning.data["rule"], warning.data["shift"], warning.data["ends"]) == ("last sample", "1", ["0", "1"])
    assert "unit i of a ends at input pixel 0 + i·2, of b at 1 + i·2, 1 input pixel later" in warning.message
    assert "Fix: pad b 1 more before (padding before 1 → 2), which moves b 1 input pixel earlier" in warning.message
    fixed = run(text.format(before=2))
    assert not [d for d in fixed.diagnostics if d.code == "misaligned-merge"]


RESNET_D = """
    input: [8, 64, 64]
    layers:
      - {op: conv, name: stem, out: 8, kernel: 3, stride: 2, padding: 1}
      - {op: maxpool, name: pool, kernel: 3, stride: 2, padding: 1}
      - {op: conv, name: conv1, out: 4, kernel: 1}
      - {op: conv, name: conv2, out: 4, kernel: 3, stride: 2, padding: 1}
      - {op: conv, name: conv3, out: 16, kernel: 1}
      - {op: avgpool, name: down_pool, from: pool, kernel: 2, stride: 2, ceil_mode: true, count_include_pad: false}
      - {op: conv, name: down_conv, out: 16, kernel: 1}
      - {op: add, name: out, from: [conv3, down_conv]}
    """


def test_resnet_d_shortcut_still_warns_with_the_shift_in_input_pixels() -> None:
    """timm's resnet50d downsampling block at jump 4: the 3×3 stride-2 conv padded 1 centres unit i on
    8i (its input's 2i), the 2×2 average pool on its input's 2i + 1/2, i.e. 8i + 2: 2 input pixels after.
    Half a pixel of the block input: no padding moves it; the even kernel is named."""
    report = run(RESNET_D)
    warnings = [d for d in report.diagnostics if d.code == "misaligned-merge"]
    assert [w.data["axis"] for w in warnings] == ["H", "W"]
    for w in warnings:
        assert (w.data["rule"], w.data["shift"], w.data["centres"]) == ("centre", "2", ["0", "2"])
        assert "down_conv is shifted by 2 input pixels after conv3" in w.message
        assert "down_pool (kernel 2)" in w.message


def test_centre_shift_fix_names_the_padding_that_aligns() -> None:
    """Google's net4 at 8×8: SAME pads the stride-2 conv (0, 1), centring l3 one pixel after l1; one more
    pixel before (padding 1, 1) centres both on 4i, as at 9×9."""
    text = """
        input: [1, 8, 8]
        layers:
          - {{op: conv, name: l1, from: input, kernel: 1, stride: 4}}
          - {{op: conv, name: l2, from: input, kernel: 3, stride: 2, padding: {padding}}}
          - {{op: conv, name: l3, kernel: 1, stride: 2}}
          - {{op: add, name: out, from: [l1, l3]}}
        """
    (warning, _) = [d for d in run(text.format(padding="same")).diagnostics if d.code == "misaligned-merge"]
    assert "l3 is shifted by 1 input pixel after l1" in warning.message
    assert "Fix: pad l2 1 more before (padding before 0 → 1)" in warning.message
    assert not [d for d in run(text.format(padding=1)).diagnostics if d.code == "misaligned-merge"]


@pytest.mark.parametrize(
    ("layers", "causal"),
    [
        (["{op: conv, kernel: 2, padding: [[1, 0]]}"], True),  # pads only before
        (["{op: conv, kernel: 2, dilation: 4, padding: [[4, 0]]}", "{op: tanh}"], True),  # pointwise ops keep it
        (["{op: conv, kernel: 1, stride: 2}"], True),  # one sample at its own position
        (["{op: pad, padding: [[3, 0]]}"], True),
        (["{op: maxpool, kernel: 2, stride: 2, padding: [[1, 0]]}"], True),
        (["{op: conv, kernel: 3}"], False),  # no padding: reads two samples ahead
        (["{op: conv, kernel: 3, padding: 1}"], False),  # pads after
        (["{op: conv, kernel: 2, padding: same}"], False),  # same at stride 1: (0, 1)
        (["{op: pad, padding: [[-1, 0]]}"], False),  # a crop
        (["{op: avgpool, kernel: 2, padding: [[1, 0]], ceil_mode: true}"], False),  # a partial last window
        (["{op: conv, kernel: 2, padding: [[1, 0]]}", "{op: upsample, scale: 2}"], False),  # resampling
        (["{op: deconv, kernel: 2, stride: 2}"], False),  # transposed
    ],
)
def test_which_layers_pad_only_before(layers: list[str], causal: bool) -> None:
    report = run("input: [1, 32]\nlayers:\n" + "".join(f"  - {layer}\n" for layer in layers))
    m = report.output.maps[0]
    assert m is not None
    assert m.causal is causal


def test_google_net5_anisotropic() -> None:
    report = run(
        """
        input: [1, 32, 32]
        layers:
          - {op: conv, kernel: [3, 5], stride: 2}
          - {op: conv, kernel: [3, 1], stride: 2}
        """
    )
    rf_y, rf_x = report.output.field
    assert (rf_y.rf, rf_x.rf) == (7, 5)
    assert (rf_y.jump, rf_y.padding, rf_x.jump, rf_x.padding) == (4, 0, 4, 0)


def test_google_net8_and_net9() -> None:
    net8 = run(
        """
        input: [1, null, null]
        layers:
          - {op: conv, name: l1, from: input, kernel: 1, stride: 4}
          - {op: pad, name: p2, from: input, padding: [[1, 0], [1, 0]]}
          - {op: conv, name: l2, kernel: 3, stride: 2}
          - {op: conv, name: l3, kernel: 1, stride: 2}
          - {op: add, name: l4, from: [l1, l3]}
          - {op: conv, name: l5, from: l4, kernel: 1, stride: 2}
          - {op: pad, name: p6, from: l4, padding: [[1, 0], [1, 0]]}
          - {op: conv, name: l6, kernel: 3, stride: 2}
          - {op: add, name: out, from: [l5, l6]}
        """
    )
    f = net8.output.field[0]
    assert (f.rf, f.jump, f.padding) == (11, 8, 5)
    net9 = run(
        """
        input: [1, 17, 17]
        layers:
          - {op: conv, name: l1, from: input, kernel: 1, stride: 4, padding: same}
          - {op: conv, name: l2, from: input, kernel: 3, stride: 2, padding: same}
          - {op: conv, name: l3, kernel: 1, stride: 2, padding: same}
          - {op: add, name: l4, from: [l1, l3]}
          - {op: conv, name: l5, from: l4, kernel: 1, stride: 2, padding: same}
          - {op: conv, name: l6, from: l4, kernel: 3, stride: 2, padding: same}
          - {op: add, name: out, from: [l5, l6]}
        """
    )
    f = net9.output.field[0]
    assert (f.rf, f.jump, f.padding) == (11, 8, 5)


# -- worked examples and synthetic anchors (receptive-fields.md §5.2, conv-arithmetic.md §4.1) ------
def test_distill_worked_example_region_of_unit_3() -> None:
    report = chain(64, [("conv", 3, 1, 1, 1), ("conv", 3, 2, 1, 1), ("conv", 3, 1, 2, 2), ("conv", 2, 2, 0, 1),
                        ("conv", 3, 1, 1, 1)])  # fmt: skip
    f = report.output.field[0]
    assert (f.rf, f.jump, f.padding) == (23, 4, 10)
    assert report.output.region((3,)) == ((2, 24),)


def test_dang_ha_the_hien_guide_example() -> None:
    report = chain(5, [("conv", 3, 2, 1, 1), ("conv", 3, 2, 1, 1)])
    assert [layer.output.spatial for layer in report.layers] == [(3,), (2,)]
    assert rfs(report) == [3, 7]


def test_vgg_a_prefix_from_csdn() -> None:
    rows = [("conv", 3, 1, 1, 1), ("maxpool", 2, 2, 0, 1), ("conv", 3, 1, 1, 1), ("maxpool", 2, 2, 0, 1),
            ("conv", 3, 1, 1, 1), ("conv", 3, 1, 1, 1), ("maxpool", 2, 2, 0, 1)]  # fmt: skip
    assert rfs(chain(64, rows)) == [3, 4, 8, 10, 18, 26, 30]


def test_codingace_dilated_example() -> None:
    rows = [("conv", 3, 1, 1, 1), ("conv", 3, 2, 1, 1), ("maxpool", 2, 2, 0, 1), ("conv", 3, 1, 2, 2)]
    assert rfs(chain(64, rows)) == [3, 5, 7, 23]


def test_dilated_stack_2047() -> None:
    rows = [("conv", 3, 1, 2**i, 2**i) for i in range(10)]
    assert rfs(chain(2048, rows))[-1] == 2047


def test_yu_koltun_context_module() -> None:
    """Seven 3×3 layers with dilations 1, 1, 2, 4, 8, 16, 1, then 1×1: RF 3, 5, 9, 17, 33, 65, 67, 67."""
    rows = [("conv", 3, 1, d, d) for d in (1, 1, 2, 4, 8, 16, 1)] + [("conv", 1, 1, 0, 1)]
    assert rfs(chain(128, rows)) == [3, 5, 9, 17, 33, 65, 67, 67]


def test_dilated_same_conv_keeps_the_centre() -> None:
    """Fangyh09/pytorch-receptive-field#6: a 'same' dilated conv (k3, d2, p2) must not shift the centre."""
    report = chain(64, [("conv", 3, 1, 2, 2)] * 3)
    assert [layer.field[0].centre for layer in report.layers] == [0, 0, 0]
    assert rfs(report) == [5, 9, 13]


def test_alexnet_conv3_region_from_fangyh09() -> None:
    """torchvision AlexNet features at 224: the unit (6, 6) after conv3 covers 62..160 inclusive."""
    report = run(
        """
        input: [3, 224, 224]
        layers:
          - {op: conv, name: conv1, out: 64, kernel: 11, stride: 4, padding: 2}
          - {op: maxpool, name: pool1, kernel: 3, stride: 2}
          - {op: conv, name: conv2, out: 192, kernel: 5, padding: 2}
          - {op: maxpool, name: pool2, kernel: 3, stride: 2}
          - {op: conv, name: conv3, out: 384, kernel: 3, padding: 1}
        """
    )
    assert [layer.output.spatial[0] for layer in report.layers] == [55, 27, 27, 13, 13]
    assert rfs(report) == [11, 19, 51, 67, 99]
    assert report.output.region((6, 6)) == ((62, 160), (62, 160))


# -- transposed convs and upsampling: hand-derived phase fields ----------------------------------
def test_deconv_k4_s2_every_output_reads_two_inputs() -> None:
    """u + 1 = 2i + j, j < 4: every output position has exactly two i; no checkerboard warning."""
    report = run("input: [1, 8]\nlayers:\n  - {op: deconv, kernel: 4, stride: 2, padding: 1}\n")
    f = report.output.field[0]
    assert (f.rf, f.rf_min) == (2, 2)
    assert not report.diagnostics


def test_deconv_with_holes_is_an_error_diagnostic() -> None:
    report = run("input: [1, 8]\nlayers:\n  - {op: deconv, kernel: 3, stride: 2, dilation: 2}\n")
    (diag,) = report.diagnostics
    assert diag.code == "holes"
    assert str(diag.severity) == "error"
    # Taps 0, 2, 4 all land on even outputs 2m, from inputs m, m−1, m−2; odd outputs get nothing.
    assert (report.output.field[0].rf, report.output.field[0].rf_min) == (3, 3)


def test_bilinear_align_corners_zero_weight_reads_one_input() -> None:
    """5 → 9 with align_corners: source u/2, an integer on even u (one input), half-way on odd (two)."""
    report = run("input: [1, 5]\nlayers:\n  - {op: upsample, size: 9, mode: linear, align_corners: true}\n")
    f = report.output.field[0]
    assert (f.rf, f.rf_min, f.jump) == (2, 1, Fraction(1, 2))


def test_align_corners_with_a_known_size_gives_every_unit_its_field() -> None:
    """3601 → 7202 with align_corners: source u·3600/7201, which repeats only every 7201 units (more than
    MAX_PERIOD). Unit u reads floor and ceil of its source; a 3-tap conv padded 1 after it reads units −1
    and 7202 beyond the borders, whose sources −3600/7201 and 3600 + 3600/7201 reach pixels −1 and 3601."""
    report = run(
        """
        input: [1, 3601]
        layers:
          - {op: upsample, name: up, size: 7202, mode: linear, align_corners: true}
          - {op: conv, name: conv, kernel: 3, padding: 1}
        """
    )
    up, conv = report.layers
    assert not [d for d in report.diagnostics if d.code == "rf-unknown"]
    assert (up.field[0].rf, up.field[0].rf_min, up.field[0].jump) == (2, 1, Fraction(3600, 7201))
    for u in range(7202):
        source = Fraction(3600 * u, 7201)
        assert up.region((u,)) == ((math.floor(source), math.ceil(source)),), u
    assert (up.region((0,)), up.region((3,)), up.region((7201,))) == (((0, 0),), ((1, 2),), ((3600, 3600),))
    assert conv.region((0,)) == ((-1, 1),)
    assert conv.region((7201,)) == ((3599, 3601),)
    assert (conv.field[0].rf, conv.field[0].rf_min) == (3, 2)


def test_units_beyond_the_borders_of_a_map_listing_every_unit() -> None:
    """k3 s2 p1 transposed conv (overlap 1 on even units, 2 on odd: seed_deconv), then align_corners to 7202
    units (ratio 5998/7201, period 7201): units −3 and −2 have sources −2.4988 and −1.6659, i.e. low −3 with
    weight 3592/7201 (odd unit: 2) and −2 with 3609/7201 (even: 1); low −2 with 4795/7201 (even: 1) and −1
    with 2406/7201 (odd: 2). A 3-tap conv padded 1 reads −1..1: 13199/7201 + 1 + 13199/7201."""
    report = run(
        """
        input: [1, 3000]
        layers:
          - {op: deconv, name: up2, kernel: 3, stride: 2, padding: 1}
          - {op: upsample, name: up, size: 7202, mode: linear, align_corners: true}
          - {op: conv, name: conv, kernel: 3, padding: 1}
        """
    )
    up, conv = report.layers[1].maps[0], report.layers[2].maps[0]
    assert up is not None
    assert up.explicit
    assert conv is not None
    assert up.overlap_sum(-3, -2) == Fraction(3592 * 2 + 3609 + 4795 + 2406 * 2, 7201)
    assert (up.at(-3), up.at(-2)) == ((-2, -1), (-1, 0))
    assert conv.overlap_at(0) == Fraction(13199 * 2 + 7201, 7201)
    assert conv.at(0) == (-1, 1)


def test_rf_unknown_names_the_bound_on_units_listed() -> None:
    """40000 → 80000 with align_corners repeats every 79999 units, and 80000 units are more than MAX_UNITS."""
    report = run("input: [1, 40000]\nlayers:\n  - {op: upsample, scale: 2, mode: linear, align_corners: true}\n")
    assert report.output.field[0].rf is None
    (note,) = [d for d in report.diagnostics if d.code == "rf-unknown"]
    assert f"L has 80000 units, more than the {MAX_UNITS} it lists per axis" in note.message
    assert f"repeats only every more than {MAX_PERIOD} units" in note.message


def test_rf_unknown_when_a_long_period_meets_an_unknown_size() -> None:
    """Ratios 1000/1001 then 1000/999 repeat every 999999 units: listing them needs the size."""
    report = run(
        """
        input: [1, null]
        layers:
          - {op: upsample, scale: 1.001}
          - {op: upsample, scale: 0.999}
        """
    )
    assert report.layers[0].field[0].rf == 1  # nearest: one source pixel per unit
    (note,) = [d for d in report.diagnostics if d.code == "rf-unknown"]
    assert note.layer == "upsample2"
    assert "depends on the unknown input size: its pattern over output phases repeats only every more than" in (
        note.message
    )


def test_compound_note_of_a_map_listing_every_unit_gives_the_range_of_values() -> None:
    """A checkerboard resampled by nested align_corners, then a k3 s2 deconv: the overlap varies over all
    751 units; the note gives its range, not 751 values."""
    report = run(
        """
        input: [1, 48]
        layers:
          - {op: deconv, kernel: 3, stride: 2, padding: 1}
          - {op: upsample, mode: linear, scale: 2, align_corners: true}
          - {op: conv, kernel: 3}
          - {op: upsample, mode: linear, scale: 2, align_corners: true}
          - {op: conv, kernel: 3, padding: 1}
          - {op: deconv, name: last, kernel: 3, stride: 2, padding: 1}
        """
    )
    (m,) = report.output.maps
    assert m is not None
    (note,) = [d for d in report.diagnostics if d.code == "checkerboard-compound"]
    low, high = fraction_text(min(m.overlap)), fraction_text(max(m.overlap))
    assert f"per-phase values L: from {low} to {high}, unit by unit;" in note.message
    assert len(note.message) < 400


def test_nearest_upsample_then_conv_field() -> None:
    """×2 nearest then 3-tap conv: units 2m and 2m+1 read two input pixels (units u−1..u+1 span 2 sources)."""
    report = run("input: [1, 8]\nlayers:\n  - {op: upsample, scale: 2}\n  - {op: conv, kernel: 3, padding: 1}\n")
    f = report.output.field[0]
    assert (f.rf, f.rf_min, f.jump) == (2, 2, Fraction(1, 2))
    assert report.output.region((4,)) == ((1, 2),)
    assert report.output.region((5,)) == ((2, 3),)


# -- params and MACs: ptflops' convention, numbers from conv-arithmetic.md §5 -----------------------
@pytest.mark.parametrize(
    ("layer", "input_shape", "params", "macs"),
    [
        ("{op: conv, out: 32, kernel: 3, padding: 1}", "[16, 32, 32]", 4_640, 4_751_360),
        ("{op: conv, out: 32, kernel: 3, padding: 1, bias: false}", "[16, 32, 32]", 4_608, 4_718_592),
        ("{op: conv, out: 32, kernel: 3, stride: 2, padding: 1}", "[16, 32, 32]", 4_640, 1_187_840),
        ("{op: conv, out: 32, kernel: 3, padding: 1, groups: 32}", "[32, 32, 32]", 320, 327_680),
        ("{op: conv, out: 32, kernel: 3, padding: 1, groups: 4}", "[16, 32, 32]", 1_184, 1_212_416),
        ("{op: deconv, out: 16, kernel: 4, stride: 2, padding: 1}", "[32, 16, 16]", 8_208, 2_113_536),
        ("{op: deconv, out: 16, kernel: 3, stride: 2, padding: 1, output_padding: 1}", "[32, 16, 16]", 4_624,
         1_196_032),
    ],
)  # fmt: skip
def test_params_and_macs_match_ptflops(layer: str, input_shape: str, params: int, macs: int) -> None:
    report = run(f"input: {input_shape}\nlayers:\n  - {layer}\n")
    assert (report.total_params, report.total_macs) == (params, macs)


def test_conv_transpose_groups_params() -> None:
    """ConvTranspose2d(8, 4, 3, groups=2): weight (8, 2, 3, 3) + 4 biases = 148."""
    report = run("input: [8, 5, 5]\nlayers:\n  - {op: deconv, out: 4, kernel: 3, groups: 2}\n")
    assert report.total_params == 148


# -- refusals: PyTorch would not run these; the message says why and where -----------------------
@pytest.mark.parametrize(
    ("layers", "field", "needle"),
    [
        ("- {op: conv, kernel: 5}", "kernel", "smaller than the effective kernel 5"),
        ("- {op: deconv, kernel: 3, stride: 2, output_padding: 2}", "output_padding", "smaller than either stride"),
        ("- {op: maxpool, kernel: 2, padding: 2}", "padding", "at most half of the kernel size"),
        ("- {op: conv, kernel: 3, padding: 4, padding_mode: reflect}", "padding", "must be smaller than the input"),
        ("- {op: conv, out: 6, kernel: 1, groups: 4}", "groups", "divisible by groups 4"),
        ("- {op: linear, out: 10}", "op", "add a layer `op: flatten`"),
        ("- {op: pixel_unshuffle, factor: 3}", "factor", "divisible by factor 3"),
    ],
)
def test_refusals_name_layer_field_and_line(layers: str, field: str, needle: str) -> None:
    text = f"input: [4, 4, 4]\nlayers:\n  {layers}\n"
    with pytest.raises(ShapeError) as info:
        analyze(parse_stack(text, "net.yaml"))
    (problem,) = info.value.problems
    assert problem.field == field
    assert needle in problem.message
    assert problem.file == "net.yaml"
    assert problem.line == 3
    assert problem.layer is not None


def test_every_failing_layer_is_reported_and_dependents_are_skipped() -> None:
    text = textwrap.dedent(
        """
        input: [1, 8, 8]
        layers:
          - {op: conv, name: a, kernel: 9}
          - {op: relu, name: after_a}
          - {op: conv, name: b, from: input, kernel: 3, padding: 9}
          - {op: maxpool, name: c, from: input, kernel: 2, padding: 2}
        """
    )
    with pytest.raises(ShapeError) as info:
        analyze(parse_stack(text, "net.yaml"))
    assert [p.layer for p in info.value.problems] == ["a", "c"]


def test_concat_with_different_sizes_is_refused() -> None:
    with pytest.raises(ShapeError, match="concat needs equal spatial sizes"):
        run(
            """
            input: [1, 8, 8]
            layers:
              - {op: conv, name: a, kernel: 3}
              - {op: concat, from: [a, input]}
            """
        )


def test_unknown_input_size_keeps_everything_that_does_not_depend_on_it() -> None:
    report = run(
        """
        input: [3, null, null]
        layers:
          - {op: conv, out: 8, kernel: 3, stride: 2, padding: 1}
          - {op: conv, out: 8, kernel: 3, padding: 1}
        """
    )
    f = report.output.field[0]
    assert report.output.output.spatial == (None, None)
    assert (f.rf, f.jump, f.padding) == (7, 2, 3)
    assert report.total_params == 3 * 8 * 9 + 8 + 8 * 8 * 9 + 8
    assert report.total_macs is None


def test_squeeze_excitation_broadcast_makes_the_field_global() -> None:
    report = run(
        """
        input: [8, 16, 16]
        layers:
          - {op: conv, name: body, kernel: 3, padding: 1}
          - {op: adaptive_avgpool, name: squeeze, size: 1}
          - {op: conv, name: excite, kernel: 1}
          - {op: sigmoid, name: gate}
          - {op: mul, name: scaled, from: [body, gate]}
        """
    )
    assert report.output.output.spatial == (16, 16)
    assert report.output.field[0].is_global
    assert report.output.field[0].rf == 16


def test_squeeze_excitation_with_an_unknown_size_keeps_the_size_unknown() -> None:
    """[8, ?, ?] · [8, 1, 1] is 8×?×? (the gate is broadcast unless the unknown size is 1), not 8×1×1;
    every later layer keeps the unknown size and the global field."""
    report = run(
        """
        input: [8, null, null]
        layers:
          - {op: conv, name: body, kernel: 3, padding: 1}
          - {op: adaptive_avgpool, name: squeeze, size: 1}
          - {op: conv, name: excite, kernel: 1}
          - {op: sigmoid, name: gate}
          - {op: mul, name: scaled, from: [body, gate]}
          - {op: conv, name: after, out: 4, kernel: 3, padding: 1}
        """
    )
    scaled, after = report.layers[-2:]
    assert scaled.output == Shape(8, (None, None))
    assert after.output == Shape(4, (None, None))
    assert all(f.is_global for f in scaled.field + after.field)
    assert after.macs is None  # depends on the unknown size


@pytest.mark.parametrize(
    ("sizes", "expected"),
    [
        # (first branch, second branch) per axis: ? = unknown, 1, or adaptive 5; hand-derived broadcasting.
        (("null", 1), None),  # ? against 1: ? (1 only if the unknown is 1)
        ((1, "null"), None),
        (("null", 5), 5),  # ? against 5: the unknown must be 1 or 5; either way 5
        ((1, 5), 5),
        ((1, 1), 1),
        ((5, 5), 5),
    ],
)
def test_broadcast_size_with_unknown_sizes(sizes: tuple[object, object], expected: int | None) -> None:
    def branch(size: object, name: str) -> str:
        if size == "null":
            return f"{{op: identity, name: {name}, from: input}}"
        return f"{{op: adaptive_avgpool, name: {name}, from: input, size: {size}}}"

    report = run(
        f"""
        input: [2, null]
        layers:
          - {branch(sizes[0], "a")}
          - {branch(sizes[1], "b")}
          - {{op: add, name: out, from: [a, b]}}
        """
    )
    assert report.output.output == Shape(2, (expected,))


def test_broadcast_refuses_two_different_known_sizes_beside_an_unknown_one() -> None:
    with pytest.raises(ShapeError, match="add needs equal sizes"):
        run(
            """
            input: [1, null]
            layers:
              - {op: adaptive_avgpool, name: five, size: 5}
              - {op: adaptive_avgpool, name: seven, from: input, size: 7}
              - {op: add, from: [input, five, seven]}
            """
        )


def test_broadcast_channels_with_an_unknown_feature_count() -> None:
    """flatten of an unknown size has unknown features; against 1 feature they stay unknown."""
    report = run(
        """
        input: [2, null]
        layers:
          - {op: flatten, name: flat}
          - {op: linear, name: one, out: 1}
          - {op: add, name: out, from: [flat, one]}
        """
    )
    assert report.output.output == Shape(None, ())


# -- overlap of the ones-kernel skeleton: compounded checkerboards (conv-arithmetic.md §3.3) -------
@pytest.mark.parametrize(
    ("layers", "pattern", "ratio_2d"),
    [
        (["{op: deconv, kernel: 3, stride: 2, padding: 1}"], {"1", "2"}, "4"),
        (["{op: deconv, kernel: 3, stride: 2, padding: 1}"] * 2, {"1", "2", "3"}, "9"),
        (
            ["{op: deconv, kernel: 3, stride: 2, padding: 1}"] * 2 + ["{op: conv, kernel: 3, padding: 1}"],
            {"6", "7", "8"},
            "16/9",
        ),
        (["{op: deconv, kernel: 4, stride: 2, padding: 1}"] * 2, {"4"}, "1"),
        (
            ["{op: deconv, kernel: 3, stride: 2, padding: 1}", "{op: deconv, kernel: 4, stride: 2, padding: 1}"],
            {"3"},
            "1",
        ),
    ],
)
def test_stacked_deconv_overlap_matches_the_reference_table(
    layers: list[str], pattern: set[str], ratio_2d: str
) -> None:
    """Interior values of 2-D ones stacks (reference §3.3): {1,2,4} → 4; two k3 s2 → 1-D `1 3 2 3`, 9 in 2-D;
    then a stride-1 3×3 conv → 1-D `8 6 7 6`, (8/6)² = 16/9; k4 s2 twice → flat; k3 s2 then k4 s2 → flat."""
    report = run("input: [1, 32, 32]\nlayers:\n" + "".join(f"  - {layer}\n" for layer in layers))
    m = report.output.maps[0]
    assert m is not None
    assert {str(v) for v in m.overlap} == pattern
    f = report.output.field
    assert str(f[0].overlap * f[1].overlap) == ratio_2d


def test_compounding_is_reported_where_it_happens() -> None:
    report = run(
        """
        input: [1, 16, 16]
        layers:
          - {op: deconv, name: up1, kernel: 3, stride: 2, padding: 1}
          - {op: deconv, name: up2, kernel: 3, stride: 2, padding: 1}
          - {op: conv, name: smooth, kernel: 3, padding: 1}
        """
    )
    compound = [d for d in report.diagnostics if d.code == "checkerboard-compound"]
    assert [(d.layer, d.data["ratio"], d.data["own"]) for d in compound] == [("up2", "9", "4")]
    assert "H and W: 1 · 3 · 2 · 3" in compound[0].message
    assert "max:min 9:1" in compound[0].message


def test_a_divisible_second_deconv_cancels_without_a_compound_warning() -> None:
    report = run(
        """
        input: [1, 16, 16]
        layers:
          - {op: deconv, kernel: 3, stride: 2, padding: 1}
          - {op: deconv, kernel: 4, stride: 2, padding: 1}
        """
    )
    assert [d.code for d in report.diagnostics] == ["checkerboard"]
    assert report.output.field[0].overlap == 1


# -- same-strided: the explicit padding a PyTorch port needs ----------------------------------------
SAME_STRIDED = """
    input: [1, 7, 8]
    layers:
      - {{op: {op}, kernel: 3, stride: 2, padding: same}}
    """


@pytest.mark.parametrize(("op", "value"), [("maxpool", ", value=float('-inf')"), ("avgpool", ""), ("conv", "")])
def test_same_strided_port_pads_a_max_pool_with_minus_infinity(op: str, value: str) -> None:
    """TF SAME at stride 2, k3: H 7 → (1, 1), W 8 → (0, 1); F.pad lists the last axis first."""
    (note,) = [d for d in run(SAME_STRIDED.format(op=op)).diagnostics if d.code == "same-strided"]
    assert f"F.pad(x, (0, 1, 1, 1){value}) then padding=0" in note.message


def test_same_strided_max_pool_port_matches_tf_same() -> None:
    """The advised port on an all −1 input gives −1 everywhere, as TF's SAME max pool does (every window
    holds an input pixel); padding with zeros would put 0 in the border windows."""
    torch = pytest.importorskip("torch")
    import re

    import torch.nn.functional as F

    (note,) = [d for d in run(SAME_STRIDED.format(op="maxpool")).diagnostics if d.code == "same-strided"]
    match = re.search(r"F\.pad\(x, \(([-0-9, ]+)\)(, value=float\('-inf'\))?\)", note.message)
    assert match is not None
    pads = [int(v) for v in match.group(1).split(",")]
    fill = -math.inf if match.group(2) else 0.0
    x = -torch.ones((1, 1, 7, 8), dtype=torch.float64)
    y = F.max_pool2d(F.pad(x, pads, value=fill), 3, 2)
    assert tuple(y.shape[2:]) == (4, 4)  # ceil(7/2), ceil(8/2)
    assert bool((y == -1).all())


def test_a_merge_of_branches_that_reach_nothing_is_analysed() -> None:
    """Regression: a merge whose branches' units all fall in a transposed conv's holes crashed (assert).

    By hand: deconv k1 s3 feeds output t only where t ≡ 0 (mod 3); conv k1 s3 p1 unit u reads t = 3u − 1
    ≡ 2 (mod 3), so no unit of `c` (nor of the add) reaches the input.
    """
    spec = parse_stack(
        "input: [1, 60]\nlayers:\n  - {op: upsample, scale: 2}\n  - {op: deconv, kernel: 1, stride: 3}\n"
        "  - {op: conv, kernel: 1, stride: 3, padding: 1, name: c}\n  - {op: add, from: [c, c]}\n",
        "holes.yaml",
    )
    report = analyze(spec)
    for name in ("c", "add1"):
        layer = report.layer(name)
        assert layer.field[0].rf == 0
        assert all(layer.region((u,)) == (None,) for u in range(layer.output.spatial[0] or 0))
    assert "holes" in {d.code for d in report.diagnostics}
