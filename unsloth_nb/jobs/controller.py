"""Jobs: the state machine between a plan and a backend, and the handle users hold.

``prepare`` does everything that can fail because of the user's input (config,
dataset, plan, missing keys) synchronously and before anything starts, so a
mistake is a short message and never a half-started job or a pod. ``Job.start``
then runs a :class:`JobController` on the private controller loop; the backend
reports through the job's EventLog, which every view reads.

States::

    created -> planning -> [provisioning -> starting -> uploading] -> starting -> training
            -> saving -> [downloading -> terminating] -> succeeded | failed | cancelled
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextvars
import dataclasses
import os
import socket
import threading
import time
import traceback
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unsloth_nb.backends.base import Backend, BackendResult, JobContext
from unsloth_nb.config import TrainConfig
from unsloth_nb.credentials import get_secret, redact
from unsloth_nb.data import PreparedDataset, prepare_dataset
from unsloth_nb.errors import BackendError, JobCancelledError, JobFailedError, JobNotFoundError, PlanError, UnslothNbError
from unsloth_nb.jobs.events import Event, EventLog
from unsloth_nb.jobs.runtime import submit
from unsloth_nb.jobs.store import TERMINAL_STATES, JobFolder, JobRecord, jobs_root, new_job_id
from unsloth_nb.planning.planner import POD_CHECKPOINT_EVERY_S, Plan, check_model_source, default_save_steps, plan

JOB_STATES = (
    "created",
    "planning",
    "provisioning",
    "starting",
    "uploading",
    "training",
    "saving",
    "downloading",
    "terminating",
    "succeeded",
    "failed",
    "cancelled",
)


# ---------------------------------------------------------------------- preflight
@dataclass
class Prepared:
    """A config that passed every check, with its dataset and plan."""

    config: TrainConfig
    dataset: PreparedDataset
    plan: Plan
    base_dir: Path


def prepare(
    config: TrainConfig,
    base_dir: str | Path | None = None,
    *,
    prompt_for_secrets: bool = False,
    check_secrets: bool = True,
) -> Prepared:
    """Validate the dataset, plan the job and check keys; raise UnslothNbError on any user mistake.

    ``check_secrets=False`` is for showing a plan: looking at what a RunPod job would
    cost must not need a RunPod key.
    """
    base = Path(base_dir or Path.cwd()).resolve()
    dataset = prepare_dataset(config.dataset, config.train.max_seq_length, base_dir=str(base))
    job_plan = plan(config, dataset.summary)
    every = default_save_steps(job_plan) if config.train.save_steps is None else None
    if every is not None:
        # A paid pod can vanish: keep checkpoints unless the user chose, and say so in the plan.
        config = dataclasses.replace(config, train=dataclasses.replace(config.train, save_steps=every))
        job_plan = plan(config, dataset.summary)
        job_plan.reasons.append(
            f"train.save_steps set to {every}: a checkpoint about every {POD_CHECKPOINT_EVERY_S / 60:.0f} min of "
            "training on the pod (set train.save_steps to choose)."
        )
    check_model_source(config, job_plan.placement)
    if not check_secrets:
        return Prepared(config, dataset, job_plan, base)
    if config.hub.repo_id:
        get_secret("HF_TOKEN", f"to push the adapter to the Hub repository {config.hub.repo_id}", prompt=prompt_for_secrets)
    if job_plan.placement == "runpod":
        get_secret("RUNPOD_API_KEY", "to create a RunPod pod for this job", prompt=prompt_for_secrets)
    return Prepared(config, dataset, job_plan, base)


# ---------------------------------------------------------------------- backends


def backend_for(placement: str) -> Backend:
    """The backend for a placement, imported only when a job needs it (each pulls in its own libraries)."""
    if placement == "local":
        from unsloth_nb.backends.local import LocalBackend

        return LocalBackend()
    if placement == "runpod":
        try:
            from unsloth_nb.backends.runpod import RunPodBackend
        except ImportError as exc:
            raise PlanError(f"the RunPod backend cannot load ({exc}); install unsloth-nb[runpod]") from None
        return RunPodBackend()
    raise PlanError(f"unknown placement {placement!r}")


# ---------------------------------------------------------------------- the job handle
_live_jobs: set[Job] = set()
_live_lock = threading.Lock()


class Job:
    """A fine-tuning job: watch it, wait for it, stop it.

    ``await job`` and ``job.wait()`` return the job when it ends (raising
    JobFailedError if it failed); ``job.cancel()`` asks it to stop after saving a
    checkpoint. ``job.model`` / ``job.tokenizer`` are set for in-kernel jobs.
    """

    def __init__(
        self,
        record: JobRecord,
        folder: JobFolder,
        config: TrainConfig,
        job_plan: Plan | None = None,
        *,
        follow_only: bool = False,
    ) -> None:
        self.record = record
        self.folder = folder
        self.config = config
        self.plan = job_plan
        # A job that another live process runs is only followed: its events file has one writer.
        self.log = EventLog(record.id, folder.events_path, read_only=follow_only)
        self.stop_event = threading.Event()
        self.stop_reasons: list[str] = []
        self.model: Any = None
        self.tokenizer: Any = None
        self.final_loss: float | None = None
        self.global_step: int = 0
        self._future: concurrent.futures.Future[Job] | None = None
        self._state_lock = threading.Lock()

    # ------------------------------------------------------------------ starting
    @classmethod
    def start(cls, prepared: Prepared, *, context: contextvars.Context | None = None) -> Job:
        """Create the job folder and run the job on the controller loop; returns at once."""
        config = prepared.config
        record = JobRecord(
            id=new_job_id(),
            model=config.model.name,
            dataset=config.dataset.path,
            placement=prepared.plan.placement,
        )
        output_dir = Path(config.save.output_dir).expanduser() if config.save.output_dir else jobs_root() / record.id / "outputs"
        if not output_dir.is_absolute():
            output_dir = prepared.base_dir / output_dir
        record.output_dir = str(output_dir)
        folder = JobFolder.create(record, config.to_dict())
        folder.write_json("plan.json", prepared.plan.to_dict())
        # Relative dataset paths were read from here; a process that reattaches reads them again from the same place.
        folder.write_json("inputs.json", {"base_dir": str(prepared.base_dir)})
        job = cls(record, folder, config, prepared.plan)
        job.log.emit("status", state="created", placement=prepared.plan.placement)
        ctx = JobContext(
            job_id=record.id,
            config=config,
            plan=prepared.plan,
            dataset=prepared.dataset,
            log=job.log,
            folder=folder,
            output_dir=output_dir,
            stop_event=job.stop_event,
            stop_reasons=job.stop_reasons,
            set_state=job._set_state,
            record=record,
            context=context or contextvars.copy_context(),
        )
        # What libraries print while the job runs goes to its Log and output.log, not the cell.
        from unsloth_nb.engine.quiet import capture_job_output

        capture_job_output(ctx.context, job.log, folder.path / "output.log")
        with _live_lock:
            _live_jobs.add(job)
        job._future = submit(JobController(job, ctx).run(), context=ctx.context)
        return job

    @classmethod
    def load(cls, job_id: str, *, reattach: bool = True) -> Job:
        """A handle on a job from its folder (for example after a kernel restart).

        A RunPod job whose process died (a restarted kernel, a killed script) keeps
        training on its pod; with ``reattach`` (the default) this process takes it
        over: it reconnects to the pod's worker, continues the event stream where the
        job folder's record of it ends, downloads the adapter and terminates the pod,
        as the original process would have. ``reattach=False`` only reads the folder
        (for listings: a short-lived process that reattached would end the pod when
        it exits). A local job whose process died is marked failed.
        """
        with _live_lock:
            for job in _live_jobs:
                if job.id == job_id:
                    return job
        folder = JobFolder.open(job_id)
        record = folder.load_record()
        try:
            config = TrainConfig.from_dict(folder.config())
        except UnslothNbError:
            config = TrainConfig()
        ours = record.pid == os.getpid() and record.host == socket.gethostname()
        owned_elsewhere = not record.terminal and not ours and record.owner_alive()
        job = cls(record, folder, config, follow_only=owned_elsewhere or record.terminal)
        if not record.terminal and not ours and not owned_elsewhere:
            if record.placement == "local":
                job._set_state("failed", f"the process that ran it (pid {record.pid}) ended before the job finished")
            elif reattach:
                job._reattach()
        return job

    def _reattach(self) -> None:
        """Become the job's owner and follow it on the controller loop.

        The key is asked for first (a restarted kernel has lost a prompted one): without
        it nothing could be followed or ended, and the job must not be marked failed.
        """
        get_secret("RUNPOD_API_KEY", f"to reattach to job {self.id} and end its pod", prompt=True)
        previous = self.record.pid
        self.record.pid, self.record.host = os.getpid(), socket.gethostname()
        self.folder.save_record(self.record)
        output_dir = Path(self.record.output_dir) if self.record.output_dir else self.folder.outputs
        ctx = JobContext(
            job_id=self.id,
            config=self.config,
            plan=None,
            dataset=None,
            log=self.log,
            folder=self.folder,
            output_dir=output_dir,
            stop_event=self.stop_event,
            stop_reasons=self.stop_reasons,
            set_state=self._set_state,
            record=self.record,
        )
        self.log.emit(
            "log",
            level="info",
            message=f"reattaching: the process that ran this job (pid {previous}) is gone",
            source="controller",
        )
        with _live_lock:
            _live_jobs.add(self)
        self._future = submit(JobController(self, ctx).reattach(), context=ctx.context)

    # ------------------------------------------------------------------ state
    @property
    def id(self) -> str:
        return self.record.id

    @property
    def state(self) -> str:
        return self.record.state

    @property
    def placement(self) -> str:
        return self.record.placement

    @property
    def done(self) -> bool:
        return self.record.terminal

    @property
    def error(self) -> str | None:
        return self.record.error

    @property
    def adapter_path(self) -> Path | None:
        value = self.record.artifacts.get("adapter")
        return Path(value) if value else None

    @property
    def merged_path(self) -> Path | None:
        value = self.record.artifacts.get("merged_16bit")
        return Path(value) if value else None

    @property
    def checkpoint_path(self) -> Path | None:
        value = self.record.artifacts.get("checkpoint")
        return Path(value) if value else None

    def _set_state(self, state: str, reason: str | None = None) -> None:
        if state not in JOB_STATES:
            raise ValueError(f"unknown job state {state!r}")
        with self._state_lock:
            previous = self.record.state
            if previous == state or previous in TERMINAL_STATES:
                return
            self.record.state = state
            if state in TERMINAL_STATES:
                self.record.finished = time.time()
            self.folder.save_record(self.record)
        data: dict[str, Any] = {"state": state, "previous": previous}
        if reason:
            data["reason"] = reason
        self.log.emit("status", **data)

    # ------------------------------------------------------------------ reading
    def events(self, after: int = -1, kinds: set[str] | None = None) -> list[Event]:
        """Events with ``seq > after``: a reader that keeps the last seq it saw misses nothing."""
        return self.log.read(after, kinds)

    def metrics(self) -> list[dict[str, Any]]:
        return [e.data for e in self.log.read(kinds={"metrics"})]

    # ------------------------------------------------------------------ control
    def cancel(self, reason: str = "stopped by the user") -> None:
        """Ask the job to stop; training saves a checkpoint and the adapter before it ends."""
        if self.done:
            return
        if self.log.read_only:
            raise UnslothNbError(
                f"job {self.id} runs in another process (pid {self.record.pid} on {self.record.host}); stop it there"
                + (", or end its pod with `unsloth-nb runpod terminate`" if self.placement == "runpod" else "")
            )
        if not self.stop_event.is_set():
            self.stop_reasons.append(reason)
            self.stop_event.set()
            self.log.emit("log", level="info", message=f"stop requested: {reason}", source="controller")

    stop = cancel

    def wait(self, timeout: float | None = None) -> Job:
        """Block until the job ends; raise JobFailedError if it failed, TimeoutError on timeout."""
        if self._future is not None:
            try:
                self._future.result(timeout)
            except concurrent.futures.TimeoutError:
                raise TimeoutError(f"job {self.id} still {self.state} after {timeout} s") from None
        else:
            deadline = None if timeout is None else time.monotonic() + timeout
            while not self._refresh_record().terminal:
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"job {self.id} still {self.state} after {timeout} s")
                time.sleep(0.5)
        return self._outcome()

    def __await__(self) -> Generator[Any, None, Job]:
        if self._future is None:
            return (yield from asyncio.get_running_loop().run_in_executor(None, self.wait).__await__())
        yield from asyncio.wrap_future(self._future).__await__()
        return self._outcome()

    def result(self) -> Job:
        """The finished job; raises JobFailedError / JobCancelledError for those outcomes."""
        outcome = self.wait()
        if outcome.state == "cancelled":
            raise JobCancelledError(f"job {self.id} was cancelled")
        return outcome

    def _outcome(self) -> Job:
        if self.record.state == "failed":
            raise JobFailedError(f"job {self.id} failed: {self.record.error}")
        return self

    def _refresh_record(self) -> JobRecord:
        if self._future is None:
            self.record = self.folder.load_record()
            if self.log.read_only:
                self.log.refresh()
        return self.record

    @property
    def runs_here(self) -> bool:
        """Whether this process drives the job (started or reattached it), rather than following its folder."""
        with _live_lock:
            return self in _live_jobs

    # ------------------------------------------------------------------ display
    def show(self) -> None:
        """Display the job's live view (status, progress, chart, Stop) in a notebook.

        Returns nothing: a returned view would be displayed a second time as the cell's value.
        """
        from unsloth_nb.ui.view import JobView

        JobView(self).display()

    def _ipython_display_(self) -> None:
        self.show()

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.state} {self.placement} model={self.config.model.name!r}>"


# ---------------------------------------------------------------------- the controller
class JobController:
    """Runs one job from planning to an end state; every path ends in a terminal state."""

    def __init__(self, job: Job, ctx: JobContext) -> None:
        self.job = job
        self.ctx = ctx

    async def run(self) -> Job:
        ctx = self.ctx

        async def start() -> BackendResult:
            assert ctx.plan is not None and ctx.dataset is not None
            self.job._set_state("planning")
            ctx.emit("summary", **ctx.dataset.summary.to_event())
            ctx.emit("log", level="info", message=f"plan: {_plan_line(ctx.plan)}", source="planner")
            for warning in ctx.plan.warnings:
                ctx.emit("log", level="warning", message=warning, source="planner")
            return await backend_for(ctx.plan.placement).run(ctx)

        return await self._drive(start)

    async def reattach(self) -> Job:
        """Follow a job another process started, from where it is now to its end."""

        async def follow() -> BackendResult:
            backend = backend_for(self.job.placement)
            reattach = getattr(backend, "reattach", None)
            if reattach is None:
                raise BackendError(f"a {self.job.placement} job cannot be followed from another process")
            return await reattach(self.ctx)

        return await self._drive(follow)

    async def _drive(self, body: Any) -> Job:
        job, ctx = self.job, self.ctx
        final, reason = "failed", None
        try:
            result = await body()
            self._record_result(result)
            if ctx.stop_requested or result.stopped:
                final, reason = "cancelled", result.stop_reason or "stopped by the user; checkpoint and adapter saved"
            else:
                final = "succeeded"
        except JobCancelledError as exc:
            final, reason = "cancelled", redact(str(exc))
        except UnslothNbError as exc:
            message = redact(str(exc))
            self._fail(message, type(exc).__name__, getattr(exc, "log_tail", None))
            final, reason = "failed", message
        except asyncio.CancelledError:
            final, reason = "cancelled", "the controller was cancelled"
        except Exception as exc:  # our bug or a library failure: keep the trace in the log
            message = redact(f"{type(exc).__name__}: {exc}")
            ctx.emit("log", level="error", message=redact(traceback.format_exc()), source="controller")
            self._fail(message, type(exc).__name__)
        finally:
            job._set_state(final, reason)
            job.log.close()
            with _live_lock:
                _live_jobs.discard(job)
        return job

    def _fail(self, message: str, error_type: str, log_tail: str | None = None) -> None:
        self.job.record.error = message
        self.job.record.error_type = error_type
        if log_tail:
            self.ctx.emit("error", message=message, error_type=error_type, log_tail=redact(log_tail))
        else:
            self.ctx.emit("error", message=message, error_type=error_type)

    def _record_result(self, result: BackendResult) -> None:
        job = self.job
        for name, path in (
            ("adapter", result.adapter_dir),
            ("merged_16bit", result.merged_dir),
            ("checkpoint", result.last_checkpoint),
        ):
            if path is not None:
                job.record.artifacts[name] = str(path)
        job.model, job.tokenizer = result.model, result.tokenizer
        job.final_loss, job.global_step = result.final_loss, result.global_step
        job.folder.save_record(job.record)


def _plan_line(job_plan: Plan) -> str:
    where = job_plan.placement if job_plan.placement != "local" else f"local ({job_plan.device})"
    parts = [where, job_plan.method, f"~{job_plan.memory_needed_gb:.1f} GB needed"]
    if job_plan.gpu_candidates and job_plan.placement == "runpod":
        parts.append(f"GPU {job_plan.gpu_candidates[0].gpu_type_id}")
    if job_plan.estimated_cost_usd is not None and job_plan.placement == "runpod":
        parts.append(f"~${job_plan.estimated_cost_usd:.2f}")
    return ", ".join(parts)


def end_unowned_job(job_id: str, reason: str) -> bool:
    """Mark a job whose process died as failed (its pod was ended from outside, e.g. by cleanup).

    Returns False when there is no such job here, it already ended, or a live process owns it.
    """
    try:
        job = Job.load(job_id, reattach=False)
    except JobNotFoundError:
        return False
    try:
        if job.done or job.record.owner_alive():
            return False
        job.record.error, job.record.error_type = reason, "BackendError"
        job.log.emit("error", message=reason, error_type="BackendError")
        job._set_state("failed", reason)
        return True
    finally:
        job.log.close()


# ---------------------------------------------------------------------- exit safety
def live_jobs() -> list[Job]:
    with _live_lock:
        return list(_live_jobs)


def _stop_live_jobs_at_exit(grace_seconds: float = 120.0) -> None:
    """At interpreter exit, stop running jobs so no pod outlives the process that owns it."""
    jobs = live_jobs()
    for job in jobs:
        job.cancel("the Python process is exiting")
    deadline = time.monotonic() + grace_seconds
    for job in jobs:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            job.wait(timeout=remaining)
        except (UnslothNbError, TimeoutError, BackendError):
            pass


atexit.register(_stop_live_jobs_at_exit)
