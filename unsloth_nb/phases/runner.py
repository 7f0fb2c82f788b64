"""Runs a job's phases in order: each in its lifecycle state, Stop honoured between and within them.

The same runner serves the kernel (the local backend), the pod (the worker) and the
client's own phases (the controller, for phases with ``runs_on="client"``). After each
phase it emits a ``result`` event carrying that phase's :class:`PhaseResult`, so the
job's log (and, from a pod, the relay) sees every artifact by its relative path.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from unsloth_nb.errors import MissingSecretError
from unsloth_nb.jobrun.lifecycle import LOG, RESULT
from unsloth_nb.phases.base import Phase, PhaseContext, PhaseHooks, PhaseResult, RunsOn
from unsloth_nb.phases.registry import all_phases

if TYPE_CHECKING:
    from unsloth_nb.config import TrainConfig
    from unsloth_nb.data import PreparedDataset


def phases_for(config: TrainConfig, *, runs_on: RunsOn | None = None) -> list[Phase]:
    """This job's phases in order, optionally only those that run where the model is (or on the client)."""
    return [p for p in all_phases() if p.applies(config) and (runs_on is None or p.needs(config).runs_on == runs_on)]


def client_phases(config: TrainConfig) -> tuple[list[Phase], list[Phase]]:
    """The client's phases that run before the model's (enhance), and those after (evaluate)."""
    before: list[Phase] = []
    after: list[Phase] = []
    seen_model = False
    for phase in phases_for(config):
        if phase.needs(config).runs_on == "model":
            seen_model = True
        else:
            (after if seen_model else before).append(phase)
    return before, after


def secrets_of(config: TrainConfig, phases: list[Phase]) -> tuple[dict[str, str], list[str]]:
    """(required secret -> why, optional secrets) that these phases name."""
    required: dict[str, str] = {}
    optional: list[str] = []
    for phase in phases:
        needs = phase.needs(config)
        for name in needs.secrets:
            required.setdefault(name, needs.why or f"for the {phase.name} phase")
        optional += [name for name in needs.optional_secrets if name not in optional]
    return required, [name for name in optional if name not in required]


def check_needs(config: TrainConfig, phases: list[Phase], available: Mapping[str, str] | None = None) -> None:
    """Fail before any phase starts when a secret a phase must have is not set.

    ``available`` is where the secrets are looked for: this process's environment by
    default; a pod's worker passes those that came with the job request.
    """
    required, _ = secrets_of(config, phases)
    have = os.environ if available is None else available
    for name, why in required.items():
        if not have.get(name):
            raise MissingSecretError(name, why)


def run_phases(ctx: PhaseContext, phases: list[Phase]) -> PhaseResult:
    """Run ``phases`` in order and return their merged result (also left in ``ctx.result``).

    A Stop seen between phases ends the run there; a phase that stopped early (training)
    lets only the phases that keep its work (``runs_after_stop``: save) run after it.
    """
    check_needs(ctx.config, phases)
    for phase in phases:
        if ctx.result.stopped and not phase.runs_after_stop:
            break
        if phase is not phases[0] and not ctx.result.stopped and ctx.hooks.should_stop():
            ctx.hooks.emit(LOG, level="info", message=f"Stopped before {phase.state} started.", source="engine")
            ctx.result = ctx.result.merge(PhaseResult(stopped=True))
            break
        ctx.hooks.enter(phase.state)
        result = phase.run(ctx)
        ctx.hooks.emit(RESULT, phase=phase.name, **result.to_json())
        ctx.result = ctx.result.merge(result)
    return ctx.result


def run_model_phases(
    config: TrainConfig,
    dataset: PreparedDataset,
    output_dir: Path,
    hooks: PhaseHooks,
    resume_from_checkpoint: str | bool | None = None,
) -> PhaseContext:
    """Load, train and save here (the kernel, the pod, a test): the model phases of this job, in order.

    Returns the context: ``ctx.result`` is the merged PhaseResult, ``ctx.shared`` holds the
    trained model and tokenizer. ``resume_from_checkpoint``: True for the newest checkpoint
    under ``output_dir/checkpoints``, or a checkpoint folder.
    """
    ctx = PhaseContext(
        config=config, output_dir=Path(output_dir), hooks=hooks, dataset=dataset, resume_from_checkpoint=resume_from_checkpoint
    )
    run_phases(ctx, phases_for(config, runs_on="model"))
    return ctx


__all__ = ["check_needs", "client_phases", "phases_for", "run_model_phases", "run_phases", "secrets_of"]
