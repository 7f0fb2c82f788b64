"""What a job's events say, folded into plain state: the status line, the outcome, the end-of-run summary.

:class:`JobFacts` subscribes to the job's EventLog with replay, so facts made after the run (a reattach
after a kernel restart, ``unsloth_nb.load_job(id).show()``) read exactly as live ones. A subscriber runs
on the writer's thread (the training thread), so folding only updates Python state under a lock and sets
``_dirty``; whoever displays the facts (:class:`~unsloth_nb.ui.view.JobView`) decides when to draw.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from unsloth_nb.backends.registry import get_backend
from unsloth_nb.jobrun.events import Event
from unsloth_nb.jobrun.job import Job
from unsloth_nb.jobrun.lifecycle import TERMINAL_STATES
from unsloth_nb.ui.chart import widgets_can_render
from unsloth_nb.ui.console import JobStatus, format_seconds
from unsloth_nb.ui.view_html import log_lines, message_html, short_model

#: Lines the log window keeps; older ones scroll out (the job folder keeps them all).
MAX_LOG_LINES = 200
#: What a stop asked for by the exit handler means to someone reading the view later.
_EXIT_STOP = "the Python process is exiting"


class JobFacts:
    """The folded state of one job's events, and the sentences a user reads about it."""

    def __init__(self, job: Job, *, max_log_lines: int = MAX_LOG_LINES) -> None:
        self.job = job
        self.figures = JobStatus()
        self.log_lines: deque[str] = deque(maxlen=max_log_lines)
        self.artifacts: dict[str, str] = {}
        self.checkpoints: list[str] = []
        self.first_time: float | None = None
        self.train_start: float | None = None
        self.end_time: float | None = None
        self.reason: str | None = None
        self.last_seq = -1
        self._stop_requested = False
        self._lock = threading.RLock()
        self._dirty = threading.Event()
        self._plan = _plan_facts(job)
        self._backend = get_backend(job.placement)
        self._evaluation: dict[str, Any] | None = None  # the judge's last result event
        self._evaluation_html: str | None = None
        self._unsubscribe: Callable[[], None] | None = None

    def _follow(self) -> None:
        """Subscribe with replay; holding our lock through the replay makes a writer's new events wait."""
        with self._lock:
            self._unsubscribe = self.job.log.subscribe(self._on_event, replay=True)

    # ------------------------------------------------------------------ events
    def _on_event(self, event: Event) -> None:
        with self._lock:
            if event.seq <= self.last_seq:
                return
            self.last_seq = event.seq
            if self.first_time is None:
                self.first_time = event.time
            self.figures.update(event)
            self.log_lines.extend(log_lines(event))
            if event.kind == "artifact" and event.data.get("name"):
                self.artifacts[str(event.data["name"])] = str(event.data.get("path") or event.data.get("url") or "")
            elif event.kind == "evaluation" and event.data.get("stage") in ("done", "failed"):
                self._evaluation, self._evaluation_html = dict(event.data), None
            elif event.kind == "checkpoint" and event.data.get("path"):
                self.checkpoints.append(str(event.data["path"]))
            elif event.kind == "status" and event.data.get("state") == "training" and self.train_start is None:
                self.train_start = event.time
            elif event.kind == "status" and event.data.get("state") in TERMINAL_STATES:
                self.end_time = event.time
                self.reason = event.data.get("reason")
        self._dirty.set()

    @property
    def state(self) -> str:
        return self.figures.state

    @property
    def ended(self) -> bool:
        return self.figures.state in TERMINAL_STATES

    def elapsed(self) -> float | None:
        if self.first_time is None:
            return None
        end = self.end_time if self.end_time is not None else time.time()
        return max(0.0, end - self.first_time)

    # ------------------------------------------------------------------ text
    def parts(self) -> list[str]:
        """The status line's pieces: state, placement, model, GPU and $/h when remote, step, loss, elapsed, ETA."""
        with self._lock:
            fig = self.figures
            device, gpu, usd_per_hour = self._plan
            gpu = fig.gpu or gpu
            usd_per_hour = fig.usd_per_hour if fig.usd_per_hour is not None else usd_per_hour
            parts = [fig.state, f"job {self.job.id}"]
            backend = self._backend
            if backend.rents:
                parts.append(backend.label + (f" {gpu}" if gpu else ""))
                if usd_per_hour is not None:
                    parts.append(f"${usd_per_hour:.2f}/h")
            else:
                parts.append(f"{backend.name} ({device.upper()})" if device else backend.name)
            parts.append(short_model(self.job.config.model.name))
            return parts + fig.progress_parts(self.elapsed())

    def text(self) -> str:
        """Plain-text view: the status line, the outcome and the summary (terminal IPython, nbconvert)."""
        lines = [" · ".join(self.parts())]
        outcome = self.outcome()
        if outcome:
            lines.append(outcome)
        summary = self.summary()
        if summary:
            lines.append(" · ".join(f"{label} {value}" for label, value in summary))
        if self.figures.state not in TERMINAL_STATES and not widgets_can_render():
            lines.append(f"(job.wait() blocks until it ends; unsloth_nb.load_job({self.job.id!r}).show() redraws it)")
        return "\n".join(lines)

    def stop_reason(self) -> str:
        """Why a cancelled job stopped, in the words of what happened (a kernel restart is not the user)."""
        with self._lock:
            reason = self.reason or "cancelled"
            asked = self.figures.stop_request
        if asked and reason.startswith("stopped by the user") and asked != "stopped by the user":
            saved = reason.split(";", 1)[1].strip() if ";" in reason else ""
            if asked == _EXIT_STOP:
                asked = "the kernel's Python process was exiting (a kernel restart or shutdown)"
            return asked + (f"; {saved}" if saved else "")
        return reason

    def outcome(self) -> str:
        """The end of the story: error, stop reason or what was saved."""
        with self._lock:
            if self.figures.state == "failed":
                return f"Error: {self.figures.error or self.reason or 'the job failed'}"
            lines = []
            if self.figures.state == "cancelled":
                reason = self.stop_reason()
                # "Stopped by the user; …", not "Stopped: stopped by the user; …"
                lines.append(reason[0].upper() + reason[1:] if reason.startswith("stopped ") else f"Stopped: {reason}")
            elif self._stop_requested and not self.ended:
                lines.append("Stopping: saving a checkpoint and the adapter first …")
            for name, path in self.artifacts.items():
                lines.append(f"Saved {name}: {path}")
            return "\n".join(lines)

    def summary(self) -> list[tuple[str, str]]:
        """The end-of-run figures (empty until the job ended with at least one logged step)."""
        with self._lock:
            fig = self.figures
            if not self.ended or fig.loss is None:
                return []
            runtime = fig.train_runtime
            if runtime is None and self.train_start is not None and self.end_time is not None:
                runtime = self.end_time - self.train_start
            final = f"{fig.loss:.4f}"
            if fig.loss_step is not None and fig.loss_step != fig.step:
                final += f" (step {fig.loss_step:,})"
            items = [("runtime", format_seconds(runtime)), ("steps", f"{fig.step:,}"), ("final loss", final)]
            if fig.min_loss is not None:
                items.append(("min loss", f"{fig.min_loss[0]:.4f} (step {fig.min_loss[1]:,})"))
            items.append(("eval loss", f"{fig.eval_loss:.4f}" if fig.eval_loss is not None else "–"))
            if fig.num_tokens is not None:
                items.append(("tokens seen", f"{fig.num_tokens:,}"))
            if fig.memory_gb is not None:
                label = "peak GPU memory (reserved)" if (fig.memory_kind or "").startswith("GPU") else "peak RAM"
                items.append((label, f"{fig.memory_gb:.2f} GB"))
            if not fig.costs.empty:
                items.append(("cost", fig.costs.text()))
            return items

    def evaluation_html(self) -> str:
        """The judge's result panel (win/tie/loss bar and table), or why the evaluation failed; empty before."""
        with self._lock:
            event, cached = self._evaluation, self._evaluation_html
        if event is None:
            return ""
        if cached is not None:
            return cached
        if event.get("stage") == "failed":
            text = message_html(f"Evaluation failed (the adapter is kept): {event.get('error')}", True)
        else:
            from unsloth_nb.evaluate.report import EvaluationReport

            report = EvaluationReport.load(self.job.folder.path)
            text = report.panel_html(max_rows=20) if report is not None else ""
        with self._lock:
            self._evaluation_html = text
        return text


# ---------------------------------------------------------------------- helpers
def _plan_facts(job: Job) -> tuple[str | None, str | None, float | None]:
    """(device, first GPU, $/h) from the plan: the Job's own, or plan.json for a loaded job."""
    if job.plan is not None:
        gpu = job.plan.gpu.gpu_type_id if job.plan.gpu is not None else None
        return job.plan.device, gpu, job.plan.usd_per_hour
    try:
        raw = job.folder.read_json("plan.json")
        candidates = raw.get("gpu_candidates") or []
        gpu = candidates[0].get("gpu_type_id") if candidates and isinstance(candidates[0], dict) else None
        return raw.get("device"), gpu, raw.get("usd_per_hour")
    except (OSError, ValueError, AttributeError):
        return None, None, None
