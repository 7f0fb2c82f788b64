"""Datasets: read -> detect format -> validate -> normalise to conversations.

Everything here runs before any model loads, so a mistake in row 9,000 is found
in a second instead of after a 10-minute model download. Every problem names its
place as ``file:line:`` (JSON Lines, CSV, JSON arrays) or ``file: row N:``
(Parquet, saved ``datasets`` folders), so the user can jump straight to it.

The steps, one module each (their docstrings hold the details):

- :mod:`~unsloth_nb.data.readers`: the files read (JSON Lines, JSON, CSV/TSV,
  Parquet, saved ``datasets`` folders) and each raw row's ``file:line``;
- :mod:`~unsloth_nb.data.formats`: the formats detected from a row's columns,
  and ``DatasetConfig.columns`` mapping other column names onto ours;
- :mod:`~unsloth_nb.data.normalise`: one row to ``{"messages": [...]}`` or
  ``{"text": ...}``, and what is wrong with a row that cannot be;
- :mod:`~unsloth_nb.data.lengths`: token estimates and :func:`check_lengths`,
  the exact limit with the real tokenizer;
- :mod:`~unsloth_nb.data.pipeline`: :func:`prepare_dataset` and
  :func:`inspect_dataset`, the skip-invalid policy and the eval split;
- :mod:`~unsloth_nb.data.records`: the shared types and the results.

Import the public names from here (``from unsloth_nb.data import prepare_dataset``);
the modules behind them may move.
"""

from __future__ import annotations

from unsloth_nb.data.formats import (
    ACCEPTED_FORMATS,
    CANONICAL_COLUMNS,
    FORMAT_COLUMNS,
    FORMAT_LABELS,
    detect_format,
)
from unsloth_nb.data.lengths import (
    CHARS_PER_TOKEN,
    ESTIMATE_SLACK,
    TURN_OVERHEAD_TOKENS,
    check_lengths,
    estimate_tokens,
)
from unsloth_nb.data.normalise import MESSAGE_ROLES, SHAREGPT_ROLES
from unsloth_nb.data.pipeline import EVAL_SPLIT_SEED, SKIP_HINT, inspect_dataset, prepare_dataset
from unsloth_nb.data.readers import FILE_TYPES
from unsloth_nb.data.records import (
    DatasetPreview,
    DatasetSummary,
    PreparedDataset,
    Row,
    TokenCounter,
    format_summary,
)

__all__ = [
    "ACCEPTED_FORMATS",
    "CANONICAL_COLUMNS",
    "CHARS_PER_TOKEN",
    "ESTIMATE_SLACK",
    "EVAL_SPLIT_SEED",
    "FILE_TYPES",
    "FORMAT_COLUMNS",
    "FORMAT_LABELS",
    "MESSAGE_ROLES",
    "SHAREGPT_ROLES",
    "SKIP_HINT",
    "TURN_OVERHEAD_TOKENS",
    "DatasetPreview",
    "DatasetSummary",
    "PreparedDataset",
    "Row",
    "TokenCounter",
    "check_lengths",
    "detect_format",
    "estimate_tokens",
    "format_summary",
    "inspect_dataset",
    "prepare_dataset",
]
