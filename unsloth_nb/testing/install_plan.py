"""The pod's install, resolved offline of RunPod: pip's ``--dry-run --report`` for the default image.

Stage 0 on a pod runs ``pip install`` of our requirements with constraints that keep
the image's torch (:func:`unsloth_nb.worker.pod_setup.constraints_for`). This
runs the same command, with the same requirements and the same constraints for the
torch the image's tag names, as a dry run against the package index for the image's
Python and platform: what pip *would* install, with no wheel downloaded (the index
serves the metadata alone). The report shows whether torch would be replaced, and
every file pip would fetch.

Machine-wide pip settings (a local index, a global constraint) would change the
answer, so the command runs with no config file and no ``PIP_*`` variables, against
``https://pypi.org/simple``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INDEX_URL = "https://pypi.org/simple"
#: The manylinux tags an Ubuntu 22.04/24.04 x86_64 pod accepts (newest first).
PLATFORMS = (
    *(f"manylinux_2_{minor}_x86_64" for minor in (39, 35, 34, 31, 28, 27, 24, 17)),
    "manylinux2014_x86_64",
    "linux_x86_64",
)


@dataclass(frozen=True)
class InstallPlan:
    image: str
    image_torch: str
    python: str
    constraints: list[str]
    command: list[str]
    install: list[dict[str, Any]]  # the report's "install" entries

    def version(self, name: str) -> str | None:
        wanted = _normal(name)
        for item in self.install:
            if _normal(item["metadata"]["name"]) == wanted:
                return str(item["metadata"]["version"])
        return None

    def names(self) -> list[str]:
        return sorted(_normal(item["metadata"]["name"]) for item in self.install)


def _normal(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def pip_environment() -> dict[str, str]:
    """This environment without pip settings: no config file, no PIP_* variable (a certificate bundle stays)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    if os.environ.get("PIP_CERT"):
        env["PIP_CERT"] = os.environ["PIP_CERT"]
    return env


def resolve_install(image: str | None = None, timeout: float = 300.0) -> InstallPlan:
    """Resolve the pod's install for ``image`` (default: the config's default image) with pip's dry run."""
    from unsloth_nb.backends.runpod.bootstrap import training_requirements
    from unsloth_nb.backends.runpod.pod_request import image_torch_and_python
    from unsloth_nb.config import RunPodConfig
    from unsloth_nb.worker import pod_setup as stage0

    image = image or RunPodConfig().image
    named = image_torch_and_python(image)
    if named is None:
        raise ValueError(f"the tag of {image} does not name its torch and Ubuntu release")
    torch, python = named
    constraints = stage0.constraints_for({"torch": torch})
    with tempfile.TemporaryDirectory(prefix="unsloth-nb-install-plan-") as folder:
        constraints_file = Path(folder) / "constraints.txt"
        constraints_file.write_text("".join(c + "\n" for c in constraints), encoding="utf-8")
        report = Path(folder) / "report.json"
        command = stage0.pip_command(list(training_requirements()), constraints_file)
        command[0] = sys.executable  # the pod's python is the image's; here pip only resolves
        command = [c for c in command if c != "--no-cache-dir"]  # the cache changes no answer, only the time
        command += ["--dry-run", "--ignore-installed", "--quiet", "--report", str(report), "--index-url", INDEX_URL]
        command += ["--only-binary", ":all:", "--implementation", "cp", "--python-version", python]
        for platform in PLATFORMS:
            command += ["--platform", platform]
        done = subprocess.run(command, env=pip_environment(), capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"pip could not resolve the pod's install:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        install = json.loads(report.read_text(encoding="utf-8"))["install"]
    return InstallPlan(image, torch, python, constraints, command, install)
