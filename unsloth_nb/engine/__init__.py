"""The training itself: one path, the same in the kernel, in the CLI and on a RunPod pod.

``run_training`` takes a validated config and a prepared dataset, reports through
``EngineHooks`` (events, Stop, phase changes) and returns what it wrote. It uses Unsloth's
real API on whatever device there is: CUDA on a GPU, Unsloth's CPU backend otherwise. It
never touches UI and is safe to call from a worker thread; heavy libraries load only when
it runs.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from unsloth_nb.engine.save import check_requirements, generate, load_for_inference
from unsloth_nb.jobs.lifecycle import SAVING, STARTING, TRAINING

if TYPE_CHECKING:
    from unsloth_nb.config import TrainConfig
    from unsloth_nb.data import PreparedDataset
    from unsloth_nb.jobs.events import EventLog


@runtime_checkable
class EngineHooks(Protocol):
    """How the engine talks to whoever runs it (the job controller, the pod worker, a test)."""

    def emit(self, kind: str, /, **data: Any) -> None:
        """Record an event (kinds and keys as in ``unsloth_nb.jobs.events.PAYLOAD_KEYS``).

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

    def __init__(self, log: EventLog, stop: threading.Event | None = None, on_enter: Any = None) -> None:
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


@dataclass
class TrainResult:
    """What a run produced. ``model``/``tokenizer`` are the trained objects, for in-kernel jobs."""

    adapter_dir: Path | None
    merged_dir: Path | None
    last_checkpoint: Path | None
    global_step: int
    total_steps: int
    final_loss: float | None
    stopped: bool
    model: Any
    tokenizer: Any
    train_runtime: float


def run_training(
    config: TrainConfig,
    dataset: PreparedDataset,
    output_dir: Path,
    hooks: EngineHooks,
    resume_from_checkpoint: str | bool | None = None,
) -> TrainResult:
    """Load, train and save; returns early (``stopped``) when Stop comes before training starts.

    ``resume_from_checkpoint``: True for the newest checkpoint under ``output_dir/checkpoints``,
    or a checkpoint folder; training continues from that checkpoint's step.
    """
    from unsloth_nb.engine import model as model_module
    from unsloth_nb.engine import save as save_module
    from unsloth_nb.engine import sft

    check_requirements(config)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)

    hooks.enter(STARTING)
    loaded, dataset = model_module.load_model(config, dataset, hooks)
    if hooks.should_stop():
        hooks.emit("log", level="info", message="Stopped before training started.", source="engine")
        return TrainResult(None, None, None, 0, 0, None, True, loaded.model, loaded.tokenizer, 0.0)

    hooks.enter(TRAINING)
    outcome = sft.train(
        loaded.model,
        loaded.tokenizer,
        config,
        dataset,
        output_dir,
        hooks,
        on_gpu=model_module.cuda_available(),
        resume_from_checkpoint=resume_from_checkpoint,
    )

    hooks.enter(SAVING)
    adapter_dir, merged_dir = save_module.save_outputs(loaded.model, loaded.tokenizer, config, output_dir, hooks, outcome.stopped)
    return TrainResult(
        adapter_dir=adapter_dir,
        merged_dir=merged_dir,
        last_checkpoint=outcome.last_checkpoint,
        global_step=outcome.global_step,
        total_steps=outcome.total_steps,
        final_loss=outcome.final_loss,
        stopped=outcome.stopped,
        model=loaded.model,
        tokenizer=loaded.tokenizer,
        train_runtime=outcome.train_runtime,
    )


__all__ = [
    "EngineHooks",
    "LogHooks",
    "TrainResult",
    "check_requirements",
    "generate",
    "load_for_inference",
    "run_training",
]
