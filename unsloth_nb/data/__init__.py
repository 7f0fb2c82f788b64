"""Datasets: read -> detect format -> validate -> normalise to conversations.

Everything here runs before any model loads, so a mistake in row 9,000 is found
in a second instead of after a 10-minute model download. Every problem names its
place as ``file:line:`` (JSON Lines, CSV, JSON arrays) or ``file: row N:``
(Parquet, saved ``datasets`` folders), so the user can jump straight to it.

Files read: ``.jsonl``/``.ndjson``, ``.json`` (an array of rows, an object holding
one such array, or JSON Lines under a .json name as ``Dataset.to_json`` writes),
``.csv``/``.tsv`` (first line is the header), ``.parquet``/``.pq``, and folders
written by ``Dataset.save_to_disk`` or ``DatasetDict.save_to_disk``
(``DatasetConfig.split`` picks the split). Text must be UTF-8 (a BOM is fine).

Formats detected from a row's columns (a column whose value is null counts as
absent; the first match in this order wins; other columns are ignored):

=====================  ==========================================================
format                 columns
=====================  ==========================================================
``messages``           ``messages``: [{role: system|user|assistant, content}]
``sharegpt``           ``conversations``: [{from: human|user|gpt|assistant|model|system, value}]
                       (turns written as {role, content} are read too)
``alpaca``             ``instruction`` + ``output`` (``input`` optional), or
                       ``instruction`` + ``instances``: [{input, output}] (one row per instance)
``qa``                 ``question`` + ``answer``
``prompt_completion``  ``prompt`` + ``completion`` (both text, or both lists of messages)
``text``               ``text`` (a plain-text corpus: no turns)
=====================  ==========================================================

No other names are guessed (``response`` is not taken for ``output``): a column
under another name is mapped with ``DatasetConfig.columns`` ({our name: yours}),
which is applied before detection. ``qa``, ``alpaca`` and ``prompt_completion``
rows may carry a ``system`` column that becomes a leading system turn. Numbers in
text fields are read as text. In CSV files, ``messages``/``conversations``/
``instances`` cells holding a JSON list are parsed.

The first valid row fixes the file's format (unless ``DatasetConfig.format``
overrides detection); a later row of another format is an error naming both.

Token counts: without a tokenizer each row is estimated as ceil(characters / 4)
plus 4 tokens per turn for the chat template's markers. Such estimates can be
off by a third, so without a tokenizer a row is reported as too long only when
its estimate exceeds 1.5 x max_seq_length; :func:`check_lengths` (the engine
calls it with the real tokenizer and chat template) applies the exact limit.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import json
import math
import random
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

from unsloth_nb.config import DatasetConfig
from unsloth_nb.errors import ConfigError, DatasetError, UnslothNbError

#: A normalised training row: either {"messages": [{"role": ..., "content": ...}, ...]}
#: (roles system/user/assistant, at least one assistant turn) or {"text": "..."} for
#: plain-text corpora, which have no turns.
Row = dict[str, Any]

#: Counts the tokens of one normalised row (the engine passes one built on the real
#: tokenizer and chat template; without it a characters/4 estimate is used).
TokenCounter = Callable[[Row], int]

#: Formats in detection order, with the names users see.
FORMAT_LABELS: dict[str, str] = {
    "messages": "messages",
    "sharegpt": "ShareGPT",
    "alpaca": "Alpaca",
    "qa": "Q&A",
    "prompt_completion": "prompt/completion",
    "text": "text",
}

#: The columns that identify each format (any one set is enough).
FORMAT_COLUMNS: dict[str, tuple[tuple[str, ...], ...]] = {
    "messages": (("messages",),),
    "sharegpt": (("conversations",),),
    "alpaca": (("instruction", "output"), ("instruction", "instances")),
    "qa": (("question", "answer"),),
    "prompt_completion": (("prompt", "completion"),),
    "text": (("text",),),
}

ACCEPTED_FORMATS = (
    "messages (messages: [{role, content}]), ShareGPT (conversations: [{from, value}]), "
    "Alpaca (instruction, input, output; or instruction, instances), Q&A (question, answer), "
    "prompt/completion (prompt, completion), text (text)"
)

#: Names that DatasetConfig.columns may map (our side of the mapping).
CANONICAL_COLUMNS = (
    "messages",
    "conversations",
    "instruction",
    "input",
    "output",
    "instances",
    "question",
    "answer",
    "prompt",
    "completion",
    "text",
    "system",
)

FILE_TYPES: dict[str, str] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
}

SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "model": "assistant",
    "system": "system",
}
MESSAGE_ROLES = ("system", "user", "assistant")

CHARS_PER_TOKEN = 4
TURN_OVERHEAD_TOKENS = 4
#: Without a tokenizer, only rows whose estimate exceeds this multiple of max_seq_length are too long.
ESTIMATE_SLACK = 1.5
EVAL_SPLIT_SEED = 3407
SKIP_HINT = "Fix these rows, or pass --skip-invalid (dataset.skip_invalid: true) to drop them and train on the rest."


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
    """Validated, normalised rows; ``origins`` and ``eval_origins`` name each row's `file:line`."""

    train: list[Row]
    eval: list[Row] | None
    summary: DatasetSummary
    skipped_problems: list[str] = field(default_factory=list)
    origins: list[str] = field(default_factory=list)
    eval_origins: list[str] = field(default_factory=list)

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


# ====================================================================== public functions
def prepare_dataset(
    config: DatasetConfig,
    max_seq_length: int,
    count_tokens: TokenCounter | None = None,
    base_dir: str | None = None,
    seed: int = EVAL_SPLIT_SEED,
) -> PreparedDataset:
    """Read, detect, validate and normalise; raise DatasetError listing `file:line: problem`.

    ``count_tokens`` (when given) applies the exact length limit at once, as
    :func:`check_lengths` would; ``base_dir`` is where relative paths start
    (default: the current directory); ``seed`` fixes which rows eval_split holds out.
    """
    train, evaluation = _read_config(config, max_seq_length, count_tokens, base_dir)
    return _assemble(config, train, evaluation, config.skip_invalid, count_tokens is not None, seed)


def check_lengths(
    prepared: PreparedDataset,
    max_seq_length: int,
    count_tokens: TokenCounter,
    skip_invalid: bool = False,
) -> PreparedDataset:
    """Recount every row with the real tokenizer and refuse (or drop) rows over max_seq_length.

    Returns a new PreparedDataset whose summary says ``tokens_counted_with="tokenizer"``.
    Dropping rows here can leave fewer than ``max_rows`` rows.
    """
    source = prepared.summary.source
    train = _recount(prepared.train, prepared.origins, source, max_seq_length, count_tokens)
    evaluation = _recount(prepared.eval or [], prepared.eval_origins, f"{source} (eval)", max_seq_length, count_tokens)
    problems = train.problems + evaluation.problems
    if problems and not skip_invalid:
        raise DatasetError(f"{len(problems)} row(s) are longer than max_seq_length={max_seq_length}:", problems, _length_hint())
    if not train.rows:
        raise DatasetError(
            f"{prepared.summary.source}: every row is longer than max_seq_length={max_seq_length}", problems, _length_hint()
        )
    eval_rows = evaluation.rows or None
    summary = dataclasses.replace(
        prepared.summary,
        rows=len(train.rows),
        skipped=prepared.summary.skipped + len(problems),
        eval_rows=len(evaluation.rows),
        tokens_counted_with="tokenizer",
        **_token_stats(train),
    )
    return PreparedDataset(
        train=train.rows,
        eval=eval_rows,
        summary=summary,
        skipped_problems=prepared.skipped_problems + problems,
        origins=train.origins,
        eval_origins=evaluation.origins if eval_rows else [],
    )


def inspect_dataset(
    config_or_path: DatasetConfig | str | PathLike[str],
    n: int = 5,
    max_seq_length: int = 2048,
    base_dir: str | None = None,
    count_tokens: TokenCounter | None = None,
) -> DatasetPreview:
    """Preview a dataset for a form: the first ``n`` normalised rows, the summary and every problem.

    Never raises a DatasetError: a missing or unreadable file, or a dataset with no
    valid row, comes back as ``preview.error`` so the form can show the message.
    The summary counts the rows training would keep with skip_invalid.
    """
    config = config_or_path if isinstance(config_or_path, DatasetConfig) else DatasetConfig(path=str(config_or_path))
    try:
        train, evaluation = _read_config(config, max_seq_length, count_tokens, base_dir)
    except UnslothNbError as exc:
        return DatasetPreview(config.path, None, [], [], None, list(getattr(exc, "problems", [])), str(exc))
    problems = train.problems + (evaluation.problems if evaluation else [])
    preview = DatasetPreview(config.path, train.format, train.rows[:n], train.origins[:n], None, problems)
    try:
        preview.summary = _assemble(config, train, evaluation, True, count_tokens is not None, EVAL_SPLIT_SEED).summary
    except UnslothNbError as exc:
        preview.error = str(exc)
    return preview


def format_summary(summary: DatasetSummary) -> str:
    """One line a person reads before training starts."""
    estimate = summary.tokens_counted_with == "estimate"
    tokens = f"~{_short_number(summary.tokens)} tokens (estimate)" if estimate else f"{_short_number(summary.tokens)} tokens"
    parts = [f"{summary.rows:,} rows"]
    if summary.eval_rows:
        parts.append(f"{summary.eval_rows:,} eval rows")
    parts += [
        FORMAT_LABELS.get(summary.format, summary.format),
        tokens,
        f"longest {summary.longest_tokens:,} tokens",
        f"{summary.skipped:,} skipped",
    ]
    return f"{summary.source}: " + ", ".join(parts)


def estimate_tokens(row: Row) -> int:
    """Tokens a row is likely to take: ceil(chars / 4), plus 4 per turn for template markers."""
    if "text" in row:
        return math.ceil(len(row["text"]) / CHARS_PER_TOKEN)
    return sum(math.ceil(len(turn["content"]) / CHARS_PER_TOKEN) + TURN_OVERHEAD_TOKENS for turn in row["messages"])


def detect_format(record: Mapping[str, Any]) -> str | None:
    """The format whose columns a row has (see the module table), or None."""
    present = {key for key, value in record.items() if value is not None}
    for name, column_sets in FORMAT_COLUMNS.items():
        if any(present.issuperset(columns) for columns in column_sets):
            return name
    return None


# ====================================================================== reading a config
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


def _read_config(
    config: DatasetConfig, max_seq_length: int, count_tokens: TokenCounter | None, base_dir: str | None
) -> tuple[_Part, _Part | None]:
    _check_column_mapping(config.columns)
    train = _read_part(config.path, config, max_seq_length, count_tokens, base_dir, config.max_rows)
    evaluation = None
    if config.eval_path:
        evaluation = _read_part(config.eval_path, config, max_seq_length, count_tokens, base_dir, None)
    return train, evaluation


def _assemble(
    config: DatasetConfig,
    train: _Part,
    evaluation: _Part | None,
    skip_invalid: bool,
    exact_counts: bool,
    seed: int,
) -> PreparedDataset:
    parts = [train] if evaluation is None else [train, evaluation]
    problems = [p for part in parts for p in part.problems]
    for part in parts:
        if not part.rows:
            raise DatasetError(f"{part.display}: none of its {part.records:,} rows can be used:", part.problems, _hint(part))
    if problems and not skip_invalid:
        with_problems = [part for part in parts if part.problems]
        total = sum(part.records for part in with_problems)
        where = ", ".join(part.display for part in with_problems)
        raise DatasetError(f"{where}: {len(problems)} of {total:,} rows cannot be used:", problems, _hint(*parts))
    if evaluation is not None and (evaluation.format == "text") != (train.format == "text"):
        raise DatasetError(
            f"{evaluation.display} holds {FORMAT_LABELS[evaluation.format or '']} rows but {train.display} holds "
            f"{FORMAT_LABELS[train.format or '']} rows; plain text and conversations cannot be mixed",
        )
    if config.eval_split > 0:
        if evaluation is not None:
            raise ConfigError("dataset.eval_split", "give either an eval file (eval_path) or an eval_split fraction, not both")
        train, evaluation = _hold_out(train, config.eval_split, seed)
    summary = DatasetSummary(
        source=train.display,
        format=train.format or "",
        rows=len(train.rows),
        skipped=len(problems),
        eval_rows=len(evaluation.rows) if evaluation else 0,
        tokens_counted_with="tokenizer" if exact_counts else "estimate",
        **_token_stats(train),
    )
    return PreparedDataset(
        train=train.rows,
        eval=evaluation.rows if evaluation else None,
        summary=summary,
        skipped_problems=problems,
        origins=train.origins,
        eval_origins=evaluation.origins if evaluation else [],
    )


def _read_part(
    path_text: str,
    config: DatasetConfig,
    max_seq_length: int,
    count_tokens: TokenCounter | None,
    base_dir: str | None,
    limit: int | None,
) -> _Part:
    """Normalise the rows of one file, keeping the first ``limit`` valid ones."""
    path = _resolve(path_text, base_dir)
    part = _Part(display=path_text)
    forced = None if config.format == "auto" else config.format
    part.format = forced
    names = dict(config.columns)
    count = count_tokens or estimate_tokens
    for record in _records(path, path_text, config.split):
        part.records += 1
        if record.problem is not None:
            part.problems.append(f"{record.origin}: {record.problem}")
            continue
        if part.records == 1 and isinstance(record.value, Mapping):
            _check_columns_present(record.value, names, path_text)
        for origin, outcome in _normalise_record(record, names, part, forced):
            if isinstance(outcome, str):
                part.problems.append(f"{origin}: {outcome}")
                continue
            tokens = count(outcome)
            too_long = _length_problem(tokens, max_seq_length, exact=count_tokens is not None)
            if too_long:
                part.problems.append(f"{origin}: {too_long}")
                continue
            part.rows.append(outcome)
            part.origins.append(origin)
            part.tokens.append(tokens)
        if limit is not None and len(part.rows) >= limit:
            del part.rows[limit:], part.origins[limit:], part.tokens[limit:]
            break
    if part.records == 0:
        raise DatasetError(f"{path_text} is empty: it has no rows")
    return part


def _normalise_record(record: _Record, names: Mapping[str, str], part: _Part, forced: str | None) -> list[tuple[str, Row | str]]:
    """Each row a record gives (alpaca `instances` give several), or the problem in its place.

    Fixes ``part.format`` from the first valid row when detecting.
    """
    value = record.value
    if not isinstance(value, Mapping):
        return [(record.origin, f"expected an object with named fields, got {_kind(value)}")]
    row = _apply_columns(value, names)
    detected = detect_format(row)
    fmt = forced or part.format or detected
    if fmt is None:
        part.unknown_format = True
        return [(record.origin, _unknown_format_problem(row, names))]
    if forced is None and part.format is not None and detected not in (None, part.format):
        return [
            (
                record.origin,
                f"row is {_describe_format(detected)} but the rows before it are {_describe_format(part.format)}; "
                "a file holds one format",
            )
        ]
    try:
        units = _split_instances(row, names) if fmt == "alpaca" else [("", row)]
    except _RowProblem as problem:
        return [(record.origin, str(problem))]
    results: list[tuple[str, Row | str]] = []
    for suffix, unit in units:
        origin = record.origin + suffix
        try:
            results.append((origin, _NORMALISERS[fmt](unit, names)))
        except _RowProblem as problem:
            results.append((origin, str(problem)))
    if part.format is None and any(not isinstance(outcome, str) for _, outcome in results):
        part.format = fmt
    return results


def _hold_out(train: _Part, fraction: float, seed: int) -> tuple[_Part, _Part]:
    """Move a seeded random ``fraction`` of the rows (at least one, never all) to an eval part."""
    total = len(train.rows)
    if total < 2:
        raise DatasetError(
            f"{train.display}: eval_split={fraction:g} needs at least 2 valid rows, found {total}",
            hint="Add rows, or set eval_split to 0.",
        )
    held = min(total - 1, max(1, round(total * fraction)))
    chosen = set(random.Random(seed).sample(range(total), held))
    kept, evaluation = _Part(train.display, train.format), _Part(train.display, train.format)
    for index, (row, origin, tokens) in enumerate(zip(train.rows, train.origins, train.tokens, strict=True)):
        target = evaluation if index in chosen else kept
        target.rows.append(row)
        target.origins.append(origin)
        target.tokens.append(tokens)
    return kept, evaluation


def _recount(rows: list[Row], origins: list[str], source: str, max_seq_length: int, count_tokens: TokenCounter) -> _Part:
    part = _Part(display=source)
    if len(origins) != len(rows):  # built by hand, without origins
        origins = [f"{source}: row {number}" for number in range(1, len(rows) + 1)]
    for row, origin in zip(rows, origins, strict=True):
        tokens = count_tokens(row)
        too_long = _length_problem(tokens, max_seq_length, exact=True)
        if too_long:
            part.problems.append(f"{origin}: {too_long}")
            continue
        part.rows.append(row)
        part.origins.append(origin)
        part.tokens.append(tokens)
    return part


def _token_stats(part: _Part) -> dict[str, Any]:
    if not part.tokens:
        return {"tokens": 0, "longest_tokens": 0, "longest_origin": ""}
    longest = max(range(len(part.tokens)), key=part.tokens.__getitem__)
    return {"tokens": sum(part.tokens), "longest_tokens": part.tokens[longest], "longest_origin": part.origins[longest]}


def _length_problem(tokens: int, max_seq_length: int, exact: bool) -> str | None:
    if exact and tokens > max_seq_length:
        return f"row is {tokens} tokens, longer than max_seq_length={max_seq_length}"
    if not exact and tokens > ESTIMATE_SLACK * max_seq_length:
        return f"row is ~{tokens} tokens (estimate), longer than max_seq_length={max_seq_length}"
    return None


def _hint(*parts: _Part) -> str:
    lines = []
    if any(part.unknown_format for part in parts):
        lines.append(
            f"Accepted formats (columns): {ACCEPTED_FORMATS}. Map other column names with "
            "dataset.columns, e.g. --columns question=q,answer=a."
        )
    if any(part.rows for part in parts):
        lines.append(SKIP_HINT)
    return "\n".join(lines)


def _length_hint() -> str:
    return "Raise max_seq_length (--max-seq-length), shorten these rows, or pass --skip-invalid to drop them."


def _short_number(value: int) -> str:
    if value < 10_000:
        return f"{value:,}"
    if value < 1_000_000:
        return f"{round(value / 1000)}k"
    return f"{value / 1_000_000:.1f}M"


# ====================================================================== columns and formats
class _RowProblem(Exception):
    """What is wrong with one row; becomes a `file:line: ...` line."""


def _check_column_mapping(columns: Mapping[str, str]) -> None:
    for ours, theirs in columns.items():
        if ours not in CANONICAL_COLUMNS:
            raise ConfigError(
                "dataset.columns",
                f"{ours!r} is not a column name we read; map one of {', '.join(CANONICAL_COLUMNS)} to your column name "
                f"(e.g. question=q)",
            )
        if not isinstance(theirs, str) or not theirs:
            raise ConfigError("dataset.columns", f"{ours}: expected the name of one of your columns, got {theirs!r}")


def _check_columns_present(record: Mapping[str, Any], names: Mapping[str, str], display: str) -> None:
    """A mapped column the first row lacks is a typo in the mapping, not a bad row."""
    missing = [theirs for theirs in names.values() if theirs not in record]
    if missing:
        raise DatasetError(
            f"{display}: dataset.columns names {', '.join(map(repr, missing))}, but the first row has no such column; "
            f"its columns are: {', '.join(map(str, record)) or '(none)'}",
        )


def _apply_columns(record: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    row = dict(record)
    if not names:
        return row
    renamed = {ours: record[theirs] for ours, theirs in names.items() if theirs in record}
    for theirs in names.values():
        row.pop(theirs, None)
    row.update(renamed)
    return row


def _describe_format(fmt: str | None) -> str:
    if fmt is None:
        return "an unknown format"
    columns = "/".join(FORMAT_COLUMNS[fmt][0])
    return f"{FORMAT_LABELS[fmt]} ({columns})"


def _shown(key: str, names: Mapping[str, str]) -> str:
    return names.get(key, key)


def _columns_of(row: Mapping[str, Any], names: Mapping[str, str]) -> str:
    return ", ".join(_shown(str(key), names) for key in row) or "(none)"


def _unknown_format_problem(row: Mapping[str, Any], names: Mapping[str, str]) -> str:
    present = {key for key, value in row.items() if value is not None}
    for fmt, column_sets in FORMAT_COLUMNS.items():
        for columns in column_sets:
            if present.intersection(columns) and not present.issuperset(columns):
                missing = ", ".join(repr(_shown(c, names)) for c in columns if c not in present)
                needed = " and ".join(repr(_shown(c, names)) for c in columns)
                return f"missing {missing}: {FORMAT_LABELS[fmt]} rows need {needed} (columns: {_columns_of(row, names)})"
    return f"no known format (columns: {_columns_of(row, names)})"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    return type(value).__name__


def _text(row: Mapping[str, Any], key: str, names: Mapping[str, str], required: bool = True) -> str:
    """A text field; numbers become text; missing or blank is a problem when required."""
    value = row.get(key)
    shown = _shown(key, names)
    if value is None:
        if required:
            raise _RowProblem(f"missing '{shown}' (columns: {_columns_of(row, names)})")
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _RowProblem(f"'{shown}' should be text, got {_kind(value)}")
    text = value if isinstance(value, str) else str(value)
    if required and not text.strip():
        raise _RowProblem(f"'{shown}' is empty")
    return text


def _list(row: Mapping[str, Any], key: str, names: Mapping[str, str], what: str) -> list[Any]:
    """A list field; in CSV files it arrives as JSON text."""
    value = row.get(key)
    shown = _shown(key, names)
    if value is None:
        raise _RowProblem(f"missing '{shown}' (columns: {_columns_of(row, names)})")
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise _RowProblem(f"'{shown}' is not a valid JSON list ({exc.msg})") from None
    if not isinstance(value, (list, tuple)):
        raise _RowProblem(f"'{shown}' should be a list of {what}, got {_kind(value)}")
    if not value:
        raise _RowProblem(f"'{shown}' is an empty list")
    return list(value)


def _with_system(row: Mapping[str, Any], names: Mapping[str, str], turns: list[dict[str, str]]) -> Row:
    system = _text(row, "system", names, required=False)
    if system.strip():
        turns.insert(0, {"role": "system", "content": system})
    return {"messages": turns}


def _qa_row(row: Mapping[str, Any], names: Mapping[str, str]) -> Row:
    question = _text(row, "question", names)
    answer = _text(row, "answer", names)
    return _with_system(row, names, [{"role": "user", "content": question}, {"role": "assistant", "content": answer}])


def _alpaca_row(row: Mapping[str, Any], names: Mapping[str, str]) -> Row:
    instruction = _text(row, "instruction", names)
    extra = _text(row, "input", names, required=False)
    output = _text(row, "output", names)
    prompt = f"{instruction}\n\n{extra}" if extra.strip() else instruction
    return _with_system(row, names, [{"role": "user", "content": prompt}, {"role": "assistant", "content": output}])


def _split_instances(row: dict[str, Any], names: Mapping[str, str]) -> list[tuple[str, dict[str, Any]]]:
    """Nested alpaca (instruction + instances: [{input, output}]) -> one flat row per instance."""
    if row.get("output") is not None or row.get("instances") is None:
        return [("", row)]
    instances = _list(row, "instances", names, "{input, output} objects")
    units = []
    for number, instance in enumerate(instances, 1):
        if not isinstance(instance, Mapping):
            raise _RowProblem(f"instance {number}: expected an object with input and output, got {_kind(instance)}")
        unit = {key: value for key, value in row.items() if key != "instances"}
        unit.update(instance)
        units.append((f": instance {number}" if len(instances) > 1 else "", unit))
    return units


def _prompt_completion_row(row: Mapping[str, Any], names: Mapping[str, str]) -> Row:
    prompt, completion = row.get("prompt"), row.get("completion")
    if isinstance(prompt, (list, tuple)) or isinstance(completion, (list, tuple)):
        if not (isinstance(prompt, (list, tuple)) and isinstance(completion, (list, tuple))):
            raise _RowProblem(
                f"'{_shown('prompt', names)}' and '{_shown('completion', names)}' should both be text "
                "or both be lists of messages"
            )
        turns = _role_content_turns([*prompt, *completion])
        _check_conversation(turns)
        return {"messages": turns}
    text_prompt = _text(row, "prompt", names)
    text_completion = _text(row, "completion", names)
    return _with_system(row, names, [{"role": "user", "content": text_prompt}, {"role": "assistant", "content": text_completion}])


def _messages_row(row: Mapping[str, Any], names: Mapping[str, str]) -> Row:
    turns = _role_content_turns(_list(row, "messages", names, "{role, content} turns"))
    _check_conversation(turns)
    return {"messages": turns}


def _sharegpt_row(row: Mapping[str, Any], names: Mapping[str, str]) -> Row:
    turns = []
    for number, turn in enumerate(_list(row, "conversations", names, "{from, value} turns"), 1):
        if not isinstance(turn, Mapping):
            raise _RowProblem(f"turn {number}: expected an object with from and value, got {_kind(turn)}")
        if turn.get("from") is None and turn.get("role") is not None:
            turns.append(_role_content_turn(turn, number))
            continue
        speaker = turn.get("from")
        if speaker is None:
            raise _RowProblem(f"turn {number}: missing 'from'")
        role = SHAREGPT_ROLES.get(str(speaker).lower())
        if role is None:
            raise _RowProblem(f"turn {number}: unknown speaker {speaker!r}; ShareGPT uses human, gpt and system")
        turns.append({"role": role, "content": _turn_content(turn.get("value"), number, "value")})
    _check_conversation(turns)
    return {"messages": turns}


def _text_row(row: Mapping[str, Any], names: Mapping[str, str]) -> Row:
    return {"text": _text(row, "text", names)}


_NORMALISERS: dict[str, Callable[[Mapping[str, Any], Mapping[str, str]], Row]] = {
    "messages": _messages_row,
    "sharegpt": _sharegpt_row,
    "alpaca": _alpaca_row,
    "qa": _qa_row,
    "prompt_completion": _prompt_completion_row,
    "text": _text_row,
}


def _role_content_turns(turns: Iterable[Any]) -> list[dict[str, str]]:
    out = []
    for number, turn in enumerate(turns, 1):
        if not isinstance(turn, Mapping):
            raise _RowProblem(f"turn {number}: expected an object with role and content, got {_kind(turn)}")
        out.append(_role_content_turn(turn, number))
    return out


def _role_content_turn(turn: Mapping[str, Any], number: int) -> dict[str, str]:
    role = turn.get("role")
    if role is None:
        raise _RowProblem(f"turn {number}: missing 'role'")
    if role not in MESSAGE_ROLES:
        raise _RowProblem(f"turn {number}: unknown role {role!r}; use system, user or assistant")
    return {"role": role, "content": _turn_content(turn.get("content"), number, "content")}


def _turn_content(content: Any, number: int, key: str) -> str:
    """Text of a turn; OpenAI-style lists of {type: text, text} parts are joined."""
    if content is None:
        raise _RowProblem(f"turn {number}: missing '{key}'")
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):
        texts = []
        for part in content:
            if not (isinstance(part, Mapping) and part.get("type") == "text" and isinstance(part.get("text"), str)):
                raise _RowProblem(f"turn {number}: only text content is supported, found {part!r:.60}")
            texts.append(part["text"])
        return "".join(texts)
    raise _RowProblem(f"turn {number}: '{key}' should be text, got {_kind(content)}")


def _check_conversation(turns: list[dict[str, str]]) -> None:
    """Optional leading system turn, then user/assistant alternating from user, with an assistant turn."""
    expected = "user"
    previous = None
    for number, turn in enumerate(turns, 1):
        role = turn["role"]
        if not turn["content"].strip():
            raise _RowProblem(f"turn {number}: empty {role} content")
        if role == "system":
            if number != 1:
                raise _RowProblem(f"turn {number}: a system turn can only be the first turn")
        elif role != expected:
            if role == previous:
                raise _RowProblem(f"turn {number}: two {role} turns in a row")
            raise _RowProblem(
                f"turn {number}: the conversation starts with an assistant turn; "
                "it must start with a user turn (after an optional system turn)"
            )
        else:
            expected = "assistant" if role == "user" else "user"
        previous = role
    if not any(turn["role"] == "assistant" for turn in turns):
        raise _RowProblem("no assistant turn; each row needs at least one answer to learn from")


# ====================================================================== files
@dataclass(frozen=True)
class _Record:
    """One raw row and where it came from, or why it could not be read."""

    origin: str
    value: Any = None
    problem: str | None = None


def _resolve(path_text: str, base_dir: str | None) -> Path:
    if not path_text or not str(path_text).strip():
        raise DatasetError("no dataset given; pass --dataset (a .jsonl, .json, .csv or .parquet file, or a datasets folder)")
    path = Path(path_text).expanduser()
    base = Path(base_dir).expanduser() if base_dir else Path.cwd()
    full = path if path.is_absolute() else base / path
    if not full.exists():
        where = f"base_dir {base}" if base_dir else f"the current directory {base}"
        hint = f"Looked for {full}. A relative path is read from {where}; check the spelling or give an absolute path."
        if not path.suffix and len(path.parts) == 2:
            hint += " (Hub dataset ids are not read directly: save the dataset with save_to_disk and give that folder.)"
        raise DatasetError(f"dataset not found: {path_text}", hint=hint)
    return full


def _records(path: Path, display: str, split: str) -> Iterator[_Record]:
    if path.is_dir():
        return _read_saved_dataset(path, display, split)
    kind = FILE_TYPES.get(path.suffix.lower())
    if kind is None:
        raise DatasetError(
            f"{display}: unknown file type {path.suffix or '(no extension)'!r}",
            hint="Use a .jsonl, .json, .csv, .tsv or .parquet file, or a folder written by Dataset.save_to_disk.",
        )
    if path.stat().st_size == 0:
        raise DatasetError(f"{display} is empty (0 bytes)")
    if kind == "jsonl":
        return _read_jsonl(_text_lines(path, display), display)
    if kind == "json":
        return _read_json(path, display)
    if kind == "parquet":
        return _read_parquet(path, display)
    return _read_csv(path, display, "\t" if kind == "tsv" else ",")


def _encoding_error(display: str, line: int, column: int, byte: int) -> DatasetError:
    return DatasetError(
        f"{display}:{line}: not UTF-8 text (byte 0x{byte:02x} at column {column})",
        hint="Save the file as UTF-8, e.g. `iconv -f latin1 -t utf-8 old.jsonl > new.jsonl`.",
    )


def _refuse_other_encodings(first_line: bytes, display: str) -> None:
    if first_line.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        raise DatasetError(f"{display} is UTF-16/UTF-32 encoded; save it as UTF-8")
    if b"\x00" in first_line:
        raise DatasetError(f"{display} is not UTF-8 text (it contains NUL bytes; UTF-16 or a binary file?)")


def _text_lines(path: Path, display: str) -> Iterator[str]:
    """Decoded lines, split on '\\n' only (keeping it), so line numbers match an editor's."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            if number == 1:
                _refuse_other_encodings(raw, display)
                raw = raw.removeprefix(codecs.BOM_UTF8)
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _encoding_error(display, number, exc.start + 1, raw[exc.start]) from None


def _read_jsonl(lines: Iterable[str], display: str) -> Iterator[_Record]:
    seen_row = False
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if not stripped:
            continue
        if not seen_row and stripped == "[":
            raise DatasetError(f"{display}:{number}: this is a JSON array, not JSON Lines; rename the file to .json")
        seen_row = True
        origin = f"{display}:{number}"
        try:
            yield _Record(origin, json.loads(line))
        except json.JSONDecodeError as exc:
            yield _Record(origin, problem=f"not valid JSON ({exc.msg} at column {exc.colno})")


_WHITESPACE = re.compile(r"[ \t\n\r]*")


def _skip_whitespace(text: str, index: int) -> int:
    return _WHITESPACE.match(text, index).end()  # type: ignore[union-attr]  # always matches


def _read_json(path: Path, display: str) -> Iterator[_Record]:
    """A JSON array (each row at the line where it starts), an object holding one, or JSON Lines."""
    data = path.read_bytes()
    _refuse_other_encodings(data[: data.find(b"\n") + 1 or len(data)], display)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        raise _encoding_error(display, data.count(b"\n", 0, exc.start) + 1, exc.start - line_start + 1, data[exc.start]) from None
    start = _skip_whitespace(text, 0)
    if start == len(text):
        return
    if text[start] == "[":
        yield from _json_array(text, start, display)
        return
    try:
        whole = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # one object per line: JSON Lines under a .json name
            yield from _read_jsonl(text.split("\n"), display)
            return
        raise DatasetError(f"{display}:{exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    if isinstance(whole, dict) and detect_format(whole) is None:
        lists = [key for key, value in whole.items() if isinstance(value, list)]
        if len(lists) == 1:
            for number, value in enumerate(whole[lists[0]], 1):
                yield _Record(f"{display}: row {number}", value)
            return
    if isinstance(whole, dict):
        yield _Record(f"{display}:{text.count(chr(10), 0, start) + 1}", whole)
        return
    raise DatasetError(f"{display}: expected a JSON array of rows (or one object per line), got {_kind(whole)}")


def _json_array(text: str, start: int, display: str) -> Iterator[_Record]:
    decoder = json.JSONDecoder()
    index = _skip_whitespace(text, start + 1)
    line, counted_to = 1, 0
    if index < len(text) and text[index] == "]":
        return
    while True:
        line += text.count("\n", counted_to, index)
        counted_to = index
        try:
            value, end = decoder.raw_decode(text, index)
        except json.JSONDecodeError as exc:
            raise DatasetError(
                f"{display}:{exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno})",
                hint="A broken JSON array cannot be read past the error; fix it (or use JSON Lines, one row per line).",
            ) from None
        yield _Record(f"{display}:{line}", value)
        index = _skip_whitespace(text, end)
        if index < len(text) and text[index] == ",":
            index = _skip_whitespace(text, index + 1)
            continue
        at = text.count("\n", 0, index) + 1
        if index < len(text) and text[index] == "]":
            if text[index + 1 :].strip():
                raise DatasetError(f"{display}:{at}: not valid JSON (text after the closing ']')")
            return
        raise DatasetError(f"{display}:{at}: not valid JSON (expected ',' or ']' after a row)")


def _read_csv(path: Path, display: str, delimiter: str) -> Iterator[_Record]:
    """Rows keyed by the header; each row's line is where its record starts (quoted cells may span lines)."""
    # Training text often exceeds the csv module's default 128 KiB cell limit.
    csv.field_size_limit(2**31 - 1)
    reader = csv.reader(_text_lines(path, display), delimiter=delimiter, strict=True)
    header: list[str] = []
    try:
        for header in reader:
            if header:
                break
    except csv.Error as exc:
        raise DatasetError(f"{display}:{reader.line_num}: the header line is not valid CSV ({exc})") from None
    if not header:
        return
    names = [name.strip() for name in header]
    finished = reader.line_num
    while True:
        start = finished + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            finished = reader.line_num
            yield _Record(f"{display}:{start}", problem=f"not valid CSV ({exc})")
            continue
        finished = reader.line_num
        if not fields:
            continue
        if len(fields) != len(names):
            yield _Record(f"{display}:{start}", problem=f"{len(fields)} fields, but the header has {len(names)} columns")
            continue
        yield _Record(f"{display}:{start}", dict(zip(names, fields, strict=True)))


def _read_parquet(path: Path, display: str) -> Iterator[_Record]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise DatasetError(f"{display}: not a readable Parquet file ({exc})") from None
    number = 0
    for batch in parquet.iter_batches(batch_size=1024):
        for value in batch.to_pylist():
            number += 1
            yield _Record(f"{display}: row {number}", value)


def _is_saved_dataset(path: Path) -> bool:
    return (path / "dataset_dict.json").is_file() or (path / "state.json").is_file()


def _read_saved_dataset(path: Path, display: str, split: str) -> Iterator[_Record]:
    if not _is_saved_dataset(path):
        files = sorted(p.name for p in path.iterdir() if p.suffix.lower() in FILE_TYPES)
        hint = (
            f"It holds {', '.join(files[:5])}: give one of those files."
            if files
            else "Give a data file, or a folder written by Dataset.save_to_disk / DatasetDict.save_to_disk."
        )
        raise DatasetError(
            f"{display} is a folder but not a saved `datasets` folder (no dataset_dict.json or state.json)", hint=hint
        )
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{display}: the saved `datasets` folder cannot be loaded ({exc})") from None
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise DatasetError(
                f"{display} has no split {split!r}; its splits are: {', '.join(loaded)}",
                hint="Choose one with dataset.split (--split).",
            )
        loaded = loaded[split]
        display = f"{display.rstrip('/')}/{split}"
    for number, value in enumerate(loaded, 1):
        yield _Record(f"{display}: row {number}", value)
