"""The types every step of the dataset pipeline shares, and the results callers receive.

A normalised :data:`Row`, the :data:`TokenCounter` the engine passes in, the
:class:`DatasetSummary` / :class:`PreparedDataset` / :class:`DatasetPreview`
results (with :func:`format_summary`, the line a person reads), and the private
``_Part`` that reading, length checks and the eval split fill in. Kept in one
small module so the steps can share them without importing each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from unsloth_nb.data.formats import FORMAT_LABELS
from unsloth_nb.errors import DatasetError

#: A normalised training row: either {"messages": [{"role": ..., "content": ...}, ...]}
#: (roles system/user/assistant, at least one assistant turn) or {"text": "..."} for
#: plain-text corpora, which have no turns.
Row = dict[str, Any]

#: Counts the tokens of one normalised row (the engine passes one built on the real
#: tokenizer and chat template; without it a characters/4 estimate is used).
TokenCounter = Callable[[Row], int]


# ====================================================================== results
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
    longest_origin: str = ""  # `file:line` of the longest training row
    columns: dict[str, str] = field(default_factory=dict)  # the column names guessed: {our name: yours}
    truncated_rows: int = 0  # rows over max_seq_length that the trainer cuts (dataset.long_rows: truncate)
    tokens_cut: int = 0  # tokens those cuts remove
    long_dropped: int = 0  # rows dropped for their length (long_rows: drop, or an answer cut off entirely)
    max_seq_length: int = 0
    long_rows: str = ""  # the dataset.long_rows policy applied
    sources: list[str] = field(default_factory=list)  # where remote rows came from, and a mix's row counts

    def to_event(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "format": self.format,
            "skipped": self.skipped,
            "tokens": self.tokens,
            "longest_tokens": self.longest_tokens,
            "eval_rows": self.eval_rows,
            "source": self.source,
            "columns": dict(self.columns),
            "truncated_rows": self.truncated_rows,
            "tokens_cut": self.tokens_cut,
            "long_dropped": self.long_dropped,
            "sources": list(self.sources),
        }


@dataclass
class PreparedDataset:
    """Validated, normalised rows; ``origins`` and ``eval_origins`` name each row's `file:line`."""

    train: list[Row]
    eval: list[Row] | None
    summary: DatasetSummary
    skipped_problems: list[str] = field(default_factory=list)
    origins: list[str] = field(default_factory=list)
    eval_origins: list[str] = field(default_factory=list)
    # Remote sources validated from a sample, to be read in full where training runs (see data/remote.py);
    # None when the rows above are the whole dataset.
    reference: dict[str, Any] | None = None
    pinned: dict[str, dict[str, Any]] = field(default_factory=dict)  # source text -> the source's JSON, as read here

    @property
    def kind(self) -> str:
        """``"text"`` for plain-text corpora, else ``"messages"``: what the engine formats."""
        return "text" if self.summary.format == "text" else "messages"


@dataclass
class DatasetPreview:
    """A look at a dataset for a form: it holds problems instead of raising them.

    ``error`` is the message of anything that stops training (a missing file, an
    unreadable file, no valid rows); ``problems`` lists every bad row, which
    training would refuse unless skip_invalid is set.
    """

    source: str
    format: str | None
    rows: list[Row]
    origins: list[str]
    summary: DatasetSummary | None
    problems: list[str]
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and not self.problems

    def describe(self) -> str:
        """Human lines: the summary (or the error), then the first few problems."""
        if self.error is not None:
            return self.error
        lines = [format_summary(self.summary)] if self.summary else []
        shown = DatasetError.shown
        lines += [f"  {p}" for p in self.problems[:shown]]
        if len(self.problems) > shown:
            lines.append(f"  ... and {len(self.problems) - shown} more")
        return "\n".join(lines)


def format_summary(summary: DatasetSummary) -> str:
    """One line a person reads before training starts."""
    estimate = summary.tokens_counted_with == "estimate"
    tokens = f"~{_short_number(summary.tokens)} tokens (estimate)" if estimate else f"{_short_number(summary.tokens)} tokens"
    parts = [f"{summary.rows:,} rows"]
    if summary.eval_rows:
        parts.append(f"{summary.eval_rows:,} eval rows")
    label = FORMAT_LABELS.get(summary.format, summary.format)
    if summary.columns:
        label += " (columns " + ", ".join(f"{theirs}->{ours}" for ours, theirs in summary.columns.items()) + ")"
    parts += [
        label,
        tokens,
        f"longest {summary.longest_tokens:,} tokens",
        f"{summary.skipped:,} skipped",
    ]
    lines = [f"{summary.source}: " + ", ".join(parts), *summary.sources]
    long_rows = long_rows_line(summary)
    return "\n".join([*lines, long_rows] if long_rows else lines)


def long_rows_line(summary: DatasetSummary) -> str:
    """One line on rows over max_seq_length: how many are cut, the tokens lost, and rows dropped; "" if none."""
    if not summary.truncated_rows and not summary.long_dropped:
        return ""
    about = "~" if summary.tokens_counted_with == "estimate" else ""
    limit = f"max_seq_length={summary.max_seq_length:,}" if summary.max_seq_length else "max_seq_length"
    parts = []
    if summary.truncated_rows:
        parts.append(
            f"{about}{summary.truncated_rows:,} row(s) longer than {limit} are truncated "
            f"({about}{summary.tokens_cut:,} tokens cut)"
        )
    if summary.long_dropped:
        why = "their answer starts past the limit" if summary.long_rows == "truncate" else f"longer than {limit}"
        parts.append(f"{about}{summary.long_dropped:,} row(s) dropped: {why} (dataset.long_rows: {summary.long_rows})")
    return "; ".join(parts) + "."


def _short_number(value: int) -> str:
    if value < 10_000:
        return f"{value:,}"
    if value < 1_000_000:
        return f"{round(value / 1000)}k"
    return f"{value / 1_000_000:.1f}M"


# ====================================================================== one file's rows
@dataclass
class _Part:
    """The outcome of reading one file: kept rows and the problems of the others."""

    display: str
    format: str | None = None
    rows: list[Row] = field(default_factory=list)
    origins: list[str] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    records: int = 0
    unknown_format: bool = False
    columns: dict[str, str] = field(default_factory=dict)
    truncated: int = 0  # rows kept over max_seq_length (the trainer cuts them)
    tokens_cut: int = 0
    long_dropped: list[str] = field(default_factory=list)  # `origin: why` of rows dropped for their length
    source_line: str = ""  # a remote source's description (files, bytes, rows, revision)
    pinned: dict[str, dict[str, Any]] = field(default_factory=dict)  # source text -> its JSON (revision resolved)
    info: list[Any] = field(default_factory=list)  # the remote sources' SourceInfo
    mix_lines: list[str] = field(default_factory=list)  # a mix: each source's rows kept of its rows

    def source_lines(self) -> list[str]:
        return ([self.source_line] if self.source_line else []) + self.mix_lines
