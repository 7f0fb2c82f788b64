"""What the planner, the plan text and the views ask of ``placement: serverless`` (no SDK loaded here)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from unsloth_nb.backends.base import PlacementInputs, SecretNeed
from unsloth_nb.backends.runpod_serverless.prices import PRICE_SOURCE
from unsloth_nb.errors import PlanError

if TYPE_CHECKING:
    from unsloth_nb.config import TrainConfig
    from unsloth_nb.planning.planner import Plan

#: Cold start of a fresh worker: image pulled and cached by RunPod (FlashBoot helps a warm one), then the boot
#: installs what the image lacks (~75 s for the default image, see benchmarks/pod_install_time.py).
COLD_START_S = 30.0
INSTALL_S = 75.0
DOWNLOAD_S_PER_GB = 2.0
FINISH_S = 20.0
#: How many of the planner's GPU candidates form the endpoint's pool, in its order.
POOL_SIZE = 4


def place(inputs: PlacementInputs, *, chosen: bool) -> str | None:
    """Only when named: ``placement: auto`` keeps choosing pods (the serverless path is new and unmeasured)."""
    if not chosen:
        return None
    from unsloth_nb.phases.runner import phases_for, secrets_of

    required, _optional = secrets_of(inputs.config, phases_for(inputs.config, runs_on="model"))
    if required:
        names = ", ".join(sorted(required))
        raise PlanError(
            f"placement: serverless cannot give the worker {names} yet (a secret must not ride in a request's input, "
            "and RunPod secrets are not wired up): use placement: runpod for this job, or drop what needs it "
            "(a Hub push needs HF_TOKEN)."
        )
    from unsloth_nb.backends.runpod_serverless.store import store_description
    from unsloth_nb.errors import UnslothNbError

    try:
        store_description(inputs.config)  # a store the worker could not reach is said now, not after the cold start
    except UnslothNbError as exc:
        raise PlanError(f"serverless.checkpoint_store: {exc}") from None
    inputs.reasons.append(
        "placement is serverless, so the job runs as one request on a RunPod serverless endpoint made for it "
        "(workers min 0; deleted when the job ends)."
    )
    return "cuda"


def secrets(config: TrainConfig) -> list[SecretNeed]:
    return [SecretNeed("RUNPOD_API_KEY", "to create a RunPod serverless endpoint for this job")]


def startup_seconds(weights_gb: float) -> float:
    return COLD_START_S + INSTALL_S + weights_gb * DOWNLOAD_S_PER_GB + FINISH_S


def notes(config: TrainConfig) -> list[tuple[str, bool]]:
    serverless = config.serverless
    timeout = (
        f"{serverless.execution_timeout:.0f} s (serverless.execution_timeout)"
        if serverless.execution_timeout
        else "twice the estimated time plus 10 min (set serverless.execution_timeout to choose)"
    )
    lines: list[tuple[str, bool]] = [
        (
            f"Serverless endpoint: workers 0-{serverless.workers_max}, idle timeout {serverless.idle_timeout} s, "
            f"FlashBoot {'on' if serverless.flashboot else 'off'}; cold start ~{COLD_START_S + INSTALL_S:.0f} s "
            f"(image cached, then the boot installs what it lacks); execution timeout requested: {timeout}.",
            False,
        ),
        (
            f"Prices: flex workers' $/s from {PRICE_SOURCE}; a serverless worker costs more per hour than a pod "
            "with the same card, billed from its cold start to the end of its idle timeout. Active (always-on) "
            "workers cost 20-30 % less per second but bill while idle too, so a job's endpoint has none (workers min 0).",
            False,
        ),
        (
            "Stop cancels the serverless request: what was trained is not kept. The adapter comes back in the "
            "request's result (up to 64 MB zipped; an r=16 LoRA of an 8B model is 80-170 MB, so larger jobs fail at the end).",
            False,
        ),
        (
            "If this process dies mid-job nothing follows the request: it runs to its end (at most the execution "
            "timeout) and bills meanwhile, and its outputs are not collected (`load_job` then deletes the endpoint).",
            False,
        ),
    ]
    from unsloth_nb.config.export import exports_wanted

    if exports_wanted(config.save, config.hub) or config.save.merged_16bit:
        lines.append(
            (
                "Exports (merged models, GGUF files) come back in the same result, which holds at most 64 MB zipped: "
                "any but the smallest model's exports exceed it and the job fails at the end. Use placement: runpod "
                "to export, or push them to the Hub from a pod.",
                True,
            )
        )
    remote = [config.dataset.path, *(entry.rpartition("=")[0] or entry for entry in config.dataset.mix)]
    if any(str(path).startswith(("s3://", "volume://")) for path in remote):
        lines.append(
            (
                "The worker reads the S3/volume dataset itself but receives no S3 keys (a secret never rides in a "
                "request): only a public bucket is readable there. Use placement: runpod for private S3 or volume data.",
                True,
            )
        )
    if serverless.checkpoint_store:
        lines.append(
            (
                f"Checkpoints: each one is uploaded to {serverless.checkpoint_store} as it is saved (the worker reads the "
                "store's keys from RunPod secrets AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY); a request replacing a "
                "lost worker resumes from the newest.",
                False,
            )
        )
    elif config.train.save_steps:
        lines.append(
            (
                "Checkpoints stay on the serverless worker's disk: a worker lost mid-job starts again from step 0 "
                "(set serverless.checkpoint_store to s3://... or volume://... to keep them).",
                True,
            )
        )
    return lines


def pool(plan: Plan) -> list[str]:
    return [gpu.gpu_type_id for gpu in plan.gpu_candidates[:POOL_SIZE]]


def plan_target(plan: Plan) -> str:
    ids = pool(plan)
    if not ids:
        return ""
    per_second = f", ${plan.usd_per_hour / 3600:.5f}/s flex" if plan.usd_per_hour else ", no serverless price known"
    return f"endpoint pool {' > '.join(ids)}{per_second}"


def where(plan: Plan) -> str:
    ids = pool(plan)
    return "serverless" + (f" ({ids[0]})" if ids else "")
