"""Where training rows live: one interface for a local file, a Hub dataset, S3 and a RunPod network volume.

:func:`source_for` turns what the user wrote in ``dataset.path`` into a
:class:`DataSource`; :func:`source_from_json` rebuilds one in another process (a
pod's worker, a serverless worker) from :meth:`DataSource.to_json`. Every source
answers ``describe()`` (files, bytes, rows when known, version), ``sample()`` (the
first rows, for preflight and previews) and ``open_full()`` (every file, read where
training runs). boto3 and huggingface_hub load only when a remote source is read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from unsloth_nb.data.sources.base import SAMPLE_BYTES, DataSource, SourceFile, SourceInfo, cache_root
from unsloth_nb.data.sources.hub import HUB_ID, HubSource
from unsloth_nb.data.sources.local import LocalSource
from unsloth_nb.data.sources.s3 import S3_SECRETS, S3Source, VolumeSource
from unsloth_nb.errors import DatasetError

REMOTE_PREFIXES = ("s3://", "hf://", "volume://")


def source_for(
    text: str,
    *,
    config_name: str | None = None,
    split: str = "train",
    revision: str | None = None,
    base_dir: str | None = None,
) -> DataSource:
    """The source ``text`` names: ``s3://``, ``volume://``, ``hf://datasets/``, ``org/name``, else a local path.

    ``org/name`` is a Hub id only when no such local path exists and it has no data
    file suffix, so a folder ``data/train`` next to the notebook stays local.
    """
    text = str(text).strip()
    if text.startswith("s3://"):
        return S3Source.parse(text)
    if text.startswith("volume://"):
        return VolumeSource.parse_volume(text)
    if text.startswith("hf://"):
        return HubSource.parse(text, config_name, split, revision)
    if is_hub_id(text, base_dir):
        return HubSource.parse(text, config_name, split, revision)
    return LocalSource(text, base_dir)


def is_hub_id(text: str, base_dir: str | None = None) -> bool:
    """``org/name`` that is not a local path and not a file name."""
    if not HUB_ID.match(text) or Path(text).suffix.lower() in (".jsonl", ".json", ".csv", ".tsv", ".parquet", ".pq", ".ndjson"):
        return False
    base = Path(base_dir).expanduser() if base_dir else Path.cwd()
    return not (base / text).exists()


def is_remote(text: str, base_dir: str | None = None) -> bool:
    return str(text).startswith(REMOTE_PREFIXES) or is_hub_id(str(text), base_dir)


def secrets_for(paths: list[str]) -> tuple[str, ...]:
    """The environment variables a process reading these sources may need (optional: public data needs none)."""
    names: list[str] = []
    for path in paths:
        text = str(path)
        if text.startswith(("s3://", "volume://")):
            names += [name for name in S3_SECRETS if name not in names]
    return tuple(names)


def source_from_json(data: dict[str, Any]) -> DataSource:
    """Rebuild a source from :meth:`DataSource.to_json` (credentials come from this process's environment)."""
    kind = data.get("kind")
    if kind == "local":
        return LocalSource(str(data["path"]))
    if kind == "hub":
        return HubSource(
            str(data["repo_id"]),
            str(data.get("path") or ""),
            data.get("config_name"),
            str(data.get("split") or "train"),
            data.get("revision"),
        )
    if kind in ("s3", "volume"):
        cls = VolumeSource if kind == "volume" else S3Source
        return cls(str(data["bucket"]), str(data.get("key") or ""), endpoint=data.get("endpoint"), region=data.get("region"))
    raise DatasetError(f"unknown data source kind {kind!r} in {data!r}")


__all__ = [
    "REMOTE_PREFIXES",
    "S3_SECRETS",
    "SAMPLE_BYTES",
    "DataSource",
    "HubSource",
    "LocalSource",
    "S3Source",
    "SourceFile",
    "SourceInfo",
    "VolumeSource",
    "cache_root",
    "is_hub_id",
    "is_remote",
    "secrets_for",
    "source_for",
    "source_from_json",
]
