"""The pieces under the judge (and the teacher): cache keys, prices, Retry-After, near-duplicates, families."""

from __future__ import annotations

import email.utils
import time
from pathlib import Path

import pytest

from unsloth_nb.errors import ConfigError
from unsloth_nb.evaluate.holdout import NearDuplicates, holdout_count, split_holdout
from unsloth_nb.evaluate.judging import model_family, same_family_warning
from unsloth_nb.llm import ChatRequest, Completion, DiskCache, PriceTable, Usage
from unsloth_nb.llm.prices import parse_price
from unsloth_nb.llm.providers import retry_after_seconds


def test_the_cache_key_is_what_changes_the_answer(tmp_path: Path) -> None:
    base = ChatRequest.make("openai", "gpt-5-mini", "Which is better?", params={"max_completion_tokens": 100})
    assert (
        base.key
        == ChatRequest.make("openai", "gpt-5-mini", "Which is better?", params={"max_completion_tokens": 100}, tag="x").key
    )
    for other in (
        ChatRequest.make("anthropic", "gpt-5-mini", "Which is better?", params={"max_completion_tokens": 100}),
        ChatRequest.make("openai", "gpt-5", "Which is better?", params={"max_completion_tokens": 100}),
        ChatRequest.make("openai", "gpt-5-mini", "Which is worse?", params={"max_completion_tokens": 100}),
        ChatRequest.make("openai", "gpt-5-mini", "Which is better?", params={"max_completion_tokens": 101}),
    ):
        assert other.key != base.key
    cache = DiskCache(tmp_path)
    assert cache.get(base) is None
    cache.put(base, Completion("[[A]]", Usage(10, 2), "gpt-5-mini", cost_usd=0.001))
    hit = cache.get(base)
    assert hit is not None and hit.cached and hit.text == "[[A]]" and hit.usage.output_tokens == 2
    assert not [p for p in tmp_path.rglob(".tmp-*")]


def test_prices_are_looked_up_undated_and_can_be_overridden() -> None:
    table = PriceTable({"my-vllm-model": "0/0", "gpt-5-mini": "1/4"})
    assert table.cost("gpt-4o-2024-08-06", Usage(1_000_000, 0)) == pytest.approx(2.5)
    assert table.cost("gpt-5-mini", Usage(1_000_000, 1_000_000)) == pytest.approx(5.0)
    assert table.cost("my-vllm-model", Usage(5, 5)) == 0.0
    assert table.cost("nobody-knows", Usage(5, 5)) is None
    assert table.lookup("claude-haiku-4-5").cost(Usage(1_000_000, 0), batch=True) == pytest.approx(0.5)
    with pytest.raises(ConfigError, match=r"judge\.prices"):
        parse_price("cheap")


def test_retry_after_in_seconds_milliseconds_or_a_date() -> None:
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({"retry-after-ms": "1500"}) == 1.5
    soon = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < (retry_after_seconds({"retry-after": soon}) or 0) <= 31
    assert retry_after_seconds({"retry-after": "whenever"}) is None
    assert retry_after_seconds({}) is None


def test_near_duplicates_by_normalised_text_and_word_overlap() -> None:
    index = NearDuplicates(["Who won Super Bowl LIX?", "Where was Super Bowl LIX held?"])
    assert index.match("who won super bowl lix")  # case and punctuation
    assert index.match("Who won the Super Bowl LIX?")  # Jaccard 5/6
    assert not index.match("Which team won latest super-bowl?")
    assert not index.match("What is the capital of France?")


def test_holdout_counts_and_split_are_stable() -> None:
    assert holdout_count(100, 0.1) == 10 and holdout_count(100, 7) == 7 and holdout_count(3, 0.01) == 1
    assert holdout_count(1, 0.5) == 0 and holdout_count(10, 50) == 9
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"Question number {i} about topic {i * 7}"},
                {"role": "assistant", "content": f"A{i}"},
            ]
        }
        for i in range(20)
    ]
    origins = [f"f.jsonl:{i + 1}" for i in range(20)]
    first = split_holdout(rows, origins, 0.25, seed=3407)
    again = split_holdout(rows, origins, 0.25, seed=3407)
    assert [i.question for i in first[2].items] == [i.question for i in again[2].items]
    assert len(first[0]) == 15 and len(first[2].items) + first[2].dropped_near_duplicates == 5
    assert all(item.reference and item.reference.startswith("A") for item in first[2].items)


def test_same_family_judge_and_teacher_are_warned_about() -> None:
    assert model_family("gpt-5-mini") == "openai" and model_family("claude-haiku-4-5") == "anthropic"
    assert model_family("meta-llama/Llama-3.1-70B-Instruct") == "meta"
    assert "self-preference" in (same_family_warning("claude-haiku-4-5", "claude-sonnet-4-6") or "")
    assert same_family_warning("gpt-5-mini", "claude-sonnet-4-6") is None
    assert same_family_warning("gpt-5-mini", None) is None


def test_importing_the_judge_loads_no_sdk() -> None:
    import subprocess
    import sys

    code = "import sys, unsloth_nb, unsloth_nb.llm, unsloth_nb.evaluate; print(sorted(m for m in ('openai','anthropic','torch','pandas') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
