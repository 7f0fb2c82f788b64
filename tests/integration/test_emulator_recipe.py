"""The README's offline RunPod recipe: the emulator's printed setup pastes into bash as is,
its ports can be fixed, and pod logs outlive it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)


def test_the_emulator_prints_exports_bash_accepts_and_keeps_pod_logs(tmp_path: Path) -> None:
    workdir = tmp_path / "emulator"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "unsloth_nb.testing.runpod_emulator", "--port", "0", "--proxy-port", "0"]
    process = subprocess.Popen([*command, "--workdir", str(workdir)], stdout=subprocess.PIPE, text=True, env=env)
    assert process.stdout is not None
    lines: list[str] = []
    try:
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("Ctrl-C"):
                break
        exports = [line.strip() for line in lines if line.strip().startswith("export ")]
        script = "\n".join(exports) + '\nprintf "%s|%s" "$RUNPOD_API_KEY" "$UNSLOTH_NB_RUNPOD_PROXY_TEMPLATE"'
        answer = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=False)
        assert answer.returncode == 0, answer.stderr
        key, template = answer.stdout.split("|")
        assert key == "emulator"
        assert template.startswith("http://127.0.0.1:") and template.endswith("/{pod_id}-{port}")
        assert any("kept after it stops" in line for line in lines)
    finally:
        process.send_signal(signal.SIGTERM)
        rest = process.communicate(timeout=30)[0]
    assert process.returncode == 0
    assert f"Pod logs: {workdir / 'logs'}" in rest
    assert workdir.is_dir()  # a given (or the default) workdir, with its pods' logs, is not removed on stop


def test_by_hand_pod_logs_go_to_the_data_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from unsloth_nb.testing.runpod_emulator.cli import default_workdir

    monkeypatch.setenv("UNSLOTH_NB_HOME", str(tmp_path))

    assert default_workdir() == tmp_path / "runpod-emulator"


def test_by_hand_the_ports_are_fixed() -> None:
    from unsloth_nb.testing.runpod_emulator.cli import build_parser

    args = build_parser().parse_args([])

    assert (args.port, args.proxy_port) == (8765, 8766)
