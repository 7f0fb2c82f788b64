"""``s3://bucket/key`` (one object) or ``s3://bucket/prefix/`` (its data shards), and RunPod network volumes.

Any S3-compatible endpoint works: boto3 reads ``AWS_ENDPOINT_URL`` (or
``AWS_ENDPOINT_URL_S3``), the region and the credentials from the standard AWS
environment and profiles; nothing of it is part of a config or of
:meth:`S3Source.to_json`. A key that is not an object is read as a prefix, so
``s3://b/shards`` and ``s3://b/shards/`` both mean every data file below it, in
key order.

``volume://<volume id>/<path>`` is a RunPod network volume. On a pod the volume is
mounted (``/workspace``, or ``UNSLOTH_NB_VOLUME_MOUNT``) and read there; anywhere else
it is read through RunPod's S3-compatible API, where the bucket is the volume id and
the endpoint is ``https://s3api-<dc>.runpod.io/`` for the data centre in
``RUNPOD_VOLUME_DATACENTER`` (``UNSLOTH_NB_RUNPOD_S3_ENDPOINT`` overrides the endpoint),
with RunPod's S3 key pair in ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``.
"""

from __future__ import annotations

import hashlib
import math
import os
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
from unsloth_nb.errors import DatasetError

#: What a process reading S3 needs from the environment; a pod receives them in the job request only.
S3_SECRETS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")

CREDENTIAL_HINT = (
    "Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) in the environment; "
    "for a RunPod network volume, its S3 API key pair (user_... and rps_...)."
)


@dataclass(frozen=True)
class _Object:
    key: str
    size: int
    etag: str


@dataclass
class S3Source:
    """Objects under ``bucket``/``key``; ``endpoint`` only when the source itself fixes one (volumes)."""

    bucket: str
    key: str
    endpoint: str | None = None
    region: str | None = None
    kind: str = "s3"
    _objects: list[_Object] | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, text: str) -> S3Source:
        bucket, _, key = text.removeprefix("s3://").partition("/")
        if not bucket:
            raise DatasetError(f"{text}: expected s3://<bucket>/<key or prefix>")
        return cls(bucket, key)

    @property
    def display(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    # ------------------------------------------------------------------ the interface
    def describe(self) -> SourceInfo:
        objects = self._list()
        version = hashlib.sha256("\n".join(f"{o.key}:{o.etag}:{o.size}" for o in objects).encode()).hexdigest()
        return SourceInfo(
            self.kind, self.display, [self._name(o.key) for o in objects], bytes=sum(o.size for o in objects), version=version
        )

    def sample(self) -> list[SourceFile]:
        first = self._list()[0]
        if Path(first.key).suffix.lower() not in TEXT_SUFFIXES:
            return [self._download(first)]
        target = cache_path(f"{self.kind}-sample", f"{first.etag}:{SAMPLE_BYTES}", f"{self.bucket}/{first.key}")
        if not target.exists():
            try:
                answer = self._client().get_object(Bucket=self.bucket, Key=first.key, Range=f"bytes=0-{SAMPLE_BYTES - 1}")
                data = answer["Body"].read()
            except Exception as exc:
                raise self._error(exc, first.key) from None
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(cut_at_last_line(data, len(data) >= first.size))
        return [SourceFile(target, self._name(first.key))]

    def open_full(self) -> list[SourceFile]:
        return [self._download(o) for o in self._list()]

    def to_json(self) -> dict[str, Any]:
        """The endpoint and region this process uses go along (a pod must reach the same store); the keys never do."""
        endpoint = self.endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None
        region = self.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None
        return {"kind": self.kind, "bucket": self.bucket, "key": self.key, "endpoint": endpoint, "region": region}

    # ------------------------------------------------------------------ talking to the store
    def _name(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _client(self) -> Any:
        import boto3

        return boto3.session.Session().client("s3", endpoint_url=self.endpoint, region_name=self.region)

    def _list(self) -> list[_Object]:
        if self._objects is not None:
            return self._objects
        client = self._client()
        objects: list[_Object] = []
        if self.key and not self.key.endswith("/"):
            try:
                head = client.head_object(Bucket=self.bucket, Key=self.key)
                objects = [_Object(self.key, int(head["ContentLength"]), str(head.get("ETag", "")).strip('"'))]
            except Exception as exc:
                if _code(exc) in ("403", "Forbidden"):
                    raise self._error(self._why_forbidden(client), self.key) from None
                if _code(exc) not in ("404", "NoSuchKey", "NotFound"):
                    raise self._error(exc, self.key) from None
        if not objects:
            prefix = self.key if not self.key or self.key.endswith("/") else self.key + "/"
            try:
                for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                    for item in page.get("Contents") or []:
                        if data_file_suffix(item["Key"]):
                            objects.append(_Object(item["Key"], int(item["Size"]), str(item.get("ETag", "")).strip('"')))
            except Exception as exc:
                raise self._error(exc, self.key) from None
            if not objects:
                raise DatasetError(
                    f"{self.display}: no such object, and no data file (.jsonl, .json, .csv, .parquet) under that prefix",
                    hint="Check the key; a prefix of shards ends with '/'.",
                )
            if self.key and not self.key.endswith("/") and data_file_suffix(self.key):
                # s3://b/x.jsonl that is not there, though x.jsonl/... is: still say the object is missing.
                raise DatasetError(f"{self.display}: no such object")
        self._objects = sorted(objects, key=lambda o: o.key)
        return self._objects

    def _why_forbidden(self, client: Any) -> Exception:
        """A HEAD refused with 403 has no body; a one-byte GET says why (a wrong secret, an unknown key, a policy)."""
        try:
            client.get_object(Bucket=self.bucket, Key=self.key, Range="bytes=0-0")
        except Exception as exc:
            return exc
        return PermissionError("403 on HEAD")  # pragma: no cover - HEAD refused but GET allowed

    def _download(self, obj: _Object) -> SourceFile:
        target = cache_path(self.kind, f"{obj.etag}:{obj.size}", f"{self.bucket}/{obj.key}")
        if not target.exists() or target.stat().st_size != obj.size:
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".part")
            try:
                self._client().download_file(self.bucket, obj.key, str(partial))
            except Exception as exc:
                raise self._error(exc, obj.key) from None
            partial.replace(target)
        return SourceFile(target, self._name(obj.key))

    def _error(self, exc: Exception, key: str) -> DatasetError:
        from botocore.exceptions import EndpointConnectionError, NoCredentialsError, PartialCredentialsError

        where = self._name(key)
        if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
            return DatasetError(f"{where}: no S3 credentials found", hint=CREDENTIAL_HINT)
        if isinstance(exc, EndpointConnectionError):
            return DatasetError(
                f"{where}: the S3 endpoint cannot be reached ({exc})",
                hint="Check AWS_ENDPOINT_URL (MinIO, RunPod's s3api-<dc>.runpod.io) and the network.",
            )
        code = _code(exc)
        if code == "NoSuchBucket":
            return DatasetError(
                f"{where}: the bucket {self.bucket!r} does not exist", hint="Check the bucket name and the endpoint."
            )
        if code in ("NoSuchKey", "404", "NotFound"):
            return DatasetError(f"{where}: no such object")
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"):
            return DatasetError(f"{where}: the S3 credentials were refused ({code})", hint=CREDENTIAL_HINT)
        if code in ("AccessDenied", "403", "Forbidden"):
            return DatasetError(
                f"{where}: access denied", hint="The credentials in the environment cannot read it. " + CREDENTIAL_HINT
            )
        return DatasetError(f"{where} could not be read: {type(exc).__name__}: {exc}")


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str((response.get("Error") or {}).get("Code", ""))
    return ""


@dataclass
class VolumeSource(S3Source):
    """A path on a RunPod network volume: the mount where it is mounted, else RunPod's S3 API."""

    kind: str = "volume"

    @classmethod
    def parse_volume(cls, text: str) -> VolumeSource:
        volume, _, path = text.removeprefix("volume://").partition("/")
        if not volume:
            raise DatasetError(f"{text}: expected volume://<network volume id>/<path>")
        datacenter = os.environ.get("RUNPOD_VOLUME_DATACENTER", "").strip() or None
        endpoint = os.environ.get("UNSLOTH_NB_RUNPOD_S3_ENDPOINT", "").strip() or (
            f"https://s3api-{datacenter.lower()}.runpod.io/" if datacenter else None
        )
        if endpoint is None:
            raise DatasetError(
                f"{text}: which data centre holds volume {volume}?",
                hint="Set RUNPOD_VOLUME_DATACENTER (e.g. EU-RO-1) so its S3 API (s3api-<dc>.runpod.io) can be used.",
            )
        return cls(volume, path, endpoint=endpoint, region=datacenter)

    @property
    def display(self) -> str:
        return f"volume://{self.bucket}/{self.key}"

    def _name(self, key: str) -> str:
        return f"volume://{self.bucket}/{key}"

    def _mounted(self) -> Path | None:
        """The volume's mount on a pod that has it (``/workspace``, or ``UNSLOTH_NB_VOLUME_MOUNT``), else None."""
        mount = Path(os.environ.get("UNSLOTH_NB_VOLUME_MOUNT", "/workspace"))
        if os.environ.get("RUNPOD_POD_ID") and (mount / self.key).exists():
            return mount
        return None

    def _list(self) -> list[_Object]:
        """On a pod with the mount: the files there, each with the ETag S3 gives it, so the version matches the plan's."""
        mount = self._mounted()
        if mount is None or self._objects is not None:
            return super()._list()
        here = mount / self.key
        files = [here] if here.is_file() else sorted(p for p in here.rglob("*") if p.is_file() and data_file_suffix(p.name))
        objects = [_Object(str(p.relative_to(mount)), p.stat().st_size, s3_etag(p)) for p in files]
        self._objects = sorted(objects, key=lambda o: o.key)
        return self._objects

    def open_full(self) -> list[SourceFile]:
        mount = self._mounted()
        if mount is None:
            return super().open_full()
        return [SourceFile(mount / o.key, self._name(o.key)) for o in self._list()]


# Multipart limits: the uploader (upload.py) splits by them, and a mounted file's ETag is computed with them.
MIN_PART_BYTES = 8 * 1024 * 1024
MAX_PART_BYTES = 500 * 1000 * 1000  # RunPod's S3 API: parts of at most 500 MB
MAX_PARTS = 10_000  # S3's limit


def part_size_for(size: int, requested: int | None = None) -> int:
    """The part size: the requested one (within the limits), else the smallest that needs at most 10,000 parts."""
    wanted = requested or max(MIN_PART_BYTES, math.ceil(size / MAX_PARTS))
    if wanted > MAX_PART_BYTES:
        raise DatasetError(f"a part of {wanted:,} bytes exceeds the 500 MB RunPod's S3 API accepts")
    if math.ceil(size / wanted) > MAX_PARTS:
        raise DatasetError(f"{size:,} bytes in parts of {wanted:,} would need more than {MAX_PARTS:,} parts")
    return max(wanted, 5 * 1024 * 1024)  # S3's smallest part (but the last)


def s3_etag(path: Path) -> str:
    """The ETag S3 gives this file as our uploader (and the AWS CLI) sends it: MD5 of one PUT, else of its parts' MD5s.

    The part size is the uploader's default (:func:`part_size_for`); a file uploaded in other parts gets
    another ETag, and the job then says the file changed.
    """
    size = path.stat().st_size
    chunk = part_size_for(size)
    digests: list[bytes] = []
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digests.append(hashlib.md5(block, usedforsecurity=False).digest())
    if size <= chunk:
        return (digests[0] if digests else hashlib.md5(b"", usedforsecurity=False).digest()).hex()
    return f"{hashlib.md5(b''.join(digests), usedforsecurity=False).hexdigest()}-{len(digests)}"
