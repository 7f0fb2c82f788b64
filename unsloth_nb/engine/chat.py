"""``job.chat(message)``: ask the fine-tuned model in this kernel, with the job's ``generate:`` settings.

The model trained in this kernel is used as it is; a finished job from elsewhere (a pod, another session) has
its saved adapter loaded once and kept for the next question.
"""

from __future__ import annotations

import dataclasses
import threading
import warnings
import weakref
from typing import TYPE_CHECKING, Any

from unsloth_nb.config.generate import GenerateConfig
from unsloth_nb.errors import UnslothNbError, raise_all

if TYPE_CHECKING:
    from unsloth_nb.jobrun.job import Job

_LOADED: weakref.WeakKeyDictionary[Any, tuple[Any, Any]] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def chat_settings(base: GenerateConfig, overrides: dict[str, Any]) -> GenerateConfig:
    """``base`` with keyword overrides, checked like the config's generate: section (a typo is refused, not ignored)."""
    from unsloth_nb.config.schema import _build, _section_problems

    errors: list[Any] = []
    data = {**dataclasses.asdict(base), **overrides}
    settings = _build(GenerateConfig, data, "generate.", errors, set())
    errors += _section_problems(settings, "generate") + settings.section_problems()
    raise_all(errors)
    return settings


def chat(job: Job, message: str, **overrides: Any) -> str:
    """The fine-tuned model's answer to ``message``, sampled as ``job.config.generate`` says (keywords override it)."""
    from unsloth_nb.engine.generation import thinking_note
    from unsloth_nb.engine.save import generate

    settings = chat_settings(job.config.generate, overrides)
    with _LOCK:
        model, tokenizer = _model(job)
        note = thinking_note(tokenizer, settings)
        if note:
            warnings.warn(note, stacklevel=2)
        return generate(model, tokenizer, message, settings=settings)


def _model(job: Job) -> tuple[Any, Any]:
    if job.model is not None:
        return job.model, job.tokenizer
    if job not in _LOADED:
        from unsloth_nb.engine.save import load_for_inference

        adapter = job.adapter_path
        if job.state not in ("succeeded", "cancelled") or adapter is None or not adapter.exists():
            raise UnslothNbError(
                f"job {job.id} has no model to chat with yet (state {job.state}); wait for it to finish: await job"
            )
        _LOADED[job] = load_for_inference(adapter, max_seq_length=job.config.train.max_seq_length)
    return _LOADED[job]
