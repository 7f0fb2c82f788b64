"""Starting, loading and driving jobs: the one start flow, the state machine, the exit hook.

``launch`` is the start flow every entry point uses (the CLI, the magic, the panel,
the Python API): prepare (:mod:`.preflight`) -> plan -> confirm a rental (a callback
the entry point supplies) -> start. :func:`start_job` runs a :class:`JobController`
on the private controller loop; the backend reports through the job's EventLog, which
every view reads. At interpreter exit one hook ends every backend's live jobs.

States (``unsloth_nb.jobrun.lifecycle``)::

    created -> planning -> [provisioning -> starting -> uploading] -> starting -> training
            -> saving -> [downloading -> terminating] -> succeeded | failed | cancelled
"""

from __future__ import annotations

import asyncio
import atexit
import contextvars
import os
import socket
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from unsloth_nb.backends.base import JobContext, JobHooks
from unsloth_nb.backends.registry import get_backend, loaded_backends
from unsloth_nb.config import TrainConfig
from unsloth_nb.credentials import has_secret, redact
from unsloth_nb.engine.quiet import capture_job_output
from unsloth_nb.errors import BackendError, JobCancelledError, JobNotFoundError, UnslothNbError
from unsloth_nb.jobrun.costs import CostLedger
from unsloth_nb.jobrun.job import Job, find_live_job, job_ended, live_jobs
from unsloth_nb.jobrun.preflight import Prepared, ask_for_secrets, prepare
from unsloth_nb.jobrun.runtime import run_in_thread, submit
from unsloth_nb.jobrun.store import JobFolder, JobRecord, jobs_root, new_job_id
from unsloth_nb.phases.base import Phase, PhaseContext, PhaseResult
from unsloth_nb.phases.runner import client_phases, run_phases
from unsloth_nb.planning.planner import Plan, plan
from unsloth_nb.planning.rental import rental_note, rental_question

#: Asked before a rental that needs confirming: (the prepared job, the question) -> start now?
#: A front end that asks asynchronously (buttons) returns False and calls :func:`start_job` on "yes".
Confirm = Callable[[Prepared, str], bool]


# ---------------------------------------------------------------------- the start flow
def launch(
    config: TrainConfig,
    base_dir: str | Path | None = None,
    *,
    confirm: Confirm | None,
    say: Callable[[str], None] = lambda _line: None,
    on_plan: Callable[[Prepared], None] | None = None,
    prompt_for_secrets: bool = False,
    earlier: Sequence[UnslothNbError] = (),
    context: contextvars.Context | None = None,
    judge_yes: bool = False,
) -> Job | None:
    """Prepare, show the plan (``on_plan``), ask for missing keys, confirm a rental when it must be, start.

    Returns None when the rental was not confirmed. ``earlier`` are the mistakes the
    entry point already found (flags, fields): :func:`prepare` raises them together
    with its own, so one run names them all. With ``prompt_for_secrets`` the missing
    keys are asked for in a hidden prompt only after the plan (and its price) was
    shown. ``confirm=None`` never asks (``--yes``). A rental that starts without asking
    is said through ``say`` (one line naming the threshold), so spending never starts silently.
    ``judge_yes`` (the front end's ``--yes``): the judge's cost estimate is not asked about either.
    """
    prepared = prepare(config, base_dir, prompt_for_secrets=prompt_for_secrets, earlier=earlier)
    prepared.judge_yes = judge_yes
    if on_plan is not None:
        on_plan(prepared)
    if prepared.missing_secrets:
        prepared.ask_for_secrets()
    return confirm_and_start(prepared, confirm=confirm, say=say, context=context)


def confirm_and_start(
    prepared: Prepared,
    *,
    confirm: Confirm | None,
    say: Callable[[str], None] = lambda _line: None,
    context: contextvars.Context | None = None,
) -> Job | None:
    """The start flow after preflight: a rental above ``runpod.confirm_above_usd`` asks first."""
    if confirm is not None:
        question = rental_question(prepared.plan, prepared.config)
        if question is not None:
            if not confirm(prepared, question):
                return None
        elif (note := rental_note(prepared.plan, prepared.config)) is not None:
            say(note)
    return start_job(prepared, context=context)


def start_job(prepared: Prepared, *, context: contextvars.Context | None = None) -> Job:
    """Create the job folder and run the job on the controller loop; returns at once.

    Refuses (MissingSecretError naming every one) while a key the job needs is still missing.
    """
    prepared.refuse_missing_secrets()
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
    job = Job(record, folder, config, prepared.plan)
    job.log.emit("status", state="created", placement=prepared.plan.placement)
    if prepared.heldout is not None:
        prepared.heldout.save(folder.path)  # evaluation never scores a row the model trained on
        job.log.emit("log", level="info", message=prepared.heldout.describe(), source="judge")
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
        shared=_evaluation_shared(job, heldout=prepared.heldout, yes=prepared.judge_yes),
    )
    # What libraries print while the job runs goes to its log and output.log, not the cell.
    capture_job_output(ctx.context, job.log, folder.path / "output.log")
    job._drive(submit(JobController(job, ctx).run(), context=ctx.context))
    return job


def load_job(job_id: str, *, reattach: bool = True) -> Job:
    """A handle on a job from its folder (for example after a kernel restart).

    A job on a machine that outlives this process (a RunPod pod) keeps training when
    the process that ran it died (a restarted kernel, a killed script); with
    ``reattach`` (the default) this process takes it over: it reconnects, continues the
    event stream where the job folder's record of it ends, downloads the outputs and
    ends the machine, as the original process would have. ``reattach=False`` only
    reads the folder (for listings: a short-lived process that reattached would end
    the pod when it exits). A job that trained inside the dead process is marked failed.
    """
    live = find_live_job(job_id)
    if live is not None:
        return live
    folder = JobFolder.open(job_id)
    record = folder.load_record()
    try:
        config = TrainConfig.from_dict(folder.config())
    except UnslothNbError:
        config = TrainConfig()
    ours = record.pid == os.getpid() and record.host == socket.gethostname()
    owned_elsewhere = not record.terminal and not ours and record.owner_alive()
    job = Job(record, folder, config, follow_only=owned_elsewhere or record.terminal)
    if not record.terminal and not ours and not owned_elsewhere:
        if get_backend(record.placement).in_process:
            job._set_state("failed", f"the process that ran it (pid {record.pid}) ended before the job finished")
        elif reattach:
            _reattach(job)
    return job


def _reattach(job: Job) -> None:
    """Become the job's owner and follow it on the controller loop.

    The placement's keys are asked for first (a restarted kernel has lost a prompted one):
    without them nothing could be followed or ended, and the job must not be marked failed.
    """
    why = f"to reattach to job {job.id} and end what it runs on"
    needs = get_backend(job.placement).secrets(job.config)
    ask_for_secrets([(need.name, why) for need in needs if not has_secret(need.name)], can_prompt=True)
    previous = job.record.pid
    job.record.pid, job.record.host = os.getpid(), socket.gethostname()
    job.folder.save_record(job.record)
    output_dir = Path(job.record.output_dir) if job.record.output_dir else job.folder.outputs
    ctx = JobContext(
        job_id=job.id,
        config=job.config,
        plan=None,
        dataset=None,
        log=job.log,
        folder=job.folder,
        output_dir=output_dir,
        stop_event=job.stop_event,
        stop_reasons=job.stop_reasons,
        set_state=job._set_state,
        record=job.record,
        shared=_evaluation_shared(job),
        plan_again=lambda summary: plan(job.config, summary),
    )
    job.log.emit(
        "log",
        level="info",
        message=f"reattaching: the process that ran this job (pid {previous}) is gone",
        source="controller",
    )
    job._drive(submit(JobController(job, ctx).reattach(), context=ctx.context))


def _evaluation_shared(job: Job, *, heldout: object = None, yes: bool = False) -> dict[str, object]:
    """What the evaluation phases read from ``ctx.shared``: the held-out questions, where the report goes
    (the job folder), and whether the front end's --yes also covers the judge's estimate."""
    shared: dict[str, object] = {"job_folder": job.folder.path, "job_id": job.id, "judge_yes": yes}
    if heldout is not None:
        shared["heldout"] = heldout
    return shared


# ---------------------------------------------------------------------- the controller
class JobController:
    """Runs one job from planning to an end state; every path ends in a terminal state."""

    def __init__(self, job: Job, ctx: JobContext) -> None:
        self.job = job
        self.ctx = ctx

    async def run(self) -> Job:
        ctx = self.ctx

        async def start() -> PhaseResult:
            assert ctx.plan is not None and ctx.dataset is not None
            self.job._set_state("planning")
            ctx.emit("summary", **ctx.dataset.summary.to_event())
            ctx.emit("log", level="info", message=f"plan: {_plan_line(ctx.plan)}", source="planner")
            for warning in ctx.plan.warnings:
                ctx.emit("log", level="warning", message=warning, source="planner")
            before, after = client_phases(ctx.config)
            result = await self._on_client(before, PhaseResult())
            if result.stopped:  # stopped while the teacher worked: nothing to train
                return result
            result = result.merge(await get_backend(ctx.plan.placement).run(ctx))
            return await self._on_client(after, result)

        return await self._drive(start)

    async def reattach(self) -> Job:
        """Follow a job another process started, from where it is now to its end."""

        async def follow() -> PhaseResult:
            result = await get_backend(self.job.placement).reattach(self.ctx)
            return await self._on_client(client_phases(self.ctx.config)[1], result)

        return await self._drive(follow)

    async def _on_client(self, phases: list[Phase], result: PhaseResult) -> PhaseResult:
        """Run phases that belong on this machine (a teacher before the model's phases, a judge after)."""
        if not phases:
            return result
        ctx = self.ctx
        phase_ctx = PhaseContext(
            config=ctx.config,
            output_dir=ctx.output_dir,
            hooks=JobHooks(ctx),
            dataset=ctx.dataset,
            shared=ctx.shared,
            result=result,
        )
        merged = await run_in_thread(run_phases, phase_ctx, phases, name=f"unsloth-nb-client-{ctx.job_id}", context=ctx.context)
        ctx.dataset = phase_ctx.dataset
        return merged

    async def _drive(self, body: Callable[[], Awaitable[PhaseResult]]) -> Job:
        job, ctx = self.job, self.ctx
        final, reason = "failed", None
        try:
            result = await body()
            self._record_result(result)
            if ctx.stop_requested or result.stopped:
                final, reason = "cancelled", result.stop_reason or "stopped by the user; checkpoint and adapter saved"
            else:
                final, reason = "succeeded", result.note
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
            job.record.costs = CostLedger.from_events(job.log.read(kinds={"cost"})).to_json()
            job._set_state(final, reason)
            job.log.close()
            job_ended(job)
        return job

    def _fail(self, message: str, error_type: str, log_tail: str | None = None) -> None:
        self.job.record.error = message
        self.job.record.error_type = error_type
        if log_tail:
            self.ctx.emit("error", message=message, error_type=error_type, log_tail=redact(log_tail))
        else:
            self.ctx.emit("error", message=message, error_type=error_type)

    def _record_result(self, result: PhaseResult) -> None:
        job, ctx = self.job, self.ctx
        job.record.result = result.to_json()
        for name, artifact in result.artifacts.items():
            job.record.artifacts[name] = str(artifact.local_path(ctx.output_dir))
        job.model, job.tokenizer = ctx.shared.get("model"), ctx.shared.get("tokenizer")
        loss, step = result.metrics.get("final_loss"), result.metrics.get("global_step")
        job.final_loss = float(loss) if isinstance(loss, int | float) else None
        job.global_step = int(step) if isinstance(step, int | float) else 0
        job.folder.save_record(job.record)


def _plan_line(job_plan: Plan) -> str:
    backend = get_backend(job_plan.placement)
    parts = [backend.where(job_plan), job_plan.method, f"~{job_plan.memory_needed_gb:.1f} GB needed"]
    if job_plan.estimated_cost_usd is not None and backend.rents:
        parts.append(f"~${job_plan.estimated_cost_usd:.2f}")
    return ", ".join(parts)


def end_unowned_job(job_id: str, reason: str) -> bool:
    """Mark a job whose process died as failed (its pod was ended from outside, e.g. by cleanup).

    Returns False when there is no such job here, it already ended, or a live process owns it.
    """
    try:
        job = load_job(job_id, reattach=False)
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


# ---------------------------------------------------------------------- exit safety: one registry for every backend
def _stop_live_jobs_at_exit(grace_seconds: float = 120.0) -> None:
    """At interpreter exit, end what costs money at once, then stop running jobs and wait for them.

    A Jupyter kernel being shut down is killed seconds later, so each backend first ends
    what must not outlive this process (pods: terminated without saving); the jobs then
    end on their own, within the grace period.
    """
    for backend in loaded_backends():
        try:
            backend.end_all_now("the Python process is exiting")
        except Exception as exc:  # one backend's failure must not keep another's machines billing
            print(f"unsloth-nb: ending {backend.name} jobs at exit failed: {exc}", file=sys.stderr)
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


__all__ = ["Confirm", "JobController", "confirm_and_start", "end_unowned_job", "launch", "load_job", "start_job"]
