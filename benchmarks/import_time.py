"""How long ``import unsloth_nb`` and ``%load_ext unsloth_nb`` take, and what they drag in.

Each repetition is a fresh Python process (nothing cached in ``sys.modules``), run
alternately for the two cases. The clock runs inside the child around the statement
itself: interpreter start-up and, for ``%load_ext``, creating the IPython shell are
not ours and are left out (the process wall time is shown for scale). After each
statement the child lists which heavy libraries it imported that were not there
before; the target is none of them, and torch least of all.

    .venv/bin/python benchmarks/import_time.py            # 30 processes per case
    .venv/bin/python benchmarks/import_time.py --quick    # 5 per case (CI smoke)

Targets: median and p90 <= 100 ms; no torch (nor transformers, trl, peft, unsloth,
datasets, runpod) after either. The slowest modules of one ``-X importtime`` run are
listed, which is where to look when the figure grows.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, Row, Spread, finish, offline, percentile, print_table, scratch_dir

TARGET_MS = 100.0
#: The training stack: none of it may load with the extension.
FORBIDDEN = ("torch", "transformers", "trl", "peft", "unsloth", "unsloth_zoo", "datasets", "runpod", "accelerate")
#: Reported when present, to see what the light path costs.
WATCHED = (*FORBIDDEN, "numpy", "pandas", "requests", "ipywidgets", "anywidget", "plotly", "yaml", "rich", "graphql", "comm")

_CHILD = r"""
import json, sys, time
watched = {watched!r}
case = {case!r}
if case == "load_ext":
    from IPython.core.interactiveshell import InteractiveShell
    shell = InteractiveShell.instance()
    before = set(sys.modules)
    started = time.perf_counter()
    shell.run_line_magic("load_ext", "unsloth_nb")
    seconds = time.perf_counter() - started
    assert "unsloth_train" in shell.magics_manager.magics["line"], "the magic was not registered"
else:
    before = set(sys.modules)
    started = time.perf_counter()
    import unsloth_nb
    seconds = time.perf_counter() - started
loaded = sorted(name for name in watched if name in sys.modules and name not in before)
print(json.dumps({{"seconds": seconds, "loaded": loaded, "modules": len(set(sys.modules) - before)}}))
"""

CASES = {"import": "import unsloth_nb", "load_ext": "%load_ext unsloth_nb"}


def child_env(bytecode_cache: Path) -> dict[str, str]:
    """The children's environment: this checkout first on the path, bytecode cached as an install would.

    An installed package has its ``.pyc`` files; a checkout run with
    PYTHONDONTWRITEBYTECODE would recompile every module on each import and time the
    compiler instead. The cache goes to a scratch folder, not into the source tree.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PYTHONPYCACHEPREFIX"] = str(bytecode_cache)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PYTHONSTARTUP", None)
    return env


def run_once(case: str, env: dict[str, str]) -> tuple[float, float, list[str], int]:
    """(statement seconds, process wall seconds, heavy modules it loaded, modules it loaded)."""
    code = _CHILD.format(watched=WATCHED, case=case)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{CASES[case]} failed in a fresh process:\n{done.stderr[-3000:]}")
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return float(answer["seconds"]), wall, list(answer["loaded"]), int(answer["modules"])


def slowest_modules(env: dict[str, str], count: int = 6) -> list[tuple[str, float]]:
    """Largest self times among the modules ``%load_ext unsloth_nb`` adds to an IPython that is already up.

    From one ``python -X importtime``: lines after IPython's shell module finished
    importing belong to the extension's import chain.
    """
    code = "import IPython.core.interactiveshell\nimport unsloth_nb.ui.magics"
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, check=False
    )
    rows: list[tuple[str, float]] = []
    ours = False
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if not line.startswith("import time:") or len(parts) != 3 or "self [us]" in line:
            continue
        name = parts[2].rstrip()
        if not ours:
            ours = name.strip() == "IPython.core.interactiveshell" and not name.startswith("  ")
            continue
        rows.append((name.strip(), int(parts[0].split(":")[1].strip()) / 1000))
    return sorted(rows, key=lambda r: r[1], reverse=True)[:count]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="5 processes per case (CI smoke)")
    parser.add_argument("--repeats", type=int, default=30, help="fresh processes per case (default 30)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    repeats = 5 if args.quick else args.repeats

    offline()
    env = child_env(scratch_dir("pycache"))
    for case in CASES:  # untimed: writes the bytecode cache and warms the disk cache
        run_once(case, env)
    timings: dict[str, list[float]] = {case: [] for case in CASES}
    walls: dict[str, list[float]] = {case: [] for case in CASES}
    loaded: dict[str, set[str]] = {case: set() for case in CASES}
    counts: dict[str, list[float]] = {case: [] for case in CASES}
    for _ in range(repeats):
        for case in CASES:  # alternate, so a busy moment hits both cases alike
            seconds, wall, heavy, modules = run_once(case, env)
            timings[case].append(seconds * 1000)
            walls[case].append(wall * 1000)
            loaded[case].update(heavy)
            counts[case].append(modules)

    rows = []
    for case, label in CASES.items():
        values = timings[case]
        median, p90 = Spread(values).median, percentile(values, 90)
        forbidden = sorted(loaded[case] & set(FORBIDDEN))
        rows.append(
            Row(
                [
                    f"`{label}`",
                    f"{median:.1f} ms",
                    f"{p90:.1f} ms",
                    f"{min(values):.1f}-{max(values):.1f} ms",
                    f"{Spread(walls[case]).median:.0f} ms",
                    f"{Spread(counts[case]).median:.0f}",
                    ", ".join(sorted(loaded[case])) or "none",
                    f"<= {TARGET_MS:.0f} ms, no torch",
                ],
                ok=median <= TARGET_MS and p90 <= TARGET_MS and not forbidden,
            )
        )
    rows = print_table(
        f"Import cost, fresh process each ({repeats} per case, alternating)",
        ["statement", "median", "p90", "min-max", "process wall", "new modules", "watched libraries loaded", "target"],
        rows,
        note=(
            "Process wall = interpreter start + statement (+ IPython shell for %load_ext), for scale only. "
            "Bytecode is cached (as after pip install)."
        ),
    )
    print("\nLargest self times of the modules the extension adds to a running IPython (one `python -X importtime`):")
    for name, ms in slowest_modules(env):
        print(f"  {ms:7.1f} ms  {name}")
    return finish(rows, args.strict)


if __name__ == "__main__":
    raise SystemExit(main())
