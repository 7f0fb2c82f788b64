"""The ``judge`` phase: judging on the user's machine, never on a pod, so the judge's key never leaves it.

It reads the answers artifact (``evaluation/answers.jsonl`` under the output folder; a pod's comes back with
the adapter) and writes the report (``evaluation.json`` and ``evaluation.html``) into the job folder
(``ctx.shared["job_folder"]``, else the output folder). ``ctx.shared["judge_yes"]`` / ``["judge_confirm"]``
carry the front end's answer to the cost question; without either, an estimate above
``judge.confirm_above_usd`` stops the phase with a message (``unsloth-nb eval <job-id>`` asks).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from unsloth_nb.jobrun.lifecycle import EVALUATING
from unsloth_nb.phases.base import PhaseContext, PhaseNeeds, PhaseResult

if TYPE_CHECKING:
    from unsloth_nb.config import TrainConfig


class JudgePhase:
    name = "judge"
    state = EVALUATING
    runs_after_stop = False

    def applies(self, config: TrainConfig) -> bool:
        return config.judge.enabled

    def needs(self, config: TrainConfig) -> PhaseNeeds:
        from unsloth_nb.llm import provider_secret

        variable = provider_secret(config.judge.provider)
        why = f"for the {config.judge.provider} judge ({config.judge.model})"
        return PhaseNeeds(secrets=(variable,) if variable else (), runs_on="client", why=why if variable else "")

    def run(self, ctx: PhaseContext) -> PhaseResult:
        from unsloth_nb.errors import UnslothNbError
        from unsloth_nb.evaluate.in_job import evaluation_failed, failed_before

        if failed_before(ctx):  # the answers phase failed and said why; there is nothing to judge
            return PhaseResult()
        try:
            return self._judge(ctx)
        except UnslothNbError as exc:  # the trained job stays a success; `unsloth-nb eval` can finish this
            return evaluation_failed(ctx, exc)

    def _judge(self, ctx: PhaseContext) -> PhaseResult:
        from unsloth_nb.evaluate.answers import AnswerSet
        from unsloth_nb.evaluate.holdout import HeldOut
        from unsloth_nb.evaluate.in_job import folder_artifact, say_summary
        from unsloth_nb.evaluate.report import REPORT_HTML, REPORT_JSON
        from unsloth_nb.evaluate.run import EvaluationError, judge_and_report, teacher_model_of

        folder = Path(ctx.shared.get("job_folder") or ctx.output_dir)
        answers = AnswerSet.load(ctx.output_dir)
        if answers is None:
            raise EvaluationError("the answers artifact (evaluation/answers.jsonl) is missing; the answers phase did not run")
        heldout = ctx.shared.get("heldout") or HeldOut.load(folder) or HeldOut.load(ctx.output_dir) or HeldOut([], "unknown")
        report = judge_and_report(
            answers,
            heldout,
            ctx.config.judge,
            folder,
            job_id=ctx.shared.get("job_id"),
            teacher_model=teacher_model_of(ctx.config),
            yes=bool(ctx.shared.get("judge_yes")),
            confirm=ctx.shared.get("judge_confirm"),
            client=ctx.shared.get("judge_client"),
            emit=ctx.hooks.emit,
            stop=ctx.hooks.should_stop,
        )
        ctx.shared["evaluation"] = report
        if report.error:
            raise EvaluationError(f"the judge failed: {report.error}; rows judged so far are in {folder / REPORT_JSON}")
        say_summary(ctx, report)
        ci = report.ci95
        return PhaseResult(
            artifacts={
                "evaluation": folder_artifact("evaluation", folder / REPORT_JSON, ctx.output_dir),
                "evaluation_html": folder_artifact("evaluation_html", folder / REPORT_HTML, ctx.output_dir),
            },
            metrics={
                "eval_wins": report.wins,
                "eval_ties": report.ties,
                "eval_losses": report.losses,
                "eval_win_rate": report.win_rate,
                "eval_ci_low": ci[0] if ci else None,
                "eval_ci_high": ci[1] if ci else None,
                "eval_consistency": report.consistency,
                "judge_usd": round(report.cost_usd, 6),
            },
        )
