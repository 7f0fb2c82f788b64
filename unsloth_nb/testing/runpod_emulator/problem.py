"""The error answer of every REST route of the emulator (pods, volumes, serverless): RFC 9457
``application/problem+json``, and the JSON body read or refused the same way. A module of its own: the
resources (cloud, volumes, serverless) and the routes that serve them all raise it."""

from __future__ import annotations

import http.client
import json
from typing import Any

PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    """An RFC 9457 problem answer."""

    def __init__(self, status: int, detail: str, errors: list[dict[str, str]] | None = None, title: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors
        self.title = title or http.client.responses.get(status, "Error")

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"title": self.title, "status": self.status, "detail": self.detail}
        if self.errors:
            body["errors"] = self.errors
        return body


def parse_body(raw: bytes) -> Any:
    """The JSON body of a request, or a Problem 400 when it is not JSON."""
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise Problem(400, "the body is not JSON") from None


__all__ = ["OUT_OF_STOCK", "PROBLEM_JSON", "Problem", "parse_body"]


#: RunPod's words when no machine of the asked kind is free (pods, and a volume's data centre without the card).
OUT_OF_STOCK = "There are no longer any instances available with the requested specifications. Please refresh and try again."
