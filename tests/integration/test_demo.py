"""`unsloth-nb demo` as a user runs it: the real SmolLM2, offline, a few steps (the full 40 are in the README)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_the_demo_command_trains_answers_and_writes_the_loss_curve(job_home: Path, tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "unsloth-nb"  # the console script beside this interpreter
    command = str(script) if script.exists() else shutil.which("unsloth-nb")
    assert command, "the unsloth-nb console script is not installed (pip install -e .)"
    done = subprocess.run(
        [command, "demo", "--steps", "3"], cwd=tmp_path, env=os.environ.copy(), capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stderr
    assert out.count("Q: Which two teams competed in latest super-bowl?") == 2  # before and after
    assert "Loss " in out and "Demo wall time" in out
    assert "leaked" not in out  # no interpreter-shutdown noise after the result
    # Only our lines: the base model's first load (before the job) prints Unsloth's banner, torch's
    # _pytree warnings and a "Loading weights" bar, which go to a file (issue 16: a clean output).
    for foreign in ("Loading weights", "_pytree", "Unsloth 20", "Unsloth (CPU)", "it/s]"):
        assert foreign not in out and foreign not in done.stdout, f"{foreign!r} reached the terminal:\n{out[:3000]}"
    assert "Loading weights" in (job_home / "demo-output.log").read_text()
    loss_html = next(job_home.glob("jobs/*/loss.html"))
    assert loss_html.stat().st_size > 100_000 and "plotly" in loss_html.read_text()[:200_000].lower()
    assert next(job_home.glob("jobs/*/outputs/adapter/adapter_config.json"))
