"""Errors a user can act on.

Every mistake a user can make (a bad flag, a malformed dataset, a missing key)
raises a subclass of :class:`UnslothNbError`. Entry points catch this one base
class and show its message without a traceback; anything else is our bug and
keeps its traceback.
"""

from __future__ import annotations


class UnslothNbError(Exception):
    """Base for errors whose message tells the user what to change."""

    #: Exit code the CLI uses for this error (2: bad input).
    exit_code: int = 2


class ConfigError(UnslothNbError):
    """A TrainConfig field has a value that is not allowed."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.reason = message
        super().__init__(f"{field}: {message}")


class DatasetError(UnslothNbError):
    """A dataset could not be read or has rows that cannot be trained on.

    ``problems`` holds every ``file:line: what is wrong`` line found; the message
    shows the first few so a 10,000-row mistake does not flood a cell.
    """

    shown = 5

    def __init__(self, summary: str, problems: list[str] | None = None, hint: str = "") -> None:
        self.problems = list(problems or [])
        self.summary = summary
        lines = [summary]
        lines += [f"  {p}" for p in self.problems[: self.shown]]
        if len(self.problems) > self.shown:
            lines.append(f"  ... and {len(self.problems) - self.shown} more")
        if hint:
            lines.append(hint)
        super().__init__("\n".join(lines))


class MissingSecretError(UnslothNbError):
    """A key the job needs is not set; the message names the variable."""

    def __init__(self, variable: str, purpose: str) -> None:
        self.variable = variable
        super().__init__(
            f"{variable} is not set; it is needed {purpose}. "
            f"Set it in the environment (export {variable}=...) or enter it when prompted."
        )


class PlanError(UnslothNbError):
    """The job cannot be placed anywhere as configured."""


class JobNotFoundError(UnslothNbError):
    """No job folder has that id."""


class BackendError(UnslothNbError):
    """A backend failed for a reason outside the user's input (pod, network, worker).

    Exit code 1: the input was fine, the run failed.
    """

    exit_code = 1


class JobCancelledError(UnslothNbError):
    """Raised by ``job.result()`` when the job was cancelled."""

    exit_code = 130


class JobFailedError(UnslothNbError):
    """Raised by ``job.result()`` when the job failed; carries the job's error message."""

    exit_code = 1
