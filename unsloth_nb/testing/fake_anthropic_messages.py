"""The Anthropic Message a fake answer is wrapped in, and the prompt read out of a request: one shape for the
Messages route (:mod:`~unsloth_nb.testing.fake_anthropic`) and each result of a Message Batch
(:mod:`~unsloth_nb.testing.fake_anthropic_batches`)."""

from __future__ import annotations

from typing import Any

from unsloth_nb.testing.fake_llm import FakeLLMServer, count_tokens


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(block.get("text", "") for block in content if isinstance(block, dict))
    return ""


def prompt_of(body: dict[str, Any]) -> tuple[str, str]:
    """(system, the user turns joined) of a Messages request."""
    users = [text_of(m.get("content")) for m in body.get("messages") or [] if m.get("role") == "user"]
    return text_of(body.get("system") or ""), "\n\n".join(users)


def message_body(server: FakeLLMServer, body: dict[str, Any], text: str) -> dict[str, Any]:
    system, _ = prompt_of(body)
    input_tokens = count_tokens(system + "".join(text_of(m.get("content")) for m in body.get("messages") or []))
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
