"""The pod worker as a real process on this machine: ``python -m unsloth_nb.worker`` on 127.0.0.1.

The worker's own tests (protocol, auth, limits, files, training, hardening against a
hostile client) all need the same thing: the worker started as it is on a pod, with a
random token and a work folder, ready once ``/health`` answers, and a small HTTP client
that can present the token, another one, or none. :class:`WorkerProcess` is that, once,
so each test file adds only the calls it is about. It needs no GPU and no RunPod, which
also makes it a quick way to poke at a worker by hand.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from unsloth_nb.worker.settings import TOKEN_ENV

_Started = TypeVar("_Started", bound="WorkerProcess")

#: How long :meth:`WorkerProcess.wait_ready` waits for ``/health`` (a cold import of torch is most of it).
STARTUP_DEADLINE_S = 60.0

#: ``token=`` value of :meth:`WorkerProcess.request` that presents the worker's own token.
OWN_TOKEN = "default"


class WorkerStartError(RuntimeError):
    """The worker exited, or did not answer ``/health`` in time; the message ends with its output."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Answer:
    """One HTTP answer, read whole; header names lower-cased by :meth:`WorkerProcess.request`."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        """Headers and body as one string, to check that an answer quotes nothing it should not."""
        return json.dumps(self.headers) + self.body.decode("utf-8", "replace")


class WorkerProcess:
    """A worker subprocess in its own session, and a tiny HTTP client for it (one connection per request).

    ``env`` is added to this process's environment; ``RUNPOD_POD_ID`` is dropped unless
    ``env`` sets it, so a worker that stops ends no pod. ``self.env`` may be changed before
    :meth:`start`. The worker's stdout and stderr go to :attr:`output_path`, beside ``work_dir``.
    """

    def __init__(self, work_dir: Path, env: dict[str, str] | None = None, token: str | None = None) -> None:
        self.work_dir = work_dir
        self.token = token or secrets.token_urlsafe(24)
        self.port = free_port()
        self.env = {**os.environ, TOKEN_ENV: self.token, "PYTHONUNBUFFERED": "1", **(env or {})}
        if "RUNPOD_POD_ID" not in (env or {}):
            self.env.pop("RUNPOD_POD_ID", None)  # outside a test's fake API there is no pod to end
        self.output_path = work_dir.parent / f"{work_dir.name}-stdout-{self.port}.txt"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self: _Started, wait: bool = True) -> _Started:
        """Start the worker and, unless ``wait`` is false, wait until it answers (:meth:`wait_ready`)."""
        self.work_dir.parent.mkdir(parents=True, exist_ok=True)
        with self.output_path.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "unsloth_nb.worker",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--dir",
                    str(self.work_dir),
                ],
                env=self.env,
                cwd=self.work_dir.parent,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, deadline_s: float = STARTUP_DEADLINE_S) -> None:
        """Return once ``/health`` answers 200; raise :class:`WorkerStartError` if the worker exits or the deadline passes."""
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            assert self.process is not None, "start() first"
            if self.process.poll() is not None:
                raise WorkerStartError(f"worker exited with {self.process.returncode}:\n{self.output()}")
            try:
                if self.request("GET", "/health").status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise WorkerStartError(f"worker did not answer within {deadline_s} s:\n{self.output()}")

    def output(self) -> str:
        """Everything the worker printed so far."""
        return self.output_path.read_text(errors="replace") if self.output_path.exists() else ""

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        token: str | None = OWN_TOKEN,
        timeout: float = 60.0,
    ) -> Answer:
        """One request; ``token`` is presented as ``Authorization: Bearer`` (the worker's own by default, ``None``: no header)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            sent = dict(headers or {})
            presented = self.token if token == OWN_TOKEN else token
            if presented is not None:
                sent["Authorization"] = f"Bearer {presented}"
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            connection.close()

    def kill(self) -> None:
        """SIGKILL the worker's whole process group (a pod's container dying), if it still runs."""
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(timeout=30)


__all__ = ["OWN_TOKEN", "STARTUP_DEADLINE_S", "Answer", "WorkerProcess", "WorkerStartError", "free_port"]
