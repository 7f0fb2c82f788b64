"""The emulator's REST v2 routes (``/v2/...``), on the same account state as its GraphQL endpoint.

Shapes follow RunPod's OpenAPI document for v2 (the RunPod reference, §5.6 and §7.2):

- ``GET /v2/pods?cursor=&limit=`` -> ``{"pods": [Pod], "pagination": {"nextCursor", "hasNextPage"}}``
  (a malformed cursor or a limit outside 1-1000 is a 422);
- ``POST /v2/pods`` -> 201 Pod; ``GET /v2/pods/{id}`` -> Pod or 404;
  ``DELETE /v2/pods/{id}`` -> 204; ``POST /v2/pods/{id}/action {"action"}`` -> 200 Pod
  (204 for terminate; 409 when the action is not valid in the pod's status);
- ``GET /v2/catalog/gpus[/{id}]?include=AVAILABILITY&product=POD&cloud=&count=`` ->
  ``{"gpus": [Gpu]}`` or one Gpu (``include`` without ``product`` is a 400);
- every error is ``application/problem+json`` ``{"title", "status", "detail", "errors"?}``.

Each route carries the name of its GraphQL twin for the fault knobs (see ``faults.py``).
A pod-scoped key (a container's ``RUNPOD_API_KEY``) may read, stop and terminate its
own pod and nothing else.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote

from unsloth_nb.testing.runpod_emulator.catalogue import GpuType
from unsloth_nb.testing.runpod_emulator.cloud import ApiError, Cloud
from unsloth_nb.testing.runpod_emulator.pods import EMULATOR_CUDA_VERSION
from unsloth_nb.testing.runpod_emulator.problem import Problem

CREATE = "podFindAndDeployOnDemand"
_AVAILABILITY = {"High": "HIGH", "Medium": "MEDIUM", "Low": "LOW"}


@dataclass(frozen=True)
class Route:
    """One REST v2 request, resolved: its GraphQL twin (for fault knobs) and the pod it touches."""

    operation: str
    pod_id: str | None = None
    action: str | None = None
    gpu_id: str | None = None


def route(method: str, path: str, body: Any) -> Route | None:
    """Which REST v2 call this is, or None for a path the API does not have."""
    parts = [unquote(p) for p in path.split("/")[2:]]  # after "/v2/"
    if parts[:2] == ["catalog", "gpus"] and method == "GET":
        if len(parts) == 2:
            return Route("gpuTypes")
        if len(parts) == 3:
            return Route("gpuTypes", gpu_id=parts[2])
        return None
    if not parts or parts[0] != "pods":
        return None
    if len(parts) == 1:
        return {"GET": Route("myself"), "POST": Route(CREATE)}.get(method)
    pod_id = parts[1]
    if len(parts) == 2:
        return {"GET": Route("pod", pod_id), "DELETE": Route("podTerminate", pod_id, "terminate")}.get(method)
    if len(parts) == 3 and parts[2] == "action" and method == "POST":
        action = str(body.get("action") or "") if isinstance(body, dict) else ""
        twin = {"stop": "podStop", "start": "podResume", "restart": "podResume", "terminate": "podTerminate"}
        return Route(twin.get(action, "podAction"), pod_id, action)
    return None


class RestApi:
    """Answers one authenticated REST v2 request against ``cloud``; ``scoped_pod_id`` is a pod key's own pod."""

    def __init__(self, cloud: Cloud, scoped_pod_id: str | None) -> None:
        self.cloud = cloud
        self.scoped = scoped_pod_id

    def answer(self, method: str, where: Route, query: str, body: Any) -> tuple[int, Any]:
        """(status, JSON body or None for 204); raises Problem."""
        params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        if where.pod_id is not None:
            self._allowed(where.pod_id)
        elif self.scoped is not None:
            raise Problem(403, "a pod-scoped API key may only read, stop or terminate its own pod")
        try:
            if where.operation == "gpuTypes":
                return 200, self._catalogue(params, where.gpu_id)
            if where.operation == "myself":
                return 200, self._list(params)
            if where.operation == CREATE:
                return 201, self._create(body)
            assert where.pod_id is not None
            if where.operation == "pod":
                return self._get(where.pod_id)
            return self._act(where.pod_id, where.action or "")
        except ApiError as exc:
            raise _problem_for(exc) from None

    # ---- pods -------------------------------------------------------------------------

    def _allowed(self, pod_id: str) -> None:
        if self.scoped is not None and self.scoped != pod_id:
            raise Problem(403, "a pod-scoped API key may only act on its own pod")

    def _list(self, params: Mapping[str, str]) -> dict[str, Any]:
        limit = _int_param(params, "limit", 100)
        if not 1 <= limit <= 1000:
            raise Problem(422, "limit must be between 1 and 1000", [{"field": "limit", "message": "out of range"}])
        start = 0
        if "cursor" in params:
            try:
                start = int(base64.urlsafe_b64decode(params["cursor"].encode()).decode().removeprefix("pods:"))
            except (ValueError, binascii.Error, UnicodeDecodeError):
                raise Problem(422, "malformed or foreign cursor", [{"field": "cursor", "message": "invalid"}]) from None
        pods = self.cloud.rest_pods()
        page = pods[start : start + limit]
        more = start + limit < len(pods)
        cursor = base64.urlsafe_b64encode(f"pods:{start + limit}".encode()).decode() if more else None
        return {"pods": page, "pagination": {"nextCursor": cursor, "hasNextPage": more}}

    def _get(self, pod_id: str) -> tuple[int, Any]:
        found = self.cloud.rest_pod(pod_id)
        if found is not None:
            return 200, found
        gone_as = self.cloud.faults.lookup_gone_as
        if gone_as == "null":
            return 200, None
        if gone_as == "error":
            raise Problem(400, f"pod {pod_id} does not exist or was terminated")
        raise Problem(404, f"pod {pod_id} not found")

    def _create(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise Problem(400, "the body must be a JSON object describing the pod")
        missing = [f for f in ("name", "image") if not body.get(f)] + ([] if isinstance(body.get("gpu"), dict) else ["gpu"])
        if missing:
            raise Problem(422, "the pod is missing required fields", [{"field": f, "message": "required"} for f in missing])
        gpu = body["gpu"]
        if gpu.get("minCudaVersion") and gpu.get("allowedCudaVersions"):
            raise Problem(
                400,
                "gpu.minCudaVersion and gpu.allowedCudaVersions are mutually exclusive",
                [{"field": "gpu.minCudaVersion", "message": "remove one of minCudaVersion and allowedCudaVersions"}],
            )
        for field in ("minCudaVersion", "allowedCudaVersions", "minVcpuCountPerGpu", "minRamPerGpu"):
            if field in body:
                raise Problem(422, f"{field} belongs under gpu", [{"field": field, "message": f"use gpu.{field}"}])
        for field, v2 in (("minVCPUPerGPU", "minVcpuCountPerGpu"), ("minRAMPerGPU", "minRamPerGpu")):
            if field in body:  # REST v1's flat names
                raise Problem(422, f"{field} is not a v2 field", [{"field": field, "message": f"use gpu.{v2}"}])
        per_gpu: dict[str, int] = {}
        for field in ("minVcpuCountPerGpu", "minRamPerGpu"):
            value = gpu.get(field)
            if value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise Problem(422, f"gpu.{field} must be a positive integer", [{"field": f"gpu.{field}", "message": "integer"}])
            per_gpu[field] = value
        if not _cuda_satisfied(gpu):
            raise ApiError("There are no instances available with the requested specifications (CUDA version).")
        cloud = str(body.get("cloud") or "SECURE").upper()
        if cloud not in ("SECURE", "COMMUNITY"):
            raise Problem(422, "cloud must be SECURE or COMMUNITY", [{"field": "cloud", "message": "invalid enum value"}])
        ports = body.get("ports") or []
        env = body.get("env") or {}
        if not isinstance(ports, list) or not isinstance(env, dict):
            raise Problem(422, "ports is a list of strings and env an object", [{"field": "ports/env", "message": "type"}])
        network = ((body.get("mounts") or {}).get("network") or [{}])[0]
        self.cloud.volumes.check_placement(
            network.get("volumeId"), tuple(body.get("dataCenterIds") or ()), str(gpu.get("id") or "")
        )
        fields: dict[str, Any] = {
            "name": body["name"],
            "imageName": body["image"],
            "gpuTypeId": gpu.get("id"),
            "gpuCount": gpu.get("count") or 1,
            "minVcpuCount": per_gpu.get("minVcpuCountPerGpu", 1) * int(gpu.get("count") or 1),
            "minMemoryInGb": per_gpu.get("minRamPerGpu", 1) * int(gpu.get("count") or 1),
            "cloudType": cloud,
            "containerDiskInGb": body.get("disk"),
            "ports": ",".join(str(p) for p in ports) or None,
            "env": [{"key": str(k), "value": str(v)} for k, v in env.items()],
            "dockerArgs": body.get("args") or "",
            "networkVolumeId": network.get("volumeId"),
            "volumeMountPath": network.get("path") or "/workspace",
            "minCudaVersion": gpu.get("minCudaVersion"),
            "allowedCudaVersions": gpu.get("allowedCudaVersions"),
            "dataCenterIds": body.get("dataCenterIds"),
        }
        created = self.cloud.create_pod(fields, gpu=True)
        pod = self.cloud.rest_pod(str(created["id"]))
        assert pod is not None
        return pod

    def _act(self, pod_id: str, action: str) -> tuple[int, Any]:
        if self.cloud.rest_pod(pod_id) is None:
            raise Problem(404, f"pod {pod_id} not found")
        if action == "terminate":
            self.cloud.terminate_pod(pod_id)
            return 204, None
        if action == "stop":
            self.cloud.stop_pod(pod_id)
        elif action in ("start", "restart"):
            self.cloud.resume_pod(pod_id)
        else:
            raise Problem(
                400, f"unknown action {action!r}", [{"field": "action", "message": "one of start, stop, restart, terminate"}]
            )
        return 200, self.cloud.rest_pod(pod_id)

    # ---- catalogue --------------------------------------------------------------------

    def _catalogue(self, params: Mapping[str, str], gpu_id: str | None) -> Any:
        include = params.get("include", "")
        if include and not params.get("product"):
            raise Problem(400, "product is required with include", [{"field": "product", "message": "POD or SERVERLESS"}])
        cloud = params.get("cloud", "SECURE").upper()
        count = _int_param(params, "count", 1)
        with_availability = "AVAILABILITY" in include.upper()
        if gpu_id is not None:
            gpu = self.cloud.gpus.get(gpu_id)
            if gpu is None:
                raise Problem(404, f"no GPU type {gpu_id}")
            return gpu_as_rest(gpu, cloud, count, with_availability)
        return {"gpus": [gpu_as_rest(g, cloud, count, with_availability) for g in self.cloud.gpus.values()]}


def gpu_as_rest(gpu: GpuType, cloud: str, count: int, with_availability: bool) -> dict[str, Any]:
    """One catalogue entry as REST v2 shows it; availability is for ``cloud`` and ``count`` GPUs."""
    secure, community = gpu.secure_price, gpu.community_price
    offered = (secure if cloud == "SECURE" else community) is not None
    body: dict[str, Any] = {
        "id": gpu.id,
        "name": gpu.display_name,
        "manufacturer": "NVIDIA",
        "memory": gpu.memory_gb,
        "secure": secure is not None,
        "community": community is not None,
        "price": {"secure": secure or 0.0, "community": community or 0.0},
        "maxCount": {"secure": gpu.max_gpu_count if secure else 0, "community": gpu.max_gpu_count if community else 0},
    }
    if with_availability:
        # ``out_of_stock`` refuses creates only: stock figures lag, as on the real API.
        stock = gpu.stock_status() if gpu.available >= count and offered else None
        body["availability"] = _AVAILABILITY.get(stock or "", "NONE")
        body["dataCenters"] = [{"id": "EMU-LOOPBACK-1", "name": "Loopback", "availability": body["availability"]}]
        body["cudaVersions"] = [{"version": EMULATOR_CUDA_VERSION, "available": True}]
    return body


def _cuda_satisfied(gpu: Mapping[str, Any]) -> bool:
    """Whether the emulator's hosts (CUDA 12.8) meet the request's CUDA constraint."""

    def version(text: object) -> tuple[int, ...]:
        try:
            return tuple(int(p) for p in str(text).split("."))
        except ValueError:
            raise Problem(
                422, f"{text!r} is not a CUDA version", [{"field": "gpu.minCudaVersion", "message": "like 12.8"}]
            ) from None

    host = version(EMULATOR_CUDA_VERSION)
    if gpu.get("minCudaVersion"):
        return version(gpu["minCudaVersion"]) <= host
    allowed = gpu.get("allowedCudaVersions") or []
    return not allowed or any(version(v) == host for v in allowed)


def _int_param(params: Mapping[str, str], name: str, default: int) -> int:
    try:
        return int(params.get(name, default))
    except ValueError:
        raise Problem(422, f"{name} must be a whole number", [{"field": name, "message": "not an integer"}]) from None


def _problem_for(exc: ApiError) -> Problem:
    """The REST answer for an account-level failure the GraphQL layer reports as an error message."""
    code = exc.extensions.get("code")
    if code == "INSUFFICIENT_BALANCE":
        return Problem(402, str(exc))
    if code == "NOT_FOUND":
        return Problem(404, str(exc))
    if code == "BAD_USER_INPUT":
        return Problem(400, str(exc))
    return Problem(400, str(exc))  # capacity: "no longer any instances available"


__all__ = ["RestApi", "Route", "gpu_as_rest", "route"]
