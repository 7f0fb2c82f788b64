"""A pod that ends itself: the last line of defence against a pod billing with nobody watching.

RunPod restarts a container whose command exits, and server-side auto-terminate is
not enforced, so the worker removes its own pod when the client says it is done,
when nobody has asked anything for a long while after the job ended, and when it
is about to die of a fatal error. It sends REST v2's ``DELETE
{RUNPOD_API_BASE_URL}/v2/pods/{RUNPOD_POD_ID}`` (204, or 404 when the pod is
already gone) with ``Authorization: Bearer <key>``, the pod-scoped
``RUNPOD_API_KEY`` RunPod injects into every pod, using the standard library only.

REST v1 is gone (2026-11-15) and GraphQL retires in early 2027. While GraphQL is
still served, a pod whose REST calls all failed tries GraphQL's ``podTerminate``
once more in each round.

It never gives up (:func:`terminate_until_gone`): a pod that could not end itself
bills at its full GPU price until a person notices, so the worker keeps trying,
with a backoff capped at ``UNSLOTH_NB_WORKER_TERMINATE_RETRY_MAX`` seconds (60 by
default), for as long as it runs, and says so on every failure. Exiting instead
would not stop the bill: RunPod restarts a container whose command ends, and a
running or restarting pod bills the GPU; only a stopped pod bills less (its volume
disk), and only the API can stop it.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

logger = logging.getLogger("unsloth_nb.worker")

DEFAULT_API_BASE_URL = "https://api.runpod.io"
REQUEST_TIMEOUT_S = 30.0
#: Pauses between attempts; a failed terminate means a pod that keeps billing, so it retries.
RETRY_DELAYS_S = (1.0, 2.0, 4.0, 8.0)
#: The longest pause between two rounds of :func:`terminate_until_gone` (env overrides, for tests and impatient users).
RETRY_MAX_ENV = "UNSLOTH_NB_WORKER_TERMINATE_RETRY_MAX"
DEFAULT_RETRY_MAX_S = 60.0


@dataclass(frozen=True)
class PodIdentity:
    """Who this pod is and how to reach the API; read once, so the key can leave os.environ."""

    pod_id: str | None
    api_key: str | None = field(default=None, repr=False)
    api_base_url: str = DEFAULT_API_BASE_URL

    @classmethod
    def from_environment(cls) -> PodIdentity:
        return cls(
            pod_id=os.environ.get("RUNPOD_POD_ID", "").strip() or None,
            api_key=os.environ.get("RUNPOD_API_KEY", "").strip() or None,
            api_base_url=os.environ.get("RUNPOD_API_BASE_URL", "").strip() or DEFAULT_API_BASE_URL,
        )

    @property
    def on_runpod(self) -> bool:
        return self.pod_id is not None


def terminate_this_pod(identity: PodIdentity | None = None, retry_delays: tuple[float, ...] = RETRY_DELAYS_S) -> bool:
    """Ask RunPod to terminate this pod; True once it is gone (or was already).

    Outside RunPod (no ``RUNPOD_POD_ID``) there is nothing to terminate and it returns
    False at once. Network errors, 5xx and 429 are retried; a 401 is not.
    """
    identity = identity or PodIdentity.from_environment()
    if not identity.on_runpod:
        logger.info("not running on a RunPod pod (RUNPOD_POD_ID unset); nothing to terminate")
        return False
    if not identity.api_key:
        logger.error("cannot terminate pod %s: RUNPOD_API_KEY is not set", identity.pod_id)
        return False
    for attempt, delay in enumerate((*retry_delays, None), start=1):
        outcome = _send_rest_terminate(identity)
        if outcome is not None:
            return outcome
        if delay is None:
            break
        logger.warning("terminating pod %s failed (attempt %d); retrying in %.0f s", identity.pod_id, attempt, delay)
        time.sleep(delay)
    if _send_graphql_terminate(identity):  # while RunPod still serves GraphQL
        return True
    logger.error("could not terminate pod %s this round; it may still be billing", identity.pod_id)
    return False


def retry_max_seconds(environ: dict[str, str] | None = None) -> float:
    """The cap on the pause between termination rounds: the env value when it is a positive number, else 60 s."""
    raw = (os.environ if environ is None else environ).get(RETRY_MAX_ENV, "").strip()
    try:
        value = float(raw) if raw else DEFAULT_RETRY_MAX_S
    except ValueError:
        return DEFAULT_RETRY_MAX_S
    return value if value > 0 else DEFAULT_RETRY_MAX_S


def terminate_until_gone(
    identity: PodIdentity,
    on_failure: Callable[[int, float], None] | None = None,
    *,
    max_delay: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Terminate this pod, retrying for as long as this process lives; True once RunPod said it is going.

    Each failed round (REST v2 with its own short retries, then GraphQL) calls
    ``on_failure(attempt, next_delay)`` so the failure lands in the job's events
    and the log; the pause doubles from 1 s up to ``max_delay``. A rejected key is
    retried too: giving up would leave a pod billing silently, and a key RunPod
    refused a moment ago may be accepted again (an outage answering 401 has been
    seen). Returns False at once only outside RunPod, where there is nothing to end.
    """
    if not identity.on_runpod:
        return terminate_this_pod(identity, retry_delays=())
    cap = max_delay if max_delay is not None else retry_max_seconds()
    delay, attempt = 1.0, 0
    while True:
        attempt += 1
        if terminate_this_pod(identity, retry_delays=(1.0, 2.0)):
            return True
        wait = min(delay, cap)
        if on_failure is not None:
            try:
                on_failure(attempt, wait)
            except Exception:  # reporting must never stop the retrying
                logger.exception("reporting a failed terminate failed")
        sleep(wait)
        delay = min(delay * 2, cap)


def _headers(identity: PodIdentity) -> dict[str, str]:
    from unsloth_nb import __version__ as WORKER_VERSION  # not from unsloth_nb.worker: that package imports this module's users

    return {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "Authorization": f"Bearer {identity.api_key}",
        "User-Agent": f"unsloth-nb-worker/{WORKER_VERSION}",
    }


def _send_rest_terminate(identity: PodIdentity) -> bool | None:
    """REST v2 ``DELETE /v2/pods/{id}``. True: gone. False: refused for good (the key). None: worth another try."""
    pod = urllib.parse.quote(str(identity.pod_id), safe="")
    url = f"{identity.api_base_url.rstrip('/')}/v2/pods/{pod}"
    request = urllib.request.Request(url, method="DELETE", headers=_headers(identity))
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            logger.info("pod %s was already gone", identity.pod_id)
            return True
        if exc.code in (401, 403):
            logger.error("RunPod refused to terminate pod %s: HTTP %d (pod key rejected)", identity.pod_id, exc.code)
            return False
        if exc.code == 429:
            after = _retry_after(exc.headers.get("Retry-After") if exc.headers else None)
            logger.warning("terminate pod %s: HTTP 429; waiting %.0f s", identity.pod_id, after)
            time.sleep(after)
        else:
            logger.warning("terminate pod %s: HTTP %d", identity.pod_id, exc.code)
        return None
    except (OSError, ValueError) as exc:
        logger.warning("terminate pod %s: %s", identity.pod_id, type(exc).__name__)
        return None
    logger.info("asked RunPod to terminate pod %s", identity.pod_id)
    return True


def _retry_after(value: str | None) -> float:
    try:
        return min(max(float(value or 0), 0.0), 30.0)
    except ValueError:
        return 1.0


def _send_graphql_terminate(identity: PodIdentity) -> bool | None:
    """GraphQL ``podTerminate`` (retiring in early 2027). True: gone. False: refused. None: failed."""
    literal = json.dumps(identity.pod_id)  # a valid GraphQL string literal, quotes and all
    body = json.dumps({"query": f"mutation {{ podTerminate(input: {{ podId: {literal} }}) }}"}).encode()
    request = urllib.request.Request(
        identity.api_base_url.rstrip("/") + "/graphql", data=body, method="POST", headers=_headers(identity)
    )
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
            answer = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            logger.error("RunPod refused to terminate pod %s: HTTP %d (pod key rejected)", identity.pod_id, exc.code)
            return False
        logger.warning("terminate pod %s: HTTP %d", identity.pod_id, exc.code)
        return None
    except (OSError, ValueError) as exc:
        logger.warning("terminate pod %s: %s", identity.pod_id, type(exc).__name__)
        return None
    errors = answer.get("errors") if isinstance(answer, dict) else None
    if errors:
        message = str(errors[0].get("message", "")) if isinstance(errors[0], dict) else str(errors[0])
        if "not found" in message.lower():
            logger.info("pod %s was already gone", identity.pod_id)
            return True
        logger.warning("terminate pod %s: %s", identity.pod_id, message)
        return None
    logger.info("asked RunPod to terminate pod %s", identity.pod_id)
    return True
