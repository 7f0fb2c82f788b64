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
* **The log is a bounded window.** ``ipywidgets.Output.append_stdout`` resends
  every line ever written on each call (O(n²) bytes over a run). Here the log is
  the last ``max_log_lines`` lines in one HTML widget: a flush sends at most that
  many lines, and nothing when no line arrived.
* **No widget, no problem.** Where widgets cannot render (terminal IPython,
  nbconvert output, GitHub) the mimebundle still carries a text status line and
  a static HTML snapshot with the chart's inline-SVG picture.
"""

from __future__ import annotations

import contextvars
import html
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unsloth_nb.backends.registry import get_backend
from unsloth_nb.jobs.events import Event, read_events_file
from unsloth_nb.jobs.job import Job, set_job_display
from unsloth_nb.jobs.lifecycle import TERMINAL_STATES
from unsloth_nb.ui.chart import widgets_can_render
from unsloth_nb.ui.console import JobStatus, format_seconds

if TYPE_CHECKING:
    from unsloth_nb.jobs.store import JobRecord
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


@dataclass
class _Widgets:
    """The ipywidgets of one view (built on first display)."""

    box: Any
    status: Any
    progress: Any
    counter: Any
    stop: Any
    message: Any
    log: Any
    log_box: Any
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
        self.first_time: float | None = None
        self.end_time: float | None = None
        self.reason: str | None = None
        self.last_seq = -1
        self.chart: LossChart = LossChart(height=300)
        self._stop_requested = False
        self._lock = threading.RLock()
        self._flush_lock = threading.Lock()
        self._dirty = threading.Event()
        self._closing = threading.Event()
        self._widgets: _Widgets | None = None
        self._flusher: threading.Thread | None = None
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
        """Plain-text view: the status line, then the outcome (terminal IPython, nbconvert)."""
        lines = [" · ".join(self.parts())]
        outcome = self.outcome()
        if outcome:
            lines.append(outcome)
        if self.figures.state not in TERMINAL_STATES and not widgets_can_render():
            lines.append(f"(job.wait() blocks until it ends; unsloth_nb.load_job({self.job.id!r}).show() redraws it)")
        return "\n".join(lines)

    def outcome(self) -> str:
        """The end of the story: error, stop reason or what was saved."""
        with self._lock:
            if self.figures.state == "failed":
                return f"Error: {self.figures.error or self.reason or 'the job failed'}"
            lines = []
            if self.figures.state == "cancelled":
                lines.append(f"Stopped: {self.reason or 'cancelled'}")
            elif self._stop_requested and not self.ended:
                lines.append("Stopping: saving a checkpoint and the adapter first …")
            for name, path in self.artifacts.items():
                lines.append(f"Saved {name}: {path}")
            return "\n".join(lines)

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
    def log_html(self) -> Any:
        return self._ui().log

    @property
    def log_box(self) -> Any:
        return self._ui().log_box

    @property
    def message_html(self) -> Any:
        return self._ui().message

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
        message = widgets.HTML()
        log = widgets.HTML()
        log_box = widgets.Accordion(children=[log], titles=("Log",), selected_index=None)
        controls = widgets.HBox([progress, counter, stop], layout=widgets.Layout(align_items="center"))
        evaluation = widgets.HTML()
        box = widgets.VBox([status, controls, message, self.chart.widget, evaluation, log_box])
        box.add_class("unsloth-nb-job")
        return _Widgets(box, status, progress, counter, stop, message, log, log_box, evaluation)

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
            log_text = "\n".join(self.log_lines)
            failed = fig.state == "failed"
            stopping = self._stop_requested
        ui.status.value = status
        ui.progress.max = max(total, 1)
        ui.progress.value = min(step, max(total, 1))
        ui.progress.bar_style = _BAR_STYLES.get(fig.state, "")
        ui.counter.value = counter
        ui.message.value = _message_html(outcome, failed)
        ui.log.value = _log_html(log_text)
        if ui.evaluation is not None:
            ui.evaluation.value = self.evaluation_html()
        if done:
            ui.stop.disabled = True
            ui.stop.description = "Stop"
            if failed and ui.log_box.selected_index is None:
                ui.log_box.selected_index = 0  # show what went wrong
        elif stopping:
            ui.stop.disabled = True
            ui.stop.description = "Stopping…"

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
            for widget in (ui.status, ui.progress, ui.counter, ui.stop, ui.message, ui.log, ui.log_box, *ui.box.children, ui.box):
                widget.close()

    # ------------------------------------------------------------------ display
    def display(self) -> JobView:
        """Show the view under the current cell (widgets where they render, text elsewhere)."""
        from IPython.display import display

        display(self)
        return self

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
        """A snapshot that needs no JavaScript: status line, outcome and the chart's SVG picture."""
        with self._lock:
            failed = self.figures.state == "failed"
        return (
            '<div class="unsloth-nb-job-static">'
            + _status_html(self.parts())
            + _message_html(self.outcome(), failed)
            + self.chart.static_html()
            + self.evaluation_html()
            + "</div>"
        )

    def __repr__(self) -> str:
        return f"<JobView {' · '.join(self.parts())}>"


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


# ---------------------------------------------------------------------- the job list
class JobTable:
    """Jobs recorded on this machine, newest first: an HTML table in a notebook, text elsewhere."""

    columns = ("job", "state", "where", "model", "dataset", "started", "took", "result")

    def __init__(self, records: Iterable[JobRecord], limit: int = 20) -> None:
        self.records = list(records)
        self.limit = limit

    def __len__(self) -> int:
        return len(self.records)

    def rows(self) -> list[tuple[str, ...]]:
        now = time.time()
        rows = []
        for record in self.records[: self.limit]:
            end = record.finished if record.finished is not None else (now if not record.terminal else record.updated)
            result = record.error or record.artifacts.get("adapter") or ""
            rows.append(
                (
                    record.id,
                    record.state,
                    record.placement + (f" ({record.gpu})" if record.gpu else ""),
                    _short_model(record.model),
                    Path(record.dataset).name if record.dataset else "",
                    time.strftime("%Y-%m-%d %H:%M", time.localtime(record.created)),
                    format_seconds(end - record.created),
                    result if len(result) <= 120 else result[:117] + "…",
                )
            )
        return rows

    def _more(self) -> str:
        extra = len(self.records) - self.limit
        return f"… and {extra} older job(s)" if extra > 0 else ""

    def __repr__(self) -> str:
        if not self.records:
            return "No jobs yet. Start one with %unsloth_train or unsloth_nb.train(...)."
        table = [self.columns, *self.rows()]
        widths = [max(len(row[i]) for row in table) for i in range(len(self.columns))]
        lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in table]
        more = self._more()
        return "\n".join(
            [*lines, *([more] if more else []), "Redraw one with unsloth_nb.load_job(ID).show() or %unsloth_jobs ID"]
        )

    def _repr_html_(self) -> str:
        if not self.records:
            return "<p>No jobs yet. Start one with <code>%unsloth_train</code> or <code>unsloth_nb.train(...)</code>.</p>"
        head = "".join(f"<th style='text-align:left'>{c}</th>" for c in self.columns)
        body = []
        for row in self.rows():
            colour = _STATE_COLOURS.get(row[1], "inherit")
            cells = [f"<td><code>{html.escape(row[0])}</code></td>", f"<td style='color:{colour}'>{html.escape(row[1])}</td>"]
            cells += [f"<td>{html.escape(cell)}</td>" for cell in row[2:]]
            body.append("<tr>" + "".join(cells) + "</tr>")
        more = self._more()
        foot = f"<p>{html.escape(more)}</p>" if more else ""
        hint = "<p style='font-size:11px'>Redraw one with <code>unsloth_nb.load_job(ID).show()</code> or <code>%unsloth_jobs ID</code>.</p>"
        return f"<table class='unsloth-nb-jobs'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{foot}{hint}"


def show_job(job: Job) -> JobView:
    """How a job displays itself in a notebook (``job.show()``, a job as a cell's value)."""
    return JobView(job).display()


set_job_display(show_job)
