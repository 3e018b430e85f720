"""Regenerate the committed ONNX fixtures: `python -m tests.data.onnx.make_fixtures` from the repository root.

Each model of tests/torch_models.py listed below is exported with the legacy exporter (one file, no
external data, BatchNorm fused as users' exports have it), next to the YAML stack a user would write
for it, so tests/test_import_onnx.py checks real exporter output without torch.
"""

from __future__ import annotations

from pathlib import Path

import torch

from tests.torch_models import MODELS

HERE = Path(__file__).parent
FIXTURES = ("residual", "unet", "pixel_shuffle", "depthwise_se", "groupnorm", "layernorm2d")


def main() -> None:
    for name in FIXTURES:
        cls, shape, yaml_text = MODELS[name]
        torch.manual_seed(0)
        module = cls().eval()
        torch.onnx.export(module, (torch.randn(1, *shape),), str(HERE / f"{name}.onnx"), dynamo=False)
        header = f"# The stack a user writes for the {name!r} model of tests/torch_models.py (make_fixtures.py).\n"
        (HERE / f"{name}.yaml").write_text(header + yaml_text.lstrip(), encoding="utf-8")


if __name__ == "__main__":
    main()
