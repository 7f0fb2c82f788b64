"""Calls to hosted LLMs (the judge now, the teacher next): one request type, providers on the official SDKs,
a disk cache, a price table, and a client that bounds concurrency and backs off politely.

Nothing here imports ``openai`` or ``anthropic`` until a request is actually sent, so ``import unsloth_nb``
stays light.
"""

from unsloth_nb.llm.cache import DiskCache, default_cache_dir
from unsloth_nb.llm.client import CallOutcome, LLMClient, Spend
from unsloth_nb.llm.errors import LLMBudgetExceeded, LLMError, LLMUnavailableError
from unsloth_nb.llm.prices import DEFAULT_PRICES, Price, PriceTable
from unsloth_nb.llm.providers import PROVIDERS, Provider, make_provider, provider_secret
from unsloth_nb.llm.types import ChatRequest, Completion, Usage

__all__ = [
    "DEFAULT_PRICES",
    "PROVIDERS",
    "CallOutcome",
    "ChatRequest",
    "Completion",
    "DiskCache",
    "LLMBudgetExceeded",
    "LLMClient",
    "LLMError",
    "LLMUnavailableError",
    "Price",
    "PriceTable",
    "Provider",
    "Spend",
    "Usage",
    "default_cache_dir",
    "make_provider",
    "provider_secret",
]
