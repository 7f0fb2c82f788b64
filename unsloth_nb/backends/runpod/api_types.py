"""What the RunPod client and both of its transports speak: the account's errors, a pod, a GPU type, what a pod
is created with, the retry policy, the key and base URL, and the protocol a transport implements.

A module of its own so that the transports (:mod:`.rest_api`, :mod:`.graphql_api`) import these without
importing :mod:`.client`, which picks one of them.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from unsloth_nb.errors import BackendError, ConfigError, MissingSecretError, UnslothNbError
from unsloth_nb.planning.gpu_catalog import GpuOption

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
