"""``python -m unsloth_nb.worker``: start-up, logging, signals and the exit paths.

Exits, and what each does to the pod (on RunPod, ``RUNPOD_POD_ID`` set):

- ``POST /shutdown`` or the idle timeout: terminate the pod, retrying with backoff (and an
  error event each time) for as long as it takes, then exit 0;
- a fatal error (no token, unusable work folder, port taken, a crash of the server loop):
  terminate the pod, exit 1 or 2, so a crash never becomes a billing restart loop;
- SIGTERM / SIGINT: exit 128+signal without touching the pod, because whoever sent
  the signal (RunPod stopping the container, a person) is already deciding its fate.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import TextIO

from unsloth_nb.worker.scrub import RedactingFormatter, Redactor
from unsloth_nb.worker.selfterm import PodIdentity, terminate_this_pod
from unsloth_nb.worker.server import WorkerServer
from unsloth_nb.worker.service import WorkerService
from unsloth_nb.worker.settings import TOKEN_ENV, SettingsError, load_settings, parse_args

logger = logging.getLogger("unsloth_nb.worker")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pod = PodIdentity.from_environment()
    redactor = Redactor.from_environment()
    _log_to(logging.StreamHandler(sys.__stderr__), redactor)
    try:
        settings = load_settings(args)
    except SettingsError as exc:
        logger.error("cannot start: %s", exc)
        terminate_this_pod(pod)
        return 2

    # The training stack (and anything it spawns) never needs these two; the pod identity holds the key.
    for name in (TOKEN_ENV, "RUNPOD_API_KEY"):
        os.environ.pop(name, None)
    log_path = settings.work_dir / "worker.log"
    _log_to(logging.FileHandler(log_path, encoding="utf-8"), redactor)
    sys.stdout = _Tee(sys.stdout, log_path, redactor)
    sys.stderr = _Tee(sys.stderr, log_path, redactor)

    try:
        service = WorkerService(settings.token, settings.work_dir, redactor, pod, settings.idle_timeout)
        server = WorkerServer((settings.host, settings.port), service)
    except Exception:
        logger.exception("cannot start the worker")
        terminate_this_pod(pod)
        return 1

    signalled: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        signalled.append(signum)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    service.stop_serving = server.shutdown
    threading.Thread(target=service.watch_idle, name="unsloth-nb-idle", daemon=True).start()
    host, port = server.server_address[:2]
    logger.info(
        "worker listening on http://%s:%s (work folder %s, idle timeout %.0f s, pod %s)",
        host,
        port,
        settings.work_dir,
        settings.idle_timeout,
        pod.pod_id or "none",
    )
    try:
        server.serve_forever(poll_interval=0.5)
    except BaseException:
        logger.exception("the worker's server loop failed")
        server.server_close()
        if not service.shutting_down:
            terminate_this_pod(pod)
        return 1
    server.server_close()
    service.close()
    if signalled:
        logger.info("stopped by signal %d; the pod is left as it is", signalled[0])
        return 128 + signalled[0]
    logger.info("worker exiting (code %d)", service.exit_code)
    return service.exit_code


def _log_to(handler: logging.Handler, redactor: Redactor) -> None:
    handler.setFormatter(RedactingFormatter(redactor, LOG_FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)


class _Tee:
    """Library output printed to stdout/stderr also lands in worker.log, so error events can show it."""

    def __init__(self, stream: TextIO, path: Path, redactor: Redactor) -> None:
        self._stream = stream
        self._file = path.open("a", encoding="utf-8")
        self._redactor = redactor
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        clean = self._redactor.text(text)
        with self._lock:
            self._stream.write(clean)
            self._file.write(clean)
            if "\n" in text:
                self._stream.flush()
                self._file.flush()
        return len(text)

    def flush(self) -> None:
        with self._lock:
            self._stream.flush()
            self._file.flush()

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)
