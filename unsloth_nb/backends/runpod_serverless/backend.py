"""The serverless backend: one job = one template + one endpoint (workers min 0) + one request, then both deleted.

The job's states: ``provisioning`` (template and endpoint created over REST v2) -> ``starting`` (request
queued, a worker cold-starts) -> the states the worker reports (loading, training, saving) ->
``downloading`` -> ``succeeded | failed | cancelled``. The request goes through the unmodified ``runpod``
SDK's ``Endpoint.run`` with a policy setting its execution timeout and TTL; this side reads ``/stream``
(each chunk once) and copies the events into the job's log through the same :class:`EventRelay` as a
pod's (so the chart, the CLI printer and ``pods/<request id>.events.jsonl`` work alike), then reads
``/status``, whose aggregated output replays every chunk, so a chunk lost on the way is filled in.

Every path out of :meth:`ServerlessJob.run` deletes the endpoint (or scales it to 0 with
``serverless.keep_endpoint``) and its template in a ``finally``, and waits until RunPod no longer lists
it: deleting an endpoint ends its workers, so nothing is left billing. Stop maps to ``/cancel``.
A request that fails without an error from our handler lost its worker; it is sent again once: it resumes
from the newest checkpoint in ``serverless.checkpoint_store`` when the job names one, else from step 0.
A ``/run`` answer lost on the way is never resubmitted blindly: ``/health`` says whether the request
was queued (then ``/purge-queue`` removes it and it is sent again) or already running (then the job
fails and the endpoint, with that request, is deleted).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import logging
import os
import threading
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import unsloth_nb.backends.runpod_serverless.placement as placement
from unsloth_nb.backends.base import JobContext, PriceRequest, Pricing
from unsloth_nb.backends.rented import RentedBackend, drive
from unsloth_nb.backends.runpod.api_types import api_key
from unsloth_nb.backends.runpod_serverless import prices
from unsloth_nb.backends.runpod_serverless.endpoints import EndpointInfo, EndpointsApi, endpoint_name, remove
from unsloth_nb.backends.runpod_serverless.request import (
    endpoint_body,
    execution_timeout,
    job_input,
    run_request,
    template_body,
)
from unsloth_nb.backends.worker_link.relay import EventRelay
from unsloth_nb.errors import BackendError, JobCancelledError
from unsloth_nb.phases.base import PhaseResult

if TYPE_CHECKING:
    from unsloth_nb.config import TrainConfig

log = logging.getLogger(__name__)

FINAL_STATUSES = ("COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT")
#: How many new requests one job sends after losing the worker that ran it.
MAX_RESUBMITS = 1
#: How long RunPod's job API may stay silent before the request is cancelled (its endpoint is deleted after).
UNREACHABLE_LIMIT_S = 600.0
ENDPOINT_URL_ENV = "RUNPOD_ENDPOINT_BASE_URL"
#: Endpoints this process created and has not deleted yet (ended at interpreter exit).
_LIVE: dict[str, tuple[EndpointsApi, EndpointInfo]] = {}
_LIVE_LOCK = threading.Lock()


def live_endpoint_ids() -> set[str]:
    """Endpoints that a job in this process is using now."""
    with _LIVE_LOCK:
        return set(_LIVE)


class ServerlessBackend(RentedBackend):
    """``Backend`` for ``placement: serverless``; the planning questions are answered by :mod:`.placement`."""

    name = "serverless"
    label = "RunPod serverless"
    rules = placement

    def __init__(self, poll_seconds: float = 1.0, delete_timeout: float = 60.0) -> None:
        self.poll_seconds = poll_seconds
        self.delete_timeout = delete_timeout

    def may_have_model_path(self, config: TrainConfig) -> bool:
        return False

    def plan_notes(self, config: TrainConfig) -> list[tuple[str, bool]]:
        return placement.notes(config)

    def price(self, request: PriceRequest) -> Pricing:
        return prices.price(request)

    def stop_hint(self) -> str:
        return "or delete its endpoint (named unsloth-nb-<job id>) in RunPod's console under Serverless"

    def end_all_now(self, reason: str) -> None:
        with _LIVE_LOCK:
            live = list(_LIVE.values())
        for api, endpoint in live:
            with contextlib.suppress(Exception):
                remove(api, endpoint)

    async def run(self, ctx: JobContext) -> PhaseResult:
        if ctx.stop_requested:
            raise JobCancelledError("stopped before the endpoint was created")
        job = ServerlessJob(ctx, self.poll_seconds, self.delete_timeout)
        return await drive(ctx, job.run, name=f"unsloth-nb-serverless-{ctx.job_id}")

    async def reattach(self, ctx: JobContext) -> PhaseResult:
        """Not followed after its process died (not built): its endpoint is deleted, so nothing runs on unwatched."""
        name = endpoint_name(ctx.job_id)
        deleted = ""
        with contextlib.suppress(Exception):
            api = EndpointsApi()
            for endpoint in api.endpoints():
                if endpoint.name == name:
                    remove(api, endpoint)
                    deleted = f"; its endpoint {endpoint.id} was deleted, ending the request"
        raise BackendError(f"a serverless job cannot be followed after the process that started it ended{deleted}")


class ServerlessJob:
    """The blocking body of one serverless job (runs in its own thread)."""

    def __init__(self, ctx: JobContext, poll_seconds: float, delete_timeout: float) -> None:
        self.ctx = ctx
        self.config = ctx.config
        self.poll_seconds = poll_seconds
        self.delete_timeout = delete_timeout
        self.api = EndpointsApi()
        self.relay = EventRelay(ctx, self._say, on_checkpoint=lambda _name: None)
        self.parts: dict[str, dict[int, str]] = {}
        self.meta: dict[str, dict[str, Any]] = {}
        self.result: dict[str, Any] | None = None
        self.request_id = ""

    def _say(self, message: str, level: str = "info") -> None:
        self.ctx.emit("log", level=level, message=message, source="runpod")

    # ------------------------------------------------------------------ the story
    def run(self) -> PhaseResult:
        plan, config = self.ctx.plan, self.config
        if self.ctx.dataset is None or plan is None:
            raise BackendError("a serverless job runs in the process that planned it")
        timeout = execution_timeout(config, plan)
        body = job_input(self.ctx.job_id, config, self.ctx.dataset)
        gpu_ids = placement.pool(plan) or list(config.runpod.gpus)
        if not gpu_ids:
            raise BackendError("no GPU type for the endpoint: set runpod.gpus")
        self.ctx.set_state("provisioning")
        template_id: str | None = None
        endpoint: EndpointInfo | None = None
        try:
            disk = plan.pod.container_disk_gb if plan.pod is not None else None
            template_id = self.api.create_template(template_body(config, self.ctx.job_id, disk))
            endpoint = self.api.create_endpoint(endpoint_body(config, self.ctx.job_id, template_id, gpu_ids, timeout))
            with _LIVE_LOCK:
                _LIVE[endpoint.id] = (self.api, endpoint)
            self._say(
                f"endpoint {endpoint.id} ({endpoint.name}) created: GPUs {', '.join(gpu_ids)}, workers 0-"
                f"{config.serverless.workers_max}, execution timeout {timeout:.0f} s"
            )
            if self.ctx.stop_requested:
                raise JobCancelledError(self.ctx.stop_reason)
            self.ctx.set_state("starting")
            sdk = _sdk_endpoint(endpoint.id)
            for attempt in range(MAX_RESUBMITS + 1):
                job = self._submit(sdk, run_request(body, timeout))
                self.request_id = job.job_id
                self.relay.from_start()  # a new request numbers its events from 0 (steps charted already are skipped)
                self._say(f"request {job.job_id} queued on endpoint {endpoint.id}")
                status = self._follow(sdk, job)
                if not self._worker_lost(status) or attempt == MAX_RESUBMITS or self.ctx.stop_requested:
                    break
                store = config.serverless.checkpoint_store
                again = (
                    f"resumes from the newest checkpoint in {store}"
                    if store
                    else "starts the job again from step 0 (checkpoints stay on a lost worker's disk)"
                )
                self._say(
                    f"the worker running request {job.job_id} was lost at step {self.relay.last_step}; a new request {again}",
                    level="warning",
                )
            return self._finish(status, timeout)
        finally:
            self.relay.close()
            self._end(endpoint, template_id)

    def _submit(self, sdk: Any, body: dict[str, Any]) -> Any:
        """``/run`` once; on a lost answer, ``/health`` decides (see the module docstring)."""
        import requests

        for _attempt in range(6):
            try:
                return sdk.run(body)
            except requests.HTTPError as exc:
                status = exc.response.status_code if exc.response is not None else 0
                if status != 429:
                    raise BackendError(f"RunPod refused the serverless request (HTTP {status})") from None
                wait = exc.response.headers.get("Retry-After") if exc.response is not None else None
                self._say(f"RunPod's queue is throttled (429); retrying in {wait or 1} s", level="warning")
                time.sleep(float(wait or 1))
            except requests.RequestException:
                jobs = (sdk.health() or {}).get("jobs") or {}
                if jobs.get("inProgress"):
                    raise BackendError(
                        "the answer to /run was lost and the request already started, so it cannot be followed; "
                        "the endpoint is deleted with it. Start the job again."
                    ) from None
                if jobs.get("inQueue"):
                    sdk.purge_queue()
                    self._say("the answer to /run was lost; the queued request was purged and is sent again", level="warning")
                else:
                    self._say("the answer to /run was lost and nothing was queued; sending it again", level="warning")
        raise BackendError("RunPod did not take the serverless request after 6 tries; try again later")

    def _follow(self, sdk: Any, job: Any) -> dict[str, Any]:
        cancelled = False
        started = time.monotonic()
        last_answer = started
        while True:
            if not cancelled and (why := self._limit_reached(time.monotonic() - started, time.monotonic() - last_answer)):
                self._stop(why)
            if self.ctx.stop_requested and not cancelled:
                cancelled = True
                self._say("Stop: cancelling the serverless request")
                with contextlib.suppress(Exception):
                    job.cancel()
            try:
                answer = job.rp_client.get(f"{job.endpoint_id}/stream/{job.job_id}")
            except Exception as exc:  # a dropped poll is retried; /status replays what it missed
                log.info("stream poll failed: %s", exc)
                time.sleep(self.poll_seconds)
                continue
            last_answer = time.monotonic()
            for chunk in answer.get("stream") or []:
                self._take(chunk.get("output") if isinstance(chunk, dict) else None)
            if answer.get("status") in FINAL_STATUSES:
                break
            time.sleep(self.poll_seconds)
        status = job.rp_client.get(f"{job.endpoint_id}/status/{job.job_id}")
        output = status.get("output")
        for chunk in output if isinstance(output, list) else []:
            self._take(chunk)  # the aggregated stream: anything /stream lost is copied now, in order
        return dict(status)

    def _limit_reached(self, running_s: float, silent_s: float) -> str | None:
        """Why the request must be cancelled now (the runpod section's limits, a silent API), or None."""
        limits = self.config.runpod
        usd_per_hour = self.ctx.plan.usd_per_hour if self.ctx.plan is not None else None
        if running_s > limits.max_runtime:
            return f"runpod.max_runtime of {limits.max_runtime:.0f} s reached"
        if limits.max_cost_usd and usd_per_hour and running_s * usd_per_hour / 3600 > limits.max_cost_usd:
            return f"runpod.max_cost_usd of ${limits.max_cost_usd:g} reached"
        if silent_s > UNREACHABLE_LIMIT_S:
            return f"RunPod's job API did not answer for {silent_s:.0f} s"
        return None

    def _stop(self, why: str) -> None:
        self._say(f"{why}: stopping the job", level="warning")
        self.ctx.stop_reasons.append(why)
        self.ctx.stop_event.set()

    def _worker_lost(self, status: dict[str, Any]) -> bool:
        """A FAILED request whose handler reported no error: the worker died under it (a crash, an eviction)."""
        return status.get("status") == "FAILED" and self.result is None and self.relay.remote_error is None

    def _take(self, chunk: Any) -> None:
        if not isinstance(chunk, dict):
            return
        if isinstance(chunk.get("events"), list):
            self.relay.receive(self.request_id, chunk["events"])
        elif "artifact" in chunk:
            name = str(chunk["artifact"])
            self.parts.setdefault(name, {})[int(chunk["part"])] = str(chunk["data"])
            self.meta[name] = chunk
        elif "result" in chunk:
            self.result = chunk

    def _finish(self, status: dict[str, Any], timeout: float) -> PhaseResult:
        state = status.get("status")
        seconds = (status.get("executionTime") or 0) / 1000
        usd_per_hour = self.ctx.plan.usd_per_hour if self.ctx.plan is not None else None
        if usd_per_hour:
            billed = seconds + self.config.serverless.idle_timeout
            self.ctx.emit(
                "cost", usd_so_far=round(billed * usd_per_hour / 3600, 6), usd_per_hour=usd_per_hour, source="serverless"
            )
        if state == "CANCELLED":
            raise JobCancelledError(self.ctx.stop_reason if self.ctx.stop_requested else "the serverless request was cancelled")
        if state == "TIMED_OUT":
            raise BackendError(
                f"the serverless request ran past its execution timeout of {timeout:.0f} s and RunPod ended it; "
                "raise serverless.execution_timeout"
            )
        if state != "COMPLETED" or self.result is None:
            error = status.get("error") or self.relay.remote_error or "no result came back"
            raise BackendError(f"the serverless request {state.lower() if state else 'failed'}: {_short(error)}")
        self.ctx.set_state("downloading")
        self._write_artifacts()
        result = PhaseResult.from_json(self.result["result"])
        missing = [n for n, a in result.artifacts.items() if not a.url and not a.local_path(self.ctx.output_dir).exists()]
        if missing:
            raise BackendError(
                f"{', '.join(missing)} did not come back: too large for a serverless result "
                "(see the worker's warning in the log); use placement: runpod for this job"
            )
        if self.result.get("state") == "cancelled":
            result.stopped = True
        return result

    def _write_artifacts(self) -> None:
        for name, parts in self.parts.items():
            meta = self.meta[name]
            if len(parts) != int(meta["parts"]):
                raise BackendError(f"artifact {name} came back incomplete ({len(parts)} of {meta['parts']} parts)")
            data = b"".join(base64.b64decode(parts[i]) for i in range(len(parts)))
            if hashlib.sha256(data).hexdigest() != meta["sha256"]:
                raise BackendError(f"artifact {name} came back damaged (sha256 mismatch)")
            target = self.ctx.output_dir / str(meta["path"])
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                if meta.get("kind") == "file":
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(archive.read(archive.namelist()[0]))
                else:
                    target.mkdir(parents=True, exist_ok=True)
                    _extract(archive, target)
            self._say(f"{name} received ({len(data) / 1e3:.0f} kB zipped, sha256 checked)")

    def _end(self, endpoint: EndpointInfo | None, template_id: str | None) -> None:
        """Delete (or scale to 0) the endpoint, then its template; wait until RunPod no longer lists it."""
        if endpoint is None:
            if template_id:
                with contextlib.suppress(Exception):
                    self.api.delete_template(template_id)
            return
        try:
            if self.config.serverless.keep_endpoint:
                self.api.scale_to_zero(endpoint.id)
                self._say(f"endpoint {endpoint.id} kept with 0 workers (serverless.keep_endpoint)")
                return
            remove(self.api, endpoint)
            deadline = time.monotonic() + self.delete_timeout
            while self.api.get(endpoint.id) is not None:
                if time.monotonic() > deadline:
                    self._say(f"endpoint {endpoint.id} is still listed after deletion; delete it in RunPod's console", "error")
                    return
                time.sleep(0.5)
            self._say(f"endpoint {endpoint.id} deleted")
        finally:
            with _LIVE_LOCK:
                _LIVE.pop(endpoint.id, None)


def _sdk_endpoint(endpoint_id: str) -> Any:
    """The ``runpod`` SDK's Endpoint; its base URL follows ``RUNPOD_ENDPOINT_BASE_URL`` on every job (the SDK reads it at import)."""
    import runpod

    base = os.environ.get(ENDPOINT_URL_ENV, "").strip()
    if base:
        runpod.endpoint_url_base = base.rstrip("/")
    return runpod.Endpoint(endpoint_id, api_key=api_key())


def _extract(archive: zipfile.ZipFile, target: Path) -> None:
    root = target.resolve()
    for name in archive.namelist():
        path = (target / name).resolve()
        if root not in path.parents:
            raise BackendError(f"artifact entry {name!r} points outside its folder")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(archive.read(name))


def _short(error: Any) -> str:
    text = str(error)
    with contextlib.suppress(ValueError, TypeError):
        import json

        parsed = json.loads(text)
        if isinstance(parsed, dict) and parsed.get("error_message"):
            text = f"{parsed.get('error_type', '')}: {parsed['error_message']}"
    return text[:2000]
