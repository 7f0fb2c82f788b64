"""Talking to our worker through an HTTP proxy in front of it (RunPod's, or any other host's).

The proxy is Cloudflare in front of the pod: it answers 502 while nothing listens
yet, 524 when an answer takes over 100 s, and drops connections now and then. So
every call here retries those for a while (``unreachable_after`` seconds), long
polls stay well under 100 s, uploads go in chunks that resume where the worker
says it stopped, and downloads resume with ``Range`` and are checked by sha256.

The token travels only in the ``Authorization`` header; it never appears in an
error message, URL or log line.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from unsloth_nb.errors import BackendError
from unsloth_nb.worker.protocol import (
    MAX_CHUNK_BYTES,
    MAX_POLL_SECONDS,
    BootStatus,
    EventsPage,
    Health,
    JobStatus,
    RemoteArtifact,
    UploadReceipt,
    content_range,
    file_sha256,
    sha256_hex,
)

log = logging.getLogger(__name__)

#: Proxy and gateway answers that mean "not there yet" or "try again".
_RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524})
DOWNLOAD_BLOCK = 1 << 20
#: The longest a Retry-After from the proxy is honoured; past it, retry anyway.
MAX_RETRY_AFTER = 30.0


class WorkerUnreachableError(BackendError):
    """The worker did not answer through the proxy for too long."""


class WorkerRefusedError(BackendError):
    """The worker answered with an error that retrying will not fix."""

    def __init__(self, status: int, message: str, payload: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.payload = payload or {}


class WorkerClient:
    """One pod's worker at ``base_url`` (the proxy URL of its port), authorised by ``token``."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        unreachable_after: float = 120.0,
        request_timeout: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        abort: threading.Event | None = None,
    ) -> None:
        import requests

        self.base_url = base_url.rstrip("/")
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Bearer {token}"
        self._session.trust_env = _trust_env(self.base_url)
        self.unreachable_after = unreachable_after
        self.request_timeout = request_timeout
        self._sleep = sleep
        self._abort = abort or threading.Event()

    def close(self) -> None:
        self._session.close()

    # ------------------------------------------------------------------ plumbing
    def _request(
        self,
        method: str,
        path: str,
        *,
        retry_for: float | None = None,
        timeout: float | None = None,
        ok: tuple[int, ...] = (200,),
        **kwargs: Any,
    ) -> Any:
        """Send, retrying proxy hiccups for ``retry_for`` seconds; return the ``requests`` response."""
        import requests

        give_up = time.monotonic() + (self.unreachable_after if retry_for is None else retry_for)
        attempt = 0
        while True:
            if self._abort.is_set():
                raise WorkerUnreachableError(f"{method} {path} not sent: the pod is being terminated")
            problem: str
            retry_after: float | None = None
            try:
                response = self._session.request(method, self.base_url + path, timeout=timeout or self.request_timeout, **kwargs)
            except requests.RequestException as exc:
                problem = type(exc).__name__
            else:
                if response.status_code in ok:
                    return response
                if response.status_code == 401:
                    raise WorkerRefusedError(401, "the worker refused our token (HTTP 401); is another job on this pod?")
                if response.status_code not in _RETRY_STATUSES:
                    payload = _json_or_empty(response)
                    message = str(payload.get("error") or f"HTTP {response.status_code}")
                    raise WorkerRefusedError(response.status_code, f"{method} {path}: {message}", payload)
                problem = f"HTTP {response.status_code}"
                retry_after = _retry_after(response.headers.get("Retry-After"))
                response.close()
            attempt += 1
            if time.monotonic() >= give_up:
                raise WorkerUnreachableError(f"the worker did not answer {method} {path} ({problem})")
            pause = random.uniform(0.2, 0.5 * 2 ** min(attempt, 4))
            if retry_after is not None:  # a rate limit in front of the pod says when to come back
                pause = retry_after
            self._abort.wait(max(0.0, min(pause, MAX_RETRY_AFTER, give_up - time.monotonic())))

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise WorkerUnreachableError(f"{method} {path}: the answer was not JSON (a proxy page?)") from None

    # ------------------------------------------------------------------ health and job
    def health(self, timeout: float = 10.0) -> Health | None:
        """The worker's health answer, or None when it does not answer (yet). Never retries."""
        import requests

        try:
            response = self._session.get(self.base_url + "/health", timeout=timeout)
        except requests.RequestException:
            return None
        if response.status_code == 401:
            raise WorkerRefusedError(401, "the worker refused our token (HTTP 401)")
        if response.status_code != 200:
            return None
        health = Health.from_json(_json_or_empty(response))
        return health if health.ok else None

    def boot(self, timeout: float = 10.0) -> BootStatus | None:
        """Stage 0's answer while the pod boots (``GET /boot``), or None: not up yet, or the worker answers. Never retries."""
        import requests

        try:
            response = self._session.get(self.base_url + "/boot", timeout=timeout)
        except requests.RequestException:
            return None
        if response.status_code == 401:
            raise WorkerRefusedError(401, "the pod refused our token (HTTP 401)")
        payload = _json_or_empty(response) if response.status_code == 200 else {}
        return BootStatus.from_json(payload) if payload.get("stage") == "boot" else None

    def send_package(self, data: bytes, sha256: str) -> BootStatus:
        """The ``unsloth_nb`` zip to a booting pod; it checks ``sha256`` before unpacking."""
        return BootStatus.from_json(self._json("PUT", f"/boot/package?sha256={sha256}", data=data, retry_for=30.0))

    def declare(self, job_id: str, config: dict[str, Any], dataset: bytes) -> JobStatus:
        body = {"job_id": job_id, "config": config, "dataset_sha256": sha256_hex(dataset), "dataset_bytes": len(dataset)}
        return JobStatus.from_json(self._json("PUT", "/job", json=body))

    def job(self) -> JobStatus:
        return JobStatus.from_json(self._json("GET", "/job"))

    def _received(self, path: str) -> int:
        return UploadReceipt.from_json(self._json("GET", path)).bytes_received

    def upload(self, dataset: bytes, chunk_size: int = MAX_CHUNK_BYTES, on_progress: Callable[[int], None] | None = None) -> None:
        """Send the packed dataset in chunks, resuming from what the worker already holds."""
        offset = self._received("/job/dataset")
        setbacks = 0
        while offset < len(dataset):
            chunk = dataset[offset : offset + chunk_size]
            before = offset
            try:
                answer = self._json(
                    "PUT",
                    "/job/dataset",
                    data=chunk,
                    headers={"Content-Range": content_range(offset, len(chunk), len(dataset))},
                    retry_for=0.0,
                )
                offset = UploadReceipt.from_json(answer).bytes_received
            except (WorkerUnreachableError, WorkerRefusedError) as exc:
                if isinstance(exc, WorkerRefusedError) and exc.status != 409:
                    raise
                # A lost or refused chunk: ask where the worker stands and go on from there.
                offset = self._received("/job/dataset")
                setbacks = setbacks + 1 if offset <= before else 0
                if setbacks >= 10:
                    raise WorkerUnreachableError(f"the dataset upload made no progress after {setbacks} tries ({exc})") from None
                self._sleep(min(5.0, 0.5 * setbacks))
            if on_progress is not None:
                on_progress(offset)

    def start(self, hub_checkpoint: str | None = None, secrets: dict[str, str] | None = None) -> JobStatus:
        """Start training; ``hub_checkpoint`` (``checkpoint-N``) makes the pod fetch it from the Hub and resume.

        ``secrets`` (HF_TOKEN) travel here, in the authenticated request, never in pod env.
        """
        body: dict[str, Any] = {}
        if hub_checkpoint:
            body["hub_checkpoint"] = hub_checkpoint
        if secrets:
            body["secrets"] = secrets
        return JobStatus.from_json(self._json("POST", "/job/start", json=body or None))

    def cancel(self) -> JobStatus:
        return JobStatus.from_json(self._json("POST", "/job/cancel"))

    def mark_collected(self) -> None:
        """Tell the worker its outputs are safe here, so it need not keep them anywhere before its pod ends."""
        self._json("POST", "/job/collected")

    def shutdown(self) -> None:
        self._request("POST", "/shutdown", retry_for=5.0)

    def events(self, after: int, timeout: float, retry_for: float | None = None) -> EventsPage:
        """One long poll: events with ``seq > after``, waiting up to ``timeout`` seconds for the first.

        ``retry_for`` bounds how long a dropped poll is retried here before the caller
        hears of it (and can ask RunPod whether the pod still exists).
        """
        wait = max(0.0, min(timeout, MAX_POLL_SECONDS))
        answer = self._json("GET", "/events", params={"after": after, "timeout": wait}, timeout=wait + 30.0, retry_for=retry_for)
        return EventsPage.from_json(answer)

    # ------------------------------------------------------------------ artifacts
    def artifacts(self, prefix: str = "", hash_wait: float = 1800.0) -> list[RemoteArtifact]:
        """The files under ``prefix`` with their sha256, asking again while the pod still hashes some.

        The worker hashes files as they are saved and never a big one inside a request
        (RunPod's proxy gives up after 100 s); a listing marks what is not hashed yet with
        ``sha256: null``. After ``hash_wait`` seconds the files come without a hash to check.
        """
        params = {"prefix": prefix, "sha256": 1} if prefix else {"sha256": 1}
        give_up = time.monotonic() + hash_wait
        while True:
            listing = [RemoteArtifact.from_json(a) for a in self._json("GET", "/artifacts", params=params)]
            pending = [a for a in listing if not a.sha256]
            if not pending or time.monotonic() >= give_up or self._abort.is_set():
                return listing
            log.info("the pod is still hashing %d file(s) (%s ...); asking again", len(pending), pending[0].name)
            self._abort.wait(min(2.0, max(0.0, give_up - time.monotonic())))

    def download(self, artifact: RemoteArtifact, target: Path, attempts: int = 5) -> None:
        """Fetch one file into ``target``, resuming a partial ``.part`` file; checked by sha256."""
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_file() and target.stat().st_size == artifact.bytes and file_sha256(target) == artifact.sha256:
            return
        part = target.with_name(target.name + ".part")
        for _ in range(attempts):
            have = part.stat().st_size if part.exists() else 0
            if have > artifact.bytes:
                part.unlink()
                have = 0
            if have < artifact.bytes:
                headers = {"Range": f"bytes={have}-"} if have else {}
                try:
                    response = self._request(
                        "GET", "/artifacts/" + _quote(artifact.name), headers=headers, stream=True, ok=(200, 206)
                    )
                except WorkerRefusedError as exc:
                    if exc.status == 416:
                        part.unlink(missing_ok=True)
                        continue
                    raise
                mode = "ab" if response.status_code == 206 else "wb"
                try:
                    with part.open(mode) as handle:
                        for block in response.iter_content(DOWNLOAD_BLOCK):
                            handle.write(block)
                except OSError as exc:
                    if isinstance(exc, (FileNotFoundError, PermissionError)):
                        raise
                    continue  # a broken connection: the next round resumes from what arrived
                except Exception as exc:  # requests' own stream errors
                    log.info("download of %s broke (%s); resuming", artifact.name, type(exc).__name__)
                    continue
                finally:
                    response.close()
            if part.stat().st_size == artifact.bytes and (not artifact.sha256 or file_sha256(part) == artifact.sha256):
                os.replace(part, target)
                return
            part.unlink(missing_ok=True)  # complete but wrong: fetch it again from the start
        raise BackendError(f"could not download {artifact.name} intact from the pod after {attempts} tries")

    def upload_file(self, name: str, source: Path, chunk_size: int = MAX_CHUNK_BYTES) -> None:
        """Send one checkpoint file as artifact ``name``, in chunks; a lost chunk is sent again.

        The worker keeps what arrived, so after a failure the next chunk starts from the
        size it reports; the caller checks the result against its own sha256.
        """
        size = source.stat().st_size
        url = "/artifacts/" + _quote(name)
        if size == 0:
            self._json("PUT", url, data=b"", headers={"Content-Range": "bytes */0"})
            return
        offset, setbacks = 0, 0
        with source.open("rb") as handle:
            while offset < size:
                handle.seek(offset)
                chunk = handle.read(chunk_size)
                try:
                    answer = self._json(
                        "PUT", url, data=chunk, headers={"Content-Range": content_range(offset, len(chunk), size)}
                    )
                    offset = UploadReceipt.from_json(answer).bytes_received
                    setbacks = 0
                except WorkerRefusedError as exc:
                    received = exc.payload.get("bytes_received")
                    if exc.status != 409 or received is None:
                        raise
                    offset, setbacks = int(received), setbacks + 1
                    if setbacks >= 10:
                        raise WorkerUnreachableError(f"the upload of {name} made no progress after {setbacks} tries") from None


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="/")


def _json_or_empty(response: Any) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _trust_env(url: str) -> bool:
    """Loopback (the emulator) never goes through a proxy configured in the environment."""
    from urllib.parse import urlsplit

    return urlsplit(url).hostname not in ("127.0.0.1", "localhost", "::1")
