"""Judging on the user's machine: estimate, ask when above the threshold, two games per question, report.

The judge's key is read here, from the environment (or a hidden prompt), at the moment of use; it never
travels to a pod. Every call goes through :class:`~unsloth_nb.llm.LLMClient`, so it is cached on disk (a
re-run costs $0), bounded, retried politely and capped by ``judge.max_cost_usd``. A judge that is down ends the
judging with a message; what was judged is kept in the report, and nothing touches the trained adapter.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from unsloth_nb.credentials import get_secret, redact
from unsloth_nb.errors import UnslothNbError
from unsloth_nb.evaluate.answers import AnswerSet
from unsloth_nb.evaluate.protocol import (
    GAMES,
    RETRY_NUDGE,
    Game,
    combine,
    judge_prompt,
    load_rubric,
    parse_verdict,
    rationale_of,
    winner_of,
)
from unsloth_nb.evaluate.report import EvaluationReport, RowResult
from unsloth_nb.llm import ChatRequest, DiskCache, LLMClient, LLMError, PriceTable, make_provider, provider_secret

if TYPE_CHECKING:
    from unsloth_nb.config import JudgeConfig

_KNOB = "judge.confirm_above_usd"


class JudgeNeedsConfirmation(UnslothNbError):
    """The estimate is above the threshold (or unknown) and nobody could be asked."""


class JudgeDeclined(UnslothNbError):
    """The user said no to the estimate."""


# ---------------------------------------------------------------------------- the client
def judge_params(judge: JudgeConfig) -> dict[str, Any]:
    """Decoding parameters for the judge: deterministic where the model allows it, room for a short rationale."""
    if judge.provider == "anthropic":
        return {"max_tokens": 1024}  # the current SDK takes no temperature on messages.create
    if judge.provider == "openai" and re.match(r"^(gpt-5|o\d)", judge.model):
        # reasoning models take no temperature; their reasoning tokens count against this cap
        return {"max_completion_tokens": 4096, "reasoning_effort": "low"}
    return {"max_completion_tokens": 1024, "temperature": 0}


def build_client(
    judge: JudgeConfig, *, stop: Callable[[], bool] | None = None, prompt_for_key: bool = False, **options: Any
) -> LLMClient:
    """The judge's client; the key comes from the environment now (the openai-compatible key is optional)."""
    variable = provider_secret(judge.provider)
    key = get_secret(variable, f"for the {judge.provider} judge ({judge.model})", prompt=prompt_for_key) if variable else None
    provider = make_provider(judge.provider, base_url=judge.base_url, api_key=key)
    settings: dict[str, Any] = {
        "cache": DiskCache(),
        "prices": PriceTable(judge.prices),
        "concurrency": judge.concurrency,
        "timeout": judge.timeout,
        "max_cost_usd": judge.max_cost_usd,
        "stop": stop,
    }
    settings.update(options)
    return LLMClient(provider, **settings)


# ---------------------------------------------------------------------------- money first
def estimate_usd(client: LLMClient, requests: list[ChatRequest]) -> tuple[float | None, int]:
    """(dollars for the requests not in the cache, how many those are); None dollars when a price is unknown.

    Identical requests count once: the client sends one of them (a pair whose two answers are the same)."""
    total, unknown, uncached = 0.0, False, 0
    seen: set[str] = set()
    for request in requests:
        if request.key in seen or request in client.cache:
            continue
        seen.add(request.key)
        uncached += 1
        cost = client.estimate_usd(request)
        if cost is None:
            unknown = True
        else:
            total += cost
    return (None if unknown else total), uncached


def judge_question(estimate: float | None, uncached: int, judge: JudgeConfig, *, bound: bool = False) -> str | None:
    """The question to ask before judging, or None: the rental rule, with judge.* knobs.

    ``bound``: the estimate is an upper bound made before training (no answers yet), asked about at the start.
    """
    if uncached == 0:
        return None
    cap = judge.max_cost_usd
    figure = None if estimate is None else (min(estimate, cap) if cap is not None else estimate)
    threshold = judge.confirm_above_usd
    if not (threshold == 0 or figure is None or figure > threshold):
        return None
    what = (
        f"estimated {'at most ' if bound else ''}${estimate:.2f}"
        if estimate is not None
        else "estimated cost unknown (no price for this model; set judge.prices)"
    )
    budget = f"; judge.max_cost_usd stops it at ${cap:.2f}" if cap is not None else ""
    when = "After training, judge" if bound else "Judge"
    return f"{when} {uncached} requests with {judge.provider}:{judge.model} ({what}{budget})?"


def confirm_or_raise(question: str | None, *, yes: bool, confirm: Callable[[str], bool] | None) -> None:
    if question is None or yes:
        return
    if confirm is None:
        raise JudgeNeedsConfirmation(
            f"{question} Nobody could be asked here: pass --yes (yes=True), raise {_KNOB}, or set judge.max_cost_usd at or below it."
        )
    if not confirm(question):
        raise JudgeDeclined("judging declined; nothing was sent to the judge")


def preflight_estimate(judge: JudgeConfig, questions: list[tuple[str, str | None]]) -> float | None:
    """An upper bound of the judge's cost before anything runs (None when a price is unknown).

    Answers are not written yet, so each is counted at ``max_new_tokens``; replies at the client's expected
    length. What the judge's cache already holds is not known here either: the figure is an upper bound.
    """
    from unsloth_nb.llm import Usage

    rubric = load_rubric(judge.rubric)
    answer = "x" * (judge.max_new_tokens * 4)
    prices = PriceTable(judge.prices)
    total: float | None = 0.0
    for question, reference in questions:
        prompt = judge_prompt(rubric, question, answer, answer, reference)
        cost = prices.cost(judge.model, Usage(len(prompt) // 4 + 8, 300))
        total = None if cost is None or total is None else total + 2 * cost
    return total


def preflight_line(judge: JudgeConfig, questions: list[tuple[str, str | None]]) -> str:
    """The plan's line about the judge, before anything runs: requests and an upper-bound estimate."""
    total = preflight_estimate(judge, questions)
    what = f"estimated at most ${total:.2f}" if total is not None else "cost unknown (no price for this model; set judge.prices)"
    return (
        f"judge: {len(questions)} held-out questions, {2 * len(questions)} requests to {judge.provider}:{judge.model} "
        f"on this machine, {what}; asks first above judge.confirm_above_usd (${judge.confirm_above_usd:.2f})."
    )


def planned_questions(judge: JudgeConfig, heldout: Any) -> list[tuple[str, str | None]]:
    """(question, reference) of the held-out rows the judge will see (``judge.max_questions`` of them at most)."""
    if heldout is None:
        return []
    items = heldout.items[: judge.max_questions] if judge.max_questions else heldout.items
    return [(item.question, item.reference) for item in items]


def start_question(judge: JudgeConfig, questions: list[tuple[str, str | None]]) -> str | None:
    """The question a front end that can ask asks before starting a job that ends with judging, or None.

    The rule is the judging's own (:func:`judge_question`) applied to the upper bound, so a job whose
    start was confirmed (or needed no confirming) is not stopped by the judge's question later.
    """
    if not judge.enabled or not questions:
        return None
    return judge_question(preflight_estimate(judge, questions), 2 * len(questions), judge, bound=True)


# ---------------------------------------------------------------------------- same family
_FAMILIES = (
    ("openai", r"^(gpt|o\d|chatgpt)"),
    ("anthropic", r"^claude"),
    ("google", r"^gemini|^gemma"),
    ("meta", r"llama"),
    ("qwen", r"qwen"),
    ("mistral", r"mistral|mixtral"),
)


def model_family(model: str) -> str | None:
    name = model.lower().rsplit("/", 1)[-1]
    for family, pattern in _FAMILIES:
        if re.search(pattern, name):
            return family
    return None


def same_family_warning(judge_model: str, teacher_model: str | None) -> str | None:
    if not teacher_model:
        return None
    family = model_family(judge_model)
    if family is not None and family == model_family(teacher_model):
        return (
            f"the judge ({judge_model}) is of the same family ({family}) as the teacher that wrote the data ({teacher_model}); "
            "judges favour their own family's style (self-preference bias): prefer a judge of another family"
        )
    return None


# ---------------------------------------------------------------------------- judging
@dataclass
class _Slot:
    row: int
    game: int


def judge_answers(
    answers: AnswerSet,
    judge: JudgeConfig,
    *,
    client: LLMClient | None = None,
    job_id: str | None = None,
    heldout_source: str = "",
    dropped_near_duplicates: int = 0,
    teacher_model: str | None = None,
    yes: bool = False,
    confirm: Callable[[str], bool] | None = None,
    on_progress: Callable[[int, int, float], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> EvaluationReport:
    """Judge every pair in both orders and report. Raises before any call when confirmation is missing or declined;
    a judge that fails mid-way gives a report with ``error`` set (rows not judged say so)."""
    started = time.perf_counter()
    rubric = load_rubric(judge.rubric)
    client = client or build_client(judge, stop=stop)
    params = judge_params(judge)
    pairs = answers.pairs
    games = [[Game(first=first) for first in GAMES] for _ in pairs]
    requests: list[ChatRequest] = []
    slots: list[_Slot] = []
    for r, pair in enumerate(pairs):
        for g, first in enumerate(GAMES):
            a, b = (pair.finetuned, pair.base) if first == "finetuned" else (pair.base, pair.finetuned)
            prompt = judge_prompt(rubric, pair.question, a, b, pair.reference)
            requests.append(ChatRequest.make(judge.provider, judge.model, prompt, params=params, tag=f"{pair.id}/{first}"))
            slots.append(_Slot(r, g))

    estimate, uncached = estimate_usd(client, requests)
    confirm_or_raise(judge_question(estimate, uncached, judge), yes=yes, confirm=confirm)

    warnings = [w for w in [same_family_warning(judge.model, teacher_model)] if w]
    done = 0
    total = len(requests)

    def record(game: Game, outcome: Any) -> None:
        game.attempts += max(outcome.attempts, 0)
        if outcome.completion is None:
            game.status = outcome.status
            game.rationale = outcome.error or ""
            return
        text = outcome.completion.text
        game.verdict = parse_verdict(text)
        game.rationale = rationale_of(text)
        game.winner = winner_of(game.verdict, game.first)
        game.status = outcome.status if game.verdict is not None else "no_verdict"

    def first_round(index: int, outcome: Any) -> None:
        nonlocal done
        slot = slots[index]
        record(games[slot.row][slot.game], outcome)
        done += 1
        if on_progress is not None:
            on_progress(done, total, client.spend.usd)

    error: str | None = None
    try:
        client.run(requests, first_round)
        # one retry for each malformed verdict, with the reply and a nudge, so it is a new (cached) request
        retry_slots = [s for s in slots if games[s.row][s.game].status == "no_verdict"]
        retries = []
        for s in retry_slots:
            original = requests[s.row * 2 + s.game]
            previous = client.cache.get(original)
            retries.append(
                ChatRequest(
                    original.provider,
                    original.model,
                    (*original.messages, ("assistant", previous.text if previous else ""), ("user", RETRY_NUDGE)),
                    original.system,
                    original.params,
                    original.tag + "/retry",
                )
            )
        if retries:
            client.run(retries, lambda i, outcome: record(games[retry_slots[i].row][retry_slots[i].game], outcome))
    except LLMError as exc:
        error = redact(str(exc))

    rows = []
    for pair, row_games in zip(pairs, games, strict=True):
        judged = all(g.status in ("ok", "cached", "no_verdict") for g in row_games)
        outcome, consistent = combine([g.winner for g in row_games], judged)
        note = ""
        if not judged:
            statuses = {g.status for g in row_games if g.status not in ("ok", "cached", "no_verdict")}
            note = "; ".join(
                sorted(
                    {
                        "judge.max_cost_usd reached"
                        if s == "budget"
                        else "judge unavailable"
                        if s in ("failed", "not_sent", "pending")
                        else s
                        for s in statuses
                    }
                )
            )
        rows.append(
            RowResult(
                pair.id,
                pair.question,
                pair.reference,
                pair.base,
                pair.finetuned,
                outcome,
                consistent,
                [g.to_json() for g in row_games],
                note,
            )
        )
    spend = client.spend
    return EvaluationReport(
        job_id=job_id,
        judge_provider=judge.provider,
        judge_model=judge.model,
        rows=rows,
        heldout_source=heldout_source,
        dropped_near_duplicates=dropped_near_duplicates,
        cost_usd=spend.usd,
        cost_known=spend.usd_known,
        estimate_usd=estimate,
        wall_seconds=time.perf_counter() - started,
        requests_sent=spend.requests_sent,
        cache_hits=spend.cache_hits,
        retries=spend.retries,
        generation_seconds=answers.seconds,
        max_new_tokens=answers.max_new_tokens,
        warnings=warnings,
        error=error,
    )


__all__ = [
    "JudgeDeclined",
    "JudgeNeedsConfirmation",
    "build_client",
    "confirm_or_raise",
    "estimate_usd",
    "judge_answers",
    "judge_params",
    "judge_question",
    "model_family",
    "planned_questions",
    "preflight_estimate",
    "same_family_warning",
    "start_question",
]
