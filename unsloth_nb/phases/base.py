"""What a phase is: one step of a job (enhance, load, train, save, export, evaluate) behind one small interface.

A job is an ordered list of phases. Each phase emits events through the hooks, honours Stop, declares
what it needs (secrets, where it must run), and returns a :class:`PhaseResult`: named artifacts and
JSON-safe metrics. Results merge into one result that travels unchanged from the kernel or the pod to
the job record (``PhaseResult.to_json`` / ``from_json``), so nothing is retyped on the way.

This module stays light and importable on the pod: no torch, no package-internal heavy imports.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from unsloth_nb.config import TrainConfig
    from unsloth_nb.data import PreparedDataset

#: Where a phase may run. ``model``: where the model is (the kernel, or the pod). ``client``: on the
#: user's machine only, because it calls a paid API whose key must never leave it (teacher, judge).
RunsOn = Literal["model", "client"]
MetricValue = float | int | str | bool | None


@dataclass(frozen=True)
class Artifact:
    """A file or folder a phase wrote. ``path`` is relative to the job's output folder (posix), so it
    means the same on the pod and on this machine; ``sha256`` is computed when the file is saved."""

    name: str
    path: str
    kind: Literal["file", "dir"] = "dir"
    bytes: int | None = None
    sha256: str | None = None
    url: str | None = None  # where it was pushed (the Hub), when it was

    def local_path(self, output_dir: Path) -> Path:
        return Path(output_dir) / self.path


@dataclass
class PhaseResult:
    """Named artifacts plus metrics; the one result type of every phase, backend and job record."""

    artifacts: dict[str, Artifact] = field(default_factory=dict)
    metrics: dict[str, MetricValue] = field(default_factory=dict)
    stopped: bool = False
    stop_reason: str | None = None
    #: How a job that succeeded got there, when it is worth saying (e.g. it finished while nobody watched).
    note: str | None = None

    def merge(self, other: PhaseResult) -> PhaseResult:
        """Later phases win on name clashes; a stop anywhere stops the whole."""
        return PhaseResult(
            artifacts={**self.artifacts, **other.artifacts},
            metrics={**self.metrics, **other.metrics},
            stopped=self.stopped or other.stopped,
            stop_reason=self.stop_reason or other.stop_reason,
            note=self.note or other.note,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "artifacts": {name: asdict(artifact) for name, artifact in self.artifacts.items()},
            "metrics": dict(self.metrics),
            "stopped": self.stopped,
            "stop_reason": self.stop_reason,
            **({"note": self.note} if self.note else {}),
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> PhaseResult:
        return cls(
            artifacts={name: Artifact(**value) for name, value in (raw.get("artifacts") or {}).items()},
            metrics=dict(raw.get("metrics") or {}),
            stopped=bool(raw.get("stopped", False)),
            stop_reason=raw.get("stop_reason"),
            note=raw.get("note"),
        )


@dataclass(frozen=True)
class PhaseNeeds:
    """What a phase needs from the place that runs it: secrets by environment-variable name, and where.

    ``secrets`` must be set before the job starts (``why`` is said when one is missing);
    ``optional_secrets`` go along when set (a gated base model downloads with HF_TOKEN).
    A pod receives exactly the secrets its phases name here.
    """

    secrets: tuple[str, ...] = ()
    runs_on: RunsOn = "model"
    why: str = ""
    optional_secrets: tuple[str, ...] = ()


@runtime_checkable
class PhaseHooks(Protocol):
    """How a phase talks to whoever runs it (the controller, the pod worker, a test)."""

    def emit(self, kind: str, /, **data: Any) -> None: ...

    def should_stop(self) -> bool: ...

    def enter(self, state: str) -> None: ...


@dataclass
class PhaseContext:
    """What a phase gets. ``shared`` hands in-process objects from one phase to the next (the loaded
    model and tokenizer) and is never serialised; ``result`` is what earlier phases returned."""

    config: TrainConfig
    output_dir: Path
    hooks: PhaseHooks
    dataset: PreparedDataset | None = None
    shared: dict[str, Any] = field(default_factory=dict)
    result: PhaseResult = field(default_factory=PhaseResult)
    resume_from_checkpoint: str | bool | None = None


@runtime_checkable
class Phase(Protocol):
    """One step of a job. ``state`` is the lifecycle state (``unsloth_nb.jobrun.lifecycle``) while it runs."""

    name: str
    state: str
    #: Whether the phase still runs after an earlier one stopped early (save keeps what training did).
    runs_after_stop: bool

    def applies(self, config: TrainConfig) -> bool:
        """Whether this job has this phase (e.g. evaluate only with a ``judge:`` section)."""
        ...

    def needs(self, config: TrainConfig) -> PhaseNeeds: ...

    def run(self, ctx: PhaseContext) -> PhaseResult: ...


__all__ = ["Artifact", "MetricValue", "Phase", "PhaseContext", "PhaseHooks", "PhaseNeeds", "PhaseResult", "RunsOn"]
