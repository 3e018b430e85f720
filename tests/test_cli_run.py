"""`convcalc run`: formats, --save, exit codes 1/4/5 with messages on stderr, no progress bar off a terminal."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from cli import render_run
from cli.main import app
from cli.run import parse_size
from convcalc.analysis import engine as analysis
from convcalc.analysis.report import Shape
from convcalc.execution.runner import RunResult, run_stack
from convcalc.format.loader import load_stack, parse_input_shape

ROOT = Path(__file__).parent.parent
CONFIGS = ROOT / "configs"
runner = CliRunner()


def invoke(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), input=input, env={"COLUMNS": "160"}, prog_name="convcalc")
    return result.exit_code, result.stdout, result.stderr


def config(name: str) -> str:
    return str(CONFIGS / f"{name}.yaml")


# -- formats -----------------------------------------------------------------------------------------
def test_table() -> None:
    code, out, err = invoke("run", config("seed_two_layer"))
    assert code == 0
    assert err == ""
    assert "conv_s1" in out
    assert "conv_s2" in out
    assert out.count("✓") == 2
    assert "2 layers in" in out
    assert "0 shape mismatches" in out
    assert "\x1b[" not in out


def test_json_of_the_seed_example() -> None:
    """ones in, ones weights: the 7×7 checkerboard sums to (1+2+1+2+1+2+1)² = 100 over 49 outputs."""
    code, out, err = invoke("run", config("seed_deconv"), "--data", "ones", "--weights", "ones", "--format", "json")
    assert code == 0
    assert err == ""
    doc = json.loads(out)
    assert doc["convcalc_schema"] == 1
    assert doc["command"] == "run"
    assert doc["input"] == {"shape": [1, 1, 4, 4], "data": "ones"}
    assert (doc["weights"], doc["seed"], doc["batch"], doc["dtype"]) == ("ones", 0, 1, "float32")
    (layer,) = doc["layers"]
    assert layer["predicted"] == layer["actual"] == [1, 7, 7]
    assert layer["match"] is True
    assert layer["stats"]["mean"] == pytest.approx(100 / 49)
    assert (layer["stats"]["min"], layer["stats"]["max"]) == (1.0, 4.0)
    assert doc["summary"]["ok"] is True
    assert doc["summary"]["mismatches"] == []
    assert doc["memory"]["limit_bytes"] == 2 * 1024**3
    assert doc["saved"] is None


def test_csv() -> None:
    code, out, _ = invoke("run", config("unet_small"), "--format", "csv", "--seed", "5", "--batch", "2")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == len(load_stack(config("unet_small")).layers)
    assert {row["match"] for row in rows} == {"yes"}
    assert rows[0]["predicted"] == rows[0]["actual"] == "16x64x64"
    assert rows[-1]["actual"] == "2x64x64"


def test_markdown() -> None:
    code, out, _ = invoke("run", config("seed_dilation"), "--format", "markdown", "--dtype", "float64")
    assert code == 0
    assert out.startswith("## seed_dilation: input 1×1×32×32 (randn), weights randn, float64\n")
    assert "| 3 | d3 | conv | 8×32×32 | 8×32×32 | ✓ |" in out


def test_stdin_and_input_override() -> None:
    text = Path(config("seed_two_layer")).read_text()
    code, out, _ = invoke("run", "-", "--input", "1x9x9", "--format", "json", input=text)
    assert code == 0
    assert json.loads(out)["layers"][1]["actual"] == [1, 5, 5]


def _fixed_times(result: RunResult) -> RunResult:
    layers = tuple(dataclasses.replace(layer, seconds=(i + 1) / 1000) for i, layer in enumerate(result.layers))
    return dataclasses.replace(result, layers=layers)


@pytest.mark.parametrize("name", ["seed_two_layer", "seed_deconv"])
def test_rendered_golden(name: str, golden: Callable[[str, str], None]) -> None:
    """Exact numbers from ones data and weights (times fixed: they are not reproducible)."""
    from cli.terminal import Terminal

    result = _fixed_times(run_stack(load_stack(CONFIGS / f"{name}.yaml"), data="ones", weights="ones"))
    buf = io.StringIO()
    render_run.print_run(result, None, Terminal(buf, None, color=False, boxes=False))
    golden(f"run/{name}.txt", buf.getvalue())
    golden(f"run/{name}.md", render_run.run_markdown(result, "out.npz"))
    golden(f"run/{name}.csv", render_run.run_csv(result))


# -- --save ------------------------------------------------------------------------------------------
def test_save_writes_every_layer_and_refuses_to_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "out.npz"
    code, stdout, _ = invoke("run", config("unet_small"), "--save", str(out))
    assert code == 0
    assert f"saved every layer's output to {out}" in stdout
    names = [layer.name for layer in load_stack(config("unet_small")).layers]
    with np.load(out) as saved:
        assert sorted(saved.files) == sorted(["input", *names])
        assert saved["dec1.conv2"].shape == (1, 16, 64, 64)
    before = out.read_bytes()
    code, stdout, err = invoke("run", config("seed_two_layer"), "--save", str(out))
    assert code == 1
    assert stdout == ""
    assert "option --save: would overwrite an existing file" in err
    assert "--force" in err
    assert out.read_bytes() == before
    code, _, _ = invoke("run", config("seed_two_layer"), "--save", str(out), "--force")
    assert code == 0
    with np.load(out) as saved:
        assert sorted(saved.files) == ["conv_s1", "conv_s2", "input"]


def test_save_never_overwrites_the_stack_or_the_data(tmp_path: Path) -> None:
    stack = tmp_path / "net.yaml"
    shutil.copy(config("seed_two_layer"), stack)
    original = stack.read_bytes()
    code, out, err = invoke("run", str(stack), "--save", str(stack), "--force")
    assert code == 1
    assert out == ""
    assert "own inputs" in err
    assert stack.read_bytes() == original
    data = tmp_path / "x.npy"
    np.save(data, np.ones((1, 5, 5)))
    code, _, err = invoke("run", str(stack), "--data", str(data), "--save", str(data), "--force")
    assert code == 1
    assert np.load(data).shape == (1, 5, 5)


def test_save_never_overwrites_the_bundled_file_a_name_resolves_to() -> None:
    """The issue: `convcalc run seed_deconv --save <configs/seed_deconv.yaml> --force` replaced the bundled
    stack with an .npz, because only arguments that were files themselves were compared with --save."""
    from convcalc.format.library import find_config

    target = find_config("seed_deconv")
    original = target.read_bytes()
    try:
        code, out, err = invoke("run", "seed_deconv", "--save", str(target), "--force")
    finally:
        if target.read_bytes() != original:  # leave the checkout whole even when this test fails
            target.write_bytes(original)
    assert code == 1
    assert out == ""
    assert f"option --save: would overwrite {target}, one of the run's own inputs" in err


@pytest.fixture
def library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A bundled library of its own (seed_deconv only), in tmp_path/library, as the working directory's
    neighbour: the checkout's configs stay out of harm's way."""
    directory = tmp_path / "library"
    directory.mkdir()
    shutil.copy(config("seed_deconv"), directory / "seed_deconv.yaml")
    monkeypatch.setattr("convcalc.format.library.config_dir", lambda: directory)
    monkeypatch.chdir(tmp_path)
    return directory / "seed_deconv.yaml"


def _link(kind: str, target: Path, name: Path) -> None:
    if kind == "symlink":
        name.symlink_to(target)
    else:
        try:
            os.link(target, name)
        except OSError as exc:  # a file system without hard links
            pytest.skip(f"no hard links here: {exc}")


SPELLINGS = {
    "absolute": lambda f: str(f),
    "relative": lambda f: "library/seed_deconv.yaml",
    "dot-dot": lambda f: "library/../library/./seed_deconv.yaml",
    "symlink": lambda f: "link.npz",
    "symlinked directory": lambda f: "shelf/seed_deconv.yaml",
    "hard link": lambda f: "hard.npz",
}


@pytest.mark.parametrize("spelling", SPELLINGS)
@pytest.mark.parametrize("stack", ["seed_deconv", "library/seed_deconv.yaml", "link.npz"])
def test_save_never_overwrites_the_stack_however_spelled(
    tmp_path: Path, library: Path, spelling: str, stack: str
) -> None:
    """The bundled name, its file and a symlink to it as the stack; every spelling of that file as --save."""
    (tmp_path / "link.npz").symlink_to(library)
    (tmp_path / "shelf").symlink_to(library.parent, target_is_directory=True)
    _link("hard link", library, tmp_path / "hard.npz")
    original = library.read_bytes()
    save = SPELLINGS[spelling](library)
    code, out, err = invoke("run", stack, "--save", save, "--force")
    assert code == 1
    assert out == ""
    given = library if stack == "seed_deconv" else stack  # the loader names the file it resolved to
    assert (
        err
        == f"error: {save}: option --save: would overwrite {given}, one of the run's own inputs; choose another name\n"
    )
    assert library.read_bytes() == original
    assert (tmp_path / "link.npz").is_symlink()
    assert sorted(p.name for p in tmp_path.rglob("*")) == [
        "hard.npz",
        "library",
        "link.npz",
        "seed_deconv.yaml",
        "shelf",
    ]


@pytest.mark.parametrize("kind", ["relative", "dot-dot", "symlink", "hard link"])
def test_save_never_overwrites_the_data_however_spelled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "x.npy"
    np.save(data, np.arange(25.0).reshape(1, 5, 5))
    save = {"relative": "x.npy", "dot-dot": f"../{tmp_path.name}/x.npy", "symlink": "x.npz", "hard link": "x.npz"}[kind]
    if kind in ("symlink", "hard link"):
        _link(kind, data, tmp_path / "x.npz")
    code, out, err = invoke("run", config("seed_two_layer"), "--data", str(data), "--save", save, "--force")
    assert code == 1
    assert out == ""
    assert f"would overwrite {data}, one of the run's own inputs" in err
    np.testing.assert_array_equal(np.load(data), np.arange(25.0).reshape(1, 5, 5))


def test_save_writes_a_file_readable_as_the_umask_allows(tmp_path: Path) -> None:
    """A new file gets 0666 less the umask (mkstemp alone would leave 0600)."""
    old = os.umask(0o022)
    try:
        code, _, err = invoke("run", config("seed_two_layer"), "--save", str(tmp_path / "out.npz"))
    finally:
        os.umask(old)
    assert code == 0, err
    assert stat.S_IMODE((tmp_path / "out.npz").stat().st_mode) == 0o644


def test_save_into_a_missing_directory(tmp_path: Path) -> None:
    code, out, err = invoke("run", config("seed_two_layer"), "--save", str(tmp_path / "no" / "out.npz"))
    assert code == 1
    assert out == ""
    assert "does not exist" in err


# -- exit codes ------------------------------------------------------------------------------------------
def test_over_the_memory_limit_exits_5() -> None:
    code, out, err = invoke("run", config("vgg16"), "--input", "3x224000x224000")
    assert code == 5
    assert out == ""
    assert err.startswith("error: ")
    assert "option --max-memory: the run would need about" in err
    assert "more than the memory limit 2 GiB" in err
    assert "TiB" in err
    assert err.count("\n") == 1


def test_memory_limit_option_and_json_errors() -> None:
    code, out, err = invoke("run", config("seed_dilation"), "--max-memory", "1KiB", "--format", "json")
    assert code == 5
    assert out == ""
    error = json.loads(err)["error"]
    assert error["kind"] == "resource"
    assert error["exit_code"] == 5
    assert "1 KiB" in error["problems"][0]["message"]
    assert error["problems"][0]["option"] == "--max-memory"
    assert error["problems"][0]["field"] is None
    assert invoke("run", config("seed_dilation"), "--max-memory", "1.5GB")[0] == 0


def test_option_errors_name_the_option_not_a_field() -> None:
    """A bad option value is an option problem: named as the user typed it, never as a field of the file."""
    code, out, err = invoke("run", config("seed_dilation"), "--max-memory", "lots", "--format", "json")
    assert code == 1
    assert out == ""
    error = json.loads(err)["error"]
    assert error["kind"] == "invalid-option"
    (problem,) = error["problems"]
    assert (problem["option"], problem["field"], problem["file"]) == ("--max-memory", None, None)
    code, _, err = invoke("run", config("seed_dilation"), "--max-memory", "lots")
    assert err == (
        "error: option --max-memory: must be a size such as 2GiB, 512MiB, 1.5GB or a number of bytes; got 'lots'\n"
    )


@pytest.fixture
def wrong_prediction(monkeypatch: pytest.MonkeyPatch) -> None:
    """The analysis predicts one channel too many for conv_s2 (the command imports analyze at call time)."""
    original = analysis.analyze

    def corrupted(stack: Any) -> Any:
        report = original(stack)
        layers = tuple(
            dataclasses.replace(lr, output=Shape((lr.output.channels or 0) + 1, lr.output.spatial))
            if lr.name == "conv_s2"
            else lr
            for lr in report.layers
        )
        return dataclasses.replace(report, layers=layers)

    monkeypatch.setattr(analysis, "analyze", corrupted)


@pytest.mark.usefixtures("wrong_prediction")
def test_a_shape_mismatch_exits_4_naming_the_layer(tmp_path: Path) -> None:
    code, out, err = invoke("run", config("seed_two_layer"), "--save", str(tmp_path / "out.npz"))
    assert code == 4
    assert "layer conv_s2" in err
    assert "predicted shape 2×3×3 but the ops produced 1×3×3" in err
    assert "not written" in err
    assert not (tmp_path / "out.npz").exists()
    # The report itself is the requested output: it shows where the prediction failed.
    assert "✗" in out
    assert "1 shape mismatch" in out


@pytest.mark.usefixtures("wrong_prediction")
def test_a_shape_mismatch_in_json() -> None:
    code, out, err = invoke("run", config("seed_two_layer"), "--format", "json")
    assert code == 4
    assert json.loads(out)["summary"]["mismatches"] == ["conv_s2"]
    error = json.loads(err)["error"]
    assert error["kind"] == "shape-mismatch"
    assert error["problems"][0]["layer"] == "conv_s2"


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("seed_two_layer", ["--max-memory", "lots"], "option --max-memory: must be a size"),
        ("seed_two_layer", ["--input", "1x?x?"], "option --input: a run needs every input size"),
        ("seed_two_layer", ["--data", "missing.npy"], "no such file"),
        ("unet_small", ["--input", "1x6x6"], "layer skip2"),
        ("missing", [], "no such file"),
    ],
)
def test_bad_input_exits_1(name: str, args: list[str], message: str) -> None:
    code, out, err = invoke("run", config(name), *args)
    assert code == 1
    assert out == ""
    assert err.startswith("error: ")
    assert message in err
    assert "Traceback" not in err


def test_npy_of_the_wrong_shape_exits_1(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.ones((2, 1, 6, 5)))
    code, out, err = invoke("run", config("seed_two_layer"), "--data", str(tmp_path / "x.npy"))
    assert code == 1
    assert out == ""
    assert "2×1×6×5" in err
    assert "option --data:" in err
    assert "(1x6x5)" in err


def test_npy_data_sets_the_batch(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.ones((3, 1, 5, 5)))
    code, out, _ = invoke("run", config("seed_two_layer"), "--data", str(tmp_path / "x.npy"), "--format", "json")
    assert code == 0
    assert json.loads(out)["input"]["shape"] == [3, 1, 5, 5]


@pytest.mark.parametrize("args", [["--batch", "0"], ["--weights", "zeros"], ["--dtype", "float16"], ["--seed", "-1"]])
def test_bad_option_values_are_usage_errors(args: list[str]) -> None:
    code, out, _ = invoke("run", config("seed_two_layer"), *args)
    assert code == 2
    assert out == ""


# -- progress, sizes, imports ------------------------------------------------------------------------
def test_no_progress_bar_when_stderr_is_not_a_terminal() -> None:
    code, out, err = invoke("run", config("resnet18"), "--input", "3x32x32")
    assert code == 0
    assert err == ""
    assert "69 layers in" in out


def test_progress_bar_only_for_long_runs_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    from cli import run as run_module

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    long_report = analysis.analyze(load_stack(config("resnet18")))
    short_report = analysis.analyze(load_stack(config("seed_two_layer")))
    with run_module._progress_bar(long_report, 1) as progress:
        assert progress is None  # pytest's stderr is not a terminal
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with run_module._progress_bar(short_report, 1) as progress:
        assert progress is None
    result = run_stack(load_stack(config("resnet18"), parse_input_shape("3x32x32")), data="zeros", check=False)
    with run_module._progress_bar(long_report, 1) as progress:
        assert progress is not None
        for i, layer in enumerate(result.layers):
            progress(i + 1, len(result.layers), layer)
    assert terminal.getvalue() != ""


@pytest.mark.parametrize(
    ("text", "size"),
    [("2GiB", 2 * 1024**3), ("512MiB", 512 * 1024**2), ("1.5GB", 1_500_000_000), ("100", 100), ("4 k", 4096)],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "lots", "-1GB", "0", "2XB", "1e9", "0.1"])
def test_parse_size_refuses(text: str) -> None:
    from convcalc.errors import SpecError

    with pytest.raises(SpecError, match="max_memory"):
        parse_size(text)


def test_registering_run_imports_no_numpy() -> None:
    code = "import cli.run, cli.main, sys; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.strip() == "False"


def test_help_lists_the_options() -> None:
    code, out, _ = invoke("run", "--help")
    assert code == 0
    for option in (
        "--data",
        "--input",
        "--weights",
        "--seed",
        "--batch",
        "--dtype",
        "--save",
        "--force",
        "--max-memory",
        "--format",
    ):
        assert option in out
