"""The ``runpod:`` section: where and how a pod is rented, and the limits that end it."""

from __future__ import annotations

from dataclasses import dataclass

from unsloth_nb.config.schema import knob


@dataclass
class RunPodConfig:
    """How a RunPod pod is chosen and bounded (needs RUNPOD_API_KEY in the environment)."""

    gpus: list[str] = knob(
        [], "GPU type ids in order of preference (default: the planner's list for the model size).", flag="--gpus"
    )
    cloud_type: str = knob("SECURE", "Cloud to rent from first.", flag="--cloud-type", choices=("SECURE", "COMMUNITY", "ALL"))
    allow_community: bool = knob(False, "Fall back to COMMUNITY cloud when SECURE has no stock.", flag="--allow-community")
    max_cost_usd: float | None = knob(
        None,
        "Stop the pod (saving what was trained) when the job has cost this much.",
        flag="--max-cost",
        minimum=0.0,
        exclusive_minimum=True,
    )
    confirm_above_usd: float = knob(
        1.0,
        "Ask before renting when the plan's estimated cost (capped by max_cost_usd) is above this, or unknown; "
        "0 always asks. --yes never asks.",
        flag="--confirm-above",
        minimum=0.0,
    )
    max_runtime: float = knob(
        4 * 3600.0,
        "Longest the pod may run, in seconds or with a unit (90m, 2h).",
        flag="--max-runtime",
        minimum=60.0,
    )
    image: str = knob(
        "runpod/pytorch:1.0.3-cu1281-torch291-ubuntu2404",
        "Container image; it needs CUDA and PyTorch. The pod installs the rest at start, never replacing the image's torch.",
        flag="--image",
    )
    min_cuda_version: str | None = knob(
        None,
        "Only hosts whose driver supports at least this CUDA version, e.g. 12.8 (unset: read from the image tag).",
        flag="--min-cuda",
    )
    container_disk_gb: int | None = knob(
        None,
        "Container disk in GB (unset: sized from the model, the exports and the checkpoints; the plan shows it).",
        flag="--container-disk",
        minimum=10,
    )
    volume_id: str | None = knob(None, "Network volume to keep checkpoints on across pods.", flag="--network-volume")
    resume_on_loss: bool = knob(
        True,
        "When the pod is lost (evicted, its worker died) after a checkpoint was saved, continue from that "
        "checkpoint (on a new pod if needed) instead of failing the job.",
        flag="--resume-on-loss",
    )
    interruptible: bool = knob(
        False,
        "Rent spot (interruptible) capacity at RunPod's spot price: cheaper, but RunPod may evict the pod; the job "
        "then continues on a new pod from its last checkpoint. Uses RunPod's GraphQL API (REST v2 has no spot pods).",
        flag="--interruptible",
    )
    keep_uncollected: float = knob(
        60 * 60.0,
        "When a job finishes while no client follows it and its outputs have nowhere to go (no network volume, no "
        "hub.repo_id with HF_TOKEN), how much longer the pod waits for `load_job` or `runpod cleanup` to collect them "
        "after its idle timeout, before it ends itself and they are lost (seconds or 1h; the plan shows the cost).",
        flag="--keep-uncollected",
        minimum=0.0,
    )
    ready_timeout: float = knob(
        20 * 60.0,
        "How long a pod may take to become ready before the next GPU is tried (seconds or 20m).",
        flag="--ready-timeout",
        minimum=10.0,
    )
