"""Held-out questions that training never saw.

In order of preference: the eval file the user names (``judge.eval_path``, else ``dataset.eval_path``), or
``judge.holdout`` rows split off the training rows before training (a fraction or a count, chosen with the
training seed, so the split is the same every time) and recorded in the job folder. Either way, a held-out
question that is a near-duplicate of a training prompt is dropped and counted: the judge would otherwise
measure memorisation. Near-duplicate means the normalised texts (lower case, no punctuation) are equal or
their word sets have a Jaccard similarity of at least 0.8; a small inverted index keeps this cheap.
"""

from __future__ import annotations

import json
import random
import re
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from unsloth_nb.data.records import Row

NEAR_DUPLICATE_JACCARD = 0.8
HELDOUT_FILE = "evaluation/heldout.jsonl"


@dataclass
class EvalItem:
    """One held-out question: the conversation up to the answer, and the answer as a reference when known."""

    id: str
    messages: list[dict[str, str]]  # system/user/assistant turns before the answer; the last is the user's
    reference: str | None = None
    origin: str = ""  # file:line

    @property
    def question(self) -> str:
        return self.messages[-1]["content"] if self.messages else ""


@dataclass
class HeldOut:
    items: list[EvalItem]
    source: str  # "eval_file:<path>" or "holdout"
    dropped_near_duplicates: int = 0
    not_questions: int = 0  # rows with no user turn to ask (plain text)
    dropped_examples: list[str] = field(default_factory=list)

    def save(self, folder: Path) -> Path:
        path = Path(folder) / HELDOUT_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as handle:
            handle.write(json.dumps({"meta": self.meta()}) + "\n")
            for item in self.items:
                handle.write(json.dumps(asdict(item), ensure_ascii=False) + "\n")
        return path

    def describe(self) -> str:
        where = "held out of the training rows" if self.source == "holdout" else f"from the {self.source}"
        text = f"judge: {len(self.items)} questions {where}"
        if self.dropped_near_duplicates:
            text += f"; {self.dropped_near_duplicates} dropped as near-duplicates of training prompts"
        return text

    def meta(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "questions": len(self.items),
            "dropped_near_duplicates": self.dropped_near_duplicates,
            "not_questions": self.not_questions,
        }

    @classmethod
    def load(cls, folder: Path) -> HeldOut | None:
        path = Path(folder) / HELDOUT_FILE
        if not path.is_file():
            return None
        lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        meta = lines[0].get("meta", {}) if lines and "meta" in lines[0] else {}
        items = [EvalItem(**row) for row in lines[1:] if "meta" not in row] if meta else [EvalItem(**row) for row in lines]
        return cls(
            items, meta.get("source", "holdout"), int(meta.get("dropped_near_duplicates", 0)), int(meta.get("not_questions", 0))
        )


# ---------------------------------------------------------------------------- rows -> items
def item_from_row(row: Row, index: int, origin: str = "") -> EvalItem | None:
    """The last user turn and everything before it is the prompt; the assistant turn after it the reference."""
    messages = row.get("messages")
    if not isinstance(messages, list):
        return None
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=None)
    if last_user is None:
        return None
    prompt = [{"role": str(m["role"]), "content": str(m["content"])} for m in messages[: last_user + 1]]
    after = [m for m in messages[last_user + 1 :] if m.get("role") == "assistant"]
    reference = str(after[0]["content"]) if after else None
    return EvalItem(id=f"q{index:04d}", messages=prompt, reference=reference, origin=origin)


def prompt_text(row: Row) -> str:
    """What a training row asks: its user turns (plain text rows: the text itself)."""
    messages = row.get("messages")
    if isinstance(messages, list):
        return "\n".join(str(m.get("content", "")) for m in messages if m.get("role") == "user")
    return str(row.get("text", ""))


# ---------------------------------------------------------------------------- near duplicates
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def normalise(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


class NearDuplicates:
    """Answers "is this question a near-duplicate of a training prompt?" with an inverted word index."""

    def __init__(self, prompts: list[str], threshold: float = NEAR_DUPLICATE_JACCARD) -> None:
        self.threshold = threshold
        self.exact = set()
        self.sets: list[frozenset[str]] = []
        self.postings: dict[str, list[int]] = defaultdict(list)
        for prompt in prompts:
            norm = normalise(prompt)
            self.exact.add(norm)
            words = frozenset(norm.split())
            index = len(self.sets)
            self.sets.append(words)
            for word in words:
                self.postings[word].append(index)

    def match(self, question: str) -> bool:
        norm = normalise(question)
        if norm in self.exact:
            return True
        words = frozenset(norm.split())
        if not words:
            return False
        # A set with Jaccard >= t shares all but a (1 - t) share of the union: one of the rarest
        # floor((1 - t) * n) + 1 words of ours must be in it, so only those words' postings are candidates.
        rare = sorted(words, key=lambda w: len(self.postings.get(w, ())))[: int((1 - self.threshold) * len(words)) + 1]
        candidates = {i for word in rare for i in self.postings.get(word, ())}
        for i in candidates:
            other = self.sets[i]
            if len(words & other) / len(words | other) >= self.threshold:
                return True
        return False


def drop_near_duplicates(items: list[EvalItem], training_prompts: list[str]) -> tuple[list[EvalItem], list[EvalItem]]:
    """(kept, dropped): held-out items whose question is a near-duplicate of a training prompt are dropped."""
    index = NearDuplicates(training_prompts)
    kept: list[EvalItem] = []
    dropped: list[EvalItem] = []
    for item in items:
        (dropped if index.match(item.question) else kept).append(item)
    return kept, dropped


# ---------------------------------------------------------------------------- the split
def holdout_count(total: int, holdout: float) -> int:
    """A fraction below 1 of ``total`` (at least one row when the fraction is positive), or a count."""
    if holdout <= 0 or total <= 1:
        return 0
    count = round(total * holdout) if holdout < 1 else int(holdout)
    return max(1, min(count, total - 1))


def split_holdout(rows: list[Row], origins: list[str], holdout: float, seed: int) -> tuple[list[Row], list[str], HeldOut]:
    """Split ``holdout`` rows off the training rows; returns the training rows left, their origins and the held-out set."""
    n = holdout_count(len(rows), holdout)
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    chosen = set(order[:n])
    train = [row for i, row in enumerate(rows) if i not in chosen]
    train_origins = [o for i, o in enumerate(origins) if i not in chosen] if origins else []
    items: list[EvalItem] = []
    not_questions = 0
    for i in sorted(chosen):
        item = item_from_row(rows[i], i, origins[i] if i < len(origins) else "")
        if item is None:
            not_questions += 1
        else:
            items.append(item)
    kept, dropped = drop_near_duplicates(items, [prompt_text(row) for row in train])
    heldout = HeldOut(kept, "holdout", len(dropped), not_questions, [d.question for d in dropped[:5]])
    return train, train_origins, heldout


def heldout_from_rows(rows: list[Row], origins: list[str], training_rows: list[Row], source: str) -> HeldOut:
    """Held-out items from an eval file's rows, minus near-duplicates of the training prompts."""
    items: list[EvalItem] = []
    not_questions = 0
    for i, row in enumerate(rows):
        item = item_from_row(row, i, origins[i] if i < len(origins) else "")
        if item is None:
            not_questions += 1
        else:
            items.append(item)
    kept, dropped = drop_near_duplicates(items, [prompt_text(row) for row in training_rows])
    return HeldOut(kept, source, len(dropped), not_questions, [d.question for d in dropped[:5]])


__all__ = [
    "HELDOUT_FILE",
    "EvalItem",
    "HeldOut",
    "NearDuplicates",
    "drop_near_duplicates",
    "heldout_from_rows",
    "holdout_count",
    "item_from_row",
    "normalise",
    "split_holdout",
]
