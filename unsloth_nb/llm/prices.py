"""Token usage to dollars, from a price table the user can override.

Prices are US dollars per million tokens (input, output), as the providers list them for standard (not batch)
requests. They change: the table below is our reading of the providers' price pages when it was written and
is a starting point, not a quote. Override any entry (or add a model, such as a self-hosted one at 0/0) with
``judge.prices: {model: "in/out"}``. A model missing from the table has an unknown cost, and anything whose
cost is unknown asks before it spends (the same rule as RunPod rentals).

Batch APIs (Anthropic Message Batches, OpenAI Batch) charge about half: ``Price.batch_discount``.

A ``max_cost_usd`` cap can only count priced usage: for a model without a price the spend is reported as
unknown and the cap does not stop anything, which is why an unknown estimate always asks first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from unsloth_nb.errors import ConfigError
from unsloth_nb.llm.types import Usage


@dataclass(frozen=True)
class Price:
    input_per_mtok: float
    output_per_mtok: float
    batch_discount: float = 0.5

    def cost(self, usage: Usage, *, batch: bool = False) -> float:
        usd = (usage.input_tokens * self.input_per_mtok + usage.output_tokens * self.output_per_mtok) / 1e6
        return usd * self.batch_discount if batch else usd


#: USD per million tokens (input, output). Verify against the providers' pages; override in the config.
DEFAULT_PRICES: dict[str, Price] = {
    # OpenAI
    "gpt-5": Price(1.25, 10.0),
    "gpt-5-mini": Price(0.25, 2.0),
    "gpt-5-nano": Price(0.05, 0.40),
    "gpt-4.1": Price(2.0, 8.0),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4.1-nano": Price(0.10, 0.40),
    "gpt-4o": Price(2.50, 10.0),
    "gpt-4o-mini": Price(0.15, 0.60),
    # Anthropic
    "claude-opus-4-5": Price(5.0, 25.0),
    "claude-sonnet-4-5": Price(3.0, 15.0),
    "claude-sonnet-4-6": Price(3.0, 15.0),
    "claude-haiku-4-5": Price(1.0, 5.0),
}

_DATED = re.compile(r"-(\d{8}|\d{4}-\d{2}-\d{2})$")
_PAIR = re.compile(r"^\s*\$?(\d+(?:\.\d+)?)\s*/\s*\$?(\d+(?:\.\d+)?)\s*$")


def parse_price(value: str | tuple[float, float] | Price, where: str = "judge.prices") -> Price:
    """``"0.25/2"`` (input/output USD per million tokens), a pair, or a Price."""
    if isinstance(value, Price):
        return value
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return Price(float(value[0]), float(value[1]))
    match = _PAIR.match(str(value))
    if not match:
        raise ConfigError(where, f"{value!r} is not a price; write input/output USD per million tokens, e.g. 0.25/2.0")
    return Price(float(match.group(1)), float(match.group(2)))


class PriceTable:
    """Looks a model up by its exact id, then without a date suffix (``gpt-4o-2024-08-06`` -> ``gpt-4o``)."""

    def __init__(self, overrides: Mapping[str, str | tuple[float, float] | Price] | None = None) -> None:
        self.prices = dict(DEFAULT_PRICES)
        for model, value in (overrides or {}).items():
            self.prices[model] = parse_price(value, f"judge.prices.{model}")

    def lookup(self, model: str) -> Price | None:
        if model in self.prices:
            return self.prices[model]
        undated = _DATED.sub("", model)
        return self.prices.get(undated)

    def cost(self, model: str, usage: Usage, *, batch: bool = False) -> float | None:
        price = self.lookup(model)
        return None if price is None else price.cost(usage, batch=batch)


__all__ = ["DEFAULT_PRICES", "Price", "PriceTable", "parse_price"]
