"""Answers from the fine-tuned model and from its base, to the same prompts, with the same decoding.

Greedy decoding unless ``judge.decoding: generate`` (a fair comparison: neither model is judged on one
sample's luck), ``generate.enable_thinking`` honoured where the template has it, ``max_new_tokens`` capped, prompts batched (left padding, so every row's answer starts right
after its prompt). The base model's answers come from the same loaded model with the LoRA adapter switched
off (PEFT's ``disable_adapter()`` context): no second copy of the weights is loaded. Runs where the model is,
the kernel or the pod; the answers are written to ``evaluation/answers.jsonl`` in the output folder, the
artifact that comes back to the client for judging.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from unsloth_nb.config.generate import GenerateConfig
from unsloth_nb.errors import UnslothNbError
from unsloth_nb.evaluate.holdout import EvalItem

ANSWERS_FILE = "evaluation/answers.jsonl"


@dataclass
class AnswerPair:
    id: str
    question: str
    reference: str | None
    base: str
    finetuned: str


@dataclass
class AnswerSet:
    pairs: list[AnswerPair]
    max_new_tokens: int
    batch_size: int
    seconds: float = 0.0
    decoding: str = "greedy"

    @property
    def seconds_per_answer(self) -> float:
        return self.seconds / max(1, 2 * len(self.pairs))

    def save(self, output_dir: Path) -> Path:
        path = Path(output_dir) / ANSWERS_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "max_new_tokens": self.max_new_tokens,
            "batch_size": self.batch_size,
            "seconds": round(self.seconds, 3),
            "decoding": self.decoding,
        }
        tmp = path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as handle:
            handle.write(json.dumps({"meta": meta}) + "\n")
            for pair in self.pairs:
                handle.write(json.dumps(asdict(pair), ensure_ascii=False) + "\n")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, output_dir: Path) -> AnswerSet | None:
        path = Path(output_dir) / ANSWERS_FILE
        if not path.is_file():
            return None
        lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not lines or "meta" not in lines[0]:
            return None
        meta = lines[0]["meta"]
        return cls(
            [AnswerPair(**row) for row in lines[1:]],
            int(meta["max_new_tokens"]),
            int(meta["batch_size"]),
            float(meta.get("seconds", 0.0)),
            str(meta.get("decoding", "greedy")),
        )

    def matches(self, items: list[EvalItem], max_new_tokens: int) -> bool:
        """Whether these answers were made for these questions with this cap (then they are reused)."""
        return self.max_new_tokens == max_new_tokens and [(p.id, p.question) for p in self.pairs] == [
            (i.id, i.question) for i in items
        ]


@contextlib.contextmanager
def adapter_off(model: Any) -> Iterator[None]:
    """The base model: the same weights with the LoRA adapter disabled (PEFT), restored afterwards."""
    disable = getattr(model, "disable_adapter", None)
    if disable is None:
        raise UnslothNbError("the loaded model has no LoRA adapter to switch off, so the base model's answers cannot be made")
    with disable():
        yield


def _inference_mode(model: Any) -> None:
    if getattr(model, "training", False):
        try:
            from unsloth import FastLanguageModel

            FastLanguageModel.for_inference(model)
        except ImportError:
            model.eval()


def generate_batch(model: Any, tokenizer: Any, conversations: list[list[dict[str, str]]], settings: GenerateConfig) -> list[str]:
    """Answers to a batch of conversations (greedy for the judge by default), prompts left-padded, special tokens stripped."""
    import torch

    from unsloth_nb.engine.generation import decode_answer, sampling_kwargs, template_kwargs

    if getattr(tokenizer, "chat_template", None):
        extra = template_kwargs(tokenizer, settings)
        texts = [tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False, **extra) for c in conversations]
        add_special = False
    else:  # a base model without a chat template: the last user turn is the prompt
        texts = [c[-1]["content"] for c in conversations]
        add_special = True
    pad_side = getattr(tokenizer, "padding_side", "right")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    try:
        encoded = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=add_special)
    finally:
        tokenizer.padding_side = pad_side
    encoded = {key: value.to(model.device) for key, value in encoded.items()}
    with torch.no_grad():
        output = model.generate(**encoded, **sampling_kwargs(settings), pad_token_id=tokenizer.pad_token_id, use_cache=True)
    start = encoded["input_ids"].shape[1]
    return [decode_answer(tokenizer, row[start:]) for row in output]


def answer_both(
    model: Any,
    tokenizer: Any,
    items: list[EvalItem],
    *,
    settings: GenerateConfig,
    batch_size: int,
    should_stop: Callable[[], bool] = lambda: False,
    progress: Callable[[int, int], None] | None = None,
) -> AnswerSet:
    """Both models' answers to every item: fine-tuned with the adapter on, base with it off."""
    _inference_mode(model)
    started = time.perf_counter()
    conversations = [item.messages for item in items]
    finetuned: list[str] = []
    base: list[str] = []
    total = 2 * len(items)
    for start in range(0, len(items), batch_size):
        if should_stop():
            raise UnslothNbError("stopped while generating the evaluation answers")
        batch = conversations[start : start + batch_size]
        finetuned += generate_batch(model, tokenizer, batch, settings)
        with adapter_off(model):
            base += generate_batch(model, tokenizer, batch, settings)
        if progress is not None:
            progress(len(finetuned) + len(base), total)
    pairs = [
        AnswerPair(item.id, item.question, item.reference, base=b, finetuned=f)
        for item, b, f in zip(items, base, finetuned, strict=True)
    ]
    return AnswerSet(pairs, settings.max_new_tokens, batch_size, time.perf_counter() - started)


__all__ = ["ANSWERS_FILE", "AnswerPair", "AnswerSet", "adapter_off", "answer_both", "generate_batch"]
