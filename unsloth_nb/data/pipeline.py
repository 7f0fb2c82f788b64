"""The dataset pipeline end to end: read -> detect -> validate -> normalise, then hold out eval rows.

:func:`prepare_dataset` refuses a dataset with bad rows (listing each as
``file:line: problem``) unless ``skip_invalid`` drops them; :func:`inspect_dataset`
runs the same steps for a form and hands the problems back instead of raising.
The policy lives here; reading, normalising and counting are the other modules'.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from os import PathLike
from typing import Any

from unsloth_nb.config import DatasetConfig
from unsloth_nb.data.formats import (
    ACCEPTED_FORMATS,
    FORMAT_LABELS,
    _check_column_mapping,
    _check_columns_present,
    infer_columns,
)
from unsloth_nb.data.lengths import _long_row_stats, _token_stats, estimate_tokens, keep_if_fits
from unsloth_nb.data.normalise import _normalise_record
from unsloth_nb.data.readers import _records
from unsloth_nb.data.records import DatasetPreview, DatasetSummary, PreparedDataset, TokenCounter, _Part
from unsloth_nb.data.sources import source_for, source_from_json
from unsloth_nb.errors import ConfigError, DatasetError, UnslothNbError, set_field

EVAL_SPLIT_SEED = 3407
SKIP_HINT = f"Fix these rows, or {set_field('dataset.skip_invalid', True)} to drop them and train on the rest."


def prepare_dataset(
    config: DatasetConfig,
    max_seq_length: int,
    count_tokens: TokenCounter | None = None,
    base_dir: str | None = None,
    seed: int = EVAL_SPLIT_SEED,
    *,
    sample: bool = False,
    pinned: Mapping[str, Mapping[str, Any]] | None = None,
) -> PreparedDataset:
    """Read, detect, validate and normalise; raise DatasetError listing `file:line: problem`.

    ``count_tokens`` (when given) applies the exact length limit at once, as
    :func:`check_lengths` would; ``base_dir`` is where relative paths start
    (default: the current directory); ``seed`` fixes which rows eval_split holds out.
    ``sample`` reads only the first rows of remote sources (see :mod:`unsloth_nb.data.remote`);
    ``pinned`` maps a source as written to the JSON of the source to read instead (the
    revision another process resolved).
    """
    train, evaluation = _read_config(config, max_seq_length, count_tokens, base_dir, sample, pinned)
    prepared = _assemble(config, train, evaluation, config.skip_invalid, count_tokens is not None, seed, max_seq_length)
    prepared.pinned = {**train.pinned, **(evaluation.pinned if evaluation else {})}
    return prepared


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
        train, evaluation = _read_config(config, max_seq_length, count_tokens, base_dir, sample=True)
    except UnslothNbError as exc:
        return DatasetPreview(config.path, None, [], [], None, list(getattr(exc, "problems", [])), str(exc))
    problems = train.problems + (evaluation.problems if evaluation else [])
    preview = DatasetPreview(config.path, train.format, train.rows[:n], train.origins[:n], None, problems)
    try:
        preview.summary = _assemble(
            config, train, evaluation, True, count_tokens is not None, EVAL_SPLIT_SEED, max_seq_length
        ).summary
    except UnslothNbError as exc:
        preview.error = str(exc)
    return preview


# ====================================================================== reading a config
def _read_config(
    config: DatasetConfig,
    max_seq_length: int,
    count_tokens: TokenCounter | None,
    base_dir: str | None,
    sample: bool = False,
    pinned: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[_Part, _Part | None]:
    _check_column_mapping(config.columns)

    def read(source: str, limit: int | None = None) -> _Part:
        return _read_part(source, config, max_seq_length, count_tokens, base_dir, limit, sample, pinned)

    if config.mix:
        from unsloth_nb.data.mix import read_mix

        train = read_mix(config, read, max_seq_length)
    else:
        train = read(config.path, config.max_rows)
    evaluation = read(config.eval_path) if config.eval_path else None
    return train, evaluation


def _assemble(
    config: DatasetConfig,
    train: _Part,
    evaluation: _Part | None,
    skip_invalid: bool,
    exact_counts: bool,
    seed: int,
    max_seq_length: int = 0,
) -> PreparedDataset:
    parts = [train] if evaluation is None else [train, evaluation]
    columns = dict(train.columns)
    long_stats = _long_row_stats(train, evaluation, max_seq_length, config.long_rows)
    problems = [p for part in parts for p in part.problems]
    for part in parts:
        if not part.rows:
            raise DatasetError(
                f"{part.display}: none of its {part.records:,} rows can be used:",
                part.problems + part.long_dropped,
                _hint(part),
            )
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
        columns=columns,
        sources=[line for part in parts for line in part.source_lines()],
        **_token_stats(train),
        **long_stats,
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
    sample: bool = False,
    pinned: Mapping[str, Mapping[str, Any]] | None = None,
) -> _Part:
    """Normalise the rows of one source, keeping the first ``limit`` valid ones.

    ``sample`` reads only the start of a remote source (a preview); a local file is read whole either way.
    """
    if pinned and path_text in pinned:
        source = source_from_json(dict(pinned[path_text]))
    else:
        source = source_for(
            path_text, config_name=config.config_name, split=config.split, revision=config.revision, base_dir=base_dir
        )
    files = source.sample() if sample else source.open_full()
    part = _Part(display=path_text)
    if source.kind != "local":
        info = source.describe()
        seen = (pinned or {}).get(path_text, {}).get("version")
        if seen and info.version != seen:
            raise DatasetError(
                f"{path_text} changed since the job was planned (version {str(seen)[:12]}, now {info.version[:12]})",
                hint="Start the job again to check and plan the new data.",
            )
        part.info.append(info)
        part.source_line = info.line() + (" (a sample of its first rows read here)" if sample else "")
        part.pinned[path_text] = {**source.to_json(), "version": info.version}
    forced = None if config.format == "auto" else config.format
    part.format = forced
    names = dict(config.columns)
    guess = not names
    count = count_tokens or estimate_tokens
    for record in (record for file in files for record in _records(file.path, file.display, config.split)):
        part.records += 1
        if record.problem is not None:
            part.problems.append(f"{record.origin}: {record.problem}")
            continue
        if part.records == 1 and isinstance(record.value, Mapping):
            _check_columns_present(record.value, names, path_text)
        if guess and isinstance(record.value, Mapping):
            # The first row's column names decide the mapping for the file, as its header would.
            guess = False
            names = infer_columns(record.value)
            part.columns = dict(names)
        for origin, outcome in _normalise_record(record, names, part, forced):
            if isinstance(outcome, str):
                part.problems.append(f"{origin}: {outcome}")
                continue
            keep_if_fits(part, outcome, origin, count(outcome), max_seq_length, count_tokens is not None, config.long_rows, count)
        if limit is not None and len(part.rows) >= limit:
            del part.rows[limit:], part.origins[limit:], part.tokens[limit:]
            break
    if part.records == 0:
        raise DatasetError(f"{path_text} is empty: it has no rows")
    return part


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


def _hint(*parts: _Part) -> str:
    lines = []
    if any(part.unknown_format for part in parts):
        lines.append(
            f"Accepted formats (columns): {ACCEPTED_FORMATS}. Map other column names: "
            f"{set_field('dataset.columns', 'question=q,answer=a')}."
        )
    if any(part.rows for part in parts):
        lines.append(SKIP_HINT)
    return "\n".join(lines)
