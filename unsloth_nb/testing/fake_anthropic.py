"""A loopback Anthropic API (Messages) that the unmodified ``anthropic`` SDK talks to.

    with FakeAnthropic(key_facts()) as fake:
        client = anthropic.Anthropic(base_url=fake.base_url, api_key="anything")

Routes live in one table (``FakeAnthropic.routes``) so that token counting
(``POST /v1/messages/count_tokens``) and Message Batches (``/v1/messages/batches`` …) are one function and
one line each when the teacher needs them; :mod:`~unsloth_nb.testing.fake_anthropic_messages` builds the Message both
return.
"""

from __future__ import annotations

from typing import Any, ClassVar

from unsloth_nb.testing import fake_anthropic_batches as batches
from unsloth_nb.testing.fake_anthropic_messages import message_body, prompt_of
from unsloth_nb.testing.fake_llm import FakeLLMServer, Reply, Route, send_error
from unsloth_nb.testing.loopback_http import LoopbackHandler

_ERROR_TYPES = {429: "rate_limit_error", 500: "api_error", 529: "overloaded_error", 401: "authentication_error"}


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
    routes: ClassVar[dict[tuple[str, str], Route]] = {("POST", "/v1/messages"): messages, **batches.ROUTES}
    pattern_routes: ClassVar[list[tuple[str, str, Route]]] = list(batches.PATTERN_ROUTES)

    def __init__(self, behaviour: Any = None, *, port: int = 0) -> None:
        super().__init__(behaviour, port=port)
        self.token_counts = 0  # count_tokens requests (free, so not in ``calls``)
        self.chars_per_token = 4  # the fake tokenizer's ratio for count_tokens


__all__ = ["FakeAnthropic"]
