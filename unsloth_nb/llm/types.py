"""The request and answer types every provider speaks; plain data, so they hash and cache the same everywhere."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ChatRequest:
    """One chat call. ``params`` are the decoding parameters sent as given (max tokens, temperature, ...).

    The cache key is (provider, model, system, messages, params): everything that changes the answer, and
    nothing that does not (the key, the timeout, the base URL of the same provider kind).
    """

    provider: str
    model: str
    messages: tuple[tuple[str, str], ...]  # (role, content) pairs, user/assistant
    system: str = ""
    params: tuple[tuple[str, Any], ...] = ()
    tag: str = ""  # the caller's label for this call (a row id); not part of the key

    @classmethod
    def make(
        cls, provider: str, model: str, prompt: str, *, system: str = "", params: dict[str, Any] | None = None, tag: str = ""
    ) -> ChatRequest:
        return cls(provider, model, (("user", prompt),), system, tuple(sorted((params or {}).items())), tag)

    @property
    def key(self) -> str:
        payload = {
            "provider": self.provider,
            "model": self.model,
            "system": self.system,
            "messages": [list(m) for m in self.messages],
            "params": [list(p) for p in self.params],
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

    @property
    def param_dict(self) -> dict[str, Any]:
        return dict(self.params)

    def prompt_chars(self) -> int:
        return len(self.system) + sum(len(content) for _, content in self.messages)


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens)


@dataclass
class Completion:
    """What came back: the text, the usage the provider reported and, when known, what it cost."""

    text: str
    usage: Usage = field(default_factory=Usage)
    model: str = ""
    cached: bool = False  # True when served from the disk cache (then it cost nothing now)
    cost_usd: float | None = None  # what the original call cost

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "usage": {"input_tokens": self.usage.input_tokens, "output_tokens": self.usage.output_tokens},
            "model": self.model,
            "cost_usd": self.cost_usd,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any], *, cached: bool = False) -> Completion:
        usage = raw.get("usage") or {}
        return cls(
            text=str(raw.get("text", "")),
            usage=Usage(int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))),
            model=str(raw.get("model", "")),
            cached=cached,
            cost_usd=raw.get("cost_usd"),
        )


__all__ = ["ChatRequest", "Completion", "Usage"]
