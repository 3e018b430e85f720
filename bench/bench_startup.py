"""Start-up benchmark: whole convcalc commands against `python -c pass` and a minimal Typer app.

Usage: python bench/bench_startup.py [--runs 20] [--importtime] [--markdown docs/startup-benchmark.md]

Every command runs as a fresh subprocess, round-robin (so slow drifts of a shared machine hit all
commands alike), after one warm-up run each. For each command the median and minimum of two clocks
are reported: the CPU time of the child (user + sys, from getrusage(RUSAGE_CHILDREN): the steadier
figure on a loaded machine, as it does not count the time spent waiting for a core) and the
wall-clock time; each as a ratio to the minimal Typer app measured in the same run, and the median
CPU time also as a ratio to `python -c pass`. Read the ratios, not the absolute times.

convcalc is started the way its console script starts it (`from cli.main import main; main()`), from
this checkout: the script puts the repository first on sys.path, so the code measured is the code
beside this file, not whichever checkout the virtualenv's `convcalc` script was installed from.

Bytecode is cached as in a normal install, in a temporary PYTHONPYCACHEPREFIX (the repository gets
no __pycache__, and PYTHONDONTWRITEBYTECODE is overridden); `--no-bytecode-cache` measures
recompiling every run. `--compare CHECKOUT` times another checkout's convcalc (e.g. the commit before
a change, from `git archive`) in the same rounds, labelled with its directory name. `--importtime`
adds the import profile of `convcalc deconv --k 3 --s 2` (`-X importtime`, best of a few runs): the
modules it imports beyond the minimal Typer app, and the top importers by cumulative time.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
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

#: What the `convcalc` console script does, with this checkout first on sys.path.
CONVCALC_ENTRY = """
import sys
sys.path.insert(0, {root!r})
from cli.main import main
sys.exit(main())
"""

TYPER_APP = "minimal Typer app"
BARE = "python -c pass"
TYPER_IMPORT = "python -c 'import typer'"
PROFILED = "convcalc deconv --k 3 --s 2"


def _convcalc_commands(cc: list[str], label: str = "") -> dict[str, list[str]]:
    return {
        f"{label}convcalc --version": [*cc, "--version"],
        f"{label}convcalc conv --k 3 --s 2 --i 224": [*cc, "conv", "--k", "3", "--s", "2", "--i", "224"],
        f"{label}{PROFILED}": [*cc, "deconv", "--k", "3", "--s", "2"],
        f"{label}convcalc pool --k 3 --s 2 --i 112": [*cc, "pool", "--k", "3", "--s", "2", "--i", "112"],
        f"{label}convcalc rf vgg16": [*cc, "rf", "vgg16"],
    }


def _entry(tmp: Path, root: Path, name: str) -> list[str]:
    entry = tmp / name
    entry.write_text(CONVCALC_ENTRY.format(root=str(root)), encoding="utf-8")
    return [sys.executable, str(entry)]


def commands(tmp: Path, compare: Path | None = None) -> dict[str, list[str]]:
    """The baselines and the convcalc commands of this checkout (and, labelled, of `compare`)."""
    app = tmp / "minimal_typer_app.py"
    app.write_text(MINIMAL_TYPER_APP, encoding="utf-8")
    cmds = {
        BARE: [sys.executable, "-c", "pass"],
        TYPER_IMPORT: [sys.executable, "-c", "import typer"],
        TYPER_APP: [sys.executable, str(app), "--k", "3"],
        **_convcalc_commands(_entry(tmp, ROOT, "convcalc_entry.py")),
    }
    if compare is not None:
        cmds.update(_convcalc_commands(_entry(tmp, compare.resolve(), "compare_entry.py"), f"[{compare.name}] "))
    return cmds


def _cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run of `argv`, its stdout discarded."""
    cpu = _cpu_children()
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, check=False)
    wall = time.perf_counter() - start
    # Exit 3 is a diagnostic verdict (e.g. --fail-on), not a failure to start.
    if done.returncode not in (0, 3):
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.decode()[:500]}")
    return wall, _cpu_children() - cpu


def measure(cmds: dict[str, list[str]], runs: int, env: dict[str, str]) -> dict[str, list[tuple[float, float]]]:
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in cmds}
    for argv in cmds.values():
        _run_once(argv, env)
    for _ in range(runs):
        for name, argv in cmds.items():
            times[name].append(_run_once(argv, env))
    return times


def _importtimes(cmd: list[str], env: dict[str, str], repeat: int) -> dict[str, tuple[int, int, int]]:
    """module -> (self µs, cumulative µs, nesting depth), each time the minimum over `repeat` runs."""
    best: dict[str, tuple[int, int, int]] = {}
    for _ in range(repeat):
        done = subprocess.run(
            cmd, cwd=ROOT, capture_output=True, text=True, env={**env, "PYTHONPROFILEIMPORTTIME": "1"}, check=False
        )
        for line in done.stderr.splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            # "import time:       123 |        456 |   package.module" (two spaces of indent per level)
            head, cum, name = line.split("|", 2)
            depth = (len(name) - len(name.lstrip()) - 1) // 2
            key, own, total = name.strip(), int(head.split(":", 1)[1]), int(cum)
            old = best.get(key)
            best[key] = (own, total, depth) if old is None else (min(old[0], own), min(old[1], total), depth)
    return best


def import_profile(
    argv: list[str], baseline: list[str], env: dict[str, str], repeat: int = 5
) -> tuple[list[tuple[str, int, int]], list[tuple[str, int, int]]]:
    """The modules `argv` imports beyond `baseline` as (module, self µs, cumulative µs) by self time, and
    the top-level importers of `argv` (imported from the script itself) by cumulative time.

    The sum of the extra modules' self times is the import overhead over the baseline; a cumulative
    figure may include modules the baseline imports too (cli.main's includes typer).
    """
    ours, theirs = _importtimes(argv, env, repeat), _importtimes(baseline, env, repeat)
    extra = sorted(((n, s, c) for n, (s, c, _) in ours.items() if n not in theirs), key=lambda row: -row[1])
    top = sorted(((n, s, c) for n, (s, c, d) in ours.items() if d == 0), key=lambda row: -row[2])
    return extra, top


def report(
    times: dict[str, list[tuple[float, float]]],
    runs: int,
    profile: tuple[list[tuple[str, int, int]], list[tuple[str, int, int]]] | None,
    cached: bool,
) -> str:
    def stat(name: str, clock: int, how: str) -> float:
        values = [t[clock] for t in times[name]]
        return statistics.median(values) if how == "median" else min(values)

    lines = [
        "| command | CPU median ms | CPU min ms | wall median ms | wall min ms "
        "| CPU median × Typer app | CPU min × Typer app | wall median × Typer app | CPU median × python |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in times:
        cells = [stat(name, clock, how) for clock in (1, 0) for how in ("median", "min")]
        ratios = [
            stat(name, 1, "median") / stat(TYPER_APP, 1, "median"),
            stat(name, 1, "min") / stat(TYPER_APP, 1, "min"),
            stat(name, 0, "median") / stat(TYPER_APP, 0, "median"),
            stat(name, 1, "median") / stat(BARE, 1, "median"),
        ]
        lines.append(
            f"| `{name}` | "
            + " | ".join(f"{c * 1000:.1f}" for c in cells)
            + " | "
            + " | ".join(f"{r:.2f}" for r in ratios)
            + " |"
        )
    env = (
        f"{runs} runs each, round-robin after one warm-up; Python {platform.python_version()} on "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs; "
        f"bytecode {'cached' if cached else 'recompiled every run'}."
    )
    text = [env, "", *lines]
    if profile is not None:
        extra, top = profile
        total = sum(row[1] for row in extra) / 1000
        text += [
            "",
            f"`{PROFILED}` imports {len(extra)} modules beyond the minimal Typer app; their self times add up "
            f"to {total:.1f} ms (`-X importtime`, the minimum of 5 runs; importtime inflates small modules). "
            "The 15 most expensive:",
            "",
            "| module | self µs | cumulative µs |",
            "|---|---:|---:|",
            *[f"| `{name}` | {s} | {c} |" for name, s, c in extra[:15]],
            "",
            f"Top-level importers of `{PROFILED}` by cumulative time (the baseline's own modules included):",
            "",
            "| module | self µs | cumulative µs |",
            "|---|---:|---:|",
            *[f"| `{name}` | {s} | {c} |" for name, s, c in top[:12]],
        ]
    return "\n".join(text) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="timed runs per command (default 20)")
    parser.add_argument("--markdown", type=Path, help="write the figures into this Markdown file")
    parser.add_argument("--importtime", action="store_true", help=f"add the import profile of `{PROFILED}`")
    parser.add_argument("--no-bytecode-cache", action="store_true", help="recompile the sources every run")
    parser.add_argument(
        "--compare", type=Path, metavar="CHECKOUT", help="also time another checkout's commands, in the same rounds"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        if args.no_bytecode_cache:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        cmds = commands(Path(tmp), args.compare)
        times = measure(cmds, args.runs, env)
        profile = import_profile(cmds[PROFILED], cmds[TYPER_APP], env) if args.importtime else None
    text = report(times, args.runs, profile, cached=not args.no_bytecode_cache)
    print(text, end="")
    if args.markdown is not None:
        marker = "<!-- figures -->"
        old = args.markdown.read_text(encoding="utf-8") if args.markdown.exists() else marker
        head, _, _ = old.partition(marker)
        args.markdown.write_text(f"{head}{marker}\n\n{text}", encoding="utf-8")


if __name__ == "__main__":
    main()
