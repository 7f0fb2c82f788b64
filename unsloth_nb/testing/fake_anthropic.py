"""A loopback Anthropic API (Messages) that the unmodified ``anthropic`` SDK talks to.

    with FakeAnthropic(key_facts()) as fake:
        client = anthropic.Anthropic(base_url=fake.base_url, api_key="anything")

Routes live in one table (``FakeAnthropic.routes``) so that token counting
(``POST /v1/messages/count_tokens``) and Message Batches (``/v1/messages/batches`` …) are one function and
one line each when the teacher needs them; :func:`message_body` builds the Message both would return.
"""

from __future__ import annotations

from typing import Any, ClassVar

from unsloth_nb.testing.fake_llm import FakeLLMServer, Reply, Route, count_tokens, send_error
from unsloth_nb.testing.loopback_http import LoopbackHandler

_ERROR_TYPES = {429: "rate_limit_error", 500: "api_error", 529: "overloaded_error", 401: "authentication_error"}


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(block.get("text", "") for block in content if isinstance(block, dict))
    return ""


def prompt_of(body: dict[str, Any]) -> tuple[str, str]:
    """(system, the user turns joined) of a Messages request."""
    users = [_text(m.get("content")) for m in body.get("messages") or [] if m.get("role") == "user"]
    return _text(body.get("system") or ""), "\n\n".join(users)


def message_body(server: FakeLLMServer, body: dict[str, Any], text: str) -> dict[str, Any]:
    system, _ = prompt_of(body)
    input_tokens = count_tokens(system + "".join(_text(m.get("content")) for m in body.get("messages") or []))
    return {
        "id": f"msg_fake_{server.calls}",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", ""),
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": count_tokens(text)},
    }


def _valid(handler: LoopbackHandler, body: dict[str, Any]) -> bool:
    if not body.get("model") or not body.get("messages") or not body.get("max_tokens"):
        handler.send_json(
            400,
            {
                "type": "error",
                "error": {"type": "invalid_request_error", "message": "model, messages and max_tokens are required"},
            },
        )
        return False
    return True


def messages(server: FakeLLMServer, handler: LoopbackHandler, body: dict[str, Any]) -> None:
    if not _valid(handler, body):
        return
    system, prompt = prompt_of(body)
    auth = handler.headers.get("x-api-key") or handler.headers.get("Authorization", "").removeprefix("Bearer ")
    reply: Reply = server.answer(str(body["model"]), prompt, system, body, auth)
    if reply.status != 200:
        send_error(handler, reply, _ERROR_TYPES.get(reply.status, "api_error"))
        return
    handler.send_json(200, message_body(server, body, reply.text))


class FakeAnthropic(FakeLLMServer):
    from unsloth_nb.testing import fake_anthropic_batches as _batches

    routes: ClassVar[dict[tuple[str, str], Route]] = {("POST", "/v1/messages"): messages, **_batches.ROUTES}
    pattern_routes: ClassVar[list[tuple[str, str, Route]]] = list(_batches.PATTERN_ROUTES)
    del _batches

    def __init__(self, behaviour: Any = None, *, port: int = 0) -> None:
        super().__init__(behaviour, port=port)
        self.token_counts = 0  # count_tokens requests (free, so not in ``calls``)
        self.chars_per_token = 4  # the fake tokenizer's ratio for count_tokens


__all__ = ["FakeAnthropic", "message_body", "prompt_of"]
