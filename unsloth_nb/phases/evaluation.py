"""The evaluation phases in order, for the phase runner to register after save: ``answers`` (where the model
is), then ``judge`` (on the client). ``register(add)`` calls ``add(phase)`` for each."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from unsloth_nb.phases.answers import AnswersPhase
from unsloth_nb.phases.judge import JudgePhase


def evaluation_phases() -> list[AnswersPhase | JudgePhase]:
    return [AnswersPhase(), JudgePhase()]


def register(add: Callable[[Any], Any]) -> None:
    for phase in evaluation_phases():
        add(phase)


__all__ = ["AnswersPhase", "JudgePhase", "evaluation_phases", "register"]
