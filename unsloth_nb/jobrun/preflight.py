"""Preflight: everything that can fail because of the user's input, before anything starts.

``prepare`` reads and checks the dataset, plans the job (placement, memory, GPUs,
cost), checks the model source (:mod:`.checks`: chat template, target modules) and
the keys the job needs, synchronously, so a mistake is a short message and never a
half-started job or a pod. Every mistake is reported in one pass, together with
those the entry point found earlier in the flags or fields.

The keys a job needs come from its phases and its placement's backend
(:func:`secrets_needed`); the missing ones are named all at once, and an entry
point that can prompt asks for them only after it has shown the plan.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unsloth_nb.backends.base import SecretNeed
from unsloth_nb.backends.registry import backend_names, get_backend
from unsloth_nb.config import TrainConfig
from unsloth_nb.credentials import get_secret, has_secret
from unsloth_nb.data import PreparedDataset, prepare_dataset
from unsloth_nb.data.remote import can_read_remotely, prepare_from_sample, upload_advice
from unsloth_nb.errors import MissingSecretError, Problems, UnslothNbError
from unsloth_nb.jobrun.checks import clamp_to_model, preflight_problems
from unsloth_nb.phases.runner import phases_for, secrets_of
from unsloth_nb.planning.planner import POD_CHECKPOINT_EVERY_S, Plan, check_model_source, default_save_steps, plan


@dataclass
class Prepared:
    """A config that passed every check, with its dataset and plan.

    ``missing_secrets`` are keys the entry point still has to ask for (in a hidden
    prompt, after showing the plan); :func:`~unsloth_nb.jobrun.controller.start_job`
    refuses to start while one is missing.
    """

    config: TrainConfig
    dataset: PreparedDataset
    plan: Plan
    base_dir: Path
    missing_secrets: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    heldout: Any = None  # evaluate.holdout.HeldOut: the judge's questions, kept out of training
    judge_yes: bool = False  # the front end's --yes: the judge's estimate need not be asked about

    def ask_for_secrets(self) -> None:
        """Ask for the keys still missing (hidden prompt, nothing stored); raise naming every one still missing."""
        ask_for_secrets(self.missing_secrets, can_prompt=True)
        self.missing_secrets = []

    def refuse_missing_secrets(self) -> None:
        """A job never starts without its keys: the entry point must have asked for them first."""
        still = [(name, why) for name, why in self.missing_secrets if not has_secret(name)]
        if still:
            raise MissingSecretError.of(still)


def prepare(
    config: TrainConfig,
    base_dir: str | Path | None = None,
    *,
    prompt_for_secrets: bool = False,
    check_secrets: bool = True,
    earlier: Sequence[UnslothNbError] = (),
) -> Prepared:
    """Validate the dataset, plan the job and check keys; raise every user mistake at once.

    ``earlier`` are mistakes already found (bad flags or fields, whose fields hold
    their defaults in ``config``): they are raised together with the ones found
    here, so one run shows them all. ``check_secrets=False`` is for showing a plan:
    looking at what a RunPod job would cost must not need a RunPod key. With
    ``prompt_for_secrets`` a missing key is not an error yet: the caller shows the
    plan, then asks (:meth:`Prepared.ask_for_secrets`).
    """
    base = Path(base_dir or Path.cwd()).resolve()
    found = Problems(earlier)
    bad_fields = {error.field or "" for error in found.found}
    config = clamp_to_model(config) if "model.name" not in bad_fields else config
    dataset = None
    remote = can_read_remotely(config.dataset, str(base)) and not config.judge.enabled
    if not any(field.startswith("dataset.") for field in bad_fields):
        # Remote sources: a sample is checked here; where training runs decides who reads them in full (below).
        read = prepare_from_sample if remote else prepare_dataset
        dataset = found.attempt(read, config.dataset, config.train.max_seq_length, base_dir=str(base))
    heldout = None
    if dataset is not None and config.judge.enabled and not any(f.startswith("judge.") for f in bad_fields):
        from unsloth_nb.evaluate.run import prepare_heldout

        split = found.attempt(prepare_heldout, config, dataset, base)
        if split is not None:
            dataset, heldout = split
    teacher_ok = dataset is not None and config.teacher.enabled and not any(f.startswith("teacher.") for f in bad_fields)
    if teacher_ok and heldout is None and dataset is not None:
        from unsloth_nb.teacher.preflight import teacher_holdout

        split = found.attempt(teacher_holdout, config, dataset)
        if split is not None:
            dataset, heldout = split
    summary = dataset.summary if dataset is not None else None
    if summary is not None and teacher_ok:
        from unsloth_nb.teacher.estimate import planned_summary

        summary = planned_summary(config.teacher, summary)  # size training for the rows the teacher adds
    job_plan = None
    planning = Problems()
    if "model.name" not in bad_fields:
        job_plan = planning.attempt(plan, config, summary)
    every = default_save_steps(job_plan) if job_plan is not None and config.train.save_steps is None else None
    if every is not None:
        # A paid pod can vanish: keep checkpoints unless the user chose, and say so in the plan.
        config = dataclasses.replace(config, train=dataclasses.replace(config.train, save_steps=every))
        job_plan = plan(config, summary)
        job_plan.reasons.append(
            f"train.save_steps set to {every}: a checkpoint about every {POD_CHECKPOINT_EVERY_S / 60:.0f} min of "
            "training on the pod (set train.save_steps to choose)."
        )
    spend: dict[str, float | None] = {}  # the teacher's estimate, for the plan's whole-job figure
    if heldout is not None and job_plan is not None:
        from unsloth_nb.evaluate.judging import preflight_line

        items = heldout.items[: config.judge.max_questions] if config.judge.max_questions else heldout.items
        job_plan.reasons.append(heldout.describe() + ".")
        job_plan.reasons.append(preflight_line(config.judge, [(item.question, item.reference) for item in items]))
    if teacher_ok and job_plan is not None and dataset is not None:
        from unsloth_nb.teacher.preflight import teacher_plan_lines

        lines = found.attempt(teacher_plan_lines, config, dataset)
        if lines is not None:
            job_plan.reasons += lines[0]
            job_plan.warnings += lines[1]
            spend["teacher"] = lines[2]
    if job_plan is not None:
        from unsloth_nb.jobrun.plan_costs import whole_job_line

        line = whole_job_line(config, job_plan, heldout, spend)
        if line:
            job_plan.reasons.append(line)
    placement: str | None = job_plan.placement if job_plan is not None else config.placement
    if placement not in backend_names():
        placement = None  # ``auto`` and no plan: not placed, so no placement's rules or keys apply
    if dataset is not None and dataset.reference is not None and (placement is None or get_backend(placement).in_process):
        # Training runs in this process: read every row here now (the cache keeps it for a rerun).
        dataset = found.attempt(prepare_dataset, config.dataset, config.train.max_seq_length, base_dir=str(base))
    if job_plan is not None and placement is not None and not get_backend(placement).in_process:
        advice = upload_advice(config.dataset, str(base))
        if advice:
            job_plan.reasons.append(advice)
    if "model.name" not in bad_fields:
        source = Problems()
        source.attempt(check_model_source, config, placement)
        # A model that is not there explains a plan that could not be made: say the cause only.
        found.found += source.found or planning.found
        found.found += preflight_problems(config, job_plan)
    missing = missing_secrets(config, placement) if check_secrets else []
    if missing and not prompt_for_secrets:
        found.add(MissingSecretError.of(missing))
    found.raise_if_any()
    assert dataset is not None and job_plan is not None  # no problem found means both were made
    return Prepared(config, dataset, job_plan, base, missing_secrets=missing, heldout=heldout)


# ---------------------------------------------------------------------- keys
def secrets_needed(config: TrainConfig, placement: str | None) -> list[SecretNeed]:
    """Every key this job needs on this machine: its phases' (wherever they run, they are sent from
    here) and the placement's own (none while the job is not placed)."""
    required, _ = secrets_of(config, phases_for(config))
    needed = [SecretNeed(name, why) for name, why in required.items()]
    if placement is not None:
        needed += [need for need in get_backend(placement).secrets(config) if need.name not in required]
    return needed


def missing_secrets(config: TrainConfig, placement: str | None) -> list[tuple[str, str]]:
    """(variable, what it is needed for) for every key this job needs that the environment lacks."""
    return [(need.name, need.purpose) for need in secrets_needed(config, placement) if not has_secret(need.name)]


def ask_for_secrets(missing: Sequence[tuple[str, str]], *, can_prompt: bool) -> None:
    """Ask for each missing key in a hidden prompt (after the plan was shown); raise naming all that stay missing."""
    still = []
    for name, why in missing:
        try:
            get_secret(name, why, prompt=can_prompt)
        except MissingSecretError:
            still.append((name, why))
    if still:
        raise MissingSecretError.of(still, can_prompt=False)


__all__ = ["Prepared", "ask_for_secrets", "missing_secrets", "prepare", "secrets_needed"]
