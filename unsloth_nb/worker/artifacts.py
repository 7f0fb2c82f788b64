"""Serving a job's output folder: safe paths, listings with checksums, byte ranges, tar streams.

Everything a client can name resolves inside the output folder or is refused:
``..`` segments, absolute paths, backslashes and NUL bytes (before and after
percent-decoding) are 403, and so is a symlink whose target lies outside. Checksums
are cached by (path, size, mtime), so listing a folder twice hashes it once.
"""

from __future__ import annotations

import os
import queue
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from io import BufferedIOBase
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote

from unsloth_nb.worker.protocol import file_sha256

COPY_BLOCK = 1 << 20
#: What one listing may hash inline (about a second of disk reading); bigger files are hashed in the background.
INLINE_HASH_BYTES = 256 << 20


class ArtifactError(Exception):
    """A request for a file that is not served; ``status`` is the HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class RangeNotSatisfiable(Exception):
    """A Range header that asks for bytes past the end of the file."""


@dataclass(frozen=True)
class Artifact:
    name: str  # posix path relative to the output folder
    path: Path  # resolved, inside the output folder
    bytes: int


def clean_relative(raw: str) -> str:
    """The percent-decoded relative path, or ArtifactError(403) when it could leave the folder."""
    for text in (raw, unquote(raw)):
        if "\x00" in text or "\\" in text:
            raise ArtifactError(403, "path refused")
        if text.startswith("/") or any(part == ".." for part in text.split("/")):
            raise ArtifactError(403, "path refused: it must stay inside the output folder")
    return "/".join(part for part in unquote(raw).split("/") if part not in ("", "."))


def resolve_artifact(root: Path, raw: str) -> Artifact:
    """The file ``raw`` names under ``root``; 403 if it escapes (symlinks included), 404 if absent."""
    name = clean_relative(raw)
    if not name:
        raise ArtifactError(404, "no such artifact")
    base = root.resolve()
    path = (base / name).resolve()
    if not path.is_relative_to(base):
        raise ArtifactError(403, "path refused: it resolves outside the output folder")
    if not path.is_file():
        raise ArtifactError(404, f"no such artifact: {name}")
    return Artifact(name, path, path.stat().st_size)


def iter_artifacts(root: Path, prefix: str = "") -> Iterator[Artifact]:
    """Regular files under ``root`` (optionally under ``prefix``), sorted, never outside ``root``."""
    base = root.resolve()
    prefix = clean_relative(prefix) if prefix else ""
    if not base.is_dir():
        return
    found: list[Artifact] = []
    for folder, dirs, files in os.walk(base):
        dirs.sort()
        for filename in files:
            candidate = Path(folder) / filename
            name = candidate.relative_to(base).as_posix()
            if prefix and name != prefix and not name.startswith(prefix + "/"):
                continue
            resolved = candidate.resolve()
            if not resolved.is_relative_to(base) or not resolved.is_file():
                continue
            found.append(Artifact(name, resolved, resolved.stat().st_size))
    yield from sorted(found, key=lambda a: a.name)


class HashCache:
    """sha256 of files, remembered while their size and mtime stay the same, computed off the request path.

    Files are hashed when they are saved (:meth:`hash_later`, from the training
    thread's artifact and checkpoint events) by one background thread, so no request
    has to hash a multi-GB merged model inside RunPod's 100 s proxy limit. A listing
    hashes inline only what fits :data:`INLINE_HASH_BYTES`; the rest it reports as
    pending (``sha256: null``) and queues.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: dict[tuple[str, int, int], str] = {}
        self._queue: queue.Queue[Path] = queue.Queue()
        self._queued: set[str] = set()
        self._thread: threading.Thread | None = None

    @staticmethod
    def _key(path: Path) -> tuple[str, int, int]:
        stat = path.stat()
        return (str(path), stat.st_size, stat.st_mtime_ns)

    def known(self, path: Path) -> str | None:
        """The cached hash, or None when the file was not hashed (or changed since)."""
        key = self._key(path)
        with self._lock:
            return self._known.get(key)

    def sha256(self, path: Path) -> str:
        key = self._key(path)
        with self._lock:
            if key in self._known:
                return self._known[key]
        value = file_sha256(path)
        with self._lock:
            self._known[key] = value
        return value

    def hash_later(self, path: Path) -> None:
        """Queue a file, or every file under a folder, for the background hasher."""
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else []
        with self._lock:
            for file in files:
                if str(file) not in self._queued:
                    self._queued.add(str(file))
                    self._queue.put(file)
            if files and self._thread is None:
                self._thread = threading.Thread(target=self._work, name="unsloth-nb-hasher", daemon=True)
                self._thread.start()

    def _work(self) -> None:
        while True:
            path = self._queue.get()
            try:
                self.sha256(path)
            except OSError:
                pass  # gone or unreadable: a later listing queues it again
            finally:
                with self._lock:
                    self._queued.discard(str(path))

    def listing_hash(self, path: Path, budget: list[int]) -> str | None:
        """The hash for a listing: cached, or computed now while ``budget[0]`` bytes allow, else queued (None)."""
        found = self.known(path)
        if found is not None:
            return found
        size = path.stat().st_size
        if size <= budget[0]:
            budget[0] -= size
            return self.sha256(path)
        self.hash_later(path)
        return None


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The (start, end) inclusive byte range of a single-range ``Range`` header, or None for the whole file.

    Malformed and multi-range headers are ignored (the whole file is sent, as RFC 9110
    allows); a range starting at or past the end raises RangeNotSatisfiable.
    """
    if not header or not header.strip().lower().startswith("bytes="):
        return None
    spec = header.strip()[6:].strip()
    if "," in spec or "-" not in spec:
        return None
    first, _, last = spec.partition("-")
    try:
        if not first:
            suffix = int(last)
            if suffix <= 0 or size == 0:
                raise RangeNotSatisfiable
            return max(size - suffix, 0), size - 1
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start >= size:
        raise RangeNotSatisfiable
    if end < start:
        return None
    return start, min(end, size - 1)


def copy_range(path: Path, start: int, length: int, out: BinaryIO | BufferedIOBase) -> None:
    with path.open("rb") as handle:
        handle.seek(start)
        remaining = length
        while remaining > 0:
            block = handle.read(min(COPY_BLOCK, remaining))
            if not block:
                break
            out.write(block)
            remaining -= len(block)


def write_tar(artifacts: list[Artifact], out: BinaryIO | BufferedIOBase) -> None:
    """A streamed, uncompressed tar of ``artifacts`` under their artifact names (symlinks become files)."""
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for artifact in artifacts:
            info = tarfile.TarInfo(artifact.name)
            stat = artifact.path.stat()
            info.size = stat.st_size
            info.mtime = int(stat.st_mtime)
            info.mode = 0o644
            with artifact.path.open("rb") as handle:
                tar.addfile(info, handle)
