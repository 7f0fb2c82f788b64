"""The training job as a RunPod serverless request: a generator handler for the ``runpod`` SDK's worker loop.

The serverless boot (:mod:`unsloth_nb.backends.runpod_serverless.boot`) unpacks this package from the
request's input and hands every request to :func:`handle`. The request's input (built by
:func:`unsloth_nb.backends.runpod_serverless.request.job_input`)::

    {"unsloth_nb": 1, "job_id", "config": {...}, "dataset": base64(pack_dataset), "dataset_sha256",
     "source": null | {...}, "checkpoint_store": null | {...}, "artifact_limit_bytes", "package", "package_sha256"}

``checkpoint_store`` (see :mod:`unsloth_nb.worker.checkpoint_store`): each checkpoint is uploaded there as it
is saved, and a request that finds one there resumes from the newest instead of step 0.

A dataset that lives on the Hub, S3 or a network volume travels as ``source`` instead of rows
(``dataset`` and ``dataset_sha256`` are null): the reference preflight made
(:func:`unsloth_nb.data.remote.prepare_from_sample`: the dataset config and each source's
``to_json()`` with the revision and ETags seen there). The worker reads every row itself, as a
pod's worker does, before the model loads; a bad row fails the request with its ``file:line``.
The handler runs the job's model phases (the same code as in the kernel and on a pod) in a thread
and yields what happens, in order:

- ``{"events": [event, ...]}``: the job's events with a dense ``seq`` from 0, a batch at a time
  (each stream chunk stays far below RunPod's 1 MB);
- ``{"artifact": name, "path", "kind", "part", "parts", "data"}``: each artifact of the result,
  zipped and cut into base64 parts, when all of them fit ``artifact_limit_bytes``;
- ``{"result": PhaseResult.to_json(), "state", "reason"}`` last.

A failure yields its events and then ``{"error": message}``, which the SDK turns into a FAILED request.
A cancelled request (``/cancel``, the execution timeout) closes the generator: training is told to
stop and the thread is waited for, so the worker is free for the next request.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import os
import tempfile
import threading
import time
import traceback
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unsloth_nb.jobrun.events import EventLog
from unsloth_nb.worker.checkpoint_store import CheckpointStore
from unsloth_nb.worker.protocol import JOB_ID_PATTERN, PackError, unpack_prepared

if TYPE_CHECKING:
    from unsloth_nb.data.records import PreparedDataset

logger = logging.getLogger("unsloth_nb.worker.serverless")

INPUT_VERSION = 1
#: Events per stream chunk, and how long a chunk waits to fill before it goes.
BATCH_EVENTS = 200
BATCH_SECONDS = 0.5
#: Raw bytes per artifact part (base64 makes it 4/3 larger; RunPod's stream chunk limit is 1 MB).
PART_BYTES = 512 * 1024
#: How long a stopped request waits for training to save and end before the worker moves on.
STOP_GRACE_S = 120.0


class RequestError(ValueError):
    """A request this worker cannot run; the message says what was wrong with it."""


def handle(job: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The handler: one serverless request, one training job (see the module docstring)."""
    try:
        run = ServerlessRun.from_request(job)
    except RequestError as exc:
        yield {"error": f"unsloth-nb request refused: {exc}"}
        return
    yield from run.stream()


class ServerlessRun:
    """One request's job: inputs checked, phases in a thread, events and artifacts out as stream chunks."""

    def __init__(self, request_id: str, body: dict[str, Any], work_dir: Path) -> None:
        from unsloth_nb.config import TrainConfig
        from unsloth_nb.errors import UnslothNbError

        self.request_id = request_id
        self.job_id = str(body["job_id"])
        self.work_dir = work_dir
        self.output_dir = work_dir / "output"
        self.output_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.config = TrainConfig.from_dict(body["config"])
        except UnslothNbError as exc:
            raise RequestError(str(exc)) from None
        self.source: dict[str, Any] | None = body.get("source")
        self.dataset: PreparedDataset | None = None
        if self.source is None:
            raw = _b64(body.get("dataset"), "dataset")
            if hashlib.sha256(raw).hexdigest() != body.get("dataset_sha256"):
                raise RequestError("the dataset's sha256 does not match dataset_sha256; send the request again")
            try:
                self.dataset = unpack_prepared(raw)
            except PackError as exc:
                raise RequestError(f"the dataset cannot be read: {exc}") from None
        self.artifact_limit = int(body.get("artifact_limit_bytes") or 0)
        self.store = CheckpointStore.from_json(body.get("checkpoint_store"), self.job_id)
        self.log = EventLog(self.job_id)
        self.sent = -1
        self.stop = threading.Event()
        self.state = "starting"
        self.result: Any = None
        self.failure: str | None = None
        self._done = threading.Event()

    @classmethod
    def from_request(cls, job: dict[str, Any]) -> ServerlessRun:
        body = job.get("input")
        if not isinstance(body, dict) or body.get("unsloth_nb") != INPUT_VERSION:
            raise RequestError(f"not an unsloth-nb request of input version {INPUT_VERSION}")
        source = body.get("source")
        if source is not None and not (isinstance(source, dict) and isinstance(source.get("dataset"), dict)):
            raise RequestError("source must be a dataset reference (an object with 'dataset'), or null")
        if source is not None and body.get("dataset") is not None:
            raise RequestError("give the rows in 'dataset' or a reference in 'source', not both")
        job_id = str(body.get("job_id") or "")
        if not JOB_ID_PATTERN.fullmatch(job_id):
            raise RequestError(f"job_id {job_id!r} is not a job id")
        root = Path(os.environ.get("UNSLOTH_NB_WORK_DIR") or tempfile.gettempdir()) / "unsloth-nb-serverless"
        request_id = str(job.get("id") or "request")
        work = root / f"{job_id}-{hashlib.sha256(request_id.encode()).hexdigest()[:12]}"
        return cls(request_id, body, work)

    # ------------------------------------------------------------------ running
    def stream(self) -> Iterator[dict[str, Any]]:
        thread = threading.Thread(target=self._train, name=f"unsloth-nb-serverless-{self.job_id}", daemon=True)
        thread.start()
        try:
            while not self._done.is_set():
                self._done.wait(BATCH_SECONDS)
                batch = self._take_events()
                if batch:
                    yield {"events": batch}
            while batch := self._take_events():
                yield {"events": batch}
            if self.failure is not None:
                yield {"error": self.failure}
                return
            yield from self._artifacts()
            reason = self._reason()
            yield {"result": self.result.to_json(), "state": self.state, "reason": reason}
        finally:
            # Closed early: the request was cancelled or timed out. Stop training and wait for it.
            self.stop.set()
            thread.join(STOP_GRACE_S)

    def _train(self) -> None:
        from unsloth_nb.errors import UnslothNbError
        from unsloth_nb.phases.runner import run_model_phases

        hooks = _Hooks(self)
        try:
            self._set_state("starting")
            dataset = self._read_source(self.source) if self.source is not None else self.dataset
            assert dataset is not None  # __init__ unpacked the rows when no source was sent
            resume = self._restore()
            self.result = run_model_phases(self.config, dataset, self.output_dir, hooks, resume).result
            self.state = "cancelled" if self.result.stopped or self.stop.is_set() else "succeeded"
        except BaseException as exc:
            if isinstance(exc, UnslothNbError):
                message = str(exc)
            else:
                message = f"{type(exc).__name__}: {exc}"
                logger.error("training failed:\n%s", traceback.format_exc())
            self.log.emit("error", message=message, error_type=type(exc).__name__)
            self.state, self.failure = "failed", message
        finally:
            self._done.set()

    def _read_source(self, reference: dict[str, Any]) -> PreparedDataset:
        """Every row of a remote dataset, read and validated on this worker (the client only checked a sample)."""
        from unsloth_nb.data.remote import read_reference

        started = time.monotonic()
        self.log.emit("log", level="info", source="worker", message="reading the dataset in full where training runs")
        dataset = read_reference(reference)
        self.log.emit(
            "log",
            level="info",
            source="worker",
            message=f"dataset read here: {len(dataset.train)} training and {len(dataset.eval or [])} eval rows "
            f"in {time.monotonic() - started:.1f} s",
        )
        return dataset

    def _restore(self) -> str | None:
        """The newest checkpoint a lost worker left in the job's store, downloaded here; None to start at step 0."""
        if self.store is None:
            return None
        from unsloth_nb.engine.sft import checkpoint_dir

        name = self.store.newest()
        if name is None:
            return None
        started = time.monotonic()
        path = self.store.download(name, checkpoint_dir(self.output_dir))
        self.log.emit(
            "log",
            level="info",
            source="worker",
            message=f"resuming from {name} in {self.store.display} (downloaded in {time.monotonic() - started:.1f} s)",
        )
        return str(path)

    def keep_checkpoint(self, path: str) -> None:
        """Upload a checkpoint the trainer just saved, before training goes on; a failure is said, not fatal."""
        if self.store is None:
            return
        started = time.monotonic()
        try:
            sent = self.store.upload(Path(path))
            self.store.prune()
        except Exception as exc:  # the store is a safety net: training goes on without it
            self.log.emit(
                "log", level="warning", source="worker", message=f"{Path(path).name} not kept in {self.store.display}: {exc}"
            )
            return
        self.log.emit(
            "log",
            level="info",
            source="worker",
            message=f"{Path(path).name} kept in {self.store.display} ({sent / 1e6:.1f} MB in {time.monotonic() - started:.1f} s)",
        )

    def _reason(self) -> str:
        step, loss = self.result.metrics.get("global_step", 0), self.result.metrics.get("final_loss")
        if self.state == "cancelled":
            return f"stopped at step {step}"
        return f"trained {step} steps" + (f", final loss {loss:.4f}" if isinstance(loss, float) else "")

    def _take_events(self) -> list[dict[str, Any]]:
        events = self.log.read(after=self.sent, limit=BATCH_EVENTS)
        if events:
            self.sent = events[-1].seq
        return [{"job_id": e.job_id, "seq": e.seq, "time": e.time, "kind": e.kind, "data": e.data} for e in events]

    def _set_state(self, state: str) -> None:
        if state != self.state or not len(self.log):
            previous, self.state = self.state, state
            self.log.emit("status", state=state, previous=previous)

    # ------------------------------------------------------------------ artifacts
    def _artifacts(self) -> Iterator[dict[str, Any]]:
        """Each artifact zipped, in base64 parts, when they all fit the request's limit; else a log line says so."""
        packed: list[tuple[str, Any, bytes]] = []
        for name, artifact in self.result.artifacts.items():
            path = artifact.local_path(self.output_dir)
            if path.exists():
                packed.append((name, artifact, _zip(path)))
        total = sum(len(data) for *_, data in packed)
        if total > self.artifact_limit:
            names = ", ".join(name for name, *_ in packed)
            self.log.emit(
                "log",
                level="warning",
                source="worker",
                message=f"artifacts ({names}; {total / 1e6:.1f} MB zipped) exceed the {self.artifact_limit / 1e6:.1f} MB "
                "a serverless result may carry; only what the job pushed to the Hub is kept",
            )
            if batch := self._take_events():
                yield {"events": batch}
            return
        for name, artifact, data in packed:
            parts = max(1, -(-len(data) // PART_BYTES))
            for part in range(parts):
                chunk = data[part * PART_BYTES : (part + 1) * PART_BYTES]
                yield {
                    "artifact": name,
                    "path": artifact.path,
                    "kind": artifact.kind,
                    "part": part,
                    "parts": parts,
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "data": base64.b64encode(chunk).decode("ascii"),
                }


class _Hooks:
    """PhaseHooks for a serverless request: events into the request's log, Stop from its flag."""

    def __init__(self, run: ServerlessRun) -> None:
        self.run = run

    def emit(self, kind: str, /, **data: Any) -> None:
        path = data.get("path")
        if kind in ("artifact", "checkpoint") and isinstance(path, str):
            data = {**data, "path": _relative(path, self.run.output_dir)}
        self.run.log.emit(kind, **data)
        if kind == "checkpoint" and isinstance(path, str):
            self.run.keep_checkpoint(path)

    def should_stop(self) -> bool:
        return self.run.stop.is_set()

    def enter(self, state: str) -> None:
        self.run._set_state(state)


def _relative(path: str, output_dir: Path) -> str:
    try:
        return Path(path).resolve().relative_to(output_dir.resolve()).as_posix()
    except ValueError:
        return path


def _b64(value: Any, name: str) -> bytes:
    if not isinstance(value, str):
        raise RequestError(f"{name} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        raise RequestError(f"{name} is not valid base64") from None


def _zip(path: Path) -> bytes:
    """A file or folder as a reproducible zip (names relative to ``path``)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            name = file.name if path.is_file() else file.relative_to(path).as_posix()
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, file.read_bytes())
    return buffer.getvalue()


__all__ = ["INPUT_VERSION", "RequestError", "ServerlessRun", "handle"]
