"""HTTP plumbing shared by the loopback servers that stand in for remote services in tests.

The RunPod emulator's API server and its pod proxy, and the loopback Hugging Face
Hub, are each a ``ThreadingHTTPServer`` on 127.0.0.1 with a handler that reads a
request body and answers bytes or JSON with ``Content-Type`` and ``Content-Length``.
That plumbing lives here once, so the servers keep only what they emulate and
answer in exactly the same shape:

- :class:`LoopbackServer`: bound to 127.0.0.1 (port 0 for any free port), handler
  threads that never keep the process alive, and a client that hangs up (a timed-out
  SDK call, an abandoned long-poll) noted at DEBUG rather than as a traceback;
- :class:`LoopbackHandler`: HTTP/1.1 keep-alive, ``TCP_NODELAY``, requests logged at
  DEBUG to the subclass's module logger, and :meth:`~LoopbackHandler.read_body`,
  :meth:`~LoopbackHandler.send_bytes`, :meth:`~LoopbackHandler.send_json`.
"""

from __future__ import annotations

import json
import logging
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar


class LoopbackServer(ThreadingHTTPServer):
    """Threaded HTTP server on 127.0.0.1; subclasses add the state their handlers read."""

    daemon_threads = True

    def __init__(self, port: int, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", port), handler)

    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:
        """A client that hung up (a timed-out SDK call, an abandoned long-poll) is routine, not a traceback."""
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            logging.getLogger(type(self).__module__).debug("client %s went away", client_address[0])
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class LoopbackHandler(BaseHTTPRequestHandler):
    """Request handler with the body and answer helpers; each answer carries its length, so connections stay open."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes; do not stall on delayed ACKs
    #: Prefix of each request's DEBUG log line (logged to the logger named after the subclass's module).
    log_label: ClassVar[str] = "http"

    def log_message(self, format: str, *args: Any) -> None:
        logging.getLogger(type(self).__module__).debug(self.log_label + " %s " + format, self.client_address[0], *args)

    def read_body(self) -> bytes:
        """The whole request body as announced by ``Content-Length`` (none: empty)."""
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def send_json(self, status: int, payload: object, headers: dict[str, str] | None = None, head: bool = False) -> None:
        self.send_bytes(status, json.dumps(payload).encode(), "application/json", headers, head=head)

    def send_answer(self, status: int, payload: object) -> None:
        """A REST route's answer: ``payload`` as JSON, or nothing at all for 204 (No Content has no body)."""
        if status == 204:
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_json(status, payload)

    def send_bytes(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None, head: bool = False
    ) -> None:
        """Status, ``Content-Type``, ``Content-Length``, then ``headers`` in order; the body unless ``head``."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)


__all__ = ["LoopbackHandler", "LoopbackServer"]
