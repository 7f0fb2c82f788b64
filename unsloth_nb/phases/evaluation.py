"""The evaluation phases in order: ``answers`` (where the model is: the kernel or the pod) after ``save``, then
``judge`` (on the client, after the backend's phases). The phase registry puts them there for every job."""

from __future__ import annotations

from unsloth_nb.phases.answers import AnswersPhase
from unsloth_nb.phases.judge import JudgePhase


def evaluation_phases() -> list[AnswersPhase | JudgePhase]:
    return [AnswersPhase(), JudgePhase()]


__all__ = ["AnswersPhase", "JudgePhase", "evaluation_phases"]
