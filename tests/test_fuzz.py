"""Fuzz: random YAML, mutated bundled configs and random command lines never crash convcalc.

Laws, for any input: no traceback and no internal error (exit 70); the documented exit code (rf: 0, 1 or
3; every command: 0-5); an invalid input gives exit 1 with `error: ` lines on stderr naming the file (and,
for a problem in a layer, the layer or the field), nothing on stdout; the table and JSON outputs agree on
the exit code; `expand` refuses exactly what the loader refuses and what it prints loads to the same
layers; a document the loader accepts, the JSON Schema accepts.

Cost: a few thousand cases in well under a minute. `CONVCALC_FUZZ_EXAMPLES=10` runs ten times as many;
`CONVCALC_FUZZ_FULL=1` lifts the bounds that keep clear of the inputs known to hang today (see
tests/fuzz_strategies.py). With `CI=1` the examples are derandomized (tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from cli.main import app
from convcalc.analysis.engine import analyze
from convcalc.errors import ConvCalcError, FileProblemError, SpecError
from convcalc.format.loader import parse_stack
from convcalc.stack.spec import StackSpec
from tests import fuzz_strategies as fs

pytestmark = pytest.mark.fuzz

ROOT = Path(__file__).resolve().parent.parent
SCALE = float(os.environ.get("CONVCALC_FUZZ_EXAMPLES", "1") or "1")
#: Small bundled stacks, cheap to run many times; the mutations use every config.
#: The configs the CLI tests mutate: all but the six largest (each 50-100 ms to load and analyze).
CLI_CONFIGS = [
    p.name
    for p in fs.CONFIGS
    if p.stem
    not in ("convnext_tiny", "deeplabv3_resnet50", "googlenet", "shufflenet_v2_x1_0", "resnet50", "mobilenet_v2")
]
SMALL = ["seed_two_layer", "seed_deconv", "seed_dilation", "espcn", "dcgan_generator", "unet_small", "wavenet_tcn"]

runner = CliRunner()


@pytest.fixture(scope="module", autouse=True)
def _build_the_command_once() -> Iterator[None]:
    """Typer's CliRunner rebuilds the Click command from the annotations on every call (about 30 ms, most
    of a calculator case): build it once for the module."""
    import typer.main
    import typer.testing

    command = typer.main.get_command(app)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(typer.testing, "_get_command", lambda _app: command)
        yield


def fuzz(examples: int) -> Any:
    """The fuzz settings: `examples` × CONVCALC_FUZZ_EXAMPLES cases, no deadline (the CLI's first call
    imports modules), and no health check failing on slow or large generated data."""
    return settings(
        max_examples=max(1, int(examples * SCALE)),
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.large_base_example,
        ],
    )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def invoke(args: Sequence[str], stdin: str | None = None) -> Result:
    note(f"argv: {list(args)!r}")
    result = runner.invoke(app, list(args), input=stdin, prog_name="convcalc")
    note(f"exit {result.exit_code}\nstdout: {result.stdout[-2000:]!r}\nstderr: {result.stderr[-2000:]!r}")
    return result


def assert_no_crash(result: Result) -> None:
    """No exception escaped the command (CliRunner would report it as exit 1), no traceback, no exit 70."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code != 70, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "internal error" not in result.stderr


def assert_error_lines(result: Result, file: str | None) -> None:
    """Exit 1: nothing on stdout, `error: ` lines on stderr (the first naming `file` when given)."""
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines, "exit 1 without a message"
    assert lines[0].startswith("error: "), lines[0]
    if file is not None:
        assert file in lines[0], lines[0]


def write(workdir: Path, text: str, name: str = "stack.yaml") -> str:
    path = workdir / name
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    return str(path)


# ---------------------------------------------------------------------------------------------------
# The loader, in-process.


def refusal(action: Callable[[], object]) -> tuple[object, ConvCalcError | None]:
    """`action()`'s result, or the ConvCalcError it raised (anything else propagates: a crash)."""
    try:
        return action(), None
    except ConvCalcError as exc:
        note(f"refused: {exc}")
        return None, exc


def load(text: str, file: str, layer_problem: bool = False) -> StackSpec | None:
    """parse_stack + analyze, refusing only with ConvCalcError problems that name `file`; None if refused.

    With `layer_problem` (the change was inside a layer), a SpecError names a layer or a field."""
    spec, exc = refusal(lambda: parse_stack(text, file))
    if exc is not None:
        assert exc.problems
        for problem in exc.problems:
            assert problem.message.strip()
            assert problem.file == file, problem
        if layer_problem and isinstance(exc, SpecError) and not isinstance(exc, FileProblemError):
            assert any(p.layer is not None or p.field is not None for p in exc.problems), exc.problems
        return None
    assert isinstance(spec, StackSpec)
    _, exc = refusal(lambda: analyze(spec))
    if exc is not None:
        assert exc.problems
        for problem in exc.problems:
            assert problem.message.strip()
            assert problem.layer is not None or problem.field is not None, problem
    return spec


@fuzz(200)
@given(mutant=fs.mutated_config())
def test_loader_on_mutated_configs(mutant: fs.Mutant) -> None:
    note("\n".join(mutant.steps))
    note(mutant.text)
    text_changed = mutant.steps[-1] in ("duplicate-key", "tab", "crlf", "cut", "insert", "bom")
    load(mutant.text, "fuzz.yaml", layer_problem=mutant.in_layers and not text_changed)


@fuzz(150)
@given(text=fs.random_yaml_text())
def test_loader_on_random_yaml(text: str) -> None:
    note(text)
    load(text, "random.yaml")


@fuzz(60)
@given(mutant=fs.mutated_config(text_level=False))
def test_schema_accepts_what_the_loader_accepts(mutant: fs.Mutant) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from convcalc.format.schema import stack_schema

    note("\n".join(mutant.steps))
    try:
        spec = parse_stack(mutant.text, "fuzz.yaml")
    except ConvCalcError:
        return
    assert spec is not None
    document = yaml.safe_load(mutant.text)
    errors = [e.message for e in jsonschema.Draft202012Validator(stack_schema()).iter_errors(document)]
    assert errors == [], mutant.text


# ---------------------------------------------------------------------------------------------------
# rf and expand on mutated configs, in-process.


@fuzz(60)
@given(mutant=fs.mutated_config(names=CLI_CONFIGS), fmt=st.sampled_from(["table", "csv", "markdown"]))
def test_rf_on_mutated_configs(workdir: Path, mutant: fs.Mutant, fmt: str) -> None:
    note("\n".join(mutant.steps))
    path = write(workdir, mutant.text)
    result = invoke(["rf", path, "--format", fmt])
    assert_no_crash(result)
    assert result.exit_code in (0, 1, 3)
    if result.exit_code == 1:
        assert_error_lines(result, path)
    else:
        assert result.stdout.strip()
    as_json = invoke(["rf", path, "--format", "json"])
    assert_no_crash(as_json)
    assert as_json.exit_code == result.exit_code
    if as_json.exit_code == 1:
        assert as_json.stdout == ""
        problems = json.loads(as_json.stderr)["error"]["problems"]
        assert problems
        assert all(p["file"] == path and p["message"] for p in problems), problems
    else:
        assert json.loads(as_json.stdout)["layers"] is not None


@fuzz(40)
@given(mutant=fs.mutated_config(names=CLI_CONFIGS))
def test_rf_reads_mutated_configs_from_stdin(mutant: fs.Mutant) -> None:
    note("\n".join(mutant.steps))
    result = invoke(["rf", "-"], stdin=mutant.text)
    assert_no_crash(result)
    assert result.exit_code in (0, 1, 3)
    if result.exit_code == 1:
        assert_error_lines(result, "<stdin>")


@fuzz(60)
@given(mutant=fs.mutated_config(names=CLI_CONFIGS))
def test_expand_refuses_what_the_loader_refuses(workdir: Path, mutant: fs.Mutant) -> None:
    note("\n".join(mutant.steps))
    path = write(workdir, mutant.text)
    result = invoke(["expand", path])
    assert_no_crash(result)
    assert result.exit_code in (0, 1)
    try:
        spec: StackSpec | None = parse_stack(mutant.text, path)
    except ConvCalcError:
        spec = None
    if spec is None:
        assert result.exit_code == 1
        assert_error_lines(result, path)
        return
    assert result.exit_code == 0, result.stderr
    again = parse_stack(result.stdout, "expanded.yaml")
    assert [(layer.name, layer.op) for layer in again.layers] == [(layer.name, layer.op) for layer in spec.layers]


@fuzz(60)
@given(text=fs.random_yaml_text())
def test_rf_on_random_yaml(workdir: Path, text: str) -> None:
    path = write(workdir, text, "random.yaml")
    result = invoke(["rf", path])
    assert_no_crash(result)
    assert result.exit_code in (0, 1, 3)
    if result.exit_code == 1:
        assert_error_lines(result, path)


# ---------------------------------------------------------------------------------------------------
# Random command-line values for every command.

FORMATS = st.one_of(st.sampled_from(["table", "json", "csv", "markdown", "JSON"]), fs.texts())
FAIL_ON = st.one_of(st.sampled_from(["never", "info", "warning", "error"]), fs.texts())
COLOR = st.one_of(st.sampled_from(["auto", "always", "never"]), fs.texts())
FLAG = st.none()
NAMES = st.one_of(st.sampled_from(["conv_s1", "conv_s2", "conv1", "input", "last", ""]), fs.texts())
STACKS = st.one_of(st.sampled_from(SMALL), st.sampled_from(["-", "", "nope", "configs", "/"]), fs.texts())


def run_memory() -> st.SearchStrategy[str]:
    """--max-memory for run: small limits (a run stays fast) and junk, all sizes with CONVCALC_FUZZ_FULL."""
    if fs.FULL:
        return fs.size_text()
    units = st.sampled_from(["", "B", "K", "KB", "KiB", "M", "MB", "MiB"])
    return st.one_of(
        st.integers(0, 32 * 2**20).map(str),
        st.tuples(st.integers(0, 32), units).map(lambda t: f"{t[0]}{t[1]}"),
        st.sampled_from(["", "x", "-1", "1.5", "1e3", "nan", "inf", "0B", "1 MB", "10**3", "9" * 400]),
        fs.texts(),
    )


def calculator_options(transposed: bool, pool: bool) -> dict[str, st.SearchStrategy[Any]]:
    geometry, size = fs.axes_text(fs.GEOMETRY_BOUND), fs.axes_text(fs.SIZE_BOUND)
    options: dict[str, st.SearchStrategy[Any]] = {
        "--k": geometry,
        "--kernel": geometry,
        "--s": geometry,
        "--p": fs.padding_text(fs.GEOMETRY_BOUND),
        "--d": geometry,
        "--i": size,
        "--target": size,
        "--explain": FLAG,
        "--dims": fs.int_text(),
        "--format": FORMATS,
        "--fail-on": FAIL_ON,
        "--color": COLOR,
    }
    if pool:
        options |= {"--ceil": FLAG, "--avg": FLAG}
    else:
        options |= {"--groups": fs.int_text(), "--cin": fs.int_text(), "--cout": fs.int_text()}
    if transposed:
        options["--op"] = geometry
    return options


#: Each command: the strategy of its positional arguments and its options (None: a flag).
COMMANDS: dict[str, tuple[st.SearchStrategy[list[str]], dict[str, st.SearchStrategy[Any]]]] = {
    "conv": (st.just([]), calculator_options(False, False)),
    "deconv": (st.just([]), calculator_options(True, False)),
    "pool": (st.just([]), calculator_options(False, True)),
    "rf": (
        STACKS.map(lambda s: [s]),
        {
            "-i": fs.shape_text(fs.SIZE_BOUND),
            "--input": fs.shape_text(fs.SIZE_BOUND),
            "-f": FORMATS,
            "--fail-on": FAIL_ON,
            "--color": COLOR,
            "--change-rank": FLAG,
            "--unit": fs.axes_text(),
            "--layer": NAMES,
            "--erf": FLAG,
        },
    ),
    "run": (
        STACKS.map(lambda s: [s]),
        {
            "--data": st.one_of(st.sampled_from(["randn", "ones", "zeros", "nope.npy", "x.txt", ""]), fs.texts()),
            "-i": fs.shape_text(bound=48),
            "--change-rank": FLAG,
            "--weights": st.one_of(st.sampled_from(["randn", "ones"]), fs.texts()),
            "--seed": fs.int_text(),
            "--batch": fs.int_text(bound=4),
            "--dtype": st.one_of(st.sampled_from(["float32", "float64", "float16"]), fs.texts()),
            "--save": st.sampled_from(["SAVE/out.npz", "SAVE/out.txt", "SAVE/missing/out.npz", "SAVE", ""]),
            "--force": FLAG,
            "--max-memory": run_memory(),
            "-f": FORMATS,
            "--color": COLOR,
        },
    ),
    "locate": (
        STACKS.map(lambda s: [s]),
        {
            "--pixel": fs.axes_text(),
            "--layer": NAMES,
            "-i": fs.shape_text(fs.SIZE_BOUND),
            "-f": FORMATS,
            "--change-rank": FLAG,
        },
    ),
    "coverage": (
        STACKS.map(lambda s: [s]),
        {
            "--layer": NAMES,
            "--unit": fs.axes_text(),
            "--svg": st.sampled_from(["SAVE/c.svg", "SAVE", "SAVE/missing/c.svg", ""]),
            "-i": fs.shape_text(fs.SIZE_BOUND),
            "-f": FORMATS,
            "--color": COLOR,
            "--change-rank": FLAG,
        },
    ),
    "report": (
        STACKS.map(lambda s: [s]),
        {
            "-o": st.sampled_from(["SAVE/r.html", "SAVE", "SAVE/missing/r.html", ""]),
            "--layer": NAMES,
            "-i": fs.shape_text(fs.SIZE_BOUND),
            "--fail-on": FAIL_ON,
            "--change-rank": FLAG,
        },
    ),
    "check": (
        st.lists(STACKS, min_size=1, max_size=3),
        {
            "-f": st.one_of(st.sampled_from(["text", "json", "github", "sarif", "junit"]), fs.texts()),
            "--fail-on": FAIL_ON,
            "--ignore": st.one_of(st.sampled_from(["checkerboard", "gridding", "rf-exceeds-input"]), fs.texts()),
            "--baseline": st.sampled_from(["SAVE/none.json", "configs/vgg16.yaml", ""]),
            "--fail-on-change": FLAG,
            "--run": FLAG,
        },
    ),
    "list": (st.just([]), {"-f": FORMATS}),
    "expand": (STACKS.map(lambda s: [s]), {"-i": fs.shape_text(fs.SIZE_BOUND), "--change-rank": FLAG}),
    "schema": (st.lists(fs.texts(), max_size=1), {}),
    "import": (
        st.one_of(st.sampled_from(["nope.onnx", "model.pt", "configs/vgg16.yaml", "", "-"]), fs.texts()).map(
            lambda s: [s]
        ),
        {
            "-o": st.sampled_from(["SAVE/imported.yaml", "SAVE", ""]),
            "-i": fs.shape_text(fs.SIZE_BOUND),
            "--output": NAMES,
            "--on-unsupported": st.one_of(st.sampled_from(["error", "stop"]), fs.texts()),
            "--force": FLAG,
        },
    ),
}


@st.composite
def command_line(draw: st.DrawFn, command: str, workdir: str) -> list[str]:
    """`command`, its positional arguments, and up to five of its options (repeats and strays included),
    in a random order."""
    positional, options = COMMANDS[command]
    words: list[list[str]] = [[a] for a in draw(positional)]
    for name in draw(st.lists(st.sampled_from(sorted(options)), max_size=5)) if options else []:
        if options[name] is FLAG:
            words.append([name])
            continue
        value = str(draw(options[name])).replace("SAVE", workdir)
        words.append([f"{name}={value}"] if draw(st.integers(0, 5)) == 0 else [name, value])
    if draw(st.integers(0, 9)) == 0:
        words.append([draw(st.sampled_from(["--bogus", "-x", "--", "extra", "--help", "-h"]))])
    order = draw(st.permutations(range(len(words))))
    argv = [command] + [w for i in order for w in words[i]]
    if command == "run" and not any(a.startswith("--max-memory") for a in argv):
        argv += ["--max-memory", "16MiB"]  # a run stays a fraction of a second
    return argv


@pytest.mark.parametrize(
    ("command", "examples"),
    [
        ("conv", 120),
        ("deconv", 120),
        ("pool", 120),
        ("rf", 80),
        ("run", 40),
        ("locate", 60),
        ("list", 10),
        ("expand", 40),
        ("schema", 5),
        ("import", 30),
        ("coverage", 40),
        ("report", 20),
        ("check", 40),
    ],
)
def test_random_command_lines(command: str, examples: int, workdir: Path) -> None:
    @fuzz(examples)
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        argv = data.draw(command_line(command, str(workdir)))
        stdin = data.draw(fs.random_yaml_text()) if "-" in argv[1:] else None
        result = invoke(argv, stdin)
        assert_no_crash(result)
        assert result.exit_code in (0, 1, 2, 3, 4, 5)
        # `check` reports every file on stdout whatever the others do; its failures are summed up on stderr.
        reports = command == "check" and result.exit_code != 2
        if result.exit_code in (1, 2) and not reports:
            assert result.stdout == "", "an error printed on stdout"
            err = result.stderr
            if reports:  # one line per failing file, then the count
                assert err.startswith("check: "), err
                assert "failed (exit 1)" in err, err
            else:
                assert err.startswith("error: ") or json.loads(err)["error"]["problems"], err
        if result.exit_code in (1, 2, 4, 5):
            assert result.stderr.strip(), "a failure without a message"
        if result.exit_code == 3 and not reports:
            assert "error" in result.stdout, "exit 3 without the diagnostic that caused it"

    check()


def test_the_command_table_covers_every_command() -> None:
    """A new command gets fuzzed too: COMMANDS lists every command of `convcalc --help`."""
    import typer.main

    group = typer.main.get_command(app)
    assert isinstance(group, typer.main.TyperGroup)
    assert set(group.commands) == set(COMMANDS)


# ---------------------------------------------------------------------------------------------------
# A few cases through a real process (the console entry point, real stdin and stderr).


@fuzz(4)
@given(mutant=fs.mutated_config(names=["seed_two_layer.yaml", "dcgan_generator.yaml"]))
def test_rf_in_a_subprocess(mutant: fs.Mutant) -> None:
    note("\n".join(mutant.steps))
    proc = subprocess.run(
        [sys.executable, "-m", "cli", "rf", "-", "--format", "json"],
        input=mutant.text.encode("utf-8", "surrogatepass"),
        capture_output=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode in (0, 1, 3), err
    assert "Traceback" not in err
    if proc.returncode == 1:
        assert proc.stdout == b""
        assert all(p["file"] == "<stdin>" for p in json.loads(err)["error"]["problems"])
    else:
        json.loads(proc.stdout)


@fuzz(4)
@given(argv=command_line("deconv", "/nonexistent"))
def test_calculator_in_a_subprocess(argv: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cli", *argv], capture_output=True, cwd=ROOT, timeout=60, check=False, stdin=None
    )
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode in (0, 1, 2, 3), err
    assert "Traceback" not in err
