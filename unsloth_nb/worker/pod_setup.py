"""A pod's install, run by stage 0 once the client's package is there: what the image brings, a pinned install.

Stage 0 (``backends/runpod/stage0.py``) travels in the pod's create request, so it holds only what must run
before our package arrives: the worker port with the job token, and the package's receipt. Everything else
about the boot comes with the package, from here, so the create request stays small (GraphQL's create
request used to be 8.1 of its 8 kB budget with all of this inlined). Standard library only: it runs before
the install, and the serverless boot (``UNSLOTH_NB_STAGE0``) execs this source for the same helpers. It:

1. reads the image's torch, torchvision, xformers and CUDA versions and the GPU driver, without importing
   torch, and prints them as one JSON line;
2. when a training module is missing, starts ``pip install`` of the requirements in the background,
   constrained to the image's torch (and a torchvision and xformers built for it): pip may add packages but
   can never swap the image's torch for PyPI's newest, which may need a newer driver than the host has;
3. when stage 0 has served the port until the install is over, writes ``boot.json`` (the facts, how the
   install went) for the worker, which reports it as an event.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

#: Modules training needs; when all are found, pip is skipped (found, not imported: importing takes seconds).
TRAINING_MODULES = ("yaml", "platformdirs", "torch", "transformers", "trl", "peft", "datasets", "unsloth")
#: The xformers build for each torch release, from unsloth 2026.10.9's own ``cuXXXonlytorchYYY`` extras.
XFORMERS_FOR_TORCH = {
    "2.6": "0.0.29.post3",
    "2.7.0": "0.0.30",
    "2.7.1": "0.0.31.post1",
    "2.8": "0.0.32.post2",
    "2.9.0": "0.0.33.post1",
    "2.9.1": "0.0.33.post2",
    "2.10": "0.0.34",
    "2.11": "0.0.35",
    "2.12": "0.0.35",
}
#: What to install, one requirement a line: written into the package by the client (its own pins).
REQUIREMENTS_FILE = "pod_requirements.txt"


# ---------------------------------------------------------------------- what the image brings
def public_version(version: str) -> str:
    """``2.9.1+cu128`` -> ``2.9.1``: what PyPI's index knows, and what a ``==`` pin matches any build of."""
    return version.split("+", 1)[0]


def installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def torch_cuda() -> str | None:
    """The CUDA version torch was built for, read from ``torch/version.py`` (importing torch takes seconds)."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "version.py"
        if path.is_file():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                if line.startswith("cuda") and "=" in line:
                    value = line.split("=", 1)[1].strip().strip("'\"")
                    return None if value in ("", "None") else value
    return None


def gpu_facts() -> dict[str, str]:
    """GPU names and the host driver, from nvidia-smi when the image has it."""
    if shutil.which("nvidia-smi") is None:
        return {}
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    rows = [[cell.strip() for cell in line.split(",")] for line in out.splitlines() if line.strip()]
    if not rows:
        return {}
    return {"gpu": f"{len(rows)} x {rows[0][0]}", "driver": rows[0][-1]}


def image_facts() -> dict[str, Any]:
    facts: dict[str, Any] = {
        "python": ".".join(map(str, sys.version_info[:3])),
        "torch": installed("torch"),
        "torch_cuda": torch_cuda(),
        "torchvision": installed("torchvision"),
        "xformers": installed("xformers"),
        "cuda_env": os.environ.get("CUDA_VERSION"),
    }
    facts.update(gpu_facts())
    return facts


def describe(facts: dict[str, Any]) -> str:
    """One line for a person: the torch and CUDA this pod trains with."""
    torch = facts.get("torch") or "not installed"
    cuda = f"CUDA {facts['torch_cuda']}" if facts.get("torch_cuda") else "no CUDA build"
    gpu = f"{facts['gpu']}, driver {facts.get('driver')}" if facts.get("gpu") else "no GPU visible"
    return f"torch {torch} ({cuda}), python {facts.get('python')}, {gpu}"


# ---------------------------------------------------------------------- the pinned install
def constraints_for(facts: dict[str, Any]) -> list[str]:
    """pip constraints that keep the image's torch and add only a torchvision and xformers built for it."""
    torch = facts.get("torch")
    if not torch:
        return []
    base = public_version(str(torch))
    pins = [f"torch=={base}"]
    parts = base.split(".")
    vision = facts.get("torchvision")
    if vision:
        pins.append(f"torchvision=={public_version(str(vision))}")
    elif len(parts) >= 3 and parts[0] == "2" and parts[1].isdigit():
        pins.append(f"torchvision==0.{int(parts[1]) + 15}.{parts[2]}")
    xformers = facts.get("xformers") or XFORMERS_FOR_TORCH.get(base) or XFORMERS_FOR_TORCH.get(".".join(parts[:2]))
    if xformers:
        pins.append(f"xformers=={public_version(str(xformers))}")
    return pins


def missing_modules() -> list[str]:
    return [name for name in TRAINING_MODULES if importlib.util.find_spec(name) is None]


def pip_command(requirements: list[str], constraints_file: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--progress-bar",
        "off",
        "--no-cache-dir",
        "--constraint",
        str(constraints_file),
        *requirements,
    ]


def packaged_requirements() -> list[str]:
    """The requirements the client wrote into its package (none when it wrote none)."""
    path = Path(__file__).with_name(REQUIREMENTS_FILE)
    if not path.is_file():
        return []
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# ---------------------------------------------------------------------- the install, as stage 0 runs it
def say(message: str) -> None:
    print(f"[unsloth-nb boot] {message}", flush=True)


class Setup:
    """The image's facts and the install started in the background; stage 0 polls it while it serves the port."""

    def __init__(self, boot_dir: Path, requirements: list[str] | None = None) -> None:
        self.boot_dir = boot_dir
        self.facts = image_facts()
        (boot_dir / "pod.json").write_text(json.dumps(self.facts), encoding="utf-8")
        say("image: " + describe(self.facts))
        say("facts " + json.dumps(self.facts))
        self.installer: subprocess.Popen[bytes] | None = None
        self.install = "not needed"
        missing = missing_modules()
        if not missing:
            say("training packages already installed")
            return
        wanted = packaged_requirements() if requirements is None else requirements
        pins = constraints_for(self.facts)
        constraints = boot_dir / "constraints.txt"
        constraints.write_text("".join(pin + "\n" for pin in pins), encoding="utf-8")
        say(f"installing {' '.join(wanted)} (missing: {', '.join(missing)}; pinned: {', '.join(pins) or 'nothing'})")
        log = (boot_dir / "install.log").open("wb")
        self.installer = subprocess.Popen(pip_command(wanted, constraints), stdout=log, stderr=subprocess.STDOUT)
        self.install = "running"

    def poll(self) -> str:
        """``not needed``, ``running``, ``done`` or ``failed (N)``."""
        if self.installer is not None and self.install == "running":
            code = self.installer.poll()
            if code is not None:
                self.install = "done" if code == 0 else f"failed ({code})"
        return self.install

    def finish(self, seconds: float) -> int:
        """Write ``boot.json`` for the worker; 1 when the install replaced the image's torch (the job says so), else 0."""
        if self.install.startswith("failed"):
            tail = (self.boot_dir / "install.log").read_text(encoding="utf-8", errors="replace")[-3000:]
            say(f"pip install {self.install}; the job will report what is missing:\n{tail}")
        after = installed("torch")
        problem = None
        if self.facts.get("torch") and after != self.facts["torch"]:
            problem = f"the install replaced the image's torch {self.facts['torch']} with {after}; the GPU may be unusable"
            say(f"ERROR: {problem}")
        seconds = round(seconds, 1)
        report = {"facts": self.facts, "summary": describe(self.facts), "install": self.install, "seconds": seconds}
        report["problem"] = problem
        (self.boot_dir / "boot.json").write_text(json.dumps(report), encoding="utf-8")
        say(f"ready after {seconds:.1f} s; install {self.install}")
        return 1 if problem else 0
