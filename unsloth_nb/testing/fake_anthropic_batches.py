"""Token counting and Message Batches for the fake Anthropic API, as Anthropic publishes them.

- ``POST /v1/messages/count_tokens`` -> ``{"input_tokens": n}`` (free; not counted in ``server.calls``, but in
  ``server.token_counts``; ``server.chars_per_token`` sets the fake tokenizer's ratio, 4 by default).
- ``POST /v1/messages/batches`` with ``{"requests": [{"custom_id", "params"}]}`` -> a ``message_batch`` object.
- ``GET /v1/messages/batches/{id}`` -> the batch; it ends on the ``batch_polls_until_done``-th retrieve, and only
  then are its requests answered (each through the server's behaviour, so ``server.calls`` counts them).
- ``GET /v1/messages/batches/{id}/results`` -> JSONL, one ``{"custom_id", "result"}`` per request:
  ``succeeded`` (a Message), ``errored`` (the behaviour returned an HTTP error), ``expired``, ``canceled``.
- ``POST /v1/messages/batches/{id}/cancel`` -> the batch, ``canceling`` until its next retrieve.

Knobs on the server: ``batch_polls_until_done`` (default 1), ``expire_next`` (the first n requests of the next
batch to end come back ``expired`` without being answered: a batch that ran past 24 h), and the counters
``batches_created`` and ``batch_requests`` (requests submitted in batches, resubmissions included).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from unsloth_nb.testing.fake_anthropic_messages import message_body, prompt_of, text_of
from unsloth_nb.testing.fake_llm import FakeLLMServer, count_tokens
from unsloth_nb.testing.loopback_http import LoopbackHandler


@dataclass
class FakeBatch:
    id: str
    requests: list[dict[str, Any]]
    created_at: datetime
    polls: int = 0
    status: str = "in_progress"  # in_progress | canceling | ended
    cancel_requested: bool = False
    results: list[dict[str, Any]] = field(default_factory=list)
    ended_at: datetime | None = None
    auth: str = ""  # the key the batch was created with (its requests are answered under it)


def _state(server: FakeLLMServer) -> dict[str, Any]:
    """The batch store of one server (created on first use, so the base server needs no batch fields)."""
    with server._lock:
        state = server.__dict__.get("_batch_state")
        if state is None:
            state = {"batches": {}, "lock": threading.Lock()}
            server.__dict__["_batch_state"] = state
            for name, default in (
                ("batch_polls_until_done", 1),
                ("expire_next", 0),
                ("batches_created", 0),
                ("batch_requests", 0),
            ):
                server.__dict__.setdefault(name, default)
        return state


def _stamp(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


def _batch_json(server: FakeLLMServer, batch: FakeBatch) -> dict[str, Any]:
    counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
    if batch.status == "ended":
        for line in batch.results:
            counts[line["result"]["type"]] += 1
    else:
        counts["processing"] = len(batch.requests)
    ended = batch.status == "ended"
    return {
        "id": batch.id,
        "type": "message_batch",
        "processing_status": batch.status,
        "request_counts": counts,
        "created_at": _stamp(batch.created_at),
        "expires_at": _stamp(batch.created_at + timedelta(hours=24)),
        "ended_at": _stamp(batch.ended_at),
        "cancel_initiated_at": _stamp(batch.created_at) if batch.cancel_requested else None,
        "archived_at": None,
        "results_url": f"{server.base_url}/v1/messages/batches/{batch.id}/results" if ended else None,
    }


def _finish(server: FakeLLMServer, batch: FakeBatch) -> None:
    """Process every request now: answered, errored, expired (``expire_next``) or canceled."""
    expire = int(server.__dict__.get("expire_next", 0))
    server.__dict__["expire_next"] = max(0, expire - len(batch.requests))
    for number, request in enumerate(batch.requests):
        custom_id = str(request.get("custom_id"))
        params = request.get("params") or {}
        if batch.cancel_requested:
            result: dict[str, Any] = {"type": "canceled"}
        elif number < expire:
            result = {"type": "expired"}
        else:
            system, prompt = prompt_of(params)
            reply = server.answer(str(params.get("model", "")), prompt, system, params, batch.auth)
            if reply.status != 200:
                result = {"type": "errored", "error": {"type": "error", "error": {"type": "api_error", "message": reply.error}}}
            else:
                result = {"type": "succeeded", "message": message_body(server, params, reply.text)}
        batch.results.append({"custom_id": custom_id, "result": result})
    batch.status = "ended"
    batch.ended_at = datetime.now(timezone.utc)


def count_tokens_route(server: FakeLLMServer, handler: LoopbackHandler, body: dict[str, Any]) -> None:
    if not body.get("model") or not body.get("messages"):
        handler.send_json(
            400, {"type": "error", "error": {"type": "invalid_request_error", "message": "model and messages are required"}}
        )
        return
    text = text_of(body.get("system") or "") + "".join(text_of(m.get("content")) for m in body["messages"])
    with server._lock:
        server.token_counts += 1
    per_token = server.chars_per_token  # a test sets another ratio to tell a count from a guess
    handler.send_json(200, {"input_tokens": count_tokens(text) if per_token == 4 else max(1, len(text) // per_token)})


def create_batch(server: FakeLLMServer, handler: LoopbackHandler, body: dict[str, Any]) -> None:
    requests = body.get("requests")
    ids = [r.get("custom_id") for r in requests or [] if isinstance(r, dict)]
    if not requests or len(ids) != len(requests) or len(set(ids)) != len(ids) or not all(ids):
        handler.send_json(
            400,
            {"type": "error", "error": {"type": "invalid_request_error", "message": "requests need unique custom_id values"}},
        )
        return
    state = _state(server)
    with state["lock"]:
        server.__dict__["batches_created"] += 1
        server.__dict__["batch_requests"] += len(requests)
        auth = handler.headers.get("x-api-key") or handler.headers.get("Authorization", "").removeprefix("Bearer ")
        batch = FakeBatch(
            f"msgbatch_fake_{server.__dict__['batches_created']:04d}", list(requests), datetime.now(timezone.utc), auth=auth
        )
        state["batches"][batch.id] = batch
        payload = _batch_json(server, batch)
    handler.send_json(200, payload)


def _batch_or_404(server: FakeLLMServer, handler: LoopbackHandler) -> FakeBatch | None:
    batch = _state(server)["batches"].get(getattr(handler, "path_params", {}).get("batch_id", ""))
    if batch is None:
        handler.send_json(404, {"type": "error", "error": {"type": "not_found_error", "message": "no such batch"}})
    return batch


def retrieve_batch(server: FakeLLMServer, handler: LoopbackHandler, body: dict[str, Any]) -> None:
    state = _state(server)
    with state["lock"]:
        batch = _batch_or_404(server, handler)
        if batch is None:
            return
        batch.polls += 1
        if batch.status != "ended" and (batch.cancel_requested or batch.polls >= int(server.__dict__["batch_polls_until_done"])):
            _finish(server, batch)
        payload = _batch_json(server, batch)
    handler.send_json(200, payload)


def cancel_batch(server: FakeLLMServer, handler: LoopbackHandler, body: dict[str, Any]) -> None:
    state = _state(server)
    with state["lock"]:
        batch = _batch_or_404(server, handler)
        if batch is None:
            return
        if batch.status == "in_progress":
            batch.cancel_requested = True
            batch.status = "canceling"
        payload = _batch_json(server, batch)
    handler.send_json(200, payload)


def batch_results(server: FakeLLMServer, handler: LoopbackHandler, body: dict[str, Any]) -> None:
    state = _state(server)
    with state["lock"]:
        batch = _batch_or_404(server, handler)
        if batch is None:
            return
        if batch.status != "ended":
            handler.send_json(
                400, {"type": "error", "error": {"type": "invalid_request_error", "message": "batch has not ended"}}
            )
            return
        lines = "".join(json.dumps(line) + "\n" for line in batch.results).encode()
    handler.send_bytes(200, lines, "application/binary")


_ID = r"(?P<batch_id>[A-Za-z0-9_]+)"
ROUTES = {("POST", "/v1/messages/count_tokens"): count_tokens_route, ("POST", "/v1/messages/batches"): create_batch}
PATTERN_ROUTES = [
    ("GET", rf"/v1/messages/batches/{_ID}", retrieve_batch),
    ("GET", rf"/v1/messages/batches/{_ID}/results", batch_results),
    ("POST", rf"/v1/messages/batches/{_ID}/cancel", cancel_batch),
]

__all__ = ["PATTERN_ROUTES", "ROUTES", "FakeBatch"]
