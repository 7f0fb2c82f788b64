"""The RunPod backend: one job on rented pods, from GPU choice to confirmed termination.

The job's states, as the controller and every view see them::

    provisioning -> starting -> uploading -> starting -> training -> saving
                 -> downloading -> terminating -> succeeded | failed | cancelled

The pod's worker keeps its own event log; this backend long-polls it with a cursor
and re-emits each event into the job's log, so the chart, the CLI printer and the
job folder work exactly as for a local job. Remote ``status`` events become job
state changes rather than copies; ``artifact``/``checkpoint`` paths are rewritten to
where the files land here. Every remote event received is also appended, as it
came, to ``pods/<pod_id>.events.jsonl`` in the job folder: the cursor a reattaching
process continues from, and the record that shows nothing was lost on the way.

Losing a pod is survivable when a checkpoint exists. Without a network volume, each
checkpoint the pod saves (``train.save_steps``) is copied here as it appears; when
the pod disappears (eviction, a host failure) or its worker dies, the job continues
from the newest checkpoint, on the same pod when its worker came back, else on a new
pod that gets the dataset and the checkpoint (``runpod.resume_on_loss``). When the job
has a Hub repo (``hub.repo_id``, ``hub.push_checkpoints``), the pod also pushes each
checkpoint to the private ``<repo_id>-checkpoints`` repo, and a new pod downloads the
newest from there when it is at least as new as the local copy (no upload from here).
With a network volume the checkpoints stay on the volume and the new pod finds them there.
Steps trained again after a resume are not charted twice.

A process that reattaches to a job whose owner died (``Job.load`` after a kernel
restart) reads the pod from ``pod.json`` and the worker's token from the pod's own
environment, as RunPod lists it to the account's key: the per-job token is never
written to disk here.

Every path out of :meth:`RunPodBackend.run` goes through one ``finally`` that
terminates every pod this job rented and waits until RunPod no longer lists it:
success, failure, Stop, Ctrl-C, a kernel shutdown (the controller's exit hook
stops live jobs) and the client-side limits (``runpod.max_runtime`` and
``runpod.max_cost_usd``, which stop training, keep what was saved and end the pod).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import hashlib
import json
import logging
import secrets
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from unsloth_nb.backends.base import BackendResult, JobContext
from unsloth_nb.backends.runpod.bootstrap import START_COMMAND, boot_env
from unsloth_nb.backends.runpod.checkpoints import CheckpointKeeper
from unsloth_nb.backends.runpod.client import Pod, PodSpec, RunPodApiError, RunPodClient
from unsloth_nb.backends.runpod.pods import (
    WORKER_PORT,
    Offer,
    PodLostError,
    RentedPod,
    check_alive,
    find_reusable_pod,
    live_offers,
    pod_name,
    provision,
    proxy_url,
)
from unsloth_nb.backends.runpod.worker_client import WorkerClient, WorkerRefusedError, WorkerUnreachableError
from unsloth_nb.checkpoints import checkpoint_step, newest_checkpoint
from unsloth_nb.credentials import get_secret, has_secret, redact
from unsloth_nb.errors import BackendError, JobCancelledError
from unsloth_nb.gpu_catalog import GPU_CATALOG, GpuOption
from unsloth_nb.planner import lost_pod_policy
from unsloth_nb.runtime import run_in_thread
from unsloth_nb.worker.job import CRASH_LOG_MARKER
from unsloth_nb.worker.protocol import pack_dataset
from unsloth_nb.worker.settings import DIR_ENV, PORT_ENV, TOKEN_ENV

log = logging.getLogger(__name__)

#: Remote job states the engine reports that are also job states here.
_MIRRORED_STATES = frozenset({"starting", "training", "saving"})
_REMOTE_END_STATES = frozenset({"succeeded", "failed", "cancelled"})
#: Remote event kinds copied into the job's log as they are.
_COPIED_KINDS = frozenset({"metrics", "progress", "log", "checkpoint", "artifact", "error", "summary"})
#: Log sources that are this side's own words rather than the pod's.
_CLIENT_SOURCES = frozenset({"runpod", "planner", "controller"})
#: How many times one job continues from a checkpoint after losing its pod or its worker.
MAX_RESUMES = 3
#: Where the worker keeps its files on a network volume: one folder per job, so jobs never meet.
VOLUME_WORK_DIR = "/workspace/unsloth-nb/{job_id}"
#: Job-folder files that let a reattaching process send the same dataset to a new pod.
SENT_DATASET = "dataset_sent.json"  # sha256, bytes and rows of the packed dataset the first pod got
INPUTS_FILE = "inputs.json"  # the folder relative dataset paths were read from (written by the controller)


@dataclass
class Timing:
    """How often things happen; the defaults suit a real pod, tests shorten some."""

    poll_seconds: float = 2.0  # longest wait of one event poll, so Stop and the limits are seen quickly
    health_every: float = 2.0  # readiness polling
    cost_every: float = 15.0  # seconds between cost events
    save_grace: float = 600.0  # how long a stopped job may take to save before we take what is there
    terminate_timeout: float = 180.0  # how long RunPod may take to stop listing a terminated pod
    unreachable_limit: float = 600.0  # how long a running pod's worker may stay silent before the job fails
    reconnect_seconds: float = 5.0  # a dropped event poll is retried this long before RunPod is asked about the pod


class WorkerCrashedError(BackendError):
    """The worker process died mid-run and the job cannot continue; ``log_tail`` is its last log lines."""

    def __init__(self, message: str, log_tail: str | None = None) -> None:
        super().__init__(message)
        self.log_tail = log_tail


class RunPodBackend:
    """``Backend`` for ``placement: runpod``; the controller calls :meth:`run` (or :meth:`reattach`)."""

    name = "runpod"

    def __init__(self, client: RunPodClient | None = None, timing: Timing | None = None) -> None:
        self.client = client
        self.timing = timing or Timing()

    async def run(self, ctx: JobContext) -> BackendResult:
        if ctx.stop_requested:
            raise JobCancelledError("stopped before a pod was rented")
        return await self._drive(ctx, PodJob.run)

    async def reattach(self, ctx: JobContext) -> BackendResult:
        """Take over a job whose process died: reconnect to its pod and finish it as ``run`` would."""
        return await self._drive(ctx, PodJob.reattach)

    async def _drive(self, ctx: JobContext, body: Callable[[PodJob], BackendResult]) -> BackendResult:
        session = PodJob(ctx, self.client or RunPodClient(), self.timing)
        future = run_in_thread(body, session, name=f"unsloth-nb-runpod-{ctx.job_id}", context=ctx.context)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            # The loop is going away: stop the job, and still wait until the pod is confirmed gone.
            ctx.stop_event.set()
            with contextlib.suppress(BaseException):
                await future
            raise


class PodJob:
    """The blocking body of one RunPod job (runs in its own thread)."""

    def __init__(self, ctx: JobContext, client: RunPodClient, timing: Timing) -> None:
        self.ctx = ctx
        self.client = client
        self.timing = timing
        self.config = ctx.config
        self.token = secrets.token_urlsafe(32)
        self.rented: list[RentedPod] = []
        self.gone: dict[str, float] = {}  # pod id -> monotonic time its termination was confirmed
        self.pod: RentedPod | None = None
        self.worker: WorkerClient | None = None
        self.stop_reason: str | None = None
        self._next_cost = 0.0
        self._last_step = 0
        self._last_loss: float | None = None
        self._total_steps: int | None = None
        self._remote_reason: str | None = None
        self._remote_error: str | None = None
        self._crash_tail: str | None = None  # the dead worker's last log lines, as its successor reported them
        self._crash_when: str | None = None
        self._cursor = -1  # the last remote seq copied from the current pod's worker
        self._charted: dict[str, int] = {}  # series -> highest step copied: steps trained again are not charted twice
        self._dedupe_next = False
        self._copied_last: dict[str, dict[str, Any]] = {}  # kind -> the last pod event of that kind in the log
        self._remote_checkpoint: str | None = None  # newest checkpoint the pod reported, as an artifact name
        self._hub_checkpoint: str | None = None  # newest checkpoint the pod pushed to the Hub (checkpoint-N)
        self._resumes = 0
        self._mirror: IO[str] | None = None
        self._mirror_pod: str | None = None
        self._terminating = threading.Lock()
        self._abort = threading.Event()  # set by end_now: the pods are being terminated from outside
        self.keeper: CheckpointKeeper | None = None
        if not self.config.runpod.volume_id:
            self.keeper = CheckpointKeeper(ctx.output_dir / "checkpoints", self._say)

    # ------------------------------------------------------------------ the whole run
    def run(self) -> BackendResult:
        def body() -> BackendResult:
            self.ctx.set_state("provisioning")
            self._say_what_a_lost_pod_means()
            self._rent()
            self.ctx.set_state("uploading")
            self._send_job()
            return self._collect(self._follow())

        return self._guarded(body)

    def reattach(self) -> BackendResult:
        return self._guarded(lambda: self._collect(self._follow(self._adopt)))

    def _guarded(self, body: Callable[[], BackendResult]) -> BackendResult:
        failure: BaseException | None = None
        with _live_lock:
            _live.add(self)
        try:
            return body()
        except BaseException as exc:
            failure = exc
            if isinstance(exc, JobCancelledError) or (self._abort.is_set() and isinstance(exc, Exception)):
                # Stopped (or the pods were ended under us by end_now): say why, not what broke after.
                raise JobCancelledError(self.stop_reason or str(exc)) from None
            raise
        finally:
            try:
                self._tear_down(failure)
            finally:
                with _live_lock:
                    _live.discard(self)

    def _follow(self, first: Callable[[], None] | None = None) -> str:
        """Stream until the remote job ends, moving to a new pod from a checkpoint when one is lost.

        A pod lost while its replacement is being set up is handled the same way, up to
        MAX_RESUMES times in all; when the job cannot continue, the error says why.
        """
        step = first
        while True:
            try:
                if step is not None:
                    step()
                    step = None
                return self._stream()
            except PodLostError as exc:
                step = functools.partial(self._move_to_new_pod, exc)

    def _say_what_a_lost_pod_means(self) -> None:
        policy, is_warning = lost_pod_policy(self.config)
        self._say(policy, level="warning" if is_warning else "info")

    # ------------------------------------------------------------------ renting
    def _rent(self) -> None:
        runpod = self.config.runpod
        if self.ctx.plan is None:
            raise BackendError("this process did not plan the job, so it cannot rent a pod for it; start the job again")
        offers = live_offers(self.client, self.ctx.plan.gpu_candidates, runpod.cloud_type, runpod.allow_community)
        self._say("GPUs to try: " + "; ".join(o.describe() for o in offers[:6]) + (" ..." if len(offers) > 6 else ""))
        reused = self._reuse(offers)
        if reused is not None:
            self.pod = reused
            return
        spec = PodSpec(
            name=pod_name(self.ctx.job_id),
            image=runpod.image,
            gpu_type_id="",
            container_disk_gb=runpod.container_disk_gb,
            ports=f"{WORKER_PORT}/http",
            env=self._pod_env(),
            docker_args=START_COMMAND,
            network_volume_id=runpod.volume_id,
        )
        self.pod = provision(
            self.client,
            spec,
            offers,
            is_ready=self._ready,
            on_created=self._created,
            on_abandoned=self._abandoned,
            should_stop=self._should_stop,
            ready_timeout=runpod.ready_timeout,
            poll=self.timing.health_every,
            say=self._say,
        )
        self._say(f"worker ready on pod {self.pod.id} ({self.pod.offer.gpu.display_name})")

    def _pod_env(self) -> dict[str, str]:
        env = {TOKEN_ENV: self.token, PORT_ENV: str(WORKER_PORT), **boot_env()}
        if self.config.runpod.volume_id:
            env[DIR_ENV] = VOLUME_WORK_DIR.format(job_id=self.ctx.job_id)
        # HF_TOKEN goes along when the adapter is pushed, and when set at all: gated base models need it to download.
        if self.config.hub.repo_id:
            env["HF_TOKEN"] = get_secret("HF_TOKEN", f"to push to {self.config.hub.repo_id}")
        elif has_secret("HF_TOKEN"):
            env["HF_TOKEN"] = get_secret("HF_TOKEN", "to download the base model")
        return env

    def _reuse(self, offers: list[Offer]) -> RentedPod | None:
        if self.config.runpod.volume_id:
            return None  # the volume is mounted at creation; an idle pod has none or another one

        def health(pod: Any, token: str) -> dict[str, object] | None:
            probe = WorkerClient(proxy_url(pod.id), token, unreachable_after=5.0)
            try:
                return probe.health(timeout=5.0)
            finally:
                probe.close()

        try:
            found = find_reusable_pod(self.client, offers, health)
        except RunPodApiError as exc:
            log.info("could not look for an idle pod to reuse: %s", exc)
            return None
        if found is None:
            return None
        pod, offer, token = found
        self.token = token
        rented = RentedPod(pod, offer, pod.cost_per_hr or offer.usd_per_hour or 0.0, time.time(), time.monotonic(), reused=True)
        self._created(rented)
        self._say(f"reusing idle pod {pod.id} ({pod.name}) instead of renting another GPU")
        return rented

    def _created(self, rented: RentedPod) -> None:
        """Record the pod before anything else can fail, so cleanup and reattach can find it."""
        self.rented.append(rented)
        self.pod = rented
        record = self.ctx.record
        record.pod_id = rented.id
        record.gpu = rented.offer.gpu.display_name
        self.ctx.folder.save_record(record)
        self._write_pod_json(rented)
        self.ctx.set_state("starting")
        self._cost(force=True)

    def _abandoned(self, rented: RentedPod, why: str) -> None:
        self.gone[rented.id] = time.monotonic()
        self._write_pod_json(rented, terminated=True, note=why)
        self.ctx.set_state("provisioning")

    def _write_pod_json(self, rented: RentedPod, *, terminated: bool = False, note: str | None = None) -> None:
        data: dict[str, Any] = {
            "pod_id": rented.id,
            "name": rented.pod.name,
            "gpu_type_id": rented.offer.gpu.gpu_type_id,
            "gpu": rented.offer.gpu.display_name,
            "cloud_type": rented.offer.cloud_type,
            "usd_per_hour": rented.usd_per_hour,
            "image": self.config.runpod.image,
            "created": rented.created_at,
            "reused": rented.reused,
            "worker_url": rented.url,
            "terminated": time.time() if terminated or rented.id in self.gone else None,
            # Earlier pods of this job (lost, or not ready in time): what they cost counts against max_cost_usd.
            "previous": [
                {"pod_id": r.id, "usd_per_hour": r.usd_per_hour, "created": r.created_at, "seconds": round(self._billed(r), 3)}
                for r in self.rented
                if r.id != rented.id
            ],
        }
        if note:
            data["note"] = note
        self.ctx.folder.write_json("pod.json", data)

    def _ready(self, rented: RentedPod) -> bool:
        self._cost()
        probe = self._worker_for(rented)
        return probe.health(timeout=10.0) is not None

    def _worker_for(self, rented: RentedPod) -> WorkerClient:
        if self.worker is None or self.worker.base_url != rented.url.rstrip("/"):
            if self.worker is not None:
                self.worker.close()
            self.worker = WorkerClient(rented.url, self.token, abort=self._abort)
        return self.worker

    # ------------------------------------------------------------------ taking over a job (reattach)
    def _adopt(self) -> None:
        """Find this job's pod and its worker again, for a process that did not start the job."""
        ctx = self.ctx
        try:
            record: dict[str, Any] = ctx.folder.read_json("pod.json")
        except (OSError, ValueError):
            record = {}
        for earlier in record.get("previous") or []:
            ghost = self._rented_from(str(earlier["pod_id"]), earlier, None)
            self.rented.append(ghost)
            self.gone[ghost.id] = ghost.created_monotonic + float(earlier.get("seconds") or 0.0)
        pod_id = str(record.get("pod_id") or ctx.record.pod_id or "")
        if not pod_id:
            # The create may have been in flight when the owner died: its name finds it.
            named = self.client.pods_named(pod_name(ctx.job_id))
            if not named:
                raise BackendError(
                    "the process that ran this job ended before it rented a pod; nothing is running: start the job again"
                )
            pod_id = named[0].id
        pod = self.client.get_pod(pod_id)
        rented = self._rented_from(pod_id, record, pod)
        self.rented.append(rented)
        self.pod = rented
        self._cursor = self._mirrored_cursor(pod_id)
        self._dedupe_next = True  # the owner may have died between copying an event and noting it
        self._copied_last = {
            e.kind: e.data for e in ctx.log.read() if not (e.kind == "log" and e.data.get("source") in _CLIENT_SOURCES)
        }
        for event in ctx.log.read(kinds={"metrics", "progress"}):
            self._chart(event.kind, event.data)
        if record.get("terminated"):
            self.gone[rented.id] = time.monotonic()
            kept = newest_checkpoint(ctx.output_dir / "checkpoints")
            where = f"; the newest checkpoint copied here is {kept}" if kept else ""
            raise BackendError(f"pod {pod_id} was terminated while no process watched this job{where}")
        if pod is None:  # evicted or failed while nobody watched: a lost pod like any other
            self.gone[rented.id] = time.monotonic()
            raise PodLostError(f"pod {pod_id} is gone: it vanished while no process watched this job")
        if not pod.running:
            raise PodLostError(f"pod {pod_id} is {pod.desired_status}: {pod.last_status_change or 'stopped'}")
        self.token = pod.env.get(TOKEN_ENV, "")
        if not self.token:
            raise BackendError(f"pod {pod_id} does not show its worker's token, so its job cannot be followed")
        worker = self._worker_for(rented)
        state = worker.job()
        if state.get("job_id") not in (None, ctx.job_id):
            raise BackendError(f"pod {pod_id} runs job {state.get('job_id')}, not {ctx.job_id}")
        if state.get("state") in (None, "idle", "receiving"):
            raise BackendError(
                "the process that ran this job ended before the dataset reached the pod; "
                f"pod {pod_id} is terminated: start the job again"
            )
        self._say(
            f"reattached to pod {pod_id}: its worker is {state.get('state')}; continuing after event {self._cursor} "
            f"of {state.get('last_seq')}"
        )

    def _rented_from(self, pod_id: str, record: dict[str, Any], pod: Pod | None) -> RentedPod:
        """A RentedPod for a pod this process did not create, from what pod.json kept."""
        gpu_id = str(record.get("gpu_type_id") or "")
        option = next((g for g in GPU_CATALOG if g.gpu_type_id == gpu_id), None)
        if option is None:
            option = GpuOption(gpu_id, str(record.get("gpu") or gpu_id or "GPU"), 0, None, None)
        usd = float(record.get("usd_per_hour") or (pod.cost_per_hr if pod is not None else 0.0) or 0.0)
        offer = Offer(option, str(record.get("cloud_type") or "SECURE"), usd, None)
        created = float(record.get("created") or time.time())
        if pod is None:
            pod = Pod(pod_id, pod_name(self.ctx.job_id), "TERMINATED", usd, option.display_name, 1, "", False, None, ())
        # Runtime and cost count from the pod's creation, also across a reattach.
        monotonic = time.monotonic() - max(0.0, time.time() - created)
        return RentedPod(pod, offer, usd, created, monotonic, reused=bool(record.get("reused")))

    def _mirrored_cursor(self, pod_id: str) -> int:
        path = self.ctx.folder.path / "pods" / f"{pod_id}.events.jsonl"
        cursor = -1
        if path.exists():
            with path.open(encoding="utf-8") as handle:
                for line in handle:
                    try:
                        cursor = max(cursor, int(json.loads(line)["seq"]))
                    except (ValueError, KeyError, TypeError):
                        break  # a torn last line: that event is fetched again
        return cursor

    # ------------------------------------------------------------------ job and events
    def _send_job(self, resume_from: Path | None = None, hub_checkpoint: str | None = None) -> None:
        assert self.pod is not None
        worker = self._worker_for(self.pod)
        held = worker.job()
        if held.get("job_id") == self.ctx.job_id and held.get("state") == "interrupted":
            # A network volume brought the job (and its checkpoints and event log) to this pod.
            self._say(f"pod {self.pod.id} found this job on the network volume; resuming from {held.get('checkpoint')}")
            self._start(worker)
            return
        if self.ctx.dataset is None:
            raise BackendError("this process does not hold the job's dataset, so it cannot send it to a new pod")
        self._cursor = -1
        dataset = pack_dataset(self.ctx.dataset)
        sent = {"sha256": hashlib.sha256(dataset).hexdigest(), "bytes": len(dataset), "rows": len(self.ctx.dataset.train)}
        self.ctx.folder.write_json(SENT_DATASET, sent)  # a reattaching process checks the file it re-reads against it
        worker.declare(self.ctx.job_id, self.config.to_dict(), dataset)
        worker.upload(dataset)
        self._say(f"dataset sent ({len(dataset) / 1e6:.1f} MB, {len(self.ctx.dataset.train)} rows)")
        if resume_from is not None:
            self._send_checkpoint(worker, resume_from)
        if self._should_stop():
            raise JobCancelledError("stopped before training started")
        self._start(worker, hub_checkpoint)

    def _send_checkpoint(self, worker: WorkerClient, folder: Path) -> None:
        """Seed the new pod's output with a checkpoint, checked file by file against its sha256."""
        files = sorted((p for p in folder.rglob("*") if p.is_file()), key=lambda p: (p.name == "trainer_state.json", str(p)))
        prefix = f"checkpoints/{folder.name}"
        for path in files:
            worker.upload_file(f"{prefix}/{path.relative_to(folder).as_posix()}", path)
        listed = {a.name: a.sha256 for a in worker.artifacts(prefix)}
        for path in files:
            name = f"{prefix}/{path.relative_to(folder).as_posix()}"
            if listed.get(name) != _sha256(path):
                raise BackendError(f"{name} did not reach the new pod intact")
        size = sum(p.stat().st_size for p in files)
        self._say(f"{folder.name} sent to pod {self.pod.id if self.pod else '?'} ({size / 1e6:.1f} MB)")

    def _start(self, worker: WorkerClient, hub_checkpoint: str | None = None) -> None:
        """Start (or resume) training; a start whose answer was lost and that is retried finds it running."""
        try:
            worker.start(hub_checkpoint)
        except WorkerRefusedError as exc:
            if exc.status != 409 or worker.job().get("state") not in ("starting", "training", "saving", *_REMOTE_END_STATES):
                raise

    def _stream(self) -> str:
        """Copy the worker's events into the job's log until its job ends; returns the remote end state."""
        assert self.pod is not None and self.worker is not None
        worker, pod = self.worker, self.pod
        cancelled_at: float | None = None
        silent_since: float | None = None
        while True:
            self._cost()
            if cancelled_at is None and self._should_stop():
                self._say(f"stopping: {self.stop_reason}; the pod saves a checkpoint and the adapter first")
                with contextlib.suppress(BackendError):
                    worker.cancel()
                cancelled_at = time.monotonic()
            if cancelled_at is not None and time.monotonic() - cancelled_at > self.timing.save_grace:
                self._say(f"the pod did not finish saving within {self.timing.save_grace:.0f} s; taking what is there")
                return "cancelled"
            try:
                answer = worker.events(self._cursor, timeout=self.timing.poll_seconds, retry_for=self.timing.reconnect_seconds)
            except (WorkerUnreachableError, WorkerRefusedError) as exc:
                if isinstance(exc, WorkerRefusedError) and exc.status not in (404, 410):
                    raise
                check_alive(self.client, pod.id)  # a pod that is gone says so at once
                silent_since = silent_since or time.monotonic()
                if time.monotonic() - silent_since > self.timing.unreachable_limit:
                    raise WorkerUnreachableError(
                        f"pod {pod.id} is running but its worker has not answered for "
                        f"{self.timing.unreachable_limit:.0f} s ({exc})"
                    ) from None
                self._abort.wait(self.timing.health_every)  # the pod is there: give its worker (or the proxy) a moment
                continue
            silent_since = None
            for event in answer.get("events") or []:
                seq = int(event["seq"])
                if seq <= self._cursor:
                    continue  # already copied (a replayed answer)
                if seq != self._cursor + 1:
                    self._say(f"events {self._cursor + 1}-{seq - 1} from the pod are missing", level="warning")
                self._copy(event)
                self._note(pod.id, event)
                self._cursor = seq
            state = str(answer.get("state") or "")
            if state in _REMOTE_END_STATES and not answer.get("more") and self._cursor >= int(answer.get("last_seq", -1)):
                return state
            if state == "interrupted" and not answer.get("more"):
                if cancelled_at is not None:
                    with contextlib.suppress(BackendError):
                        worker.cancel()  # nothing runs: the job ends at once
                else:
                    self._worker_came_back(worker)

    def _worker_came_back(self, worker: WorkerClient) -> None:
        """The worker died and its pod started it again: resume from its newest checkpoint, or fail with its log."""
        assert self.pod is not None
        held = worker.job()
        checkpoint = held.get("checkpoint")
        why_not = self._why_no_resume(checkpoint is not None, same_pod=True)
        tail, when = self._crash_tail, self._crash_when or "while the job was running"
        self._crash_tail = self._crash_when = None
        if why_not:
            message = f"the worker on pod {self.pod.id} died {when} and {why_not}"
            raise WorkerCrashedError(message + (f"; its last log lines:\n{tail}" if tail else ""), log_tail=tail)
        self._resumes += 1
        self._say(f"the worker on pod {self.pod.id} died and came back; resuming from {checkpoint}", level="warning")
        self._start(worker)

    def _why_no_resume(self, have_checkpoint: bool, same_pod: bool) -> str | None:
        if not self.config.runpod.resume_on_loss:
            return "runpod.resume_on_loss is off"
        if not have_checkpoint:
            return "no checkpoint was saved to resume from (train.save_steps keeps one every N steps)"
        if self._resumes >= MAX_RESUMES:
            return f"it already resumed {self._resumes} times"
        if not same_pod and (self.ctx.dataset is None or self.ctx.plan is None):
            return self._reload_inputs()
        return None

    def _reload_inputs(self) -> str | None:
        """For a process that reattached: read the dataset and plan the GPUs again, as the owner did.

        Returns why not when that is impossible: the dataset file is gone or changed
        since it was sent (a new pod must train on the same rows).
        """
        from unsloth_nb.data import prepare_dataset
        from unsloth_nb.errors import UnslothNbError
        from unsloth_nb.planner import plan

        folder = self.ctx.folder
        try:
            sent = folder.read_json(SENT_DATASET)
            base_dir = str(folder.read_json(INPUTS_FILE).get("base_dir") or "") or None
        except (OSError, ValueError):
            return "this process reattached to the job and the job folder does not say which dataset was sent"
        try:
            dataset = prepare_dataset(self.config.dataset, self.config.train.max_seq_length, base_dir=base_dir)
        except UnslothNbError as exc:
            return f"this process reattached to the job and cannot read its dataset again ({exc})"
        if hashlib.sha256(pack_dataset(dataset)).hexdigest() != sent.get("sha256"):
            return f"the dataset {self.config.dataset.path} changed since the job started, so a new pod cannot continue it"
        self.ctx.dataset = dataset
        if self.ctx.plan is None:
            self.ctx.plan = plan(self.config, dataset.summary)
        self._say(f"read the dataset again ({len(dataset.train)} rows, as sent) to continue on a new pod")
        return None

    def _move_to_new_pod(self, lost: PodLostError) -> None:
        """Continue a job whose pod vanished on a new pod, from the newest checkpoint kept."""
        if self._should_stop():
            raise JobCancelledError(f"{self.stop_reason}; {lost}") from None
        hub = self._newest_on_hub()
        if self.keeper is not None:
            self.keeper.wait_idle(timeout=30.0)  # a copy that was nearly done is worth waiting for
            local = self.keeper.newest()
            if hub is not None and (local is None or checkpoint_step(hub) >= checkpoint_step(local)):
                local = None  # the Hub copy is as new: the new pod downloads it, nothing is uploaded from here
            else:
                hub = None
            resume_from, have = local, local is not None or hub is not None
        else:  # the network volume holds the checkpoints
            resume_from, hub, have = None, None, self._remote_checkpoint is not None
        why_not = self._why_no_resume(have, same_pod=False)
        if why_not:
            raise BackendError(f"{lost}; the job cannot continue on a new pod: {why_not}") from None
        self._resumes += 1
        if resume_from is not None:
            where = resume_from.name
        elif hub is not None:
            where = f"{hub} on the Hub ({self.config.hub.checkpoint_repo_id})"
        else:
            where = str(self._remote_checkpoint)
        self._say(f"{lost}; continuing on a new pod from {where}", level="warning")
        lost_pod = self.pod
        self._close_mirror()
        if self.worker is not None:
            self.worker.close()
            self.worker = None
        if lost_pod is not None and lost_pod.id not in self.gone:
            self.ctx.set_state("terminating")
            problem = self._end_pod(lost_pod)
            if problem:
                self._say(problem, level="error")
        self.ctx.set_state("provisioning")
        self._rent()
        self.ctx.set_state("uploading")
        self._send_job(resume_from, hub)

    def _newest_on_hub(self) -> str | None:
        """The checkpoint the Hub repo holds: asked, because pushes a dead client never heard of count too."""
        repo = self.config.hub.checkpoint_repo_id
        if not repo or self.config.runpod.volume_id or not has_secret("HF_TOKEN"):
            return None
        from unsloth_nb.hub import newest_checkpoint_on_hub

        try:
            return newest_checkpoint_on_hub(repo)
        except BackendError as exc:
            self._say(f"could not ask {repo} for its newest checkpoint ({exc}); using what this process knows")
            return self._hub_checkpoint

    def _copy(self, event: dict[str, Any]) -> None:
        kind, data = str(event.get("kind")), dict(event.get("data") or {})
        dedupe, self._dedupe_next = self._dedupe_next, False
        if kind == "status":
            state = str(data.get("state") or "")
            if state in _MIRRORED_STATES:
                self.ctx.set_state(state)
            elif state in _REMOTE_END_STATES:
                self._remote_reason = data.get("reason")
            return
        if kind not in _COPIED_KINDS:
            return
        if kind in ("metrics", "progress") and not self._chart(kind, data):
            return  # trained again after a resume: the chart has this step already
        on_hub = kind == "checkpoint" and bool(data.get("url"))
        if on_hub:
            self._hub_checkpoint = Path(str(data.get("path") or "")).name or self._hub_checkpoint
        elif kind == "checkpoint" and isinstance(data.get("path"), str):
            self._checkpoint_saved(data["path"], data.get("step"))
        # Pod paths become where the files land here; a Hub checkpoint keeps the pod's name (it is no file here).
        local_path = kind in ("artifact", "checkpoint") and isinstance(data.get("path"), str) and not on_hub
        if local_path and not Path(data["path"]).is_absolute():
            data["path"] = str(self.ctx.output_dir / data["path"])
        if kind == "metrics":
            self._last_step = int(data.get("step") or self._last_step)
            if data.get("loss") is not None:
                self._last_loss = float(data["loss"])
        if kind == "progress" and data.get("total_steps"):
            self._total_steps = int(data["total_steps"])
        if kind == "error":
            self._remote_error = str(data.get("message") or "")
        if kind == "log" and data.get("source") == "worker" and CRASH_LOG_MARKER in str(data.get("message") or ""):
            head, self._crash_tail = str(data["message"]).split(CRASH_LOG_MARKER, 1)
            self._crash_when = head.rstrip("; ").removeprefix("the worker process ended ")
        if dedupe and self._copied_last.get(kind) == data:
            return  # copied just before the previous owner died, not yet noted in the pod's record
        try:
            self.ctx.emit(kind, **data)
        except ValueError:  # a newer worker's field: keep the message, drop the shape
            self.ctx.emit("log", level="info", message=f"{kind}: {data}", source="pod")

    def _chart(self, kind: str, data: dict[str, Any]) -> bool:
        """Whether a metrics/progress event adds a step to its series (and note it when it does)."""
        step = data.get("step")
        if not isinstance(step, int):
            return True
        series = "progress" if kind == "progress" else ("eval" if "eval_loss" in data and "loss" not in data else "train")
        if step <= self._charted.get(series, -1):
            return False
        self._charted[series] = step
        return True

    def _checkpoint_saved(self, name: str, step: Any) -> None:
        self._remote_checkpoint = name
        final = isinstance(step, int) and self._total_steps is not None and step >= self._total_steps
        if self.keeper is not None and self.pod is not None and not final:  # the last one comes with the adapter
            self.keeper.offer(self.pod.url, self.token, name)

    def _note(self, pod_id: str, event: dict[str, Any]) -> None:
        """Append a received remote event, as it came, to the pod's record in the job folder."""
        if self._mirror is None or self._mirror_pod != pod_id:
            self._close_mirror()
            path = self.ctx.folder.path / "pods" / f"{pod_id}.events.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            self._mirror, self._mirror_pod = path.open("a", encoding="utf-8"), pod_id
        self._mirror.write(json.dumps(event) + "\n")
        self._mirror.flush()

    def _close_mirror(self) -> None:
        if self._mirror is not None:
            self._mirror.close()
        self._mirror, self._mirror_pod = None, None

    # ------------------------------------------------------------------ results
    def _collect(self, final: str) -> BackendResult:
        if self.keeper is not None:
            self.keeper.close()
        if final == "failed":
            raise BackendError(f"training on the pod failed: {self._remote_error or self._remote_reason or 'see the log'}")
        assert self.worker is not None
        self.ctx.set_state("downloading")
        stopped = final == "cancelled" or self.stop_reason is not None
        prefixes = ["adapter"]
        if self.config.save.merged_16bit and not stopped:
            prefixes.append("merged_16bit")
        fetched: dict[str, Path] = {}
        total = 0
        for prefix in prefixes:
            files = self.worker.artifacts(prefix)
            for artifact in files:
                self.worker.download(artifact, self.ctx.output_dir / artifact.name)
                total += artifact.bytes
            if files:
                fetched[prefix] = self.ctx.output_dir / prefix
        checkpoint = self._fetch_latest_checkpoint() if stopped else None
        self._say(f"downloaded {total / 1e6:.1f} MB to {self.ctx.output_dir}")
        if stopped and "adapter" not in fetched:
            raise JobCancelledError(self.stop_reason or "stopped before an adapter was saved")
        return BackendResult(
            adapter_dir=fetched.get("adapter"),
            merged_dir=fetched.get("merged_16bit"),
            last_checkpoint=checkpoint,
            global_step=self._last_step,
            final_loss=self._last_loss,
            stopped=stopped,
            stop_reason=f"{self.stop_reason or 'stopped'}; checkpoint and adapter saved" if stopped else None,
        )

    def _fetch_latest_checkpoint(self) -> Path | None:
        assert self.worker is not None
        files = self.worker.artifacts("checkpoints")
        steps = {a.name.split("/")[1] for a in files if a.name.count("/") >= 2}
        numbered = [s for s in steps if s.startswith("checkpoint-") and s[len("checkpoint-") :].isdigit()]
        if not numbered:
            return newest_checkpoint(self.ctx.output_dir / "checkpoints")
        latest = max(numbered, key=lambda s: int(s[len("checkpoint-") :]))
        for artifact in files:
            if artifact.name.startswith(f"checkpoints/{latest}/"):
                self.worker.download(artifact, self.ctx.output_dir / artifact.name)
        local = self.ctx.output_dir / "checkpoints" / latest
        kept = newest_checkpoint(self.ctx.output_dir / "checkpoints")
        return kept if kept is not None and checkpoint_step(kept) > checkpoint_step(local) else local

    # ------------------------------------------------------------------ limits and cost
    def _should_stop(self) -> bool:
        if self.stop_reason is not None:
            return True
        if self.ctx.stop_requested:
            self.stop_reason = self.ctx.stop_reason
        elif self._elapsed() >= self.config.runpod.max_runtime:
            self.stop_reason = f"the job reached runpod.max_runtime ({self.config.runpod.max_runtime:.0f} s)"
        elif self.config.runpod.max_cost_usd is not None and self._usd() >= self.config.runpod.max_cost_usd:
            self.stop_reason = (
                f"the job reached runpod.max_cost_usd ({_money(self.config.runpod.max_cost_usd)}; "
                f"{_money(self._usd())} spent at ${self.pod.usd_per_hour if self.pod else 0:.2f}/h)"
            )
        return self.stop_reason is not None

    def _elapsed(self) -> float:
        """Seconds since this job's first pod was rented (max_runtime bounds the pods, not the planning)."""
        return time.monotonic() - self.rented[0].created_monotonic if self.rented else 0.0

    def _billed(self, rented: RentedPod) -> float:
        return max(0.0, self.gone.get(rented.id, time.monotonic()) - rented.created_monotonic)

    def _usd(self) -> float:
        return sum(rented.usd_per_hour * self._billed(rented) / 3600.0 for rented in self.rented)

    def _cost(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.pod is None or (not force and now < self._next_cost):
            return
        self._next_cost = now + self.timing.cost_every
        self.ctx.emit(
            "cost", usd_so_far=round(self._usd(), 6), usd_per_hour=self.pod.usd_per_hour, gpu=self.pod.offer.gpu.display_name
        )

    def _say(self, message: str, level: str = "info") -> None:
        self.ctx.emit("log", level=level, message=message, source="runpod")

    # ------------------------------------------------------------------ the end of every path
    def _tear_down(self, failure: BaseException | None) -> None:
        if self.keeper is not None:
            self.keeper.close()
        if self.worker is not None:
            self.worker.close()
        self._close_mirror()
        problems = self._terminate_all()
        if problems:
            message = "; ".join(problems)
            if failure is None:
                raise BackendError(message)
            self._say(message, level="error")
            print(f"unsloth-nb: {message}", file=sys.stderr)

    def _terminate_all(self) -> list[str]:
        """Terminate every pod this job rented that is not confirmed gone; returns what went wrong."""
        with self._terminating:
            left = [r for r in self.rented if r.id not in self.gone]
            if not left:
                return []
            self.ctx.set_state("terminating")
            problems = [problem for rented in left if (problem := self._end_pod(rented))]
            self._cost(force=True)
            return problems

    def _end_pod(self, rented: RentedPod) -> str | None:
        """Terminate one pod and wait until RunPod no longer lists it; returns what went wrong, if anything."""
        try:
            self.client.terminate_pod(rented.id, timeout=self.timing.terminate_timeout)
        except RunPodApiError as exc:
            return str(exc)
        except BaseException as exc:  # MissingSecretError, a bug: still say the pod may be billing
            return f"pod {rented.id} may still be running: {redact(str(exc))}"
        self.gone[rented.id] = time.monotonic()
        self._write_pod_json(rented, terminated=True)
        self._say(f"pod {rented.id} terminated (confirmed: RunPod no longer lists it)")
        return None

    def end_now(self, reason: str) -> None:
        """Terminate the pods at once, from another thread, skipping the save and the download.

        For interpreter exit: a Jupyter kernel being shut down is killed seconds later,
        too soon for a checkpoint to be saved and fetched, and a pod must not outlive
        the process that watches it. The job's own thread then ends on its own.
        """
        self.stop_reason = self.stop_reason or reason
        self._abort.set()
        self.ctx.stop_event.set()
        self._say(f"{reason}: terminating the pod now, without saving")
        for problem in self._terminate_all():
            self._say(problem, level="error")
            print(f"unsloth-nb: {problem}", file=sys.stderr)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


_live: set[PodJob] = set()
_live_lock = threading.Lock()


def _end_pods_at_exit() -> None:
    """Registered after the controller's own exit hook, so it runs first (atexit is last-in, first-out)."""
    with _live_lock:
        jobs = list(_live)
    for job in jobs:
        job.end_now("the Python process is exiting")


atexit.register(_end_pods_at_exit)


def _money(usd: float) -> str:
    return f"${usd:.2f}" if usd >= 0.01 else f"${usd:.4f}"


__all__ = ["PodJob", "PodLostError", "RunPodBackend", "Timing", "WorkerCrashedError"]
