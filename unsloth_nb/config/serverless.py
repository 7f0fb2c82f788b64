"""The ``serverless:`` section: how a ``placement: serverless`` job's RunPod endpoint is shaped (issue 15)."""

from __future__ import annotations

from dataclasses import dataclass

from unsloth_nb.config.schema import knob
from unsloth_nb.errors import ConfigError

#: RunPod's longest execution timeout and TTL for one request (docs serverless/endpoints/send-requests: 7 days).
MAX_EXECUTION_TIMEOUT_S = 7 * 24 * 3600


@dataclass
class ServerlessConfig:
    """A serverless job runs on an endpoint created for it (workers min 0), deleted when the job ends.

    GPU choice, price limits and the image come from the ``runpod:`` section, as for a pod.
    """

    execution_timeout: float | None = knob(
        None,
        "Longest the training request may run, in seconds or with a unit (2h); RunPod kills it then. "
        "Unset: twice the plan's estimate plus 10 minutes (RunPod's own default of 600 s would end most fine-tunes).",
        flag="--serverless-timeout",
        minimum=60.0,
        maximum=float(MAX_EXECUTION_TIMEOUT_S),
    )
    workers_max: int = knob(
        1,
        "Most workers the endpoint may start (one job needs one; a second lets a retry start while the first drains).",
        flag="--serverless-workers-max",
        minimum=1,
        maximum=5,
    )
    idle_timeout: int = knob(
        5,
        "Seconds a worker stays up (billed) after its request before it scales down.",
        flag="--serverless-idle-timeout",
        minimum=1,
        maximum=3600,
    )
    flashboot: bool = knob(True, "Ask RunPod for FlashBoot (faster cold starts of a cached worker).", flag="--flashboot")
    keep_endpoint: bool = knob(
        False,
        "Keep the endpoint (0 workers, nothing billing) after the job instead of deleting it.",
        flag="--keep-endpoint",
    )
    checkpoint_store: str | None = knob(
        None,
        "Where the worker keeps each checkpoint (s3://bucket/prefix, or volume://<network volume id>/prefix through "
        "RunPod's S3 API), so a request that replaces a lost worker resumes from the newest. The worker reads the "
        "store's keys from RunPod secrets named AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.",
        flag="--serverless-checkpoints",
    )

    def section_problems(self) -> list[ConfigError]:
        """A store is named by its scheme; anything else would be silently unused."""
        store = (self.checkpoint_store or "").strip()
        if store and not store.startswith(("s3://", "volume://")):
            return [
                ConfigError(
                    "serverless.checkpoint_store",
                    f"{store!r} is not a store: use s3://bucket/prefix or volume://<volume id>/prefix",
                )
            ]
        return []
