"""What a started job displays: status line, progress bar, live loss chart, Stop, a log.

The magic, the panel and ``Job.show()`` all display this one view. It is a
subscriber of the job's EventLog with replay, so a view made after the run (a
reattach after a kernel restart, ``unsloth_nb.load_job(id).show()``) draws the whole history
exactly as a live one would.

Why it is built this way:

* **Events are folded, widgets are pushed later.** A subscriber runs on the
  writer's thread (the training thread), so it only updates plain Python state
  under a lock. A flusher thread copies that state into the widgets at most once
  per ``interval`` (0.25 s: at most 4 updates a second however fast a trainer
  logs), and only values that changed leave the kernel.
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
import dataclasses
import html
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unsloth_nb.backends.registry import get_backend
from unsloth_nb.jobrun.events import Event, read_events_file
from unsloth_nb.jobrun.job import Job, set_job_display
from unsloth_nb.jobrun.lifecycle import TERMINAL_STATES
from unsloth_nb.ui.chart import widgets_can_render
from unsloth_nb.ui.console import JobStatus, format_seconds

if TYPE_CHECKING:
    from unsloth_nb.ui.chart import LossChart

__all__ = ["MAX_LOG_LINES", "UPDATE_INTERVAL", "JobTable", "JobView", "widgets_can_render"]

#: Seconds between two widget updates (≤ 4 per second).
UPDATE_INTERVAL = 0.25
#: Lines the log widget keeps; older ones scroll out (the job folder keeps them all).
MAX_LOG_LINES = 200
#: While a job runs, the elapsed time and ETA refresh this often even without events.
IDLE_REFRESH = 1.0
#: A single log message is cut at this many characters (a 10 MB repr must not reach the page).
MAX_MESSAGE_CHARS = 2000

_STATE_COLOURS = {"succeeded": "#1a7f37", "failed": "#cf222e", "cancelled": "#9a6700"}
_BAR_STYLES = {"succeeded": "success", "failed": "danger", "cancelled": "warning"}
#: What a stop asked for by the exit handler means to someone reading the view later.
_EXIT_STOP = "the Python process is exiting"


@dataclass
class _Widgets:
    """The ipywidgets of one view (built on first display)."""

    box: Any
    status: Any
    progress: Any
    counter: Any
    stop: Any
    resume: Any
    message: Any
    summary: Any
    chart: Any
    try_it: Any
    log: Any
    log_box: Any
    controls: Any
    evaluation: Any = None


class JobView:
    """Status, progress, loss chart, Stop and log of one job, live while it runs.

    ``interval`` is the least time between two widget updates; ``max_log_lines``
    bounds the log window. :meth:`flush` pushes the current state at once (the
    flusher thread calls it; tests and the end of a run do too).
    """

    def __init__(self, job: Job, *, interval: float = UPDATE_INTERVAL, max_log_lines: int = MAX_LOG_LINES) -> None:
        from unsloth_nb.ui.chart import LossChart

        self.job = job
        self.interval = interval
        self.figures = JobStatus()
        self.log_lines: deque[str] = deque(maxlen=max_log_lines)
        self.artifacts: dict[str, str] = {}
        self.checkpoints: list[str] = []
        self.first_time: float | None = None
        self.train_start: float | None = None
        self.end_time: float | None = None
        self.reason: str | None = None
        self.last_seq = -1
        self.chart: LossChart = LossChart(title=f"{_short_model(job.config.model.name)} · job {job.id}")
        self.resumed: list[JobView] = []
        self.answers: list[dict[str, str]] = []
        #: Said beside Try it's answers: generate.enable_thinking set for a template without the switch.
        self.note: str | None = None
        self._context = contextvars.copy_context()
        self._stop_requested = False
        self._lock = threading.RLock()
        self._flush_lock = threading.Lock()
        self._model_lock = threading.Lock()
        self._loaded: tuple[Any, Any] | None = None
        self._dirty = threading.Event()
        self._closing = threading.Event()
        self._widgets: _Widgets | None = None
        self._flusher: threading.Thread | None = None
        self._handles: list[Any] = []
        self._final_shown = False
        self._plan = _plan_facts(job)
        self._backend = get_backend(job.placement)
        self._evaluation: dict[str, Any] | None = None  # the judge's last result event
        self._evaluation_html: str | None = None
        # Holding our lock through the replay makes a writer's new events wait until the history is in.
        with self._lock:
            self._unsubscribe: Callable[[], None] | None = job.log.subscribe(self._on_event, replay=True)
        self.chart.attach(job.log)
        # A job run by another process (the CLI, a kernel that was restarted) is followed through its file.
        self._follow_file = not self.ended and not job.runs_here

    # ------------------------------------------------------------------ events
    def _on_event(self, event: Event) -> None:
        with self._lock:
            if event.seq <= self.last_seq:
                return
            self.last_seq = event.seq
            if self.first_time is None:
                self.first_time = event.time
            self.figures.update(event)
            self.log_lines.extend(_log_lines(event))
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
            parts.append(_short_model(self.job.config.model.name))
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
                lines.append(f"Stopped: {self.stop_reason()}")
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
            return items

    # ------------------------------------------------------------------ widgets
    @property
    def widget(self) -> Any:
        """The ipywidgets box (built on first use, then shared by every display)."""
        return self._ui().box

    @property
    def status_html(self) -> Any:
        return self._ui().status

    @property
    def progress(self) -> Any:
        return self._ui().progress

    @property
    def stop_button(self) -> Any:
        return self._ui().stop

    @property
    def resume_button(self) -> Any:
        return self._ui().resume

    @property
    def log_html(self) -> Any:
        return self._ui().log

    @property
    def log_box(self) -> Any:
        return self._ui().log_box

    @property
    def message_html(self) -> Any:
        return self._ui().message

    @property
    def summary_html(self) -> Any:
        return self._ui().summary

    @property
    def try_it(self) -> Any:
        return self._ui().try_it

    def _ui(self) -> _Widgets:
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

    def _build(self) -> _Widgets:
        import ipywidgets as widgets

        status = widgets.HTML()
        progress = widgets.IntProgress(value=0, min=0, max=1, layout=widgets.Layout(flex="1 1 auto", width="auto"))
        counter = widgets.Label()
        stop = widgets.Button(description="Stop", icon="stop", button_style="danger", tooltip="Stop after saving a checkpoint")
        stop.on_click(lambda _button: self.stop())
        resume = widgets.Button(
            description="Resume",
            icon="play",
            button_style="primary",
            tooltip="Continue training from the last checkpoint, as a new job",
            layout=widgets.Layout(display="none"),
        )
        resume.on_click(lambda _button: self._on_resume())
        message = widgets.HTML()
        summary = widgets.HTML(layout=widgets.Layout(display="none"))
        chart = self.chart.widget
        chart_box = widgets.VBox([chart], layout=widgets.Layout(display="none", width="100%"))
        try_it = _TryIt(self)
        log = widgets.HTML()
        log_box = widgets.Accordion(children=[log], titles=("Log",), selected_index=None)
        # Folded, the log costs nothing on the wire; opening it sends the window once.
        log_box.observe(lambda change: self._send_log(log) if change["new"] == 0 else None, names="selected_index")
        controls = widgets.HBox([progress, counter, stop, resume], layout=widgets.Layout(align_items="center"))
        evaluation = widgets.HTML()
        box = widgets.VBox([status, controls, message, summary, chart_box, evaluation, try_it.box, log_box])
        box.add_class("unsloth-nb-job")
        return _Widgets(
            box, status, progress, counter, stop, resume, message, summary, chart_box, try_it, log, log_box, controls, evaluation
        )

    def flush(self) -> None:
        """Copy the folded state into the widgets now (unchanged values send nothing)."""
        with self._flush_lock:
            ui = self._widgets
            if ui is not None:
                self._push(ui)

    def _push(self, ui: _Widgets) -> None:
        with self._lock:
            self._dirty.clear()
            fig = self.figures
            status = _status_html(self.parts())
            total = fig.total_steps or 0
            step = fig.step
            done = fig.state in TERMINAL_STATES
            if fig.state == "succeeded" and not total:
                total = step = max(step, 1)
            counter = f"{step:,}/{total:,}" if total else (f"{step:,}" if step else "")
            outcome = self.outcome()
            summary = self.summary()
            log_text = "\n".join(self.log_lines)
            failed = fig.state == "failed"
            stopping = self._stop_requested
        ui.status.value = status
        with ui.progress.hold_sync():
            ui.progress.max = max(total, 1)
            ui.progress.value = min(step, max(total, 1))
            ui.progress.bar_style = _BAR_STYLES.get(fig.state, "")
        ui.counter.value = counter
        ui.message.value = _message_html(outcome, failed)
        if summary:
            ui.summary.value = _summary_html(summary)
            _show(ui.summary, True)
        # No chart until a step is logged; none at all for a job that ended without one.
        _show(ui.chart, self.chart.has_metrics)
        if ui.log_box.selected_index == 0:
            ui.log.value = _log_html(log_text)
        if ui.evaluation is not None:
            ui.evaluation.value = self.evaluation_html()
        if done:
            _show(ui.stop, False)  # a finished job has nothing to stop
            _show(ui.resume, self.can_resume())
            ui.try_it.offer(self.can_try())
            if failed and ui.log_box.selected_index is None:
                ui.log_box.selected_index = 0  # show what went wrong
        elif stopping:
            ui.stop.disabled = True
            ui.stop.description = "Stopping…"

    def _send_log(self, log: Any) -> None:
        with self._lock:
            text = "\n".join(self.log_lines)
        log.value = _log_html(text)

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
            candidates = [self.job.checkpoint_path, *(Path(p) for p in reversed(self.checkpoints))]
        for path in candidates:
            if path is not None and (Path(path) / "trainer_state.json").is_file():
                return Path(path)
        return None

    def can_resume(self) -> bool:
        """A stopped or failed in-kernel job with a checkpoint on disk (RunPod jobs resume on their own)."""
        return self.state in ("cancelled", "failed") and self._backend.in_process and self.resume_checkpoint() is not None

    def resume(self) -> Job:
        """Start a new job with this one's settings that continues from its last checkpoint."""
        from unsloth_nb.errors import UnslothNbError
        from unsloth_nb.jobrun.controller import start_job
        from unsloth_nb.jobrun.preflight import prepare

        checkpoint = self.resume_checkpoint()
        if checkpoint is None:
            raise UnslothNbError(f"job {self.job.id} left no checkpoint to resume from")
        config = self.job.config
        config = dataclasses.replace(config, train=dataclasses.replace(config.train, resume_from=str(checkpoint)))
        try:
            base_dir = self.job.folder.read_json("inputs.json").get("base_dir")
        except (OSError, ValueError, AttributeError):
            base_dir = None
        job = start_job(prepare(config, base_dir), context=self._context)
        view = JobView(job)
        self.resumed.append(view)
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
            ui.message.value = _message_html(f"Could not resume: {exc}", True)
            return
        ui.resume.description = f"Resumed as {job.id}"
        ui.box.children = (*ui.box.children, self.resumed[-1].widget)

    def can_try(self) -> bool:
        """A model to ask: the one trained in this kernel, or a saved adapter on disk."""
        if self.state not in ("succeeded", "cancelled"):
            return False
        return self.job.model is not None or (self.job.adapter_path is not None and self.job.adapter_path.exists())

    def ask(self, question: str, *, max_new_tokens: int | None = None) -> dict[str, str]:
        """Answers of the fine-tuned model and, with its adapter switched off, of the base model.

        Sampled as the job's ``generate:`` section says (the notebooks' settings by default), so Try it answers
        as the user's own notebook cell would.
        """
        from unsloth_nb.engine.generation import thinking_note
        from unsloth_nb.engine.save import generate

        settings = self.job.config.generate
        if max_new_tokens is not None:
            settings = dataclasses.replace(settings, max_new_tokens=max_new_tokens)
        with self._model_lock:
            model, tokenizer = self._model()
            answers = {"fine-tuned": generate(model, tokenizer, question, settings=settings)}
            disable = getattr(model, "disable_adapter", None)
            if disable is not None:
                with disable():
                    answers["base model"] = generate(model, tokenizer, question, settings=settings)
            self.note = thinking_note(tokenizer, settings)
        self.answers.append({"question": question, **answers})
        return answers

    def _model(self) -> tuple[Any, Any]:
        if self.job.model is not None:
            return self.job.model, self.job.tokenizer
        if self._loaded is None:
            from unsloth_nb.engine.save import load_for_inference

            adapter = self.job.adapter_path
            if adapter is None or not adapter.exists():
                raise FileNotFoundError(f"job {self.job.id} has no saved adapter to load")
            self._loaded = load_for_inference(adapter, max_seq_length=self.job.config.train.max_seq_length)
        return self._loaded

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
            ui.try_it.close()
            for widget in (ui.status, ui.progress, ui.counter, ui.stop, ui.resume, ui.message, ui.summary, ui.log):
                widget.close()
            for widget in (ui.log_box, ui.controls, ui.chart, ui.box):
                widget.close()

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
            _await_final(self)

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

    def evaluation_html(self) -> str:
        """The judge's result panel (win/tie/loss bar and table), or why the evaluation failed; empty before."""
        with self._lock:
            event, cached = self._evaluation, self._evaluation_html
        if event is None:
            return ""
        if cached is not None:
            return cached
        if event.get("stage") == "failed":
            text = _message_html(f"Evaluation failed (the adapter is kept): {event.get('error')}", True)
        else:
            from unsloth_nb.evaluate.report import EvaluationReport

            report = EvaluationReport.load(self.job.folder.path)
            text = report.panel_html(max_rows=20) if report is not None else ""
        with self._lock:
            self._evaluation_html = text
        return text

    def static_html(self) -> str:
        """A snapshot that needs no JavaScript: status line, outcome, summary and the chart's SVG picture."""
        with self._lock:
            failed = self.figures.state == "failed"
        summary = self.summary()
        return (
            '<div class="unsloth-nb-job-static">'
            + _status_html(self.parts())
            + _message_html(self.outcome(), failed)
            + (_summary_html(summary) if summary else "")
            + (self.chart.static_html() if self.chart.has_metrics else "")
            + self.evaluation_html()
            + "</div>"
        )

    def __repr__(self) -> str:
        return f"<JobView {' · '.join(self.parts())}>"


class _TryIt:
    """Ask the trained model a question from the job view.

    Its input, button and answer widgets are made when it is first offered (a job that
    ended with a model), so a running job's view opens none of them.
    """

    def __init__(self, view: JobView) -> None:
        import ipywidgets as widgets

        self.view = view
        self.box = widgets.VBox(layout=widgets.Layout(display="none"))
        self.box.add_class("unsloth-nb-try-it")
        self.question: Any = None
        self.ask_button: Any = None
        self.answers: Any = None
        self._thread: threading.Thread | None = None

    def offer(self, available: bool) -> None:
        if available and self.question is None:
            self._build()
        _show(self.box, available)

    def _build(self) -> None:
        import ipywidgets as widgets

        self.question = widgets.Text(
            placeholder="Ask the fine-tuned model a question…", layout=widgets.Layout(flex="1 1 auto", width="auto")
        )
        self.ask_button = widgets.Button(
            description="Ask", icon="comment", tooltip="Answer with the fine-tuned and the base model"
        )
        self.answers = widgets.HTML()
        self.ask_button.on_click(lambda _button: self.submit())
        title = widgets.HTML("<b style='font-size:12px'>Try it</b>")
        self.box.children = (title, widgets.HBox([self.question, self.ask_button]), self.answers)

    def submit(self) -> threading.Thread | None:
        """Answer in a thread, so the kernel (and this button) stay responsive."""
        if self.question is None:
            return None
        question = self.question.value.strip()
        if not question or (self._thread is not None and self._thread.is_alive()):
            return None
        self.ask_button.disabled = True
        self.answers.value = f"<i style='font-size:12px'>Thinking about {html.escape(question)} …</i>"
        context = contextvars.copy_context()
        self._thread = threading.Thread(target=context.run, args=(self._answer, question), daemon=True, name="unsloth-nb-try-it")
        self._thread.start()
        return self._thread

    def _answer(self, question: str) -> None:
        try:
            answers = self.view.ask(question)
        except Exception as exc:
            self.answers.value = _message_html(f"Could not answer: {type(exc).__name__}: {exc}", True)
        else:
            note = self.view.note
            self.answers.value = (_message_html(note, False) if note else "") + _answers_html(question, answers)
        finally:
            self.ask_button.disabled = False

    def close(self) -> None:
        for child in self.box.children:
            for widget in getattr(child, "children", ()):
                widget.close()
            child.close()
        self.box.close()


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


def _short_model(name: str) -> str:
    """A local model folder shows as its name; a Hub id as it is."""
    if name.startswith(("/", ".", "~")) or "\\" in name or name.count("/") > 1:
        return Path(name).name or name
    return name


def _log_lines(event: Event) -> list[str]:
    """The lines an event adds to the log window (metrics and progress go to the chart instead)."""
    data = event.data
    kind = event.kind
    if kind == "log":
        level = str(data.get("level") or "info")
        prefix = "" if level == "info" else f"{level.upper()}: "
        text = prefix + str(data.get("message", ""))
    elif kind == "status":
        text = f"→ {data.get('state')}" + (f": {data['reason']}" if data.get("reason") else "")
    elif kind == "error":
        text = f"ERROR: {data.get('message', '')}"
    elif kind == "artifact":
        text = f"saved {data.get('name')}: {data.get('path') or data.get('url') or ''}"
    elif kind == "checkpoint" and data.get("url"):
        text = f"checkpoint at step {data.get('step')} pushed to the Hub: {data['url']}"
    elif kind == "checkpoint":
        text = f"checkpoint at step {data.get('step')}: {data.get('path')}"
    elif kind == "summary" and "rows" in data:
        text = f"dataset: {data.get('rows')} rows, {data.get('format')}, {data.get('skipped', 0)} skipped"
    elif kind == "summary" and "model" in data:
        params = f", {data['params']:,} parameters" if isinstance(data.get("params"), int) else ""
        text = f"model: {data.get('model')}{params}" + (f" on {data['device']}" if data.get("device") else "")
    else:
        return []
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[:MAX_MESSAGE_CHARS] + " …"
    stamp = time.strftime("%H:%M:%S", time.localtime(event.time))
    return [f"{stamp} {line}" for line in text.splitlines() or [""]]


def _status_html(parts: list[str]) -> str:
    state, rest = parts[0], parts[1:]
    colour = _STATE_COLOURS.get(state, "inherit")
    head = f'<b style="color:{colour}">{html.escape(state)}</b>'
    return (
        '<div class="unsloth-nb-status" style="font-family:var(--jp-code-font-family,monospace);font-size:12px;line-height:1.5">'
        + " · ".join([head, *(html.escape(p) for p in rest)])
        + "</div>"
    )


def _message_html(text: str, failed: bool) -> str:
    if not text:
        return ""
    colour = "#cf222e" if failed else "inherit"
    return f'<pre style="white-space:pre-wrap;margin:4px 0;color:{colour};font-size:12px">{html.escape(text)}</pre>'


def _log_html(text: str) -> str:
    # column-reverse keeps the scroll position at the newest line without any script.
    return (
        '<div style="max-height:16em;overflow-y:auto;display:flex;flex-direction:column-reverse">'
        '<pre style="margin:0;font-size:11px;white-space:pre-wrap">' + html.escape(text) + "</pre></div>"
    )


_awaiting_final: weakref.WeakSet[JobView] = weakref.WeakSet()
_hook_lock = threading.Lock()
_hooked_shells: weakref.WeakSet[Any] = weakref.WeakSet()


def _await_final(view: JobView) -> None:
    """Have the end of the next cell after the job's end update ``view``'s displays once more."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return
    with _hook_lock:
        _awaiting_final.add(view)
        if shell not in _hooked_shells:
            shell.events.register("post_execute", _update_finished_views)
            _hooked_shells.add(shell)


def _update_finished_views() -> None:
    """IPython's post_execute: runs in the cell that just ran, so its update carries that cell's id."""
    with _hook_lock:
        finished = [view for view in _awaiting_final if view.ended]
        for view in finished:
            _awaiting_final.discard(view)
    for view in finished:
        view.show_final()


def _show(widget: Any, visible: bool) -> None:
    value = None if visible else "none"
    if widget.layout.display != value:
        widget.layout.display = value


def _summary_html(items: list[tuple[str, str]]) -> str:
    cells = "".join(
        f'<div style="display:inline-block;margin:2px 18px 2px 0"><div style="font-size:10px;color:#666">{html.escape(label)}'
        f'</div><div style="font-size:13px;font-weight:600">{html.escape(value)}</div></div>'
        for label, value in items
    )
    return f'<div class="unsloth-nb-summary" style="font-family:var(--jp-ui-font-family,sans-serif);margin:4px 0">{cells}</div>'


def _answers_html(question: str, answers: dict[str, str]) -> str:
    columns = "".join(
        f'<div style="flex:1 1 0;min-width:200px"><div style="font-size:10px;color:#666">{html.escape(label)}</div>'
        f'<pre style="white-space:pre-wrap;margin:2px 0;font-size:12px">'
        f"{html.escape(answer.strip()) or '<i>(an empty answer)</i>'}</pre></div>"
        for label, answer in answers.items()
    )
    return (
        f'<div class="unsloth-nb-answers"><div style="font-size:12px;margin:2px 0">Q: {html.escape(question)}</div>'
        f'<div style="display:flex;gap:16px">{columns}</div></div>'
    )


def show_job(job: Job) -> None:
    """How a job displays itself in a notebook (``job.show()``, a job as a cell's value).

    Returns nothing: a returned view would be displayed a second time as the cell's value.
    """
    JobView(job).display()


set_job_display(show_job)


from unsloth_nb.ui.jobs_table import JobTable  # noqa: E402  (re-exported: it lived here)
