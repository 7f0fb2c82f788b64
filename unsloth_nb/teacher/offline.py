"""The teacher for people without a key: the scripted teacher of the tests, and a line that says so.

With ``ANTHROPIC_API_KEY`` set, the real teacher (Claude, the default model) is used. Otherwise the tutorials start
a loopback fake API with the tests' scripted teacher (it appends a sentence to each answer and prefixes each
question with a fixed phrase; it is a fixture, not an LLM) and talk to it as an ``openai-compatible`` provider, so
no key is needed and nothing leaves the machine. Its price is $0.
"""

from __future__ import annotations

from typing import Any

from unsloth_nb.credentials import has_secret

OFFLINE_MODEL = "offline-scripted-teacher"


def teacher_settings() -> tuple[dict[str, Any], str, Any]:
    """(the ``teacher:`` fields, a sentence saying which teacher it is, the fake server to stop or None)."""
    if has_secret("ANTHROPIC_API_KEY"):
        from unsloth_nb.config import DEFAULT_TEACHER_MODEL

        return {}, f"Teacher: Anthropic {DEFAULT_TEACHER_MODEL} (ANTHROPIC_API_KEY is set).", None
    settings, server = offline_teacher()
    note = (
        "Teacher: no ANTHROPIC_API_KEY is set, so this uses the offline scripted teacher of the tests "
        "(a loopback fake API that appends a sentence to each answer and rewords questions by a fixed phrase; not an LLM)."
    )
    return settings, note, server


def offline_teacher() -> tuple[dict[str, Any], Any]:
    """(the ``teacher:`` fields, the started fake server). Its own model name keeps its scripted answers apart
    from a real model's in the shared cache."""
    from unsloth_nb.testing.fake_openai import FakeOpenAI
    from unsloth_nb.testing.fake_teacher import generator

    server = FakeOpenAI(generator()).start()
    settings = {
        "provider": "openai-compatible",
        "model": OFFLINE_MODEL,
        "base_url": server.base_url,
        "prices": {OFFLINE_MODEL: "0/0"},
        "batch": "off",
    }
    return settings, server


__all__ = ["OFFLINE_MODEL", "offline_teacher", "teacher_settings"]
