"""What every data source answers, wherever its rows live.

A source is described by plain JSON (:meth:`DataSource.to_json`), so any process
that can reach the data (the kernel, a pod's worker, a serverless worker) rebuilds
it with :func:`~unsloth_nb.data.sources.source_from_json` and reads it there with
:meth:`~DataSource.open_full`. Secrets are never part of that JSON: each source
takes them from the environment of the process that reads it.

Both reading calls hand back local files, each with the name problems should
carry (``s3://bucket/key``, ``hf://datasets/org/name/data/train.jsonl``), so the
same readers, format detection and ``file:line`` messages serve every source.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

# Enough for a few hundred typical rows; a sample never downloads a whole large text file.
SAMPLE_BYTES = 256 * 1024
TEXT_SUFFIXES = (".jsonl", ".ndjson", ".csv", ".tsv")


@dataclass(frozen=True)
class SourceFile:
    """One data file, read locally from ``path``, named ``display`` in every message."""

    path: Path
    display: str


@dataclass
class SourceInfo:
    """What a source says about itself without reading its rows (the plan and the panel show it).

    ``version`` is what the edited-data check compares: a commit sha for the Hub,
    the objects' ETags and sizes for S3, a file's size and mtime locally.
    """

    kind: str  # local | hub | s3 | volume
    display: str
    files: list[str] = field(default_factory=list)
    bytes: int | None = None
    rows: int | None = None
    version: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        """One line for the plan: where, how many files, rows and bytes when known."""
        parts = [_KIND_LABELS.get(self.kind, self.kind)]
        if len(self.files) > 1:
            parts.append(f"{len(self.files)} files")
        if self.rows is not None:
            parts.append(f"{self.rows:,} rows")
        if self.bytes is not None:
            parts.append(_size(self.bytes))
        if self.version and self.kind == "hub":
            parts.append(f"revision {self.version[:10]}")
        return f"{self.display}: " + ", ".join(parts)


_KIND_LABELS = {"local": "local file", "hub": "Hub dataset", "s3": "S3", "volume": "RunPod network volume"}


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1000
    return f"{count} B"  # pragma: no cover - the loop always returns


class DataSource(Protocol):
    """Local file, Hub dataset, S3 object or prefix, network volume: one way to ask each."""

    @property
    def kind(self) -> str:
        """local, hub, s3 or volume."""
        ...

    @property
    def display(self) -> str:
        """The source as problems name it."""
        ...

    def describe(self) -> SourceInfo:
        """Files, sizes, rows (when the store says) and version, without reading rows."""
        ...

    def sample(self) -> list[SourceFile]:
        """The first rows only: the start of the first data file, for preflight and previews."""
        ...

    def open_full(self) -> list[SourceFile]:
        """Every data file, local, read in full where this runs (downloaded once into the cache)."""
        ...

    def to_json(self) -> dict[str, Any]:
        """Everything another process needs to rebuild this source; never a secret."""
        ...


def cache_root() -> Path:
    """Where remote files are kept between reads (``UNSLOTH_NB_DATA_CACHE``, else ~/.cache/unsloth_nb/data)."""
    configured = os.environ.get("UNSLOTH_NB_DATA_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "unsloth_nb" / "data"


def cache_path(kind: str, version: str, name: str) -> Path:
    """A file's place in the cache: a new version of the same name never reuses an old copy."""
    digest = hashlib.sha256(f"{kind}\0{version}\0{name}".encode()).hexdigest()[:24]
    return cache_root() / kind / digest / Path(name).name


def cut_at_last_line(data: bytes, complete: bool) -> bytes:
    """A ranged read ends mid-row; keep whole lines only (all of it when the read reached the end)."""
    if complete:
        return data
    end = data.rfind(b"\n")
    return data[: end + 1] if end >= 0 else data


def data_file_suffix(name: str) -> str | None:
    from unsloth_nb.data.readers import FILE_TYPES

    suffix = Path(name).suffix.lower()
    return suffix if suffix in FILE_TYPES else None
