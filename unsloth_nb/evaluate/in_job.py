"""Evaluation as a job's last phases, until the phase runner drives them: called by the controller after a
successful training, on a worker thread of this process (the client).

It runs the ``answers`` phase here with the model the local backend left in memory (or reuses the answers
artifact a pod sent back) and the ``judge`` phase here. Whatever goes wrong is reported (a log line, an
``evaluation`` event with ``error``) and never raised: the training result and the adapter stay as they are,
and ``unsloth-nb eval <job-id>`` can finish the evaluation later.
"""

from __future__ import annotations

from typing import Any

from unsloth_nb.credentials import redact
from unsloth_nb.errors import UnslothNbError
from unsloth_nb.phases.base import PhaseContext, PhaseResult


class _Hooks:
    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx

    def emit(self, kind: str, /, **data: Any) -> None:
        self.ctx.emit(kind, **data)

    def should_stop(self) -> bool:
        return self.ctx.stop_requested

    def enter(self, state: str) -> None:
        self.ctx.set_state(state)


def evaluate_after_training(job: Any, ctx: Any, model: Any, tokenizer: Any, *, yes: bool = False) -> PhaseResult | None:
    """Answers then judge; returns the merged result, or None when evaluation failed (and said why)."""
    from unsloth_nb.evaluate.answers import AnswerSet
    from unsloth_nb.evaluate.holdout import HeldOut
    from unsloth_nb.phases.evaluation import evaluation_phases

    hooks = _Hooks(ctx)
    shared: dict[str, Any] = {
        "model": model,
        "tokenizer": tokenizer,
        "heldout": HeldOut.load(job.folder.path),
        "job_folder": job.folder.path,
        "job_id": job.id,
        "judge_yes": yes,
    }
    phase_ctx = PhaseContext(config=ctx.config, output_dir=ctx.output_dir, hooks=hooks, shared=shared)
    result = PhaseResult()
    answers, judge = evaluation_phases()
    try:
        ctx.set_state(answers.state)
        if model is not None or AnswerSet.load(ctx.output_dir) is None:
            result = result.merge(answers.run(phase_ctx))
        result = result.merge(judge.run(phase_ctx))
    except UnslothNbError as exc:
        message = redact(str(exc))
        ctx.emit("log", level="error", message=f"evaluation failed, the adapter is kept: {message}", source="judge")
        ctx.emit("evaluation", stage="failed", error=message)
        return None
    report = shared.get("evaluation")
    if report is not None:
        for line in report.summary_lines():
            ctx.emit("log", level="info", message=line, source="judge")
    for name in ("evaluation", "evaluation_html"):
        if name in result.artifacts:
            job.record.artifacts[name] = str(job.folder.path / result.artifacts[name].path)
    if "answers" in result.artifacts:
        job.record.artifacts["answers"] = str(ctx.output_dir / result.artifacts["answers"].path)
    return result


__all__ = ["evaluate_after_training"]
