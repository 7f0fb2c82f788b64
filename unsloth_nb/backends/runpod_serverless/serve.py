"""Serving a trained adapter on a RunPod serverless vLLM endpoint: ``unsloth-nb serve``, ``job.serve()``, ``job.chat()``.

The endpoint runs RunPod's maintained vLLM worker image (``runpod-workers/worker-vllm``), whose env
becomes vLLM flags (RunPod reference §7.4): ``MODEL_NAME`` (the base), ``ENABLE_LORA``, ``MAX_LORAS``,
``MAX_LORA_RANK`` (at least the adapter's ``r``), ``LORA_MODULES`` (``[{"name", "path"}]``, the adapter's Hub
repo). ``HF_TOKEN`` is never sent as a value: a private repo needs a RunPod secret named ``HF_TOKEN``, referenced
as ``{{ RUNPOD_SECRET_HF_TOKEN }}``. One endpoint answers for the base (``model=<base>``) and the fine-tune
(``model=<job id>``) at ``<api.runpod.ai>/v2/<endpoint>/openai/v1``.

Workers min 0 and max 1, with an idle timeout (default 60 s: a chat pauses between questions, and each cold
start reloads the model); the plan line states the $/s and the idle cost before anything is created, and
asks above ``runpod.confirm_above_usd`` of one hour of use unless told yes. ``serve.json`` in the job folder
records the endpoint for ``chat`` and ``--stop``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unsloth_nb.backends.runpod.api_types import api_key
from unsloth_nb.backends.runpod_serverless.endpoints import EndpointInfo, EndpointsApi, remove
from unsloth_nb.errors import BackendError, ConfigError, JobCancelledError

if TYPE_CHECKING:
    from collections.abc import Callable

    from unsloth_nb.jobrun.job import Job

#: RunPod's maintained vLLM worker (runpod-workers/worker-vllm); the tag is the newest seen in its README, unverified.
VLLM_IMAGE = "runpod/worker-v1-vllm:v2.8.0"
DEFAULT_IDLE_TIMEOUT_S = 60
#: vLLM accepts these LoRA ranks for MAX_LORA_RANK.
LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)
SERVE_JSON = "serve.json"
DEFAULT_BASE = "https://api.runpod.ai/v2"
#: A 24-48 GB pool: room for a 7-8B base in 16 bit with its LoRA, at the lowest serverless prices.
DEFAULT_GPUS = ("NVIDIA RTX A5000", "NVIDIA GeForce RTX 4090", "NVIDIA RTX A6000")


@dataclass
class Served:
    """An endpoint serving one job's adapter."""

    job_id: str
    endpoint_id: str
    template_id: str
    base_model: str
    adapter_name: str
    base_url: str  # OpenAI-compatible, ends in /openai/v1

    def snippet(self) -> str:
        return (
            "from openai import OpenAI\n"
            f'client = OpenAI(base_url="{self.base_url}", api_key=os.environ["RUNPOD_API_KEY"])\n'
            f'client.chat.completions.create(model="{self.adapter_name}", messages=[{{"role": "user", "content": "Hi"}}])'
        )


def max_lora_rank(r: int) -> int:
    return next((rank for rank in LORA_RANKS if rank >= r), LORA_RANKS[-1])


def serve_plan(job: Job, idle_timeout: int, usd_per_hour: float | None) -> str:
    """What serving will cost, said before anything is created."""
    rate = f"~${usd_per_hour / 3600:.5f}/s while a worker runs" if usd_per_hour else "price unknown"
    return (
        f"Serve {job.id}: {job.config.model.name} + its adapter on a RunPod serverless vLLM endpoint; workers 0-1, "
        f"{rate}, each worker stays up {idle_timeout} s after the last request (billed), none while idle."
    )


def serve(
    job: Job,
    *,
    adapter: str | None = None,
    idle_timeout: int = DEFAULT_IDLE_TIMEOUT_S,
    gpu_ids: list[str] | None = None,
    wait_s: float = 900.0,
    yes: bool = False,
    say: Callable[[str], None] = print,
) -> Served:
    """Create (or find) the endpoint for ``job``'s adapter, wait until it answers, and say how to call it.

    ``adapter``: where vLLM loads it from (a Hub repo id; default the job's ``hub.repo_id``). The $/s and the
    idle timeout are said first; above ``runpod.confirm_above_usd`` for an hour of use it asks, unless ``yes``.
    """
    existing = _read(job)
    if existing is not None:
        return existing
    repo = adapter or job.config.hub.repo_id
    if not repo:
        raise ConfigError("hub.repo_id", "serving loads the adapter from the Hub: push it there (hub.repo_id) or pass adapter=")
    gpu_ids = gpu_ids or list(DEFAULT_GPUS)
    price = _usd_per_hour(gpu_ids[0])
    say(serve_plan(job, idle_timeout, price))
    if (
        not yes
        and (price or 0.0) > job.config.runpod.confirm_above_usd
        and not _confirm(f"An hour of use costs ~${price:.2f}. Create the endpoint?")
    ):
        raise JobCancelledError("not served: the endpoint was not created")
    api = EndpointsApi()
    name = f"unsloth-nb-serve-{job.id}"
    env = {
        "MODEL_NAME": job.config.model.name,
        "ENABLE_LORA": "true",
        "MAX_LORAS": "1",
        "MAX_LORA_RANK": str(max_lora_rank(job.config.lora.r)),
        "LORA_MODULES": json.dumps([{"name": job.id, "path": repo}]),
        "TOKENIZER_NAME": repo,  # the adapter folder keeps the tokenizer with the chat template it was trained on
        "MAX_MODEL_LEN": str(job.config.train.max_seq_length),
    }
    if os.environ.get("HF_TOKEN"):
        env["HF_TOKEN"] = "{{ RUNPOD_SECRET_HF_TOKEN }}"  # a reference to the account's secret, never the value
    template_id = api.create_template(
        {"name": f"{name}-tpl", "imageName": VLLM_IMAGE, "env": env, "containerDiskInGb": 40, "isServerless": True}
    )
    endpoint = api.create_endpoint(
        {
            "name": name,
            "templateId": template_id,
            "gpuTypeIds": gpu_ids,
            "workersMin": 0,
            "workersMax": 1,
            "idleTimeout": idle_timeout,
            "flashboot": True,
        }
    )
    base = (os.environ.get("RUNPOD_ENDPOINT_BASE_URL") or DEFAULT_BASE).rstrip("/")
    served = Served(job.id, endpoint.id, template_id, job.config.model.name, job.id, f"{base}/{endpoint.id}/openai/v1")
    (job.folder.path / SERVE_JSON).write_text(json.dumps(asdict(served), indent=2), encoding="utf-8")
    try:
        _wait_until_it_answers(served, wait_s)
    except BaseException:
        stop_serving(job)
        raise
    say(f"Serving {job.id} at {served.base_url} (model={served.adapter_name}; the base is model={served.base_model})")
    say(served.snippet())
    return served


def chat(job: Job, message: str, *, base: bool = False, max_tokens: int = 128) -> str:
    """One answer from the served fine-tune (or its base), through the official ``openai`` SDK."""
    served = _read(job)
    if served is None:
        raise BackendError(f"job {job.id} is not served; call job.serve() first")
    return _ask(served, served.base_model if base else served.adapter_name, message, max_tokens)


def served_endpoint(job: Job) -> Served | None:
    """The endpoint ``serve()`` recorded for this job, or None."""
    return _read(job)


def is_served(job: Job) -> bool:
    """Whether ``serve()`` recorded an endpoint for this job (``stop_serving()`` removes the record)."""
    return _read(job) is not None


def stop_serving(job: Job) -> bool:
    """Delete the endpoint and its template; False when nothing was served."""
    served = _read(job)
    if served is None:
        return False
    remove(EndpointsApi(), EndpointInfo(served.endpoint_id, "", served.template_id, 0, 0, 0))
    (job.folder.path / SERVE_JSON).unlink(missing_ok=True)
    return True


def _ask(served: Served, model: str, message: str, max_tokens: int, timeout: float = 120.0) -> str:
    from openai import OpenAI

    client = OpenAI(base_url=served.base_url, api_key=api_key(), max_retries=0, timeout=timeout)
    answer = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": message}], max_tokens=max_tokens, temperature=0
    )
    return answer.choices[0].message.content or ""


def _wait_until_it_answers(served: Served, wait_s: float) -> None:
    """The first request starts a worker (cold start, model load); health is its first answer."""
    deadline = time.monotonic() + wait_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            _ask(served, served.adapter_name, "ping", 1, timeout=max(5.0, deadline - time.monotonic()))
            return
        except Exception as exc:
            last = exc
            time.sleep(2.0)
    raise BackendError(f"the vLLM endpoint {served.endpoint_id} did not answer within {wait_s:.0f} s ({last})")


def _usd_per_hour(gpu_id: str) -> float | None:
    """A flex worker's rate (RunPod's serverless table, not a pod's price)."""
    from unsloth_nb.backends.runpod_serverless.prices import usd_per_hour

    return usd_per_hour(gpu_id)


def _confirm(question: str) -> bool:
    import sys

    if not sys.stdin or not sys.stdin.isatty():
        return False
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def _read(job: Job) -> Served | None:
    path: Path = job.folder.path / SERVE_JSON
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return Served(**data)
