"""What the controller and a backend agree on: the job's inputs going in, the result coming out.

Kept apart from the controller so that data flows one way: the controller imports
this and picks a backend (``controller.backend_for``); backends import this, never the controller.
"""

from __future__ import annotations

import contextvars
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from unsloth_nb.config import TrainConfig
    from unsloth_nb.data import PreparedDataset
    from unsloth_nb.jobs.events import Event, EventLog
    from unsloth_nb.jobs.store import JobFolder, JobRecord
    from unsloth_nb.planning.planner import Plan


@dataclass
class BackendResult:
    adapter_dir: Path | None = None
    merged_dir: Path | None = None
    last_checkpoint: Path | None = None
    global_step: int = 0
    final_loss: float | None = None
    stopped: bool = False
    stop_reason: str | None = None  # why a backend stopped early (a budget or deadline), shown as the job's end reason
    model: Any = None
    tokenizer: Any = None


@dataclass
class JobContext:
    """What a backend gets: the job's inputs, its log and its stop flag.

    ``plan`` and ``dataset`` are None when a process reattaches to a job it did not
    start (they lived in the process that died); a backend that needs them again
    (the RunPod backend moving to a new pod) reads the dataset and plans anew.
    """

    job_id: str
    config: TrainConfig
    plan: Plan | None
    dataset: PreparedDataset | None
    log: EventLog
    folder: JobFolder
    output_dir: Path
    stop_event: threading.Event
    set_state: Any  # Callable[[str, str | None], None]
    record: JobRecord
    context: contextvars.Context = field(default_factory=contextvars.copy_context)
    stop_reasons: list[str] = field(default_factory=list)  # why Stop was asked for, first one first

    @property
    def stop_requested(self) -> bool:
        return self.stop_event.is_set()

    @property
    def stop_reason(self) -> str:
        """What the user gave as the reason to stop (a job's end reason says it)."""
        return self.stop_reasons[0] if self.stop_reasons else "stopped by the user"

    def emit(self, kind: str, /, **data: Any) -> Event:
        return self.log.emit(kind, **data)


class Backend(Protocol):
    name: str

    async def run(self, ctx: JobContext) -> BackendResult: ...
