"""``--dry-run`` of a ``placement: serverless`` job: the requests it would send, renting nothing.

The bodies are built by the functions the backend sends (:mod:`.request`), so the template, the endpoint
and the ``/run`` policy printed are what RunPod would receive; the boot entries of the template's env are
shown by size and sha256, and the ``/run`` input by its parts' sizes (the package and the rows are most of it).
The outputs come back inside the request's result, so the download list is the plan's outputs against
the result's limit.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import TYPE_CHECKING

from unsloth_nb.credentials import redact

if TYPE_CHECKING:
    from unsloth_nb.jobrun.preflight import Prepared


def serverless_requests(prepared: Prepared, job_id: str) -> list[str]:
    """The serverless job's requests, in order, as lines of text."""
    from unsloth_nb.backends.runpod.api_types import DEFAULT_BASE_URL
    from unsloth_nb.backends.runpod_serverless import placement
    from unsloth_nb.backends.runpod_serverless.endpoints import endpoint_name
    from unsloth_nb.backends.runpod_serverless.request import (
        ARTIFACT_LIMIT_BYTES,
        endpoint_body,
        execution_timeout,
        job_input,
        run_request,
        template_body,
    )
    from unsloth_nb.backends.runpod_serverless.serve import DEFAULT_BASE

    config, plan = prepared.config, prepared.plan
    api = os.environ.get("RUNPOD_API_BASE_URL", "").strip() or DEFAULT_BASE_URL
    runs = (os.environ.get("RUNPOD_ENDPOINT_BASE_URL", "").strip() or DEFAULT_BASE).rstrip("/")
    timeout = execution_timeout(config, plan)
    disk = plan.pod.container_disk_gb if plan.pod is not None else None
    template = template_body(config, job_id, disk)
    template["env"] = {name: _shown(value) for name, value in template["env"].items()}
    endpoint = endpoint_body(config, job_id, "<template id>", placement.pool(plan) or list(config.runpod.gpus), timeout)
    body = job_input(job_id, config, prepared.dataset)
    sizes = {name: len(json.dumps(body[name] or "")) for name in ("package", "dataset", "config")}
    policy = run_request({}, timeout)["policy"]
    fetched = [o for o in plan.outputs if not o.skipped]
    total_gb = sum(o.gb for o in fetched)
    over = total_gb * 1e9 > ARTIFACT_LIMIT_BYTES
    lines = [
        f"Dry run: nothing is rented. A real run sends these requests (Authorization: Bearer <RUNPOD_API_KEY>; "
        f"RunPod's REST v2 API at {api}, its serverless API at {runs}).",
        "",
        f"1. POST {api}/v2/templates  the worker's template (a retried create looks it up by name first):",
        "   " + json.dumps(template),
        f"2. POST {api}/v2/endpoints  the job's endpoint, {endpoint_name(job_id)} (a retried create looks it up first):",
        "   " + json.dumps(endpoint),
        f"3. POST {runs}/<endpoint id>/run  one request, {len(json.dumps(run_request(body, timeout)))} bytes: the unsloth_nb "
        f"package {sizes['package']} characters (base64 zip), the rows {sizes['dataset']} characters, the config "
        f"{sizes['config']} characters; policy {json.dumps(policy)}",
        f"4. GET {runs}/<endpoint id>/stream/<request id>  until the request ends (events and the result's parts), "
        f"then GET {runs}/<endpoint id>/status/<request id>",
        f"5. the outputs come back in the request's result, zipped, at most {ARTIFACT_LIMIT_BYTES / 1e6:.0f} MB; "
        f"{len(fetched)} output{'s' if len(fetched) != 1 else ''}, ~{total_gb:.1f} GB before zipping"
        + (": more than the result holds, so the job would fail at the end" if over else ":"),
        *(f"   {o.path}  {o.describe()}" for o in plan.outputs),
        f"6. DELETE {api}/v2/endpoints/<endpoint id> and {api}/v2/templates/<template id>, then GET {api}/v2/endpoints "
        "until it is gone",
    ]
    return [redact(line) for line in lines]


def _shown(value: str) -> str:
    """A boot entry of the template's env by size and hash (base64 of gzip: nothing to read), a short one as is."""
    if len(value) <= 200:
        return value
    return f"<{len(value)} characters, sha256 {hashlib.sha256(value.encode()).hexdigest()[:16]}...>"
