"""REST v2 routes for serverless resources on the emulator's API server: templates and endpoints.

Shapes follow RunPod's REST API for templates and endpoints (the v1 field names, which v2 kept for
these resources; unverified against v2's OpenAPI document, which was not in hand):

- ``POST /v2/templates`` ``{name, imageName, dockerStartCmd, env{}, containerDiskInGb, isServerless}`` -> 201;
  ``GET /v2/templates`` -> list; ``DELETE /v2/templates/{id}`` -> 204 (409 while an endpoint uses it);
- ``POST /v2/endpoints`` ``{name, templateId, gpuTypeIds[], workersMin, workersMax, idleTimeout,
  executionTimeoutMs, flashboot}`` -> 201; ``GET /v2/endpoints`` -> list; ``GET/PATCH/DELETE /v2/endpoints/{id}``.

:func:`answer` is called first for every ``/v2/`` request; it answers the paths it owns and leaves the rest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from unsloth_nb.testing.runpod_emulator.problem import Problem, parse_body

if TYPE_CHECKING:
    from unsloth_nb.testing.runpod_emulator.http_api import ApiHandler

_OWNED = ("templates", "endpoints")


def answer(handler: ApiHandler, method: str, path: str, raw: bytes) -> bool:
    """Answer a templates/endpoints request; False for any other path."""
    parts = [p for p in path.split("/")[2:] if p]
    if not parts or parts[0] not in _OWNED:
        return False
    serverless = handler.server.cloud.serverless
    authorised, scoped = handler._authenticate("")
    if not authorised or scoped is not None:
        handler._send_problem(Problem(401 if not authorised else 403, "an account API key is needed for serverless resources"))
        return True
    try:
        body = parse_body(raw)
        status, result = _route(serverless, method, parts, body)
    except Problem as problem:
        handler._send_problem(problem)
        return True
    except LookupError as exc:
        handler._send_problem(Problem(404, str(exc).strip("'")))
        return True
    except ValueError as exc:
        handler._send_problem(Problem(409 if "used by an endpoint" in str(exc) or "exists" in str(exc) else 400, str(exc)))
        return True
    handler.send_answer(status, result)
    return True


def _route(serverless: Any, method: str, parts: list[str], body: Any) -> tuple[int, Any]:
    kind = parts[0]
    body = body if isinstance(body, dict) else {}
    if kind == "templates":
        if len(parts) == 1 and method == "GET":
            return 200, [t.to_json() for t in serverless.templates.values()]
        if len(parts) == 1 and method == "POST":
            return 201, serverless.create_template(body).to_json()
        if len(parts) == 2 and method == "DELETE":
            if not serverless.delete_template(parts[1]):
                raise LookupError(f"no template {parts[1]}")
            return 204, None
        raise Problem(405, f"{method} is not allowed on /v2/{'/'.join(parts)}")
    if len(parts) == 1 and method == "GET":
        return 200, [e.to_json(serverless.endpoint_workers(e.id)) for e in list(serverless.endpoints.values())]
    if len(parts) == 1 and method == "POST":
        endpoint = serverless.create_endpoint(body)
        return 201, endpoint.to_json([])
    if len(parts) == 2:
        endpoint_id = parts[1]
        if method == "DELETE":
            if not serverless.delete_endpoint(endpoint_id):
                raise LookupError(f"no endpoint {endpoint_id}")
            return 204, None
        if endpoint_id not in serverless.endpoints:
            raise LookupError(f"no endpoint {endpoint_id}")
        if method == "GET":
            return 200, serverless.endpoints[endpoint_id].to_json(serverless.endpoint_workers(endpoint_id))
        if method == "PATCH":
            endpoint = serverless.update_endpoint(endpoint_id, body)
            return 200, endpoint.to_json(serverless.endpoint_workers(endpoint_id))
    raise Problem(405, f"{method} is not allowed on /v2/{'/'.join(parts)}")
