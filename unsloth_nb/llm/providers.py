"""Providers: the official ``openai`` and ``anthropic`` SDKs behind one ``complete(request)``.

The SDKs' own retries are turned off (``max_retries=0``): :class:`~unsloth_nb.llm.client.LLMClient` retries,
so that ``Retry-After`` is honoured once, every attempt is counted, and a provider that is down is reported as
such instead of being retried inside the SDK for minutes. The SDK is imported on the first call.

Kinds:

- ``openai``: OpenAI's API (``OPENAI_API_KEY``); ``base_url`` may point elsewhere (a proxy, the test fake).
- ``openai-compatible``: any server that speaks OpenAI's chat completions (vLLM, a RunPod serverless endpoint,
  a local server); needs ``base_url``; uses ``OPENAI_API_KEY`` when set, else no key (``RUNPOD_API_KEY`` first
  for a RunPod serverless endpoint's ``.../v2/<endpoint>/openai/v1``).
- ``anthropic``: Anthropic's Messages API (``ANTHROPIC_API_KEY``).
"""

from __future__ import annotations

import os
import threading
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

from unsloth_nb.llm.errors import LLMError, RetryableError
from unsloth_nb.llm.types import ChatRequest, Completion, Usage

PROVIDERS = ("openai", "openai-compatible", "anthropic")
_SECRETS = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}


def provider_secret(provider: str) -> str | None:
    """The environment variable holding the provider's key; None when a key is optional (openai-compatible)."""
    return _SECRETS.get(provider)


class Provider(Protocol):
    name: str

    def complete(self, request: ChatRequest, timeout: float) -> Completion: ...


def retry_after_seconds(headers: Any) -> float | None:
    """``Retry-After`` (seconds or an HTTP date) or OpenAI's ``retry-after-ms``; None when absent or unreadable."""
    if headers is None:
        return None
    try:
        millis = headers.get("retry-after-ms")
        if millis is not None:
            return max(0.0, float(millis) / 1000)
        value = headers.get("retry-after")
    except Exception:  # a header object we do not understand is "no header"
        return None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        import time

        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _classify(exc: Exception, sdk: Any, provider: str) -> Exception:
    """An SDK exception as RetryableError (try again) or LLMError (a message for the user)."""
    if isinstance(exc, sdk.APITimeoutError):
        return RetryableError(f"{provider}: request timed out")
    if isinstance(exc, sdk.APIConnectionError):
        return RetryableError(f"{provider}: cannot connect ({exc})")
    if isinstance(exc, sdk.APIStatusError):
        status = exc.status_code
        response = getattr(exc, "response", None)
        headers = getattr(response, "headers", None)
        if status == 429:
            return RetryableError(
                f"{provider}: rate limited (429)", status=429, retry_after=retry_after_seconds(headers), rate_limited=True
            )
        if status >= 500 or status in (408, 409):
            return RetryableError(f"{provider}: server error {status}", status=status, retry_after=retry_after_seconds(headers))
        hint = {
            401: f"check {_SECRETS.get(provider, 'the API key')}",
            403: "the key may not have access to this model",
            404: "check judge.model and judge.base_url",
        }.get(status, "check the judge settings")
        return LLMError(f"{provider} refused the request ({status}: {_short(exc)}); {hint}")
    return exc


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


class OpenAIProvider:
    """Chat completions through the ``openai`` SDK; one SDK client per provider, shared by the threads."""

    def __init__(self, name: str = "openai", *, base_url: str | None = None, api_key: str | None = None) -> None:
        self.name = name
        self.base_url = base_url
        self.api_key = api_key
        self._client: Any = None
        self._lock = threading.Lock()

    def _sdk_client(self) -> Any:
        with self._lock:
            if self._client is None:
                import openai

                self._client = openai.OpenAI(api_key=self.api_key or "none", base_url=self.base_url, max_retries=0)
            return self._client

    def complete(self, request: ChatRequest, timeout: float) -> Completion:
        import openai

        messages = ([{"role": "system", "content": request.system}] if request.system else []) + [
            {"role": role, "content": content} for role, content in request.messages
        ]
        try:
            response = self._sdk_client().chat.completions.create(
                model=request.model, messages=messages, timeout=timeout, **request.param_dict
            )
        except openai.OpenAIError as exc:
            raise _classify(exc, openai, self.name) from None
        choice = response.choices[0] if response.choices else None
        text = (choice.message.content or "") if choice is not None else ""
        usage = response.usage
        return Completion(
            text=text,
            usage=Usage(int(getattr(usage, "prompt_tokens", 0) or 0), int(getattr(usage, "completion_tokens", 0) or 0)),
            model=str(getattr(response, "model", request.model) or request.model),
        )


class AnthropicProvider:
    """Messages through the ``anthropic`` SDK."""

    name = "anthropic"

    def __init__(self, *, base_url: str | None = None, api_key: str | None = None) -> None:
        self.base_url = base_url
        self.api_key = api_key
        self._client: Any = None
        self._lock = threading.Lock()

    def sdk_client(self) -> Any:
        """The SDK client (the teacher's batch mode uses ``messages.batches`` on it)."""
        with self._lock:
            if self._client is None:
                import anthropic

                self._client = anthropic.Anthropic(api_key=self.api_key, base_url=self.base_url, max_retries=0)
            return self._client

    def count_tokens(self, request: ChatRequest, timeout: float) -> int:
        """The request's input tokens by Anthropic's own count (``messages.count_tokens``: free, nothing generated)."""
        import anthropic

        kwargs: dict[str, Any] = {"system": request.system} if request.system else {}
        try:
            counted = self.sdk_client().messages.count_tokens(
                model=request.model,
                messages=[{"role": role, "content": content} for role, content in request.messages],
                timeout=timeout,
                **kwargs,
            )
        except anthropic.AnthropicError as exc:
            raise _classify(exc, anthropic, self.name) from None
        return int(counted.input_tokens)

    def complete(self, request: ChatRequest, timeout: float) -> Completion:
        import anthropic

        params = request.param_dict
        params.setdefault("max_tokens", 1024)
        kwargs: dict[str, Any] = {"system": request.system} if request.system else {}
        try:
            response = self.sdk_client().messages.create(
                model=request.model,
                messages=[{"role": role, "content": content} for role, content in request.messages],
                timeout=timeout,
                **kwargs,
                **params,
            )
        except anthropic.AnthropicError as exc:
            raise _classify(exc, anthropic, self.name) from None
        text = "".join(getattr(block, "text", "") for block in response.content if getattr(block, "type", "") == "text")
        usage = response.usage
        return Completion(
            text=text,
            usage=Usage(int(usage.input_tokens or 0), int(usage.output_tokens or 0)),
            model=str(response.model or request.model),
        )


def make_provider(name: str, *, base_url: str | None = None, api_key: str | None = None) -> Provider:
    """A provider by kind; the key comes from the caller (who read it from the environment at the point of use)."""
    if name == "anthropic":
        return AnthropicProvider(base_url=base_url, api_key=api_key)
    if name in ("openai", "openai-compatible"):
        if name == "openai-compatible" and not base_url:
            raise LLMError("an openai-compatible judge needs judge.base_url (e.g. http://localhost:8000/v1)")
        if api_key is None and name == "openai-compatible":
            # A RunPod serverless endpoint (``unsloth-nb serve``) takes the account's RunPod key.
            runpod = "/openai/v1" in str(base_url) and "/v2/" in str(base_url)
            api_key = (os.environ.get("RUNPOD_API_KEY") if runpod else None) or os.environ.get("OPENAI_API_KEY") or None
        return OpenAIProvider(name, base_url=base_url, api_key=api_key)
    raise LLMError(f"unknown provider {name!r}; use one of: {', '.join(PROVIDERS)}")


__all__ = [
    "PROVIDERS",
    "AnthropicProvider",
    "OpenAIProvider",
    "Provider",
    "make_provider",
    "provider_secret",
    "retry_after_seconds",
]
