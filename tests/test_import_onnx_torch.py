"""ONNX files exported from torch.nn models with both exporters, imported: every layer's shape equals
onnxruntime's actual output, the output equals torch's, the fields equal the hand-written YAML's and
the params the module's when BatchNorm is kept (the exporters fuse it otherwise, which is reported)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
np = pytest.importorskip("numpy")

from convcalc.analysis.engine import analyze  # noqa: E402
from convcalc.format.loader import parse_stack  # noqa: E402
from convcalc.importers.onnx import from_onnx, read_onnx  # noqa: E402
from convcalc.stack.spec import InputSpec  # noqa: E402
from tests.test_import_onnx import check_against_ort  # noqa: E402
from tests.torch_models import MODELS, UNetSmall  # noqa: E402

pytestmark = pytest.mark.torch


def export(tmp_path: Path, name: str, dynamo: bool, keep_bn: bool = False) -> tuple[Path, Any, Any]:
    cls, shape, _ = MODELS[name]
    torch.manual_seed(0)
    module = cls().eval()
    x = torch.randn(1, *shape)
    path = tmp_path / f"{name}_{'dynamo' if dynamo else 'legacy'}.onnx"
    if dynamo:
        pytest.importorskip("onnxscript")
        torch.onnx.export(module, (x,), str(path), dynamo=True, optimize=not keep_bn, verbose=False)
    else:
        torch.onnx.export(module, (x,), str(path), dynamo=False, do_constant_folding=not keep_bn)
    return path, module, x


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
@pytest.mark.parametrize("name", list(MODELS))
def test_exported_models_match_onnxruntime_torch_and_the_yaml(tmp_path: Path, name: str, dynamo: bool) -> None:
    path, module, x = export(tmp_path, name, dynamo)
    imported = check_against_ort(path, x.numpy())
    report = analyze(imported.stack)
    with torch.no_grad():
        expected = tuple(module(x).shape[1:])
    assert (report.output.output.channels, *report.output.output.spatial) == expected
    written = analyze(parse_stack(MODELS[name][2]))
    assert report.output.field == written.output.field
    assert report.output.output == written.output.output


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
@pytest.mark.parametrize("name", list(MODELS))
def test_params_equal_the_modules_when_batchnorm_is_kept(tmp_path: Path, name: str, dynamo: bool) -> None:
    path, module, _ = export(tmp_path, name, dynamo, keep_bn=True)
    report = analyze(from_onnx(path))
    assert report.total_params == sum(p.numel() for p in module.parameters())


def test_fused_batchnorm_is_reported(tmp_path: Path) -> None:
    path, module, _ = export(tmp_path, "residual", dynamo=True)
    imported = read_onnx(path)
    assert any("fused a BatchNorm" in note for note in imported.notes)
    # the fused conv lost BatchNorm's 2·16 params (and its zero bias was removed)
    assert analyze(imported.stack).total_params == sum(p.numel() for p in module.parameters()) - 32


def test_dynamic_input_exports_import_with_unknown_sizes(tmp_path: Path) -> None:
    torch.manual_seed(0)
    module = UNetSmall().eval()
    x = torch.randn(1, 1, 32, 32)
    path = tmp_path / "dyn.onnx"
    torch.onnx.export(
        module, (x,), str(path), dynamo=False, input_names=["x"], dynamic_axes={"x": {0: "N", 2: "H", 3: "W"}}
    )
    assert analyze(from_onnx(path)).output.output.spatial == (None, None)
    check_against_ort(path, np.ones((1, 1, 24, 40), np.float32), InputSpec(1, (24, 40)))


@pytest.mark.parametrize("name", ["residual", "unet", "upsampling", "depthwise_se", "pixel_shuffle"])
def test_dynamo_dynamic_shapes_import_unknown_and_fold_with_the_input(tmp_path: Path, name: str) -> None:
    pytest.importorskip("onnxscript")
    cls, shape, _ = MODELS[name]
    torch.manual_seed(0)
    module = cls().eval()
    dims = {2 + i: torch.export.Dim(f"s{i}", min=8, max=1024) for i in range(len(shape) - 1)}
    path = tmp_path / "dyn.onnx"
    torch.onnx.export(
        module, (torch.randn(1, *shape),), str(path), dynamo=True, input_names=["x"], dynamic_shapes={"x": dims}
    )
    doubled = (shape[0], *(2 * s for s in shape[1:]))
    imported = check_against_ort(path, np.ones((1, *doubled), np.float32), InputSpec(doubled[0], doubled[1:]))
    with torch.no_grad():
        expected = tuple(module(torch.ones(1, *doubled)).shape[1:])
    out = analyze(imported.stack).output.output
    assert (out.channels, *out.spatial) == expected


@pytest.mark.parametrize("bundled", ["resnet18", "unet_small", "mobilenet_v2"])
def test_cli_import_then_rf_equals_the_bundled_stack(tmp_path: Path, bundled: str) -> None:
    import subprocess
    import sys

    from convcalc.format.loader import load_stack
    from tests.test_import_torch import MobileNetV2, ResNet18
    from tests.test_import_torch import UNetSmall as BundledUNet

    cls, shape = {
        "resnet18": (ResNet18, (3, 224, 224)),
        "unet_small": (BundledUNet, (1, 64, 64)),
        "mobilenet_v2": (MobileNetV2, (3, 224, 224)),
    }[bundled]
    module = cls().eval()
    model = tmp_path / f"{bundled}.onnx"
    # BatchNorm kept (no constant folding), so the params are the module's too.
    torch.onnx.export(module, (torch.randn(1, *shape),), str(model), dynamo=False, do_constant_folding=False)
    out = tmp_path / "net.yaml"
    root = Path(__file__).parent.parent
    result = subprocess.run(
        [sys.executable, "-m", "cli", "import", str(model), "-o", str(out)], capture_output=True, text=True, cwd=root
    )
    assert result.returncode == 0, result.stderr
    imported, reference = analyze(load_stack(out)), analyze(load_stack(bundled))
    assert imported.output.field == reference.output.field
    assert imported.output.output == reference.output.output
    assert imported.total_params == reference.total_params == sum(p.numel() for p in module.parameters())
