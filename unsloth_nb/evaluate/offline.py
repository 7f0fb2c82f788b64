"""The judge for people without a key: the offline judge of the tests, and a line that says so.

When ``OPENAI_API_KEY`` (or ``ANTHROPIC_API_KEY``) is set, the real judge is used. Otherwise the demo and the
tutorials start the loopback fake OpenAI server with its deterministic key-facts judge (it prefers the answer
that holds more of the reference's names and numbers; it is a test fixture, not an LLM) and talk to it as an
``openai-compatible`` provider, so no key is needed and nothing leaves the machine. Its price is $0.
"""

from __future__ import annotations

from typing import Any

from unsloth_nb.credentials import has_secret

OFFLINE_MODEL = "offline-key-facts-judge"


def judge_settings() -> tuple[dict[str, Any], str, Any]:
    """(the ``judge:`` fields, a sentence saying which judge it is, the fake server to stop or None)."""
    if has_secret("OPENAI_API_KEY"):
        return {"provider": "openai"}, "Judge: OpenAI gpt-5-mini (OPENAI_API_KEY is set).", None
    if has_secret("ANTHROPIC_API_KEY"):
        return (
            {"provider": "anthropic", "model": "claude-haiku-4-5"},
            "Judge: Anthropic claude-haiku-4-5 (ANTHROPIC_API_KEY is set).",
            None,
        )
    from unsloth_nb.testing.fake_llm import key_facts
    from unsloth_nb.testing.fake_openai import FakeOpenAI

    server = FakeOpenAI(key_facts()).start()
    settings = {
        "provider": "openai-compatible",
        "model": OFFLINE_MODEL,
        "base_url": server.base_url,
        "prices": {OFFLINE_MODEL: "0/0"},
    }
    note = (
        "Judge: no OPENAI_API_KEY or ANTHROPIC_API_KEY is set, so this uses the offline judge of the tests "
        "(a loopback fake API that prefers the answer holding more of the reference's key facts; not an LLM)."
    )
    return settings, note, server


__all__ = ["OFFLINE_MODEL", "judge_settings"]
