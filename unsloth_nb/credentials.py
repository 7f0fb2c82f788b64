"""Secrets come from the environment or a prompt that stores nothing.

They are never fields of a config, never in events, logs, widget state or job
folders: callers fetch them at the moment of use and hand them straight to the
library (or the pod's environment) that needs them.
"""

from __future__ import annotations

import os
import sys

from unsloth_nb.errors import MissingSecretError

KNOWN_SECRETS = (
    "HF_TOKEN",
    "RUNPOD_API_KEY",
    "ANTHROPIC_API_KEY",
    "OPENAI_API_KEY",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
)


def get_secret(variable: str, purpose: str, *, prompt: bool = False) -> str:
    """The value of ``variable``; with ``prompt``, ask interactively when it is missing.

    A prompted value is put into this process's environment only, so that later calls
    in the same session do not ask again; it is never written anywhere.
    """
    value = os.environ.get(variable, "").strip()
    if value:
        return value
    if prompt and _can_prompt():
        import getpass

        value = getpass.getpass(f"{variable} (needed {purpose}; input hidden, not saved): ").strip()
        if value:
            os.environ[variable] = value
            return value
    raise MissingSecretError(variable, purpose)


def has_secret(variable: str) -> bool:
    return bool(os.environ.get(variable, "").strip())


def _can_prompt() -> bool:
    if "ipykernel" in sys.modules:
        return True  # getpass is routed to the notebook's password input box
    return sys.stdin is not None and sys.stdin.isatty()


def redact(text: str) -> str:
    """Replace any known secret's value in ``text`` (log lines from libraries, error messages)."""
    for variable in KNOWN_SECRETS:
        value = os.environ.get(variable, "").strip()
        if len(value) >= 6:
            text = text.replace(value, f"<{variable}>")
    return text
