"""RunPod's GraphQL API through the ``runpod`` 1.12 SDK: one attempt per call, every failure classified.

The SDK is a thin GraphQL wrapper with sharp edges (see the RunPod reference, §1):
it reads its key only from ``~/.runpod/config.toml``, pastes every string into the
query unescaped, hides the HTTP status of most failures, and its ``terminate_pod``
can succeed without doing anything. :class:`GraphqlApi` keeps every call to it
here: the key is set from ``RUNPOD_API_KEY``, every free-text value is escaped,
a response hook recovers the HTTP status and ``Retry-After`` the SDK drops, and
``QueryError.query`` (which carries env values) is never logged or shown.

GraphQL retires in early 2027; ``UNSLOTH_NB_RUNPOD_API=graphql`` selects it until then.
``import runpod`` takes seconds, so the SDK is imported on the first call.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from unsloth_nb.backends.runpod.api_types import (
    BALANCE_MARKERS,
    NOT_FOUND_TO_TERMINATE,
    OUT_OF_STOCK_MARKERS,
    TRANSIENT_MARKERS,
    AttemptFailed,
    Failure,
    GpuType,
    Pod,
    PodSpec,
    api_key,
    escape,
    parse_retry_after,
)
from unsloth_nb.errors import UnslothNbError

T = TypeVar("T")


# ---------------------------------------------------------------------- HTTP status observer
@dataclass
class _Response:
    status: int
    retry_after: float | None


_seen: contextvars.ContextVar[list[_Response] | None] = contextvars.ContextVar("unsloth_nb_runpod_seen", default=None)
_hook_lock = threading.Lock()
_hook_installed = False


def _observe(response: Any, *args: Any, **kwargs: Any) -> Any:
    seen = _seen.get()
    if seen is not None:
        seen.append(_Response(int(response.status_code), parse_retry_after(response.headers.get("Retry-After"))))
    return response


def _install_status_hook() -> None:
    """Let our calls see the HTTP status and ``Retry-After`` of the SDK's requests.

    The 1.12 SDK turns a 429 or a 5xx into a bare ``KeyError('data')`` or a JSON
    decode error and drops the response. A response hook on new ``requests``
    sessions records status and ``Retry-After`` for the calls this module makes
    (gated by a context variable, so everyone else's requests are untouched).
    """
    global _hook_installed
    with _hook_lock:
        if _hook_installed:
            return
        import requests.sessions

        original = requests.sessions.default_hooks

        def default_hooks() -> dict[str, list[Any]]:
            hooks = original()
            hooks.setdefault("response", []).append(_observe)
            return hooks

        requests.sessions.default_hooks = default_hooks
        _hook_installed = True


@contextlib.contextmanager
def _watching() -> Iterator[list[_Response]]:
    seen: list[_Response] = []
    token = _seen.set(seen)
    try:
        yield seen
    finally:
        _seen.reset(token)


# ---------------------------------------------------------------------- failure kinds
def _classify(exc: BaseException, seen: list[_Response]) -> Failure:
    import requests
    from runpod import error as rp_error

    last = seen[-1] if seen else None
    status = last.status if last else None
    retry_after = last.retry_after if last else None
    retry_after = getattr(exc, "retry_after", None) or retry_after  # REST-era SDKs carry it on QueryError
    if isinstance(exc, rp_error.AuthenticationError):
        return Failure("auth", "RunPod refused the API key")
    if isinstance(exc, rp_error.QueryError):
        message = str(exc.message or "")  # never exc.query: it holds env values
        lowered = message.lower()
        if any(m in lowered for m in OUT_OF_STOCK_MARKERS):
            return Failure("stock", message)
        if NOT_FOUND_TO_TERMINATE in lowered or lowered.strip() == "pod not found":
            return Failure("not_found", message)
        if any(m in lowered for m in BALANCE_MARKERS):
            return Failure("balance", message)
        if status is not None and (status == 429 or status >= 500):
            return Failure("transient", f"HTTP {status}: {message}", retry_after, maybe_done=status >= 500)
        if any(m in lowered for m in TRANSIENT_MARKERS):
            return Failure("transient", message, retry_after, maybe_done=True)
        return Failure("fatal", message)
    if isinstance(exc, ValueError) and "No GPU found" in str(exc):
        return Failure("stock", "RunPod does not offer this GPU type")
    if isinstance(exc, (requests.exceptions.Timeout, requests.exceptions.ConnectionError)):
        # A read timeout or a dropped connection may come after the server acted.
        return Failure("transient", f"network error ({type(exc).__name__})", retry_after, maybe_done=True, no_answer=True)
    if isinstance(exc, (KeyError, ValueError, TypeError)):
        # KeyError('data') / JSON decode error: the SDK got an answer without data (429, 5xx, an HTML error page).
        if status == 401:
            return Failure("auth", "RunPod refused the API key")
        if status is None or status == 429 or status >= 500 or status == 408:
            what = f"HTTP {status}" if status is not None else "an answer without data"
            return Failure("transient", f"RunPod answered {what}", retry_after, maybe_done=status != 429)
        return Failure("fatal", f"RunPod answered HTTP {status} without data")
    if isinstance(exc, requests.exceptions.RequestException):
        return Failure("transient", f"network error ({type(exc).__name__})", retry_after, maybe_done=True, no_answer=True)
    raise exc


# ---------------------------------------------------------------------- the transport
class GraphqlApi:
    """:class:`~unsloth_nb.backends.runpod.api_types.PodApi` over GraphQL (the SDK's transport)."""

    name = "graphql"

    def __init__(self, key: str | None = None) -> None:
        self._key = key

    def _sdk(self) -> Any:
        """The ``runpod`` module with our key set (it reads only its module attribute)."""
        from unsloth_nb.engine.quiet import guard_runpod_import

        guard_runpod_import()  # its import runs logging.basicConfig(level=INFO): keep the root logger as it is
        import runpod

        key = (self._key or "").strip()
        if not key:
            try:
                key = api_key()
            except UnslothNbError:
                key = (runpod.api_key or "").strip()
                if not key:
                    raise
        runpod.api_key = key
        _install_status_hook()
        return runpod

    def _attempt(self, fn: Callable[[Any], T]) -> T:
        sdk = self._sdk()
        with _watching() as seen:
            try:
                result = fn(sdk)
            except UnslothNbError:
                raise
            except Exception as exc:
                raise AttemptFailed(_classify(exc, seen)) from None
            # terminate_pod discards the answer: a 429 or 5xx there "succeeds" silently.
            rejected = next((r for r in seen if r.status == 429 or r.status >= 500), None)
            if rejected is not None:
                raise AttemptFailed(
                    Failure(
                        "transient",
                        f"RunPod answered HTTP {rejected.status}",
                        rejected.retry_after,
                        rejected.status >= 500,
                        rejected.status,
                    )
                )
            return result

    def _query(self, query: str) -> dict[str, Any]:
        """A raw GraphQL call through the SDK's own transport, for fields its helpers do not select."""

        def run(sdk: Any) -> dict[str, Any]:
            from runpod.api.graphql import run_graphql_query

            return dict(run_graphql_query(query)["data"])

        return self._attempt(run)

    # ------------------------------------------------------------------ GPUs
    def gpu_types(self) -> list[GpuType]:
        query = (
            "query GpuTypes { gpuTypes { id displayName memoryInGb securePrice communityPrice secureSpotPrice communitySpotPrice "
            "secure: lowestPrice(input: {gpuCount: 1, secureCloud: true}) { stockStatus } "
            "community: lowestPrice(input: {gpuCount: 1, secureCloud: false}) { stockStatus } } }"
        )
        data = self._query(query)
        return [GpuType.from_api(raw) for raw in data.get("gpuTypes") or []]

    def gpu_stock(self, gpu_type_id: str, cloud_type: str) -> tuple[str, float | None]:
        secure = {"SECURE": "true", "COMMUNITY": "false"}.get(cloud_type.upper(), "null")
        query = (
            f'query GpuType {{ gpuTypes(input: {{id: "{escape(gpu_type_id)}"}}) {{ id securePrice communityPrice '
            f"lowestPrice(input: {{gpuCount: 1, secureCloud: {secure}}}) {{ stockStatus uninterruptablePrice }} }} }}"
        )
        types = self._query(query).get("gpuTypes") or []
        if not types:
            return "None", None
        lowest = types[0].get("lowestPrice") or {}
        price = lowest.get("uninterruptablePrice")
        if price is None:
            price = types[0].get("communityPrice" if cloud_type.upper() == "COMMUNITY" else "securePrice")
        return str(lowest.get("stockStatus") or "None"), (float(price) if price is not None else None)

    # ------------------------------------------------------------------ pods
    def list_pods(self) -> list[Pod]:
        """Every pod, with live uptime (which the SDK's ``get_pods`` does not select)."""
        query = (
            "query myPods { myself { pods { id name desiredStatus costPerHr gpuCount imageName lastStatusChange "
            "machine { gpuDisplayName } runtime { uptimeInSeconds ports { privatePort type } } } } }"
        )
        data = self._query(query)
        return [Pod.from_api(raw) for raw in (data.get("myself") or {}).get("pods") or []]

    def get_pod(self, pod_id: str) -> Pod | None:
        raw = self._attempt(lambda sdk: sdk.get_pod(escape(pod_id)))
        return Pod.from_api(raw) if raw else None

    def spot_bid(self, gpu_type_id: str, cloud_type: str) -> float | None:
        secure = {"SECURE": "true", "COMMUNITY": "false"}.get(cloud_type.upper(), "null")
        query = (
            f'query GpuType {{ gpuTypes(input: {{id: "{escape(gpu_type_id)}"}}) {{ id secureSpotPrice communitySpotPrice '
            f"lowestPrice(input: {{gpuCount: 1, secureCloud: {secure}}}) {{ minimumBidPrice }} }} }}"
        )
        types = self._query(query).get("gpuTypes") or []
        if not types:
            return None
        bid = (types[0].get("lowestPrice") or {}).get("minimumBidPrice")
        if not bid:
            bid = types[0].get("communitySpotPrice" if cloud_type.upper() == "COMMUNITY" else "secureSpotPrice")
        return float(bid) if bid else None

    def _rent_interruptible(self, spec: PodSpec) -> Pod:
        """``podRentInterruptable``: the SDK has no helper for it, so the mutation is written here (escaped)."""
        if spec.bid_per_gpu is None:
            raise AttemptFailed(Failure("rule", "a spot pod needs a bid per GPU (runpod.interruptible)"))
        raw = self._query(spot_mutation(spec)).get("podRentInterruptable") or {}
        return Pod.from_api({**raw, "name": spec.name, "desiredStatus": "RUNNING", "gpuCount": spec.gpu_count})

    def create_request(self, spec: PodSpec) -> tuple[str, str, str]:
        """The create call's body as the SDK (or, for spot, :func:`spot_mutation`) sends it: ``{"query": ...}``."""
        if spec.interruptible:
            return "POST", "/graphql", json.dumps({"query": spot_mutation(spec)})
        return "POST", "/graphql", json.dumps({"query": sdk_create_mutation(create_kwargs(spec))})

    def create_pod(self, spec: PodSpec) -> Pod:
        if spec.interruptible:
            return self._rent_interruptible(spec)
        kwargs = create_kwargs(spec)

        def create(sdk: Any) -> Pod:
            raw = sdk.create_pod(**kwargs)
            return Pod.from_api({**raw, "name": spec.name, "desiredStatus": "RUNNING", "gpuCount": spec.gpu_count})

        return self._attempt(create)

    def stop_pod(self, pod_id: str) -> None:
        self._attempt(lambda sdk: sdk.stop_pod(escape(pod_id)))

    def terminate_pod(self, pod_id: str) -> None:
        self._attempt(lambda sdk: sdk.terminate_pod(escape(pod_id)))


# ---------------------------------------------------------------------- what a create sends
def cuda_versions(spec: PodSpec) -> list[str] | None:
    """``allowedCudaVersions`` for ``spec``: as given, else every known version from ``min_cuda_version`` on.

    The SDK's ``create_pod`` has no ``minCudaVersion`` parameter; the list does the same filtering.
    """
    if spec.allowed_cuda_versions:
        return list(spec.allowed_cuda_versions)
    from unsloth_nb.backends.runpod.pod_request import allowed_cuda_versions

    return allowed_cuda_versions(spec.min_cuda_version)


def create_kwargs(spec: PodSpec) -> dict[str, Any]:
    """The SDK's ``create_pod`` arguments for ``spec``, every free-text value escaped."""
    kwargs: dict[str, Any] = {
        "name": escape(spec.name),
        "image_name": escape(spec.image),
        "gpu_type_id": escape(spec.gpu_type_id),
        "cloud_type": spec.cloud_type,
        "gpu_count": spec.gpu_count,
        "container_disk_in_gb": spec.container_disk_gb,
        "ports": escape(spec.ports),
        "env": {escape(k): escape(v) for k, v in spec.env.items()},
        "docker_args": escape(spec.docker_args),
        "support_public_ip": True,
        "start_ssh": False,
        "volume_mount_path": escape(spec.volume_mount_path),
        "min_vcpu_count": spec.min_vcpu_count,
        "min_memory_in_gb": spec.min_memory_gb,
    }
    if spec.network_volume_id:
        kwargs["network_volume_id"] = escape(spec.network_volume_id)
    if spec.data_center_ids:
        kwargs["data_center_id"] = escape(spec.data_center_ids[0])
    versions = cuda_versions(spec)
    if versions:
        kwargs["allowed_cuda_versions"] = [escape(v) for v in versions]
    return kwargs


def sdk_create_mutation(kwargs: dict[str, Any]) -> str:
    """The mutation text ``runpod.create_pod(**kwargs)`` sends, rendered by the SDK's own generator."""
    import inspect

    from runpod.api.ctl_commands import create_pod
    from runpod.api.mutations.pods import generate_pod_deployment_mutation

    defaults = {name: p.default for name, p in inspect.signature(create_pod).parameters.items() if p.default is not p.empty}
    arguments = {**defaults, **kwargs}
    if arguments.get("container_disk_in_gb") is None and arguments.get("template_id") is None:
        arguments["container_disk_in_gb"] = 10  # what create_pod itself fills in
    wanted = inspect.signature(generate_pod_deployment_mutation).parameters
    return str(generate_pod_deployment_mutation(**{k: v for k, v in arguments.items() if k in wanted}))


def spot_mutation(spec: PodSpec) -> str:
    """``podRentInterruptable`` for ``spec`` at its ``bid_per_gpu`` (0 until a bid is known), every value escaped."""
    fields = [
        f"bidPerGpu: {float(spec.bid_per_gpu or 0.0)}",
        f'name: "{escape(spec.name)}"',
        f'imageName: "{escape(spec.image)}"',
        f'gpuTypeId: "{escape(spec.gpu_type_id)}"',
        f"cloudType: {spec.cloud_type.upper() if spec.cloud_type.upper() in ('SECURE', 'COMMUNITY') else 'ALL'}",
        f"gpuCount: {int(spec.gpu_count)}",
        f"containerDiskInGb: {int(spec.container_disk_gb)}",
        f"minVcpuCount: {int(spec.min_vcpu_count)}",
        f"minMemoryInGb: {int(spec.min_memory_gb)}",
        "supportPublicIp: true",
        f'ports: "{escape(spec.ports)}"',
        f'dockerArgs: "{escape(spec.docker_args)}"',
        f'volumeMountPath: "{escape(spec.volume_mount_path)}"',
        "env: [" + ", ".join(f'{{ key: "{escape(k)}", value: "{escape(v)}" }}' for k, v in spec.env.items()) + "]",
    ]
    if spec.network_volume_id:
        fields.append(f'networkVolumeId: "{escape(spec.network_volume_id)}"')
    if spec.min_cuda_version:
        fields.append(f'minCudaVersion: "{escape(spec.min_cuda_version)}"')
    if spec.allowed_cuda_versions:
        fields.append("allowedCudaVersions: [" + ", ".join(f'"{escape(v)}"' for v in spec.allowed_cuda_versions) + "]")
    if spec.data_center_ids:
        fields.append(f'dataCenterId: "{escape(spec.data_center_ids[0])}"')
    return (
        "mutation { podRentInterruptable(input: { " + ", ".join(fields) + " }) "
        "{ id imageName desiredStatus costPerHr machineId machine { podHostId } } }"
    )
