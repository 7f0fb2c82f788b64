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

Neither ``runpod`` nor ``requests`` is imported before the first API call. What the client and both
transports speak (the errors, :class:`Pod`, :class:`PodSpec`, the retry policy, the ``PodApi`` protocol, the
key) is in :mod:`.api_types`, so that the transports never import this module, which picks them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from unsloth_nb.backends.runpod.api_types import (
    API_ENV,
    BILLING_URL,
    KEYS_URL,
    AttemptFailed,
    Failure,
    GpuType,
    InsufficientBalanceError,
    OutOfStockError,
    Pod,
    PodApi,
    PodGoneError,
    PodNotGoneError,
    PodSpec,
    RetryPolicy,
    RunPodApiError,
    RunPodAuthError,
    RunPodRuleError,
    T,
    chosen_api,
)
from unsloth_nb.credentials import redact

log = logging.getLogger(__name__)

__all__ = ["RunPodClient", "names_missing_pod", "open_api"]


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
