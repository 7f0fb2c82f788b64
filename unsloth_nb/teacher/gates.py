"""Quality gates: what the teacher wrote is kept only when it is an answer, says what the original said, and parses.

A rejected output never replaces the user's row: an improve that fails keeps the original answer, a paraphrase
that fails adds nothing. Every rejection is counted by its reason (in the card and the summary).

- ``empty``: nothing between the tags (or nothing at all).
- ``refusal``: the teacher declined ("I can't help with that", "As an AI ...").
- ``dropped_facts``: the rewrite lost key facts of the original answer: a number, or more than a third of the
  capitalised names it held. Numbers are the facts a rewrite most often "rounds"; names are what a model
  asked about a sports final or a product must keep.
- ``unparsable``: a paraphrase reply without a single ``<q>`` line.
- ``same_as_question``: a paraphrase equal to the question (after normalising case and punctuation).
- ``ungrounded``: a generated answer with a number its document chunk does not hold; ``duplicate``: a generated
  question already written for that chunk.
"""

from __future__ import annotations

import re

_ANSWER = re.compile(r"<answer>\s*(.*?)\s*(?:</answer>|$)", re.S | re.I)
_Q = re.compile(r"<q>\s*(.*?)\s*</q>", re.S | re.I)
_REFUSAL = re.compile(
    r"^\s*(?:i(?:'m| am) sorry|sorry,|i can(?:no|')t (?:help|assist|answer|provide|comply)|i (?:won't|will not|am unable to|"
    r"cannot)|as an ai\b|i'm not able to|i am not able to)",
    re.I,
)
_NUMBER = re.compile(r"\d+(?:[.,:\-–]\d+)*")
_NAME = re.compile(r"\b[A-Z][a-zA-Z]{2,}\b")
_COMMON = {
    "The",
    "This",
    "That",
    "These",
    "Those",
    "What",
    "Who",
    "When",
    "Where",
    "Which",
    "How",
    "Why",
    "And",
    "But",
    "For",
    "With",
    "His",
    "Her",
    "Their",
    "They",
    "She",
    "Its",
    "Yes",
}


def _normalise_number(text: str) -> str:
    return re.sub(r"[,\s]", "", text).replace("–", "-")


def key_facts(text: str) -> tuple[set[str], set[str]]:
    """(numbers, capitalised names) of a text."""
    numbers = {_normalise_number(n) for n in _NUMBER.findall(text)}
    names = {n for n in _NAME.findall(text) if n not in _COMMON}
    return numbers, names


def dropped_facts(original: str, rewrite: str) -> list[str]:
    """The original's key facts the rewrite lost; non-empty when the rewrite must be rejected."""
    numbers, names = key_facts(original)
    new_numbers = {_normalise_number(n) for n in _NUMBER.findall(rewrite)}
    lost_numbers = sorted(n for n in numbers if n not in new_numbers)
    lost_names = sorted(n for n in names if n not in rewrite)
    if lost_numbers or (names and len(lost_names) * 3 > len(names)):
        return lost_numbers + lost_names
    return []


def is_refusal(text: str) -> bool:
    return bool(_REFUSAL.match(text))


def improved_answer(reply: str, original: str) -> tuple[str | None, str | None]:
    """(the new answer, None) or (None, the reason it is rejected)."""
    match = _ANSWER.search(reply or "")
    text = (match.group(1) if match else (reply or "")).strip()
    if not text:
        return None, "empty"
    if is_refusal(text):
        return None, "refusal"
    if dropped_facts(original, text):
        return None, "dropped_facts"
    return text, None


def paraphrases(reply: str, question: str, n: int) -> tuple[list[str], dict[str, int]]:
    """Up to ``n`` new wordings from a reply, and the count of each rejection reason."""
    from unsloth_nb.evaluate.holdout import normalise

    rejected: dict[str, int] = {}
    if is_refusal(reply or ""):
        return [], {"refusal": 1}
    found = [q.strip() for q in _Q.findall(reply or "")]
    if not found:
        return [], {"empty" if not (reply or "").strip() else "unparsable": 1}
    kept: list[str] = []
    seen = {normalise(question)}
    for text in found:
        key = normalise(text)
        if not key:
            rejected["empty"] = rejected.get("empty", 0) + 1
        elif key in seen:
            rejected["same_as_question"] = rejected.get("same_as_question", 0) + 1
        elif len(kept) < n:
            seen.add(key)
            kept.append(text)
    return kept, rejected


_PAIR = re.compile(r"<qa>\s*<q>\s*(.*?)\s*</q>\s*<a>\s*(.*?)\s*</a>\s*</qa>", re.S | re.I)


def generated_pairs(reply: str, passage: str, n: int) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """Up to ``n`` (question, answer) pairs grounded in ``passage``: an answer whose numbers the passage does not
    hold is ``ungrounded`` (the numbers are what a model invents first)."""
    from unsloth_nb.evaluate.holdout import normalise

    rejected: dict[str, int] = {}
    if is_refusal(reply or ""):
        return [], {"refusal": 1}
    found = _PAIR.findall(reply or "")
    if not found:
        return [], {"empty" if not (reply or "").strip() else "unparsable": 1}
    passage_numbers = {_normalise_number(x) for x in _NUMBER.findall(passage)}
    kept: list[tuple[str, str]] = []
    seen: set[str] = set()
    for question, answer in found:
        reason = None
        if not question.strip() or not answer.strip():
            reason = "empty"
        elif is_refusal(answer):
            reason = "refusal"
        elif any(_normalise_number(x) not in passage_numbers for x in _NUMBER.findall(answer)):
            reason = "ungrounded"
        elif normalise(question) in seen:
            reason = "duplicate"
        if reason:
            rejected[reason] = rejected.get(reason, 0) + 1
        elif len(kept) < n:
            seen.add(normalise(question))
            kept.append((question.strip(), answer.strip()))
    return kept, rejected


__all__ = ["dropped_facts", "generated_pairs", "improved_answer", "is_refusal", "key_facts", "paraphrases"]
