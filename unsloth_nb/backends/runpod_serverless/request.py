"""What a serverless job sends: the template, the endpoint, the request input and its policy.

Sizes (measured by ``benchmarks/runpod_overhead.py --serverless``): the template's env carries the boot
(this folder's ``boot.py``) and stage 0's helpers, a few KB; each request carries the ``unsloth_nb``
package zip (~230 kB, ~300 kB in base64) and the packed dataset, well under the documented 10 MB of ``/run``.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unsloth_nb.backends.runpod.bootstrap import package_sha256, package_zip, pod_setup_source, training_requirements
from unsloth_nb.backends.runpod_serverless.endpoints import endpoint_name
from unsloth_nb.backends.runpod_serverless.store import store_description, store_env
from unsloth_nb.config.serverless import MAX_EXECUTION_TIMEOUT_S
from unsloth_nb.errors import PlanError
from unsloth_nb.worker.protocol import pack_dataset
from unsloth_nb.worker.serverless import INPUT_VERSION

if TYPE_CHECKING:
    from unsloth_nb.config import TrainConfig
    from unsloth_nb.data import PreparedDataset
    from unsloth_nb.planning.planner import Plan

#: RunPod's documented ``/run`` payload limit.
RUN_PAYLOAD_LIMIT = 10 * 1000 * 1000
#: What the artifacts may weigh, zipped, to come back in the result (RunPod keeps /run results 30 min; each
#: stream chunk is at most 1 MB, so they come in parts). Larger outputs need hub.repo_id.
ARTIFACT_LIMIT_BYTES = 64 * 1000 * 1000
#: Unset serverless.execution_timeout: twice the plan's estimate plus this (RunPod's default is 600 s).
TIMEOUT_MARGIN_S = 600.0
FALLBACK_TIMEOUT_S = 4 * 3600.0
BOOT_ENV = "UNSLOTH_NB_SERVERLESS_BOOT"
STAGE0_ENV = "UNSLOTH_NB_STAGE0"
START_CMD = f"exec python -c \"import base64,gzip,os;exec(gzip.decompress(base64.b64decode(os.environ['{BOOT_ENV}'])))\""


def _packed(text: str) -> str:
    return base64.b64encode(gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)).decode("ascii")


@functools.lru_cache(maxsize=1)
def boot_env() -> dict[str, str]:
    source = Path(__file__).with_name("boot.py").read_text(encoding="utf-8")
    return {
        BOOT_ENV: _packed(source),
        STAGE0_ENV: _packed(pod_setup_source()),
        "UNSLOTH_NB_REQUIREMENTS": json.dumps(list(training_requirements())),
    }


def template_body(config: TrainConfig, job_id: str, disk_gb: int | None) -> dict[str, Any]:
    return {
        "name": f"{endpoint_name(job_id)}-tpl",
        "imageName": config.runpod.image,
        "dockerStartCmd": ["bash", "-c", START_CMD],
        "env": {**boot_env(), **store_env(config)},
        "containerDiskInGb": int(disk_gb or config.runpod.container_disk_gb or 40),
        "isServerless": True,
    }


def endpoint_body(config: TrainConfig, job_id: str, template_id: str, gpu_ids: list[str], timeout_s: float) -> dict[str, Any]:
    serverless = config.serverless
    return {
        "name": endpoint_name(job_id),
        "templateId": template_id,
        "gpuTypeIds": gpu_ids,
        "gpuCount": 1,
        "workersMin": 0,
        "workersMax": serverless.workers_max,
        "idleTimeout": serverless.idle_timeout,
        "executionTimeoutMs": int(timeout_s * 1000),
        "flashboot": serverless.flashboot,
        "scalerType": "QUEUE_DELAY",
        "scalerValue": 4,
    }


def execution_timeout(config: TrainConfig, plan: Plan | None) -> float:
    """The request's execution timeout: the config's, else twice the plan's estimate plus a margin."""
    if config.serverless.execution_timeout:
        return float(config.serverless.execution_timeout)
    estimate = plan.estimated_seconds if plan is not None else None
    seconds = 2 * estimate + TIMEOUT_MARGIN_S if estimate else FALLBACK_TIMEOUT_S
    return float(min(max(math.ceil(seconds), 600), MAX_EXECUTION_TIMEOUT_S))


def job_input(job_id: str, config: TrainConfig, dataset: PreparedDataset) -> dict[str, Any]:
    """The request's input; a PlanError when it would pass RunPod's /run limit.

    A dataset on the Hub, S3 or a network volume (preflight checked a sample and made a reference) goes
    as ``source``, never as rows: the worker reads it in full where it trains, as a pod does.
    """
    package = package_zip()
    packed = b"" if dataset.reference is not None else pack_dataset(dataset)
    body = {
        "unsloth_nb": INPUT_VERSION,
        "job_id": job_id,
        "config": config.to_dict(),
        "dataset": base64.b64encode(packed).decode("ascii") if packed else None,
        "dataset_sha256": hashlib.sha256(packed).hexdigest() if packed else None,
        "source": dataset.reference,
        "checkpoint_store": store_description(config),
        "artifact_limit_bytes": ARTIFACT_LIMIT_BYTES,
        "package": base64.b64encode(package).decode("ascii"),
        "package_sha256": package_sha256(),
    }
    size = len(json.dumps(body))
    if size > RUN_PAYLOAD_LIMIT - 64 * 1024:
        raise PlanError(
            f"the serverless request would be {size / 1e6:.1f} MB, over RunPod's 10 MB /run limit: the dataset is "
            f"{len(packed) / 1e6:.1f} MB packed. Put it on the Hub (org/name), S3 or a network volume so the worker "
            "reads it itself, or use placement: runpod for this dataset."
        )
    return body


def run_request(job_input_body: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    """The ``/run`` body: the input and a policy (both in ms) so the platform's 600 s default does not apply."""
    return {"input": job_input_body, "policy": {"executionTimeout": int(timeout_s * 1000), "ttl": int((timeout_s + 3600) * 1000)}}
