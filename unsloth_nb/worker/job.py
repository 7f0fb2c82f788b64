"""The one job a worker runs: declared, uploaded, verified, trained, kept on disk.

Everything that must survive a worker restart lives in the work folder::

    job.json        the declared job (id, config, dataset size and sha256)
    dataset.jsonl   the packed dataset, appended chunk by chunk (its size is the upload cursor)
    events.jsonl    the event log (dense seq), reloaded on restart
    worker.log      the worker's own log; the tail goes into error events
    output/         the model phases' output folder: adapter/, checkpoints/checkpoint-N/, merged_16bit/

A worker that restarts while the job was starting, training or saving reports the
state ``interrupted``; ``POST /job/start`` then resumes from the newest complete
checkpoint in ``output/checkpoints``. ``POST /job/start`` with ``{"hub_checkpoint":
"checkpoint-N"}`` first downloads that checkpoint from the job's Hub checkpoint repo
(a job moving to a new pod). While training, each checkpoint is also pushed there
when the job has one (:mod:`unsloth_nb.worker.hub_checkpoints`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unsloth_nb.jobrun.checkpoints import newest_checkpoint
from unsloth_nb.jobrun.events import Event, EventLog
from unsloth_nb.jobrun.lifecycle import ENGINE_STATES as RUNNING_STATES
from unsloth_nb.jobrun.lifecycle import TERMINAL_STATES
from unsloth_nb.worker.artifacts import HashCache
from unsloth_nb.worker.protocol import (
    CRASH_LOG_MARKER,
    IDLE,
    INTERRUPTED,
    JOB_ID_PATTERN,
    LAST_EXIT_ENV,
    MAX_DATASET_BYTES,
    MAX_EVENTS_PER_POLL,
    MAX_POLL_SECONDS,
    RECEIVING,
    SHA256_PATTERN,
    PackError,
    file_sha256,
    unpack_prepared,
)
from unsloth_nb.worker.scrub import Redactor

if TYPE_CHECKING:
    from unsloth_nb.config import TrainConfig
    from unsloth_nb.data import PreparedDataset
    from unsloth_nb.worker.hub_checkpoints import HubCheckpointPusher

logger = logging.getLogger("unsloth_nb.worker")

LOG_TAIL_LINES = 40
LOG_TAIL_CHARS = 6000
#: Secrets a job request may bring besides those its phases name (held in this process's memory only,
#: never written to the work folder).
SECRET_NAMES = frozenset({"HF_TOKEN", "WANDB_API_KEY"})
#: The only artifacts a client may upload: the files of a checkpoint to resume from.
#: A checkpoint to resume from, and the judge's held-out questions (the answers phase reads them).
_UPLOADABLE = re.compile(r"checkpoints/checkpoint-\d+/[^/].*|evaluation/heldout\.jsonl")


class WorkerError(Exception):
    """A request the worker refuses; ``status`` is the HTTP answer, the message says what to do.

    ``extra`` fields go into the JSON answer beside ``error`` (``bytes_received`` tells an
    upload where to resume).
    """

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


@dataclass(frozen=True)
class JobSpec:
    """What ``PUT /job`` declares."""

    job_id: str
    config: dict[str, Any]
    dataset_sha256: str
    dataset_bytes: int

    @classmethod
    def from_request(cls, body: Any) -> JobSpec:
        from unsloth_nb.config import TrainConfig
        from unsloth_nb.errors import UnslothNbError

        if not isinstance(body, dict):
            raise WorkerError(400, "expected a JSON object with job_id, config, dataset_sha256 and dataset_bytes")
        job_id, config = body.get("job_id"), body.get("config")
        digest, size = body.get("dataset_sha256"), body.get("dataset_bytes")
        if not isinstance(job_id, str) or not JOB_ID_PATTERN.fullmatch(job_id):
            raise WorkerError(400, "job_id must be 1-64 letters, digits, '.', '_' or '-'")
        if not isinstance(digest, str) or not SHA256_PATTERN.fullmatch(digest):
            raise WorkerError(400, "dataset_sha256 must be 64 lowercase hex digits")
        if not isinstance(size, int) or isinstance(size, bool) or not 0 < size <= MAX_DATASET_BYTES:
            raise WorkerError(400, f"dataset_bytes must be a whole number from 1 to {MAX_DATASET_BYTES}")
        if not isinstance(config, dict):
            raise WorkerError(400, "config must be a TrainConfig as a JSON object")
        try:
            config = TrainConfig.from_dict(config).to_dict()
        except UnslothNbError as exc:
            raise WorkerError(400, f"invalid config: {exc}") from None
        return cls(job_id, config, digest, size)

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "config": self.config,
            "dataset_sha256": self.dataset_sha256,
            "dataset_bytes": self.dataset_bytes,
        }


class JobHost:
    """Holds the job's state and files, and runs the engine in a thread."""

    def __init__(self, work_dir: Path, redactor: Redactor) -> None:
        self.work_dir = work_dir
        self.redactor = redactor
        self.output_dir = work_dir / "output"
        self.spec_path = work_dir / "job.json"
        self.dataset_path = work_dir / "dataset.jsonl"
        self.events_path = work_dir / "events.jsonl"
        self.log_path = work_dir / "worker.log"
        self.cancel_event = threading.Event()
        self.hashes = HashCache()  # saved files are hashed as they appear, never inside a request
        self.secrets: dict[str, str] = {}  # what POST /job/start brought (HF_TOKEN): memory only, never on disk
        self._lock = threading.RLock()
        self._upload_lock = threading.Lock()
        self._declared = threading.Event()
        self._thread: threading.Thread | None = None
        self.spec: JobSpec | None = None
        self.log: EventLog | None = None
        self.state = IDLE
        self.finished_at: float | None = None
        self._recover()

    # ------------------------------------------------------------------ restart
    def _recover(self) -> None:
        """Pick up a job a previous worker process left in this folder."""
        if not self.spec_path.is_file():
            return
        raw = json.loads(self.spec_path.read_text(encoding="utf-8"))
        self.spec = JobSpec(raw["job_id"], raw["config"], raw["dataset_sha256"], int(raw["dataset_bytes"]))
        self.log = EventLog(self.spec.job_id, self.events_path)
        self._declared.set()
        statuses = self.log.read(kinds={"status"})
        self.state = str(statuses[-1].data.get("state")) if statuses else RECEIVING
        if self.state in RUNNING_STATES:
            # The previous process died mid-run (killed, crashed, its container restarted). Its last log
            # lines are the only account of why, and a client may decide to fail the job with them.
            code = os.environ.get(LAST_EXIT_ENV, "").strip()
            how = f" (it exited with status {code})" if code else ""
            tail = self.log_tail()
            if tail:
                self._emit(
                    "log",
                    level="error",
                    message=f"the worker process ended while the job was {self.state}{how}; {CRASH_LOG_MARKER}{tail}",
                    source="worker",
                )
            self._set_state(INTERRUPTED, f"the worker restarted while the job was {self.state}{how}; POST /job/start resumes it")
        if self.state in TERMINAL_STATES or self.state == INTERRUPTED:
            self.finished_at = time.monotonic()
        logger.info("recovered job %s in state %s", self.spec.job_id, self.state)

    # ------------------------------------------------------------------ declaring and uploading
    def declare(self, body: Any) -> dict[str, Any]:
        spec = JobSpec.from_request(body)
        with self._upload_lock, self._lock:
            if self.spec is not None and self.spec.job_id != spec.job_id:
                raise WorkerError(409, f"this worker already holds job {self.spec.job_id}; a pod runs one job")
            if self.spec is not None and self.state != RECEIVING:
                if spec != self.spec:
                    raise WorkerError(409, f"job {spec.job_id} is already {self.state}; it cannot be changed now")
                return self.describe()
            if self.spec is not None and spec.dataset_sha256 != self.spec.dataset_sha256:
                self.dataset_path.unlink(missing_ok=True)  # another dataset: start its upload afresh
            self.work_dir.mkdir(parents=True, exist_ok=True)
            _write_json_atomic(self.spec_path, spec.to_dict())
            if self.log is None:
                self.log = EventLog(spec.job_id, self.events_path)
            self.spec = spec
            self.state = RECEIVING
            self._declared.set()
            return self.describe()

    def bytes_received(self) -> int:
        try:
            return self.dataset_path.stat().st_size
        except FileNotFoundError:
            return 0

    def write_chunk(self, start: int, total: int, chunk: bytes) -> dict[str, Any]:
        """Append a chunk at ``start``; a chunk that restarts earlier (a retry) truncates there first."""
        with self._upload_lock:
            spec = self._require_spec()
            if self.state != RECEIVING:
                raise WorkerError(409, f"job is {self.state}; the dataset can no longer change")
            if total != spec.dataset_bytes:
                raise WorkerError(
                    400, f"Content-Range total {total} differs from the declared dataset_bytes {spec.dataset_bytes}"
                )
            received = self.bytes_received()
            if start > received:
                raise WorkerError(
                    409, f"chunk starts at {start} but only {received} bytes are here; resume from there", bytes_received=received
                )
            with self.dataset_path.open("r+b" if self.dataset_path.exists() else "wb") as handle:
                handle.truncate(start)
                handle.seek(start)
                handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            return {"bytes_received": start + len(chunk), "dataset_bytes": spec.dataset_bytes}

    def write_artifact_chunk(self, name: str, start: int, total: int | None, chunk: bytes) -> dict[str, Any]:
        """Store a piece of a checkpoint file the client sends to resume from (a job moving to a new pod).

        Only ``checkpoints/checkpoint-N/...`` before training starts, so a client can seed
        the output folder but never overwrite what training wrote. Like the dataset, a
        chunk may restart earlier than what is stored (a retry) but never leave a hole.
        The client sends ``trainer_state.json`` last: :func:`~unsloth_nb.jobrun.checkpoints.newest_checkpoint` takes a
        folder as complete only once that file is there.
        """
        from unsloth_nb.worker.artifacts import clean_relative

        with self._upload_lock:
            spec = self._require_spec()
            if self.state != RECEIVING:
                raise WorkerError(409, f"job {spec.job_id} is {self.state}; checkpoints can only be sent before it starts")
            relative = clean_relative(name)
            if not _UPLOADABLE.fullmatch(relative):
                raise WorkerError(403, "only checkpoints/checkpoint-N/<file> and evaluation/heldout.jsonl can be uploaded")
            self.output_dir.mkdir(parents=True, exist_ok=True)
            base = self.output_dir.resolve()
            path = base / relative
            for _ in range(2):  # before creating folders (a symlink on the way), and after
                if not path.resolve().is_relative_to(base):
                    raise WorkerError(403, "path refused: it resolves outside the output folder")
                path.parent.mkdir(parents=True, exist_ok=True)
            received = path.stat().st_size if path.is_file() else 0
            if start > received:
                raise WorkerError(
                    409, f"chunk starts at {start} but only {received} bytes are here; resume from there", bytes_received=received
                )
            with path.open("r+b" if path.exists() else "wb") as handle:
                handle.truncate(start)
                handle.seek(start)
                handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            return {"name": relative, "bytes_received": start + len(chunk), "bytes": total}

    # ------------------------------------------------------------------ running
    def start(self, hub_checkpoint: Any = None, secrets: Any = None) -> dict[str, Any]:
        """Verify the upload, then run the engine in a thread (resuming when a checkpoint exists).

        ``hub_checkpoint`` names a checkpoint in the job's Hub checkpoint repo to resume
        from; the training thread downloads it first unless a checkpoint at least as new
        is already here. ``secrets`` (``{"HF_TOKEN": ...}``) are what the job's phases
        need: they go into this process's environment, where the libraries look, and
        into the redactor, and nowhere else; every start sends them again, so a worker
        that restarted has them too.
        """
        with self._upload_lock, self._lock:  # no chunk may land while the upload is checked
            spec = self._require_spec()
            if self.state in RUNNING_STATES or self.state in TERMINAL_STATES:
                raise WorkerError(409, f"job {spec.job_id} is already {self.state}")
            self._take_secrets(secrets, spec)
            config, dataset = self._verified_inputs(spec)
            resume = newest_checkpoint(self.output_dir / "checkpoints")
            fetch = self._hub_checkpoint_to_fetch(config, hub_checkpoint, resume)
            self.cancel_event.clear()
            self.finished_at = None
            received = (
                f"dataset reference received ({spec.dataset_bytes} bytes, sha256 verified): its rows are read here"
                if dataset.reference is not None
                else f"dataset received: {len(dataset.train)} training and {len(dataset.eval or [])} eval rows "
                f"({spec.dataset_bytes} bytes, sha256 verified)"
            )
            self._emit("log", level="info", message=received, source="worker")
            self._report_boot()
            if resume is not None and fetch is None:
                self._emit("log", level="info", message=f"resuming from {resume.relative_to(self.output_dir)}", source="worker")
            self._set_state("starting")
            self._thread = threading.Thread(
                target=self._train, args=(config, dataset, resume, fetch), name=f"unsloth-nb-train-{spec.job_id}", daemon=True
            )
            self._thread.start()
            answer = self.describe()
            if fetch is not None:
                answer["resumed_from"] = f"checkpoints/{fetch}"
            else:
                answer["resumed_from"] = resume.relative_to(self.output_dir).as_posix() if resume else None
            return answer

    def _take_secrets(self, secrets: Any, spec: JobSpec) -> None:
        """Keep the request's secrets for this job: in memory, in the redactor, in this process's environment."""
        if secrets is None:
            return
        if not isinstance(secrets, dict) or not all(isinstance(v, str) for v in secrets.values()):
            raise WorkerError(400, 'secrets must be a JSON object of strings, like {"HF_TOKEN": "..."}')
        allowed = SECRET_NAMES | _phase_secret_names(spec.config)
        unknown = sorted(set(secrets) - allowed)
        if unknown:
            raise WorkerError(400, f"unknown secret names {unknown}; this job takes {sorted(allowed)}")
        self.redactor.add(secrets.values())
        for name, value in secrets.items():
            if value:
                self.secrets[name] = value
                os.environ[name] = value  # where huggingface_hub and the engine look

    def _report_boot(self) -> None:
        """Once per worker process: the image's torch and CUDA, and how the pod's install went, as a log event."""
        from unsloth_nb.worker.settings import BOOT_REPORT_ENV

        path = os.environ.pop(BOOT_REPORT_ENV, "")
        if not path:
            return
        try:
            report = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        problem = report.get("problem")
        message = f"pod: {report.get('summary')}; packages {report.get('install')} ({report.get('seconds')} s of boot)"
        self._emit(
            "log", level="error" if problem else "info", message=message + (f"; {problem}" if problem else ""), source="pod"
        )

    def _hub_checkpoint_to_fetch(self, config: TrainConfig, name: Any, have: Path | None) -> str | None:
        """The Hub checkpoint to download before training, or None when there is none to fetch."""
        from unsloth_nb.jobrun.checkpoints import CHECKPOINT_NAME, checkpoint_step

        if name is None:
            return None
        if not isinstance(name, str) or not CHECKPOINT_NAME.fullmatch(name):
            raise WorkerError(400, "hub_checkpoint must be a checkpoint-N name")
        if not config.hub.checkpoint_repo_id:
            raise WorkerError(400, "this job has no Hub checkpoint repo (hub.repo_id with hub.push_checkpoints)")
        if not (self.secrets.get("HF_TOKEN") or os.environ.get("HF_TOKEN")):
            raise WorkerError(400, "no HF_TOKEN came with this job's start request, so its Hub checkpoints cannot be read")
        if have is not None and checkpoint_step(have.name) >= checkpoint_step(name):
            return None  # a checkpoint at least as new is already here
        return name

    def _verified_inputs(self, spec: JobSpec) -> tuple[TrainConfig, PreparedDataset]:
        from unsloth_nb.config import TrainConfig
        from unsloth_nb.errors import UnslothNbError
        from unsloth_nb.phases.runner import check_needs, phases_for

        received = self.bytes_received()
        if received != spec.dataset_bytes:
            raise WorkerError(
                409,
                f"dataset incomplete: {received} of {spec.dataset_bytes} bytes received; resume the upload from {received}",
                bytes_received=received,
            )
        digest = file_sha256(self.dataset_path)
        if digest != spec.dataset_sha256:
            raise WorkerError(
                400,
                f"dataset checksum mismatch: declared sha256 {spec.dataset_sha256}, received {digest}; "
                "upload the dataset again from offset 0",
                bytes_received=received,
            )
        try:
            dataset = unpack_prepared(self.dataset_path.read_bytes())
        except PackError as exc:
            raise WorkerError(400, f"the uploaded dataset cannot be read: {exc}") from None
        try:
            config = TrainConfig.from_dict(spec.config)
            # The secrets this job's phases must have came with the request (or were set for this worker by hand).
            check_needs(config, phases_for(config, runs_on="model"), available={**os.environ, **self.secrets})
        except UnslothNbError as exc:
            raise WorkerError(400, self.redactor.text(str(exc))) from None
        return config, dataset

    def _train(self, config: TrainConfig, dataset: PreparedDataset, resume: Path | None, fetch: str | None = None) -> None:
        from unsloth_nb.errors import UnslothNbError
        from unsloth_nb.worker.hub_checkpoints import HubCheckpointPusher, hub_checkpoint_repo

        repo = hub_checkpoint_repo(config)
        pusher = HubCheckpointPusher(repo, self.work_dir / "hub-staging", self.output_dir, self._emit) if repo else None
        hooks = WorkerHooks(self, pusher)
        try:
            from unsloth_nb.phases.runner import run_model_phases

            if dataset.reference is not None:
                dataset = self._read_dataset_here(dataset.reference)
            if fetch is not None and config.hub.checkpoint_repo_id:  # start() checked the repo is there
                resume = self._fetch_hub_checkpoint(config.hub.checkpoint_repo_id, fetch)
            result = run_model_phases(
                config, dataset, self.output_dir, hooks, resume_from_checkpoint=str(resume) if resume else None
            ).result
        except BaseException as exc:
            if isinstance(exc, UnslothNbError):  # a mistake the message explains; a traceback would only hide it
                message = str(exc)
                logger.error("training stopped: %s", message)
            else:
                message = f"{type(exc).__name__}: {exc}"
                logger.error("training failed:\n%s", traceback.format_exc())
            message = self.redactor.text(message)
            self._emit("error", message=message, error_type=type(exc).__name__, log_tail=self.log_tail())
            self._finish("failed", message)
            return
        finally:
            if pusher is not None:
                pusher.close()
        step, loss_value = result.metrics.get("global_step", 0), result.metrics.get("final_loss")
        if result.stopped or self.cancel_event.is_set():
            saved = "; checkpoint and adapter saved" if "adapter" in result.artifacts else ""
            self._finish("cancelled", f"stopped by the client at step {step}{saved}")
        else:
            loss = f", final loss {loss_value:.4f}" if isinstance(loss_value, float) else ""
            self._finish("succeeded", f"trained {step} steps{loss}")

    def _read_dataset_here(self, reference: dict[str, Any]) -> PreparedDataset:
        """Read a remote dataset in full on this machine (Hub, S3, the network volume's mount) and validate every row.

        A bad row fails the job here with its ``file:line``, before the model loads.
        """
        from unsloth_nb.data.remote import read_reference

        started = time.monotonic()
        self._emit("log", level="info", message="reading the dataset in full where training runs", source="worker")
        dataset = read_reference(reference)
        self._emit(
            "log",
            level="info",
            message=f"dataset read here: {len(dataset.train)} training and {len(dataset.eval or [])} eval rows "
            f"in {time.monotonic() - started:.1f} s",
            source="worker",
        )
        return dataset

    def _fetch_hub_checkpoint(self, repo_id: str, name: str) -> Path:
        """Download the repo's checkpoint: ``name``, or a newer one that replaced it meanwhile.

        The lost pod may have pushed once more while it was going away (an evicted pod
        gets a few seconds' grace), and each push replaces the previous checkpoint.
        """
        from unsloth_nb.errors import BackendError
        from unsloth_nb.hub import download_checkpoint, newest_checkpoint_on_hub
        from unsloth_nb.jobrun.checkpoints import checkpoint_step

        newest = newest_checkpoint_on_hub(repo_id)
        if newest is None or checkpoint_step(newest) < checkpoint_step(name):
            raise BackendError(f"the Hub repo {repo_id} holds no checkpoint at or after {name} (it has {newest or 'none'})")
        name = newest
        self._emit("log", level="info", message=f"downloading {name} from the Hub repo {repo_id}", source="worker")
        started = time.monotonic()
        folder = download_checkpoint(repo_id, name, self.output_dir / "checkpoints")
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        self._emit(
            "log",
            level="info",
            message=f"resuming from checkpoints/{name}, downloaded from {repo_id} "
            f"({size / 1e6:.1f} MB in {time.monotonic() - started:.1f} s)",
            source="worker",
        )
        return folder

    def _finish(self, state: str, reason: str) -> None:
        with self._lock:
            self._set_state(state, reason)
            self.finished_at = time.monotonic()

    def cancel(self) -> dict[str, Any]:
        with self._lock:
            self._require_spec()
            if self.state in TERMINAL_STATES:
                return self.describe()
            if self.state in RUNNING_STATES:
                if not self.cancel_event.is_set():
                    self.cancel_event.set()
                    self._emit("log", level="info", message="stop requested by the client", source="worker")
            else:  # receiving or interrupted: nothing runs, so it ends here
                self.cancel_event.set()
                self._finish("cancelled", "cancelled by the client before training started")
            return self.describe()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # ------------------------------------------------------------------ reading
    def events(self, after: int, timeout: float) -> dict[str, Any]:
        """Events after ``after``, waiting up to ``timeout`` (at most MAX_POLL_SECONDS) for the first."""
        deadline = time.monotonic() + max(0.0, min(timeout, MAX_POLL_SECONDS))
        if self.log is None and not self._declared.wait(max(0.0, deadline - time.monotonic())):
            return {"job_id": None, "events": [], "state": self.state, "last_seq": -1, "more": False}
        assert self.log is not None
        found = self.log.wait(after, timeout=max(0.0, deadline - time.monotonic()))
        batch = found[:MAX_EVENTS_PER_POLL]
        state = self.state  # before last_seq (see _set_state): an end state seen here has its status event counted
        last_seq = self.log.last_seq
        return {
            "job_id": self.log.job_id,
            "events": [_event_dict(e) for e in batch],
            "state": state,
            "last_seq": last_seq,
            "more": len(found) > len(batch),
        }

    def describe(self) -> dict[str, Any]:
        spec = self.spec
        return {
            "job_id": spec.job_id if spec else None,
            "state": self.state,
            "bytes_received": self.bytes_received() if spec else 0,
            "dataset_bytes": spec.dataset_bytes if spec else None,
            "last_seq": self.log.last_seq if self.log else -1,
            "checkpoint": self._newest_checkpoint(),
        }

    def _newest_checkpoint(self) -> str | None:
        """The newest complete checkpoint as an artifact name: what a resume would start from."""
        found = newest_checkpoint(self.output_dir / "checkpoints")
        return found.relative_to(self.output_dir).as_posix() if found is not None else None

    def log_tail(self) -> str:
        """The last lines of worker.log, secrets removed: what a user needs to see why a run died."""
        try:
            with self.log_path.open("rb") as handle:
                handle.seek(max(0, handle.seek(0, os.SEEK_END) - 64 * 1024))
                text = handle.read().decode("utf-8", errors="replace")
        except OSError:
            return ""
        tail = "\n".join(text.splitlines()[-LOG_TAIL_LINES:])
        return self.redactor.text(tail[-LOG_TAIL_CHARS:])

    # ------------------------------------------------------------------ events
    def _emit(self, kind: str, /, **data: Any) -> None:
        if self.log is None:
            return
        if kind in ("artifact", "checkpoint") and isinstance(data.get("path"), str):
            data = {**data, "path": self._artifact_name(data["path"])}
        self.log.emit(kind, **self.redactor.data(data))

    def _artifact_name(self, path: str) -> str:
        """Pod paths mean nothing to the client; under output/ they become the name GET /artifacts/<name> serves."""
        try:
            return Path(path).resolve().relative_to(self.output_dir.resolve()).as_posix()
        except ValueError:
            return path

    def _set_state(self, state: str, reason: str | None = None) -> None:
        with self._lock:
            previous = self.state
            if state == previous:
                return
            data: dict[str, Any] = {"state": state, "previous": previous}
            if reason:
                data["reason"] = reason
            # The event first, then the state: events() reads the state before last_seq, so a poll that sees
            # an end state also sees this event's seq and the client reads on to it. The other order let a
            # poll land between the two, report "cancelled" with the old last_seq, and the client stop one
            # event short (the fault matrix's sigterm row once counted "1 event lost").
            self._emit("status", **data)
            self.state = state

    def _require_spec(self) -> JobSpec:
        if self.spec is None:
            raise WorkerError(409, "no job declared yet; PUT /job first")
        return self.spec

    def close(self) -> None:
        if self.log is not None:
            self.log.close()


class WorkerHooks:
    """EngineHooks for the pod: events to the job's log, Stop from the cancel flag, phases as status events."""

    def __init__(self, host: JobHost, pusher: HubCheckpointPusher | None = None) -> None:
        self.host = host
        self.pusher = pusher  # a HubCheckpointPusher when checkpoints also go to the Hub

    def emit(self, kind: str, /, **data: Any) -> None:
        if kind in ("artifact", "checkpoint") and isinstance(data.get("path"), str):
            self.host.hashes.hash_later(Path(data["path"]))  # hashed while the client is still told about it
        self.host._emit(kind, **data)
        if kind == "checkpoint" and self.pusher is not None and isinstance(data.get("path"), str):
            self.pusher.offer(Path(data["path"]), int(data.get("step") or 0))

    def should_stop(self) -> bool:
        return self.host.cancel_event.is_set()

    def enter(self, state: str) -> None:
        self.host._set_state(state)


def _phase_secret_names(config: dict[str, Any]) -> frozenset[str]:
    """The secrets the declared job's model phases name (required or optional); none when the config does not load."""
    from unsloth_nb.config import TrainConfig
    from unsloth_nb.errors import UnslothNbError
    from unsloth_nb.phases.runner import phases_for, secrets_of

    try:
        parsed = TrainConfig.from_dict(config)
    except UnslothNbError:
        return frozenset()  # start() refuses the config itself, with its own message
    required, optional = secrets_of(parsed, phases_for(parsed, runs_on="model"))
    return frozenset(required) | frozenset(optional)


def _event_dict(event: Event) -> dict[str, Any]:
    return {"job_id": event.job_id, "seq": event.seq, "time": event.time, "kind": event.kind, "data": event.data}


def _write_json_atomic(path: Path, value: dict[str, Any]) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(value), encoding="utf-8")
    os.replace(temporary, path)
