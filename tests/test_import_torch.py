"""The torch.export importer against torch itself: every layer's shape equals the exported program's
recorded shape for that node, params equal the module's, fields equal the hand-written YAML's, the
ONNX route's and autograd on the module itself (its positive linear skeleton), and bundled
architectures built in torch import to the bundled stack's fields."""

from __future__ import annotations

import itertools
import subprocess
import sys
from copy import deepcopy
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from convcalc.analysis.engine import analyze  # noqa: E402
from convcalc.errors import SpecError  # noqa: E402
from convcalc.format.loader import load_stack, parse_stack  # noqa: E402
from convcalc.importers.torch import from_torch, read_pt2, read_torch  # noqa: E402
from tests import torch_oracle  # noqa: E402
from tests.torch_models import MODELS  # noqa: E402

pytestmark = pytest.mark.torch
nn = torch.nn
ROOT = Path(__file__).parent.parent


def build(name: str) -> tuple[Any, Any]:
    cls, shape, _ = MODELS[name]
    torch.manual_seed(0)
    return cls().eval(), torch.randn(1, *shape)


@pytest.mark.parametrize("name", list(MODELS))
def test_shapes_params_and_fields_match_torch_and_the_yaml(name: str) -> None:
    module, x = build(name)
    imported = read_torch(module, x)
    report = analyze(imported.stack)
    program = torch.export.export(module, (x,))
    nodes = {n.name: n for n in program.graph.nodes}
    assert imported.tensors
    for layer in report.layers:
        node = imported.tensors.get(layer.name)
        if node is not None:
            val = nodes[node].meta["val"]
            val = val[0] if isinstance(val, tuple) else val
            assert (layer.output.channels, *layer.output.spatial) == tuple(val.shape[1:]), layer.name
    with torch.no_grad():
        assert (report.output.output.channels, *report.output.output.spatial) == tuple(module(x).shape[1:])
    assert report.total_params == sum(p.numel() for p in module.parameters())
    written = analyze(parse_stack(MODELS[name][2]))
    assert report.output.field == written.output.field


@pytest.mark.parametrize("name", list(MODELS))
def test_the_onnx_route_gives_the_same_stack(tmp_path: Path, name: str) -> None:
    pytest.importorskip("onnxscript")
    from convcalc.importers.onnx import from_onnx

    module, x = build(name)
    path = tmp_path / "m.onnx"
    torch.onnx.export(module, (x,), str(path), dynamo=True, optimize=False)
    via_onnx, via_torch = analyze(from_onnx(path)), analyze(from_torch(module, x))
    assert [layer.op for layer in via_onnx.layers] == [layer.op for layer in via_torch.layers]
    assert [(layer.output, layer.field) for layer in via_onnx.layers] == [
        (layer.output, layer.field) for layer in via_torch.layers
    ]
    assert via_onnx.total_params == via_torch.total_params


class _Basic(nn.Module):
    def __init__(self, cin: int, out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out)
        self.conv2 = nn.Conv2d(out, out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out)
        self.downsample = (
            nn.Sequential(nn.Conv2d(cin, out, 1, stride, bias=False), nn.BatchNorm2d(out)) if stride > 1 else None
        )

    def forward(self, x: Any) -> Any:
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(y + (x if self.downsample is None else self.downsample(x)))


class ResNet18(nn.Module):
    """torchvision's resnet18, written out (torchvision is not a test dependency)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        layers, cin = [], 64
        for out, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers.append(nn.Sequential(_Basic(cin, out, stride), _Basic(out, out, 1)))
            cin = out
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.fc = nn.Linear(512, 1000)

    def forward(self, x: Any) -> Any:
        x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class UNetSmall(nn.Module):
    """configs/unet_small.yaml in torch."""

    def __init__(self) -> None:
        super().__init__()

        def double(cin: int, out: int) -> Any:
            return nn.Sequential(
                nn.Conv2d(cin, out, 3, padding=1), nn.ReLU(), nn.Conv2d(out, out, 3, padding=1), nn.ReLU()
            )

        self.enc1, self.enc2, self.bottleneck = double(1, 16), double(16, 32), double(32, 64)
        self.up2, self.dec2 = nn.ConvTranspose2d(64, 32, 2, 2), double(64, 32)
        self.up1, self.dec1 = nn.ConvTranspose2d(32, 16, 2, 2), double(32, 16)
        self.head = nn.Conv2d(16, 2, 1)

    def forward(self, x: Any) -> Any:
        e1 = self.enc1(x)
        e2 = self.enc2(nn.functional.max_pool2d(e1, 2))
        b = self.bottleneck(nn.functional.max_pool2d(e2, 2))
        d2 = self.dec2(torch.cat([self.up2(b), e2], 1))
        return self.head(self.dec1(torch.cat([self.up1(d2), e1], 1)))


def _cbr(cin: int, out: int, kernel: int = 1, stride: int = 1, groups: int = 1) -> Any:
    conv = nn.Conv2d(cin, out, kernel, stride, kernel // 2, groups=groups, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(out), nn.ReLU6())


class _Inverted(nn.Module):
    def __init__(self, cin: int, out: int, expand: int, stride: int) -> None:
        super().__init__()
        hidden = cin * expand
        layers = [_cbr(cin, hidden)] if expand != 1 else []
        layers += [_cbr(hidden, hidden, 3, stride, hidden), nn.Conv2d(hidden, out, 1, bias=False), nn.BatchNorm2d(out)]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == out

    def forward(self, x: Any) -> Any:
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileNetV2(nn.Module):
    """torchvision's mobilenet_v2 (width 1.0), written out."""

    def __init__(self) -> None:
        super().__init__()
        layers, cin = [_cbr(3, 32, 3, 2)], 32
        for t, c, n, s in (
            (1, 16, 1, 1),
            (6, 24, 2, 2),
            (6, 32, 3, 2),
            (6, 64, 4, 2),
            (6, 96, 3, 1),
            (6, 160, 3, 2),
            (6, 320, 1, 1),
        ):
            for i in range(n):
                layers.append(_Inverted(cin, c, t, s if i == 0 else 1))
                cin = c
        layers.append(_cbr(cin, 1280))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 1000))

    def forward(self, x: Any) -> Any:
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1))


@pytest.mark.parametrize(
    ("bundled", "cls", "shape"),
    [
        ("resnet18", ResNet18, (3, 224, 224)),
        ("unet_small", UNetSmall, (1, 64, 64)),
        ("mobilenet_v2", MobileNetV2, (3, 224, 224)),
    ],
)
def test_bundled_architectures_built_in_torch_import_to_the_bundled_fields(
    bundled: str, cls: Any, shape: tuple[int, ...]
) -> None:
    module = cls().eval()
    imported = analyze(from_torch(module, torch.randn(1, *shape)))
    reference = analyze(load_stack(bundled))
    assert imported.output.field == reference.output.field
    assert imported.output.output == reference.output.output
    assert imported.total_params == reference.total_params == sum(p.numel() for p in module.parameters())


def test_unsupported_ops_name_the_node_and_module() -> None:
    class Odd(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x: Any) -> Any:
            return torch.cumsum(self.conv(x), 2)

    module, x = Odd().eval(), torch.randn(1, 3, 8, 8)
    with pytest.raises(SpecError) as info:
        from_torch(module, x)
    text = str(info.value)
    assert "cumsum" in text
    assert "last supported node is 'conv2d'" in text
    stopped = read_torch(module, x, on_unsupported="stop")
    assert [layer.op for layer in stopped.stack.layers] == ["conv"]
    assert stopped.stopped is not None


def test_pt2_files_on_the_command_line(tmp_path: Path) -> None:
    module, x = build("unet")
    path = tmp_path / "unet.pt2"
    torch.export.save(torch.export.export(module, (x,)), str(path))
    assert analyze(read_pt2(path).stack).output.field == analyze(parse_stack(MODELS["unet"][2])).output.field
    run = [sys.executable, "-m", "cli"]
    result = subprocess.run([*run, "import", str(path)], capture_output=True, text=True, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stderr
    assert "# conv2d" in result.stdout
    assert analyze(parse_stack(result.stdout)).output.field == analyze(read_pt2(path).stack).output.field
    rf = subprocess.run([*run, "rf", str(path)], capture_output=True, text=True, cwd=ROOT, check=False)
    assert rf.returncode == 0, rf.stderr


# --------------------------------------------------------------------------- fields against the module itself

#: Functions that the linear skeleton makes the identity (activations and gates: they keep every path).
_IDENTITY = frozenset(
    {"relu", "relu_", "relu6", "hardswish", "hardsigmoid", "silu", "sigmoid", "tanh", "leaky_relu", "gelu", "hardtanh"}
)
_MAX_POOLS = {"max_pool1d": 1, "_max_pool1d": 1, "max_pool2d": 2, "_max_pool2d": 2, "max_pool3d": 3, "_max_pool3d": 3}


class _Linearised(torch.overrides.TorchFunctionMode):  # type: ignore[misc]
    """Runs a module as its positive linear skeleton: activations are the identity and max pooling is
    average pooling over the same windows, so every path from an input pixel to a unit carries a
    positive weight and the gradient is non-zero exactly on the unit's field. Functional calls in
    `forward` (torch.relu, F.max_pool2d) are caught as well as modules."""

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in _IDENTITY:
            return args[0] if args else kwargs["input"]
        if name in _MAX_POOLS:
            names = ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode")
            a = {**dict(zip(names, args, strict=False)), **kwargs}
            assert a.get("dilation", 1) in (1, [1] * _MAX_POOLS[name], (1,) * _MAX_POOLS[name])
            pool = getattr(nn.functional, f"avg_pool{_MAX_POOLS[name]}d")
            stride = a.get("stride") or a["kernel_size"]
            return pool(a["input"], a["kernel_size"], stride, a.get("padding", 0), a.get("ceil_mode", False))
        return func(*args, **kwargs)


def _skeleton(module: Any) -> Any:
    """A float64 copy with positive weights (|w| + 0.1), zero biases and BatchNorm statistics 0 / 1."""
    copy = deepcopy(module).double().eval()
    with torch.no_grad():
        for name, p in copy.named_parameters():
            if name.rsplit(".", 1)[-1] == "bias":
                p.zero_()
            else:
                p.abs_().add_(0.1)
        for m in copy.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.zero_()
                m.running_var.fill_(1.0)
    return copy


#: The layers whose fields are checked per model: None is the module's output; a name is a submodule
#: (the imported layer of that name, its output read with a forward hook).
FIELD_LAYERS: dict[str, list[str | None]] = {
    "residual": ["pool"],  # the output is a linear layer: no spatial axes
    "unet": [None],
    "upsampling": [None],
    "dilated1d": [None],
    "depthwise_se": ["dw", None],  # before the SE gate (local), after it (global)
    "pixel_shuffle": [None],
    "groupnorm": ["conv", None],
    "layernorm2d": ["dw", None],
}


def _units(sizes: tuple[int, ...]) -> list[tuple[int, ...]]:
    """The corners, the centre and the edge midpoints: border and interior units."""
    picks = [sorted({0, n // 2, n - 1}) for n in sizes]
    return list(itertools.product(*picks))


@pytest.mark.parametrize("name", list(MODELS))
def test_fields_of_imported_models_equal_autograd_on_the_module(name: str) -> None:
    assert set(FIELD_LAYERS) == set(MODELS)
    module, x = build(name)
    report = analyze(from_torch(module, x))
    skeleton = _skeleton(module)
    sizes = tuple(x.shape[2:])
    checked = {"local": 0, "global": 0}
    captured: dict[str, Any] = {}  # a hooked submodule's output
    for target in FIELD_LAYERS[name]:
        layer = report.output if target is None else next(la for la in report.layers if la.name == target)
        hook = None
        if target is not None:
            hook = skeleton.get_submodule(target).register_forward_hook(lambda m, i, o: captured.update(out=o))
        for unit in _units(tuple(int(s or 0) for s in layer.output.spatial)):
            inp = torch.rand(x.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) + 0.5
            inp.requires_grad_(True)
            with _Linearised():
                out = skeleton(inp)
            y = out if target is None else captured["out"]
            assert tuple(y.shape[1:]) == (layer.output.channels, *layer.output.spatial)
            y[(0, 0, *unit)].backward()
            assert inp.grad is not None
            hull = torch_oracle.gradient_hull(inp.grad[0])
            region = layer.region(unit)
            assert region is not None
            for axis, (r, n) in enumerate(zip(region, sizes, strict=True)):
                if r is None:  # global: convcalc says every input pixel reaches the unit
                    m = layer.maps[axis]
                    assert m is not None
                    assert m.is_global
                    total = inp.grad[0].abs().sum(0)
                    assert bool((total > 1e-9 * total.max()).all()), f"{name} {target} unit {unit}: not global"
                    checked["global"] += 1
                else:
                    clipped = (max(r[0], 0), min(r[1], n - 1))
                    assert hull[axis] == clipped, f"{name} {target} unit {unit} axis {axis}: autograd {hull[axis]}"
                    checked["local"] += 1
        if hook is not None:
            hook.remove()
    assert sum(checked.values()) > 0
