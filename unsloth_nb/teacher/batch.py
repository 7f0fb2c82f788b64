"""Message Batches: the teacher's requests at half price, submitted once, polled, collected by ``custom_id``.

- **Submit once.** Before the batch is created, a record with the ``custom_id`` of each request is written in
  ``batches/`` beside the disk cache; once created, its batch id is added (and a copy goes to the job folder's
  ``teacher/batch.json``). A run that finds a recorded batch whose requests it still wants (a restarted kernel, a
  new job on the same rows, Ctrl-C while polling) polls that batch and never resubmits it.
- **Collect into the cache.** Each succeeded result is priced at the batch rate and stored in the same disk cache
  as live answers, so a later run of the same rows, live or batched, asks nothing again.
- **Expiry.** Requests that come back ``expired`` (a batch not finished in 24 h), ``errored`` or ``canceled``
  are submitted again in a new batch, only they, at most ``MAX_ROUNDS`` times.
- **Budget.** With ``teacher.max_cost_usd`` only as many requests as the estimate (at the batch rate) lets fit
  are submitted; the rest come back as ``budget``. A batch is billed on what it used, so the cap may be
  overshot by the difference between estimate and actual output length of the batch in flight (the headroom
  Anthropic documents for batches and spend limits).
- **Stop** while polling leaves the batch running and recorded; the next run collects it.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unsloth_nb.llm.client import CallOutcome
from unsloth_nb.llm.types import ChatRequest, Completion, Usage

if TYPE_CHECKING:
    from unsloth_nb.llm import LLMClient

BATCH_FILE = "batch.json"
BATCHES_DIR = "batches"
MAX_ROUNDS = 3


def custom_id(request: ChatRequest) -> str:
    """Stable and unique per request (``^[a-zA-Z0-9_-]{1,64}$``): the request's cache key."""
    return "r" + request.key[:48]


def _params(request: ChatRequest) -> dict[str, Any]:
    params = request.param_dict
    params.setdefault("max_tokens", 1024)
    body: dict[str, Any] = {
        "model": request.model,
        "messages": [{"role": r, "content": c} for r, c in request.messages],
        **params,
    }
    if request.system:
        body["system"] = request.system
    return body


def _sdk_call(client: LLMClient, what: Callable[[], Any], stop: Callable[[], bool]) -> Any:
    """An SDK call retried on 429/5xx/timeouts (Retry-After honoured) like live requests are."""
    import anthropic

    from unsloth_nb.llm.errors import LLMError, RetryableError
    from unsloth_nb.llm.providers import _classify

    for attempt in range(1, client.max_attempts + 1):
        try:
            return what()
        except anthropic.AnthropicError as exc:
            error = _classify(exc, anthropic, "anthropic")
            if not isinstance(error, RetryableError) or attempt == client.max_attempts or stop():
                raise (error if isinstance(error, LLMError) else LLMError(str(error))) from None
            client._sleep(client._delay(attempt, error.retry_after, error.rate_limited))
    raise AssertionError("unreachable")


def run_batch(
    client: LLMClient,
    requests: Sequence[ChatRequest],
    folder: Path,
    *,
    poll_seconds: float = 30.0,
    stop: Callable[[], bool] = lambda: False,
    emit: Callable[..., Any] = lambda kind, **data: None,
) -> list[CallOutcome]:
    """Answer ``requests`` through Message Batches; results in request order (see the module docstring)."""
    sdk = client.provider.sdk_client()  # type: ignore[attr-defined]
    state_path = Path(folder) / BATCH_FILE
    records = client.cache.root / BATCHES_DIR  # beside the cache: a new job after a restart finds the batch too
    by_id: dict[str, int] = {}
    results: list[CallOutcome | None] = [None] * len(requests)
    for index, request in enumerate(requests):
        cached = client.cache.get(request)
        if cached is not None:
            client.spend.cache_hits += 1
            results[index] = CallOutcome(request, "cached", cached)
        else:
            by_id.setdefault(custom_id(request), index)
    twins = {i: by_id[custom_id(requests[i])] for i in range(len(requests)) if results[i] is None}
    for _ in range(MAX_ROUNDS):
        wanted = [cid for cid, index in by_id.items() if results[index] is None]
        if not wanted or stop():
            break
        record, state = _recorded_batch(records, set(wanted))
        if record is not None:
            batch_id = str(state["batch_id"])
            emit(
                "log", level="info", source="teacher", message=f"teacher: collecting batch {batch_id} recorded by an earlier run"
            )
        else:
            fitting = _fit_budget(client, [requests[by_id[cid]] for cid in wanted])
            for cid in wanted[fitting:]:
                index = by_id[cid]
                results[index] = CallOutcome(
                    requests[index], "budget", error=f"{client.cap_field} (${client.max_cost_usd:.2f}) reached"
                )
            wanted = wanted[:fitting]
            if not wanted:
                break
            state = {"custom_ids": wanted}
            record = records / f"{custom_id(requests[by_id[wanted[0]]])}-{len(wanted)}.json"
            _save_state(record, state)  # written first: a crash during create leaves a trace to clean up
            submission = [{"custom_id": cid, "params": _params(requests[by_id[cid]])} for cid in wanted]
            batch = _sdk_call(client, functools.partial(sdk.messages.batches.create, requests=submission), stop)
            client.spend.requests_sent += 1
            batch_id = batch.id
            state = {**state, "batch_id": batch_id, "submitted_at": time.time()}
            _save_state(record, state)
            _save_state(state_path, state)  # the job folder's copy, for people
            emit(
                "log",
                level="info",
                source="teacher",
                message=f"teacher: batch {batch_id} submitted ({len(wanted)} requests, half price)",
            )
        ended = _poll(client, sdk, batch_id, poll_seconds, stop, emit)
        if not ended:
            break  # stopped: the batch stays recorded and the next run collects it
        _collect(client, sdk, batch_id, requests, by_id, results, stop)
        record.unlink(missing_ok=True)
        state_path.unlink(missing_ok=True)
    out: list[CallOutcome] = []
    for index, request in enumerate(requests):
        result = results[index]
        if result is None and index in twins and results[twins[index]] is not None:
            twin = results[twins[index]]
            assert twin is not None
            result = CallOutcome(request, "cached", twin.completion) if twin.completion is not None else twin
        out.append(result or CallOutcome(request, "stopped", error="not answered; a re-run continues"))
    return out


def _fit_budget(client: LLMClient, requests: list[ChatRequest]) -> int:
    if client.max_cost_usd is None:
        return len(requests)
    left = client.max_cost_usd - client.spend.usd
    total = 0.0
    for count, request in enumerate(requests):
        estimate = (client.estimate_usd(request) or 0.0) * 0.5
        if total + estimate > left:
            return count
        total += estimate
    return len(requests)


def _poll(
    client: LLMClient, sdk: Any, batch_id: str, poll_seconds: float, stop: Callable[[], bool], emit: Callable[..., Any]
) -> bool:
    last_said = 0.0
    while True:
        batch = _sdk_call(client, lambda: sdk.messages.batches.retrieve(batch_id), stop)
        if batch.processing_status == "ended":
            return True
        if stop():
            emit(
                "log",
                level="info",
                source="teacher",
                message=f"teacher: stopped; batch {batch_id} keeps running and the next run collects it",
            )
            return False
        if time.monotonic() - last_said > 60:
            last_said = time.monotonic()
            counts = batch.request_counts
            emit(
                "log",
                level="info",
                source="teacher",
                message=f"teacher: batch {batch_id} {batch.processing_status}, {counts.processing} requests processing",
            )
        deadline = time.monotonic() + poll_seconds
        while time.monotonic() < deadline and not stop():
            time.sleep(min(0.2, poll_seconds))


def _collect(
    client: LLMClient,
    sdk: Any,
    batch_id: str,
    requests: Sequence[ChatRequest],
    by_id: dict[str, int],
    results: list[CallOutcome | None],
    stop: Callable[[], bool],
) -> None:
    lines = _sdk_call(client, lambda: list(sdk.messages.batches.results(batch_id)), stop)
    for line in lines:
        index = by_id.get(line.custom_id)
        if index is None or line.result.type != "succeeded":
            continue  # expired / errored / canceled: left for the next round
        message = line.result.message
        request = requests[index]
        text = "".join(getattr(block, "text", "") for block in message.content if getattr(block, "type", "") == "text")
        usage = Usage(int(message.usage.input_tokens or 0), int(message.usage.output_tokens or 0))
        cost = client.prices.cost(request.model, usage, batch=True)
        completion = Completion(text=text, usage=usage, model=str(message.model or request.model), cost_usd=cost)
        client.cache.put(request, completion)
        client.spend.answers += 1
        client.spend.usage = client.spend.usage + usage
        if cost is None:
            client.spend.usd_known = False
        else:
            client.spend.usd += cost
        results[index] = CallOutcome(request, "ok", completion, attempts=1)


def _recorded_batch(records: Path, wanted: set[str]) -> tuple[Path | None, dict[str, Any]]:
    """A submitted batch whose requests are all among those still wanted (a run that was interrupted)."""
    for path in sorted(records.glob("*.json")) if records.is_dir() else []:
        state = _load_state(path)
        ids = set(state.get("custom_ids") or [])
        if state.get("batch_id") and ids and ids <= wanted:
            return path, state
    return None, {}


def _load_state(path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return raw if isinstance(raw, dict) else {}


def _save_state(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state), encoding="utf-8")
    tmp.replace(path)


__all__ = ["BATCH_FILE", "MAX_ROUNDS", "custom_id", "run_batch"]
