"""The evaluation phases in order: ``answers`` (where the model is: the kernel or the pod) after ``save``, then
``judge`` (on the client, after the backend's phases). :func:`register` puts them in the phase registry, which
does it for the built-in ones at import; ``register(add)`` calls ``add(phase)`` for each instead."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from unsloth_nb.phases.answers import AnswersPhase
from unsloth_nb.phases.judge import JudgePhase


def evaluation_phases() -> list[AnswersPhase | JudgePhase]:
    return [AnswersPhase(), JudgePhase()]


def register(add: Callable[[Any], Any] | None = None) -> None:
    if add is not None:
        for phase in evaluation_phases():
            add(phase)
        return
    from unsloth_nb.phases.registry import register_phase

    anchor = "save"
    for phase in evaluation_phases():
        register_phase(phase, after=anchor)
        anchor = phase.name


__all__ = ["AnswersPhase", "JudgePhase", "evaluation_phases", "register"]
