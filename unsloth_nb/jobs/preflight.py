"""Preflight: everything that can fail because of the user's input, before anything starts.

``prepare`` reads and checks the dataset, plans the job (placement, memory, GPUs,
cost), checks the model source and the keys the job needs, synchronously, so a
mistake is a short message and never a half-started job or a pod.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from unsloth_nb.backends.base import SecretNeed
from unsloth_nb.backends.registry import get_backend
from unsloth_nb.config import TrainConfig
from unsloth_nb.credentials import get_secret
from unsloth_nb.data import PreparedDataset, prepare_dataset
from unsloth_nb.phases.runner import phases_for, secrets_of
from unsloth_nb.planning.planner import POD_CHECKPOINT_EVERY_S, Plan, check_model_source, default_save_steps, plan


@dataclass
class Prepared:
    """A config that passed every check, with its dataset and plan."""

    config: TrainConfig
    dataset: PreparedDataset
    plan: Plan
    base_dir: Path


def prepare(
    config: TrainConfig,
    base_dir: str | Path | None = None,
    *,
    prompt_for_secrets: bool = False,
    check_secrets: bool = True,
) -> Prepared:
    """Validate the dataset, plan the job and check keys; raise UnslothNbError on any user mistake.

    ``check_secrets=False`` is for showing a plan: looking at what a RunPod job would
    cost must not need a RunPod key.
    """
    base = Path(base_dir or Path.cwd()).resolve()
    dataset = prepare_dataset(config.dataset, config.train.max_seq_length, base_dir=str(base))
    job_plan = plan(config, dataset.summary)
    every = default_save_steps(job_plan) if config.train.save_steps is None else None
    if every is not None:
        # A paid pod can vanish: keep checkpoints unless the user chose, and say so in the plan.
        config = dataclasses.replace(config, train=dataclasses.replace(config.train, save_steps=every))
        job_plan = plan(config, dataset.summary)
        job_plan.reasons.append(
            f"train.save_steps set to {every}: a checkpoint about every {POD_CHECKPOINT_EVERY_S / 60:.0f} min of "
            "training on the pod (set train.save_steps to choose)."
        )
    check_model_source(config, job_plan.placement)
    if not check_secrets:
        return Prepared(config, dataset, job_plan, base)
    for need in secrets_needed(config, job_plan.placement):
        get_secret(need.name, need.purpose, prompt=prompt_for_secrets)
    return Prepared(config, dataset, job_plan, base)


def secrets_needed(config: TrainConfig, placement: str | None) -> list[SecretNeed]:
    """Every key this job needs on this machine: its phases' (wherever they run, they are sent from
    here) and the placement's own."""
    required, _ = secrets_of(config, phases_for(config))
    needed = [SecretNeed(name, why) for name, why in required.items()]
    if placement is not None:
        needed += get_backend(placement).secrets(config)
    return needed


__all__ = ["Prepared", "prepare", "secrets_needed"]
