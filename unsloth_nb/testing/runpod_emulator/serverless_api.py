"""The emulator's stand-in for ``https://api.runpod.ai/v2``: the serverless job API and the worker webhooks.

Point the ``runpod`` SDK's ``Endpoint`` at it with ``runpod.endpoint_url_base`` (or
``RUNPOD_ENDPOINT_BASE_URL`` before the SDK is imported). Client routes (account key as Bearer):

- ``POST /v2/{endpoint}/run`` ``{"input", "policy": {"executionTimeout" (ms), "ttl" (ms)}}`` -> ``{"id", "status"}``;
- ``POST /v2/{endpoint}/runsync`` -> the request's status after up to ``?wait=`` ms (default 90 s);
- ``GET /v2/{endpoint}/status/{id}``, ``GET /v2/{endpoint}/stream/{id}`` (each chunk handed out once),
  ``POST /v2/{endpoint}/cancel/{id}``, ``GET /v2/{endpoint}/health``, ``POST /v2/{endpoint}/purge-queue``.

Worker routes, as the SDK's worker loop calls them (URLs from the worker's env, see :mod:`.serverless`):
``GET job-take/{worker}``, ``POST job-stream/{worker}/{id}``, ``POST job-done/{worker}/{id}``,
``GET job-stop/{worker}``, ``GET ping/{worker}``. A vLLM endpoint's ``openai/v1/...`` routes: :mod:`.serverless_vllm`.
"""

from __future__ import annotations

import hmac
import json
import socket
import threading
import time
from urllib.parse import parse_qs, urlsplit

from unsloth_nb.testing.loopback_http import LoopbackHandler, LoopbackServer
from unsloth_nb.testing.runpod_emulator import serverless_vllm
from unsloth_nb.testing.runpod_emulator.serverless import FINAL, Serverless

#: How long the worker's job-take and job-stop long-polls are held open when there is nothing.
TAKE_WAIT_S = 2.0
STOP_WAIT_S = 2.0


class JobApiServer(LoopbackServer):
    def __init__(self, port: int, serverless: Serverless, api_key: str | None, closing: threading.Event) -> None:
        super().__init__(port, JobApiHandler)
        self.serverless = serverless
        self.api_key = api_key
        self.closing = closing
        self.calls: list[tuple[float, str, int]] = []  # (time, route, body bytes): what the client sent


class JobApiHandler(LoopbackHandler):
    server: JobApiServer
    log_label = "serverless"

    def do_GET(self) -> None:
        self._dispatch("GET", b"")

    def do_POST(self) -> None:
        self._dispatch("POST", self.read_body())

    def _dispatch(self, method: str, raw: bytes) -> None:
        url = urlsplit(self.path)
        parts = [p for p in url.path.split("/") if p]
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if len(parts) < 3 or parts[0] != "v2":
            self.send_json(404, {"error": f"no route {url.path}"})
            return
        endpoint_id, action, rest = parts[1], parts[2], parts[3:]
        serverless = self.server.serverless
        if action in ("job-take", "job-stream", "job-done", "job-stop", "ping"):
            self._worker(action, endpoint_id, rest, query, raw)
            return
        self.server.calls.append((time.time(), action, len(raw)))
        if not self._authorised():
            self.send_json(401, {"error": "Unauthorized"})
            return
        if endpoint_id not in serverless.endpoints:
            self.send_json(404, {"error": f"endpoint {endpoint_id} not found"})
            return
        if action == "openai":  # a vLLM worker's OpenAI-compatible routes
            serverless_vllm.answer(self, serverless, endpoint_id, rest, method, raw)
            return
        try:
            if action in ("run", "runsync") and method == "POST":
                self._run(endpoint_id, action, raw, query)
            elif action == "status" and rest:
                self.send_json(200, serverless.request(endpoint_id, rest[0]).to_json())
            elif action == "stream" and rest:
                self.send_json(200, serverless.read_stream(endpoint_id, rest[0]))
            elif action == "cancel" and rest and method == "POST":
                request = serverless.cancel(endpoint_id, rest[0])
                self.send_json(200, {"id": request.id, "status": request.status})
            elif action == "health":
                self.send_json(200, serverless.health(endpoint_id))
            elif action == "purge-queue" and method == "POST":
                self.send_json(200, {"removed": serverless.purge(endpoint_id), "status": "completed"})
            else:
                self.send_json(404, {"error": f"no route {method} {url.path}"})
        except LookupError as exc:
            self.send_json(404, {"error": str(exc).strip("'")})
        except ValueError as exc:
            self.send_json(400, {"error": str(exc)})

    def _run(self, endpoint_id: str, action: str, raw: bytes, query: dict[str, str]) -> None:
        serverless = self.server.serverless
        faults = serverless.faults
        if faults.throttled_runs > 0:
            faults.throttled_runs -= 1
            self.send_json(429, {"error": "too many requests"}, {"Retry-After": "1"})
            return
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            self.send_json(400, {"error": "the body is not JSON"})
            return
        request = serverless.submit(endpoint_id, body)
        if faults.lost_runs > 0:
            faults.lost_runs -= 1
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if action == "run":
            self.send_json(200, {"id": request.id, "status": request.status})
            return
        deadline = time.monotonic() + float(query.get("wait") or 90000) / 1000
        with serverless.lock:
            while request.status not in FINAL and time.monotonic() < deadline:
                serverless.changed.wait(deadline - time.monotonic())
        self.send_json(200, request.to_json())

    def _worker(self, action: str, endpoint_id: str, rest: list[str], query: dict[str, str], raw: bytes) -> None:
        serverless = self.server.serverless
        worker_id = rest[0] if rest else ""
        if action == "ping":
            self.send_json(200, {})
        elif action == "job-take":
            request = serverless.take(endpoint_id, worker_id, TAKE_WAIT_S)
            if request is None:
                self.send_answer(204, None)
            else:
                self.send_json(200, {"id": request.id, "input": request.input})
        elif action == "job-stop":
            ids = serverless.stop_signals(worker_id, STOP_WAIT_S)
            self.send_answer(200 if ids else 204, {"jobsToStop": ids})
        else:
            request_id = rest[1] if len(rest) > 1 else query.get("id", "")
            try:
                result = json.loads(raw or b"null")
            except ValueError:
                self.send_json(400, {"error": "the body is not JSON"})
                return
            if action == "job-stream":
                serverless.stream_chunk(worker_id, request_id, result)
            else:
                serverless.done(worker_id, request_id, result)
            self.send_json(200, {})

    def _authorised(self) -> bool:
        expected = self.server.api_key
        if expected is None:
            return True
        header = self.headers.get("Authorization", "")
        key = header[7:].strip() if header[:7].lower() == "bearer " else header.strip()
        return bool(key) and hmac.compare_digest(key.encode(), expected.encode())
