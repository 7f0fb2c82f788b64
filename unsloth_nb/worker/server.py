"""The HTTP layer: routing, the token check on every route, size limits, JSON and file responses.

Plain ``http.server`` (the pod image brings no web framework, and the client must be
able to import this package). Every request is checked for the token before its
path is even looked at, so an unknown route answers 401 to a stranger too. A body
over its limit is refused from its Content-Length, before a byte of it is read.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from unsloth_nb.worker import WORKER_VERSION
from unsloth_nb.worker.artifacts import (
    ArtifactError,
    RangeNotSatisfiable,
    copy_range,
    iter_artifacts,
    parse_range,
    resolve_artifact,
    write_tar,
)
from unsloth_nb.worker.job import WorkerError
from unsloth_nb.worker.protocol import MAX_CHUNK_BYTES, MAX_JSON_BYTES, MAX_POLL_SECONDS, parse_content_range
from unsloth_nb.worker.service import WorkerService

logger = logging.getLogger("unsloth_nb.worker")

#: Seconds a connection may sit silent mid-request (slow uploads included) before it is dropped.
SOCKET_TIMEOUT_S = 120.0
ARTIFACT_PREFIX = "/artifacts/"
#: Routes polled all the time are logged at debug level, everything else at info.
QUIET_ROUTES = ("/events", "/health")


class WorkerServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], service: WorkerService) -> None:
        self.service = service
        super().__init__(address, WorkerHandler)


class WorkerHandler(BaseHTTPRequestHandler):
    server: WorkerServer
    protocol_version = "HTTP/1.1"
    server_version = "unsloth-nb-worker"
    sys_version = ""
    timeout = SOCKET_TIMEOUT_S

    # ------------------------------------------------------------------ dispatch
    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_OPTIONS(self) -> None:
        self._dispatch("OPTIONS")

    def _dispatch(self, method: str) -> None:
        service = self.server.service
        self._body_read = False
        self._answered = False
        path, _, query_text = self.path.partition("?")
        self.route = path
        self.query = {key: values[-1] for key, values in parse_qs(query_text, keep_blank_values=True).items()}
        if not service.authorized(self.headers.get("Authorization")):
            self._send_json(401, {"error": "unauthorized"}, {"WWW-Authenticate": 'Bearer realm="unsloth-nb-worker"'})
            return
        activity = service.is_activity(method, path)
        service.request_started(activity)
        try:
            handler = self._route(method, path)
            handler()
        except (TimeoutError, BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:
            if isinstance(exc, (WorkerError, ArtifactError)):
                status, payload = exc.status, {"error": service.redactor.text(exc.message), **getattr(exc, "extra", {})}
            else:
                logger.exception("error answering %s %s", method, path)
                status, payload = 500, {"error": "internal error in the worker; see its log"}
            if self._answered:  # a streamed answer broke half-way: all we can do is end the connection
                self.close_connection = True
            else:
                self._send_json(status, payload)
        finally:
            service.request_finished(activity)

    def _route(self, method: str, path: str) -> Callable[[], None]:
        routes: dict[str, dict[str, Callable[[], None]]] = {
            "/health": {"GET": self._health},
            "/job": {"GET": self._job, "PUT": self._declare},
            "/job/dataset": {"GET": self._dataset_status, "PUT": self._dataset_chunk},
            "/job/start": {"POST": self._start},
            "/job/cancel": {"POST": self._cancel},
            "/job/collected": {"POST": self._collected},
            "/events": {"GET": self._events},
            "/artifacts": {"GET": self._artifacts},
            "/artifacts.tar": {"GET": self._artifacts_tar},
            "/shutdown": {"POST": self._shutdown},
        }
        if path.startswith(ARTIFACT_PREFIX):
            methods = {"GET": self._artifact, "HEAD": self._artifact, "PUT": self._artifact_upload}
        elif path in routes:
            methods = routes[path]
        else:
            raise WorkerError(404, f"no route {path}")
        if method not in methods:
            raise WorkerError(405, f"{method} is not allowed on {path}; use {', '.join(methods)}")
        return methods[method]

    # ------------------------------------------------------------------ routes
    def _health(self) -> None:
        self._send_json(200, {"ok": True, "worker_version": WORKER_VERSION, **self.server.service.host.describe()})

    def _job(self) -> None:
        self._send_json(200, self.server.service.host.describe())

    def _declare(self) -> None:
        self._send_json(200, self.server.service.host.declare(self._read_json()))

    def _dataset_status(self) -> None:
        host = self.server.service.host
        spec = host.spec
        self._send_json(200, {"bytes_received": host.bytes_received(), "dataset_bytes": spec.dataset_bytes if spec else None})

    def _dataset_chunk(self) -> None:
        host = self.server.service.host
        header = self.headers.get("Content-Range")
        if header:
            try:
                start, end, total = parse_content_range(header)
            except ValueError as exc:
                raise WorkerError(400, str(exc)) from None
            length = end - start + 1
        else:
            if host.spec is None or "offset" not in self.query:
                raise WorkerError(400, "send Content-Range: bytes START-END/TOTAL (or ?offset=START) with each chunk")
            start, total, length = _int(self.query["offset"], "offset"), host.spec.dataset_bytes, -1
        body = self._read_body(MAX_CHUNK_BYTES)
        if length >= 0 and len(body) != length:
            raise WorkerError(400, f"Content-Range announces {length} bytes but the body has {len(body)}")
        if not body:
            raise WorkerError(400, "empty chunk")
        self._send_json(200, host.write_chunk(start, total, body))

    def _start(self) -> None:
        body = self._read_json()
        if body is not None and not isinstance(body, dict):
            raise WorkerError(400, 'expected no body or a JSON object like {"hub_checkpoint": "checkpoint-20", "secrets": {}}')
        body = body or {}
        self._send_json(
            200, self.server.service.host.start(hub_checkpoint=body.get("hub_checkpoint"), secrets=body.get("secrets"))
        )

    def _cancel(self) -> None:
        self._read_body(MAX_JSON_BYTES)
        self._send_json(200, self.server.service.host.cancel())

    def _collected(self) -> None:
        self._read_body(MAX_JSON_BYTES)
        self._send_json(200, self.server.service.keeper.mark_collected())

    def _events(self) -> None:
        after = _int(self.query.get("after", "-1"), "after")
        timeout = _float(self.query.get("timeout", str(MAX_POLL_SECONDS)), "timeout")
        self._send_json(200, self.server.service.host.events(after, timeout))

    def _artifacts(self) -> None:
        with_sha256 = self.query.get("sha256", "1").lower() not in ("0", "false", "no")
        listing = self.server.service.list_artifacts(self.query.get("prefix", ""), with_sha256)
        self._send_json(200, listing)

    def _artifacts_tar(self) -> None:
        artifacts = list(iter_artifacts(self.server.service.host.output_dir, self.query.get("prefix", "")))
        if not artifacts:
            raise WorkerError(404, "no artifacts under that prefix")
        self.send_response(200)
        self.send_header("Content-Type", "application/x-tar")
        self.send_header("Connection", "close")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.close_connection = True
        write_tar(artifacts, self.wfile)

    def _artifact(self) -> None:
        artifact = resolve_artifact(self.server.service.host.output_dir, self.route[len(ARTIFACT_PREFIX) :])
        size = artifact.bytes
        try:
            span = parse_range(self.headers.get("Range"), size)
        except RangeNotSatisfiable:
            self._send_json(416, {"error": f"range outside the file's {size} bytes"}, {"Content-Range": f"bytes */{size}"})
            return
        start, end = span if span is not None else (0, size - 1)
        length = max(end - start + 1, 0)
        self.send_response(206 if span is not None else 200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Cache-Control", "no-store")
        if span is not None:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if self.command != "HEAD" and length:
            copy_range(artifact.path, start, length, self.wfile)

    def _artifact_upload(self) -> None:
        """A chunk of a checkpoint file to resume from, placed like the dataset's chunks (Content-Range)."""
        header = self.headers.get("Content-Range")
        if not header:
            raise WorkerError(400, "send Content-Range: bytes START-END/TOTAL with each chunk (bytes */0 for an empty file)")
        name = self.route[len(ARTIFACT_PREFIX) :]
        if header.strip() == "bytes */0":
            self._read_body(0)
            self._send_json(200, self.server.service.host.write_artifact_chunk(name, 0, 0, b""))
            return
        try:
            start, end, total = parse_content_range(header)
        except ValueError as exc:
            raise WorkerError(400, str(exc)) from None
        body = self._read_body(MAX_CHUNK_BYTES)
        if len(body) != end - start + 1:
            raise WorkerError(400, f"Content-Range announces {end - start + 1} bytes but the body has {len(body)}")
        self._send_json(200, self.server.service.host.write_artifact_chunk(name, start, total, body))

    def _shutdown(self) -> None:
        self._read_body(MAX_JSON_BYTES)
        service = self.server.service
        self._send_json(200, {"ok": True, "terminating_pod": service.pod.on_runpod})
        service.shutdown("the client asked for it (POST /shutdown)")

    # ------------------------------------------------------------------ bodies and answers
    def _read_body(self, limit: int) -> bytes:
        """The request body, refusing (413) one over ``limit`` before reading it."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise WorkerError(411, "send a Content-Length; chunked request bodies are not accepted")
        raw = self.headers.get("Content-Length") or "0"
        try:
            length = int(raw)
        except ValueError:
            raise WorkerError(400, "Content-Length is not a number") from None
        if length < 0:
            raise WorkerError(400, "Content-Length is negative")
        if length > limit:
            raise WorkerError(413, f"request body of {length} bytes is over this route's limit of {limit} bytes")
        body = self.rfile.read(length) if length else b""
        self._body_read = True
        if len(body) != length:
            raise WorkerError(400, "request body ended early")
        return body

    def _read_json(self) -> Any:
        body = self._read_body(MAX_JSON_BYTES)
        try:
            return json.loads(body or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise WorkerError(400, "request body is not JSON") from None

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if not self._body_read and self._has_body():
            # The unread body would be taken for the next request: end this connection instead.
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def version_string(self) -> str:
        return self.server_version

    def end_headers(self) -> None:
        self._answered = True
        super().end_headers()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors http.server raises itself (bad request line, unknown method): short JSON, never the request echoed."""
        self.close_connection = True
        body = json.dumps({"error": f"HTTP {code}"}).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if getattr(self, "command", None) != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(body)

    def _has_body(self) -> bool:
        return self.headers.get("Content-Length", "0") not in ("", "0") or "Transfer-Encoding" in self.headers

    # ------------------------------------------------------------------ logging
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        route = getattr(self, "route", "")
        level = logging.DEBUG if route in QUIET_ROUTES and str(code).startswith("2") else logging.INFO
        logger.log(level, "%s %s -> %s", self.command, route, code)

    def log_error(self, format: str, *args: Any) -> None:
        logger.warning("http: " + format, *args)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("http: " + format, *args)


def _int(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise WorkerError(400, f"{name} must be a whole number") from None


def _float(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise WorkerError(400, f"{name} must be a number of seconds") from None
    if value != value:  # NaN
        raise WorkerError(400, f"{name} must be a number of seconds")
    return value
