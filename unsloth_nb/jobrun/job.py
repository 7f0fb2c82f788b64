"""The Job handle users hold: watch a job, wait for it, stop it, show it.

The controller (:mod:`unsloth_nb.jobrun.controller`) starts, loads and drives jobs; this
module holds only the handle, the set of jobs this process drives and the display hook
the notebook layer registers (the core never imports ``ui``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unsloth_nb.backends.registry import get_backend
from unsloth_nb.config import TrainConfig
from unsloth_nb.errors import JobCancelledError, JobFailedError, UnslothNbError
from unsloth_nb.jobrun.events import Event, EventLog
from unsloth_nb.jobrun.lifecycle import JOB_STATES, TERMINAL_STATES
from unsloth_nb.jobrun.store import JobFolder, JobRecord

if TYPE_CHECKING:
    from unsloth_nb.planning.planner import Plan

_live_jobs: set[Job] = set()
_live_lock = threading.Lock()
_display: Callable[[Job], Any] | None = None


def set_job_display(show: Callable[[Job], Any] | None) -> None:
    """How ``job.show()`` (and a job as a cell's value) displays itself; the notebook layer sets it."""
    global _display
    _display = show


def live_jobs() -> list[Job]:
    """The jobs this process drives (started or reattached) and that have not ended."""
    with _live_lock:
        return list(_live_jobs)


def find_live_job(job_id: str) -> Job | None:
    with _live_lock:
        return next((job for job in _live_jobs if job.id == job_id), None)


def job_ended(job: Job) -> None:
    """The controller is done with the job: this process no longer drives it."""
    with _live_lock:
        _live_jobs.discard(job)


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
        self.model: Any = None  # in-process jobs: the trained model and tokenizer (from the phases' shared objects)
        self.tokenizer: Any = None
        self.final_loss: float | None = None
        self.global_step: int = 0
        self._future: concurrent.futures.Future[Job] | None = None
        self._state_lock = threading.Lock()

    def _drive(self, future: concurrent.futures.Future[Job]) -> None:
        """This process now runs the job (the controller started or reattached it)."""
        with _live_lock:
            _live_jobs.add(self)
        self._future = future

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
                + (f", {hint}" if (hint := get_backend(self.placement).stop_hint()) else "")
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

    # ------------------------------------------------------------------ asking the model
    def chat(self, message: str, *, base: bool = False, **generate: Any) -> str:
        """The fine-tuned model's answer, sampled as the job's ``generate:`` section says.

        Keywords override that section for this answer: ``job.chat("Hi", temperature=0, max_new_tokens=256)``.
        While ``serve()`` runs an endpoint for this job the answer comes from there (``base=True``: from its base
        model on the same endpoint); otherwise from the model in this kernel or the saved adapter.
        """
        from unsloth_nb.backends.runpod_serverless.serve import chat as served_chat
        from unsloth_nb.backends.runpod_serverless.serve import is_served
        from unsloth_nb.engine.chat import chat, chat_settings

        if is_served(self):
            settings = chat_settings(self.config.generate, generate)
            return served_chat(self, message, base=base, max_tokens=settings.max_new_tokens)
        if base:
            raise UnslothNbError(
                "base=True asks the base model of a served endpoint: call job.serve() first "
                "(in a notebook, Try it in the job view answers with the base model beside the fine-tune)"
            )
        return chat(self, message, **generate)

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, **kwargs: Any) -> Any:
        """Judge this job's fine-tune against its base (see ``unsloth_nb.jobrun.evaluation.evaluate_job``); returns the report."""
        from unsloth_nb.jobrun.evaluation import evaluate_job

        return evaluate_job(self, **kwargs)

    @property
    def evaluation(self) -> Any:
        """The judge's report (``.table`` is a pandas DataFrame), or None before an evaluation."""
        from unsloth_nb.evaluate.report import EvaluationReport

        return EvaluationReport.load(self.folder.path)

    # ------------------------------------------------------------------ serving
    def serve(self, **kwargs: Any) -> Any:
        """Serve this job's adapter on a RunPod serverless vLLM endpoint; prints its OpenAI-compatible base URL.

        See ``unsloth_nb.backends.runpod_serverless.serve.serve`` for the options; ``stop_serving()`` deletes it.
        """
        from unsloth_nb.backends.runpod_serverless.serve import serve

        return serve(self, **kwargs)

    def stop_serving(self) -> bool:
        """Delete the endpoint ``serve()`` created; False when nothing was served."""
        from unsloth_nb.backends.runpod_serverless.serve import stop_serving

        return stop_serving(self)

    # ------------------------------------------------------------------ display
    def show(self) -> None:
        """Display the job's live view (status, progress, chart, Stop) in a notebook.

        The notebook layer says how (:func:`set_job_display`); this package never imports it.
        Returns nothing: a returned view would be displayed a second time as the cell's value.
        """
        if _display is None:
            raise UnslothNbError("no notebook view is registered for jobs; import unsloth_nb.ui.view first")
        _display(self)

    def _ipython_display_(self) -> None:
        self.show()

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.state} {self.placement} model={self.config.model.name!r}>"


__all__ = ["Job", "find_live_job", "job_ended", "live_jobs", "set_job_display"]
