"""What the teacher adds to preflight: its held-out split (when no judge makes one), its plan lines, its warnings."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from unsloth_nb.config import TrainConfig
    from unsloth_nb.data import PreparedDataset
    from unsloth_nb.evaluate.holdout import HeldOut


def teacher_holdout(config: TrainConfig, dataset: PreparedDataset) -> tuple[PreparedDataset, HeldOut] | None:
    """``teacher.holdout`` rows split off before augmentation (no judge: section made a split); recorded in the job
    folder like the judge's, so ``unsloth-nb eval`` later scores on questions never trained on, nor paraphrased."""
    from unsloth_nb.evaluate.holdout import split_holdout

    if config.teacher.holdout <= 0 or config.judge.enabled:
        return None
    train, origins, heldout = split_holdout(dataset.train, dataset.origins, config.teacher.holdout, config.train.seed)
    summary = dataclasses.replace(dataset.summary, rows=len(train))
    return dataclasses.replace(dataset, train=train, origins=origins, summary=summary), heldout


def teacher_plan_lines(config: TrainConfig, dataset: PreparedDataset) -> tuple[list[str], list[str], float | None]:
    """(plan reasons: the estimate, warnings: a judge of the teacher's own family, the estimated dollars capped by
    teacher.max_cost_usd, for the plan's whole-job figure)."""
    from unsloth_nb.teacher.estimate import estimate
    from unsloth_nb.teacher.prompts import load_prompt

    for operation in config.teacher.operations:
        load_prompt(operation, config.teacher.prompts)  # a broken prompt file is a mistake to report now
    found = estimate(config.teacher, dataset.train, dataset.origins)
    reasons = [found.line(config.teacher)]
    warnings: list[str] = []
    if config.judge.enabled:
        from unsloth_nb.evaluate.judging import same_family_warning

        warning = same_family_warning(config.judge.model, config.teacher.model)
        if warning:
            warnings.append(warning)
    return reasons, warnings, found.capped_usd(config.teacher)


__all__ = ["teacher_holdout", "teacher_plan_lines"]
