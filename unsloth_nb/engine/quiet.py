"""Keep library chatter out of the cell: the job's view and the CLI already show progress.

Four sources of noise, four remedies:

* **What libraries print while a job runs** (transformers' "Loading weights" bars, the
  "Unsloth (CPU): …" banners, "Unsloth: Dropping columns …", torch's ``_pytree`` warnings,
  our own loggers' retry lines) goes to the job, not the cell. :func:`capture_job_output`
  marks a job's :class:`contextvars.Context` with a :class:`JobOutput`; ``sys.stdout`` /
  ``sys.stderr`` writes made inside that context (the training thread, the controller) are
  appended to the job folder's ``output.log`` and become ``log`` events (source
  ``library``), which the view folds into its Log. Writes from anywhere else (the user's
  own cells) pass through untouched. Logging handlers that grabbed the real stream before
  the job started (transformers', torch's) are pointed at the proxy too.
* **runpod's root logger.** ``import runpod`` runs ``logging.basicConfig(level=INFO)``
  (``runpod/serverless/utils/rp_upload.py``), which would print every INFO record of every
  library for the rest of the session. :func:`guard_runpod_import` puts the root logger
  back as it was right after that import, whoever triggers it.
* **``datasets`` progress bars**, six per run: :func:`quiet_dataset_bars` switches them off
  while the engine maps rows and back on afterwards if they were on.
* **Triton's nanobind "leaked" report** (~54 lines at interpreter exit, printed from C
  during finalisation, after every Python handler ran). :func:`silence_exit_leak_reports`
  points fd 2 at /dev/null in the last atexit handler of processes that loaded Triton.
"""

from __future__ import annotations

import atexit
import contextvars
import importlib.abc
import importlib.util
import io
import logging
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "JobOutput",
    "capture_job_output",
    "guard_runpod_import",
    "library_output_to",
    "preserved_root_logger",
    "quiet_dataset_bars",
    "silence_exit_leak_reports",
]

#: Longest line kept from a library (a repr of a 10 MB tensor must not become an event).
MAX_LINE_CHARS = 2000

_job_output: contextvars.ContextVar[JobOutput | None] = contextvars.ContextVar("unsloth_nb_job_output", default=None)
_busy = threading.local()


# ---------------------------------------------------------------------- dataset bars
@contextmanager
def quiet_dataset_bars() -> Iterator[None]:
    import datasets

    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_progress_bars()


# ---------------------------------------------------------------------- job output
class JobOutput:
    """Where one job's library output goes: ``output.log`` in its folder and ``log`` events.

    Text is cut into lines; a carriage return (a progress bar redrawing itself) keeps only
    what follows it, so a bar of 272 updates becomes one line. ``emit`` is the job log's
    ``emit``; once :meth:`close` ran (the job ended) writes go back to the original stream.
    """

    def __init__(self, emit: Any, path: str | Path | None) -> None:
        self._emit = emit
        self.path = Path(path) if path is not None else None
        self._pending: dict[str, str] = {"stdout": "", "stderr": ""}
        self._lock = threading.Lock()
        self.closed = False
        self.lines = 0

    def write(self, stream: str, text: str) -> None:
        with self._lock:
            if self.path is not None:
                try:
                    with self.path.open("a", encoding="utf-8") as file:
                        file.write(text)
                except OSError:
                    pass
            buffered = self._pending[stream] + text
            *complete, rest = buffered.split("\n")
            self._pending[stream] = rest[-MAX_LINE_CHARS * 4 :]
        for raw in complete:
            self._line(raw)

    def _line(self, raw: str) -> None:
        line = raw.rsplit("\r", 1)[-1].rstrip()
        if not line.strip():
            return
        if len(line) > MAX_LINE_CHARS:
            line = line[:MAX_LINE_CHARS] + " …"
        self.lines += 1
        try:
            self._emit("log", level="info", message=line, source="library")
        except Exception:  # a closed log (the job just ended): output.log still has the line
            pass

    def close(self) -> None:
        """Emit what is left without a newline and let later writes pass through."""
        with self._lock:
            rests = [self._pending[s].rsplit("\r", 1)[-1] for s in self._pending]
            self._pending = {"stdout": "", "stderr": ""}
        for rest in rests:
            self._line(rest)
        self.closed = True


@contextmanager
def library_output_to(path: str | Path) -> Iterator[JobOutput]:
    """What libraries print inside this block (in this context) goes to ``path`` only.

    For model work outside a job, such as the demo asking the base model before its job
    exists: the first ``import unsloth`` and model load print banners, torch warnings and a
    "Loading weights" bar that a job would have folded into its Log.
    """
    install_stream_capture()
    output = JobOutput(lambda *args, **kwargs: None, path)
    token = _job_output.set(output)
    try:
        yield output
    finally:
        _job_output.reset(token)
        output.close()


def active_job_output() -> JobOutput | None:
    """The capture of the job whose context this code runs in, if any."""
    output = _job_output.get()
    return output if output is not None and not output.closed else None


def capture_job_output(context: contextvars.Context, log: Any, path: str | Path | None) -> JobOutput:
    """Send what is printed inside ``context`` to a job: ``log`` (its EventLog) and ``path`` (its output.log).

    The capture ends with the job (its first status event in an end state), after which
    anything still printed in that context reaches the cell again.
    """
    install_stream_capture()
    output = JobOutput(log.emit, path)
    context.run(_job_output.set, output)

    from unsloth_nb.jobrun.lifecycle import STATUS, TERMINAL_STATES

    def on_event(event: Any) -> None:
        if event.kind == STATUS and event.data.get("state") in TERMINAL_STATES:
            output.close()

    log.subscribe(on_event, replay=False)
    return output


class _StreamProxy(io.TextIOBase):
    """``sys.stdout`` / ``sys.stderr`` in front of the real stream: text written inside a capturing
    job goes to that job, everything else to the stream.

    A proxy object rather than a wrapped ``write`` on the stream: IPython 9 wraps the stream's
    ``write`` for the length of every cell and then puts back the one it found, which would
    silently drop a wrapper installed during that cell.
    """

    def __init__(self, name: str, stream: Any) -> None:
        super().__init__()
        self._name = name
        self._stream = stream

    def write(self, text: Any) -> int:
        output = active_job_output()
        if output is None or getattr(_busy, "on", False) or not isinstance(text, str):
            return self._stream.write(text)
        _busy.on = True  # an event subscriber that prints must not loop back here
        try:
            output.write(self._name, text)
        finally:
            _busy.on = False
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return bool(self._stream.isatty())

    def fileno(self) -> int:
        return int(self._stream.fileno())

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return str(getattr(self._stream, "encoding", "utf-8"))

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self._stream, "errors", None)

    @property
    def closed(self) -> bool:
        return bool(getattr(self._stream, "closed", False))

    def close(self) -> None:  # closing sys.stdout must not close the real stream behind our back
        pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


_install_lock = threading.Lock()


def install_stream_capture() -> None:
    """Put a :class:`_StreamProxy` in front of ``sys.stdout`` and ``sys.stderr`` (idempotent, cheap).

    Logging handlers that already hold the real stream (transformers', torch's, a user's
    ``basicConfig``) are pointed at the proxy too, so their records reach the job as well.
    """
    with _install_lock:
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if stream is None or isinstance(stream, _StreamProxy):
                continue
            proxy = _StreamProxy(name, stream)
            setattr(sys, name, proxy)
            _retarget_handlers(stream, proxy)
        _install_log_handler()


def _retarget_handlers(stream: Any, proxy: _StreamProxy) -> None:
    loggers = [
        logging.getLogger(),
        *(obj for obj in logging.Logger.manager.loggerDict.values() if isinstance(obj, logging.Logger)),
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler) and getattr(handler, "stream", None) is stream:
                try:
                    handler.stream = proxy
                except AttributeError:
                    pass  # a handler whose stream is a read-only property (logging's last-resort handler) follows sys.stderr itself


class _JobLogHandler(logging.Handler):
    """``unsloth_nb.*`` records: into the running job's Log; elsewhere on to the root's handlers, as
    propagation would (Python's last-resort WARNING+ to stderr when the root has none)."""

    def emit(self, record: logging.LogRecord) -> None:
        output = active_job_output()
        if output is not None and not getattr(_busy, "on", False):
            try:
                message = self.format(record)
            except Exception:
                return
            prefix = "" if record.levelno < logging.WARNING else f"{record.levelname}: "
            output.write("stderr", prefix + message + "\n")
            return
        root = logging.getLogger()
        if root.handlers:
            for handler in root.handlers:
                if record.levelno >= handler.level:
                    handler.handle(record)
        elif logging.lastResort is not None and record.levelno >= logging.lastResort.level:
            logging.lastResort.handle(record)


def _install_log_handler() -> None:
    logger = logging.getLogger("unsloth_nb")
    if any(isinstance(h, _JobLogHandler) for h in logger.handlers):
        return
    logger.addHandler(_JobLogHandler())
    # Our INFO lines (RunPod retries, …) belong in the job's Log; outside a job the handler
    # passes records on to the root's handlers itself.
    logger.propagate = False
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)


# ---------------------------------------------------------------------- runpod's root logger
@contextmanager
def preserved_root_logger() -> Iterator[None]:
    """Undo what code run inside does to the root logger's handlers and level."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)


class _RootLoggerGuard(importlib.abc.MetaPathFinder):
    """Finds nothing itself; wraps the loader of ``runpod`` so its import leaves the root logger alone."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != "runpod":
            return None
        others = [finder for finder in sys.meta_path if finder is not self]
        for finder in others:
            find = getattr(finder, "find_spec", None)
            spec = find(name, path, target) if find is not None else None
            if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
                spec.loader = _GuardedLoader(spec.loader)
                return spec
        return None


class _GuardedLoader(importlib.abc.Loader):
    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        with preserved_root_logger():
            self._loader.exec_module(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


def guard_runpod_import() -> None:
    """Make a later ``import runpod`` leave the root logger as it found it (already imported: undo now)."""
    if "runpod" in sys.modules:
        _drop_runpod_root_handler()
        return
    if not any(isinstance(finder, _RootLoggerGuard) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RootLoggerGuard())


def _drop_runpod_root_handler() -> None:
    """runpod already ran basicConfig: remove the handler with its format and the INFO level it set."""
    root = logging.getLogger()
    for handler in root.handlers[:]:
        fmt = getattr(handler.formatter, "_fmt", "") or ""
        if fmt.startswith("%(filename)-20s:%(lineno)-4d"):
            root.removeHandler(handler)
            if root.level == logging.INFO:
                root.setLevel(logging.WARNING)


# ---------------------------------------------------------------------- exit spam
_silencer_registered = False


def silence_exit_leak_reports() -> None:
    """At exit, once the Python exit handlers registered after this call ran, send fd 2 to /dev/null.

    Triton's nanobind bindings print "nanobind: leaked N instances" (~54 lines) while the
    interpreter finalises, from C, after all Python code ran. Call this before Triton is
    imported (``import_unsloth`` does) so that torch's, Triton's and Unsloth's own exit
    handlers still run with stderr open. Only processes that loaded Triton are touched;
    the exit status is unchanged; ``UNSLOTH_NB_SHOW_EXIT_LEAKS=1`` keeps the report.
    """
    global _silencer_registered
    if _silencer_registered:
        return
    _silencer_registered = True
    atexit.register(_mute_stderr_if_triton)


def _mute_stderr_if_triton() -> None:
    if "triton" not in sys.modules or os.environ.get("UNSLOTH_NB_SHOW_EXIT_LEAKS"):
        return
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except Exception:
            pass
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    except OSError:
        pass
