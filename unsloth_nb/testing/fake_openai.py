"""A loopback OpenAI API (chat completions) that the unmodified ``openai`` SDK talks to.

    with FakeOpenAI(key_facts()) as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key="anything")

Also the stand-in for any OpenAI-compatible server (vLLM, a RunPod serverless endpoint). What it answers is
a scripted behaviour from :mod:`unsloth_nb.testing.fake_llm`.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from unsloth_nb.testing.fake_llm import FakeLLMServer, Reply, Route, count_tokens, send_error
from unsloth_nb.testing.loopback_http import LoopbackHandler

_ERROR_TYPES = {429: "rate_limit_exceeded", 500: "server_error", 401: "invalid_api_key"}


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def chat_completions(server: FakeLLMServer, handler: LoopbackHandler, body: dict[str, Any]) -> None:
    messages = body.get("messages") or []
    if not isinstance(messages, list) or not messages or not body.get("model"):
        handler.send_json(400, {"error": {"type": "invalid_request_error", "message": "model and messages are required"}})
        return
    system = "".join(_content_text(m.get("content")) for m in messages if m.get("role") in ("system", "developer"))
    users = [_content_text(m.get("content")) for m in messages if m.get("role") == "user"]
    prompt = "\n\n".join(users)
    reply: Reply = server.answer(str(body["model"]), prompt, system, body, handler.headers.get("Authorization", ""))
    if reply.status != 200:
        send_error(handler, reply, _ERROR_TYPES.get(reply.status, "error"))
        return
    prompt_tokens = count_tokens(system + "".join(_content_text(m.get("content")) for m in messages))
    completion_tokens = count_tokens(reply.text)
    handler.send_json(
        200,
        {
            "id": f"chatcmpl-fake-{server.calls}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": reply.text}, "finish_reason": "stop", "logprobs": None}
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        },
    )


def list_models(server: FakeLLMServer, handler: LoopbackHandler, body: dict[str, Any]) -> None:
    handler.send_json(200, {"object": "list", "data": [{"id": "gpt-5-mini", "object": "model", "owned_by": "fake"}]})


class FakeOpenAI(FakeLLMServer):
    path_prefix = "/v1"
    routes: ClassVar[dict[tuple[str, str], Route]] = {
        ("POST", "/v1/chat/completions"): chat_completions,
        ("GET", "/v1/models"): list_models,
    }


__all__ = ["FakeOpenAI"]
