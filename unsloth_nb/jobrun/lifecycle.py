"""The job lifecycle vocabulary: every state and event kind, and the sets derived from them.

One module, importable on the pod (no heavy imports, no package-internal imports), so that the
controller, the store, the worker, the event relay, the engine and the views agree on one spelling.
A new phase adds its state here and nowhere else.
"""

from __future__ import annotations

from typing import Final, Literal

# ---------------------------------------------------------------------------------- job states
CREATED: Final = "created"
PLANNING: Final = "planning"
PROVISIONING: Final = "provisioning"
STARTING: Final = "starting"  # the engine's load phase
UPLOADING: Final = "uploading"
ENHANCING: Final = "enhancing"  # a teacher improves the data (client side)
TRAINING: Final = "training"
SAVING: Final = "saving"
EXPORTING: Final = "exporting"  # GGUF / merged exports after saving
EVALUATING: Final = "evaluating"  # answers generated, then judged on the client
DOWNLOADING: Final = "downloading"
TERMINATING: Final = "terminating"
SUCCEEDED: Final = "succeeded"
FAILED: Final = "failed"
CANCELLED: Final = "cancelled"

JobState = Literal[
    "created",
    "planning",
    "provisioning",
    "starting",
    "uploading",
    "enhancing",
    "training",
    "saving",
    "exporting",
    "evaluating",
    "downloading",
    "terminating",
    "succeeded",
    "failed",
    "cancelled",
]

#: Every state, in the order a job passes through them.
JOB_STATES: tuple[str, ...] = (
    CREATED,
    PLANNING,
    PROVISIONING,
    STARTING,
    UPLOADING,
    ENHANCING,
    TRAINING,
    SAVING,
    EXPORTING,
    EVALUATING,
    DOWNLOADING,
    TERMINATING,
    SUCCEEDED,
    FAILED,
    CANCELLED,
)
#: A job in one of these has ended; nothing moves it again.
TERMINAL_STATES: frozenset[str] = frozenset({SUCCEEDED, FAILED, CANCELLED})
#: The states a phase puts a job in while it runs (where the engine or the worker is busy).
PHASE_STATES: frozenset[str] = frozenset({ENHANCING, STARTING, TRAINING, SAVING, EXPORTING, EVALUATING})
#: Phase states that run where the model is (kernel or pod); a pod's status events in these are mirrored.
ENGINE_STATES: frozenset[str] = frozenset({STARTING, TRAINING, SAVING, EXPORTING, EVALUATING})
#: Not yet ended.
ACTIVE_STATES: frozenset[str] = frozenset(JOB_STATES) - TERMINAL_STATES
#: Training is over (saving or later): a progress bar for the steps can close.
AFTER_TRAINING_STATES: frozenset[str] = frozenset(JOB_STATES[JOB_STATES.index(SAVING) :])

# ---------------------------------------------------------------------------------- event kinds
STATUS: Final = "status"
METRICS: Final = "metrics"
PROGRESS: Final = "progress"
LOG: Final = "log"
CHECKPOINT: Final = "checkpoint"
ARTIFACT: Final = "artifact"
COST: Final = "cost"
ERROR: Final = "error"
SUMMARY: Final = "summary"
EVALUATION: Final = "evaluation"
RESULT: Final = "result"  # a phase's named artifacts and metrics, as one PhaseResult

EventKind = Literal[
    "status", "metrics", "progress", "log", "checkpoint", "artifact", "cost", "error", "summary", "evaluation", "result"
]
EVENT_KINDS: tuple[str, ...] = (STATUS, METRICS, PROGRESS, LOG, CHECKPOINT, ARTIFACT, COST, ERROR, SUMMARY, EVALUATION, RESULT)

__all__ = [
    "ACTIVE_STATES",
    "AFTER_TRAINING_STATES",
    "ENGINE_STATES",
    "EVENT_KINDS",
    "JOB_STATES",
    "PHASE_STATES",
    "TERMINAL_STATES",
    "EventKind",
    "JobState",
]
