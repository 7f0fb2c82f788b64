"""What the teacher will cost, before anything is sent: requests, tokens and dollars, shown like the RunPod plan.

Input tokens come from the provider's own token counting when it has one and a key is at hand (Anthropic's free
``messages.count_tokens``, asked for at most ``COUNT_SAMPLE`` requests spread over the run; the rest are scaled by
the tokens-per-character the sample showed), else from a stated approximation: prompt characters / 4. The line
says which was used, and why counting was not. Output is ``min(teacher.max_new_tokens, 400)`` tokens per request
(short Q&A answers and a few paraphrases rarely pass 400 tokens). Requests already in the disk cache are
free. Batch mode is priced at the batch rate. The figure goes through the same ask-above-threshold rule as the
judge's (``teacher.confirm_above_usd``); an unknown price (a model missing from the table) always asks.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from unsloth_nb.data.records import Row

if TYPE_CHECKING:
    from unsloth_nb.config import TeacherConfig
    from unsloth_nb.data.records import DatasetSummary
    from unsloth_nb.llm.types import ChatRequest

CHARS_PER_TOKEN = 4
#: Requests whose tokens the provider counts (one free HTTP call each): enough to learn the ratio, quick to ask.
COUNT_SAMPLE = 8
#: Seconds one counting call may take before the estimate falls back to the approximation.
COUNT_TIMEOUT = 10.0
#: Per-request overhead added to the approximation (role markers, the message frame).
FRAME_TOKENS = 8


@dataclass
class TeacherEstimate:
    requests: int
    uncached: int
    input_tokens: int
    output_tokens: int
    usd: float | None  # None: the model has no price
    batch: bool
    rows_out: int  # training rows expected after the teacher
    tokens_by: str = f"estimated at {CHARS_PER_TOKEN} characters a token"  # how input tokens were found

    def capped_usd(self, teacher: TeacherConfig) -> float | None:
        if self.usd is None:
            return None
        return min(self.usd, teacher.max_cost_usd) if teacher.max_cost_usd is not None else self.usd

    def line(self, teacher: TeacherConfig) -> str:
        money = f"~${self.usd:.2f}" if self.usd is not None else "cost unknown (no price for this model: set teacher.prices)"
        mode = "Message Batches, half price" if self.batch else "live requests"
        cached = f", {self.requests - self.uncached} already cached" if self.uncached < self.requests else ""
        cap = f"; teacher.max_cost_usd stops it at ${teacher.max_cost_usd:.2f}" if teacher.max_cost_usd is not None else ""
        return (
            f"Teacher: {self.uncached} requests to {teacher.provider}:{teacher.model} ({', '.join(teacher.operations)}{cached}; "
            f"~{self.input_tokens:,} tokens in ({self.tokens_by}), ~{self.output_tokens:,} out; "
            f"{mode}): {money}{cap}; ~{self.rows_out:,} training rows after it."
        )

    def needs_confirmation(self, teacher: TeacherConfig) -> bool:
        usd = self.capped_usd(teacher)
        return self.uncached > 0 and (usd is None or usd > teacher.confirm_above_usd or teacher.confirm_above_usd == 0)


def rows_after(teacher: TeacherConfig, rows: int) -> int:
    """Training rows after paraphrasing (an upper bound: rejected and held-out-like paraphrases are dropped)."""
    return rows * (1 + teacher.paraphrases) if "paraphrase" in teacher.operations else rows


def approximate_tokens(requests: Sequence[ChatRequest]) -> int:
    return sum(request.prompt_chars() // CHARS_PER_TOKEN + FRAME_TOKENS for request in requests)


def counted_tokens(teacher: TeacherConfig, requests: Sequence[ChatRequest], api_key: str | None = None) -> tuple[int, str]:
    """(input tokens, how they were found): the provider's count on a sample, scaled to all; else the approximation."""
    fallback = f"estimated at {CHARS_PER_TOKEN} characters a token"
    if not requests:
        return 0, fallback
    if teacher.provider != "anthropic":
        return approximate_tokens(requests), f"{fallback}: {teacher.provider} has no token counting"
    key = api_key if api_key is not None else os.environ.get("ANTHROPIC_API_KEY")
    if not key:
        return approximate_tokens(requests), f"{fallback}: no ANTHROPIC_API_KEY to count with"
    from unsloth_nb.llm.providers import AnthropicProvider

    provider = AnthropicProvider(base_url=teacher.base_url, api_key=key)
    step = max(1, len(requests) // COUNT_SAMPLE)
    sample = list(requests[::step][:COUNT_SAMPLE])
    try:
        counted = [provider.count_tokens(request, COUNT_TIMEOUT) for request in sample]
    except Exception as exc:  # counting only sharpens an estimate: whatever goes wrong, the approximation stands
        return approximate_tokens(requests), f"{fallback}: token counting failed ({str(exc).splitlines()[0][:120]})"
    if len(sample) == len(requests):
        return sum(counted), "counted by Anthropic's token counting"
    chars = sum(request.prompt_chars() for request in sample) or 1
    per_char = sum(counted) / chars
    total = sum(round(request.prompt_chars() * per_char) for request in requests)
    return total, f"Anthropic's token counting on {len(sample)} of {len(requests)} requests, scaled by characters"


def estimate(
    teacher: TeacherConfig, rows: Sequence[Row], origins: Sequence[str] = (), *, api_key: str | None = None
) -> TeacherEstimate:
    from unsloth_nb.llm import DiskCache, PriceTable, Usage
    from unsloth_nb.teacher.run import build_tasks, use_batch

    tasks, _, _ = build_tasks(rows, origins, teacher)
    cache = DiskCache()
    uncached = [task.request for task in tasks if task.request not in cache]
    out_each = min(teacher.max_new_tokens, 400)
    tokens_in, tokens_by = counted_tokens(teacher, uncached, api_key)
    tokens_out = out_each * len(uncached)
    batch = use_batch(teacher, len(tasks))
    usd = PriceTable({**teacher.prices}).cost(teacher.model, Usage(tokens_in, tokens_out), batch=batch)
    qa_rows = len({task.qa.index for task in tasks if task.qa is not None})
    generated = sum(teacher.questions_per_chunk for task in tasks if task.operation == "generate")
    rows_out = len(rows) - qa_rows + rows_after(teacher, qa_rows) + generated
    return TeacherEstimate(len(tasks), len(uncached), tokens_in, tokens_out, usd, batch, rows_out, tokens_by)


def planned_summary(teacher: TeacherConfig, summary: DatasetSummary) -> DatasetSummary:
    """The dataset summary the planner should size training for: the rows (and tokens) the teacher will add."""
    if not teacher.enabled or summary.rows == 0:
        return summary
    factor = rows_after(teacher, summary.rows) / summary.rows
    return dataclasses.replace(summary, rows=rows_after(teacher, summary.rows), tokens=int(summary.tokens * factor))


def start_question(teacher: TeacherConfig, rows: Sequence[Row], origins: Sequence[str] = ()) -> str | None:
    """The question a front end asks before starting a job whose teacher's estimate is above the threshold, or None."""
    if not teacher.enabled:
        return None
    found = estimate(teacher, rows, origins)
    return found.line(teacher) + " Enhance?" if found.needs_confirmation(teacher) else None


def confirm_or_raise(teacher: TeacherConfig, found: TeacherEstimate, *, yes: bool, confirm: Callable[[str], bool] | None) -> None:
    """Above ``teacher.confirm_above_usd`` (or unknown): ask through ``confirm``, or refuse without --yes."""
    from unsloth_nb.teacher.run import TeacherError

    if yes or not found.needs_confirmation(teacher):
        return
    question = found.line(teacher) + " Enhance?"
    if confirm is not None:
        if confirm(question):
            return
        raise TeacherError("the teacher's estimate was declined; nothing was sent and nothing trained")
    raise TeacherError(
        f"{found.line(teacher)} That is above teacher.confirm_above_usd (${teacher.confirm_above_usd:.2f}) and nobody could be "
        "asked here: pass --yes (yes=True), raise teacher.confirm_above_usd, or set teacher.max_cost_usd at or below it."
    )


__all__ = [
    "CHARS_PER_TOKEN",
    "COUNT_SAMPLE",
    "TeacherEstimate",
    "confirm_or_raise",
    "counted_tokens",
    "estimate",
    "planned_summary",
    "rows_after",
    "start_question",
]
