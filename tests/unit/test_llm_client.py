"""LLMClient against the fake OpenAI server: identical requests in one run are paid for once, whoever asks first.

Why this matters: a judge's two games of a pair whose answers are the same (a tiny model that answers nothing,
or a fine-tune that changed nothing) are the same request. Before, both were sent when both threads missed the
cache and one was sent when one thread was late, so what a run cost (and ``fake.calls``) depended on scheduling:
tests/integration/test_judge_job.py failed at random on a loaded machine.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from unsloth_nb.llm import ChatRequest, DiskCache, LLMClient, LLMUnavailableError
from unsloth_nb.llm.providers import OpenAIProvider
from unsloth_nb.testing import fake_llm as behaviours
from unsloth_nb.testing.fake_openai import FakeOpenAI


def client_for(fake: FakeOpenAI, tmp_path: Path, **options: object) -> LLMClient:
    provider = OpenAIProvider(base_url=fake.base_url, api_key=FakeOpenAI.api_key)
    return LLMClient(provider, cache=DiskCache(tmp_path / "cache"), **{"backoff_base": 0.01, **options})  # type: ignore[arg-type]


def asks(*prompts: str) -> list[ChatRequest]:
    return [ChatRequest.make("openai", "gpt-5-mini", p, tag=f"{i}") for i, p in enumerate(prompts)]


@pytest.mark.parametrize("concurrency", [1, 8])
def test_identical_requests_in_one_run_are_sent_once_however_the_threads_run(tmp_path: Path, concurrency: int) -> None:
    # the latency keeps the first request in flight while every other thread looks at the cache: before the fix,
    # eight threads all missed it and sent the twins too (4 calls), one thread sent one of each (2 calls)
    with FakeOpenAI(behaviours.fixed_latency(0.3)) as fake:
        client = client_for(fake, tmp_path, concurrency=concurrency)
        seen: list[int] = []
        outcomes = client.run(asks("same", "same", "other", "same"), lambda i, outcome: seen.append(i))
        assert fake.calls == 2
    assert [o.status for o in outcomes] == ["ok", "cached", "ok", "cached"]
    assert outcomes[1].completion is not None and outcomes[1].completion.text == outcomes[0].completion.text
    assert [o.request.tag for o in outcomes] == ["0", "1", "2", "3"]  # each twin keeps its own request
    assert sorted(seen) == [0, 1, 2, 3]
    spend = client.spend
    assert (spend.requests_sent, spend.answers, spend.cache_hits) == (2, 2, 2)


def test_a_twin_of_a_request_that_failed_fails_too_and_is_not_sent(tmp_path: Path) -> None:
    with FakeOpenAI(behaviours.server_error()) as fake:
        client = client_for(fake, tmp_path, max_attempts=2, down_after=5)
        outcomes = client.run(asks("same", "same"))
        assert fake.calls == 2  # one request, two attempts; the twin sent nothing
    assert [o.status for o in outcomes] == ["failed", "failed"] and outcomes[1].attempts == 0
    assert "server error 500" in (outcomes[1].error or "")

    # a twin counts towards down_after as the request it copies: two games of one pair against a server that is
    # down say so, as they did when both were sent
    with FakeOpenAI(behaviours.server_error()) as fake:
        client = client_for(fake, tmp_path, max_attempts=2, down_after=2)
        with pytest.raises(LLMUnavailableError, match="2 requests in a row failed"):
            client.run(asks("down", "down"))
        assert fake.calls == 2


def test_a_rerun_answers_every_twin_from_the_cache(tmp_path: Path) -> None:
    with FakeOpenAI(behaviours.picks_first()) as fake:
        client_for(fake, tmp_path).run(asks("same", "same"))
        fake.reset()
        again = client_for(fake, tmp_path)
        assert [o.status for o in again.run(asks("same", "same"))] == ["cached", "cached"]
        assert fake.calls == 0 and again.spend.cache_hits == 2 and again.spend.requests_sent == 0


def test_the_judges_estimate_counts_identical_requests_once(tmp_path: Path) -> None:
    from unsloth_nb.evaluate.judging import estimate_usd

    client = LLMClient(OpenAIProvider(base_url="http://127.0.0.1:9/v1"), cache=DiskCache(tmp_path / "cache"))
    usd, uncached = estimate_usd(client, asks("same", "same", "other"))
    assert uncached == 2 and usd is not None and usd == pytest.approx(2 * client.estimate_usd(asks("same")[0]))
