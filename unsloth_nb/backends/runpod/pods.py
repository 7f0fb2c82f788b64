"""A job's pod from rent to gone: choose a GPU, create, wait until the worker answers, terminate.

SkyPilot's provisioner shape, one function per step, every failure path ending in
teardown:

- :func:`live_offers` orders the plan's GPU candidates by what RunPod has free now
  (SECURE first; COMMUNITY only when the config allows it);
- :func:`provision` creates ``unsloth-nb-<job_id>`` on the first offer in stock,
  reports it (so the job folder names it before anything else can fail), and waits
  for the worker's health check through the proxy; past the readiness deadline the
  pod is terminated and the next offer tried;
- :func:`find_reusable_pod` picks up an idle worker of ours left by a job that is
  over (a crashed client), instead of renting another GPU;
- :func:`orphaned_pods` lists our pods that no live job on this machine owns
  (``runpod cleanup``).

Readiness is the worker's own ``/health`` through the HTTP proxy, never
``desiredStatus``, which says RUNNING minutes before the image is even pulled.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from unsloth_nb.backends.runpod.api_types import OutOfStockError, Pod, PodSpec, RunPodApiError
from unsloth_nb.errors import BackendError, JobCancelledError
from unsloth_nb.planning.gpu_catalog import GpuOption
from unsloth_nb.worker.protocol import IDLE, Health

if TYPE_CHECKING:
    from unsloth_nb.backends.runpod.client import RunPodClient  # a parameter's type: the client imports the transports

log = logging.getLogger(__name__)

POD_PREFIX = "unsloth-nb-"
WORKER_PORT = 8000
PROXY_TEMPLATE_ENV = "UNSLOTH_NB_RUNPOD_PROXY_TEMPLATE"
DEFAULT_PROXY_TEMPLATE = "https://{pod_id}-{port}.proxy.runpod.net"


def pod_name(job_id: str) -> str:
    return f"{POD_PREFIX}{job_id}"


def job_id_of(name: str) -> str | None:
    """The job id in one of our pod names, or None for someone else's pod."""
    if not name.startswith(POD_PREFIX):
        return None
    return name[len(POD_PREFIX) :] or None


def proxy_url(pod_id: str, port: int = WORKER_PORT) -> str:
    """The public URL of a pod's HTTP port; ``UNSLOTH_NB_RUNPOD_PROXY_TEMPLATE`` moves it (the emulator)."""
    template = os.environ.get(PROXY_TEMPLATE_ENV, "").strip() or DEFAULT_PROXY_TEMPLATE
    return template.format(pod_id=pod_id, port=port)


# ---------------------------------------------------------------------- choosing a GPU
@dataclass(frozen=True)
class Offer:
    """One GPU type in one cloud, at the price and stock RunPod shows now."""

    gpu: GpuOption
    cloud_type: str
    usd_per_hour: float | None
    stock: str | None  # "High" | "Medium" | "Low" | "None" | None (unknown)

    @property
    def in_stock(self) -> bool:
        return (self.stock or "").lower() != "none"

    def describe(self) -> str:
        price = f"${self.usd_per_hour:.2f}/h" if self.usd_per_hour is not None else "price unknown"
        return f"{self.gpu.display_name} ({self.cloud_type}, {price}, stock {self.stock or 'unknown'})"


def clouds_to_try(cloud_type: str, allow_community: bool) -> list[str]:
    cloud = cloud_type.upper()
    if cloud == "SECURE" and allow_community:
        return ["SECURE", "COMMUNITY"]
    return [cloud]


def live_offers(
    client: RunPodClient, candidates: Sequence[GpuOption], cloud_type: str = "SECURE", allow_community: bool = False
) -> list[Offer]:
    """The plan's candidates, in plan order, per cloud, with live price and stock.

    Offers in stock come first, then those RunPod says are out of stock (stock
    figures lag, so they are still worth one try each). A GPU not offered in a
    cloud is left out of that cloud, and one the live listing does not name at all is
    left out. When the live listing fails, the plan's own figures are used with unknown stock.
    """
    try:
        live = {gpu.id: gpu for gpu in client.gpu_types()}
    except RunPodApiError as exc:
        log.warning("live GPU prices unavailable (%s); using the plan's", exc)
        live = {}
    offers: list[Offer] = []
    for cloud in clouds_to_try(cloud_type, allow_community):
        for candidate in candidates:
            current = live.get(candidate.gpu_type_id)
            if live and current is None:
                continue  # RunPod does not list it (now): creating one could only fail
            option = current.as_option(cloud) if current is not None else candidate
            price = option.usd_per_hour(cloud)
            if current is not None and price is None:
                continue
            offers.append(Offer(option, cloud, price, current.stock(cloud) if current is not None else None))
    return [o for o in offers if o.in_stock] + [o for o in offers if not o.in_stock]


# ---------------------------------------------------------------------- a rented pod
@dataclass
class RentedPod:
    """A pod this job created (or reused), from the moment RunPod answered."""

    pod: Pod
    offer: Offer
    usd_per_hour: float
    created_at: float  # time.time()
    created_monotonic: float
    reused: bool = False

    @property
    def id(self) -> str:
        return self.pod.id

    @property
    def url(self) -> str:
        return proxy_url(self.pod.id)

    def seconds(self) -> float:
        return time.monotonic() - self.created_monotonic

    def usd_so_far(self) -> float:
        return self.usd_per_hour * self.seconds() / 3600.0


class ReadinessTimeout(BackendError):
    """The worker did not answer its health check before the readiness deadline."""


class PodLostError(BackendError):
    """The pod disappeared or stopped on its own (it ended itself, or RunPod evicted it)."""


def provision(
    client: RunPodClient,
    spec: PodSpec,
    offers: Sequence[Offer],
    *,
    is_ready: Callable[[RentedPod], bool],
    on_created: Callable[[RentedPod], None],
    on_abandoned: Callable[[RentedPod, str], None],
    should_stop: Callable[[], bool],
    ready_timeout: float,
    poll: float = 2.0,
    say: Callable[[str], None] = lambda message: None,
) -> RentedPod:
    """Rent the first offer that has stock and whose worker comes up within ``ready_timeout``.

    ``on_created`` runs as soon as a pod exists (record it before anything else);
    ``on_abandoned`` after one that was not ready in time has been terminated.
    Raises OutOfStockError when no offer could be rented, JobCancelledError when
    ``should_stop`` turns true (after terminating what was rented).
    """
    if not offers:
        raise OutOfStockError("no GPU type fits this job in the allowed clouds; add GPUs with runpod.gpus or --allow-community")
    refused: list[str] = []
    for offer in offers:
        if should_stop():
            raise JobCancelledError("stopped before a pod was ready")
        attempt = PodSpec(**{**spec.__dict__, "gpu_type_id": offer.gpu.gpu_type_id, "cloud_type": offer.cloud_type})
        if spec.interruptible:
            try:
                attempt.bid_per_gpu = client.spot_bid(offer.gpu.gpu_type_id, offer.cloud_type)
            except RunPodApiError as exc:
                attempt.bid_per_gpu = None
                say(f"{offer.describe()}: spot price unavailable ({exc})")
            if attempt.bid_per_gpu is None:
                refused.append(f"{offer.gpu.display_name} ({offer.cloud_type}): no spot capacity")
                say(f"{offer.describe()}: no spot capacity, trying the next GPU")
                continue
        try:
            pod = client.create_pod(attempt)
        except OutOfStockError:
            refused.append(f"{offer.gpu.display_name} ({offer.cloud_type}): no stock")
            say(f"{offer.describe()}: no stock, trying the next GPU")
            continue
        rented = _rented(client, pod, offer)
        on_created(rented)
        kind = f"spot, bid ${attempt.bid_per_gpu:.2f}/GPU/h, " if attempt.interruptible and attempt.bid_per_gpu else ""
        say(f"pod {pod.id} created on {offer.gpu.display_name} ({kind}{offer.cloud_type}, ${rented.usd_per_hour:.2f}/h)")
        try:
            wait_ready(client, rented, is_ready, ready_timeout, should_stop, poll)
        except ReadinessTimeout as exc:
            refused.append(f"{offer.gpu.display_name} ({offer.cloud_type}): not ready in {ready_timeout:.0f} s")
            say(f"{exc}; terminating it and trying the next GPU")
            client.terminate_pod(pod.id)
            on_abandoned(rented, str(exc))
            continue
        # Any other failure propagates: the caller owns the pod from on_created on and terminates it.
        return rented
    raise OutOfStockError("no pod could be started: " + "; ".join(refused))


def _rented(client: RunPodClient, pod: Pod, offer: Offer) -> RentedPod:
    """Wrap a fresh pod, reading its real $/h (the create answer does not carry it)."""
    price = offer.usd_per_hour or 0.0
    try:
        current = client.get_pod(pod.id)
    except RunPodApiError:
        current = None
    if current is not None:
        pod = current
        price = current.cost_per_hr or price
    return RentedPod(pod, offer, float(price), time.time(), time.monotonic())


#: The first readiness polls come this soon, then twice as far apart each time, up to ``poll``: a pod that is
#: up at once (a restarted container, a small image, the emulator) is used within a second, not after a full
#: poll interval, and a slow boot costs only a few more health checks.
FIRST_READY_POLL_S = 0.25


def wait_ready(
    client: RunPodClient,
    rented: RentedPod,
    is_ready: Callable[[RentedPod], bool],
    timeout: float,
    should_stop: Callable[[], bool],
    poll: float = 2.0,
) -> None:
    """Poll the worker's health until it answers; check now and then that the pod still exists.

    Raises ReadinessTimeout after ``timeout`` seconds, PodLostError when the pod is
    gone or no longer RUNNING (the start-up script ends its pod when it fails), and
    JobCancelledError when ``should_stop`` turns true.
    """
    deadline = time.monotonic() + timeout
    next_pod_check = time.monotonic() + max(poll * 5, 10.0)
    pause = min(poll, FIRST_READY_POLL_S)
    while True:
        if should_stop():
            raise JobCancelledError("stopped before the pod was ready")
        if is_ready(rented):
            return
        now = time.monotonic()
        if now >= deadline:
            raise ReadinessTimeout(f"pod {rented.id} did not answer its health check within {timeout:.0f} s")
        if now >= next_pod_check:
            next_pod_check = now + max(poll * 5, 10.0)
            check_alive(client, rented.id)
        time.sleep(min(pause, max(0.05, deadline - now)))
        pause = min(poll, pause * 2)


def check_alive(client: RunPodClient, pod_id: str) -> None:
    """Raise PodLostError when ``pod_id`` is gone or not RUNNING; API trouble is not a verdict."""
    try:
        pod = client.get_pod(pod_id)
    except RunPodApiError:
        return
    if pod is None:
        raise PodLostError(f"pod {pod_id} is gone: RunPod no longer lists it (it was removed, or it ended itself)")
    if not pod.running:
        raise PodLostError(f"pod {pod_id} is {pod.desired_status}: {pod.last_status_change or 'stopped outside this job'}")


# ---------------------------------------------------------------------- our pods
def our_pods(client: RunPodClient) -> list[Pod]:
    return [pod for pod in client.list_pods() if pod.name.startswith(POD_PREFIX)]


def live_job_pods() -> dict[str, str]:
    """pod id or pod name -> job id, for jobs on this machine that are still running."""
    from unsloth_nb.jobrun.store import list_jobs

    owned: dict[str, str] = {}
    for record in list_jobs():
        if record.terminal or not record.owner_alive():
            continue
        owned[pod_name(record.id)] = record.id
        if record.pod_id:
            owned[record.pod_id] = record.id
    return owned


def orphaned_pods(client: RunPodClient) -> list[Pod]:
    """Our pods that no live job on this machine owns: what ``runpod cleanup`` terminates."""
    owned = live_job_pods()
    return [pod for pod in our_pods(client) if pod.id not in owned and pod.name not in owned]


def find_reusable_pod(
    client: RunPodClient,
    offers: Sequence[Offer],
    health: Callable[[Pod, str], Health | None],
) -> tuple[Pod, Offer, str] | None:
    """An idle worker of ours on a GPU we would rent anyway, whose job on this machine is over.

    Only pods whose job folder is here and ended (or whose process died) qualify,
    so a pod another machine is still setting up is never taken. The token comes
    from the pod's own env (RunPod returns it), and the worker must report
    ``idle``: a worker runs one job, so one that has a job is not reusable.
    Returns (pod, matching offer, token) or None.
    """
    from unsloth_nb.jobrun.store import JobFolder
    from unsloth_nb.worker.settings import TOKEN_ENV

    owned = live_job_pods()
    wanted = [offer for offer in offers if offer.in_stock or offer.stock is None]
    by_gpu = {offer.gpu.display_name: offer for offer in wanted} | {offer.gpu.gpu_type_id: offer for offer in wanted}
    for listed in our_pods(client):
        job_id = job_id_of(listed.name)
        if not listed.running or not listed.runtime_up or listed.id in owned or listed.name in owned or job_id is None:
            continue
        offer = by_gpu.get(listed.gpu_type_id or "") or by_gpu.get(listed.gpu_display_name or "")
        if offer is None:
            continue
        try:
            record = JobFolder.open(job_id).load_record()
        except Exception:
            continue  # no record here: maybe another machine's pod
        if not (record.terminal or not record.owner_alive()):
            continue
        pod = client.get_pod(listed.id)
        token = (pod.env.get(TOKEN_ENV) if pod is not None else None) or ""
        if pod is None or not token:
            continue
        try:
            answer = health(pod, token)
        except BackendError:
            continue
        if answer is not None and answer.state == IDLE:
            return pod, offer, token
    return None
