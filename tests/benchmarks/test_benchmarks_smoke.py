"""Every benchmark script runs from this checkout with ``--quick`` and prints its table.

A smoke test, not a gate on timings: the figures of a shared CI machine mean little,
so only the exit status and the table's presence are checked. A script whose timing
target is missed still exits 0 (``--strict`` is for people reading the numbers);
``chart_stream.py`` checks byte and rate budgets that do not depend on the machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: script -> a line its table prints (its header row or title).
SCRIPTS = {
    "chart_stream.py": "LossChart streaming",
    "import_time.py": "| statement | median | p90 |",
    "controller_overhead.py": "| workload | span | (a) bare |",
    "kernel_responsiveness.py": "| kernel | cells | p50 | p99 |",
    "runpod_overhead.py": "| figure | measured | target |",
    "gpu_throughput.py": "| variant | tokens/s | step |",
    "plan_accuracy.py": "| run | model | steps | plan s | measured s |",
    "judge_throughput.py": "| concurrency | pairs | pairs/s |",
}

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_benchmark_runs_quick(script: str, tmp_path: Path) -> None:
    env = dict(os.environ)
    env["UNSLOTH_NB_BENCH_CACHE"] = str(tmp_path.parent / "bench-cache")  # shared by the scripts of one session
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--quick"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{script} --quick exited {done.returncode}:\n{output[-4000:]}"
    assert SCRIPTS[script] in done.stdout, f"{script} printed no table:\n{output[-4000:]}"
    assert "result:" in done.stdout
