"""The plan's whole-job cost figure: the teacher's, the GPU's and the judge's estimates in the ledger's form.

Each part keeps its own line in the plan (with its requests, tokens, rate and cap); this adds one line that
sums them, ``Estimated cost of the whole job: ~$0.42 = teacher ~$0.10 + GPU ~$0.30 + judge ~$0.02``, the same
split the job view and the CLI show for what was actually spent (:mod:`unsloth_nb.jobrun.costs`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from unsloth_nb.jobrun.costs import estimate_line

if TYPE_CHECKING:
    from unsloth_nb.config import TrainConfig
    from unsloth_nb.planning.planner import Plan


def whole_job_line(config: TrainConfig, plan: Plan, heldout: Any, spend: dict[str, float | None]) -> str | None:
    """The line, or None when at most one part spends (a plain GPU job reads as before)."""
    from unsloth_nb.backends.registry import backend_names, get_backend

    parts: dict[str, float | None] = dict(spend) if config.teacher.enabled else {}
    if plan.placement in backend_names() and get_backend(plan.placement).rents:
        gpu = plan.estimated_cost_usd
        cap = config.runpod.max_cost_usd
        parts["gpu"] = min(gpu, cap) if gpu is not None and cap is not None else gpu
    if config.judge.enabled and heldout is not None:
        from unsloth_nb.evaluate.judging import planned_questions, preflight_estimate

        judged = preflight_estimate(config.judge, planned_questions(config.judge, heldout))
        cap = config.judge.max_cost_usd
        parts["judge"] = min(judged, cap) if judged is not None and cap is not None else judged
    return estimate_line(parts)


__all__ = ["whole_job_line"]
