"""The ``enhance`` phase: the teacher rewrites the training rows on this machine before the model's phases.

It runs on the client only (``runs_on="client"``): the teacher's key never goes to a pod. It reads the training
rows preflight prepared (after the judge's held-out split, so nothing held out is ever sent to be augmented),
asks about the estimate above ``teacher.confirm_above_usd`` (the front end's ``--yes`` covers it, as it covers the
judge's), runs the teacher, reads the enhanced file back through the dataset validation a user's file gets, and
hands the new rows to the backend (``ctx.dataset``), local or pod alike. A cap reached fails the job before any
training, with the rows done kept and cached; a Stop ends it there. With ``hub.repo_id`` the enhanced set and its
card are pushed to the dataset repo of that id (``teacher/hub_push.py``) before training starts.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from unsloth_nb.jobrun.lifecycle import ENHANCING
from unsloth_nb.phases.base import MetricValue, PhaseContext, PhaseNeeds, PhaseResult

if TYPE_CHECKING:
    from unsloth_nb.config import TrainConfig
    from unsloth_nb.data import PreparedDataset


class EnhancePhase:
    name = "enhance"
    state = ENHANCING
    runs_after_stop = False

    def applies(self, config: TrainConfig) -> bool:
        return config.teacher.enabled

    def needs(self, config: TrainConfig) -> PhaseNeeds:
        from unsloth_nb.llm import provider_secret

        teacher = config.teacher
        variable = provider_secret(teacher.provider)
        why = f"for the {teacher.provider} teacher ({teacher.model})" if variable else ""
        secrets = (variable,) if variable else ()
        if config.hub.repo_id:  # the enhanced set goes to the dataset repo of the same id, from this machine
            secrets, why = (
                (*secrets, "HF_TOKEN"),
                (why + "; " if why else "") + f"to push the enhanced dataset to {config.hub.repo_id}",
            )
        return PhaseNeeds(secrets=secrets, runs_on="client", why=why)

    def run(self, ctx: PhaseContext) -> PhaseResult:
        from unsloth_nb.evaluate.in_job import folder_artifact
        from unsloth_nb.teacher.estimate import confirm_or_raise, estimate
        from unsloth_nb.teacher.run import CARD_FILE, TeacherError, enhance_rows, teacher_folder

        dataset = ctx.dataset
        if dataset is None:
            raise TeacherError("the teacher has no training rows: the dataset was not prepared in this process")
        teacher = ctx.config.teacher
        folder = Path(str(ctx.shared.get("job_folder") or ctx.output_dir))
        heldout = ctx.shared.get("heldout")
        questions = [item.question for item in getattr(heldout, "items", [])]
        found = estimate(teacher, dataset.train, dataset.origins)
        ctx.hooks.emit("log", level="info", message=found.line(teacher), source="teacher")
        confirm_or_raise(teacher, found, yes=bool(ctx.shared.get("judge_yes")), confirm=ctx.shared.get("teacher_confirm"))
        outcome = enhance_rows(
            dataset.train,
            dataset.origins,
            teacher,
            teacher_folder(folder),
            heldout_questions=questions,
            emit=ctx.hooks.emit,
            stop=ctx.hooks.should_stop,
        )
        ctx.hooks.emit("cost", source="teacher", usd_so_far=round(outcome.usd, 6))
        ctx.hooks.emit("log", level="info", message=outcome.summary_line(), source="teacher")
        if outcome.status == "budget":
            raise TeacherError(outcome.message)
        metrics: dict[str, MetricValue] = {
            "teacher_usd": round(outcome.usd, 6),
            "teacher_rows": len(outcome.rows),
            "teacher_improved": outcome.counts.get("improved", 0),
            "teacher_paraphrases": outcome.counts.get("paraphrases", 0),
            "teacher_rejected": sum(outcome.rejected.values()),
        }
        if outcome.status == "stopped":
            return PhaseResult(metrics=metrics, stopped=True, stop_reason=f"stopped while enhancing: {outcome.message}")
        assert outcome.path is not None
        ctx.dataset = enhanced_dataset(ctx.config, dataset, outcome.path)
        ctx.hooks.emit("summary", **ctx.dataset.summary.to_event())
        enhanced = folder_artifact("enhanced_dataset", outcome.path, ctx.output_dir)
        if ctx.config.hub.repo_id:
            enhanced = dataclasses.replace(enhanced, url=push_to_hub(ctx, outcome.path, outcome.card))
        return PhaseResult(
            artifacts={
                "enhanced_dataset": enhanced,
                "dataset_card": folder_artifact("dataset_card", teacher_folder(folder) / CARD_FILE, ctx.output_dir),
            },
            metrics=metrics,
        )


def push_to_hub(ctx: PhaseContext, rows: Path, card: dict[str, object]) -> str | None:
    """``hub.repo_id`` as a dataset repo beside the adapter; a failed push is a warning, never a lost training run."""
    from unsloth_nb.errors import UnslothNbError
    from unsloth_nb.teacher.hub_push import push_enhanced

    hub = ctx.config.hub
    assert hub.repo_id is not None
    try:
        url = push_enhanced(rows, card, hub.repo_id, hub.private)
    except UnslothNbError as exc:
        ctx.hooks.emit("log", level="warning", source="teacher", message=f"{exc}; the enhanced rows are kept at {rows}")
        return None
    ctx.hooks.emit("log", level="info", source="teacher", message=f"enhanced dataset pushed to {url}")
    return url


def enhanced_dataset(config: TrainConfig, original: PreparedDataset, path: Path) -> PreparedDataset:
    """The enhanced file read back through the validation a user's file gets; the eval rows stay the user's."""
    from unsloth_nb.config import DatasetConfig
    from unsloth_nb.data import prepare_dataset

    checked = prepare_dataset(DatasetConfig(path=str(path), long_rows=config.dataset.long_rows), config.train.max_seq_length)
    summary = dataclasses.replace(checked.summary, eval_rows=original.summary.eval_rows)
    return dataclasses.replace(original, train=checked.train, origins=checked.origins, summary=summary)
