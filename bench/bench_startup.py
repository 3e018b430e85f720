"""Start-up benchmark: whole convcalc commands against `python -c pass` and a minimal Typer app.

Usage: python3 bench/bench_startup.py [--runs 20] [--importtime] [--markdown docs/startup-benchmark.md]

Every command runs as a fresh subprocess, round-robin (so slow drifts of a shared machine hit all
commands alike), after one warm-up run each; the median and minimum wall-clock times are reported
with their ratios to the minimal Typer app measured in the same run. Machines are noisy: read the
ratios and the overhead over the Typer app, not the absolute times. Bytecode is cached as in a
normal install, in a temporary PYTHONPYCACHEPREFIX (the repository gets no __pycache__, and
PYTHONDONTWRITEBYTECODE is overridden); `--no-bytecode-cache` measures recompiling every run.
`--importtime` adds the modules `convcalc conv` imports beyond the minimal Typer app, by their
cumulative `-X importtime` cost.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

MINIMAL_TYPER_APP = """
import typer

app = typer.Typer(add_completion=False)


@app.command()
def main(k: int = 3) -> None:
    print(k)


app()
"""


def _convcalc() -> list[str]:
    """How to start convcalc: the installed console script through this interpreter, else python -m cli."""
    script = shutil.which("convcalc")
    if script is not None:
        return [sys.executable, script]
    return [sys.executable, "-m", "cli"]


def commands(typer_app: Path) -> dict[str, list[str]]:
    cc = _convcalc()
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "minimal Typer app": [sys.executable, str(typer_app), "--k", "3"],
        "convcalc conv --k 3 --s 2 --i 224": [*cc, "conv", "--k", "3", "--s", "2", "--i", "224"],
        "convcalc deconv --k 3 --s 2": [*cc, "deconv", "--k", "3", "--s", "2"],
        "convcalc rf configs/vgg16.yaml": [*cc, "rf", "configs/vgg16.yaml"],
    }


def _run_once(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, check=False)
    elapsed = time.perf_counter() - start
    # Exit 3 is a diagnostic verdict (e.g. --fail-on), not a failure to start.
    if done.returncode not in (0, 3):
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.decode()[:500]}")
    return elapsed


def measure(cmds: dict[str, list[str]], runs: int, env: dict[str, str]) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in cmds}
    for argv in cmds.values():
        _run_once(argv, env)
    for _ in range(runs):
        for name, argv in cmds.items():
            times[name].append(_run_once(argv, env))
    return times


def importtime(argv: list[str], baseline: list[str], env: dict[str, str]) -> list[tuple[str, int, int]]:
    """(module, self µs, cumulative µs) for modules `argv` imports that `baseline` does not, by self time.

    Self time is what each extra module costs; a cumulative figure may include modules the baseline
    imports too (cli.main's includes typer), so the total of the self times is the import overhead.
    """

    def parse(cmd: list[str]) -> dict[str, tuple[int, int]]:
        done = subprocess.run(
            cmd,
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={**env, "PYTHONPROFILEIMPORTTIME": "1"},
            check=False,
        )
        out: dict[str, tuple[int, int]] = {}
        for line in done.stderr.splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            # "import time:       123 |        456 |   package.module" (the indent shows nesting)
            head, cum, name = line.split("|", 2)
            out[name.strip()] = (int(head.split(":", 1)[1]), int(cum))
        return out

    ours, theirs = parse(argv), parse(baseline)
    extra = [(name, s, c) for name, (s, c) in ours.items() if name not in theirs]
    return sorted(extra, key=lambda row: -row[1])


def report(times: dict[str, list[float]], runs: int, top: list[tuple[str, int, int]] | None, cached: bool) -> str:
    base = statistics.median(times["minimal Typer app"])
    base_min = min(times["minimal Typer app"])
    bare = statistics.median(times["python -c pass"])
    lines = [
        "| command | median ms | min ms | median × Typer app | min × Typer app | median − Typer app, ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, values in times.items():
        med, low = statistics.median(values), min(values)
        lines.append(
            f"| `{name}` | {med * 1000:.1f} | {low * 1000:.1f} | {med / base:.2f} | {low / base_min:.2f} | "
            f"{(med - base) * 1000:+.1f} |"
        )
    env = (
        f"{runs} runs each, round-robin after one warm-up; Python {platform.python_version()} on "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs; "
        f"bytecode {'cached' if cached else 'recompiled every run'}; `python -c pass` = {bare * 1000:.1f} ms."
    )
    text = [env, "", *lines]
    if top:
        total = sum(row[1] for row in top) / 1000
        text += [
            "",
            f"`convcalc conv` imports {len(top)} modules beyond the minimal Typer app; "
            f"their self times add up to {total:.1f} ms (`-X importtime`, one run). The 15 most expensive:",
            "",
            "| module | self µs | cumulative µs |",
            "|---|---:|---:|",
            *[f"| `{name}` | {s} | {c} |" for name, s, c in top[:15]],
        ]
    return "\n".join(text) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="timed runs per command (default 20)")
    parser.add_argument("--markdown", type=Path, help="write the figures into this Markdown file")
    parser.add_argument("--importtime", action="store_true", help="list the modules convcalc conv adds")
    parser.add_argument("--no-bytecode-cache", action="store_true", help="recompile the sources every run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        if args.no_bytecode_cache:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        app = Path(tmp) / "minimal_typer_app.py"
        app.write_text(MINIMAL_TYPER_APP, encoding="utf-8")
        cmds = commands(app)
        times = measure(cmds, args.runs, env)
        top = (
            importtime(cmds["convcalc conv --k 3 --s 2 --i 224"], cmds["minimal Typer app"], env)
            if args.importtime
            else None
        )
    text = report(times, args.runs, top, cached=not args.no_bytecode_cache)
    print(text, end="")
    if args.markdown is not None:
        marker = "<!-- figures -->"
        old = args.markdown.read_text(encoding="utf-8") if args.markdown.exists() else marker
        head, _, _ = old.partition(marker)
        args.markdown.write_text(f"{head}{marker}\n\n{text}", encoding="utf-8")


if __name__ == "__main__":
    main()
