"""The ``answers`` phase: both models answer the held-out questions, where the model is (kernel or pod).

It needs the loaded, trained model in ``ctx.shared`` (``model``, ``tokenizer``; the load/train phases put them
there) and the held-out questions, from ``ctx.shared["heldout"]`` or the file recorded at the start
(``evaluation/heldout.jsonl`` under the output folder, which travels to a pod with the job). It writes
``evaluation/answers.jsonl``, the artifact the client judges. No API key is involved. It is registered after
``save`` (:mod:`.evaluation`), so a pod runs it before it ends and its answers come back with the adapter. A
failure is reported and never fails the trained job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from unsloth_nb.jobrun.lifecycle import EVALUATING
from unsloth_nb.phases.base import Artifact, PhaseContext, PhaseNeeds, PhaseResult

if TYPE_CHECKING:
    from unsloth_nb.config import TrainConfig


class AnswersPhase:
    name = "answers"
    state = EVALUATING
    runs_after_stop = False  # a stopped training is not evaluated

    def applies(self, config: TrainConfig) -> bool:
        return config.judge.enabled

    def needs(self, config: TrainConfig) -> PhaseNeeds:
        return PhaseNeeds(secrets=(), runs_on="model")

    def run(self, ctx: PhaseContext) -> PhaseResult:
        from unsloth_nb.errors import UnslothNbError
        from unsloth_nb.evaluate.in_job import evaluation_failed

        try:
            return self._answer(ctx)
        except UnslothNbError as exc:  # the trained job stays a success; the judge phase stands down
            return evaluation_failed(ctx, exc)

    def _answer(self, ctx: PhaseContext) -> PhaseResult:
        from unsloth_nb.evaluate.answers import ANSWERS_FILE
        from unsloth_nb.evaluate.holdout import HeldOut
        from unsloth_nb.evaluate.run import EvaluationError, answers_for, limit_questions

        heldout = ctx.shared.get("heldout") or HeldOut.load(ctx.output_dir)
        if heldout is None or not heldout.items:
            raise EvaluationError(
                "no held-out questions reached the answers phase (evaluation/heldout.jsonl is missing or empty)"
            )
        heldout = limit_questions(heldout, ctx.config.judge)
        model, tokenizer = ctx.shared.get("model"), ctx.shared.get("tokenizer")
        loader = (lambda: (model, tokenizer)) if model is not None else None
        answers = answers_for(
            heldout,
            ctx.config.judge,
            ctx.output_dir,
            loader,
            ctx.hooks.emit,
            ctx.hooks.should_stop,
            generate=ctx.config.generate,
        )
        path = ctx.output_dir / ANSWERS_FILE
        artifact = Artifact("answers", ANSWERS_FILE, kind="file", bytes=path.stat().st_size)
        ctx.hooks.emit("artifact", name="answers", path=ANSWERS_FILE, bytes=artifact.bytes, kind="file")
        return PhaseResult(
            artifacts={"answers": artifact},
            metrics={"answers_questions": len(answers.pairs), "answers_seconds_per_answer": round(answers.seconds_per_answer, 4)},
        )
