"""Many requests to one provider: cached, bounded, backing off, counted in dollars, and capped.

- **Cache first.** A request whose key is on disk is answered from it and costs nothing now. Identical requests
  in one run (the same key: a judge's two games of a pair whose answers are the same) are sent once and the
  twins get that answer as a cache hit, so what a run pays never depends on which thread asks first.
- **Bounded concurrency, adaptive.** At most ``concurrency`` requests are in flight. A 429 halves the limit
  (never below 1) and pauses every sender until the server's ``Retry-After`` has passed; each success after
  that lets the limit grow back by one (additive increase, multiplicative decrease, as NeMo Data Designer does).
- **Retries.** 429, 5xx, timeouts and refused connections are retried up to ``max_attempts`` times with
  exponential back-off and full jitter (``Retry-After`` wins when the server sends it). Anything else (a bad
  key, an unknown model) stops the run at once with the provider's message.
- **Down is an answer.** When ``down_after`` requests in a row have used up their retries, the provider is
  declared down: the rest are not sent and :meth:`LLMClient.run` raises :class:`LLMUnavailableError`.
- **Money.** Each answer's usage is priced (:class:`~unsloth_nb.llm.prices.PriceTable`). With ``max_cost_usd``
  a request is not sent when what was spent plus what is in flight plus its own estimate would pass the cap;
  it comes back as ``status="budget"`` so the caller reports it, never drops it.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

from unsloth_nb.llm.cache import DiskCache
from unsloth_nb.llm.errors import LLMError, LLMUnavailableError, RetryableError
from unsloth_nb.llm.prices import PriceTable
from unsloth_nb.llm.providers import Provider
from unsloth_nb.llm.types import ChatRequest, Completion, Usage

Status = Literal["ok", "cached", "budget", "failed", "not_sent", "stopped"]


@dataclass
class CallOutcome:
    request: ChatRequest
    status: Status
    completion: Completion | None = None
    error: str | None = None
    attempts: int = 0


@dataclass
class Spend:
    """What a run cost and did: HTTP requests sent (retries included), answers, cache hits, tokens, dollars."""

    requests_sent: int = 0
    answers: int = 0
    cache_hits: int = 0
    retries: int = 0
    rate_limited: int = 0
    usage: Usage = field(default_factory=Usage)
    usd: float = 0.0
    usd_known: bool = True  # False once an answer's model had no price

    def to_json(self) -> dict[str, object]:
        return {
            "requests_sent": self.requests_sent,
            "answers": self.answers,
            "cache_hits": self.cache_hits,
            "retries": self.retries,
            "rate_limited": self.rate_limited,
            "input_tokens": self.usage.input_tokens,
            "output_tokens": self.usage.output_tokens,
            "usd": round(self.usd, 6),
            "usd_known": self.usd_known,
        }


class _Limiter:
    """Permits for in-flight requests with AIMD sizing and a shared pause after a 429."""

    def __init__(self, ceiling: int) -> None:
        self.ceiling = max(1, ceiling)
        self.limit = float(self.ceiling)
        self.in_flight = 0
        self.pause_until = 0.0
        self.cond = threading.Condition()

    def acquire(self, stop: Callable[[], bool]) -> bool:
        with self.cond:
            while True:
                if stop():
                    return False
                wait = self.pause_until - time.monotonic()
                if wait <= 0 and self.in_flight < int(self.limit):
                    self.in_flight += 1
                    return True
                self.cond.wait(timeout=min(max(wait, 0.01), 0.25) if wait > 0 else 0.25)

    def release(self) -> None:
        with self.cond:
            self.in_flight -= 1
            self.cond.notify_all()

    def success(self) -> None:
        with self.cond:
            self.limit = min(float(self.ceiling), self.limit + 1.0 / max(self.limit, 1.0))
            self.cond.notify_all()

    def rate_limited(self, retry_after: float | None) -> None:
        with self.cond:
            self.limit = max(1.0, self.limit / 2)
            if retry_after is not None:
                self.pause_until = max(self.pause_until, time.monotonic() + retry_after)


class LLMClient:
    def __init__(
        self,
        provider: Provider,
        *,
        cache: DiskCache | None = None,
        prices: PriceTable | None = None,
        concurrency: int = 8,
        timeout: float = 60.0,
        max_attempts: int = 5,
        backoff_base: float = 1.0,
        backoff_cap: float = 30.0,
        down_after: int = 3,
        max_cost_usd: float | None = None,
        expected_output_tokens: int = 300,
        stop: Callable[[], bool] | None = None,
        cap_field: str = "judge.max_cost_usd",
    ) -> None:
        self.provider = provider
        self.cache = cache if cache is not None else DiskCache()
        self.prices = prices or PriceTable()
        self.concurrency = max(1, concurrency)
        self.timeout = timeout
        self.max_attempts = max(1, max_attempts)
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.down_after = max(1, down_after)
        self.max_cost_usd = max_cost_usd
        self.cap_field = cap_field  # the setting named when the cap stops a request
        self.expected_output_tokens = expected_output_tokens
        user_stop = stop or (lambda: False)
        self._interrupted = False  # Ctrl-C (or any error) in the caller's thread: queued requests are not sent
        self.stop: Callable[[], bool] = lambda: self._interrupted or user_stop()
        self.spend = Spend()
        self._lock = threading.Lock()
        self._reserved = 0.0
        self._exhausted_in_a_row = 0
        self._down: str | None = None
        self._fatal: LLMError | None = None
        self._limiter = _Limiter(self.concurrency)

    # ------------------------------------------------------------------ estimates
    def estimate_usd(self, request: ChatRequest) -> float | None:
        """A request's cost before it is sent: prompt characters / 4 in, ``expected_output_tokens`` out."""
        max_out = request.param_dict.get("max_tokens") or request.param_dict.get("max_completion_tokens")
        out = min(self.expected_output_tokens, int(max_out)) if max_out else self.expected_output_tokens
        return self.prices.cost(request.model, Usage(request.prompt_chars() // 4 + 8, out))

    # ------------------------------------------------------------------ running
    def complete(self, request: ChatRequest) -> CallOutcome:
        """One request (cache, budget, retries); raises like :meth:`run`."""
        return self.run([request])[0]

    def run(
        self, requests: Sequence[ChatRequest], on_done: Callable[[int, CallOutcome], None] | None = None
    ) -> list[CallOutcome]:
        """Answer every request (in any order; results in request order). ``on_done(index, outcome)`` is called
        for each, one at a time. Raises :class:`LLMUnavailableError` when the provider is down and
        :class:`LLMError` on a refusal; outcomes already finished were passed to ``on_done`` first."""
        results: list[CallOutcome | None] = [None] * len(requests)
        callback_lock = threading.Lock()

        def finish(index: int, outcome: CallOutcome) -> None:
            results[index] = outcome
            if on_done is not None:
                with callback_lock:
                    on_done(index, outcome)

        pending: list[int] = []
        first_of_key: dict[str, int] = {}
        twins: dict[int, list[int]] = {}  # a pending request's index -> later requests with the same key
        for index, request in enumerate(requests):
            cached = self.cache.get(request)
            if cached is not None:
                with self._lock:
                    self.spend.cache_hits += 1
                finish(index, CallOutcome(request, "cached", cached))
                continue
            first = first_of_key.setdefault(request.key, index)
            if first == index:
                pending.append(index)
            else:
                twins.setdefault(first, []).append(index)
        if pending:
            with ThreadPoolExecutor(max_workers=min(self.concurrency, len(pending)), thread_name_prefix="unsloth-nb-llm") as pool:
                futures = [pool.submit(self._one, requests[i]) for i in pending]
                try:
                    for index, future in zip(pending, futures, strict=True):
                        outcome = future.result()
                        finish(index, outcome)
                        for twin in twins.get(index, []):
                            finish(twin, self._twin_outcome(requests[twin], outcome))
                except BaseException:  # Ctrl-C: the requests in flight finish (and are cached), no new one starts
                    self._interrupted = True
                    raise
        if self._fatal is not None:
            raise self._fatal
        if self._down is not None:
            raise LLMUnavailableError(self._down)
        return [r for r in results if r is not None]

    def _twin_outcome(self, request: ChatRequest, first: CallOutcome) -> CallOutcome:
        """What a request identical to one sent in this run gets: its answer as a cache hit, or its failure unsent.

        A twin of a request whose retries ran out counts towards ``down_after`` as that request did: sent, it would
        have failed the same way, and a provider is no less down because its two requests were the same."""
        if first.completion is None:
            if first.status == "failed" and self._fatal is None:
                self._exhausted(first.error or "")
            return CallOutcome(request, first.status, error=first.error)
        with self._lock:
            self.spend.cache_hits += 1
        return CallOutcome(request, "cached", dataclasses.replace(first.completion, cached=True))

    def _one(self, request: ChatRequest) -> CallOutcome:
        if self._fatal is not None or self._down is not None:
            return CallOutcome(request, "not_sent", error=self._down or str(self._fatal))
        cached = self.cache.get(request)  # a twin request may have finished meanwhile
        if cached is not None:
            with self._lock:
                self.spend.cache_hits += 1
            return CallOutcome(request, "cached", cached)
        estimate = self.estimate_usd(request) or 0.0
        with self._lock:
            if self.max_cost_usd is not None and self.spend.usd + self._reserved + estimate > self.max_cost_usd:
                return CallOutcome(request, "budget", error=f"{self.cap_field} (${self.max_cost_usd:.2f}) reached")
            self._reserved += estimate
        try:
            return self._attempts(request)
        finally:
            with self._lock:
                self._reserved -= estimate

    def _attempts(self, request: ChatRequest) -> CallOutcome:
        last = ""
        for attempt in range(1, self.max_attempts + 1):
            if self._fatal is not None or self._down is not None:
                return CallOutcome(request, "not_sent", error=self._down or str(self._fatal), attempts=attempt - 1)
            if not self._limiter.acquire(self.stop):
                return CallOutcome(request, "stopped", error="stopped", attempts=attempt - 1)
            try:
                with self._lock:
                    self.spend.requests_sent += 1
                    if attempt > 1:
                        self.spend.retries += 1
                completion = self.provider.complete(request, self.timeout)
            except RetryableError as exc:
                last = str(exc)
                if exc.rate_limited:
                    with self._lock:
                        self.spend.rate_limited += 1
                    self._limiter.rate_limited(exc.retry_after)
                self._limiter.release()
                if attempt < self.max_attempts:
                    self._sleep(self._delay(attempt, exc.retry_after, exc.rate_limited))
                continue
            except LLMError as exc:
                self._limiter.release()
                with self._lock:
                    self._fatal = self._fatal or exc
                return CallOutcome(request, "failed", error=str(exc), attempts=attempt)
            except BaseException:  # our bug or the SDK's: free the permit, or every other sender waits forever
                self._limiter.release()
                raise
            self._limiter.release()
            self._limiter.success()
            cost = self.prices.cost(request.model, completion.usage)
            completion.cost_usd = cost
            self.cache.put(request, completion)
            with self._lock:
                self._exhausted_in_a_row = 0
                self.spend.answers += 1
                self.spend.usage = self.spend.usage + completion.usage
                if cost is None:
                    self.spend.usd_known = False
                else:
                    self.spend.usd += cost
            return CallOutcome(request, "ok", completion, attempts=attempt)
        self._exhausted(last)
        return CallOutcome(request, "failed", error=last, attempts=self.max_attempts)

    def _exhausted(self, last: str) -> None:
        """One more request in a row that retries could not answer; ``down_after`` of them: the provider is down."""
        with self._lock:
            self._exhausted_in_a_row += 1
            if self._exhausted_in_a_row >= self.down_after and self._down is None:
                self._down = (
                    f"the {self.provider.name} API is unavailable: {self._exhausted_in_a_row} requests in a row failed "
                    f"after {self.max_attempts} attempts each (last: {last})"
                )

    def _delay(self, attempt: int, retry_after: float | None, rate_limited: bool) -> float:
        if retry_after is not None:
            return retry_after + random.uniform(0, 0.1 * max(retry_after, 0.1))
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stop():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.1))


__all__ = ["CallOutcome", "LLMClient", "Spend"]
