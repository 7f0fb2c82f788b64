"""Dataset formats: the columns that identify each one, and the user's names for them.

The format tables, :func:`detect_format` and the column mapping live here, apart
from the row normalisers, because the file readers (is a JSON object one row, or
a holder of rows?) and the summary line (a format's user-facing name) need them
too. The helpers that name a row's columns and a value's kind in a problem
message are here for the same reason.

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

Column names people export under other spellings are recognised without a flag
(:func:`infer_columns`): names match without regard to case (``Question``/``Answer``
from a spreadsheet), and the common pairs input/output, prompt/response,
query/response, instruction/response, human/assistant and user/assistant are read
as a question and its answer. The mapping used is reported in the dataset summary.
Anything else is mapped with ``DatasetConfig.columns`` ({our name: yours}), which
is applied before detection and turns the guessing off.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from unsloth_nb.errors import ConfigError, DatasetError

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


#: Column pairs read as (question, answer) when no format's own columns are present, in
#: the order tried. ``input``/``output`` without ``instruction`` is a Q&A pair too.
QA_SYNONYMS: tuple[tuple[str, str], ...] = (
    ("question", "answer"),
    ("input", "output"),
    ("prompt", "response"),
    ("query", "response"),
    ("instruction", "response"),
    ("human", "assistant"),
    ("user", "assistant"),
    ("question", "response"),
    ("prompt", "answer"),
)


def infer_columns(record: Mapping[str, Any]) -> dict[str, str]:
    """A column mapping ({our name: yours}) for a row whose columns are spelled differently, or {}.

    Empty when the row's own column names already identify a format. Otherwise
    names are matched without regard to case and surrounding spaces; when that
    still identifies no format, the first pair of :data:`QA_SYNONYMS` the row has
    becomes question/answer (with a ``system`` column, whatever its case).
    """
    if detect_format(record) is not None:
        return {}
    by_folded: dict[str, str] = {}
    for key in record:
        if isinstance(key, str):
            by_folded.setdefault(key.strip().lower(), key)
    canonical = {ours: by_folded[ours] for ours in CANONICAL_COLUMNS if ours in by_folded}
    if detect_format(_apply_columns(record, canonical)) is not None:
        return {ours: theirs for ours, theirs in canonical.items() if ours != theirs}
    for ask, answer in QA_SYNONYMS:
        if ask in by_folded and answer in by_folded and record.get(by_folded[ask]) is not None:
            names = {"question": by_folded[ask], "answer": by_folded[answer]}
            if "system" in by_folded:
                names["system"] = by_folded["system"]
            return {ours: theirs for ours, theirs in names.items() if ours != theirs}
    return {}


def describe_columns(names: Mapping[str, str]) -> str:
    """A mapping as the summary shows it: ``Question->question, Answer->answer``."""
    return ", ".join(f"{theirs}->{ours}" for ours, theirs in names.items())


def detect_format(record: Mapping[str, Any]) -> str | None:
    """The format whose columns a row has (see the module table), or None."""
    present = {key for key, value in record.items() if value is not None}
    for name, column_sets in FORMAT_COLUMNS.items():
        if any(present.issuperset(columns) for columns in column_sets):
            return name
    return None


# ====================================================================== columns
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
