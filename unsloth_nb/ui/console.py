"""Terminal views of a job: a live rich progress line, or one JSON event per line.

Both read the job's EventLog by cursor, like the notebook chart does, so the CLI
shows exactly what a notebook would.
"""

from __future__ import annotations

import sys
import time
from typing import IO, TYPE_CHECKING, Any

from unsloth_nb.jobrun.costs import CostLedger
from unsloth_nb.jobrun.events import Event
from unsloth_nb.jobrun.lifecycle import AFTER_TRAINING_STATES

if TYPE_CHECKING:
    from unsloth_nb.jobrun.job import Job


def format_seconds(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds < 0:
        return "--:--"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class JobStatus:
    """The latest figures of a job, folded from its events (shared by every text view)."""

    def __init__(self) -> None:
        self.state = "created"
        self.step = 0
        self.total_steps: int | None = None
        self.loss: float | None = None
        self.loss_step: int | None = None  # the step ``loss`` was logged at: progress runs a step ahead of it
        self.learning_rate: float | None = None
        self.tokens_per_second: float | None = None
        self.eta_seconds: float | None = None
        self.costs = CostLedger()  # teacher, GPU and judge dollars, each from its own events
        self.usd_per_hour: float | None = None
        self.gpu: str | None = None
        self.error: str | None = None
        self.eval_loss: float | None = None
        self.memory_gb: float | None = None
        self.memory_kind: str | None = None
        self.num_tokens: int | None = None
        self.min_loss: tuple[float, int] | None = None  # (loss, step)
        self.train_runtime: float | None = None
        self.stop_request: str | None = None  # why a stop was asked for ("stop requested: …" log line)
        self.api_unreachable_s: float | None = None  # RunPod's API gave no answer for this long (None: it answers)
        self.started = time.time()
        self.first_time: float | None = None  # of the job's first event: when it really started
        self.last_time: float | None = None

    def update(self, event: Event) -> None:
        data = event.data
        if self.first_time is None:
            self.first_time = event.time
        self.last_time = event.time
        if event.kind == "status":
            self.state = data["state"]
        elif event.kind == "metrics":
            self.step = data.get("step", self.step)
            if data.get("loss") is not None:
                self.loss = data["loss"]
                self.loss_step = int(data.get("step") or self.step)
                if self.min_loss is None or data["loss"] < self.min_loss[0]:
                    self.min_loss = (data["loss"], self.loss_step)
            if data.get("eval_loss") is not None:
                self.eval_loss = data["eval_loss"]
            if data.get("memory_gb") is not None:
                self.memory_gb = data["memory_gb"]
            if data.get("num_tokens") is not None:
                self.num_tokens = data["num_tokens"]
            self.learning_rate = data.get("learning_rate", self.learning_rate)
            self.tokens_per_second = data.get("tokens_per_second", self.tokens_per_second)
        elif event.kind == "summary" and "peak_memory_gb" in data:
            self.memory_gb = data.get("peak_memory_gb", self.memory_gb)
            self.memory_kind = data.get("memory", self.memory_kind)
            self.train_runtime = data.get("train_runtime", self.train_runtime)
            self.num_tokens = data.get("num_tokens", self.num_tokens)
        elif event.kind == "log" and data.get("api_unreachable_s") is not None:
            self.api_unreachable_s = float(data["api_unreachable_s"]) or None
        elif (
            event.kind == "log"
            and data.get("source") == "controller"
            and str(data.get("message", "")).startswith("stop requested: ")
        ):
            self.stop_request = self.stop_request or str(data["message"])[len("stop requested: ") :]
        elif event.kind == "progress":
            self.step = data.get("step", self.step)
            self.total_steps = data.get("total_steps", self.total_steps)
            self.eta_seconds = data.get("eta_seconds", self.eta_seconds)
        elif event.kind == "cost":
            self.costs.add(data)
            self.usd_per_hour = data.get("usd_per_hour", self.usd_per_hour)
            self.gpu = data.get("gpu", self.gpu)
        elif event.kind == "error":
            self.error = data.get("message")

    def progress_parts(self, elapsed: float | None) -> list[str]:
        """Step, loss, speed, elapsed, ETA and cost: the part every status line shares."""
        parts = []
        if self.api_unreachable_s is not None and self.state not in ("succeeded", "failed", "cancelled"):
            parts.append(f"RunPod API unreachable for {self.api_unreachable_s:.0f} s; the pod's state is unknown")
        if self.total_steps:
            parts.append(f"step {self.step:,}/{self.total_steps:,}")
        elif self.step:
            parts.append(f"step {self.step:,}")
        if self.loss is not None:
            # A step's progress event comes before its loss (and a resumed run logs again from its
            # checkpoint): a loss from another step says which, never passes for this step's.
            own = self.loss_step is None or self.loss_step == self.step
            parts.append(f"loss {self.loss:.4f}" + ("" if own else f" (step {self.loss_step:,})"))
        if self.eval_loss is not None:
            parts.append(f"eval {self.eval_loss:.4f}")
        if self.memory_gb is not None:
            parts.append(f"mem {self.memory_gb:.2f} GB")
        if self.tokens_per_second:
            parts.append(f"{self.tokens_per_second:,.0f} tok/s")
        parts.append(f"elapsed {format_seconds(elapsed)}")
        if self.eta_seconds is not None and self.state == "training":
            parts.append(f"ETA {format_seconds(self.eta_seconds)}")
        if not self.costs.empty:
            parts.append(f"{self.costs.text()} so far")
        return parts

    @property
    def usd_so_far(self) -> float | None:
        """The job's whole spend so far (teacher + GPU + judge), or None before any cost event."""
        return None if self.costs.empty else self.costs.total

    def elapsed(self) -> float:
        """From the job's first event to now, or to its last event once it has ended."""
        from unsloth_nb.jobrun.lifecycle import TERMINAL_STATES

        start = self.first_time if self.first_time is not None else self.started
        end = self.last_time if self.state in TERMINAL_STATES and self.last_time is not None else time.time()
        return max(0.0, end - start)

    def line(self) -> str:
        return " | ".join([self.state, *self.progress_parts(self.elapsed())])


class JsonPrinter:
    """One JSON object per event on stdout: for scripts and other tools."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout

    def __call__(self, event: Event) -> None:
        self.stream.write(event.to_json() + "\n")
        self.stream.flush()

    def close(self) -> None:
        pass


class ProgressPrinter:
    """A live progress bar with loss and ETA on a terminal; plain lines when not a terminal."""

    def __init__(self, stream: IO[str] | None = None, quiet: bool = False) -> None:
        from rich.console import Console

        self.console = Console(file=stream or sys.stderr, highlight=False)
        if not self.console.is_terminal:
            # A pipe or a log file: one event, one line, however long (rich would wrap at 80 columns).
            self.console.soft_wrap = True
        self.status = JobStatus()
        self.quiet = quiet
        self._live: Any = None
        self._progress: Any = None
        self._task: Any = None
        self._last_plain = 0.0
        self._said: set[str] = set()

    def already_said(self, messages: list[str]) -> None:
        """Messages shown before the job started (the plan's warnings): not repeated from the log."""
        self._said.update(messages)

    def __call__(self, event: Event) -> None:
        self.status.update(event)
        if self.quiet:
            return
        if event.kind == "log" and event.data.get("level") in ("warning", "error"):
            self._print_once(event.data["message"], "yellow")
        elif event.kind == "log" and event.data.get("source") in ("planner", "data", "engine"):
            self._print_once(event.data["message"], "dim")
        elif event.kind == "summary" and "rows" in event.data:
            self._print(f"[dim]{_escape(dataset_line(event.data))}[/dim]")
        elif event.kind == "status":
            reason = event.data.get("reason")
            # A failure's reason is the job's error, which the closing line says once.
            shown = reason and event.data["state"] != "failed" and reason not in self._said
            if reason:
                self._said.add(reason)
            self._print(f"[bold]{event.data['state']}[/bold]" + (f": {_escape(reason)}" if shown and reason else ""))
        elif event.kind == "error":
            self._said.add(event.data["message"])  # said by the closing line
        elif event.kind == "artifact":
            self._print(f"saved {event.data.get('name')}: {event.data.get('path')}")
        if event.kind in ("metrics", "progress", "status"):
            self._refresh()

    def _print_once(self, message: str, style: str) -> None:
        if message in self._said:
            return
        self._said.add(message)
        self._print(f"[{style}]{_escape(message)}[/{style}]")

    def _print(self, markup: str) -> None:
        if self._live is not None:
            self._live.console.print(markup)
        else:
            self.console.print(markup)

    def _refresh(self) -> None:
        if self.console.is_terminal:
            if self._live is None and self.status.state == "training":
                from rich.live import Live
                from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

                self._progress = Progress(
                    TextColumn("[bold]training"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TextColumn("{task.description}"),
                    console=self.console,
                )
                self._task = self._progress.add_task("", total=self.status.total_steps or None)
                self._live = Live(self._progress, console=self.console, refresh_per_second=4, transient=False)
                self._live.start()
            if self._progress is not None:
                self._progress.update(
                    self._task, completed=self.status.step, total=self.status.total_steps or None, description=self.status.line()
                )
            if self.status.state in AFTER_TRAINING_STATES:
                self.close()
        elif time.monotonic() - self._last_plain >= 5 or self.status.state != "training":
            self._last_plain = time.monotonic()
            if self.status.state == "training":
                self.console.print(self.status.line())

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


def follow_in_terminal(job: Job, *, json_lines: bool = False, quiet: bool = False, already_said: list[str] | None = None) -> None:
    """Print the job's events until it ends, then one line saying how it ended.

    Ctrl-C (or SIGTERM) stops the job cleanly, saving a checkpoint; a second one
    exits at once. Shared by the CLI, the demo and the magic in a terminal IPython.
    """
    import signal

    from unsloth_nb.errors import UnslothNbError

    printer: Any = JsonPrinter() if json_lines else ProgressPrinter(quiet=quiet)
    if already_said and not json_lines:
        printer.already_said(already_said)
    status = JobStatus()
    interrupts = 0

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts == 1:
            print("\nstopping: saving a checkpoint and cleaning up (Ctrl-C again to exit at once)", file=sys.stderr)
            job.cancel("interrupted from the terminal")
        else:
            raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for event in job.log.follow(until=lambda: job.done):
            status.update(event)
            printer(event)
        job.wait()
    except UnslothNbError:
        pass
    finally:
        printer.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print(closing_line(job, status, json_lines=json_lines), file=sys.stderr)


def closing_line(job: Job, status: JobStatus, *, json_lines: bool = False) -> str:
    """The last line a job prints: how it ended, where the adapter is, and (RunPod) what it cost in the end."""
    cost = f" Final cost: {status.costs.text()}" if not status.costs.empty else ""
    if cost and status.gpu and "gpu" in status.costs.parts:
        cost += f" ({status.gpu})"
    if cost:
        cost += "."
    if job.state == "succeeded":
        where = f" Adapter: {job.adapter_path}." if job.adapter_path and not json_lines else ""
        return f"job {job.id} succeeded.{where}{cost}"
    if job.state == "cancelled":
        return f"job {job.id} cancelled.{cost}"
    return f"job {job.id} failed: {job.error}{cost}"


def dataset_line(data: dict[str, Any]) -> str:
    """A summary event's dataset figures in one line: rows, format, the columns read, cuts and skips."""
    fmt = str(data.get("format"))
    columns = data.get("columns") or {}
    if columns:
        fmt += " (" + ", ".join(f"{theirs}->{ours}" for ours, theirs in columns.items()) + ")"
    parts = [f"{data.get('rows')} rows", fmt, f"{data.get('skipped', 0)} skipped"]
    if data.get("truncated_rows"):
        parts.append(f"{data['truncated_rows']} truncated ({data.get('tokens_cut', 0):,} tokens cut)")
    if data.get("long_dropped"):
        parts.append(f"{data['long_dropped']} dropped for length")
    return "dataset: " + ", ".join(parts)


def _escape(text: str) -> str:
    """A message printed as is, even when it holds [brackets] rich would read as markup."""
    from rich.markup import escape

    return escape(text)
