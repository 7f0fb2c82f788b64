"""`unsloth-nb autoload`: a new IPython (what a restarted kernel is) knows %unsloth_jobs without %load_ext."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from unsloth_nb.cli import main
from unsloth_nb.ui.autoload import startup_file

REPO = Path(__file__).resolve().parents[2]


def fresh_ipython(code: str, ipython_dir: Path) -> str:
    """Run ``code`` in a new IPython process, as a restarted kernel starts: profile, startup files, then the cell."""
    env = {
        **os.environ,
        "IPYTHONDIR": str(ipython_dir),
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-m", "IPython", "--no-banner", "--colors=nocolor", "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    return done.stdout + done.stderr


def test_autoload_on_gives_a_new_kernel_the_magics_and_off_takes_them_away(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ipython_dir = tmp_path / "ipython"
    monkeypatch.setenv("IPYTHONDIR", str(ipython_dir))
    assert "not found" in fresh_ipython("%unsloth_jobs", ipython_dir), "without it, a new kernel does not know the magic"

    assert main(["autoload", "on"]) == 0
    path = startup_file()
    assert path.is_file() and path.parent == ipython_dir / "profile_default" / "startup"
    assert "on: new kernels load" in capsys.readouterr().out

    out = fresh_ipython("table = %unsloth_jobs\nprint(repr(table), sorted(k for k in globals() if 'unsloth' in k))", ipython_dir)
    assert "No jobs yet" in out and "not found" not in out, out
    assert out.rstrip().endswith("[]"), f"the startup file leaves no names in the user's namespace: {out}"

    assert main(["autoload", "status"]) == 0 and capsys.readouterr().out.startswith("on:")
    assert main(["autoload", "off"]) == 0 and not path.exists()
    assert "not found" in fresh_ipython("%unsloth_jobs", ipython_dir)
    assert main(["autoload", "off"]) == 0 and "was not on" in capsys.readouterr().out


def test_the_startup_file_does_nothing_where_unsloth_nb_is_not_installed(tmp_path: Path) -> None:
    from unsloth_nb.ui.autoload import enable_autoload

    ipython_dir = tmp_path / "ipython"
    path = enable_autoload(ipython_dir=ipython_dir)
    code = path.read_text().replace('find_spec("unsloth_nb")', 'find_spec("unsloth_nb_not_installed")')
    path.write_text(code)
    out = fresh_ipython("print('cell ran')", ipython_dir)
    assert "cell ran" in out and "Error" not in out, out


def test_a_restarted_jupyter_kernel_knows_unsloth_jobs(tmp_path: Path) -> None:
    """The real thing: an ipykernel started, restarted, and asked for %unsloth_jobs without %load_ext."""
    from jupyter_client.manager import KernelManager

    from unsloth_nb.ui.autoload import enable_autoload

    ipython_dir = tmp_path / "ipython"
    enable_autoload(ipython_dir=ipython_dir)
    env = {
        **os.environ,
        "IPYTHONDIR": str(ipython_dir),
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    manager = KernelManager(kernel_name="python3")
    manager.kernel_cmd = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    manager.start_kernel(env=env)
    try:
        manager.restart_kernel(now=True, env=env)
        client = manager.client()
        client.start_channels()
        client.wait_for_ready(timeout=60)
        outputs: list[str] = []

        def keep(message: dict) -> None:
            content = message["content"]
            outputs.append(str(content.get("text") or content.get("data", {}).get("text/plain") or content.get("evalue") or ""))

        reply = client.execute_interactive("%unsloth_jobs", timeout=60, output_hook=keep)
        client.stop_channels()
    finally:
        manager.shutdown_kernel(now=True)
    assert reply["content"]["status"] == "ok", outputs
    assert any("No jobs yet" in text for text in outputs), outputs
