"""Rules shared by the sections that call an LLM (``judge:``, ``teacher:``): endpoint, held-out rows, prices.

Both sections name a provider, maybe a base URL, a held-out share and price overrides; the same mistake in
either must be refused in the same words, naming that section's field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from unsloth_nb.errors import ConfigError


def endpoint_problems(section: str, provider: str, base_url: str | None) -> list[ConfigError]:
    """An openai-compatible server needs its URL, and a URL must be http(s)."""
    errors: list[ConfigError] = []
    if provider == "openai-compatible" and not base_url:
        errors.append(
            ConfigError(
                f"{section}.base_url", f"an openai-compatible {section} needs the server's URL, e.g. http://localhost:8000/v1"
            )
        )
    if base_url is not None and not re.match(r"^https?://[^\s/]+", base_url):
        errors.append(ConfigError(f"{section}.base_url", f"{base_url!r} is not an http(s) URL"))
    return errors


def holdout_problems(section: str, holdout: float) -> list[ConfigError]:
    """A held-out share is a fraction up to 0.5 or a whole number of rows."""
    if holdout >= 1 and not float(holdout).is_integer():
        return [ConfigError(f"{section}.holdout", f"{holdout:g} is neither a fraction below 1 nor a whole number of rows")]
    if 0.5 < holdout < 1:
        return [
            ConfigError(
                f"{section}.holdout", f"holding out {holdout:.0%} of the rows leaves too few to train on; use at most 0.5"
            )
        ]
    return []


def price_problems(section: str, prices: Mapping[str, str]) -> list[ConfigError]:
    """Each price override reads as input/output USD per million tokens."""
    from unsloth_nb.llm.prices import parse_price

    errors: list[ConfigError] = []
    for model, price in prices.items():
        try:
            parse_price(price, f"{section}.prices.{model}")
        except ConfigError as exc:
            errors.append(exc)
    return errors
