"""What a job's pod is created with, and what is kept out of the create request.

One place builds the :class:`~.client.PodSpec`, for the backend and for
``unsloth-nb train --dry-run`` alike, so what a dry run prints is what a real run sends:

- the image, and the lowest CUDA version a host's driver must support for it
  (``runpod.min_cuda_version``, else read from the image tag: ``cu1281`` and
  ``cuda12.8.1`` both mean 12.8). Without it a pod can land on a host whose driver is
  too old (``unsatisfied condition: cuda>=12.8``) and bill until the readiness deadline;
- container disk, vCPUs and RAM from :func:`~unsloth_nb.planning.pod_size.pod_resources`;
- an environment of three small values: the job token, the worker port and the boot
  script (plus the work folder on a network volume). Pod env can be read back through
  RunPod's API and console, so no user secret goes there: :func:`job_secrets` travel in
  the authenticated job request (``POST /job/start``) and stay in the worker's memory.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from unsloth_nb.backends.runpod.api_types import PodSpec
from unsloth_nb.backends.runpod.bootstrap import START_COMMAND, boot_env
from unsloth_nb.backends.runpod.pods import WORKER_PORT, pod_name
from unsloth_nb.credentials import get_secret, has_secret
from unsloth_nb.planning.pod_size import PodResources, checkpoint_every, pod_resources
from unsloth_nb.worker.settings import DIR_ENV, PORT_ENV, TOKEN_ENV

if TYPE_CHECKING:
    from unsloth_nb.config import TrainConfig
    from unsloth_nb.planning.planner import Plan

#: CUDA versions RunPod hosts report (``allowedCudaVersions`` takes a list of these).
KNOWN_CUDA_VERSIONS = ("11.8", "12.0", "12.1", "12.2", "12.3", "12.4", "12.5", "12.6", "12.7", "12.8", "12.9", "13.0", "13.1")
#: Where the worker keeps its files on a network volume: one folder per job, so jobs never meet.
VOLUME_WORK_DIR = "/workspace/unsloth-nb/{job_id}"

_NEW_TAG = re.compile(r"(?:^|[-:])cu(\d{2})(\d)\d*(?:[-.]|$)")  # runpod/pytorch:1.0.3-cu1281-torch291-ubuntu2404
_OLD_TAG = re.compile(r"cuda(\d+)\.(\d+)")  # runpod/pytorch:2.8.0-py3.11-cuda12.8.1-cudnn-devel-ubuntu22.04


def image_cuda_version(image: str) -> str | None:
    """The CUDA major.minor an image's tag names, or None when it names none."""
    tag = image.rsplit(":", 1)[-1] if ":" in image.rsplit("/", 1)[-1] else ""
    found = _NEW_TAG.search(tag)
    if found:
        return f"{int(found.group(1))}.{found.group(2)}"
    found = _OLD_TAG.search(tag)
    return f"{int(found.group(1))}.{int(found.group(2))}" if found else None


_TORCH_TAG = re.compile(r"torch(\d)(\d{1,2})(\d)(?:[-.]|$)")  # torch291 -> 2.9.1, torch2100 -> 2.10.0


def image_torch_and_python(image: str) -> tuple[str, str] | None:
    """(torch version, python major.minor) a current-style ``runpod/pytorch`` tag names, or None.

    ``...-torch291-ubuntu2404`` is torch 2.9.1 on Ubuntu 24.04, whose python is 3.12
    (3.11 on 22.04). Used to check the install plan offline; the pod logs the real ones.
    """
    tag = image.rsplit(":", 1)[-1]
    torch = _TORCH_TAG.search(tag)
    if torch is None:
        return None
    python = "3.12" if "ubuntu2404" in tag else "3.11" if "ubuntu2204" in tag else None
    if python is None:
        return None
    return f"{torch.group(1)}.{torch.group(2)}.{torch.group(3)}", python


def min_cuda_version(config: TrainConfig) -> str | None:
    return config.runpod.min_cuda_version or image_cuda_version(config.runpod.image)


def allowed_cuda_versions(minimum: str | None) -> list[str] | None:
    """The known CUDA versions at or above ``minimum`` (GraphQL has no minimum, only a list)."""
    if not minimum:
        return None

    def key(version: str) -> tuple[int, ...]:
        return tuple(int(part) for part in version.split(".")[:2])

    return [v for v in KNOWN_CUDA_VERSIONS if key(v) >= key(minimum)] or [minimum]


def resources(config: TrainConfig, plan: Plan | None) -> PodResources:
    known = getattr(plan, "pod", None)
    if isinstance(known, PodResources):
        return known
    if plan is None:
        from unsloth_nb.planning.model_size import estimate_model_size

        return pod_resources(config, estimate_model_size(config.model.name, config.model.revision))
    save_steps = config.train.save_steps or checkpoint_every(plan.tokens_per_step, plan.tokens_per_second, plan.total_steps)
    return pod_resources(config, plan.size, total_steps=plan.total_steps, save_steps=save_steps)


def pod_env(config: TrainConfig, job_id: str, token: str) -> dict[str, str]:
    """The pod's whole environment: the job token, the port, the boot script; no user secret."""
    env = {TOKEN_ENV: token, PORT_ENV: str(WORKER_PORT), **boot_env()}
    if config.runpod.volume_id:
        env[DIR_ENV] = VOLUME_WORK_DIR.format(job_id=job_id)
    return env


def job_secret_names(config: TrainConfig) -> tuple[dict[str, str], list[str]]:
    """(secret -> why, for those the pod's phases must have; those that go along when set)."""
    from unsloth_nb.phases.runner import phases_for, secrets_of

    return secrets_of(config, phases_for(config, runs_on="model"))


def job_secrets(config: TrainConfig) -> dict[str, str]:
    """Secrets the pod's phases name, sent in the authenticated job request, never in pod env.

    Those a phase must have (HF_TOKEN to push the adapter) are asked for when missing;
    those that go along when set (HF_TOKEN for a gated base model) only when set.
    """
    required, optional = job_secret_names(config)
    found = {name: get_secret(name, why) for name, why in required.items()}
    for name in optional:
        if has_secret(name):
            found[name] = get_secret(name, "for the pod's phases")
    return found


def pod_spec(config: TrainConfig, plan: Plan | None, job_id: str, token: str) -> PodSpec:
    """The pod to create for this job (the GPU type and cloud are filled in per offer)."""
    runpod = config.runpod
    size = resources(config, plan)
    return PodSpec(
        name=pod_name(job_id),
        image=runpod.image,
        gpu_type_id="",
        cloud_type=runpod.cloud_type,
        container_disk_gb=size.container_disk_gb,
        ports=f"{WORKER_PORT}/http",
        env=pod_env(config, job_id, token),
        docker_args=START_COMMAND,
        network_volume_id=runpod.volume_id,
        min_cuda_version=min_cuda_version(config),
        min_vcpu_count=size.min_vcpu,
        min_memory_gb=size.min_memory_gb,
        interruptible=runpod.interruptible,  # the bid is RunPod's live spot floor, read per offer when renting
    )
