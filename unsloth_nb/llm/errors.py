"""What can go wrong when calling a hosted model, in terms a user can act on."""

from __future__ import annotations

from unsloth_nb.errors import UnslothNbError


class LLMError(UnslothNbError):
    """A request the provider refused for a reason retrying cannot fix (bad key, unknown model, bad request)."""


class LLMUnavailableError(LLMError):
    """The provider kept failing (5xx, timeouts, connection refused) after every retry: it is down or unreachable."""


class LLMBudgetExceeded(LLMError):
    """The next call would take the spend past the configured ``max_cost_usd``."""


class RetryableError(Exception):
    """Internal: a failure worth retrying. ``retry_after`` is the server's ``Retry-After`` in seconds, if given."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None, rate_limited: bool = False
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.rate_limited = rate_limited


__all__ = ["LLMBudgetExceeded", "LLMError", "LLMUnavailableError", "RetryableError"]
