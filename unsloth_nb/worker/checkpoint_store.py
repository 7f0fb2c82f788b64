"""Checkpoints of a serverless job kept in an S3-compatible store, so a replacement worker resumes from them.

A serverless worker's disk dies with it. When the job names ``serverless.checkpoint_store`` (``s3://bucket/prefix``
or ``volume://<volume id>/prefix``, the latter through RunPod's S3 API), each checkpoint the trainer saves is
uploaded under ``<prefix>/<job id>/checkpoints/checkpoint-<step>/`` before training goes on, and a ``.complete``
object is written last: a checkpoint whose upload the worker did not finish is never resumed from. A new
request for the same job downloads the newest complete one and resumes there. Only the newest :data:`KEEP`
complete checkpoints stay in the store.

The store's description (kind, bucket, key, endpoint, region) travels in the request; its keys never do: the
worker reads them from its environment, which RunPod fills from the account's secrets
(``{{ RUNPOD_SECRET_AWS_ACCESS_KEY_ID }}`` references in the template). boto3 loads on first use.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

COMPLETE = ".complete"
#: Complete checkpoints kept in the store; older ones are deleted after a newer one is complete (a long job
#: saving every 15 minutes would otherwise pile up its optimizer state for hours).
KEEP = 2
_STEP = re.compile(r"checkpoint-(\d+)$")


@dataclass(frozen=True)
class CheckpointStore:
    """Where one job's checkpoints go: ``bucket`` and ``prefix`` (ends without '/'), through ``endpoint``."""

    display: str
    bucket: str
    prefix: str
    endpoint: str | None = None
    region: str | None = None

    @classmethod
    def from_json(cls, data: Any, job_id: str) -> CheckpointStore | None:
        if not isinstance(data, dict) or not data.get("bucket"):
            return None
        key = str(data.get("key") or "").strip("/")
        prefix = "/".join(part for part in (key, job_id, "checkpoints") if part)
        scheme = "volume" if data.get("kind") == "volume" else "s3"
        return cls(f"{scheme}://{data['bucket']}/{prefix}", str(data["bucket"]), prefix, data.get("endpoint"), data.get("region"))

    def _client(self) -> Any:
        import boto3

        return boto3.session.Session().client("s3", endpoint_url=self.endpoint, region_name=self.region)

    def upload(self, folder: Path) -> int:
        """Copy one ``checkpoint-<step>`` folder, then its completion marker; the bytes sent."""
        client = self._client()
        base = f"{self.prefix}/{folder.name}"
        sent = 0
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            client.upload_file(str(path), self.bucket, f"{base}/{path.relative_to(folder).as_posix()}")
            sent += path.stat().st_size
        client.put_object(Bucket=self.bucket, Key=f"{base}/{COMPLETE}", Body=b"")
        return sent

    def newest(self) -> str | None:
        """The name of the newest completely uploaded checkpoint, or None."""
        steps = self._complete_steps(self._keys(f"{self.prefix}/"))
        return f"checkpoint-{steps[-1]}" if steps else None

    def prune(self, keep: int = KEEP) -> int:
        """Delete every checkpoint older than the newest ``keep`` complete ones (marker first); how many went.

        One object at a time: RunPod's volume S3 API has no DeleteObjects.
        """
        keys = self._keys(f"{self.prefix}/")
        steps = self._complete_steps(keys)
        if len(steps) <= keep:
            return 0
        oldest_kept = steps[-keep]
        client = self._client()
        gone = 0
        for step in (s for s in steps if s < oldest_kept):
            base = f"{self.prefix}/checkpoint-{step}/"
            client.delete_object(Bucket=self.bucket, Key=base + COMPLETE)  # no longer resumable before it is partial
            for key in keys:
                if key.startswith(base) and key != base + COMPLETE:
                    client.delete_object(Bucket=self.bucket, Key=key)
            gone += 1
        return gone

    @staticmethod
    def _complete_steps(keys: list[str]) -> list[int]:
        steps = []
        for key in keys:
            if key.endswith(f"/{COMPLETE}"):
                match = _STEP.search(key.removesuffix(f"/{COMPLETE}"))
                if match:
                    steps.append(int(match.group(1)))
        return sorted(steps)

    def download(self, name: str, into: Path) -> Path:
        """Fetch checkpoint ``name`` into ``into/name`` (replacing what is there); its folder."""
        client = self._client()
        target = into / name
        shutil.rmtree(target, ignore_errors=True)
        base = f"{self.prefix}/{name}/"
        for key in self._keys(base):
            relative = key.removeprefix(base)
            if relative == COMPLETE:
                continue
            path = target / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(self.bucket, key, str(path))
        return target

    def _keys(self, prefix: str) -> list[str]:
        client = self._client()
        keys: list[str] = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys += [str(item["Key"]) for item in page.get("Contents") or []]
        return keys
