"""The ONNX importer against onnxruntime (actual output shapes), torch (the module's params and shapes)
and hand-written YAML stacks of the same architectures (receptive fields).

Models are exported in the test from torch.nn modules with both exporters; graphs built by hand with
onnx.helper check the mappings and the refusals without torch.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
np = pytest.importorskip("numpy")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from convcalc.analysis.engine import analyze  # noqa: E402
from convcalc.errors import SpecError  # noqa: E402
from convcalc.format.loader import load_stack, parse_stack  # noqa: E402
from convcalc.importers.onnx import from_onnx, read_onnx  # noqa: E402
from convcalc.stack.spec import InputSpec  # noqa: E402

ROOT = Path(__file__).parent.parent


# --------------------------------------------------------------------------- helpers


def ort_shapes(path: Path, x: Any) -> dict[str, tuple[int, ...]]:
    """Every node output's actual shape, by running the model with onnxruntime (all tensors exposed)."""
    model = onnx.load(str(path))
    known = {o.name for o in model.graph.output}
    for node in model.graph.node:
        for out in node.output:
            if out and out not in known:
                model.graph.output.append(helper.make_value_info(out, onnx.TypeProto()))
                known.add(out)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    values = session.run(names, {session.get_inputs()[0].name: x})
    return {n: tuple(np.asarray(v).shape) for n, v in zip(names, values, strict=True)}


def check_against_ort(path: Path, x: Any, input: InputSpec | None = None) -> Any:
    """Import `path` and check every layer's shape against onnxruntime's; the import."""
    imported = read_onnx(path, input)
    report = analyze(imported.stack)
    actual = ort_shapes(path, x)
    assert imported.tensors, "no layer maps to a tensor"
    for layer in report.layers:
        tensor = imported.tensors.get(layer.name)
        if tensor is None:
            continue
        expected = actual[tensor][1:]
        assert (layer.output.channels, *layer.output.spatial) == expected, (layer.name, tensor)
    return imported


def make_model(nodes: list[Any], shape: list[Any], inits: dict[str, Any] | None = None, opset: int = 17) -> Any:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, None)
    initializers = [numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()]
    graph = helper.make_graph(nodes, "g", [x], [y], initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def save(tmp_path: Path, model: Any, name: str = "m.onnx") -> Path:
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


def weight(*shape: int) -> Any:
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


# --------------------------------------------------------------------------- hand-built graphs (no torch)


def test_conv_pool_defaults_differ_from_pytorch(tmp_path: Path) -> None:
    # ONNX pool strides default to 1 and count_include_pad to 0: both written explicitly.
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 0, 2, 1], strides=[2, 1], name="conv"),
        helper.make_node("AveragePool", ["c"], ["p"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], name="pool"),
        helper.make_node(
            "MaxPool", ["p"], ["q"], kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1, name="mp"
        ),
    ]
    path = save(tmp_path, make_model(nodes, [1, 3, 11, 10], {"w": weight(8, 3, 3, 3)}))
    imported = check_against_ort(path, np.ones((1, 3, 11, 10), np.float32))
    pool = imported.stack.layer("pool")
    assert pool.stride == (1, 1)
    assert pool.count_include_pad is False
    conv = imported.stack.layer("conv")
    assert conv.padding == ((1, 2), (0, 1))  # type: ignore[attr-defined]


@pytest.mark.parametrize("stored", [True, False], ids=["affine", "constant-ones"])
def test_groupnorm_pattern_is_affine_when_its_weight_is_stored(tmp_path: Path, stored: bool) -> None:
    # The legacy exporter writes nn.GroupNorm(affine=False) with the same Mul and Add, of Constant ones
    # and zeros: only a stored (initializer) weight makes the layer affine (2C params).
    ones = np.ones((8, 1, 1), np.float32)
    consts = [] if stored else [
        helper.make_node("Constant", [], ["gw"], value=numpy_helper.from_array(ones)),
        helper.make_node("Constant", [], ["gb"], value=numpy_helper.from_array(0 * ones)),
    ]  # fmt: skip
    nodes = [
        *consts,
        helper.make_node("Reshape", ["x", "grouped"], ["r"]),
        helper.make_node("InstanceNormalization", ["r", "s", "b"], ["n"], epsilon=1e-3, name="gn"),
        helper.make_node("Reshape", ["n", "back"], ["u"]),
        helper.make_node("Mul", ["u", "gw"], ["m"]),
        helper.make_node("Add", ["m", "gb"], ["y"]),
    ]
    inits = {
        "grouped": np.array([1, 2, -1], np.int64),
        "back": np.array([1, 8, 5, 6], np.int64),
        "s": np.ones(2, np.float32),
        "b": np.zeros(2, np.float32),
    }
    if stored:
        inits |= {"gw": ones, "gb": 0 * ones}
    path = save(tmp_path, make_model(nodes, [1, 8, 5, 6], inits))
    imported = check_against_ort(path, np.ones((1, 8, 5, 6), np.float32))
    (layer,) = imported.stack.layers
    assert (layer.op, layer.groups, layer.eps, layer.affine) == ("groupnorm", 2, pytest.approx(1e-3), stored)  # type: ignore[attr-defined]
    assert analyze(imported.stack).total_params == (16 if stored else 0)
    assert all(m is not None and m.is_global for m in analyze(imported.stack).output.maps)


def test_layernorm_and_instancenorm_outside_their_patterns_are_refused(tmp_path: Path) -> None:
    ln = helper.make_node("LayerNormalization", ["x", "s"], ["y"], axis=1, name="ln")
    path = save(tmp_path, make_model([ln], [1, 4, 5, 6], {"s": np.ones((4, 5, 6), np.float32)}))
    with pytest.raises(SpecError, match="LayerNormalization outside Transpose"):
        from_onnx(path)
    inorm = helper.make_node("InstanceNormalization", ["x", "s", "b"], ["y"], name="in")
    path = save(
        tmp_path, make_model([inorm], [1, 4, 5, 6], {"s": np.ones(4, np.float32), "b": np.zeros(4, np.float32)})
    )
    with pytest.raises(SpecError, match="outside the GroupNorm pattern"):
        from_onnx(path)


@pytest.mark.parametrize("n", [5, 10])
def test_ceil_mode_windows_starting_in_the_padding_are_dropped(tmp_path: Path, n: int) -> None:
    # onnx.shape_inference gets these wrong (onnx#5711); convcalc's arithmetic and ORT agree.
    kernel, pad = (2, 1) if n == 5 else (1, 0)
    node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[kernel], strides=[2], pads=[pad, pad], ceil_mode=1)
    path = save(tmp_path, make_model([node], [1, 2, n]))
    check_against_ort(path, np.ones((1, 2, n), np.float32))


def test_conv_transpose_output_shape_and_asymmetric_pads(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("ConvTranspose", ["x", "w"], ["a"], strides=[2, 2], pads=[0, 1, 1, 0], name="up1"),
        helper.make_node("ConvTranspose", ["a", "w2"], ["b"], strides=[2, 2], output_shape=[29, 30], name="up2"),
    ]
    path = save(tmp_path, make_model(nodes, [1, 4, 7, 8], {"w": weight(4, 6, 3, 3), "w2": weight(6, 2, 3, 3)}))
    imported = check_against_ort(path, np.ones((1, 4, 7, 8), np.float32))
    ops = [layer.op for layer in imported.stack.layers]
    assert ops.count("deconv") == 2
    assert "pad" in ops


def test_resize_modes(tmp_path: Path) -> None:
    scales = np.array([1, 1, 2, 2], np.float32)
    nodes = [
        helper.make_node(
            "Resize", ["x", "", "s"], ["a"], mode="linear", coordinate_transformation_mode="align_corners"
        ),
        helper.make_node(
            "Resize",
            ["a", "", "s"],
            ["b"],
            mode="nearest",
            coordinate_transformation_mode="asymmetric",
            nearest_mode="floor",
        ),
        helper.make_node(
            "Resize", ["b", "", "", "sz"], ["c"], mode="linear", coordinate_transformation_mode="half_pixel"
        ),
    ]
    inits = {"s": scales, "sz": np.array([1, 3, 30, 50], np.int64)}
    path = save(tmp_path, make_model(nodes, [1, 3, 5, 6], inits, opset=13))
    imported = check_against_ort(path, np.ones((1, 3, 5, 6), np.float32))
    a, b, c = imported.stack.layers
    assert (a.mode, a.align_corners, b.mode, c.size) == ("linear", True, "nearest", (30, 50))  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("attrs", "refused"),
    [
        (
            {"mode": "linear", "coordinate_transformation_mode": "asymmetric"},
            "coordinate_transformation_mode 'asymmetric'",
        ),
        ({"mode": "linear", "coordinate_transformation_mode": "tf_crop_and_resize"}, "tf_crop_and_resize"),
        ({"mode": "linear", "antialias": 1}, "antialias"),
    ],
)
def test_resize_modes_convcalc_cannot_express_are_refused_by_name(
    tmp_path: Path, attrs: dict[str, Any], refused: str
) -> None:
    node = helper.make_node("Resize", ["x", "", "s"], ["y"], name="rs", **attrs)
    path = save(tmp_path, make_model([node], [1, 3, 5, 6], {"s": np.array([1, 1, 2, 2], np.float32)}, opset=18))
    with pytest.raises(SpecError) as info:
        from_onnx(path)
    text = str(info.value)
    assert refused in text
    assert "node 'rs' (Resize)" in text


def test_unsupported_op_names_node_attributes_tensors_and_last_supported_tensor(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="act"),
        helper.make_node("LpNormalization", ["r"], ["n"], axis=1, p=2, name="norm"),
        helper.make_node("Relu", ["n"], ["y"], name="after"),
    ]
    path = save(tmp_path, make_model(nodes, [1, 3, 8, 8]))
    with pytest.raises(SpecError) as info:
        from_onnx(path)
    text = str(info.value)
    for part in (
        "node 'norm' (LpNormalization)",
        "axis=1",
        "p=2",
        "inputs 'r'",
        "outputs 'n'",
        "last supported tensor is 'r'",
    ):
        assert part in text, part
    stopped = read_onnx(path, on_unsupported="stop")
    assert [layer.op for layer in stopped.stack.layers] == ["relu"]
    assert stopped.stopped is not None
    assert "norm" in stopped.stopped
    assert [layer.name for layer in read_onnx(path, output="r").stack.layers] == ["act"]


def test_shape_subgraph_folds_with_convcalcs_shapes(tmp_path: Path) -> None:
    # x.view(x.size(0), -1) as the legacy exporter writes it with a dynamic batch.
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        helper.make_node("Shape", ["c"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "ax"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus"], ["target"], axis=0),
        helper.make_node("Reshape", ["c", "target"], ["f"], name="view"),
        helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1, name="fc"),
    ]
    inits = {
        "w": weight(4, 3, 3, 3),
        "zero": np.array(0, np.int64),
        "ax": np.array([0], np.int64),
        "minus": np.array([-1], np.int64),
        "fc": weight(10, 4 * 6 * 6),
    }
    path = save(tmp_path, make_model(nodes, ["N", 3, 8, 8], inits, opset=13))
    imported = check_against_ort(path, np.ones((2, 3, 8, 8), np.float32))
    assert [layer.op for layer in imported.stack.layers] == ["conv", "flatten", "linear"]


def test_dynamic_sizes_import_as_unknown_and_input_fixes_them(tmp_path: Path) -> None:
    node = helper.make_node("Conv", ["x", "w"], ["y"], strides=[2, 2], name="conv")
    path = save(tmp_path, make_model([node], ["N", 3, "H", "W"], {"w": weight(4, 3, 3, 3)}))
    assert analyze(from_onnx(path)).output.output.spatial == (None, None)
    fixed = from_onnx(path, InputSpec(3, (9, 12)))
    assert analyze(fixed).output.output.spatial == (4, 5)  # floor((9-3)/2)+1, floor((12-3)/2)+1


def test_pytorch_refusals_apply_and_name_the_node(tmp_path: Path) -> None:
    # A 5×5 window on a 3×3 input: PyTorch refuses it; the message names the ONNX node.
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="too_big")
    path = save(tmp_path, make_model([node], [1, 3, 3, 3], {"w": weight(4, 3, 5, 5)}))
    with pytest.raises(Exception, match=r"node 'too_big' \(Conv\)"):
        analyze(from_onnx(path))


def test_silu_pattern_and_pad_conv_fusion(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["p"], mode="reflect", name="pad"),
        helper.make_node("Conv", ["p", "w"], ["c"], name="conv"),
        helper.make_node("Sigmoid", ["c"], ["s"]),
        helper.make_node("Mul", ["c", "s"], ["y"], name="silu"),
    ]
    inits = {"pads": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "w": weight(4, 3, 3, 3)}
    path = save(tmp_path, make_model(nodes, [1, 3, 8, 8], inits))
    imported = check_against_ort(path, np.ones((1, 3, 8, 8), np.float32))
    conv, act = imported.stack.layers
    assert (conv.op, conv.padding_mode, conv.padding, act.op) == ("conv", "reflect", ((1, 1), (1, 1)), "silu")  # type: ignore[attr-defined]


def test_not_an_onnx_file(tmp_path: Path) -> None:
    bad = tmp_path / "x.onnx"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(Exception, match="not an ONNX model"):
        from_onnx(bad)


def test_hardswish_maps(tmp_path: Path) -> None:
    path = save(tmp_path, make_model([helper.make_node("HardSwish", ["x"], ["y"])], [1, 3, 4, 4], opset=14))
    assert from_onnx(path).layers[0].op == "hardswish"


def test_channel_slice_maps(tmp_path: Path) -> None:
    node = helper.make_node("Slice", ["x", "st", "en", "ax"], ["y"])
    inits = {"st": np.array([1], np.int64), "en": np.array([3], np.int64), "ax": np.array([1], np.int64)}
    path = save(tmp_path, make_model([node], [1, 4, 5, 5], inits))
    check_against_ort(path, np.ones((1, 4, 5, 5), np.float32))


def test_spatial_slice_is_a_crop(tmp_path: Path) -> None:
    node = helper.make_node("Slice", ["x", "st", "en", "ax"], ["y"], name="crop")
    inits = {"st": np.array([1, 0], np.int64), "en": np.array([-1, 4], np.int64), "ax": np.array([2, 3], np.int64)}
    path = save(tmp_path, make_model([node], [1, 4, 7, 9], inits))
    check_against_ort(path, np.ones((1, 4, 7, 9), np.float32))


# --------------------------------------------------------------------------- the command line


def convcalc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True, cwd=ROOT, check=False)


def test_cli_import_writes_a_stack_that_reads_back(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="/stem/stem.0/Conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["y"], name="/stem/stem.1/Relu"),
    ]
    path = save(tmp_path, make_model(nodes, [1, 3, 8, 8], {"w": weight(4, 3, 3, 3)}))
    out = tmp_path / "net.yaml"
    result = convcalc("import", str(path), "-o", str(out))
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert "# Conv /stem/stem.0/Conv" in text
    assert "name: stem.0" in text
    read_back, imported = load_stack(out), from_onnx(path)
    assert [(x.name, x.op, x.inputs) for x in read_back.layers] == [(x.name, x.op, x.inputs) for x in imported.layers]
    assert analyze(parse_stack(text)).output.field == analyze(from_onnx(path)).output.field
    again = convcalc("import", str(path), "-o", str(out))
    assert again.returncode == 1
    assert "--force" in again.stderr
    assert convcalc("rf", str(path)).returncode == 0
    assert "stem.1" in convcalc("expand", str(path)).stdout


# --------------------------------------------------------------------------- committed exporter output

FIXTURES = ROOT / "tests" / "data" / "onnx"  # regenerated by tests/data/onnx/make_fixtures.py


@pytest.mark.parametrize("name", ["residual", "unet", "pixel_shuffle", "depthwise_se", "groupnorm", "layernorm2d"])
def test_committed_torch_exports_match_onnxruntime_and_the_yaml(name: str) -> None:
    path = FIXTURES / f"{name}.onnx"
    written = analyze(load_stack(FIXTURES / f"{name}.yaml"))
    x = np.ones((1, written.input.channels, *written.input.spatial), np.float32)
    imported = check_against_ort(path, x)
    report = analyze(imported.stack)
    assert report.output.field == written.output.field
    assert report.output.output == written.output.output
    if name != "residual":  # the legacy exporter fused residual's BatchNorm into its conv
        assert report.total_params == written.total_params
        assert [layer.op for layer in report.layers] == [layer.op for layer in written.layers]


def test_exported_groupnorm_and_layernorm_keep_their_groups_and_eps() -> None:
    """The Reshape/InstanceNormalization/Reshape/Mul/Add and Transpose/LayerNormalization/Transpose
    patterns, as torch's legacy exporter writes nn.GroupNorm(4, 8, eps=1e-4) and ConvNeXt's LayerNorm2d."""
    gn = [layer for layer in from_onnx(FIXTURES / "groupnorm.onnx").layers if layer.op == "groupnorm"]
    assert [(g.groups, g.eps, g.affine) for g in gn] == [(4, pytest.approx(1e-4), True)]  # type: ignore[attr-defined]
    ln = [layer for layer in from_onnx(FIXTURES / "layernorm2d.onnx").layers if layer.op == "layernorm"]
    assert [(n.eps, n.elementwise_affine) for n in ln] == [(pytest.approx(1e-6), True)] * 2  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- mappings waiting for their ops

GATED = [
    ("hardsigmoid", lambda: helper.make_node("HardSigmoid", ["x"], ["y"], alpha=1 / 6, beta=0.5, name="n"), {}),
    ("elu", lambda: helper.make_node("Elu", ["x"], ["y"], name="n"), {}),
    ("selu", lambda: helper.make_node("Selu", ["x"], ["y"], name="n"), {}),
    ("softplus", lambda: helper.make_node("Softplus", ["x"], ["y"], name="n"), {}),
    ("mish", lambda: helper.make_node("Mish", ["x"], ["y"], name="n"), {}),
    (
        "prelu",
        lambda: helper.make_node("PRelu", ["x", "slope"], ["y"], name="n"),
        {"slope": np.ones((3, 1, 1), np.float32)},
    ),
    (
        "hardtanh",
        lambda: helper.make_node("Clip", ["x", "lo", "hi"], ["y"], name="n"),
        {"lo": np.array(-1, np.float32), "hi": np.array(1, np.float32)},
    ),
    ("softmax", lambda: helper.make_node("Softmax", ["x"], ["y"], axis=1, name="n"), {}),
    ("sub", lambda: helper.make_node("Sub", ["x", "x"], ["y"], name="n"), {}),
]


@pytest.mark.parametrize(("op", "make", "inits"), GATED, ids=[g[0] for g in GATED])
def test_mappings_of_the_newer_ops(tmp_path: Path, op: str, make: Any, inits: dict[str, Any]) -> None:
    path = save(tmp_path, make_model([make()], [1, 3, 4, 4], inits, opset=18))
    imported = check_against_ort(path, np.ones((1, 3, 4, 4), np.float32))
    assert [layer.op for layer in imported.stack.layers] == [op]


def test_cli_output_on_unsupported_and_input(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        helper.make_node("Relu", ["c"], ["r"], name="act"),
        helper.make_node("LpNormalization", ["r"], ["y"], name="norm"),
    ]
    path = save(tmp_path, make_model(nodes, [1, 3, "H", "W"], {"w": weight(4, 3, 3, 3)}))
    refused = convcalc("import", str(path))
    assert refused.returncode == 1
    assert "node 'norm' (LpNormalization)" in refused.stderr
    stopped = convcalc("import", str(path), "--on-unsupported", "stop", "--input", "3x10x12")
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped at node 'norm'" in stopped.stderr
    assert "input: [3, 10, 12]" in stopped.stdout
    assert analyze(parse_stack(stopped.stdout)).output.output.spatial == (8, 10)
    up_to = convcalc("import", str(path), "--output", "c")
    assert up_to.returncode == 0, up_to.stderr
    assert [layer.op for layer in parse_stack(up_to.stdout).layers] == ["conv"]
    assert "input: [3, null, null]" in up_to.stdout


def test_softplus_tanh_mul_is_mish(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Softplus", ["x"], ["sp"]),
        helper.make_node("Tanh", ["sp"], ["t"]),
        helper.make_node("Mul", ["x", "t"], ["y"]),
    ]
    path = save(tmp_path, make_model(nodes, [1, 3, 4, 4]))
    imported = check_against_ort(path, np.ones((1, 3, 4, 4), np.float32))
    assert [layer.op for layer in imported.stack.layers] == ["mish"]
