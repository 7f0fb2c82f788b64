"""Errors a user can act on, worded for the place they appear.

Every mistake a user can make (a bad flag, a malformed dataset, a missing key)
raises a subclass of :class:`UnslothNbError`. Entry points catch this one base
class and show its message without a traceback; anything else is our bug and
keeps its traceback.

A check that finds several mistakes raises them together (:class:`InputErrors`),
so a user fixes everything in one pass instead of one run per mistake.

Messages name what to change without choosing the words of one front end: a
message says ``set_field("dataset.skip_invalid", True)`` where it means "turn on
skip-invalid", and the front end that shows it words that as ``pass
--skip-invalid`` (CLI, magic) or ``tick “Skip invalid”`` (the panel). The
wording in force is a context variable that each front end sets around its work
(:func:`use_wording`); ``str(error)`` elsewhere (the Python API, a job's log)
names both the config field and its flag.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

# ---------------------------------------------------------------------- wording
_SET = re.compile(r"\{set:([a-z_][a-z_.]*)(?:=([^{}]*))?\}")
_NAME = re.compile(r"\{name:([a-z_][a-z_.]*)\}")
_HELP = "{help}"


def set_field(path: str, value: Any = None) -> str:
    """An instruction inside a message: "set the field ``path`` (to ``value``)", worded by the front end."""
    if value is None:
        return "{set:" + path + "}"
    shown = str(value).lower() if isinstance(value, bool) else str(value)
    return "{set:" + path + "=" + shown + "}"


def name_field(path: str) -> str:
    """A field named inside a message (no instruction), worded by the front end."""
    return "{name:" + path + "}"


#: Where a message refers to the list of flags; the front end says where that list is.
SEE_HELP = _HELP


# How a field is spelled as a flag is config's knowledge, and config raises this module's errors: so config hands
# its lookups in when it is imported (:func:`register_field_names`) and this module never imports config. A message
# rendered before any config module is imported names the field alone.
_field_names: list[tuple[Callable[[str], str | None], Callable[[str], bool]]] = []


def register_field_names(flag_of: Callable[[str], str | None], is_bool: Callable[[str], bool]) -> None:
    """Let messages name a field's flag (``flag_of("lora.r") == "--lora-r"``) and word on/off flags (``is_bool``)."""
    _field_names[:] = [(flag_of, is_bool)]


def _flag_of(path: str) -> str | None:
    return _field_names[0][0](path) if _field_names else None


class Wording:
    """How one front end names config fields. This base is for plain text (API, logs): field and flag."""

    help = "see --help for the list of flags"

    def heading(self, path: str) -> str:
        """The field an error is about, at the start of its message."""
        return path

    def name(self, path: str) -> str:
        flag = _flag_of(path)
        return f"{path} ({flag})" if flag else path

    def set(self, path: str, value: str | None) -> str:
        flag = _flag_of(path)
        if value is None or value in ("true", "false") or " " in value:
            shown = f" ({flag})" if flag else ""
        else:
            shown = f" ({flag} {value})" if flag else ""
        if value is None:
            return f"set {path}{shown}"
        return f"set {path}: {value}{shown}"

    def render(self, text: str) -> str:
        text = _SET.sub(lambda m: self.set(m.group(1), m.group(2)), text)
        text = _NAME.sub(lambda m: self.name(m.group(1)), text)
        return text.replace(_HELP, self.help)


class FlagWording(Wording):
    """A terminal: fields are flags of ``unsloth-nb train``."""

    help = "see unsloth-nb train --help for the list of flags"

    def heading(self, path: str) -> str:
        flag = _flag_of(path)
        return f"{flag} ({path})" if flag else path

    def name(self, path: str) -> str:
        return _flag_of(path) or path

    def set(self, path: str, value: str | None) -> str:
        flag = _flag_of(path)
        if flag is None:
            return f"set {path}" + (f": {value}" if value is not None else "")
        if value in ("true", None) and _is_bool(path):
            return f"pass {flag}"
        if value == "false" and _is_bool(path):
            return f"pass --no-{flag[2:]}"
        return f"pass {flag}" + (f" {value}" if value is not None else "")


class MagicWording(FlagWording):
    """``%unsloth_train``: the same flags; the help is ``%unsloth_train?``."""

    help = "see %unsloth_train? for the list of flags"


def _is_bool(path: str) -> bool:
    return _field_names[0][1](path) if _field_names else False


TEXT = Wording()
CLI = FlagWording()
MAGIC = MagicWording()

_wording: contextvars.ContextVar[Wording] = contextvars.ContextVar("unsloth_nb_wording", default=TEXT)


def current_wording() -> Wording:
    return _wording.get()


@contextlib.contextmanager
def use_wording(wording: Wording) -> Iterator[Wording]:
    """Word every error message shown inside this block for one front end."""
    token = _wording.set(wording)
    try:
        yield wording
    finally:
        _wording.reset(token)


# ---------------------------------------------------------------------- errors
class UnslothNbError(Exception):
    """Base for errors whose message tells the user what to change.

    ``field`` is the config path the mistake is about (None when it is not one
    field), so a form can mark it; ``str()`` words the message for the front end
    in force (see :func:`use_wording`).
    """

    #: Exit code the CLI uses for this error (2: bad input).
    exit_code: int = 2
    field: str | None = None

    @property
    def template(self) -> str:
        """The message with its field references unworded."""
        return str(self.args[0]) if self.args else ""

    def render(self, wording: Wording | None = None) -> str:
        return (wording or current_wording()).render(self.template)

    def __str__(self) -> str:
        return self.render()

    def errors(self) -> list[UnslothNbError]:
        """The single mistakes this error holds (itself, unless it holds several)."""
        return [self]


class ConfigError(UnslothNbError):
    """A TrainConfig field has a value that is not allowed."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(message)

    @property
    def reason(self) -> str:
        """What is wrong with the field, worded for the front end in force (without the field's name)."""
        return current_wording().render(self.message)

    def render(self, wording: Wording | None = None) -> str:
        wording = wording or current_wording()
        return f"{wording.heading(self.field or 'config')}: {wording.render(self.message)}"


class DatasetError(UnslothNbError):
    """A dataset could not be read or has rows that cannot be trained on.

    ``problems`` holds every ``file:line: what is wrong`` line found; the message
    shows the first few so a 10,000-row mistake does not flood a cell.
    """

    shown = 5
    field = "dataset.path"

    def __init__(self, summary: str, problems: list[str] | None = None, hint: str = "") -> None:
        self.problems = list(problems or [])
        self.summary = summary
        self.hint = hint
        lines = [summary]
        lines += [f"  {p}" for p in self.problems[: self.shown]]
        if len(self.problems) > self.shown:
            lines.append(f"  ... and {len(self.problems) - self.shown} more")
        if hint:
            lines.append(hint)
        super().__init__("\n".join(lines))


class MissingSecretError(UnslothNbError):
    """Keys the job needs are not set; the message names every one of them.

    ``can_prompt`` says whether this front end could have asked for them in a
    hidden prompt; where it cannot, the message does not offer one.
    """

    def __init__(self, variable: str, purpose: str, *, more: Sequence[tuple[str, str]] = (), can_prompt: bool = False) -> None:
        self.missing = [(variable, purpose), *more]
        self.variable = variable
        self.variables = [name for name, _ in self.missing]
        self.can_prompt = can_prompt
        or_prompt = " or enter it when prompted" if can_prompt else ""
        if len(self.missing) == 1:
            text = f"{variable} is not set; it is needed {purpose}. Set it in the environment (export {variable}=...){or_prompt}."
        else:
            needed = "; ".join(f"{name} (needed {why})" for name, why in self.missing)
            exports = " ".join(f"{name}=..." for name in self.variables)
            or_prompt = " or enter them when prompted" if can_prompt else ""
            text = f"{len(self.missing)} keys are not set: {needed}. Set them in the environment (export {exports}){or_prompt}."
        super().__init__(text)

    @classmethod
    def of(cls, missing: Sequence[tuple[str, str]], *, can_prompt: bool = False) -> MissingSecretError:
        (variable, purpose), *more = missing
        return cls(variable, purpose, more=more, can_prompt=can_prompt)


class PlanError(UnslothNbError):
    """The job cannot be placed anywhere as configured."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        if field is not None:
            self.field = field
        super().__init__(message)


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


class InputErrors(UnslothNbError):
    """Several mistakes found in one pass (config, dataset, model, keys), shown together.

    Raised only for two or more: one mistake is raised as itself. ``errors()``
    lists them, each with its own ``field`` so a form can mark every one.
    """

    def __init__(self, errors: Sequence[UnslothNbError]) -> None:
        flat: list[UnslothNbError] = []
        for error in errors:
            flat += error.errors()
        self._errors = flat
        self.exit_code = max((e.exit_code for e in flat), default=2)
        super().__init__(f"{len(flat)} problems")

    def errors(self) -> list[UnslothNbError]:
        return list(self._errors)

    def render(self, wording: Wording | None = None) -> str:
        wording = wording or current_wording()
        lines = [f"{len(self._errors)} problems; nothing was started:"]
        for error in self._errors:
            first, *rest = error.render(wording).splitlines() or [""]
            lines.append(f"- {first}")
            lines += [f"  {line}" for line in rest]
        return "\n".join(lines)


def raise_all(errors: Iterable[UnslothNbError]) -> None:
    """Raise nothing, the one error, or all of them together."""
    found = [e for error in errors for e in error.errors()]
    if len(found) == 1:
        raise found[0]
    if found:
        raise InputErrors(found)


class Problems:
    """Collects the mistakes of one pass; ``attempt`` runs a check and keeps its error instead of stopping."""

    def __init__(self, earlier: Iterable[UnslothNbError] = ()) -> None:
        self.found: list[UnslothNbError] = [e for error in earlier for e in error.errors()]

    def attempt(self, check: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return check(*args, **kwargs)
        except UnslothNbError as exc:
            if exc.exit_code != 2:
                raise
            self.found += exc.errors()
            return None

    def add(self, error: UnslothNbError | None) -> None:
        if error is not None:
            self.found += error.errors()

    def __bool__(self) -> bool:
        return bool(self.found)

    def raise_if_any(self) -> None:
        raise_all(self.found)
