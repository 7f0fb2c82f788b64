"""The one door to RunPod's pod API, whichever of RunPod's APIs carries it.

RunPod serves its pods through two APIs at present: REST v2 (``/v2/pods``, the
default here) and GraphQL (``/graphql``, retiring in early 2027; REST v1 is already
gone). :class:`RunPodClient` is the interface the pods, the backend, the CLI and
reattach use; the wire is one of two transports behind it, chosen by
``UNSLOTH_NB_RUNPOD_API`` (``rest``, the default, or ``graphql``):

- :mod:`.rest_api`: REST v2 on ``requests``, per RunPod's OpenAPI document;
- :mod:`.graphql_api`: the ``runpod`` 1.12 SDK (GraphQL only), made safe to depend on.

Each transport makes one attempt per call and classifies what went wrong; this
module adds what a job that pays by the second needs, the same for both:

- the key comes from ``RUNPOD_API_KEY`` (else the SDK's own config file);
- network errors, 5xx, 429 (honouring ``Retry-After``) and RunPod's "try again"
  answers are retried with capped exponential backoff and full jitter;
- a create is never retried blindly: after any failure that may have created the
  pod, the pod is looked up by name first;
- a terminate returns only once the pod is gone, re-sent while it is not;
- failures become :class:`~unsloth_nb.errors.UnslothNbError` subclasses whose
  message says what to do (capacity, a rule of the API, balance, the key), and
  nothing that carries env values (our per-job token among them) is logged or shown.

Neither ``runpod`` nor ``requests`` is imported before the first API call.
"""

from __future__ import annotations

import json
import logging
import os
import random
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from unsloth_nb.credentials import redact
from unsloth_nb.errors import BackendError, ConfigError, MissingSecretError, UnslothNbError
from unsloth_nb.planning.gpu_catalog import GpuOption

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Which RunPod API carries the calls: ``rest`` (REST v2, the default) or ``graphql``.
API_ENV = "UNSLOTH_NB_RUNPOD_API"
APIS = ("rest", "graphql")
DEFAULT_API = "rest"
#: The base both APIs hang off; the ``runpod`` SDK reads the same variable (tests point it at the emulator).
BASE_URL_ENV = "RUNPOD_API_BASE_URL"
DEFAULT_BASE_URL = "https://api.runpod.io"

#: RunPod's words for "the GPU you asked for is not free" (create and resume).
OUT_OF_STOCK_MARKERS = (
    "no longer any instances available",
    "does not have the resources to deploy",
    "not enough free gpus",
    "no gpu found with the specified id",
    "no instances available",
)
#: RunPod's words for "try again": a generic failure that is usually transient.
TRANSIENT_MARKERS = ("something went wrong", "please try again", "internal server error", "timed out", "timeout")
#: Words of a billing refusal (the exact text is not documented; these cover what users report).
BALANCE_MARKERS = ("balance", "insufficient funds", "not enough credit", "add credit", "spend limit")
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


class RunPodRuleError(RunPodApiError):
    """RunPod refused a request that breaks one of its rules (HTTP 400 that is not about capacity)."""

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
    gpu_type_id: str | None = None

    @property
    def running(self) -> bool:
        """Alive and meant to run: REST v2's PROVISIONING and STARTING are on the way to RUNNING."""
        return self.desired_status in ("RUNNING", "PROVISIONING", "STARTING")

    @property
    def gpu_label(self) -> str:
        """The GPU as a listing shows it (REST v2 reports the type id, GraphQL a display name)."""
        return self.gpu_display_name or self.gpu_type_id or "-"

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
    secure_spot_usd_per_hour: float | None = None  # spot (interruptible) floor; only GraphQL reports it
    community_spot_usd_per_hour: float | None = None

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
            secure_spot_usd_per_hour=price("secureSpotPrice"),
            community_spot_usd_per_hour=price("communitySpotPrice"),
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
            spot_usd_per_hour=self.spot_usd_per_hour(cloud_type),
        )

    def spot_usd_per_hour(self, cloud_type: str) -> float | None:
        """The spot floor in one cloud (``ALL``: the cheaper), when known."""
        cloud = cloud_type.upper()
        if cloud == "COMMUNITY":
            return self.community_spot_usd_per_hour
        if cloud == "SECURE":
            return self.secure_spot_usd_per_hour
        prices = [p for p in (self.secure_spot_usd_per_hour, self.community_spot_usd_per_hour) if p is not None]
        return min(prices) if prices else None


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
    #: The host's driver must support at least this CUDA (e.g. "12.8", the image's); None: any host.
    min_cuda_version: str | None = None
    #: Exactly these host CUDA versions (exclusive with ``min_cuda_version`` in REST v2).
    allowed_cuda_versions: tuple[str, ...] = ()
    #: The whole pod's vCPUs and RAM at least (REST v2 asks per GPU: the transport divides).
    min_vcpu_count: int = 1
    min_memory_gb: int = 1
    #: Data centres to place the pod in (a network volume pins its own); empty: anywhere.
    data_center_ids: tuple[str, ...] = ()
    #: Spot (interruptible) capacity at ``bid_per_gpu`` $/GPU/h. REST v2 has no spot pods: these go through GraphQL.
    interruptible: bool = False
    bid_per_gpu: float | None = None


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


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (a number or an HTTP date), or None."""
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


def escape(value: str) -> str:
    """``value`` as the inside of a GraphQL string literal.

    The SDK writes ``"<value>"`` into the query; JSON's string escapes are valid
    GraphQL escapes, so quotes, backslashes, newlines and non-ASCII survive.
    """
    return json.dumps(str(value))[1:-1]


def chosen_api(env: Mapping[str, str] | None = None) -> str:
    """``UNSLOTH_NB_RUNPOD_API`` (``rest`` or ``graphql``), ``rest`` when unset."""
    value = (env if env is not None else os.environ).get(API_ENV, "").strip().lower() or DEFAULT_API
    if value not in APIS:
        raise ConfigError(
            API_ENV,
            f"{value!r} is not a RunPod API unsloth-nb speaks; set it to 'rest' (REST v2, the default) "
            "or 'graphql' (until RunPod retires it), or unset it",
        )
    return value


def base_url(env: Mapping[str, str] | None = None) -> str:
    """Where RunPod's API lives: ``RUNPOD_API_BASE_URL`` (the emulator in tests), else api.runpod.io."""
    return ((env if env is not None else os.environ).get(BASE_URL_ENV, "").strip() or DEFAULT_BASE_URL).rstrip("/")


def api_key(explicit: str | None = None) -> str:
    """The account key: ``explicit``, else ``RUNPOD_API_KEY``, else ``runpod.api_key`` / the ``runpod config`` file."""
    key = (explicit or os.environ.get("RUNPOD_API_KEY", "")).strip() or _saved_key()
    if not key:
        raise MissingSecretError("RUNPOD_API_KEY", "to talk to RunPod (create one at " + KEYS_URL + ")")
    return key


def _saved_key() -> str:
    """The key ``runpod config`` saved in ``~/.runpod/config.toml`` (profile ``default``), if any."""
    if "runpod" in sys.modules:  # the SDK read the file at import (or someone set runpod.api_key since)
        key = str(getattr(sys.modules["runpod"], "api_key", "") or "").strip()
        if key:
            return key
    path = os.path.join(os.path.expanduser("~"), ".runpod", "config.toml")
    if not os.path.isfile(path):
        return ""
    if sys.version_info < (3, 11):  # Python 3.10 has no tomllib
        return ""
    else:
        import tomllib

        try:
            with open(path, "rb") as handle:
                return str(tomllib.load(handle).get("default", {}).get("api_key") or "").strip()
        except (OSError, ValueError):
            return ""


# ---------------------------------------------------------------------- one attempt, classified
@dataclass
class Failure:
    """One failed attempt, classified by the transport."""

    kind: str  # "auth" | "stock" | "balance" | "not_found" | "transient" | "rule" | "fatal"
    message: str
    retry_after: float | None = None
    maybe_done: bool = False  # the server may have acted (timeout, lost answer, 5xx): check before redoing a create
    status: int | None = None
    no_answer: bool = False  # no HTTP answer at all (connection refused or dropped, a timeout): the API is unreachable


class AttemptFailed(Exception):
    """Raised by a transport for one failed attempt; the client decides whether to retry."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


class PodApi(Protocol):
    """One RunPod API, one attempt per call; every failure is raised as :class:`AttemptFailed`."""

    name: str

    def gpu_types(self) -> list[GpuType]: ...

    def gpu_stock(self, gpu_type_id: str, cloud_type: str) -> tuple[str, float | None]: ...

    def list_pods(self) -> list[Pod]: ...

    def get_pod(self, pod_id: str) -> Pod | None: ...

    def create_request(self, spec: PodSpec) -> tuple[str, str, str]: ...

    def create_pod(self, spec: PodSpec) -> Pod: ...

    def stop_pod(self, pod_id: str) -> None: ...

    def terminate_pod(self, pod_id: str) -> None: ...


def open_api(name: str, key: str | None) -> PodApi:
    """The transport called ``name`` (see :data:`APIS`)."""
    if name == "graphql":
        from unsloth_nb.backends.runpod.graphql_api import GraphqlApi

        return GraphqlApi(key)
    from unsloth_nb.backends.runpod.rest_api import RestApi

    return RestApi(key)


# ---------------------------------------------------------------------- the client
class RunPodClient:
    """Synchronous, thread-safe access to one RunPod account.

    ``api_key`` defaults to ``RUNPOD_API_KEY``, else the key saved by ``runpod
    config``; ``api`` to ``UNSLOTH_NB_RUNPOD_API`` (``rest``). ``sleep`` is
    injectable so retry tests need not wait.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        api: str | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._api_key = api_key
        self.api_name = chosen_api({API_ENV: api} if api else None)
        self._api: PodApi | None = None
        self._graphql: PodApi | None = None
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        #: Since when (monotonic) no call got any HTTP answer; None while RunPod answers (even with an error).
        self.unreachable_since: float | None = None

    # ------------------------------------------------------------------ plumbing
    @property
    def api(self) -> PodApi:
        if self._api is None:
            self._api = open_api(self.api_name, self._api_key)
        return self._api

    @property
    def graphql(self) -> Any:
        """GraphQL, for what REST v2 lacks (spot pods), whichever API carries the rest."""
        if self.api_name == "graphql":
            return self.api
        if self._graphql is None:
            self._graphql = open_api("graphql", self._api_key)
        return self._graphql

    def _call(self, what: str, fn: Callable[[PodApi], T], *, recover: Callable[[], T | None] | None = None) -> T:
        """Run ``fn(api)`` with retries; ``recover`` is asked, after a failure that may have acted, whether it did."""
        attempt = 0
        while True:
            try:
                answer = fn(self.api)
                self.unreachable_since = None
                return answer
            except AttemptFailed as exc:
                failure = exc.failure
            if not failure.no_answer:
                self.unreachable_since = None  # RunPod answered, if only with an error
            elif self.unreachable_since is None:
                self.unreachable_since = time.monotonic()
            self._raise_for(what, failure)
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
    def _raise_for(what: str, failure: Failure) -> None:
        """Raise our own error for a failure that retrying cannot fix; return for a transient one."""
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
        if failure.kind == "rule":
            raise RunPodRuleError(
                f"RunPod refused to {what} because the request breaks one of its rules: {redact(failure.message)}. "
                "This is not a capacity problem: change the runpod setting it names (image, GPU, CUDA version, "
                "volume, data centre) and start again"
            )
        if failure.kind == "fatal":
            raise RunPodApiError(f"RunPod could not {what}: {redact(failure.message)}")

    # ------------------------------------------------------------------ GPUs
    def gpu_types(self) -> list[GpuType]:
        """Every GPU type with its live on-demand price and stock in each cloud."""
        return self._call("list GPU types", lambda api: api.gpu_types())

    def gpu_stock(self, gpu_type_id: str, cloud_type: str) -> tuple[str, float | None]:
        """(stock "High"/"Medium"/"Low"/"None", on-demand $/h) of one GPU type in one cloud, live."""
        return self._call(f"read the stock of {gpu_type_id}", lambda api: api.gpu_stock(gpu_type_id, cloud_type))

    # ------------------------------------------------------------------ pods
    def list_pods(self) -> list[Pod]:
        """Every pod of the account, with live uptime."""
        return self._call("list pods", lambda api: api.list_pods())

    def get_pod(self, pod_id: str) -> Pod | None:
        """One pod (with its env, which holds secrets: keep it in memory only), or None when it is gone.

        Gone is whatever RunPod says for a pod that does not exist: null, a 404, or an
        error that names the pod (RunPod does not document which one a terminated id gets).
        """

        def lookup(api: PodApi) -> Pod | None:
            try:
                return api.get_pod(pod_id)
            except AttemptFailed as exc:
                failure = exc.failure
                if failure.kind == "not_found" or (failure.kind != "transient" and names_missing_pod(failure.message, pod_id)):
                    return None
                raise

        return self._call(f"look up pod {pod_id}", lookup)

    def pods_named(self, name: str) -> list[Pod]:
        """Pods whose name is exactly ``name`` (how a create whose answer was lost is found)."""
        return [pod for pod in self.list_pods() if pod.name == name]

    def create_request(self, spec: PodSpec) -> tuple[str, str, str]:
        """(method, path, body) of the create call for ``spec`` as the active API sends it, byte for byte.

        For ``--dry-run`` and the create-size check; sends nothing and needs no key. A spot
        pod is rendered as GraphQL, which carries it whatever ``UNSLOTH_NB_RUNPOD_API`` says.
        """
        api = self.graphql if spec.interruptible else self.api
        return api.create_request(spec)

    def create_pod(self, spec: PodSpec) -> Pod:
        """Rent a pod; exactly one even when an answer is lost (it is then found by name).

        Raises OutOfStockError when the GPU is not free in ``spec.cloud_type``.
        """

        def recover() -> Pod | None:
            found = self.pods_named(spec.name)
            return found[0] if found else None

        what = f"create {'spot ' if spec.interruptible else ''}pod {spec.name} on {spec.gpu_type_id} ({spec.cloud_type})"
        if spec.interruptible:  # REST v2 has no spot pods; GraphQL's podRentInterruptable does, until it retires
            return self._call(what, lambda api: self.graphql.create_pod(spec), recover=recover)
        return self._call(what, lambda api: api.create_pod(spec), recover=recover)

    def spot_bid(self, gpu_type_id: str, cloud_type: str) -> float | None:
        """The lowest spot bid RunPod takes for one GPU of this type now ($/GPU/h), or None when it offers no spot.

        Read from GraphQL whatever ``UNSLOTH_NB_RUNPOD_API`` says: REST v2 has no spot prices.
        """
        return self._call(f"read the spot price of {gpu_type_id}", lambda api: self.graphql.spot_bid(gpu_type_id, cloud_type))

    def stop_pod(self, pod_id: str) -> None:
        """Stop the container and its GPU billing; the pod (and its disk bill) stays."""
        try:
            self._call(f"stop pod {pod_id}", lambda api: api.stop_pod(pod_id))
        except PodGoneError:
            raise PodGoneError(f"there is no pod {pod_id} to stop") from None

    def unreachable_for(self) -> float | None:
        """Seconds since the RunPod API last gave any answer, when its last call got none; else None."""
        since = self.unreachable_since
        return None if since is None else time.monotonic() - since

    def terminate_pod(
        self,
        pod_id: str,
        *,
        timeout: float = 120.0,
        poll: float = 2.0,
        resend_every: float = 6.0,
        on_wait: Callable[[], None] | None = None,
    ) -> None:
        """Terminate ``pod_id`` and return once RunPod no longer lists it.

        A terminate can "succeed" without effect (the SDK discards RunPod's answer; a
        host can miss the order), so success is only believed once the pod's lookup
        says it is gone; the terminate is re-sent every few polls while it is not.
        "Not found" counts as done. Raises PodNotGoneError after ``timeout`` seconds; when no
        call was answered, it says the API was unreachable, never that the pod is still listed.
        ``on_wait`` is called after each look-up that did not confirm the end (to say why).
        """
        deadline = time.monotonic() + timeout
        next_send = 0.0
        while True:
            now = time.monotonic()
            if now >= next_send:
                try:
                    self._call(f"terminate pod {pod_id}", lambda api: api.terminate_pod(pod_id))
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
            if on_wait is not None:
                on_wait()
            if time.monotonic() >= deadline:
                unreachable = self.unreachable_for()
                if unreachable is not None:
                    raise PodNotGoneError(
                        f"could not confirm that pod {pod_id} ended: the RunPod API was unreachable for {unreachable:.0f} s; "
                        "the pod's state is unknown and it may still be billing. Run `unsloth-nb runpod cleanup` once "
                        "https://uptime.runpod.io shows the API up, or check https://www.runpod.io/console/pods"
                    )
                raise PodNotGoneError(
                    f"pod {pod_id} is still listed {timeout:.0f} s after it was terminated; it may still be billing. "
                    f"Run `unsloth-nb runpod terminate {pod_id}` or remove it at https://www.runpod.io/console/pods"
                )
            self._sleep(poll)


_MISSING_WORDS = ("not found", "does not exist", "doesn't exist", "no pod", "not exist", "terminated", "unknown pod")


def names_missing_pod(message: str, pod_id: str) -> bool:
    """Whether an error message says that this very pod does not exist (how some lookups of a gone pod answer)."""
    lowered = message.lower()
    return bool(pod_id) and pod_id.lower() in lowered and any(word in lowered for word in _MISSING_WORDS)
