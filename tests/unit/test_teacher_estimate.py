"""The teacher's estimate counts input tokens with the provider's own counter when it can, and says which it used.

The fake Anthropic API answers ``messages.count_tokens`` for the unmodified ``anthropic`` SDK; a test sets its
tokenizer to 2 characters a token so that a counted figure cannot pass for the 4-characters approximation.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from unsloth_nb.config import TrainConfig
from unsloth_nb.teacher.estimate import COUNT_SAMPLE, estimate
from unsloth_nb.teacher.run import build_tasks
from unsloth_nb.testing import fake_llm
from unsloth_nb.testing.fake_anthropic import FakeAnthropic
from unsloth_nb.testing.fake_teacher import teacher

QUESTIONS = [f"In which year did event number {i} of the long list of Super Bowl facts happen?" for i in range(12)]


def rows(n: int) -> list[dict]:
    return [
        {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": f"In {1967 + i}, in Los Angeles."}]}
        for i, q in enumerate(QUESTIONS[:n])
    ]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("ANTHROPIC_API_KEY", FakeAnthropic.api_key)
    monkeypatch.setenv("UNSLOTH_NB_LLM_CACHE", str(tmp_path / "cache"))
    with FakeAnthropic(teacher()) as server:
        server.chars_per_token = 2
        yield server


def section(base_url: str, **fields: object):
    return TrainConfig.from_dict(
        {"model": "m", "dataset": "d.jsonl", "teacher": {"base_url": base_url, "batch": "off", **fields}}
    ).teacher


def prompt_chars(config, data: list[dict]) -> list[int]:
    tasks, _, _ = build_tasks(data, [f"d.jsonl:{i + 1}" for i in range(len(data))], config)
    return [task.request.prompt_chars() for task in tasks]


def test_a_small_run_is_counted_exactly_by_the_provider(fake: FakeAnthropic) -> None:
    config = section(fake.base_url, operations=["improve"])
    data = rows(3)
    found = estimate(config, data)
    assert fake.token_counts == 3 and fake.calls == 0  # counting is free and generates nothing
    assert found.input_tokens == sum(chars // 2 for chars in prompt_chars(config, data))
    assert "counted by Anthropic's token counting" in found.line(config)


def test_a_large_run_counts_a_sample_and_scales_it(fake: FakeAnthropic) -> None:
    config = section(fake.base_url, operations=["improve", "paraphrase"])
    data = rows(12)
    found = estimate(config, data)
    assert found.requests == 24 and fake.token_counts == COUNT_SAMPLE
    counted = sum(prompt_chars(config, data)) / 2
    assert found.input_tokens == pytest.approx(counted, rel=0.05)
    approximated = sum(chars // 4 + 8 for chars in prompt_chars(config, data))
    assert abs(found.input_tokens - approximated) > 0.3 * approximated  # not the approximation in disguise
    assert f"Anthropic's token counting on {COUNT_SAMPLE} of 24 requests" in found.line(config)


def test_without_a_key_it_approximates_and_says_why(fake: FakeAnthropic, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    config = section(fake.base_url, operations=["improve"])
    data = rows(3)
    found = estimate(config, data)
    assert fake.token_counts == 0
    assert found.input_tokens == sum(chars // 4 + 8 for chars in prompt_chars(config, data))
    assert "estimated at 4 characters a token: no ANTHROPIC_API_KEY to count with" in found.line(config)


def test_a_counter_that_fails_falls_back_to_the_approximation(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", FakeAnthropic.api_key)
    monkeypatch.setenv("UNSLOTH_NB_LLM_CACHE", str(tmp_path / "cache"))
    with FakeAnthropic(fake_llm.key_facts()) as server:
        base_url = server.base_url
    config = section(base_url, operations=["improve"])  # the server is gone: counting cannot connect
    found = estimate(config, rows(2))
    assert "estimated at 4 characters a token: token counting failed" in found.line(config)


def test_an_openai_compatible_teacher_is_approximated(fake: FakeAnthropic) -> None:
    config = section("http://127.0.0.1:9/v1", provider="openai-compatible", model="local", prices={"local": "0/0"})
    found = estimate(config, rows(2))
    assert fake.token_counts == 0
    assert "openai-compatible has no token counting" in found.line(config)
