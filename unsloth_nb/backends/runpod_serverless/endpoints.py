"""Templates and endpoints over REST v2 (``/v2/templates``, ``/v2/endpoints``), with the pod client's retries.

Each call is one :meth:`RestApi._request` attempt (problem+json classified, 429 with Retry-After) inside
a retry loop; a create whose answer was lost is looked up by name before it is tried again, so a lost
answer never leaves a second endpoint billing. Names are ``unsloth-nb-<job_id>`` (``-tpl`` for the template).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from unsloth_nb.backends.runpod.api_types import AttemptFailed, RetryPolicy, RunPodApiError
from unsloth_nb.backends.runpod.rest_api import RestApi

log = logging.getLogger(__name__)
T = TypeVar("T")
PREFIX = "unsloth-nb-"


@dataclass(frozen=True)
class EndpointInfo:
    id: str
    name: str
    template_id: str
    workers_min: int
    workers_max: int
    workers: int  # workers that exist now (idle or running)

    @classmethod
    def from_rest(cls, raw: dict[str, Any]) -> EndpointInfo:
        return cls(
            str(raw["id"]),
            str(raw.get("name") or ""),
            str(raw.get("templateId") or ""),
            int(raw.get("workersMin") or 0),
            int(raw.get("workersMax") or 0),
            len(raw.get("workers") or []),
        )


class EndpointsApi:
    """The account's serverless templates and endpoints."""

    def __init__(
        self, key: str | None = None, retry: RetryPolicy | None = None, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.rest = RestApi(key)
        self.retry = retry or RetryPolicy()
        self._sleep = sleep

    def _call(self, what: str, fn: Callable[[], T], recover: Callable[[], T | None] | None = None) -> T:
        for attempt in range(self.retry.attempts):
            try:
                return fn()
            except AttemptFailed as exc:
                failure = exc.failure
            if failure.kind not in ("transient",):
                raise RunPodApiError(f"RunPod refused to {what}: {failure.message}")
            if recover is not None and failure.maybe_done:
                found = recover()
                if found is not None:
                    return found
            delay = self.retry.delay(attempt, failure.retry_after)
            log.info("RunPod: %s failed (%s); retry in %.1f s", what, failure.message, delay)
            self._sleep(delay)
        raise RunPodApiError(f"RunPod did not answer to {what} after {self.retry.attempts} tries; try again later")

    # ------------------------------------------------------------------ templates
    def templates(self) -> list[dict[str, Any]]:
        return list(self._call("list templates", lambda: self.rest._request("GET", "/v2/templates")) or [])

    def create_template(self, body: dict[str, Any]) -> str:
        def find() -> str | None:
            return next((str(t["id"]) for t in self.templates() if t.get("name") == body["name"]), None)

        existing = find()
        if existing is not None:
            return existing
        answer = self._call("create a template", lambda: self.rest._request("POST", "/v2/templates", body=body), find)
        return str(answer["id"]) if isinstance(answer, dict) else str(answer)

    def delete_template(self, template_id: str) -> None:
        self._call("delete a template", lambda: self._delete(f"/v2/templates/{template_id}"))

    # ------------------------------------------------------------------ endpoints
    def endpoints(self) -> list[EndpointInfo]:
        raw = self._call("list endpoints", lambda: self.rest._request("GET", "/v2/endpoints")) or []
        return [EndpointInfo.from_rest(e) for e in raw]

    def ours(self) -> list[EndpointInfo]:
        """The endpoints unsloth-nb created (by name)."""
        return [e for e in self.endpoints() if e.name.startswith(PREFIX)]

    def get(self, endpoint_id: str) -> EndpointInfo | None:
        try:
            raw = self.rest._request("GET", f"/v2/endpoints/{endpoint_id}")
        except AttemptFailed as exc:
            if exc.failure.kind == "not_found":
                return None
            raise RunPodApiError(f"RunPod could not look up endpoint {endpoint_id}: {exc.failure.message}") from None
        return EndpointInfo.from_rest(raw)

    def create_endpoint(self, body: dict[str, Any]) -> EndpointInfo:
        def find() -> EndpointInfo | None:
            return next((e for e in self.endpoints() if e.name == body["name"]), None)

        existing = find()
        if existing is not None:
            return existing
        answer = self._call(
            "create an endpoint", lambda: EndpointInfo.from_rest(self.rest._request("POST", "/v2/endpoints", body=body)), find
        )
        return answer

    def scale_to_zero(self, endpoint_id: str) -> None:
        body = {"workersMin": 0}
        self._call("scale an endpoint to 0", lambda: self.rest._request("PATCH", f"/v2/endpoints/{endpoint_id}", body=body))

    def delete_endpoint(self, endpoint_id: str) -> None:
        self._call("delete an endpoint", lambda: self._delete(f"/v2/endpoints/{endpoint_id}"))

    def _delete(self, path: str) -> None:
        try:
            self.rest._request("DELETE", path)
        except AttemptFailed as exc:
            if exc.failure.kind != "not_found":  # already gone counts as done
                raise


def endpoint_name(job_id: str) -> str:
    return f"{PREFIX}{job_id}"


def remove(api: EndpointsApi, endpoint: EndpointInfo) -> None:
    """Delete an endpoint and then its template (the template cannot go while the endpoint uses it)."""
    api.delete_endpoint(endpoint.id)
    if endpoint.template_id:
        try:
            api.delete_template(endpoint.template_id)
        except RunPodApiError as exc:
            log.info("template %s kept: %s", endpoint.template_id, exc)
