"""What a started job displays: status line, progress bar, live loss chart, Stop, a log.

The magic, the panel and ``Job.show()`` all display this one view. It is a
subscriber of the job's EventLog with replay, so a view made after the run (a
reattach after a kernel restart, ``unsloth_nb.load_job(id).show()``) draws the whole history
exactly as a live one would.

Why it is built this way:

* **Events are folded, widgets are pushed later.** A subscriber runs on the
  writer's thread (the training thread), so it only updates plain Python state
  under a lock. A flusher thread copies that state into the widgets at most once
  per ``interval`` (0.5 s: at most 2 updates a second however fast a trainer
  logs), and only values that changed leave the kernel. The chart's new rows are
  sent in the same flush, so the status line and the curve show the same step.
* **Few widgets, the rest when needed.** The status line, progress bar and outcome are
  one HTML value; the chart appears with the first logged step; the summary, the
  judge's panel, Resume and Try it are made when the job ended (:mod:`.view_widgets`).
* **The log is a bounded window, sent only when open.** ``Output.append_stdout``
  resends every line ever written on each call (O(n²) bytes over a run). Here the
  log is the last ``max_log_lines`` lines in one HTML widget, pushed only while the
  folded Log is open (opening it pushes once): a run's library chatter costs no
  traffic unless someone reads it.
* **The saved notebook shows the end.** Each display has a display id; when the job
  ends the view replaces its output with the final bundle (status, summary, a static
  picture of the chart, and the live widget again), so a notebook saved or converted
  afterwards shows the result, not the first frame.
* **No widget, no problem.** Where widgets cannot render (terminal IPython,
  nbconvert output, GitHub) the mimebundle still carries a text status line and
  a static HTML snapshot with the chart's inline-SVG picture.
* **After the run.** A summary (runtime, final/min/eval loss, tokens seen, peak
  memory), **Resume** for a stopped in-kernel job with a checkpoint, and **Try it**:
  ask the fine-tuned model (and the base model beside it, with the adapter switched
  off) a question without leaving the view.
"""

from __future__ import annotations

import contextvars
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unsloth_nb.jobrun.events import read_events_file
from unsloth_nb.jobrun.job import Job, set_job_display
from unsloth_nb.jobrun.lifecycle import TERMINAL_STATES
from unsloth_nb.ui.chart import widgets_can_render
from unsloth_nb.ui.final_render import await_final
from unsloth_nb.ui.job_facts import MAX_LOG_LINES, JobFacts
from unsloth_nb.ui.resume import last_checkpoint, resume_job
from unsloth_nb.ui.try_it import Asker, TryIt
from unsloth_nb.ui.view_html import header_html, log_html, message_html, short_model, status_html, summary_html
from unsloth_nb.ui.view_widgets import Frame, ViewWidgets

if TYPE_CHECKING:
    from unsloth_nb.ui.chart import LossChart

__all__ = ["MAX_LOG_LINES", "UPDATE_INTERVAL", "JobView", "widgets_can_render"]

#: Seconds between two widget updates (≤ 2 per second).
UPDATE_INTERVAL = 0.5
#: While a job runs, the elapsed time and ETA refresh this often even without events. Every refresh is
#: one message (~1.3 kB with its envelope): each second would be 4.7 MB an hour of training for a clock.
IDLE_REFRESH = 5.0


class JobView(JobFacts):
    """Status, progress, loss chart, Stop and log of one job, live while it runs.

    ``interval`` is the least time between two widget updates; ``max_log_lines``
    bounds the log window. :meth:`flush` pushes the current state at once (the
    flusher thread calls it; tests and the end of a run do too).
    """

    def __init__(self, job: Job, *, interval: float = UPDATE_INTERVAL, max_log_lines: int = MAX_LOG_LINES) -> None:
        from unsloth_nb.ui.chart import LossChart

        super().__init__(job, max_log_lines=max_log_lines)
        self.interval = interval
        # Sent by this view's flush, right after the status line: both show the same step (see _push).
        self.chart: LossChart = LossChart(title=f"{short_model(job.config.model.name)} · job {job.id}", autosend=False)
        self.resumed: list[JobView] = []
        self.asker = Asker(job)
        self._context = contextvars.copy_context()
        self._flush_lock = threading.Lock()
        self._closing = threading.Event()
        self._widgets: ViewWidgets | None = None
        self._flusher: threading.Thread | None = None
        self._handles: list[Any] = []
        self._final_shown = False
        self._follow()
        self.chart.attach(job.log)
        # A job run by another process (the CLI, a kernel that was restarted) is followed through its file.
        self._follow_file = not self.ended and not job.runs_here

    @property
    def answers(self) -> list[dict[str, str]]:
        """Every question asked through Try it, with the answers."""
        return self.asker.answers

    # ------------------------------------------------------------------ widgets
    @property
    def widget(self) -> Any:
        """The ipywidgets box (built on first use, then shared by every display)."""
        return self._ui().box

    @property
    def status_html(self) -> Any:
        """The status line, progress bar and outcome: one HTML widget."""
        return self._ui().header

    message_html = status_html

    @property
    def stop_button(self) -> Any:
        return self._ui().stop

    @property
    def resume_button(self) -> Any:
        """Resume, once a stopped or failed job with a checkpoint offers it (None before)."""
        return self._ui().resume

    @property
    def log_html(self) -> Any:
        return self._ui().log

    @property
    def log_box(self) -> Any:
        return self._ui().log_box

    @property
    def summary_html(self) -> Any:
        """The end-of-run summary (None until the job ended with a logged step)."""
        return self._ui().summary

    @property
    def try_it(self) -> TryIt | None:
        """Try it, once the job ended with a model to ask (None before)."""
        return self._ui().try_it

    def _ui(self) -> ViewWidgets:
        with self._lock:
            built = self._widgets
            if built is None:
                built = self._widgets = self._build()
                fresh = True
            else:
                fresh = False
        if fresh:
            ended = self.ended  # read first: an end landing during this flush is left to the flusher
            self.flush()
            if not ended and not self._closing.is_set():
                self._start_flusher()
        return built

    def _build(self) -> ViewWidgets:
        return ViewWidgets(
            self.chart,
            on_stop=self.stop,
            on_resume=self._on_resume,
            on_log_open=self._send_log,
            ask=self.ask,
            note=lambda: self.asker.note,
        )

    def flush(self) -> None:
        """Copy the folded state into the widgets now (unchanged values send nothing)."""
        with self._flush_lock:
            ui = self._widgets
            if ui is not None:
                self._push(ui)

    def _push(self, ui: ViewWidgets) -> None:
        log_open = ui.log_open
        with self._lock:
            self._dirty.clear()
            fig = self.figures
            done = fig.state in TERMINAL_STATES
            frame = Frame(
                header=header_html(self.parts(), fig.step, fig.total_steps or 0, self.outcome()),
                done=done,
                failed=fig.state == "failed",
                stopping=self._stop_requested,
                summary=self.summary(),
                has_metrics=self.chart.has_metrics,
                evaluation=self.evaluation_html(),
                log_text="\n".join(self.log_lines) if log_open else None,
            )
            # The chart's new rows go in the same flush as the status line, so the page never shows "step 3" above
            # a curve at step 8; and at this view's pace (≤ 2 a second), not the chart's own 4. Sent under our lock:
            # the writer thread, which feeds us first and the chart second, cannot put the chart ahead of the frame.
            self.chart.flush()
        if done:
            frame.can_resume, frame.can_try = self.can_resume(), self.can_try()
        ui.push(frame)

    def _send_log(self) -> None:
        ui = self._widgets
        if ui is None:
            return
        with self._lock:
            text = "\n".join(self.log_lines)
        ui.log.value = log_html(text)

    def _start_flusher(self) -> None:
        context = contextvars.copy_context()
        thread = threading.Thread(
            target=context.run, args=(self._run_flusher,), name=f"unsloth-nb-view-{self.job.id}", daemon=True
        )
        self._flusher = thread
        thread.start()

    def _run_flusher(self) -> None:
        """Flush when something changed, at most once per interval, until the job ends."""
        while not self._closing.is_set():
            self._dirty.wait(IDLE_REFRESH)
            if self._follow_file:
                self._read_file()
            # Read before flushing: an end that arrives during the flush gets one more flush,
            # or the page would keep showing the state before it.
            ended = self.ended
            try:
                self.flush()
            except Exception:  # a closed comm (kernel shutting down) must not spin
                return
            if ended:
                self.chart.flush()
                self.show_final()
                return
            self._closing.wait(self.interval)

    def _read_file(self) -> None:
        """New events of a job another process runs, read from its JSONL file."""
        path = self.job.folder.events_path
        if not path.exists():
            return
        new = [e for e in read_events_file(path) if e.seq > self.last_seq]
        for event in new:
            self._on_event(event)
        if new:
            self.chart.add_many(new)

    # ------------------------------------------------------------------ control
    def stop(self) -> None:
        """What the Stop button does: ask the job to stop (it saves a checkpoint first)."""
        if self.ended:
            return
        self.job.cancel()
        with self._lock:
            self._stop_requested = True
        self._dirty.set()
        ui = self._widgets
        if ui is not None:
            ui.stop.disabled = True
            ui.stop.description = "Stopping…"

    def resume_checkpoint(self) -> Path | None:
        """The newest checkpoint this job left on this machine (what Resume continues from)."""
        with self._lock:
            checkpoints = list(self.checkpoints)
        return last_checkpoint(self.job, checkpoints)

    def can_resume(self) -> bool:
        """A stopped or failed in-kernel job with a checkpoint on disk (RunPod jobs resume on their own)."""
        return self.state in ("cancelled", "failed") and self._backend.in_process and self.resume_checkpoint() is not None

    def resume(self) -> Job:
        """Start a new job with this one's settings that continues from its last checkpoint."""
        job = resume_job(self.job, self.resume_checkpoint(), self._context)
        self.resumed.append(JobView(job))
        return job

    def _on_resume(self) -> None:
        ui = self._widgets
        if ui is None:
            return
        ui.resume.disabled = True
        try:
            job = self.resume()
        except Exception as exc:  # shown where the click was, not as a traceback in the log
            ui.resume.disabled = False
            ui.header.value += message_html(f"Could not resume: {exc}", True)
            return
        ui.resume.description = f"Resumed as {job.id}"
        ui.after.append(self.resumed[-1].widget)
        ui.arrange()

    def can_try(self) -> bool:
        """A model to ask: the one trained in this kernel, or a saved adapter on disk."""
        return self.asker.available(self.state)

    def ask(self, question: str, *, max_new_tokens: int | None = None) -> dict[str, str]:
        """Answers of the fine-tuned model and, with its adapter switched off, of the base model (as ``generate:`` says)."""
        return self.asker.ask(question, max_new_tokens=max_new_tokens)

    def close(self) -> None:
        """Stop following the job and close the widgets (their views disappear)."""
        self._closing.set()
        self._dirty.set()
        unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()
        self.chart.close()
        with self._flush_lock:
            ui, self._widgets = self._widgets, None
        if ui is not None:
            ui.close()

    # ------------------------------------------------------------------ display
    def display(self) -> None:
        """Show the view under the current cell (widgets where they render, text elsewhere).

        Returns nothing, so ``job.show()`` as a cell's last line draws once. The display
        keeps an id: when the job ends, its output is replaced by the final state.
        """
        from IPython.display import display

        handle = display(self, display_id=True)
        if handle is not None and not self.ended:
            self._handles.append(handle)
            await_final(self)

    def show_final(self) -> None:
        """Replace every live display of this view with the final bundle (what a saved notebook keeps).

        The flusher calls it the moment the job ends (a live JupyterLab redraws at once); the
        end of the next cell calls it again (:func:`_update_finished_views`), because a headless
        runner (nbclient, nbconvert) only applies updates that carry the running cell's id.
        """
        with self._lock:
            if not self.ended:
                return
            self._final_shown = True
            handles = list(self._handles)
        for handle in handles:
            try:
                handle.update(self)
            except Exception:  # a kernel shutting down: the live view already shows the end
                return

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        data: dict[str, Any] = {"text/plain": self.text(), "text/html": self.static_html()}
        if widgets_can_render():
            bundle = self.widget._repr_mimebundle_()
            data.update({key: value for key, value in (bundle or {}).items() if key != "text/plain"})
        return data

    def static_html(self) -> str:
        """A snapshot that needs no JavaScript: status line, outcome, summary and the chart's SVG picture."""
        with self._lock:
            failed = self.figures.state == "failed"
        summary = self.summary()
        return (
            '<div class="unsloth-nb-job-static">'
            + status_html(self.parts())
            + message_html(self.outcome(), failed)
            + (summary_html(summary) if summary else "")
            + (self.chart.static_html() if self.chart.has_metrics else "")
            + self.evaluation_html()
            + "</div>"
        )

    def __repr__(self) -> str:
        return f"<JobView {' · '.join(self.parts())}>"


def show_job(job: Job) -> None:
    """How a job displays itself in a notebook (``job.show()``, a job as a cell's value).

    Returns nothing: a returned view would be displayed a second time as the cell's value.
    """
    JobView(job).display()


set_job_display(show_job)
