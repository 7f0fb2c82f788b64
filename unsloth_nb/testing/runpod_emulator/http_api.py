"""The emulator's API server: RunPod's GraphQL endpoint and REST v2 routes, plus a loopback admin endpoint.

REST v2 (``/v2/pods``, ``/v2/catalog/gpus``) lives in :mod:`.rest_v2` and shares the
account with GraphQL; the fault knobs below apply to both, matched by operation name.

``POST /graphql`` answers exactly what the SDK expects (see the RunPod reference,
section 5): ``{"data": ...}`` with HTTP 200; resolver failures as
``{"errors": [...], "data": ...}``; syntax and validation failures as HTTP 400 with
Apollo's ``GRAPHQL_PARSE_FAILED`` / ``GRAPHQL_VALIDATION_FAILED`` codes; a bad key
as HTTP 401. The key is read from ``Authorization: Bearer`` (SDK 1.7.8 and later)
or the ``api_key`` query parameter (older SDKs).

Injected faults are applied in the order the real path meets them: a slow answer,
then the edge (HTML 502, 429), then the origin (500), then authentication, then the
query itself. A lost create runs the mutation and then closes the connection unanswered.

The admin endpoint, for tests in another process and the CLI (loopback only, no key):

- ``GET /_emulator/state``: pods, ledger, faults and GPU stock as JSON;
- ``POST /_emulator/faults``: JSON changes to :class:`Faults` (see ``Faults.update``);
- ``DELETE /_emulator/faults``: reset every knob;
- ``POST /_emulator/stock``: ``{"<gpuTypeId>": free GPUs, ...}``;
- ``POST /_emulator/pods/<id>/evict`` (``?remove=1`` to make the pod vanish).
"""

from __future__ import annotations

import hmac
import http.client
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from graphql import DocumentNode, FieldNode, GraphQLError, OperationDefinitionNode, execute_sync, parse, validate

from unsloth_nb.testing.loopback_http import LoopbackHandler, LoopbackServer
from unsloth_nb.testing.runpod_emulator import serverless_rest, volumes
from unsloth_nb.testing.runpod_emulator.cloud import Cloud
from unsloth_nb.testing.runpod_emulator.pods import PodInfo
from unsloth_nb.testing.runpod_emulator.problem import PROBLEM_JSON, Problem, parse_body
from unsloth_nb.testing.runpod_emulator.resolvers import Root, Unauthorized
from unsloth_nb.testing.runpod_emulator.rest_v2 import CREATE, RestApi, route
from unsloth_nb.testing.runpod_emulator.schema import schema

log = logging.getLogger(__name__)

CREATE_OPERATIONS = ("podFindAndDeployOnDemand", "podRentInterruptable", "deployCpuPod")
GENERIC_FAILURE = "Something went wrong. Please try again later or contact support."

#: Cloudflare's page when the origin behind it fails; the SDK chokes on it with a JSONDecodeError.
CLOUDFLARE_502 = b"""<html>
<head><title>502 Bad Gateway</title></head>
<body>
<center><h1>502 Bad Gateway</h1></center>
<hr><center>cloudflare</center>
</body>
</html>
"""


@dataclass(frozen=True)
class ApiCall:
    """One API request as it arrived: when, which operations (GraphQL fields or their REST twins), who sent it."""

    time: float  # time.time()
    operations: tuple[str, ...]
    from_pod: bool
    api: str = "graphql"  # "graphql" or "rest"
    bytes: int = 0  # the request body's size: what the create request weighs


class ApiServer(LoopbackServer):
    """Threaded loopback HTTP server holding what its handlers need."""

    def __init__(self, port: int, cloud: Cloud, api_key: str | None, closing: threading.Event) -> None:
        super().__init__(port, ApiHandler)
        self.cloud = cloud
        self.api_key = api_key
        self.closing = closing
        #: Every API request (GraphQL and REST v2), injected failures included: what a client costs the control plane.
        self.calls: list[ApiCall] = []


class ApiHandler(LoopbackHandler):
    server: ApiServer
    log_label = "api"

    # ---- routing ----------------------------------------------------------------------

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        body = self.read_body()
        if url.path.startswith("/v2/"):
            self._rest("POST", url.path, url.query, body)
        elif url.path == "/graphql":
            self._graphql(body, parse_qs(url.query).get("api_key", [""])[0])
        elif url.path == "/_emulator/faults":
            self._admin(self._set_faults, body)
        elif url.path == "/_emulator/stock":
            self._admin(self._set_stock, body)
        elif url.path.startswith("/_emulator/pods/") and url.path.endswith("/evict"):
            pod_id = url.path.split("/")[3]
            remove = parse_qs(url.query).get("remove", ["0"])[0] not in ("0", "", "false")
            try:
                self.server.cloud.evict(pod_id, remove=remove)
            except KeyError:
                self.send_json(404, {"error": f"no pod {pod_id}"})
                return
            self.send_json(200, {"evicted": pod_id, "removed": remove})
        else:
            self.send_json(404, {"error": f"no route {url.path}"})

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        path = url.path
        if path.startswith("/v2/"):
            self._rest("GET", path, url.query, b"")
        elif path == "/_emulator/state":
            self.send_json(200, emulator_state(self.server.cloud))
        elif path == "/graphql":
            self.send_json(405, {"errors": [{"message": "GraphQL here takes POST", "extensions": {"code": "BAD_REQUEST"}}]})
        else:
            self.send_json(404, {"error": f"no route {path}"})

    def do_DELETE(self) -> None:
        url = urlsplit(self.path)
        if url.path.startswith("/v2/"):
            self._rest("DELETE", url.path, url.query, self.read_body())
        elif url.path == "/_emulator/faults":
            self.server.cloud.faults.reset()
            self.send_json(200, self.server.cloud.faults.to_dict())
        else:
            self.send_json(404, {"error": "no route"})

    # ---- GraphQL ----------------------------------------------------------------------

    def _graphql(self, body: bytes, query_key: str) -> None:
        try:
            payload = json.loads(body)
            query = payload["query"]
            if not isinstance(query, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            self.send_json(400, _errors("POST body must be JSON with a string 'query'.", "BAD_REQUEST"))
            return
        variables = payload.get("variables") or None
        operation_name = payload.get("operationName") or None
        document: DocumentNode | None = None
        syntax_error: GraphQLError | None = None
        try:
            document = parse(query)
        except GraphQLError as exc:
            syntax_error = exc
        operations = top_level_fields(document, operation_name) if document is not None else []

        cloud = self.server.cloud
        header = self.headers.get("Authorization", "")
        key = header[7:].strip() if header[:7].lower() == "bearer " else query_key
        from_pod = bool(key) and cloud.pod_for_key(key) is not None
        self.server.calls.append(ApiCall(time.time(), tuple(operations), from_pod, "graphql", len(body)))
        if self._injected_failure(operations, from_pod=from_pod):
            return
        authorised, scoped_pod_id = self._authenticate(query_key)
        if not authorised:
            self.send_json(401, _errors("Unauthorized", "UNAUTHENTICATED"))
            return
        if syntax_error is not None or document is None:
            self.send_json(400, {"errors": [_format(syntax_error or GraphQLError("Syntax Error"), "GRAPHQL_PARSE_FAILED")]})
            return
        invalid = validate(schema(), document)
        if invalid:
            self.send_json(400, {"errors": [_format(e, "GRAPHQL_VALIDATION_FAILED") for e in invalid]})
            return
        result = execute_sync(
            schema(), document, root_value=Root(cloud, scoped_pod_id), variable_values=variables, operation_name=operation_name
        )
        errors = list(result.errors or [])
        if any(isinstance(e.original_error, Unauthorized) for e in errors):
            self.send_json(401, _errors("Unauthorized", "UNAUTHENTICATED"))
            return
        created = [op for op in operations if op in CREATE_OPERATIONS and (result.data or {}).get(op)]
        if created and cloud.faults.take_count("lost_creates"):
            self._drop_connection()
            return
        answer: dict[str, Any] = {}
        if errors:
            answer["errors"] = [_format(e, "INTERNAL_SERVER_ERROR") for e in errors]
        answer["data"] = result.data
        gone = operations == ["pod"] and errors and cloud.faults.lookup_gone_as == "404"
        self.send_json(404 if gone else 200, answer)

    def do_PATCH(self) -> None:
        url = urlsplit(self.path)
        raw = self.read_body()
        if serverless_rest.answer(self, "PATCH", url.path, raw) or volumes.answer(self, "PATCH", url.path, raw):
            return
        self._send_problem(Problem(405 if url.path.startswith("/v2/pods/") else 404, "this emulator does not edit pods"))

    # ---- REST v2 ----------------------------------------------------------------------

    def _rest(self, method: str, path: str, query: str, raw: bytes) -> None:
        if serverless_rest.answer(self, method, path, raw) or volumes.answer(self, method, path, raw):
            return  # templates and endpoints; network volumes
        try:
            body = parse_body(raw)
        except Problem as problem:
            self._send_problem(problem)
            return
        where = route(method, path, body)
        if where is None:
            self._send_problem(Problem(404, f"no route {method} {path}"))
            return
        cloud = self.server.cloud
        header = self.headers.get("Authorization", "")
        key = header[7:].strip() if header[:7].lower() == "bearer " else ""
        scoped = cloud.pod_for_key(key) if key else None
        self.server.calls.append(ApiCall(time.time(), (where.operation,), scoped is not None, "rest", len(raw)))
        if self._injected_failure([where.operation], rest=True, from_pod=scoped is not None):
            return
        authorised, scoped_pod_id = self._authenticate("")
        if not authorised:
            self._send_problem(Problem(401, "missing or invalid API key"))
            return
        try:
            status, answer = RestApi(cloud, scoped_pod_id).answer(method, where, query, body)
        except Problem as problem:
            self._send_problem(problem)
            return
        if where.operation == CREATE and cloud.faults.take_count("lost_creates"):
            self._drop_connection()
            return
        self.send_answer(status, answer)

    def _send_problem(self, problem: Problem, headers: dict[str, str] | None = None) -> None:
        self.send_bytes(problem.status, json.dumps(problem.body()).encode(), PROBLEM_JSON, headers)

    def _injected_failure(self, operations: list[str], rest: bool = False, from_pod: bool = False) -> bool:
        """Apply the fault knobs that fire before the query runs; True when the call was answered (or dropped)."""
        faults = self.server.cloud.faults
        if faults.unreachable(from_pod):
            self._drop_connection()
            return True
        delay = faults.delay_for(operations)
        if delay > 0 and self.server.closing.wait(delay):
            return True
        if faults.take("bad_gateway", operations):
            self.send_bytes(502, CLOUDFLARE_502, "text/html")
            return True
        if faults.take("rate_limited", operations):
            if rest:
                limited = Problem(429, "rate limit exceeded for the minute window", title="Too Many Requests")
                self._send_problem(limited, {"Retry-After": str(faults.retry_after_s)})
                return True
            detail = {"title": "Too Many Requests", "status": 429, "message": "rate limit exceeded, retry later"}
            self.send_json(429, detail, {"Retry-After": str(faults.retry_after_s)})
            return True
        if faults.take("server_errors", operations):
            code = faults.server_error_status
            if rest:
                self._send_problem(Problem(code, "the server failed; try again later"))
                return True
            self.send_json(code, {"message": http.client.responses.get(code, "Server Error"), "status": code})
            return True
        return False

    def _authenticate(self, query_key: str) -> tuple[bool, str | None]:
        """(allowed, pod id the key is scoped to); an account key is scoped to nothing."""
        header = self.headers.get("Authorization", "")
        key = header[7:].strip() if header[:7].lower() == "bearer " else query_key
        scoped = self.server.cloud.pod_for_key(key) if key else None
        if scoped is not None:
            return True, scoped
        expected = self.server.api_key
        if expected is None:
            return True, None
        return bool(key) and hmac.compare_digest(key.encode(), expected.encode()), None

    # ---- admin ------------------------------------------------------------------------

    def _admin(self, action: Callable[[dict[str, Any]], object], body: bytes) -> None:
        try:
            data = json.loads(body or b"{}")
            if not isinstance(data, dict):
                raise ValueError("expected a JSON object")
            self.send_json(200, action(data))
        except (ValueError, TypeError) as exc:
            self.send_json(400, {"error": str(exc)})

    def _set_faults(self, data: dict[str, Any]) -> dict[str, Any]:
        self.server.cloud.faults.update(data)
        return self.server.cloud.faults.to_dict()

    def _set_stock(self, data: dict[str, Any]) -> dict[str, int]:
        gpus = self.server.cloud.gpus
        unknown = sorted(set(data) - set(gpus))
        if unknown:
            raise ValueError(f"unknown gpuTypeId(s) {unknown}")
        for gpu_id, available in data.items():
            gpus[gpu_id].available = int(available)
        return {gpu.id: gpu.available for gpu in gpus.values()}

    # ---- plumbing ---------------------------------------------------------------------

    def _drop_connection(self) -> None:
        """Close the socket without a byte of answer, as a lost response looks to the client."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def top_level_fields(document: DocumentNode, operation_name: str | None) -> list[str]:
    """Names of the top-level fields of the operation that would run: what the fault knobs match on."""
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode) and (
            operation_name is None or (definition.name is not None and definition.name.value == operation_name)
        ):
            return [sel.name.value for sel in definition.selection_set.selections if isinstance(sel, FieldNode)]
    return []


def emulator_state(cloud: Cloud) -> dict[str, Any]:
    """Everything a test in another process may want to look at, as JSON."""
    return {
        "pods": [_info_json(info) for info in cloud.pod_infos().values()],
        "ledger": cloud.ledger.to_dict(),
        "faults": cloud.faults.to_dict(),
        "stock": {gpu.id: gpu.available for gpu in cloud.gpus.values()},
        "start_delay": cloud.start_delay,
    }


def _info_json(info: PodInfo) -> dict[str, Any]:
    data = asdict(info)
    data["ports"] = [f"{p.container_port}/{p.protocol}" for p in info.ports]
    data["home"] = str(info.home)
    data["log_path"] = str(info.log_path)
    data["local_ports"] = {str(k): v for k, v in info.local_ports.items()}
    return data


def _errors(message: str, code: str) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": code}}]}


def _format(error: GraphQLError, default_code: str) -> dict[str, Any]:
    """An error as RunPod's Apollo server shapes it; our own bugs get RunPod's generic message."""
    formatted = dict(error.formatted)
    original = error.original_error
    if original is not None and not hasattr(original, "extensions"):
        log.error("emulator resolver failed", exc_info=original)
        formatted["message"] = GENERIC_FAILURE
    formatted.setdefault("extensions", {"code": default_code})
    return formatted
