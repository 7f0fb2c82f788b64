"""The ``generate:`` section: how every answer unsloth-nb asks of a model is sampled.

One place for the settings users copy from an Unsloth notebook's ``model.generate(...)`` cell, used by the
demo's before/after answers, the job view's Try it, ``job.chat`` and (when asked) the judge's answers.
The defaults are the notebooks' own: ``max_new_tokens = 128, temperature = 1.5, min_p = 0.1`` (the Llama 3.x and
Phi-4 notebooks; min_p keeps a high temperature coherent). A field left at None is not passed, so the model's
own ``generation_config.json`` decides, as it does in a notebook whose generate call leaves it out.
"""

from __future__ import annotations

from dataclasses import dataclass

from unsloth_nb.config.schema import knob
from unsloth_nb.errors import ConfigError


@dataclass
class GenerateConfig:
    """Sampling settings for every answer generated from the fine-tuned (or base) model."""

    max_new_tokens: int = knob(128, "Longest answer, in new tokens.", flag="--max-new-tokens", minimum=1, maximum=131_072)
    temperature: float | None = knob(
        1.5,
        "Sampling temperature; 0 answers greedily (the most likely token each time); none: the model's own default.",
        flag="--temperature",
        minimum=0.0,
        maximum=10.0,
    )
    min_p: float | None = knob(
        0.1,
        "Drop tokens less likely than min_p times the most likely one (none: not used).",
        flag="--min-p",
        minimum=0.0,
        maximum=1.0,
    )
    top_p: float | None = knob(
        None,
        "Nucleus sampling: keep the most likely tokens up to this probability mass.",
        flag="--top-p",
        minimum=0.0,
        maximum=1.0,
    )
    top_k: int | None = knob(None, "Keep only the k most likely tokens (0: no limit).", flag="--top-k", minimum=0)
    enable_thinking: bool | None = knob(
        None,
        "Let a reasoning model think before answering (Qwen3 and other templates with an enable_thinking switch); "
        "ignored, with a note, where the chat template has no such switch. None: the template's default.",
        flag="--enable-thinking",
    )

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def section_problems(self) -> list[ConfigError]:
        """Sampling filters without sampling are a contradiction worth saying, not silently ignoring."""
        if not self.greedy:
            return []
        filters = [name for name in ("top_p", "top_k") if getattr(self, name) not in (None, 0)]  # min_p has a default
        if filters:
            return [
                ConfigError(
                    "generate.temperature",
                    f"temperature 0 answers greedily, so {', '.join(filters)} would do nothing; "
                    "raise the temperature or remove them",
                )
            ]
        return []


__all__ = ["GenerateConfig"]
