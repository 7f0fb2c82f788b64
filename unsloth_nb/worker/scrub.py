"""Keeping secrets out of everything the worker writes or answers.

The pod's environment holds the job token, the pod-scoped RunPod key and maybe
HF_TOKEN. Library error messages and tracebacks can quote any string they were
handed, so every event payload, error message, log tail and log line passes
through one :class:`Redactor` built from those values at start-up.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

#: Environment variables whose values are treated as secrets, by name...
SECRET_NAME = re.compile(r"(TOKEN|KEY|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.IGNORECASE)
#: ...except settings that only look like one (paths, switches, SSH public keys).
NOT_SECRET_NAME = re.compile(r"(_PATH|_DIR|_FILE|_PARALLELISM|PUBLIC_KEY)$", re.IGNORECASE)
#: Shorter values are left alone: replacing "1" everywhere would ruin every message.
MIN_SECRET_LENGTH = 8


class Redactor:
    """Replaces known secret values with ``<redacted>`` in text and nested JSON-like data."""

    def __init__(self, secrets: Iterable[str]) -> None:
        values = {s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}
        # Longest first, so a secret that contains another is replaced whole.
        self._values = sorted(values, key=len, reverse=True)

    @classmethod
    def from_environment(cls, extra: Iterable[str] = (), environ: Mapping[str, str] | None = None) -> Redactor:
        env = os.environ if environ is None else environ
        named = (value for name, value in env.items() if SECRET_NAME.search(name) and not NOT_SECRET_NAME.search(name))
        return cls([*extra, *named])

    def add(self, secrets: Iterable[str]) -> None:
        """Learn more values to hide (the secrets a job request brings, after start-up)."""
        values = set(self._values) | {s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}
        self._values = sorted(values, key=len, reverse=True)

    def text(self, value: str) -> str:
        for secret in self._values:
            if secret in value:
                value = value.replace(secret, "<redacted>")
        return value

    def data(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {key: self.data(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.data(item) for item in value]
        return value


class RedactingFormatter(logging.Formatter):
    """A log formatter whose output (tracebacks included) never holds a secret."""

    def __init__(self, redactor: Redactor, fmt: str | None = None) -> None:
        super().__init__(fmt)
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        return self.redactor.text(super().format(record))
