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

A process that reattaches to a job whose owner died (``load_job`` after a kernel
restart) reads the pod from ``pod.json`` and the worker's token from the pod's own
environment, as RunPod lists it to the account's key: the per-job token is never
written to disk here.

Every path out of :meth:`RunPodBackend.run` goes through one ``finally`` that
terminates every pod this job rented and waits until RunPod no longer lists it:
success, failure, Stop, Ctrl-C, a kernel shutdown (the controller's exit hook
stops live jobs) and the client-side limits (``runpod.max_runtime`` and
``runpod.max_cost_usd``, which stop training, keep what was saved and end the pod).

This module tells that story; the parts with a job of their own live beside it:
:mod:`.billing` counts runtime and cost against the limits and :mod:`.reattach`
reads and writes what a taking-over process needs from the job folder. Talking to
the worker is :mod:`unsloth_nb.backends.worker_link`: ``relay`` copies the pod's
events into the job's log, ``transfer`` moves checkpoints and results between here
and the pod, and ``checkpoints`` keeps the local copy of the newest checkpoint.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import secrets
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import unsloth_nb.backends.runpod.placement as placement
from unsloth_nb.backends.base import JobContext, PriceRequest, Pricing
from unsloth_nb.backends.rented import RentedBackend, drive
from unsloth_nb.backends.runpod import volume_placement
from unsloth_nb.backends.runpod.api_types import RunPodApiError
from unsloth_nb.backends.runpod.billing import Meter
from unsloth_nb.backends.runpod.boot_link import PackageDelivery
from unsloth_nb.backends.runpod.client import RunPodClient
from unsloth_nb.backends.runpod.placement import lost_pod_policy
from unsloth_nb.backends.runpod.pod_request import VOLUME_WORK_DIR as VOLUME_WORK_DIR  # re-exported: it was defined here
from unsloth_nb.backends.runpod.pod_request import job_secrets, pod_spec
from unsloth_nb.backends.runpod.pods import (
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
from unsloth_nb.backends.runpod.reattach import (
    POD_JSON,
    SENT_DATASET,
    earlier_pods,
    pod_record,
    read_pod_record,
    reload_inputs,
    rented_from,
)
from unsloth_nb.backends.runpod.unwatched import FinishedUnwatched, find_kept_outputs, take_kept_outputs, volume_note
from unsloth_nb.backends.worker_link.checkpoints import CheckpointKeeper
from unsloth_nb.backends.worker_link.client import WorkerClient, WorkerRefusedError, WorkerUnreachableError
from unsloth_nb.backends.worker_link.relay import EventRelay
from unsloth_nb.backends.worker_link.transfer import download_outputs, fetch_latest_checkpoint, send_checkpoint
from unsloth_nb.credentials import has_secret, redact
from unsloth_nb.errors import BackendError, JobCancelledError
from unsloth_nb.jobrun.checkpoints import checkpoint_step, newest_checkpoint
from unsloth_nb.jobrun.lifecycle import RESULT
from unsloth_nb.phases.base import Artifact, PhaseResult
from unsloth_nb.worker.protocol import INTERRUPTED, REMOTE_END_STATES, REMOTE_RUNNING_STATES, Health, pack_dataset
from unsloth_nb.worker.settings import TOKEN_ENV

if TYPE_CHECKING:
    from unsloth_nb.config import TrainConfig

log = logging.getLogger(__name__)

#: How many times one job continues from a checkpoint after losing its pod or its worker.
MAX_RESUMES = 3


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


class RunPodBackend(RentedBackend):
    """``Backend`` for ``placement: runpod``; the controller calls :meth:`run` (or :meth:`reattach`).

    The planning questions are answered by :mod:`.placement` (see :class:`RentedBackend`)."""

    name = "runpod"
    label = "RunPod"
    rules = placement

    def __init__(self, client: RunPodClient | None = None, timing: Timing | None = None) -> None:
        self.client = client
        self.timing = timing or Timing()

    def may_have_model_path(self, config: TrainConfig) -> bool:
        return bool(config.runpod.volume_id)

    def plan_notes(self, config: TrainConfig) -> list[tuple[str, bool]]:
        return [lost_pod_policy(config), *volume_placement.plan_notes(config)]

    def price(self, request: PriceRequest) -> Pricing:
        from unsloth_nb.backends.runpod import pricing

        return pricing.price(volume_placement.narrow_to_data_centre(request))  # a volume's pod gets its DC's cards only

    def stop_hint(self) -> str:
        return "or end its pod with `unsloth-nb runpod terminate`"

    def end_all_now(self, reason: str) -> None:
        _end_pods_now(reason)

    async def run(self, ctx: JobContext) -> PhaseResult:
        if ctx.stop_requested:
            raise JobCancelledError("stopped before a pod was rented")
        return await self._drive(ctx, PodJob.run)

    async def reattach(self, ctx: JobContext) -> PhaseResult:
        """Take over a job whose process died: reconnect to its pod and finish it as ``run`` would."""
        return await self._drive(ctx, PodJob.reattach)

    async def _drive(self, ctx: JobContext, body: Callable[[PodJob], PhaseResult]) -> PhaseResult:
        session = PodJob(ctx, self.client or RunPodClient(), self.timing)
        return await drive(ctx, functools.partial(body, session), name=f"unsloth-nb-runpod-{ctx.job_id}")


class PodJob:
    """The blocking body of one RunPod job (runs in its own thread)."""

    def __init__(self, ctx: JobContext, client: RunPodClient, timing: Timing) -> None:
        self.ctx = ctx
        self.client = client
        self.timing = timing
        self.config = ctx.config
        self.token = secrets.token_urlsafe(32)
        self.meter = Meter(ctx, timing.cost_every)  # every pod this job rented, and what they cost
        self.relay = EventRelay(ctx, self._say, self._keep_checkpoint)  # the pod's events into the job's log
        self.delivery = PackageDelivery(self._say)  # the unsloth_nb package to each booting pod
        self.pod: RentedPod | None = None
        self.worker: WorkerClient | None = None
        self.stop_reason: str | None = None
        self._resumes = 0
        self.unwatched_note: str | None = None  # set when reattaching finds the job already finished
        self._api_said_at: float | None = None  # when "RunPod API unreachable" was last said
        self._terminating = threading.Lock()
        self._abort = threading.Event()  # set by end_now: the pods are being terminated from outside
        self.keeper: CheckpointKeeper | None = None
        if not self.config.runpod.volume_id:
            self.keeper = CheckpointKeeper(ctx.output_dir / "checkpoints", self._say)

    # ------------------------------------------------------------------ the whole run
    def run(self) -> PhaseResult:
        def body() -> PhaseResult:
            self.ctx.set_state("provisioning")
            self._say_what_a_lost_pod_means()
            self._rent()
            self.ctx.set_state("uploading")
            self._send_job()
            return self._collect(self._follow())

        return self._guarded(body)

    def reattach(self) -> PhaseResult:
        def body() -> PhaseResult:
            try:
                return self._collect(self._follow(self._adopt))
            except FinishedUnwatched as kept:  # the pod ended itself after keeping the outputs
                assert self.pod is not None
                result = take_kept_outputs(self.ctx, self.relay, self.pod.id, kept)
                self._say(result.note or "")
                return result

        return self._guarded(body)

    def _guarded(self, body: Callable[[], PhaseResult]) -> PhaseResult:
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
        spec = volume_placement.place_on_volume(pod_spec(self.config, self.ctx.plan, self.ctx.job_id, self.token), self.config)
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

    def _reuse(self, offers: list[Offer]) -> RentedPod | None:
        if self.config.runpod.volume_id:
            return None  # the volume is mounted at creation; an idle pod has none or another one

        def health(pod: Any, token: str) -> Health | None:
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
        self.meter.add(rented)
        self.pod = rented
        record = self.ctx.record
        record.pod_id = rented.id
        record.gpu = rented.offer.gpu.display_name
        self.ctx.folder.save_record(record)
        self._write_pod_json(rented)
        self.ctx.set_state("starting")
        self.meter.report(self.pod, force=True)

    def _abandoned(self, rented: RentedPod, why: str) -> None:
        self.meter.end(rented.id)
        self._write_pod_json(rented, terminated=True, note=why)
        self.ctx.set_state("provisioning")

    def _write_pod_json(self, rented: RentedPod, *, terminated: bool = False, note: str | None = None) -> None:
        record = pod_record(rented, self.meter, self.config.runpod.image, terminated=terminated, note=note)
        self.ctx.folder.write_json(POD_JSON, record)

    def _ready(self, rented: RentedPod) -> bool:
        self.meter.report(self.pod)
        return self.delivery.ready(self._worker_for(rented), rented.id)  # a booting pod gets its package here

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
        record = read_pod_record(ctx.folder)
        for ghost, ended in earlier_pods(ctx.job_id, record):
            self.meter.add(ghost)
            self.meter.end(ghost.id, at=ended)
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
        rented = rented_from(ctx.job_id, pod_id, record, pod)
        self.meter.add(rented)
        self.pod = rented
        self.relay.take_over(pod_id)
        if record.get("terminated"):
            self.meter.end(rented.id)
            kept = newest_checkpoint(ctx.output_dir / "checkpoints")
            where = f"; the newest checkpoint copied here is {kept}" if kept else ""
            raise BackendError(f"pod {pod_id} was terminated while no process watched this job{where}")
        if pod is None:  # it ended itself after the job finished, or was evicted while nobody watched
            self.meter.end(rented.id)
            finished = find_kept_outputs(self.config, ctx.folder.path, ctx.job_id, self._say)
            if finished is not None:
                raise finished
            raise PodLostError(
                f"pod {pod_id} is gone: it ended or vanished while no process watched this job"
                + volume_note(self.config, ctx.job_id)
            )
        if not pod.running:
            raise PodLostError(f"pod {pod_id} is {pod.desired_status}: {pod.last_status_change or 'stopped'}")
        self.token = pod.env.get(TOKEN_ENV, "")
        if not self.token:
            raise BackendError(f"pod {pod_id} does not show its worker's token, so its job cannot be followed")
        worker = self._worker_for(rented)
        state = worker.job()
        if state.job_id not in (None, ctx.job_id):
            raise BackendError(f"pod {pod_id} runs job {state.job_id}, not {ctx.job_id}")
        if not state.has_job:
            raise BackendError(
                "the process that ran this job ended before the dataset reached the pod; "
                f"pod {pod_id} is terminated: start the job again"
            )
        self._say(
            f"reattached to pod {pod_id}: its worker is {state.state}; continuing after event {self.relay.cursor} "
            f"of {state.last_seq}"
        )
        if state.state in REMOTE_END_STATES:
            self.unwatched_note = (
                f"trained ({state.state}) while no process watched; its outputs were collected from pod {pod_id}, "
                "which was then terminated"
            )

    # ------------------------------------------------------------------ job and events
    def _send_job(self, resume_from: Path | None = None, hub_checkpoint: str | None = None) -> None:
        assert self.pod is not None
        worker = self._worker_for(self.pod)
        held = worker.job()
        if held.job_id == self.ctx.job_id and held.state == INTERRUPTED:
            # A network volume brought the job (and its checkpoints and event log) to this pod.
            self._say(f"pod {self.pod.id} found this job on the network volume; resuming from {held.checkpoint}")
            self._start(worker)
            return
        if self.ctx.dataset is None:
            raise BackendError("this process does not hold the job's dataset, so it cannot send it to a new pod")
        self.relay.from_start()
        dataset = pack_dataset(self.ctx.dataset)
        sent = {"sha256": hashlib.sha256(dataset).hexdigest(), "bytes": len(dataset), "rows": len(self.ctx.dataset.train)}
        self.ctx.folder.write_json(SENT_DATASET, sent)  # a reattaching process checks the file it re-reads against it
        worker.declare(self.ctx.job_id, self.config.to_dict(), dataset)
        worker.upload(dataset)
        self._say(f"dataset sent ({len(dataset) / 1e6:.1f} MB, {len(self.ctx.dataset.train)} rows)")
        if resume_from is not None:
            send_checkpoint(worker, resume_from, self.pod.id, self._say)
        heldout = self.ctx.folder.path / "evaluation" / "heldout.jsonl"
        if self.config.judge.enabled and heldout.is_file():
            worker.upload_file("evaluation/heldout.jsonl", heldout)  # the pod answers them; the judge stays here
        if self._should_stop():
            raise JobCancelledError("stopped before training started")
        self._start(worker, hub_checkpoint)

    def _start(self, worker: WorkerClient, hub_checkpoint: str | None = None) -> None:
        """Start (or resume) training; a start whose answer was lost and that is retried finds it running."""
        try:
            worker.start(hub_checkpoint, secrets=job_secrets(self.config))
        except WorkerRefusedError as exc:
            if exc.status != 409 or worker.job().state not in REMOTE_RUNNING_STATES | REMOTE_END_STATES:
                raise

    def _stream(self) -> str:
        """Copy the worker's events into the job's log until its job ends; returns the remote end state."""
        assert self.pod is not None and self.worker is not None
        worker, pod = self.worker, self.pod
        cancelled_at: float | None = None
        silent_since: float | None = None
        while True:
            self.meter.report(self.pod)
            if cancelled_at is None and self._should_stop():
                self._say(f"stopping: {self.stop_reason}; the pod saves a checkpoint and the adapter first")
                with contextlib.suppress(BackendError):
                    worker.cancel()
                cancelled_at = time.monotonic()
            if cancelled_at is not None and time.monotonic() - cancelled_at > self.timing.save_grace:
                self._say(f"the pod did not finish saving within {self.timing.save_grace:.0f} s; taking what is there")
                return "cancelled"
            try:
                answer = worker.events(
                    self.relay.cursor, timeout=self.timing.poll_seconds, retry_for=self.timing.reconnect_seconds
                )
            except (WorkerUnreachableError, WorkerRefusedError) as exc:
                if isinstance(exc, WorkerRefusedError) and exc.status not in (404, 410):
                    raise
                check_alive(self.client, pod.id)  # a pod that is gone says so at once
                self._api_notice()
                silent_since = silent_since or time.monotonic()
                if time.monotonic() - silent_since > self.timing.unreachable_limit:
                    unreachable = self.client.unreachable_for()
                    if unreachable is not None:  # nobody can know whether the pod runs: say so, not "running"
                        raise WorkerUnreachableError(
                            f"pod {pod.id}'s worker has not answered for {self.timing.unreachable_limit:.0f} s and "
                            f"the RunPod API was unreachable for {unreachable:.0f} s; the pod's state is unknown ({exc})"
                        ) from None
                    raise WorkerUnreachableError(
                        f"pod {pod.id} is running but its worker has not answered for "
                        f"{self.timing.unreachable_limit:.0f} s ({exc})"
                    ) from None
                self._abort.wait(self.timing.health_every)  # the pod is there: give its worker (or the proxy) a moment
                continue
            silent_since = None
            self.relay.receive(pod.id, answer.events)
            state = answer.state
            if state in REMOTE_END_STATES and not answer.more and self.relay.cursor >= answer.last_seq:
                return state
            if state == INTERRUPTED and not answer.more:
                if cancelled_at is not None:
                    with contextlib.suppress(BackendError):
                        worker.cancel()  # nothing runs: the job ends at once
                else:
                    self._worker_came_back(worker)

    def _keep_checkpoint(self, name: str) -> None:
        """A checkpoint the pod saved (the relay saw it): copy it here, so it outlives the pod."""
        if self.keeper is not None and self.pod is not None:
            self.keeper.offer(self.pod.url, self.token, name)

    # ------------------------------------------------------------------ losing a pod or its worker
    def _worker_came_back(self, worker: WorkerClient) -> None:
        """The worker died and its pod started it again: resume from its newest checkpoint, or fail with its log."""
        assert self.pod is not None
        checkpoint = worker.job().checkpoint
        why_not = self._why_no_resume(checkpoint is not None, same_pod=True)
        tail, when = self.relay.take_crash()
        when = when or "while the job was running"
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
            return reload_inputs(self.ctx, self._say)
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
            resume_from, hub, have = None, None, self.relay.remote_checkpoint is not None
        why_not = self._why_no_resume(have, same_pod=False)
        if why_not:
            raise BackendError(f"{lost}; the job cannot continue on a new pod: {why_not}") from None
        self._resumes += 1
        if resume_from is not None:
            where = resume_from.name
        elif hub is not None:
            where = f"{hub} on the Hub ({self.config.hub.checkpoint_repo_id})"
        else:
            where = str(self.relay.remote_checkpoint)
        self._say(f"{lost}; continuing on a new pod from {where}", level="warning")
        lost_pod = self.pod
        self.relay.close()
        if self.worker is not None:
            self.worker.close()
            self.worker = None
        if lost_pod is not None and not self.meter.is_gone(lost_pod.id):
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
            return self.relay.hub_checkpoint

    # ------------------------------------------------------------------ results
    def _collect(self, final: str) -> PhaseResult:
        if self.keeper is not None:
            self.keeper.close()
        if final == "failed":
            why = self.relay.remote_error or self.relay.remote_reason or "see the log"
            raise BackendError(f"training on the pod failed: {why}")
        assert self.worker is not None
        self.ctx.set_state("downloading")
        stopped = final == "cancelled" or self.stop_reason is not None
        # What the pod's phases reported (result events, copied into the job's log by the relay, also
        # by a process that died before this one reattached): each artifact by its path under output/.
        from unsloth_nb.phases.runner import phases_for

        # Only the pod's phases: a client phase before them (the teacher) wrote its files on this machine.
        on_pod = {phase.name for phase in phases_for(self.ctx.config, runs_on="model")}
        result = PhaseResult()
        for event in self.ctx.log.read(kinds={RESULT}):
            if event.data.get("phase") in on_pod or event.data.get("phase") is None:
                result = result.merge(PhaseResult.from_json(event.data))
        wanted = [a.path for name, a in result.artifacts.items() if name != "checkpoint"]
        fetched, total = download_outputs(self.worker, self.ctx.output_dir, wanted)
        with contextlib.suppress(BackendError):  # safe here now: the pod need not keep them before it ends
            self.worker.mark_collected()
        result.artifacts = {n: a for n, a in result.artifacts.items() if a.path in fetched or n == "checkpoint"}
        if stopped:
            checkpoint = fetch_latest_checkpoint(self.worker, self.ctx.output_dir)
            if checkpoint is not None:
                relative = checkpoint.resolve().relative_to(self.ctx.output_dir.resolve()).as_posix()
                result.artifacts["checkpoint"] = Artifact("checkpoint", relative)
        self._say(f"downloaded {total / 1e6:.1f} MB to {self.ctx.output_dir}")
        if stopped and "adapter" not in result.artifacts:
            raise JobCancelledError(self.stop_reason or "stopped before an adapter was saved")
        result.metrics.setdefault("global_step", self.relay.last_step)
        result.metrics.setdefault("final_loss", self.relay.last_loss)
        result.stopped = stopped
        result.stop_reason = f"{self.stop_reason or 'stopped'}; checkpoint and adapter saved" if stopped else None
        result.note = self.unwatched_note
        return result

    # ------------------------------------------------------------------ limits and cost
    def _should_stop(self) -> bool:
        if self.stop_reason is not None:
            return True
        if self.ctx.stop_requested:
            self.stop_reason = self.ctx.stop_reason
        else:
            self.stop_reason = self.meter.limit_reached(self.pod)
        return self.stop_reason is not None

    def _api_notice(self) -> None:
        """While RunPod's API gives no answer, say so (every API_NOTICE_EVERY s), and when it answers again.

        The event carries ``api_unreachable_s`` (0 once it answers) so the status line of the
        view and the CLI shows the state instead of claiming anything about the pod.
        """
        unreachable = self.client.unreachable_for()
        now = time.monotonic()
        if unreachable is None:
            if self._api_said_at is not None:
                self._api_said_at = None
                self.ctx.emit("log", level="info", message="RunPod API reachable again", source="runpod", api_unreachable_s=0)
            return
        if self._api_said_at is not None and now - self._api_said_at < API_NOTICE_EVERY:
            return
        self._api_said_at = now
        self.ctx.emit(
            "log",
            level="warning",
            message=f"RunPod API unreachable for {unreachable:.0f} s; the pod's state is unknown",
            source="runpod",
            api_unreachable_s=round(unreachable, 1),
        )

    def _say(self, message: str, level: str = "info") -> None:
        self.ctx.emit("log", level=level, message=message, source="runpod")

    # ------------------------------------------------------------------ the end of every path
    def _tear_down(self, failure: BaseException | None) -> None:
        if self.keeper is not None:
            self.keeper.close()
        if self.worker is not None:
            self.worker.close()
        self.relay.close()
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
            left = self.meter.not_gone()
            if not left:
                return []
            self.ctx.set_state("terminating")
            problems = [problem for rented in left if (problem := self._end_pod(rented))]
            self.meter.report(self.pod, force=True)
            return problems

    def _end_pod(self, rented: RentedPod) -> str | None:
        """Terminate one pod and wait until RunPod no longer lists it; returns what went wrong, if anything."""
        try:
            self.client.terminate_pod(rented.id, timeout=self.timing.terminate_timeout, on_wait=self._api_notice)
        except RunPodApiError as exc:
            self._api_notice()
            if self.client.unreachable_for() is not None:
                self._ask_pod_to_end_itself(rented)
            return str(exc)
        except BaseException as exc:  # MissingSecretError, a bug: still say the pod may be billing
            return f"pod {rented.id} may still be running: {redact(str(exc))}"
        self._api_notice()
        self.meter.end(rented.id)
        self._write_pod_json(rented, terminated=True)
        self._say(f"pod {rented.id} terminated (confirmed: RunPod no longer lists it)")
        return None

    def _ask_pod_to_end_itself(self, rented: RentedPod) -> None:
        """RunPod's API does not answer this machine: ask the worker to end its own pod (its path to the API may work).

        Whatever comes of it, the worker's own idle timeout ends the pod later, with retries.
        """
        worker = WorkerClient(rented.url, self.token, unreachable_after=10.0)
        try:
            worker.shutdown()
            self._say(f"RunPod's API does not answer here; asked pod {rented.id}'s worker to end its own pod", level="warning")
        except BackendError as exc:
            self._say(f"could not ask pod {rented.id}'s worker to end its pod either ({exc})", level="warning")
        finally:
            worker.close()

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


#: How often, at most, the job's log repeats that RunPod's API gives no answer.
API_NOTICE_EVERY = 10.0

_live: set[PodJob] = set()
_live_lock = threading.Lock()


def _end_pods_now(reason: str) -> None:
    """Terminate every live job's pods at once (the shutdown registry calls it at exit, before waiting)."""
    with _live_lock:
        jobs = list(_live)
    for job in jobs:
        job.end_now(reason)


__all__ = ["PodJob", "PodLostError", "RunPodBackend", "Timing", "WorkerCrashedError"]
