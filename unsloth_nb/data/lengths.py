"""Token lengths: counting a row's tokens and refusing (or dropping) rows over max_seq_length.

Token counts: without a tokenizer each row is estimated as ceil(characters / 4)
plus 4 tokens per turn for the chat template's markers. Such estimates can be
off by a third, so without a tokenizer a row is reported as too long only when
its estimate exceeds 1.5 x max_seq_length; :func:`check_lengths` (the engine
calls it with the real tokenizer and chat template) applies the exact limit.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from unsloth_nb.data.records import PreparedDataset, Row, TokenCounter, _Part
from unsloth_nb.errors import DatasetError, name_field, set_field

CHARS_PER_TOKEN = 4
TURN_OVERHEAD_TOKENS = 4
#: Without a tokenizer, only rows whose estimate exceeds this multiple of max_seq_length are too long.
ESTIMATE_SLACK = 1.5


def estimate_tokens(row: Row) -> int:
    """Tokens a row is likely to take: ceil(chars / 4), plus 4 per turn for template markers."""
    if "text" in row:
        return math.ceil(len(row["text"]) / CHARS_PER_TOKEN)
    return sum(math.ceil(len(turn["content"]) / CHARS_PER_TOKEN) + TURN_OVERHEAD_TOKENS for turn in row["messages"])


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


def _recount(rows: list[Row], origins: list[str], source: str, max_seq_length: int, count_tokens: TokenCounter) -> _Part:
    part = _Part(display=source)
    if len(origins) != len(rows):  # built by hand, without origins
        origins = [f"{source}: row {number}" for number in range(1, len(rows) + 1)]
    for row, origin in zip(rows, origins, strict=True):
        keep_if_fits(part, row, origin, count_tokens(row), max_seq_length, exact=True)
    return part


def keep_if_fits(part: _Part, row: Row, origin: str, tokens: int, max_seq_length: int, exact: bool) -> bool:
    """Keep the row in ``part``, or note why not (too long) under its origin; True when kept."""
    too_long = _length_problem(tokens, max_seq_length, exact=exact)
    if too_long:
        part.problems.append(f"{origin}: {too_long}")
        return False
    part.rows.append(row)
    part.origins.append(origin)
    part.tokens.append(tokens)
    return True


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


def _length_hint() -> str:
    return (
        f"Raise {name_field('train.max_seq_length')}, shorten these rows, "
        f"or {set_field('dataset.skip_invalid', True)} to drop them."
    )
