"""Scripted teachers for the fake Anthropic/OpenAI servers: they read the prompts of ``unsloth_nb/teacher/prompts``.

- :func:`teacher`: improve -> the original answer plus one sentence, inside ``<answer>`` tags; paraphrase ->
  ``n`` rewordings (``Please tell me: <question>``, ``I would like to know: <question>`` ...) in ``<q>`` tags.
- :func:`refuses` / :func:`empties`: the calls whose question contains a marker get a refusal / an empty reply.
- :func:`drops_numbers`: improve replies with the digits removed (a rewrite that loses the key facts).

Tests, the tutorial and ``unsloth-nb enhance`` without a key (it says so) use these.
"""

from __future__ import annotations

import re

from unsloth_nb.testing.fake_llm import Behaviour, Call, Reply

_SECTION = re.compile(r"\[The Start of (Question|Original Answer|Answer)\]\n?(.*?)\n?\[The End of \1\]", re.S)
_N = re.compile(r"Write (\d+) differently worded")
LEADS = ("Please tell me: ", "I would like to know: ", "Quick question: ", "Can you explain: ", "Help me understand: ")


def parts(prompt: str) -> dict[str, str]:
    return {m.group(1): m.group(2).strip() for m in _SECTION.finditer(prompt)}


def is_improve(prompt: str) -> bool:
    return "[The Start of Original Answer]" in prompt


def teacher() -> Behaviour:
    def behaviour(call: Call) -> Reply:
        found = parts(call.prompt)
        if is_improve(call.prompt):
            return Reply(f"<answer>\n{found.get('Original Answer', '')} That is the complete answer.\n</answer>")
        match = _N.search(call.prompt)
        n = int(match.group(1)) if match else 2
        question = found.get("Question", "")
        return Reply("\n".join(f"<q>{LEADS[i % len(LEADS)]}{question}</q>" for i in range(n)))

    return behaviour


def refuses(marker: str, then: Behaviour | None = None) -> Behaviour:
    follow = then or teacher()
    return lambda call: (
        Reply("I'm sorry, but I can't help with that.") if marker in parts(call.prompt).get("Question", "") else follow(call)
    )


def empties(marker: str, then: Behaviour | None = None) -> Behaviour:
    follow = then or teacher()
    return lambda call: (
        Reply("<answer>\n</answer>" if is_improve(call.prompt) else "")
        if marker in parts(call.prompt).get("Question", "")
        else follow(call)
    )


def drops_numbers(then: Behaviour | None = None) -> Behaviour:
    follow = then or teacher()

    def behaviour(call: Call) -> Reply:
        reply = follow(call)
        if is_improve(call.prompt):
            reply.text = re.sub(r"\d", "", reply.text)
        return reply

    return behaviour


_PASSAGE = re.compile(r"\[The Start of Passage from (.*?)\]\n?(.*?)\n?\[The End of Passage\]", re.S)
_SENTENCE = re.compile(r"[^.!?]+[.!?]")


def generator() -> Behaviour:
    """generate -> one pair per sentence of the passage (up to n): "What does <doc> say about <first words>?" and
    the sentence itself as the answer, so every number is grounded."""
    follow = teacher()

    def behaviour(call: Call) -> Reply:
        found = _PASSAGE.search(call.prompt)
        if not found:
            return follow(call)
        match = _N_GEN.search(call.prompt)
        n = int(match.group(1)) if match else 3
        sentences = [s.strip() for s in _SENTENCE.findall(found.group(2))][:n]
        pairs = [f"<qa><q>What is said about {' '.join(s.split()[:4])}?</q><a>{s}</a></qa>" for s in sentences]
        return Reply("\n".join(pairs))

    return behaviour


_N_GEN = re.compile(r"Write (\d+) questions")
__all__ = ["LEADS", "drops_numbers", "empties", "generator", "refuses", "teacher"]
