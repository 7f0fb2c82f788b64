"""``unsloth-nb train --dry-run``: the plan, and every request a RunPod job would send, renting nothing.

The create request is rendered by the same code that sends it
(:func:`~.pod_request.pod_spec` and the client's ``create_request``), so what is
printed is what RunPod would receive, byte for byte, except for what is redacted:
the per-job token, any secret from the environment, and the boot script, shown by
its size and sha256 (``UNSLOTH_NB_BOOT``, a gzip+base64 shell script with no job
data in it). The worker's requests follow in order, with their bodies where they
are JSON. Nothing here opens a connection.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import TYPE_CHECKING, Any

from unsloth_nb.credentials import redact

if TYPE_CHECKING:
    from unsloth_nb.jobrun.preflight import Prepared
    from unsloth_nb.planning.planner import Plan

TOKEN_SHOWN = "<job token: 43 random characters, new for each job>"


def format_dry_run(prepared: Prepared, job_id: str | None = None) -> str:
    """The requests a job would send, as text; for a local job, a line saying nothing would be rented."""
    from unsloth_nb.backends.registry import get_backend

    backend = get_backend(prepared.plan.placement)
    if not backend.rents:
        return "Dry run: this job would train on this machine; it sends no request to RunPod and rents nothing."
    if backend.name == "serverless":
        from unsloth_nb.backends.runpod_serverless.dry_run import serverless_requests

        return "\n".join(serverless_requests(prepared, job_id or "JOB_ID"))
    return "\n".join(_runpod_requests(prepared, job_id or "JOB_ID"))


def _runpod_requests(prepared: Prepared, job_id: str) -> list[str]:
    import os

    from unsloth_nb.backends.runpod.bootstrap import BOOT_ENV, package_sha256, package_zip
    from unsloth_nb.backends.runpod.client import RunPodClient
    from unsloth_nb.backends.runpod.pod_request import job_secrets, pod_spec
    from unsloth_nb.backends.runpod.pods import DEFAULT_PROXY_TEMPLATE, pod_name
    from unsloth_nb.worker.protocol import pack_dataset

    config, plan = prepared.config, prepared.plan
    token = secrets.token_urlsafe(32)
    spec = pod_spec(config, plan, job_id, token)
    first = plan.gpu_candidates[0] if plan.gpu_candidates else None
    spec.gpu_type_id = first.gpu_type_id if first else "<GPU type>"
    api = os.environ.get("RUNPOD_API_BASE_URL", "").strip() or "https://api.runpod.io"
    client = RunPodClient(api_key="unused")
    method, path, body = client.create_request(spec)
    rest = client.api_name == "rest"
    boot = spec.env[BOOT_ENV]
    shown = body.replace(token, TOKEN_SHOWN).replace(
        boot, f"<boot script: {len(boot)} characters, sha256 {hashlib.sha256(boot.encode()).hexdigest()[:16]}...>"
    )
    try:
        secret_values = job_secrets(config)
    except Exception:  # a missing key is the real run's business; a dry run only shows where it would go
        secret_values = {"HF_TOKEN": "<HF_TOKEN>"} if config.hub.repo_id else {}
    dataset = pack_dataset(prepared.dataset)
    worker = DEFAULT_PROXY_TEMPLATE.format(pod_id="<pod id>", port=8000)
    declare = {
        "job_id": job_id,
        "config": config.to_dict(),
        "dataset_sha256": hashlib.sha256(dataset).hexdigest(),
        "dataset_bytes": len(dataset),
    }
    start: dict[str, Any] = {"secrets": {name: f"<{name}>" for name in secret_values}} if secret_values else {}
    if rest:
        prices = f"GET {api}/v2/catalog/gpus?include=AVAILABILITY&product=POD&cloud=SECURE (and COMMUNITY)"
        listing, lookup = f"GET {api}/v2/pods", f"GET {api}/v2/pods/<pod id>"
        end = f"DELETE {api}/v2/pods/<pod id>, and GET {api}/v2/pods/<pod id> until it answers 404"
    else:
        prices, listing, lookup = (f"POST {api}/graphql  {op}" for op in ("gpuTypes", "myself.pods", "pod(podId)"))
        end = f"POST {api}/graphql  podTerminate, and pod(podId) until it is gone"
    via = "REST v2" if rest else "GraphQL"
    spot = (
        [f"   + POST {api}/graphql  gpuTypes.lowestPrice.minimumBidPrice: the spot bid (spot pods are GraphQL only)"]
        if spec.interruptible
        else []
    )
    lines = [
        f"Dry run: nothing is rented. A real run sends these requests (Authorization: Bearer <RUNPOD_API_KEY> to {api},",
        f"RunPod's {via} API; Bearer <job token> to the pod's worker).",
        f"Tried in order: {', '.join(g.gpu_type_id for g in plan.gpu_candidates[:5])}.",
        "",
        f"1. {prices}  live price and stock of each candidate GPU",
        *spot,
        f"2. {listing}  an idle pod of ours to reuse (after a lost answer: {pod_name(job_id)})",
        f"3. {method} {api}{path}  create the pod ({len(body.encode())} bytes as sent):",
        "   " + shown,
        f"4. {lookup}  its $/h, and now and then whether it still runs",
        f"5. GET {worker}/boot  until the pod has booted (stage 0 answers with the image's torch and CUDA)",
        f"6. PUT {worker}/boot/package?sha256={package_sha256()}  the unsloth_nb package ({len(package_zip())} bytes, zip)",
        f"7. GET {worker}/health  until the worker answers",
        f"8. PUT {worker}/job  " + json.dumps(declare),
        f"9. PUT {worker}/job/dataset  {len(dataset)} bytes in chunks of at most 8 MiB, with Content-Range",
        f"10. POST {worker}/job/start  " + (json.dumps(start) if start else "(no body)"),
        f"11. GET {worker}/events?after=N&timeout=2  until training ends (each checkpoint: GET /artifacts?prefix=...)",
        *_downloads(plan, worker, 12),
        f"13. POST {worker}/shutdown, then {end}",
    ]
    return [redact(line) for line in lines]


def download_lines(plan: Plan) -> list[str]:
    """Each output the job brings to this machine, from the plan's list (adapter, merged models, GGUF files ...)."""
    width = max((len(o.path) for o in plan.outputs), default=0)
    return [f"   {o.path.ljust(width)}  {o.describe()}" for o in plan.outputs]


def _downloads(plan: Plan, worker: str, number: int) -> list[str]:
    fetched = [o for o in plan.outputs if not o.skipped]
    total = sum(o.gb for o in fetched)
    head = (
        f"{number}. for each output: GET {worker}/artifacts?prefix=<output>&sha256=1, then GET {worker}/artifacts/<name> "
        f"for each of its files; {len(fetched)} output{'s' if len(fetched) != 1 else ''}, ~{total:.1f} GB in all:"
    )
    return [head, *download_lines(plan)]
