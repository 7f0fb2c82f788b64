"""Getting llama.cpp's tools onto a pod when a job exports GGUF, and only then.

The boot script installs what every job needs; llama-cpp-python is compiled from its PyPI source, which
costs a few minutes of paid GPU time, so only a job with ``save.gguf`` pays for it, when its export phase
starts. The install keeps the image's torch (the same constraints stage 0 uses). In a user's kernel
nothing is installed behind their back: the error says what to run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from unsloth_nb.export.tools import INSTALL_HINT, GgufToolsMissing, llama_cpp_version

if TYPE_CHECKING:
    from unsloth_nb.phases.base import PhaseHooks

#: What the ``gguf`` extra of pyproject.toml asks for; the pod installs the same.
LLAMA_CPP_REQUIREMENT = "llama-cpp-python>=0.3.36,<0.4"
#: The multimodal library is not needed to convert, quantise or run a text model; leaving it out saves build time.
CMAKE_ARGS = "-DLLAVA_BUILD=OFF"
#: Set on a pod by the boot script (the worker's credential): the one place we may install.
POD_MARKER_ENV = "UNSLOTH_NB_WORKER_TOKEN"


def ensure_llama_cpp(hooks: PhaseHooks) -> str:
    """The llama-cpp-python version to export with; on a pod, installs it first when missing."""
    version = llama_cpp_version()
    if version is not None:
        return version
    if not os.environ.get(POD_MARKER_ENV):
        raise GgufToolsMissing(f"GGUF export (save.gguf) needs llama.cpp's tools here: {INSTALL_HINT}")
    hooks.emit(
        "log", level="info", message="Installing llama.cpp's tools for GGUF (compiled from PyPI; a few minutes).", source="export"
    )
    from unsloth_nb.worker.pod_setup import constraints_for, image_facts

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="unsloth-nb-gguf-") as scratch:
        constraints = Path(scratch) / "constraints.txt"
        constraints.write_text("\n".join(constraints_for(image_facts())) + "\n")
        command = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off"]
        command += ["--constraint", str(constraints), LLAMA_CPP_REQUIREMENT]
        env = {**os.environ, "CMAKE_ARGS": os.environ.get("CMAKE_ARGS", CMAKE_ARGS)}
        done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        tail = "\n".join(((done.stderr or "") + (done.stdout or "")).strip().splitlines()[-10:])
        raise GgufToolsMissing(f"installing {LLAMA_CPP_REQUIREMENT} on the pod failed:\n{tail}")
    installed = llama_cpp_version()
    if installed is None:
        raise GgufToolsMissing(f"{LLAMA_CPP_REQUIREMENT} installed but is not importable")
    hooks.emit(
        "log", level="info", message=f"llama.cpp's tools installed in {time.monotonic() - started:.0f} s.", source="export"
    )
    return installed
