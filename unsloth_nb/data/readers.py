"""Reading dataset files into raw rows, each with the place it came from.

A reader does not judge a row's content: it yields a ``_Record`` holding the
value and its origin (``file:line`` for JSON Lines, CSV and JSON arrays,
``file: row N`` for Parquet and saved ``datasets`` folders), or the reason that
one row could not be read (bad JSON, a wrong number of CSV fields). It raises
DatasetError only for what stops the whole file: a missing path, an unknown file
type, text that is not UTF-8, a JSON array broken part-way. pyarrow and datasets
are imported only when a Parquet file or a saved folder is read, so importing
this module stays cheap.

Files read: ``.jsonl``/``.ndjson``, ``.json`` (an array of rows, an object holding
one such array, or JSON Lines under a .json name as ``Dataset.to_json`` writes),
``.csv``/``.tsv`` (first line is the header), ``.parquet``/``.pq``, and folders
written by ``Dataset.save_to_disk`` or ``DatasetDict.save_to_disk``
(``DatasetConfig.split`` picks the split). Text must be UTF-8 (a BOM is fine).
"""

from __future__ import annotations

import codecs
import csv
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unsloth_nb.data.formats import _kind, detect_format
from unsloth_nb.errors import DatasetError

FILE_TYPES: dict[str, str] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
}


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
            # Without its line ending: an error at the end of the line is then in this line, at its real column.
            yield _Record(origin, json.loads(line.rstrip("\r\n")))
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
