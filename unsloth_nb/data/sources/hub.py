"""Datasets on the Hugging Face Hub: ``org/name`` or ``hf://datasets/org/name[@revision][/path]``.

Which files hold a split follows the Hub's own layouts: ``data/train-00000-of-00001.parquet``,
``<config>/train/0000.parquet``, ``train.jsonl``; a repo whose file names name no split is one
``train`` split. ``dataset.config_name`` picks a config's folder, ``dataset.revision`` a
branch, tag or commit; every read after :meth:`HubSource.describe` uses the commit sha it
resolved, so a push during a job cannot change the rows under it.

A sample is a ranged read of the first file's start (JSON Lines, CSV); JSON arrays and
Parquet need the whole first file (Parquet keeps its schema at the end). A full read
downloads through ``huggingface_hub`` into its normal cache. Private and gated repos use
``HF_TOKEN``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unsloth_nb.data.sources.base import (
    SAMPLE_BYTES,
    TEXT_SUFFIXES,
    SourceFile,
    SourceInfo,
    cache_path,
    cut_at_last_line,
    data_file_suffix,
)
from unsloth_nb.errors import DatasetError, set_field

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_SPLIT_NAME = re.compile(r"^(train|test|validation|valid|dev|eval)(?:[-_.]|$)", re.IGNORECASE)


@dataclass
class HubSource:
    """A dataset repo (``repo_id``), optionally one ``path`` inside it (a file or folder)."""

    repo_id: str
    path: str = ""
    config_name: str | None = None
    split: str = "train"
    revision: str | None = None
    kind: str = "hub"
    _sha: str | None = field(default=None, repr=False)
    _files: list[tuple[str, int | None]] | None = field(default=None, repr=False)
    _rows: int | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, text: str, config_name: str | None, split: str, revision: str | None) -> HubSource:
        """``org/name`` or ``hf://datasets/org/name[@rev][/path]`` (a revision in the URL wins)."""
        if not text.startswith("hf://"):
            return cls(text, "", config_name, split, revision)
        rest = text.removeprefix("hf://")
        if not rest.startswith("datasets/"):
            raise DatasetError(
                f"{text}: only dataset repos are read (hf://datasets/org/name)", hint="Write hf://datasets/<org>/<name>."
            )
        parts = rest.removeprefix("datasets/").split("/")
        if len(parts) < 2:
            raise DatasetError(f"{text}: expected hf://datasets/<org>/<name>[/path]")
        name, _, url_revision = parts[1].partition("@")
        return cls(f"{parts[0]}/{name}", "/".join(parts[2:]), config_name, split, url_revision or revision)

    @property
    def display(self) -> str:
        return f"hf://datasets/{self.repo_id}" + (f"/{self.path}" if self.path else "")

    # ------------------------------------------------------------------ the interface
    def describe(self) -> SourceInfo:
        files = self._data_files()
        sizes = [size for _, size in files]
        total = sum(s for s in sizes if s is not None) if all(s is not None for s in sizes) else None
        names = [f"{self._file_display(name)}" for name, _ in files]
        return SourceInfo("hub", self.display, names, bytes=total, rows=self._rows, version=self._sha or "")

    def sample(self) -> list[SourceFile]:
        name, size = self._data_files()[0]
        if Path(name).suffix.lower() not in TEXT_SUFFIXES:
            return [self._download(name)]
        target = cache_path("hub-sample", f"{self._sha}:{SAMPLE_BYTES}", f"{self.repo_id}/{name}")
        if not target.exists():
            data, complete = self._head_bytes(name, size)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(cut_at_last_line(data, complete))
        return [SourceFile(target, self._file_display(name))]

    def open_full(self) -> list[SourceFile]:
        return [self._download(name) for name, _ in self._data_files()]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "hub",
            "repo_id": self.repo_id,
            "path": self.path,
            "config_name": self.config_name,
            "split": self.split,
            "revision": self._sha or self.revision,  # the commit resolved here: the pod reads the same rows
        }

    # ------------------------------------------------------------------ talking to the Hub
    def _token(self) -> str | None:
        return os.environ.get("HF_TOKEN", "").strip() or None

    def _data_files(self) -> list[tuple[str, int | None]]:
        if self._files is None:
            from huggingface_hub import HfApi

            _follow_offline_setting()

            try:
                info = HfApi(endpoint=_endpoint()).dataset_info(
                    self.repo_id, revision=self.revision, files_metadata=True, token=self._token()
                )
            except Exception as exc:
                raise _hub_error(exc, self) from None
            self._sha = info.sha
            siblings = [(s.rfilename, s.size) for s in info.siblings or []]
            self._files = self._pick(siblings)
            self._rows = _rows_from_card(getattr(info, "card_data", None), self.config_name, self.split)
        return self._files

    def _pick(self, siblings: list[tuple[str, int | None]]) -> list[tuple[str, int | None]]:
        data = [(name, size) for name, size in siblings if data_file_suffix(name)]
        if self.path:
            inside = [(n, s) for n, s in data if n == self.path or n.startswith(self.path.rstrip("/") + "/")]
            if not inside:
                raise DatasetError(f"{self.display}: no data file at {self.path!r} in the repo", hint=_listing(data))
            return inside
        if self.config_name and self.config_name != "default":
            configs = sorted({n.split("/", 1)[0] for n, _ in data if "/" in n})
            data = [(n, s) for n, s in data if n.split("/", 1)[0] == self.config_name]
            if not data:
                raise DatasetError(
                    f"{self.display} has no config {self.config_name!r}",
                    hint=f"Its configs (folders): {', '.join(configs) or 'none'}. {set_field('dataset.config_name')}.",
                )
        if not data:
            raise DatasetError(
                f"{self.display} holds no data file (.jsonl, .json, .csv, .parquet)",
                hint="Give one with hf://datasets/<org>/<name>/<path>, or another dataset.",
            )
        splits = {name: _split_of(name) for name, _ in data}
        chosen = [(n, s) for n, s in data if splits[n] == self.split.lower()]
        if chosen:
            return chosen
        named = sorted({split for split in splits.values() if split})
        if not named and self.split == "train":
            return data  # no file names a split: the repo is one train split
        raise DatasetError(
            f"{self.display} has no split {self.split!r}; its splits are: {', '.join(named) or 'train'}",
            hint=f"Choose one: {set_field('dataset.split')}.",
        )

    def _file_display(self, name: str) -> str:
        return f"hf://datasets/{self.repo_id}/{name}"

    def _download(self, name: str) -> SourceFile:
        from huggingface_hub import hf_hub_download

        try:
            local = hf_hub_download(
                self.repo_id,
                name,
                repo_type="dataset",
                revision=self._sha,
                token=self._token(),
                endpoint=_endpoint(),
                cache_dir=os.environ.get("HF_HUB_CACHE") or None,
            )
        except Exception as exc:
            raise _hub_error(exc, self) from None
        return SourceFile(Path(local), self._file_display(name))

    def _head_bytes(self, name: str, size: int | None) -> tuple[bytes, bool]:
        """The file's first SAMPLE_BYTES by a ranged GET, and whether that is the whole file."""
        from huggingface_hub import get_session, hf_hub_url
        from huggingface_hub.utils import build_hf_headers, hf_raise_for_status

        url = hf_hub_url(self.repo_id, name, repo_type="dataset", revision=self._sha, endpoint=_endpoint())
        headers = {**build_hf_headers(token=self._token()), "Range": f"bytes=0-{SAMPLE_BYTES - 1}"}
        try:
            response = get_session().get(url, headers=headers, follow_redirects=True)
            hf_raise_for_status(response)
        except Exception as exc:
            raise _hub_error(exc, self) from None
        data = response.content[:SAMPLE_BYTES]
        complete = response.status_code == 200 or (size is not None and len(data) >= size)
        return data, complete


def _follow_offline_setting() -> None:
    """``HF_HUB_OFFLINE`` as it is now: huggingface_hub reads it once at import, before a notebook can change it."""
    from huggingface_hub import constants

    value = os.environ.get("HF_HUB_OFFLINE")
    if value is not None:
        constants.HF_HUB_OFFLINE = value.strip().upper() in ("1", "ON", "YES", "TRUE")


def _endpoint() -> str:
    """``HF_ENDPOINT`` read now, not at import as huggingface_hub does (a loopback Hub, a mirror)."""
    return (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


def _split_of(name: str) -> str:
    """The split a file belongs to by its path (``data/train-0000.parquet`` -> train), or ""."""
    for part in reversed(name.split("/")):
        match = _SPLIT_NAME.match(part)
        if match:
            return match.group(1).lower()
    return ""


def _rows_from_card(card: Any, config_name: str | None, split: str) -> int | None:
    """Rows of the split as the dataset card's ``dataset_info`` states them, when it does."""
    info = card.get("dataset_info") if card is not None and hasattr(card, "get") else None
    entries = info if isinstance(info, list) else [info] if isinstance(info, dict) else []
    for entry in entries:
        if config_name and entry.get("config_name", "default") != config_name:
            continue
        for item in entry.get("splits") or []:
            if item.get("name") == split and isinstance(item.get("num_examples"), int):
                return int(item["num_examples"])
    return None


def _listing(data: list[tuple[str, int | None]]) -> str:
    names = [name for name, _ in data][:8]
    return f"Its data files: {', '.join(names)}." if names else "It holds no data file."


def _hub_error(exc: Exception, source: HubSource) -> DatasetError:
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    token = bool(source._token())
    where = f"Hub dataset {source.repo_id}"
    if isinstance(exc, GatedRepoError):
        return DatasetError(
            f"{where} is gated: accept its conditions at https://huggingface.co/datasets/{source.repo_id}",
            hint="Then set HF_TOKEN to a token of the account that accepted them."
            if not token
            else "The token in HF_TOKEN has not been granted access yet.",
        )
    if isinstance(exc, RevisionNotFoundError):
        return DatasetError(
            f"{where} has no revision {source.revision!r}",
            hint=f"{set_field('dataset.revision')} to a branch, tag or commit of it.",
        )
    if isinstance(exc, RemoteEntryNotFoundError):
        return DatasetError(f"{where}: a file listed by the Hub could not be read ({exc})")
    if isinstance(exc, RepositoryNotFoundError) or (isinstance(exc, HfHubHTTPError) and _status(exc) in (401, 403, 404)):
        hint = (
            "Check the name. If it is private, set HF_TOKEN (a token that can read it) in the environment."
            if not token
            else "Check the name, and that the account of HF_TOKEN can read it."
        )
        return DatasetError(f"{where} not found (or private)", hint=hint)
    if type(exc).__name__ == "OfflineModeIsEnabled":
        return DatasetError(f"{where} cannot be read: HF_HUB_OFFLINE is set", hint="Unset HF_HUB_OFFLINE to read Hub datasets.")
    return DatasetError(f"{where} could not be read: {type(exc).__name__}: {exc}")


def _status(exc: Exception) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)
