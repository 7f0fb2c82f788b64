"""Evaluation inside a job: what the answers and judge phases do when they fail or finish.

An evaluation that fails never fails the trained job: the phase reports it (a log line and an
``evaluation`` event with ``error``), returns a result whose ``evaluation_error`` metric tells the
next evaluation phase to stand down, and the adapter stays as it is; ``unsloth-nb eval <job-id>``
can finish the evaluation later.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from unsloth_nb.credentials import redact
from unsloth_nb.jobrun.lifecycle import EVALUATION, LOG
from unsloth_nb.phases.base import Artifact, PhaseContext, PhaseResult

#: The metric a failed evaluation phase leaves in the job's result (its message).
EVALUATION_ERROR = "evaluation_error"


def evaluation_failed(ctx: PhaseContext, exc: BaseException) -> PhaseResult:
    """Say why the evaluation failed, and hand back a result that keeps the training's."""
    message = redact(str(exc))
    ctx.hooks.emit(LOG, level="error", message=f"evaluation failed, the adapter is kept: {message}", source="judge")
    ctx.hooks.emit(EVALUATION, stage="failed", error=message)
    return PhaseResult(metrics={EVALUATION_ERROR: message})


def failed_before(ctx: PhaseContext) -> bool:
    """Whether an earlier evaluation phase of this job failed (and already said so)."""
    return bool(ctx.result.metrics.get(EVALUATION_ERROR))


def folder_artifact(name: str, file: Path, output_dir: Path) -> Artifact:
    """A file of the job folder named as artifacts are, relative to the output folder (``../evaluation.json``)."""
    return Artifact(name, Path(os.path.relpath(file, output_dir)).as_posix(), kind="file")


def say_summary(ctx: PhaseContext, report: Any) -> None:
    for line in report.summary_lines():
        ctx.hooks.emit(LOG, level="info", message=line, source="judge")


__all__ = ["EVALUATION_ERROR", "evaluation_failed", "failed_before", "folder_artifact", "say_summary"]
