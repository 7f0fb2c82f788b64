"""RunPod's REST v2 pod API (``{RUNPOD_API_BASE_URL}/v2``), one attempt per call, every failure classified.

What is sent follows RunPod's OpenAPI document for v2 (docs ``api-reference-v2``;
the RunPod reference, §7.2):

- ``GET /v2/catalog/gpus?include=AVAILABILITY&product=POD&cloud=SECURE|COMMUNITY&count=1``:
  the GPU types with their price and availability in one cloud (``product`` is
  required with ``include``); ``GET /v2/catalog/gpus/{id}`` for one type;
- ``GET /v2/pods`` (cursor-paginated: ``?cursor=&limit=``, answered with
  ``{"pods": [...], "pagination": {"nextCursor", "hasNextPage"}}``), ``GET /v2/pods/{id}``
  (404 for a pod that does not exist), ``POST /v2/pods`` (201 with the pod),
  ``POST /v2/pods/{id}/action {"action": "stop"}`` and ``DELETE /v2/pods/{id}`` (204);
- the create body: ``name, image, gpu{id, count, minCudaVersion | allowedCudaVersions,
  minVcpuCountPerGpu, minRamPerGpu}, cloud, disk, ports[], env{}, args,
  mounts{network: [{volumeId, path}]}, dataCenterIds``. The vCPU and RAM floors are
  per GPU under ``gpu`` in v2, as runpod-python's v2 client (PR #584) and SkyPilot's
  v2 provisioner send them (RunPod reference §1.7, §4.1); REST v1's flat
  ``minVCPUPerGPU`` / ``minRAMPerGPU`` (§2.11) are not v2 fields.

Errors are RFC 9457 problem documents (``application/problem+json``: ``title``,
``status``, ``detail``, ``errors``). They are read as:

- 400 about capacity ("no instances available") -> out of stock; any other 400 (and
  409, 422) -> a rule of the API that retrying cannot fix, with RunPod's detail;
- 401/403 -> the key; 402 -> the account's balance; 404 -> no such pod;
- 429 -> retried after ``Retry-After``; 5xx, an HTML gateway page, a dropped
  connection or a timeout -> retried (a create is looked up by name first).

Only the standard error fields are shown; env values (our per-job token among
them) are never part of a message or a log line. ``requests`` comes with the
``runpod`` extra and is imported on the first call.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from unsloth_nb.backends.runpod.api_types import (
    BALANCE_MARKERS,
    OUT_OF_STOCK_MARKERS,
    AttemptFailed,
    Failure,
    GpuType,
    Pod,
    PodSpec,
    api_key,
    base_url,
    parse_retry_after,
)

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_S = 30.0
#: The largest page the API serves (1-1000).
PAGE_LIMIT = 100
#: REST v2's availability words -> the stock words the planner reads (GraphQL's ``stockStatus``).
_AVAILABILITY = {"HIGH": "High", "MEDIUM": "Medium", "LOW": "Low", "NONE": "None"}
#: REST v2 statuses of a pod that is alive and meant to run.
_ALIVE = ("PROVISIONING", "STARTING", "RUNNING")


def _user_agent() -> str:
    from unsloth_nb import __version__

    return f"unsloth-nb/{__version__}"


class RestApi:
    """:class:`~unsloth_nb.backends.runpod.api_types.PodApi` over REST v2, on a ``requests`` session."""

    name = "rest"

    def __init__(self, key: str | None = None, timeout: float = REQUEST_TIMEOUT_S) -> None:
        self._key = key
        self._timeout = timeout
        self._session: Any = None

    # ------------------------------------------------------------------ plumbing
    def _request(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, body: Any = None, raw: str | None = None
    ) -> Any:
        """One request (``body`` as JSON, or ``raw`` JSON text as is); the parsed answer (None for 204), or AttemptFailed."""
        import requests

        if self._session is None:
            self._session = requests.Session()
        headers = {
            "Authorization": f"Bearer {api_key(self._key)}",
            "Accept": "application/json",
            "User-Agent": _user_agent(),
        }
        url = base_url() + path
        payload: dict[str, Any] = {"json": body}
        if raw is not None:
            headers["Content-Type"] = "application/json"
            payload = {"data": raw.encode("utf-8")}
        try:
            response = self._session.request(method, url, params=params, headers=headers, timeout=self._timeout, **payload)
        except requests.RequestException as exc:
            # A read timeout or a dropped connection may come after the server acted.
            raise AttemptFailed(
                Failure("transient", f"network error ({type(exc).__name__})", maybe_done=True, no_answer=True)
            ) from None
        if response.status_code < 400:
            if response.status_code == 204 or not response.content:
                return None
            try:
                return response.json()
            except ValueError:
                raise AttemptFailed(
                    Failure("transient", f"RunPod answered HTTP {response.status_code} without JSON", maybe_done=True)
                ) from None
        raise AttemptFailed(classify(response.status_code, _problem(response), response.headers.get("Retry-After")))

    # ------------------------------------------------------------------ GPUs
    def _catalogue(self, cloud: str) -> list[dict[str, Any]]:
        params = {"include": "AVAILABILITY", "product": "POD", "cloud": cloud, "count": 1}
        answer = self._request("GET", "/v2/catalog/gpus", params=params) or {}
        return [g for g in answer.get("gpus") or [] if isinstance(g, dict)]

    def gpu_types(self) -> list[GpuType]:
        """Every GPU type, with its price and availability asked of each cloud (one call per cloud)."""
        secure = {g["id"]: g for g in self._catalogue("SECURE") if g.get("id")}
        community = {g["id"]: g for g in self._catalogue("COMMUNITY") if g.get("id")}
        return [
            gpu_type_from_rest(secure.get(i), community.get(i)) for i in [*secure, *(i for i in community if i not in secure)]
        ]

    def gpu_stock(self, gpu_type_id: str, cloud_type: str) -> tuple[str, float | None]:
        cloud = "COMMUNITY" if cloud_type.upper() == "COMMUNITY" else "SECURE"
        params = {"include": "AVAILABILITY", "product": "POD", "cloud": cloud, "count": 1}
        try:
            raw = self._request("GET", "/v2/catalog/gpus/" + quote(gpu_type_id, safe=""), params=params) or {}
        except AttemptFailed as exc:
            if exc.failure.kind == "not_found":
                return "None", None
            raise
        price = _price(raw, cloud)
        return _AVAILABILITY.get(str(raw.get("availability") or "NONE").upper(), "None"), price

    # ------------------------------------------------------------------ pods
    def list_pods(self) -> list[Pod]:
        pods: list[Pod] = []
        cursor: str | None = None
        for _ in range(1000):  # a bound, not a limit anyone meets: 100k pods
            params: dict[str, Any] = {"limit": PAGE_LIMIT}
            if cursor:
                params["cursor"] = cursor
            answer = self._request("GET", "/v2/pods", params=params) or {}
            pods += [pod_from_rest(raw) for raw in answer.get("pods") or [] if isinstance(raw, dict)]
            page = answer.get("pagination") or {}
            cursor = page.get("nextCursor")
            if not page.get("hasNextPage") or not cursor:
                break
        return pods

    def get_pod(self, pod_id: str) -> Pod | None:
        raw = self._request("GET", "/v2/pods/" + quote(pod_id, safe=""))
        return pod_from_rest(raw) if isinstance(raw, dict) and raw else None

    def create_request(self, spec: PodSpec) -> tuple[str, str, str]:
        return "POST", "/v2/pods", json.dumps(create_body(spec))

    def create_pod(self, spec: PodSpec) -> Pod:
        method, path, text = self.create_request(spec)
        raw = self._request(method, path, raw=text)  # exactly what create_request shows
        if not isinstance(raw, dict) or not raw.get("id"):
            raise AttemptFailed(Failure("transient", "RunPod answered the create without a pod", maybe_done=True))
        return pod_from_rest(raw)

    def stop_pod(self, pod_id: str) -> None:
        self._request("POST", "/v2/pods/" + quote(pod_id, safe="") + "/action", body={"action": "stop"})

    def terminate_pod(self, pod_id: str) -> None:
        self._request("DELETE", "/v2/pods/" + quote(pod_id, safe=""))


# ---------------------------------------------------------------------- shapes
def create_body(spec: PodSpec) -> dict[str, Any]:
    """The ``POST /v2/pods`` body for ``spec`` (JSON: nothing needs escaping)."""
    gpu: dict[str, Any] = {"id": spec.gpu_type_id, "count": spec.gpu_count}
    # Both as asked: RunPod refuses the pair (400), and its answer names the field to change.
    if spec.allowed_cuda_versions:
        gpu["allowedCudaVersions"] = list(spec.allowed_cuda_versions)
    if spec.min_cuda_version:
        gpu["minCudaVersion"] = spec.min_cuda_version
    count = max(1, spec.gpu_count)
    if spec.min_vcpu_count > 1:  # RunPod's own floors apply below these
        gpu["minVcpuCountPerGpu"] = math.ceil(spec.min_vcpu_count / count)
    if spec.min_memory_gb > 1:
        gpu["minRamPerGpu"] = math.ceil(spec.min_memory_gb / count)
    body: dict[str, Any] = {
        "name": spec.name,
        "image": spec.image,
        "gpu": gpu,
        "cloud": spec.cloud_type.upper() if spec.cloud_type.upper() in ("SECURE", "COMMUNITY") else "SECURE",
        "disk": spec.container_disk_gb,
        "ports": [p.strip() for p in spec.ports.split(",") if p.strip()],
        "env": dict(spec.env),
        "args": spec.docker_args,
    }
    if spec.network_volume_id:
        body["mounts"] = {"network": [{"volumeId": spec.network_volume_id, "path": spec.volume_mount_path}]}
    if spec.data_center_ids:
        body["dataCenterIds"] = list(spec.data_center_ids)
    return body


def pod_from_rest(raw: Mapping[str, Any]) -> Pod:
    """A v2 ``Pod`` object as our :class:`Pod` (``status`` stands where GraphQL had ``desiredStatus``)."""
    runtime = raw.get("runtime") or None
    ports = (runtime or {}).get("ports") or []
    gpu = raw.get("gpu") or {}
    env = raw.get("env") or {}
    return Pod(
        id=str(raw.get("id") or ""),
        name=str(raw.get("name") or ""),
        desired_status=str(raw.get("status") or "UNKNOWN").upper(),
        cost_per_hr=float(raw.get("cost") or 0.0),
        gpu_display_name=None,
        gpu_count=int(gpu.get("count") or 0) if isinstance(gpu, dict) else 0,
        image=str(raw.get("image") or ""),
        runtime_up=runtime is not None,
        uptime_seconds=(runtime or {}).get("uptime"),
        http_ports=tuple(int(p["private"]) for p in ports if str(p.get("type")).lower() == "http" and p.get("private")),
        last_status_change=str(raw.get("lastStatusChange") or ""),
        env={str(k): str(v) for k, v in env.items()} if isinstance(env, dict) else {},
        gpu_type_id=str(gpu.get("id")) if isinstance(gpu, dict) and gpu.get("id") else None,
    )


def _price(raw: Mapping[str, Any], cloud: str) -> float | None:
    value = (raw.get("price") or {}).get(cloud.lower())
    return float(value) if value else None  # 0 or null: not offered in that cloud


def gpu_type_from_rest(secure: Mapping[str, Any] | None, community: Mapping[str, Any] | None) -> GpuType:
    """One GPU type from its catalogue entries as each cloud answered them."""
    any_raw = secure or community or {}

    def stock(raw: Mapping[str, Any] | None) -> str:
        return _AVAILABILITY.get(str((raw or {}).get("availability") or "NONE").upper(), "None")

    return GpuType(
        id=str(any_raw.get("id")),
        display_name=str(any_raw.get("name") or any_raw.get("id")),
        memory_gb=int(any_raw.get("memory") or 0),
        secure_usd_per_hour=_price(secure or any_raw, "secure"),
        community_usd_per_hour=_price(community or any_raw, "community"),
        secure_stock=stock(secure),
        community_stock=stock(community),
    )


# ---------------------------------------------------------------------- errors
def _problem(response: Any) -> dict[str, Any]:
    """The problem document of an error answer (an HTML gateway page gives none)."""
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def problem_text(status: int, problem: Mapping[str, Any]) -> str:
    """``title: detail (field: reason; ...)`` from a problem document, or the bare status."""
    title = str(problem.get("title") or f"HTTP {status}")
    detail = str(problem.get("detail") or problem.get("message") or problem.get("error") or "")
    text = f"{title}: {detail}" if detail and detail != title else title
    errors = problem.get("errors")
    if isinstance(errors, list) and errors:
        parts = []
        for item in errors[:5]:
            if isinstance(item, dict):
                where = item.get("field") or item.get("pointer") or item.get("location") or ""
                what = item.get("message") or item.get("detail") or item.get("reason") or ""
                parts.append(f"{where}: {what}" if where else str(what))
            else:
                parts.append(str(item))
        text += " (" + "; ".join(p for p in parts if p) + ")"
    return f"HTTP {status} {text}"


def classify(status: int, problem: Mapping[str, Any], retry_after_header: str | None = None) -> Failure:
    """What an error answer means for the caller (see the module docstring)."""
    text = problem_text(status, problem)
    lowered = text.lower()
    retry_after = parse_retry_after(retry_after_header)
    if status in (401, 403):
        return Failure("auth", text, status=status)
    if status == 402 or (status == 400 and any(m in lowered for m in BALANCE_MARKERS)):
        return Failure("balance", text, status=status)
    if status == 404:
        return Failure("not_found", text, status=status)
    if status == 429:
        return Failure("transient", text, retry_after, maybe_done=False, status=status)
    if status >= 500 or status == 408:
        return Failure("transient", text, retry_after, maybe_done=True, status=status)
    if status == 400 and any(m in lowered for m in OUT_OF_STOCK_MARKERS):
        return Failure("stock", text, status=status)
    if status in (400, 409, 422):
        return Failure("rule", text, status=status)
    return Failure("fatal", text, status=status)
