"""Turning the ``generate:`` section into arguments for ``model.generate`` and ``apply_chat_template``.

Every place that asks a model for an answer (the demo, Try it, ``job.chat``, the judge's answers) goes through
here, so a setting copied from a notebook means the same thing everywhere. No torch at import.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from unsloth_nb.config.generate import GenerateConfig

#: Greedy decoding with a fixed length: what the judge uses unless told otherwise, so that the fine-tune and its
#: base are compared on their most likely answers rather than on the luck of one sample.
GREEDY = GenerateConfig(temperature=0, min_p=None)


def judge_settings(decoding: str, max_new_tokens: int, generate: GenerateConfig | None) -> GenerateConfig:
    """The judged answers' settings: greedy by default for a fair comparison; the generate: section when asked.

    ``enable_thinking`` always follows the generate: section, since it changes what the answer is, not how it is
    sampled.
    """
    import dataclasses

    generate = generate or GenerateConfig()
    base = generate if decoding == "generate" else GREEDY
    return dataclasses.replace(base, max_new_tokens=max_new_tokens, enable_thinking=generate.enable_thinking)


def sampling_kwargs(settings: GenerateConfig) -> dict[str, Any]:
    """Keyword arguments for ``model.generate``: only what the section sets, so the model's defaults rule the rest."""
    kwargs: dict[str, Any] = {"max_new_tokens": settings.max_new_tokens}
    if settings.temperature is None:
        return kwargs  # the model's generation_config decides, as in a notebook that passes no temperature
    if settings.greedy:
        kwargs["do_sample"] = False
        return kwargs
    kwargs.update(do_sample=True, temperature=settings.temperature)
    for name in ("min_p", "top_p", "top_k"):
        value = getattr(settings, name)
        if value is not None:
            kwargs[name] = value
    return kwargs


def has_thinking_switch(tokenizer: Any) -> bool:
    """Whether the tokenizer's chat template reads ``enable_thinking`` (Qwen3 does; Llama, Gemma and Phi do not)."""
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):
        template = " ".join(str(text) for text in template.values())
    return isinstance(template, str) and "enable_thinking" in template


def template_kwargs(tokenizer: Any, settings: GenerateConfig) -> dict[str, Any]:
    """Extra ``apply_chat_template`` arguments: ``enable_thinking`` only where the template has the switch."""
    if settings.enable_thinking is None or not has_thinking_switch(tokenizer):
        return {}
    return {"enable_thinking": settings.enable_thinking}


def thinking_note(tokenizer: Any, settings: GenerateConfig) -> str | None:
    """The sentence to show when ``enable_thinking`` is set but the model's chat template cannot use it."""
    if settings.enable_thinking is None or has_thinking_switch(tokenizer):
        return None
    return (
        f"generate.enable_thinking={settings.enable_thinking} is ignored: this model's chat template has no "
        "enable_thinking switch (Qwen3-style templates have one)"
    )


#: Unicode categories a page or terminal cannot show as text: control, surrogate, private-use and unassigned.
_UNSHOWABLE = frozenset({"Cc", "Cs", "Co", "Cn"})


def clean_answer(text: str) -> str:
    """What of a decoded answer can be shown: no replacement characters, no control characters, no edge blanks.

    A byte-level tokenizer decodes a multi-byte character cut between tokens (an answer stopped by
    ``max_new_tokens``, or a model sampling loose bytes) as U+FFFD; those and control characters other than
    newline and tab would print as boxes or move the cursor, so they are dropped rather than shown.
    """
    kept = (
        char
        for char in text.replace("\r\n", "\n")
        if char != "\ufffd" and (char in "\n\t" or unicodedata.category(char) not in _UNSHOWABLE)
    )
    return "".join(kept).strip()


def decode_answer(tokenizer: Any, token_ids: Any) -> str:
    """The text of generated tokens as every answer is shown: special tokens skipped, then :func:`clean_answer`."""
    return clean_answer(tokenizer.decode(token_ids, skip_special_tokens=True))


def openai_params(settings: GenerateConfig) -> dict[str, Any]:
    """The same settings as an OpenAI-compatible chat request body (vLLM reads min_p, top_k, chat_template_kwargs)."""
    body: dict[str, Any] = {"max_tokens": settings.max_new_tokens}
    if settings.temperature is not None:
        body["temperature"] = settings.temperature
        if not settings.greedy:
            for name in ("min_p", "top_p", "top_k"):
                value = getattr(settings, name)
                if value is not None:
                    body[name] = value
    if settings.enable_thinking is not None:
        body["chat_template_kwargs"] = {"enable_thinking": settings.enable_thinking}
    return body


__all__ = [
    "GREEDY",
    "clean_answer",
    "decode_answer",
    "has_thinking_switch",
    "judge_settings",
    "openai_params",
    "sampling_kwargs",
    "template_kwargs",
    "thinking_note",
]
