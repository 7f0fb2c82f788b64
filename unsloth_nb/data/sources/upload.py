"""Putting a local dataset where a pod can read it: multipart uploads to S3 or a RunPod network volume, resumable.

A large file goes up in parts (at least 8 MiB, so S3's 10,000-part limit allows 80 GB
at that size; larger files get larger parts), and at most 500 MB each, the largest part
RunPod's S3 API accepts. Which upload is under way is kept in a small state file in the
data cache, keyed by the target and the file's size and modification time: after an
interruption (a closed laptop, Ctrl+C, a dropped connection) the next call asks the store
which parts it already holds (``ListParts``), checks each one's MD5 against the local
bytes, and sends only the rest. A changed file starts a new upload.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unsloth_nb.data.sources.base import cache_root
from unsloth_nb.data.sources.s3 import MAX_PART_BYTES, MIN_PART_BYTES, S3Source, VolumeSource, _code, part_size_for
from unsloth_nb.errors import DatasetError

Progress = Callable[[int, int], None]  # (bytes sent so far, total bytes)


@dataclass
class UploadResult:
    target: str
    bytes: int
    parts: int  # parts of the whole file (1 for a single PUT)
    parts_sent: int  # parts sent by this call
    resumed: bool


def upload_file(path: str | Path, target: str, *, part_size: int | None = None, progress: Progress | None = None) -> UploadResult:
    """Upload ``path`` to ``target`` (``s3://bucket/key`` or ``volume://<id>/path``), resuming an interrupted upload."""
    from unsloth_nb.data.sources import source_for

    local = Path(path).expanduser()
    if not local.is_file():
        raise DatasetError(f"nothing to upload: {local} is not a file")
    source = source_for(target)
    if not isinstance(source, S3Source):
        raise DatasetError(f"{target}: uploads go to s3://bucket/key or volume://<volume id>/path")
    if not source.key or source.key.endswith("/"):
        source.key = source.key + local.name  # a prefix: keep the file's name under it
    size = local.stat().st_size
    chunk = part_size_for(size, part_size)
    client = source._client()
    send = progress or (lambda done, total: None)
    if size <= chunk:
        try:
            with local.open("rb") as handle:
                client.put_object(Bucket=source.bucket, Key=source.key, Body=handle)
        except Exception as exc:
            raise source._error(exc, source.key) from None
        send(size, size)
        return UploadResult(source._name(source.key), size, 1, 1, resumed=False)
    return _multipart(source, client, local, size, chunk, send)


def _state_file(source: S3Source, local: Path, size: int) -> Path:
    identity = f"{source.to_json()}\0{local.resolve()}\0{size}\0{local.stat().st_mtime_ns}"
    return cache_root() / "uploads" / (hashlib.sha256(identity.encode()).hexdigest()[:24] + ".json")


def _multipart(source: S3Source, client: Any, local: Path, size: int, chunk: int, send: Progress) -> UploadResult:
    state_path = _state_file(source, local, size)
    state = _read_state(state_path, chunk)
    count = math.ceil(size / chunk)
    done: dict[int, str] = {}
    try:
        if state is not None:
            try:
                done = _parts_held(client, source, state["upload_id"], local, chunk)
            except Exception as exc:
                if _code(exc) != "NoSuchUpload":
                    raise
                state = None  # the store dropped it (aborted, expired): start again
        if state is None:
            answer = client.create_multipart_upload(Bucket=source.bucket, Key=source.key)
            state = {"upload_id": answer["UploadId"], "part_size": chunk}
            state_path.parent.mkdir(parents=True, exist_ok=True)
            state_path.write_text(json.dumps(state), encoding="utf-8")
        resumed = bool(done)
        sent_bytes = sum(min(chunk, size - (n - 1) * chunk) for n in done)
        send(sent_bytes, size)
        sent_parts = 0
        with local.open("rb") as handle:
            for number in range(1, count + 1):
                if number in done:
                    continue
                handle.seek((number - 1) * chunk)
                data = handle.read(chunk)
                answer = client.upload_part(
                    Bucket=source.bucket, Key=source.key, UploadId=state["upload_id"], PartNumber=number, Body=data
                )
                done[number] = str(answer["ETag"])
                sent_parts += 1
                sent_bytes += len(data)
                send(sent_bytes, size)
        parts = [{"PartNumber": n, "ETag": done[n]} for n in sorted(done)]
        client.complete_multipart_upload(
            Bucket=source.bucket, Key=source.key, UploadId=state["upload_id"], MultipartUpload={"Parts": parts}
        )
    except DatasetError:
        raise
    except Exception as exc:
        if type(exc).__module__.startswith("botocore"):
            raise source._error(exc, source.key) from None
        raise  # an interruption (KeyboardInterrupt is not an Exception; a progress callback's own error)
    state_path.unlink(missing_ok=True)
    return UploadResult(source._name(source.key), size, count, sent_parts, resumed)


def _read_state(path: Path, chunk: int) -> dict[str, Any] | None:
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and state.get("part_size") == chunk and state.get("upload_id") else None


def _parts_held(client: Any, source: S3Source, upload_id: str, local: Path, chunk: int) -> dict[int, str]:
    """Parts the store already holds whose bytes match the file's (by MD5), by part number."""
    held: dict[int, str] = {}
    marker = 0
    with local.open("rb") as handle:
        while True:
            page = client.list_parts(Bucket=source.bucket, Key=source.key, UploadId=upload_id, PartNumberMarker=marker)
            for part in page.get("Parts") or []:
                number = int(part["PartNumber"])
                handle.seek((number - 1) * chunk)
                if hashlib.md5(handle.read(chunk)).hexdigest() == str(part["ETag"]).strip('"'):
                    held[number] = str(part["ETag"])
            if not page.get("IsTruncated"):
                return held
            marker = int(page.get("NextPartNumberMarker") or 0)


__all__ = ["MAX_PART_BYTES", "MIN_PART_BYTES", "UploadResult", "VolumeSource", "part_size_for", "upload_file"]
