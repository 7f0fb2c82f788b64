"""The one door to RunPod's API: the ``runpod`` 1.12 SDK, made safe to depend on.

The SDK is a thin GraphQL wrapper with sharp edges (see the RunPod reference, §1):
it reads its key only from ``~/.runpod/config.toml``, pastes every string into the
query unescaped, never retries, hides the HTTP status of most failures, and its
``terminate_pod`` can succeed without doing anything. :class:`RunPodClient` keeps
every call to it here and adds what a job that pays by the second needs:

- the key comes from ``RUNPOD_API_KEY`` (else the SDK's own config file);
- every free-text value is escaped, so quotes, backslashes and newlines in names,
  env values or start commands arrive intact instead of breaking the query;
- network errors, 5xx, 429 (honouring ``Retry-After``) and RunPod's "try again"
  messages are retried with capped exponential backoff and full jitter;
- a create is never retried blindly: after any failure that may have created the
  pod, the pod is looked up by name first;
- a terminate returns only once the pod is gone, re-sent while it is not;
- SDK exceptions become :class:`~unsloth_nb.errors.UnslothNbError` subclasses whose
  message says what to do. ``QueryError.query`` (which carries env values, our
  per-job token among them) is never logged or shown.

``import runpod`` takes seconds, so the SDK is imported on the first API call.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from unsloth_nb.credentials import redact
from unsloth_nb.errors import BackendError, MissingSecretError, UnslothNbError
from unsloth_nb.planning.gpu_catalog import GpuOption

log = logging.getLogger(__name__)

T = TypeVar("T")

#: RunPod's words for "the GPU you asked for is not free" (create and resume).
_OUT_OF_STOCK_MARKERS = (
    "no longer any instances available",
    "does not have the resources to deploy",
    "not enough free gpus",
    "no gpu found with the specified id",
)
#: RunPod's words for "try again": a generic failure that is usually transient.
_TRANSIENT_MARKERS = ("something went wrong", "please try again", "internal server error", "timed out", "timeout")
#: Words of a billing refusal (the exact text is not documented; these cover what users report).
_BALANCE_MARKERS = ("balance", "insufficient funds", "not enough credit", "add credit", "spend limit")
NOT_FOUND_TO_TERMINATE = "pod not found to terminate"

BILLING_URL = "https://www.runpod.io/console/user/billing"
KEYS_URL = "https://www.runpod.io/console/user/settings"


# ---------------------------------------------------------------------- errors
class RunPodAuthError(UnslothNbError):
    """RunPod refused the API key."""

    exit_code = 2


class RunPodApiError(BackendError):
    """A RunPod call failed after its retries, or failed in a way retrying cannot fix."""


class OutOfStockError(RunPodApiError):
    """The GPU type has no free capacity in that cloud right now."""


class InsufficientBalanceError(RunPodApiError):
    """RunPod refused to rent because the account has too little credit."""

    exit_code = 2


class PodGoneError(RunPodApiError):
    """The pod does not exist (any more)."""


class PodNotGoneError(RunPodApiError):
    """A terminated pod was still listed when the confirmation deadline passed."""


# ---------------------------------------------------------------------- plain data
@dataclass(frozen=True)
class Pod:
    """What we know of one pod from a RunPod listing."""

    id: str
    name: str
    desired_status: str
    cost_per_hr: float
    gpu_display_name: str | None
    gpu_count: int
    image: str
    runtime_up: bool
    uptime_seconds: int | None
    http_ports: tuple[int, ...]
    last_status_change: str = ""
    env: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def running(self) -> bool:
        return self.desired_status == "RUNNING"

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> Pod:
        runtime = raw.get("runtime") or None
        ports = (runtime or {}).get("ports") or []
        env: dict[str, str] = {}
        for item in raw.get("env") or []:
            key, sep, value = str(item).partition("=")
            if sep:
                env[key] = value
        return cls(
            id=str(raw.get("id") or ""),
            name=str(raw.get("name") or ""),
            desired_status=str(raw.get("desiredStatus") or "UNKNOWN"),
            cost_per_hr=float(raw.get("costPerHr") or 0.0),
            gpu_display_name=(raw.get("machine") or {}).get("gpuDisplayName"),
            gpu_count=int(raw.get("gpuCount") or 0),
            image=str(raw.get("imageName") or ""),
            runtime_up=runtime is not None,
            uptime_seconds=(runtime or {}).get("uptimeInSeconds"),
            http_ports=tuple(int(p["privatePort"]) for p in ports if p.get("type") == "http" and p.get("privatePort")),
            last_status_change=str(raw.get("lastStatusChange") or ""),
            env=env,
        )


_STOCK_ORDER = {"High": 3, "Medium": 2, "Low": 1, "None": 0}


@dataclass(frozen=True)
class GpuType:
    """One GPU type as RunPod offers it right now: on-demand $/GPU/h and stock per cloud.

    A null ``stockStatus`` (nothing free) is kept as the string "None", which is
    what the planner reads as out of stock.
    """

    id: str
    display_name: str
    memory_gb: int
    secure_usd_per_hour: float | None
    community_usd_per_hour: float | None
    secure_stock: str
    community_stock: str

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> GpuType:
        def price(key: str) -> float | None:
            value = raw.get(key)
            return float(value) if value else None  # RunPod reports 0 for "not offered"

        def stock(alias: str) -> str:
            return str((raw.get(alias) or {}).get("stockStatus") or "None")

        return cls(
            id=str(raw.get("id")),
            display_name=str(raw.get("displayName") or raw.get("id")),
            memory_gb=int(raw.get("memoryInGb") or 0),
            secure_usd_per_hour=price("securePrice"),
            community_usd_per_hour=price("communityPrice"),
            secure_stock=stock("secure"),
            community_stock=stock("community"),
        )

    def stock(self, cloud_type: str) -> str:
        """Stock in one cloud; ``ALL`` is the better of the two."""
        cloud = cloud_type.upper()
        if cloud == "SECURE":
            return self.secure_stock
        if cloud == "COMMUNITY":
            return self.community_stock
        return max((self.secure_stock, self.community_stock), key=lambda s: _STOCK_ORDER.get(s, 0))

    def as_option(self, cloud_type: str = "SECURE") -> GpuOption:
        """The planner's view of this GPU, with live prices and the stock of ``cloud_type``."""
        return GpuOption(
            self.id,
            self.display_name,
            self.memory_gb,
            self.secure_usd_per_hour,
            self.community_usd_per_hour,
            stock=self.stock(cloud_type),
        )


@dataclass
class PodSpec:
    """Everything a pod is created with. Values are plain text; the client escapes them."""

    name: str
    image: str
    gpu_type_id: str
    cloud_type: str = "SECURE"
    gpu_count: int = 1
    container_disk_gb: int = 50
    ports: str = "8000/http"
    env: dict[str, str] = field(default_factory=dict, repr=False)
    docker_args: str = field(default="", repr=False)
    network_volume_id: str | None = None
    volume_mount_path: str = "/workspace"
    min_cuda_version: str | None = None  # hosts whose driver supports at least this CUDA (the image's)
    min_vcpu_count: int = 1
    min_memory_gb: int = 1


@dataclass
class RetryPolicy:
    """How hard a call is retried: capped exponential backoff with full jitter.

    ``Retry-After`` from the server wins over the computed delay (up to ``max_delay``).
    """

    attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay)
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


def escape(value: str) -> str:
    """``value`` as the inside of a GraphQL string literal.

    The SDK writes ``"<value>"`` into the query; JSON's string escapes are valid
    GraphQL escapes, so quotes, backslashes, newlines and non-ASCII survive.
    """
    return json.dumps(str(value))[1:-1]


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
        seen.append(_Response(int(response.status_code), _parse_retry_after(response.headers.get("Retry-After"))))
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

        requests.sessions.default_hooks = default_hooks  # type: ignore[assignment]
        _hook_installed = True


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


@contextlib.contextmanager
def _watching() -> Iterator[list[_Response]]:
    seen: list[_Response] = []
    token = _seen.set(seen)
    try:
        yield seen
    finally:
        _seen.reset(token)


# ---------------------------------------------------------------------- failure kinds
@dataclass
class _Failure:
    """One failed attempt, classified."""

    kind: str  # "auth" | "stock" | "balance" | "not_found" | "transient" | "fatal"
    message: str
    retry_after: float | None = None
    maybe_done: bool = False  # the server may have acted (timeout, lost answer, 5xx): check before redoing a create


def _classify(exc: BaseException, seen: list[_Response]) -> _Failure:
    import requests
    from runpod import error as rp_error

    last = seen[-1] if seen else None
    status = last.status if last else None
    retry_after = last.retry_after if last else None
    retry_after = getattr(exc, "retry_after", None) or retry_after  # REST-era SDKs carry it on QueryError
    if isinstance(exc, rp_error.AuthenticationError):
        return _Failure("auth", "RunPod refused the API key")
    if isinstance(exc, rp_error.QueryError):
        message = str(exc.message or "")  # never exc.query: it holds env values
        lowered = message.lower()
        if any(m in lowered for m in _OUT_OF_STOCK_MARKERS):
            return _Failure("stock", message)
        if NOT_FOUND_TO_TERMINATE in lowered or lowered.strip() == "pod not found":
            return _Failure("not_found", message)
        if any(m in lowered for m in _BALANCE_MARKERS):
            return _Failure("balance", message)
        if status is not None and (status == 429 or status >= 500):
            return _Failure("transient", f"HTTP {status}: {message}", retry_after, maybe_done=status >= 500)
        if any(m in lowered for m in _TRANSIENT_MARKERS):
            return _Failure("transient", message, retry_after, maybe_done=True)
        return _Failure("fatal", message)
    if isinstance(exc, ValueError) and "No GPU found" in str(exc):
        return _Failure("stock", "RunPod does not offer this GPU type")
    if isinstance(exc, (requests.exceptions.Timeout, requests.exceptions.ConnectionError)):
        # A read timeout or a dropped connection may come after the server acted.
        return _Failure("transient", f"network error ({type(exc).__name__})", retry_after, maybe_done=True)
    if isinstance(exc, (KeyError, ValueError, TypeError)):
        # KeyError('data') / JSON decode error: the SDK got an answer without data (429, 5xx, an HTML error page).
        if status == 401:
            return _Failure("auth", "RunPod refused the API key")
        if status is None or status == 429 or status >= 500 or status == 408:
            what = f"HTTP {status}" if status is not None else "an answer without data"
            return _Failure("transient", f"RunPod answered {what}", retry_after, maybe_done=status != 429)
        return _Failure("fatal", f"RunPod answered HTTP {status} without data")
    if isinstance(exc, requests.exceptions.RequestException):
        return _Failure("transient", f"network error ({type(exc).__name__})", retry_after, maybe_done=True)
    raise exc


# ---------------------------------------------------------------------- the client
class RunPodClient:
    """Synchronous, thread-safe access to one RunPod account.

    ``api_key`` defaults to ``RUNPOD_API_KEY``, else the key saved by ``runpod
    config``. ``sleep`` is injectable so retry tests need not wait.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._api_key = api_key
        self.retry = retry or RetryPolicy()
        self._sleep = sleep

    # ------------------------------------------------------------------ plumbing
    def _sdk(self) -> Any:
        """The ``runpod`` module with our key set (it reads only its module attribute)."""
        import runpod

        key = self._api_key or os.environ.get("RUNPOD_API_KEY", "").strip() or (runpod.api_key or "").strip()
        if not key:
            raise MissingSecretError("RUNPOD_API_KEY", "to talk to RunPod (create one at " + KEYS_URL + ")")
        runpod.api_key = key
        _install_status_hook()
        return runpod

    def _call(self, what: str, fn: Callable[[Any], T], *, recover: Callable[[], T | None] | None = None) -> T:
        """Run ``fn(sdk)`` with retries; ``recover`` is asked, after a failure that may have acted, whether it did."""
        attempt = 0
        while True:
            sdk = self._sdk()
            with _watching() as seen:
                try:
                    result = fn(sdk)
                except UnslothNbError:
                    raise
                except Exception as exc:
                    failure = _classify(exc, seen)
                else:
                    # terminate_pod discards the answer: a 429 or 5xx there "succeeds" silently.
                    rejected = next((r for r in seen if r.status == 429 or r.status >= 500), None)
                    if rejected is None:
                        return result
                    failure = _Failure(
                        "transient", f"RunPod answered HTTP {rejected.status}", rejected.retry_after, rejected.status >= 500
                    )
            if failure.kind == "auth":
                raise RunPodAuthError(
                    f"RunPod refused the API key while trying to {what}. Check RUNPOD_API_KEY "
                    f"(create or copy a key at {KEYS_URL}); the key needs read and write access to pods."
                )
            if failure.kind == "stock":
                raise OutOfStockError(f"could not {what}: {failure.message}")
            if failure.kind == "balance":
                raise InsufficientBalanceError(
                    f"RunPod refused to {what}: {failure.message}. Add credit at {BILLING_URL} "
                    "(RunPod wants at least one hour of the pod's price in the account)."
                )
            if failure.kind == "not_found":
                raise PodGoneError(failure.message)
            if failure.kind == "fatal":
                raise RunPodApiError(f"RunPod could not {what}: {redact(failure.message)}")
            attempt += 1
            if recover is not None and failure.maybe_done:
                found = recover()
                if found is not None:
                    return found
            if attempt >= self.retry.attempts:
                raise RunPodApiError(
                    f"RunPod did not answer to {what} after {attempt} tries ({failure.message}); "
                    "check https://uptime.runpod.io and try again"
                )
            delay = self.retry.delay(attempt - 1, failure.retry_after)
            log.info("RunPod: %s failed (%s); retry %d in %.1f s", what, failure.message, attempt, delay)
            self._sleep(delay)

    @staticmethod
    def _query(query: str) -> Callable[[Any], dict[str, Any]]:
        """A raw GraphQL call through the SDK's own transport, for fields its helpers do not select."""

        def run(sdk: Any) -> dict[str, Any]:
            from runpod.api.graphql import run_graphql_query

            return dict(run_graphql_query(query)["data"])

        return run

    # ------------------------------------------------------------------ GPUs
    def gpu_types(self) -> list[GpuType]:
        """Every GPU type with its live on-demand price and stock in each cloud."""
        query = (
            "query GpuTypes { gpuTypes { id displayName memoryInGb securePrice communityPrice "
            "secure: lowestPrice(input: {gpuCount: 1, secureCloud: true}) { stockStatus } "
            "community: lowestPrice(input: {gpuCount: 1, secureCloud: false}) { stockStatus } } }"
        )
        data = self._call("list GPU types", self._query(query))
        return [GpuType.from_api(raw) for raw in data.get("gpuTypes") or []]

    def gpu_stock(self, gpu_type_id: str, cloud_type: str) -> tuple[str, float | None]:
        """(stockStatus or "None", on-demand $/h) of one GPU type in one cloud, live."""
        secure = {"SECURE": "true", "COMMUNITY": "false"}.get(cloud_type.upper(), "null")
        query = (
            f'query GpuType {{ gpuTypes(input: {{id: "{escape(gpu_type_id)}"}}) {{ id securePrice communityPrice '
            f"lowestPrice(input: {{gpuCount: 1, secureCloud: {secure}}}) {{ stockStatus uninterruptablePrice }} }} }}"
        )
        data = self._call(f"read the stock of {gpu_type_id}", self._query(query))
        types = data.get("gpuTypes") or []
        if not types:
            return "None", None
        lowest = types[0].get("lowestPrice") or {}
        price = lowest.get("uninterruptablePrice")
        if price is None:
            price = types[0].get("communityPrice" if cloud_type.upper() == "COMMUNITY" else "securePrice")
        return str(lowest.get("stockStatus") or "None"), (float(price) if price is not None else None)

    # ------------------------------------------------------------------ pods
    def list_pods(self) -> list[Pod]:
        """Every pod of the account, with live uptime (which the SDK's ``get_pods`` does not select)."""
        query = (
            "query myPods { myself { pods { id name desiredStatus costPerHr gpuCount imageName lastStatusChange "
            "machine { gpuDisplayName } runtime { uptimeInSeconds ports { privatePort type } } } } }"
        )
        data = self._call("list pods", self._query(query))
        return [Pod.from_api(raw) for raw in (data.get("myself") or {}).get("pods") or []]

    def get_pod(self, pod_id: str) -> Pod | None:
        """One pod (with its env, which holds secrets: keep it in memory only), or None when it is gone."""
        raw = self._call(f"look up pod {pod_id}", lambda sdk: sdk.get_pod(escape(pod_id)))
        return Pod.from_api(raw) if raw else None

    def pods_named(self, name: str) -> list[Pod]:
        """Pods whose name is exactly ``name`` (how a create whose answer was lost is found)."""
        raws = self._call("list pods", lambda sdk: sdk.get_pods())
        return [Pod.from_api(raw) for raw in raws or [] if raw.get("name") == name]

    @staticmethod
    def _create_kwargs(spec: PodSpec) -> dict[str, Any]:
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
        }
        if spec.network_volume_id:
            kwargs["network_volume_id"] = escape(spec.network_volume_id)
        kwargs["min_vcpu_count"] = spec.min_vcpu_count
        kwargs["min_memory_in_gb"] = spec.min_memory_gb
        if spec.min_cuda_version:
            from unsloth_nb.backends.runpod.pod_request import allowed_cuda_versions

            kwargs["allowed_cuda_versions"] = allowed_cuda_versions(spec.min_cuda_version)

        return kwargs

    def create_request(self, spec: PodSpec) -> tuple[str, str, str]:
        """(method, path, body) of the create call for ``spec``, exactly as sent (for dry runs and size checks)."""
        import inspect

        from runpod.api.ctl_commands import create_pod
        from runpod.api.mutations.pods import generate_pod_deployment_mutation

        defaults = {name: p.default for name, p in inspect.signature(create_pod).parameters.items() if p.default is not p.empty}
        arguments = {**defaults, **self._create_kwargs(spec)}
        if arguments.get("container_disk_in_gb") is None:
            arguments["container_disk_in_gb"] = 10
        wanted = inspect.signature(generate_pod_deployment_mutation).parameters
        query = generate_pod_deployment_mutation(**{k: v for k, v in arguments.items() if k in wanted})
        return "POST", "/graphql", json.dumps({"query": query})

    def create_pod(self, spec: PodSpec) -> Pod:
        """Rent a pod; exactly one even when an answer is lost (it is then found by name).

        Raises OutOfStockError when the GPU is not free in ``spec.cloud_type``.
        """
        kwargs = self._create_kwargs(spec)

        def create(sdk: Any) -> Pod:
            raw = sdk.create_pod(**kwargs)
            return Pod.from_api({**raw, "name": spec.name, "desiredStatus": "RUNNING", "gpuCount": spec.gpu_count})

        def recover() -> Pod | None:
            found = self.pods_named(spec.name)
            return found[0] if found else None

        return self._call(f"create pod {spec.name} on {spec.gpu_type_id} ({spec.cloud_type})", create, recover=recover)

    def stop_pod(self, pod_id: str) -> None:
        """Stop the container and its GPU billing; the pod (and its disk bill) stays."""
        try:
            self._call(f"stop pod {pod_id}", lambda sdk: sdk.stop_pod(escape(pod_id)))
        except PodGoneError:
            raise PodGoneError(f"there is no pod {pod_id} to stop") from None

    def terminate_pod(self, pod_id: str, *, timeout: float = 120.0, poll: float = 2.0, resend_every: float = 6.0) -> None:
        """Terminate ``pod_id`` and return once RunPod no longer lists it.

        The SDK's terminate discards RunPod's answer, so success is only believed
        once ``pod(id)`` is null; the terminate is re-sent every few polls while
        the pod is still there. "Pod not found to terminate" counts as done.
        Raises PodNotGoneError after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        next_send = 0.0
        while True:
            now = time.monotonic()
            if now >= next_send:
                try:
                    self._call(f"terminate pod {pod_id}", lambda sdk: sdk.terminate_pod(escape(pod_id)))
                except PodGoneError:
                    return
                except RunPodApiError as exc:
                    log.warning("terminate of pod %s failed: %s; checking whether it is gone", pod_id, exc)
                next_send = now + resend_every
            try:
                if self.get_pod(pod_id) is None:
                    return
            except RunPodApiError as exc:
                log.warning("could not confirm pod %s is gone: %s", pod_id, exc)
            if time.monotonic() >= deadline:
                raise PodNotGoneError(
                    f"pod {pod_id} is still listed {timeout:.0f} s after it was terminated; it may still be billing. "
                    f"Run `unsloth-nb runpod terminate {pod_id}` or remove it at https://www.runpod.io/console/pods"
                )
            self._sleep(poll)
