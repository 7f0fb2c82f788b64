"""The RunPod backend: one job on one rented pod, from GPU choice to confirmed termination.

The job's states, as the controller and every view see them::

    provisioning -> starting -> uploading -> starting -> training -> saving
                 -> downloading -> terminating -> succeeded | failed | cancelled

The pod's worker keeps its own event log; this backend long-polls it with a cursor
and re-emits each event into the job's log, so the chart, the CLI printer and the
job folder work exactly as for a local job. Remote ``status`` events become job
state changes rather than copies; ``artifact``/``checkpoint`` paths are rewritten to
where the files land here.

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
import logging
import secrets
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unsloth_nb.backends.runpod.bootstrap import START_COMMAND, boot_env
from unsloth_nb.backends.runpod.client import PodSpec, RunPodApiError, RunPodClient
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
from unsloth_nb.backends.runpod.worker_client import WorkerClient, WorkerUnreachableError
from unsloth_nb.controller import BackendResult, JobContext
from unsloth_nb.credentials import get_secret, has_secret, redact
from unsloth_nb.errors import BackendError, JobCancelledError
from unsloth_nb.runtime import run_in_thread
from unsloth_nb.worker.protocol import pack_dataset
from unsloth_nb.worker.settings import PORT_ENV, TOKEN_ENV

log = logging.getLogger(__name__)

#: Remote job states the engine reports that are also job states here.
_MIRRORED_STATES = frozenset({"starting", "training", "saving"})
_REMOTE_END_STATES = frozenset({"succeeded", "failed", "cancelled"})
#: Remote event kinds copied into the job's log as they are.
_COPIED_KINDS = frozenset({"metrics", "progress", "log", "checkpoint", "artifact", "error", "summary"})


@dataclass
class Timing:
    """How often things happen; the defaults suit a real pod, tests shorten some."""

    poll_seconds: float = 2.0  # longest wait of one event poll, so Stop and the limits are seen quickly
    health_every: float = 2.0  # readiness polling
    cost_every: float = 15.0  # seconds between cost events
    save_grace: float = 600.0  # how long a stopped job may take to save before we take what is there
    terminate_timeout: float = 180.0  # how long RunPod may take to stop listing a terminated pod
    unreachable_limit: float = 600.0  # how long a running pod's worker may stay silent before the job fails


class RunPodBackend:
    """``Backend`` for ``placement: runpod``; the controller calls :meth:`run`."""

    name = "runpod"

    def __init__(self, client: RunPodClient | None = None, timing: Timing | None = None) -> None:
        self.client = client
        self.timing = timing or Timing()

    async def run(self, ctx: JobContext) -> BackendResult:
        if ctx.stop_requested:
            raise JobCancelledError("stopped before a pod was rented")
        session = PodJob(ctx, self.client or RunPodClient(), self.timing)
        future = run_in_thread(session.run, name=f"unsloth-nb-runpod-{ctx.job_id}", context=ctx.context)
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
        self._remote_reason: str | None = None
        self._remote_error: str | None = None
        self._terminating = threading.Lock()
        self._abort = threading.Event()  # set by end_now: the pods are being terminated from outside

    # ------------------------------------------------------------------ the whole run
    def run(self) -> BackendResult:
        ctx = self.ctx
        failure: BaseException | None = None
        with _live_lock:
            _live.add(self)
        try:
            ctx.set_state("provisioning")
            self._rent()
            ctx.set_state("uploading")
            self._send_job()
            final = self._stream()
            return self._collect(final)
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

    # ------------------------------------------------------------------ renting
    def _rent(self) -> None:
        runpod = self.config.runpod
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
        # HF_TOKEN goes along when the adapter is pushed, and when set at all: gated base models need it to download.
        if self.config.hub.repo_id:
            env["HF_TOKEN"] = get_secret("HF_TOKEN", f"to push to {self.config.hub.repo_id}")
        elif has_secret("HF_TOKEN"):
            env["HF_TOKEN"] = get_secret("HF_TOKEN", "to download the base model")
        return env

    def _reuse(self, offers: list[Offer]) -> RentedPod | None:
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
            "terminated": time.time() if terminated else None,
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

    # ------------------------------------------------------------------ job and events
    def _send_job(self) -> None:
        assert self.pod is not None
        worker = self._worker_for(self.pod)
        dataset = pack_dataset(self.ctx.dataset)
        worker.declare(self.ctx.job_id, self.config.to_dict(), dataset)
        worker.upload(dataset)
        self._say(f"dataset sent ({len(dataset) / 1e6:.1f} MB, {len(self.ctx.dataset.train)} rows)")
        if self._should_stop():
            raise JobCancelledError("stopped before training started")
        worker.start()

    def _stream(self) -> str:
        """Copy the worker's events into the job's log until its job ends; returns the remote end state."""
        assert self.pod is not None and self.worker is not None
        worker, cursor = self.worker, -1
        cancelled_at: float | None = None
        silent_since: float | None = None
        resumed = False
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
                answer = worker.events(cursor, timeout=self.timing.poll_seconds)
            except WorkerUnreachableError as exc:
                check_alive(self.client, self.pod.id)  # a pod that is gone says so at once
                silent_since = silent_since or time.monotonic()
                if time.monotonic() - silent_since > self.timing.unreachable_limit:
                    raise WorkerUnreachableError(
                        f"pod {self.pod.id} is running but its worker has not answered for "
                        f"{self.timing.unreachable_limit:.0f} s ({exc})"
                    ) from None
                continue
            silent_since = None
            for event in answer.get("events") or []:
                seq = int(event["seq"])
                if seq <= cursor:
                    continue  # already copied (a replayed answer)
                if seq != cursor + 1:
                    self._say(f"events {cursor + 1}-{seq - 1} from the pod are missing", level="warning")
                self._copy(event)
                cursor = seq
            state = str(answer.get("state") or "")
            if state in _REMOTE_END_STATES and not answer.get("more") and cursor >= int(answer.get("last_seq", cursor)):
                return state
            if state == "interrupted" and not resumed and cancelled_at is None:
                resumed = True
                self._say("the worker restarted; resuming from its newest checkpoint", level="warning")
                worker.start()

    def _copy(self, event: dict[str, Any]) -> None:
        kind, data = str(event.get("kind")), dict(event.get("data") or {})
        if kind == "status":
            state = str(data.get("state") or "")
            if state in _MIRRORED_STATES:
                self.ctx.set_state(state)
            elif state in _REMOTE_END_STATES:
                self._remote_reason = data.get("reason")
            return
        if kind not in _COPIED_KINDS:
            return
        if kind in ("artifact", "checkpoint") and isinstance(data.get("path"), str) and not Path(data["path"]).is_absolute():
            data["path"] = str(self.ctx.output_dir / data["path"])
        if kind == "metrics":
            self._last_step = int(data.get("step") or self._last_step)
            if data.get("loss") is not None:
                self._last_loss = float(data["loss"])
        if kind == "error":
            self._remote_error = str(data.get("message") or "")
        try:
            self.ctx.emit(kind, **data)
        except ValueError:  # a newer worker's field: keep the message, drop the shape
            self.ctx.emit("log", level="info", message=f"{kind}: {data}", source="pod")

    # ------------------------------------------------------------------ results
    def _collect(self, final: str) -> BackendResult:
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
            return None
        latest = max(numbered, key=lambda s: int(s[len("checkpoint-") :]))
        for artifact in files:
            if artifact.name.startswith(f"checkpoints/{latest}/"):
                self.worker.download(artifact, self.ctx.output_dir / artifact.name)
        return self.ctx.output_dir / "checkpoints" / latest

    # ------------------------------------------------------------------ limits and cost
    def _should_stop(self) -> bool:
        if self.stop_reason is not None:
            return True
        if self.ctx.stop_requested:
            self.stop_reason = "stopped by the user"
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

    def _usd(self) -> float:
        total = 0.0
        now = time.monotonic()
        for rented in self.rented:
            end = self.gone.get(rented.id, now)
            total += rented.usd_per_hour * max(0.0, end - rented.created_monotonic) / 3600.0
        return total

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
        if self.worker is not None:
            self.worker.close()
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
            problems: list[str] = []
            for rented in left:
                try:
                    self.client.terminate_pod(rented.id, timeout=self.timing.terminate_timeout)
                except RunPodApiError as exc:
                    problems.append(str(exc))
                    continue
                except BaseException as exc:  # MissingSecretError, a bug: still say the pod may be billing
                    problems.append(f"pod {rented.id} may still be running: {redact(str(exc))}")
                    continue
                self.gone[rented.id] = time.monotonic()
                self._write_pod_json(rented, terminated=True)
                self._say(f"pod {rented.id} terminated (confirmed: RunPod no longer lists it)")
            self._cost(force=True)
            return problems

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


__all__ = ["PodJob", "PodLostError", "RunPodBackend", "Timing"]
