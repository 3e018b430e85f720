"""The bundled library: convcalc list, lookup by name, convcalc expand, and every config analysing cleanly."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from convcalc.errors import FileProblemError
from convcalc.format.library import bundled_config, find_config, list_configs
from convcalc.format.loader import load_stack, parse_stack

ROOT = Path(__file__).parent.parent
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
REQUIRED = (
    "alexnet", "vgg16", "resnet18", "resnet50", "mobilenet_v2", "googlenet", "unet", "deeplabv3_aspp",
    "wavenet", "dcgan_generator", "espcn", "vnet_encoder", "mobilenet_v3_large", "convnext_tiny",
    "shufflenet_v2_x1_0", "deeplabv3_resnet50",
)  # fmt: skip

runner = CliRunner()


def test_the_library_holds_the_architectures_asked_for() -> None:
    assert {p.stem for p in list_configs()} >= set(REQUIRED)
    assert [p.name for p in list_configs()] == [p.name for p in CONFIGS]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_config_says_what_it_is(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# "), "each file starts with a comment naming the variant and its source"
    assert load_stack(path).description, "a one-line description: for convcalc list"


def test_list_prints_one_line_per_config() -> None:
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(CONFIGS)
    by_name = {line.split()[0]: line for line in lines}
    # Layer counts by hand: ResNet-50 = stem 4 + 16 Bottlenecks × 10 + 4 downsamples × 2
    # + avgpool, flatten, fc.
    assert "3×224×224" in by_name["resnet50"]
    assert " 175 layers " in by_name["resnet50"]
    # AlexNet: 5 convs + 5 ReLUs + 3 pools, avgpool, flatten, 2 dropouts, 3 linears + 2 ReLUs.
    assert " 22 layers " in by_name["alexnet"]
    assert "1×16000" in by_name["wavenet"]
    # ShuffleNetV2 x1.0: stem 4 + 3 stride-2 units × 15 + 13 stride-1 units × 11 + conv5, bn, relu,
    # avgpool, flatten, fc.
    assert " 198 layers " in by_name["shufflenet_v2_x1_0"]


def test_list_json() -> None:
    result = runner.invoke(app, ["list", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    stacks = {s["name"]: s for s in json.loads(result.stdout)["stacks"]}
    assert stacks["googlenet"]["input"] == "3×224×224"
    assert stacks["vnet_encoder"]["input"] == "1×32×32×32"
    assert stacks["dcgan_generator"]["layers"] == 14  # 4 × (deconv, bn, relu) + deconv + tanh


def test_lookup_by_name() -> None:
    assert bundled_config("resnet50") == ROOT / "configs" / "resnet50.yaml"
    assert bundled_config("resnet50.yaml") == ROOT / "configs" / "resnet50.yaml"
    assert bundled_config("../configs/resnet50") is None
    with pytest.raises(FileProblemError, match="Bundled: alexnet, "):
        find_config("resnet51")


def test_rf_finds_a_bundled_config_by_name() -> None:
    result = runner.invoke(app, ["rf", "resnet50", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    # Reports name a bundled stack, not the install path (which differs per machine).
    assert report["file"] == "bundled:resnet50"
    assert report["layers"][-1]["name"] == "fc"
    # ...and that name works as input too, giving the same report.
    again = runner.invoke(app, ["rf", "bundled:resnet50", "--format", "json"])
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout) == report


def test_expand_names_a_bundled_stack_not_its_install_path() -> None:
    result = runner.invoke(app, ["expand", "resnet18"])
    assert result.stdout.splitlines()[0] == "# bundled:resnet18, expanded by convcalc: 69 layers"
    assert str(ROOT) not in result.stdout


def test_a_real_path_wins_over_a_bundled_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "resnet50").write_text("input: [1, 8]\nlayers:\n  - {op: relu, name: mine}\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert [layer.name for layer in load_stack("resnet50").layers] == ["mine"]


def test_unknown_name_lists_the_bundled_ones() -> None:
    result = runner.invoke(app, ["rf", "resnet51"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "resnet51: no such file, and no bundled stack of that name (alexnet," in result.stderr
    assert "Traceback" not in result.stderr


def test_expand_prints_the_plain_stack(golden: Callable[[str, str], None]) -> None:
    result = runner.invoke(app, ["expand", "resnet18"])
    assert result.exit_code == 0, result.stderr
    assert "blocks:" not in result.stdout
    # The hand-written flat ResNet-18 (tests/data) is the reference for what the expansion means.
    flat = load_stack(Path(__file__).parent / "data" / "resnet18_flat.yaml")
    expanded = parse_stack(result.stdout, "expanded.yaml")

    def key(x: object) -> tuple[object, ...]:
        return tuple(getattr(x, f, None) for f in ("name", "inputs", "op", "out", "stride"))

    assert [key(x) for x in expanded.layers] == [key(x) for x in flat.layers]
    golden("library/expand_resnet18.yaml", result.stdout)


def test_expand_with_input_override_and_stdin() -> None:
    text = (
        "input: [1, 8]\nblocks:\n  b:\n    layers:\n      - {op: conv, kernel: 3}\nlayers:\n  - {block: b, repeat: 2}\n"
    )
    result = runner.invoke(app, ["expand", "-", "--input", "2x10"], input=text)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[2:] == [
        "input: [2, 10]",
        "layers:",
        "  - {op: conv, name: b1.0.conv1, kernel: 3}",
        "  - {op: conv, name: b1.1.conv1, kernel: 3}",
    ]


def test_expand_errors_go_to_stderr() -> None:
    text = (
        "input: [1, 8]\nblocks:\n  b:\n    layers:\n      - {op: conv, kernel: 0}\nlayers:\n  - {block: b, name: s}\n"
    )
    result = runner.invoke(app, ["expand", "-"], input=text)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: <stdin>:5:28: layer s.conv1, field 'kernel': kernel must be")


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_config_passes_rf(path: Path) -> None:
    """No error-severity diagnostics in any bundled architecture (exit 0 with the default --fail-on error)."""
    result = runner.invoke(app, ["rf", str(path), "--format", "json"])
    assert result.exit_code == 0, result.stderr
    severities = {d["severity"] for d in json.loads(result.stdout)["diagnostics"]}
    assert "error" not in severities


def test_list_and_expand_do_not_import_numpy() -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from cli.main import app\n"
        "for args in (['list'], ['expand', 'googlenet'], ['rf', 'resnet50']):\n"
        "    assert CliRunner().invoke(app, args).exit_code == 0, args\n"
        "print('numpy' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("resnet50", "3x64x64"),
        ("googlenet", "3x64x64"),
        ("mobilenet_v2", "3x64x64"),
        ("shufflenet_v2_x1_0", "3x64x64"),
        ("wavenet", "1x2048"),
    ],
)
def test_block_configs_run_with_the_numpy_ops(name: str, shape: str) -> None:
    """`convcalc run` on expanded stacks: every actual shape equals the predicted one (exit 0, not 4)."""
    result = runner.invoke(app, ["run", name, "--input", shape, "--format", "json"])
    assert result.exit_code == 0, result.stderr


@pytest.mark.torch
def test_dcgan_fields_match_autograd_on_a_larger_latent() -> None:
    """From the 1×1 latent every field covers the whole input, so the config-wide oracle finds no interior
    unit; on a 16×16 latent map (the generator is fully convolutional) interior units exist."""
    pytest.importorskip("torch")
    from convcalc.analysis.engine import analyze
    from convcalc.format.loader import parse_input_shape
    from tests.test_oracle_torch import _check_fields

    spec = load_stack("dcgan_generator", parse_input_shape("100x16x16"))
    assert _check_fields(spec, analyze(spec)) > 0
