"""What the planner, the plan text and the views ask of ``placement: runpod``.

Kept apart from the job's run (:mod:`.backend`) so that planning a RunPod job loads
nothing but this: no SDK, no worker client. :class:`~.backend.RunPodBackend` answers
the ``Backend`` protocol's planning questions by calling these functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from unsloth_nb.backends.base import PlacementInputs, SecretNeed

if TYPE_CHECKING:
    from unsloth_nb.config import TrainConfig
    from unsloth_nb.planning.planner import Plan

#: Start-up before the first step and wind-down after the last, in seconds: pod scheduled and image
#: pulled (3-5 min), worker installs its packages, then the model downloads at ~500 MB/s; at the end
#: the adapter is saved and fetched.
POD_START_S = 240.0
POD_SETUP_S = 120.0
POD_DOWNLOAD_S_PER_GB = 2.0
POD_FINISH_S = 60.0


def place(inputs: PlacementInputs, *, chosen: bool) -> str:
    """A pod takes any job that fits a GPU it can rent (the GPU list is the planner's next step)."""
    if chosen:
        inputs.reasons.append("placement is runpod, so the job runs on a RunPod pod.")
    else:
        inputs.reasons.append("So it trains on a RunPod pod.")
    return "cuda"


def secrets(config: TrainConfig) -> list[SecretNeed]:
    return [SecretNeed("RUNPOD_API_KEY", "to create a RunPod pod for this job")]


def startup_seconds(weights_gb: float) -> float:
    return POD_START_S + POD_SETUP_S + weights_gb * POD_DOWNLOAD_S_PER_GB + POD_FINISH_S


def lost_pod_policy(config: TrainConfig) -> tuple[str, bool]:
    """What losing the pod (eviction, a dead worker) would mean for this job, and whether to warn.

    Said in the plan before anything is rented, and again in the job's log when the pod starts.
    """
    runpod, every = config.runpod, config.train.save_steps
    if not every:
        return (
            "No train.save_steps: if the pod is lost (evicted, its worker dies) the job fails and must start again; "
            "set train.save_steps to keep a checkpoint every N steps.",
            True,
        )
    if not runpod.resume_on_loss:
        return f"Checkpoints every {every} steps; runpod.resume_on_loss is off, so a lost pod ends the job.", False
    if runpod.volume_id:
        return f"Checkpoints every {every} steps on network volume {runpod.volume_id}; a lost pod resumes on a new one.", False
    if config.hub.checkpoint_repo_id:
        return (
            f"Checkpoints every {every} steps are pushed to the private Hub repo {config.hub.checkpoint_repo_id} "
            "and copied to this machine; a lost pod resumes from the newest on a new pod.",
            False,
        )
    return f"Checkpoints every {every} steps are copied to this machine; a lost pod resumes from the newest on a new pod.", False


def plan_target(plan: Plan) -> str:
    return plan.gpu.gpu_type_id if plan.gpu else ""


def where(plan: Plan) -> str:
    return "runpod" + (f" ({plan.gpu.gpu_type_id})" if plan.gpu else "")


__all__ = ["lost_pod_policy", "place", "plan_target", "secrets", "startup_seconds", "where"]
