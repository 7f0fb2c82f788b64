"""The training itself: one path, the same in the kernel, in the CLI and on a RunPod pod.

The engine's modules (:mod:`.model` loads, :mod:`.sft` trains, :mod:`.save` saves) use
Unsloth's real API on whatever device there is: CUDA on a GPU, Unsloth's CPU backend
otherwise. They report through ``EngineHooks`` (events, Stop, state changes), never touch
UI and are safe to call from a worker thread; heavy libraries load only when they run.
The phases in :mod:`unsloth_nb.phases` (load, train, save) put them in order.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from unsloth_nb.engine.save import generate, load_for_inference

if TYPE_CHECKING:
    from unsloth_nb.jobrun.events import EventLog


@runtime_checkable
class EngineHooks(Protocol):
    """How the engine talks to whoever runs it (the job controller, the pod worker, a test)."""

    def emit(self, kind: str, /, **data: Any) -> None:
        """Record an event (kinds and keys as in ``unsloth_nb.jobrun.events.PAYLOAD_KEYS``).

        ``kind`` is positional-only because artifact payloads carry a ``kind`` key of their own.
        """

    def should_stop(self) -> bool:
        """True once the user asked to stop; checked after every optimizer step."""

    def enter(self, state: str) -> None:
        """The engine moved to ``starting`` (loading), ``training`` or ``saving``."""


class LogHooks:
    """EngineHooks over an EventLog and a threading.Event: enough for the worker, the CLI and tests.

    ``on_enter`` receives each phase (the controller turns them into status events);
    ``states`` keeps them in order for whoever wants to look afterwards.
    """

    def __init__(self, log: EventLog, stop: threading.Event | None = None, on_enter: Callable[[str], None] | None = None) -> None:
        self.log = log
        self.stop_event = stop or threading.Event()
        self.on_enter = on_enter
        self.states: list[str] = []

    def emit(self, kind: str, /, **data: Any) -> None:
        self.log.emit(kind, **data)

    def should_stop(self) -> bool:
        return self.stop_event.is_set()

    def enter(self, state: str) -> None:
        self.states.append(state)
        if self.on_enter is not None:
            self.on_enter(state)

    def stop(self) -> None:
        self.stop_event.set()


__all__ = [
    "EngineHooks",
    "LogHooks",
    "generate",
    "load_for_inference",
]
