"""The pairwise protocol: the judge's prompt, strict verdict parsing, and two games per question.

Each question is judged twice, the fine-tuned answer first and then the base answer first (FastChat's
MT-Bench protocol). A verdict that flips with the order is a tie, marked inconsistent. A reply without exactly
one verdict in the rubric's format is malformed: it is asked again once, then recorded as "no verdict", never
guessed. The prompt comes from one file, ``rubric.md`` beside this module, which a user can replace
(``judge.rubric``); it must keep the ``{question}``, ``{answer_a}`` and ``{answer_b}`` placeholders
(``{reference_block}`` is optional).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from unsloth_nb.errors import ConfigError

Verdict = Literal["A", "B", "C"]
Winner = Literal["finetuned", "base", "tie"]
Outcome = Literal["win", "tie", "loss", "no_verdict", "not_judged"]

#: Which model's answer is shown as A in each game.
GAMES: tuple[Literal["finetuned", "base"], ...] = ("finetuned", "base")
REQUIRED_PLACEHOLDERS = ("{question}", "{answer_a}", "{answer_b}")
RETRY_NUDGE = (
    "Your reply did not end with a verdict in the required format. Reply again with a short explanation and, "
    'on the last line, exactly one of "[[A]]", "[[B]]" or "[[C]]".'
)
_VERDICT = re.compile(r"\[\[\s*([ABC])\s*\]\]")


def default_rubric_path() -> Path:
    return Path(str(resources.files("unsloth_nb") / "evaluate" / "rubric.md"))


def load_rubric(path: str | Path | None = None) -> str:
    """The rubric text; a user's file must exist and keep the placeholders the protocol fills in."""
    where = Path(path).expanduser() if path else default_rubric_path()
    if not where.is_file():
        raise ConfigError("judge.rubric", f"{where}: no such file (copy {default_rubric_path()} and edit it)")
    text = where.read_text(encoding="utf-8")
    missing = [p for p in REQUIRED_PLACEHOLDERS if p not in text]
    if missing:
        raise ConfigError("judge.rubric", f"{where}: the rubric must contain {', '.join(missing)} (see {default_rubric_path()})")
    return text


def judge_prompt(rubric: str, question: str, answer_a: str, answer_b: str, reference: str | None) -> str:
    """The rubric with the blanks filled; plain replacement, so braces in answers cannot break it."""
    reference_block = f"\n[The Start of Reference Answer]\n{reference}\n[The End of Reference Answer]\n" if reference else ""
    return (
        rubric.replace("{reference_block}", reference_block)
        .replace("{question}", question)
        .replace("{answer_a}", answer_a)
        .replace("{answer_b}", answer_b)
    )


def parse_verdict(text: str) -> Verdict | None:
    """``A``, ``B`` or ``C`` when the reply holds exactly one distinct verdict in the format; else None."""
    found = {match.group(1) for match in _VERDICT.finditer(text or "")}
    if len(found) != 1:
        return None
    return found.pop()  # type: ignore[return-value]


def rationale_of(text: str) -> str:
    return _VERDICT.sub("", text or "").strip()


def winner_of(verdict: Verdict | None, first: str) -> Winner | None:
    """Which model a verdict favours, given which was shown first (A)."""
    if verdict is None:
        return None
    if verdict == "C":
        return "tie"
    second = "base" if first == "finetuned" else "finetuned"
    return first if verdict == "A" else second  # type: ignore[return-value]


def combine(winners: list[Winner | None], judged: bool) -> tuple[Outcome, bool | None]:
    """A row's outcome from its two games, and whether the two agreed (None when not both gave a verdict)."""
    if not judged:
        return "not_judged", None
    if len(winners) != 2 or any(w is None for w in winners):
        return "no_verdict", None
    first, second = winners
    if first != second:
        return "tie", False
    outcome_of: dict[Winner | None, Outcome] = {"finetuned": "win", "base": "loss", "tie": "tie"}
    return outcome_of[first], True


@dataclass
class Game:
    """One of a question's two judgments."""

    first: str  # "finetuned" or "base": shown as answer A
    verdict: Verdict | None = None
    winner: Winner | None = None
    rationale: str = ""
    attempts: int = 0
    status: str = "pending"  # ok, cached, no_verdict, budget, failed, not_sent, stopped

    def to_json(self) -> dict[str, Any]:
        return {
            "first": self.first,
            "verdict": self.verdict,
            "winner": self.winner,
            "rationale": self.rationale,
            "attempts": self.attempts,
            "status": self.status,
        }


__all__ = [
    "GAMES",
    "Game",
    "Outcome",
    "combine",
    "default_rubric_path",
    "judge_prompt",
    "load_rubric",
    "parse_verdict",
    "rationale_of",
    "winner_of",
]
