"""Datasets: read -> detect format -> validate -> normalise to conversations.

(Interface fixed by the core; the implementation is being written.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from unsloth_nb.config import DatasetConfig

#: A normalised training row: either {"messages": [{"role": ..., "content": ...}, ...]}
#: (roles system/user/assistant, at least one assistant turn) or {"text": "..."} for
#: plain-text corpora, which have no turns.
Row = dict[str, Any]

#: Counts the tokens of one normalised row (the engine passes one built on the real
#: tokenizer and chat template; without it a characters/4 estimate is used).
TokenCounter = Callable[[Row], int]


@dataclass
class DatasetSummary:
    """What the user sees before training starts."""

    source: str
    format: str
    rows: int
    skipped: int = 0
    tokens: int = 0
    longest_tokens: int = 0
    eval_rows: int = 0
    tokens_counted_with: str = "estimate"  # "estimate" (chars/4) or "tokenizer"

    def to_event(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "format": self.format,
            "skipped": self.skipped,
            "tokens": self.tokens,
            "longest_tokens": self.longest_tokens,
            "eval_rows": self.eval_rows,
            "source": self.source,
        }


@dataclass
class PreparedDataset:
    train: list[Row]
    eval: list[Row] | None
    summary: DatasetSummary
    skipped_problems: list[str] = field(default_factory=list)


def prepare_dataset(
    config: DatasetConfig,
    max_seq_length: int,
    count_tokens: TokenCounter | None = None,
    base_dir: str | None = None,
) -> PreparedDataset:
    """Read, detect, validate and normalise; raise DatasetError listing `file:line: problem`."""
    raise NotImplementedError
