"""Published numbers for the bundled architectures, each with its source.

Receptive fields are per axis in input pixels (RF), with the jump (effective stride S) and the
effective padding P of Araujo et al., "Computing Receptive Fields of Convolutional Neural Networks",
Distill 2019 (doi:10.23915/distill.00021); all inputs 224×224 unless stated. Where a value is marked
"derived" it was computed by hand with the Distill recurrences r += (k−1)·S, P += p·S, S *= s and agrees
with the verbatim sources cited next to it.
"""

from __future__ import annotations

import textwrap
from functools import cache
from pathlib import Path

import pytest

from convcalc.analysis.engine import analyze
from convcalc.analysis.report import LayerReport, StackReport
from convcalc.format.loader import load_stack, parse_input_shape, parse_stack

CONFIGS = Path(__file__).parent.parent / "configs"


@cache
def report(name: str) -> StackReport:
    return analyze(load_stack(CONFIGS / f"{name}.yaml"))


def layer(rep: StackReport, name: str) -> LayerReport:
    for candidate in rep.layers:
        if candidate.name == name:
            return candidate
    raise KeyError(name)


def rf_jump_pad(rep: StackReport, name: str) -> tuple[int | None, int, int]:
    """(RF, jump, P) of a layer whose axes all agree (square inputs and kernels)."""
    axes = {(f.rf, f.jump, f.padding) for f in layer(rep, name).field}
    assert len(axes) == 1, f"{name}: axes differ {axes}"
    rf, jump, pad = axes.pop()
    assert jump is not None
    assert pad is not None
    assert jump.denominator == 1
    assert pad.denominator == 1
    return rf, int(jump), int(pad)


# --------------------------------------------------------------------------- ResNet-50 (torchvision)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # nashory/DeLF-pytorch#15, verbatim: "layer3.5.conv3 RF: 267 STR: 16 PAD: 133" and
        # "layer4.2.conv3 RF: 427 STR: 32 PAD: 213" (torchvision ResNet-50, stride on the 3×3).
        ("layer3.5.conv3", (267, 16, 133)),
        ("layer4.2.conv3", (427, 32, 213)),
        # The stage outputs (after the residual add) keep the largest-RF path's numbers.
        ("layer3.5.relu", (267, 16, 133)),
        ("layer4.2.relu", (427, 32, 213)),
        # Derived (receptive-fields.md §5.1): layer1 35 / 4 / 17, layer2 91 / 8 / 45.
        ("layer1.2.relu", (35, 4, 17)),
        ("layer2.3.relu", (91, 8, 45)),
    ],
)
def test_resnet50_published_fields(name: str, expected: tuple[int, int, int]) -> None:
    assert rf_jump_pad(report("resnet50"), name) == expected


# --------------------------------------------------------------------------- VGG-16

VGG16 = [
    # (layer, RF, jump, P). RF verbatim from kkrunal77/EVA 7.md and sksq96/pytorch-summary#47;
    # conv5_3 196 and pool5 212 also match Google's receptive_field table (vgg_16); P derived.
    ("conv1_1", 3, 1, 1), ("conv1_2", 5, 1, 2), ("pool1", 6, 2, 2),
    ("conv2_1", 10, 2, 4), ("conv2_2", 14, 2, 6), ("pool2", 16, 4, 6),
    ("conv3_1", 24, 4, 10), ("conv3_2", 32, 4, 14), ("conv3_3", 40, 4, 18), ("pool3", 44, 8, 18),
    ("conv4_1", 60, 8, 26), ("conv4_2", 76, 8, 34), ("conv4_3", 92, 8, 42), ("pool4", 100, 16, 42),
    ("conv5_1", 132, 16, 58), ("conv5_2", 164, 16, 74), ("conv5_3", 196, 16, 90), ("pool5", 212, 32, 90),
]  # fmt: skip


@pytest.mark.parametrize(("name", "rf", "jump", "pad"), VGG16)
def test_vgg16_published_fields(name: str, rf: int, jump: int, pad: int) -> None:
    assert rf_jump_pad(report("vgg16"), name) == (rf, jump, pad)


# --------------------------------------------------------------------------- AlexNet (torchvision)

ALEXNET = [
    # (layer, RF, jump, P, output size): derived in receptive-fields.md §5.1 for torchvision's
    # `features` at 224; output sizes 55, 27, 27, 13, 13, 13, 13, 6 as torchvision's comments give.
    ("conv1", 11, 4, 2, 55), ("pool1", 19, 8, 2, 27), ("conv2", 51, 8, 18, 27), ("pool2", 67, 16, 18, 13),
    ("conv3", 99, 16, 34, 13), ("conv4", 131, 16, 50, 13), ("conv5", 163, 16, 66, 13),
    ("pool5", 195, 32, 66, 6),
]  # fmt: skip


@pytest.mark.parametrize(("name", "rf", "jump", "pad", "size"), ALEXNET)
def test_alexnet_published_fields(name: str, rf: int, jump: int, pad: int, size: int) -> None:
    rep = report("alexnet")
    assert rf_jump_pad(rep, name) == (rf, jump, pad)
    assert layer(rep, name).output.spatial == (size, size)


def test_alexnet_conv3_unit_region() -> None:
    # Fangyh09/pytorch-receptive-field docstring, verbatim: torchvision AlexNet, unit (6, 6) after conv3
    # has the region (62.0, 161.0) half-open, i.e. pixels 62..160 inclusive, on both axes.
    assert layer(report("alexnet"), "conv3").region((6, 6)) == ((62, 160), (62, 160))


# --------------------------------------------------------------------------- GoogLeNet (torchvision)


def test_googlenet_ceil_mode_pools() -> None:
    # torchvision/models/googlenet.py comments, verbatim: N x 64 x 112 x 112 → maxpool1 → N x 64 x 56 x 56,
    # then 28, 14 and 7 after maxpool2, 3, 4. With floor the first pool would give 55.
    rep = report("googlenet")
    assert layer(rep, "conv1.conv").output.spatial == (112, 112)
    sizes = [layer(rep, f"maxpool{i}").output.spatial for i in (1, 2, 3, 4)]
    assert sizes == [(56, 56), (28, 28), (14, 14), (7, 7)]
    assert layer(rep, "inception5b.cat").output.channels == 1024


GOOGLENET = [
    # (layer, RF, jump, P): derived in receptive-fields.md §5.1 (torchvision GoogLeNet with its 3×3 branch3),
    # the inception modules' numbers are those of their concatenation (largest-RF branch).
    ("maxpool2", 27, 8, 7), ("inception3a.cat", 43, 8, 15), ("inception3b.cat", 59, 8, 23),
    ("maxpool3", 75, 16, 23), ("inception4a.cat", 107, 16, 39), ("inception4b.cat", 139, 16, 55),
    ("inception4c.cat", 171, 16, 71), ("inception4d.cat", 203, 16, 87), ("inception4e.cat", 235, 16, 103),
    ("maxpool4", 251, 32, 103), ("inception5a.cat", 315, 32, 135), ("inception5b.cat", 379, 32, 167),
]  # fmt: skip


@pytest.mark.parametrize(("name", "rf", "jump", "pad"), GOOGLENET)
def test_googlenet_stage_fields(name: str, rf: int, jump: int, pad: int) -> None:
    assert rf_jump_pad(report("googlenet"), name) == (rf, jump, pad)


# --------------------------------------------------------------------------- dilated stacks


def test_wavenet_1024_and_1025() -> None:
    # ibab/tensorflow-wavenet#259, verbatim: width-2 convs with dilations 1, 2, ..., 512 see 1024 samples;
    # the initial width-2 causal conv adds one: 1025.
    assert layer(report("wavenet_tcn"), "dil512").field[0].rf == 1025
    assert layer(report("wavenet"), "layer.9.filter").field[0].rf == 1025
    assert layer(report("wavenet"), "skips").field[0].rf == 1025
    stack = "\n".join(f"  - {{op: conv, kernel: 2, dilation: {2**i}, padding: [[{2**i}, 0]]}}" for i in range(10))
    alone = analyze(parse_stack(f"input: [1, 4096]\nlayers:\n{stack}\n", "dilated.yaml"))
    assert alone.output.field[0].rf == 1024
    # Causal: the last output sample's field ends at that sample (padding [d(k−1), 0] only looks back).
    assert alone.output.region((4095,)) == ((4095 - 1023, 4095),)


def test_ten_layer_three_tap_dilated_stack_2047() -> None:
    # tooljolt.com dilated-conv receptive-field calculator, verbatim: ten 3-tap layers with dilations
    # 1, 2, ..., 512 → 2047.
    text = "input: [1, 5000]\nlayers:\n" + "".join(
        f"  - {{op: conv, kernel: 3, dilation: {2**i}, padding: {2**i}}}\n" for i in range(10)
    )
    assert analyze(parse_stack(text, "dilated.yaml")).output.field[0].rf == 2047


def test_wavenet_block_form_equals_the_spelled_out_dilations() -> None:
    text = textwrap.dedent(
        """\
        input: [1, 2048]
        blocks:
          causal:
            params: {d: 1}
            layers:
              - {op: conv, name: conv, kernel: 2, dilation: "${d}", padding: [["${d}", 0]]}
        layers:
          - {block: causal, name: l, repeat: 10, with: {d: "${2 ** index}"}}
        """
    )
    spec = parse_stack(text, "blocks.yaml")
    assert [lay.dilation[0] for lay in spec.layers] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
    assert analyze(spec).output.field[0].rf == 1024


# --------------------------------------------------------------------------- parameter counts

PARAMS = [
    # torchvision's published "num_params" (the weights' metadata in torchvision.models, and the model
    # tables in its docs): ResNet18_Weights 11,689,512; ResNet50_Weights 25,557,032; VGG16_Weights
    # 138,357,544; AlexNet_Weights 61,100,840; MobileNet_V2_Weights 3,504,872; GoogLeNet_Weights 6,624,904
    # (without the auxiliary classifiers, as in inference); MobileNet_V3_Large_Weights 5,483,032;
    # ConvNeXt_Tiny_Weights 28,589,128.
    ("resnet18", 11_689_512),
    ("resnet50", 25_557_032),
    ("vgg16", 138_357_544),
    ("alexnet", 61_100_840),
    ("mobilenet_v2", 3_504_872),
    ("googlenet", 6_624_904),
    ("mobilenet_v3_large", 5_483_032),
    ("convnext_tiny", 28_589_128),
    ("shufflenet_v2_x1_0", 2_278_604),  # ShuffleNet_V2_X1_0_Weights' num_params
]


@pytest.mark.parametrize(("name", "count"), PARAMS)
def test_torchvision_parameter_counts(name: str, count: int) -> None:
    assert report(name).total_params == count


@pytest.mark.torch
def test_parameter_counts_of_torch_built_modules() -> None:
    """Cross-check two of the counts above by building the torchvision definitions from torch.nn."""
    torch = pytest.importorskip("torch")
    nn = torch.nn
    alexnet = nn.Sequential(
        nn.Conv2d(3, 64, 11, 4, 2), nn.Conv2d(64, 192, 5, padding=2), nn.Conv2d(192, 384, 3, padding=1),
        nn.Conv2d(384, 256, 3, padding=1), nn.Conv2d(256, 256, 3, padding=1),
        nn.Linear(256 * 6 * 6, 4096), nn.Linear(4096, 4096), nn.Linear(4096, 1000),
    )  # fmt: skip
    assert sum(p.numel() for p in alexnet.parameters()) == 61_100_840 == report("alexnet").total_params
    widths = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    vgg = nn.Sequential(
        *(nn.Conv2d(i, o, 3, padding=1) for i, o in zip([3, *widths[:-1]], widths, strict=True)),
        nn.Linear(512 * 7 * 7, 4096), nn.Linear(4096, 4096), nn.Linear(4096, 1000),
    )  # fmt: skip
    assert sum(p.numel() for p in vgg.parameters()) == 138_357_544 == report("vgg16").total_params


# --------------------------------------------------------------------------- 3-D


def test_3d_unet_paper_tile() -> None:
    # Çiçek et al. 2016, Fig. 1 (verbatim): a 132×132×116 voxel tile with 3 channels gives a 44×44×28
    # output, 3 classes; unpadded 3×3×3 convs, 2×2×2 pools and up-convolutions.
    rep = analyze(load_stack(Path(__file__).parent / "data" / "unet3d_paper.yaml"))
    assert (rep.output.output.channels, *rep.output.output.spatial) == (3, 28, 44, 44)
    assert layer(rep, "bottleneck.relu2").output.spatial == (7, 9, 9)  # 512 × 9×9×7 at the bottom in Fig. 1


def test_3x3x3_conv_after_three_downsamplings_adds_16() -> None:
    # BRML/CNNbasedMedicalSegmentation#2 (verbatim): after 3 stride-2 downsamplings a 3×3×3 conv adds
    # 2³·2 = 16 to the receptive field.
    rep = analyze(load_stack(Path(__file__).parent / "data" / "unet3d_paper.yaml"))
    pool3 = layer(rep, "pool3").field[0].rf
    conv1 = layer(rep, "bottleneck.conv1").field[0].rf
    conv2 = layer(rep, "bottleneck.conv2").field[0].rf
    assert pool3 is not None
    assert (conv1, conv2) == (pool3 + 16, pool3 + 32)


def test_vnet_encoder_paper_volume() -> None:
    # Milletari et al. 2016, Fig. 1: 128×128×64 input → 64×64×32 (32 ch) → 32×32×16 (64) → 16×16×8 (128)
    # → 8×8×4 (256) along the encoder.
    spec = load_stack(CONFIGS / "vnet_encoder.yaml", parse_input_shape("1x64x128x128"))
    rep = analyze(spec)
    stages = [f"down_tr{c}.relu" for c in (32, 64, 128, 256)]
    sizes = [(layer(rep, name).output.channels, *layer(rep, name).output.spatial) for name in stages]
    assert sizes == [(32, 32, 64, 64), (64, 16, 32, 32), (128, 8, 16, 16), (256, 4, 8, 8)]
