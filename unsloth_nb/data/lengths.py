"""Token lengths: counting a row's tokens and what happens to rows over max_seq_length.

``dataset.long_rows`` says what happens to a row longer than max_seq_length:

- ``truncate`` (the default, as TRL and Unsloth's notebooks do): the row is kept and the
  trainer cuts it at max_seq_length (TRL's ``max_length``, keeping the start; the engine
  checks it did). A row whose first answer would start past the limit has nothing left to
  learn from, so it is dropped. The summary says how many rows were cut, how many tokens
  went, and how many rows were dropped;
- ``drop``: the row is dropped, and the summary says how many;
- ``error``: the row is a problem like any invalid row (refused unless skip_invalid).

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


LONG_ROW_POLICIES = ("truncate", "drop", "error")


def check_lengths(
    prepared: PreparedDataset,
    max_seq_length: int,
    count_tokens: TokenCounter,
    skip_invalid: bool = False,
    long_rows: str = "truncate",
) -> PreparedDataset:
    """Recount every row with the real tokenizer and apply ``long_rows`` to rows over max_seq_length.

    Returns a new PreparedDataset whose summary says ``tokens_counted_with="tokenizer"``.
    Dropping rows here can leave fewer than ``max_rows`` rows.
    """
    source = prepared.summary.source
    train = _recount(prepared.train, prepared.origins, source, max_seq_length, count_tokens, long_rows)
    evaluation = _recount(prepared.eval or [], prepared.eval_origins, f"{source} (eval)", max_seq_length, count_tokens, long_rows)
    problems = train.problems + evaluation.problems
    if problems and not skip_invalid:
        raise DatasetError(f"{len(problems)} row(s) are longer than max_seq_length={max_seq_length}:", problems, _length_hint())
    if not train.rows:
        raise DatasetError(
            f"{prepared.summary.source}: every row is longer than max_seq_length={max_seq_length}",
            problems + train.long_dropped,
            _length_hint(),
        )
    eval_rows = evaluation.rows or None
    summary = dataclasses.replace(
        prepared.summary,
        rows=len(train.rows),
        skipped=prepared.summary.skipped + len(problems),
        eval_rows=len(evaluation.rows),
        tokens_counted_with="tokenizer",
        **_token_stats(train),
        **_long_row_stats(train, evaluation, max_seq_length, long_rows),
    )
    return PreparedDataset(
        train=train.rows,
        eval=eval_rows,
        summary=summary,
        skipped_problems=prepared.skipped_problems + problems,
        origins=train.origins,
        eval_origins=evaluation.origins if eval_rows else [],
    )


def _recount(
    rows: list[Row], origins: list[str], source: str, max_seq_length: int, count_tokens: TokenCounter, long_rows: str
) -> _Part:
    part = _Part(display=source)
    if len(origins) != len(rows):  # built by hand, without origins
        origins = [f"{source}: row {number}" for number in range(1, len(rows) + 1)]
    for row, origin in zip(rows, origins, strict=True):
        keep_if_fits(part, row, origin, count_tokens(row), max_seq_length, True, long_rows, count_tokens)
    return part


def keep_if_fits(
    part: _Part,
    row: Row,
    origin: str,
    tokens: int,
    max_seq_length: int,
    exact: bool,
    long_rows: str = "error",
    count_tokens: TokenCounter | None = None,
) -> bool:
    """Keep the row in ``part`` (truncated when ``long_rows`` says so), or note why not; True when kept.

    ``count_tokens`` counts the prompt of a row to be truncated (default: the estimate),
    to find rows whose answer would be cut off entirely.
    """
    limit = max_seq_length if exact else ESTIMATE_SLACK * max_seq_length
    if tokens > limit:
        if long_rows == "drop":
            part.long_dropped.append(f"{origin}: row is {_tokens_text(tokens, exact)} tokens, longer than max_seq_length")
            return False
        if long_rows == "truncate":
            if answer_cut_off(row, max_seq_length, count_tokens or estimate_tokens, exact):
                part.long_dropped.append(f"{origin}: its answer starts past max_seq_length={max_seq_length}")
                return False
        else:
            part.problems.append(f"{origin}: {_length_problem(tokens, max_seq_length, exact)}")
            return False
    if tokens > max_seq_length and long_rows == "truncate":
        part.truncated += 1
        part.tokens_cut += tokens - max_seq_length
        tokens = max_seq_length
    part.rows.append(row)
    part.origins.append(origin)
    part.tokens.append(tokens)
    return True


def answer_cut_off(row: Row, max_seq_length: int, count_tokens: TokenCounter, exact: bool = True) -> bool:
    """True when the tokens before the row's first answer already fill max_seq_length.

    Truncation keeps the start of a row, so such a row would train on no answer at
    all. Plain-text rows have no answer and are never cut off.
    """
    messages = row.get("messages")
    if not messages:
        return False
    prompt: list[dict[str, str]] = []
    for turn in messages:
        if turn["role"] == "assistant":
            break
        prompt.append(turn)
    if not prompt:
        return False
    try:
        before = count_tokens({"messages": prompt})
    except Exception:  # a template that refuses a prompt alone: the answer is not known to be cut
        return False
    return before >= (max_seq_length if exact else ESTIMATE_SLACK * max_seq_length)


def _tokens_text(tokens: int, exact: bool) -> str:
    return f"{tokens}" if exact else f"~{tokens}"


def _long_row_stats(train: _Part, evaluation: _Part | None, max_seq_length: int, long_rows: str) -> dict[str, Any]:
    parts = [train] if evaluation is None else [train, evaluation]
    return {
        "truncated_rows": sum(p.truncated for p in parts),
        "tokens_cut": sum(p.tokens_cut for p in parts),
        "long_dropped": sum(len(p.long_dropped) for p in parts),
        "max_seq_length": max_seq_length,
        "long_rows": long_rows,
    }


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
        f"Raise {name_field('train.max_seq_length')}, shorten these rows, or let them be truncated "
        f"({set_field('dataset.long_rows', 'truncate')}) or dropped ({set_field('dataset.long_rows', 'drop')}, "
        f"or {set_field('dataset.skip_invalid', True)})."
    )
