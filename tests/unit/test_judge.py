"""The judge against loopback fakes of the OpenAI and Anthropic APIs, through the unmodified SDKs."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from unsloth_nb.config import TrainConfig
from unsloth_nb.evaluate.answers import AnswerPair, AnswerSet
from unsloth_nb.evaluate.judging import JudgeNeedsConfirmation, build_client, judge_answers, judge_question
from unsloth_nb.evaluate.protocol import parse_verdict
from unsloth_nb.evaluate.report import bootstrap_ci
from unsloth_nb.llm import DiskCache
from unsloth_nb.testing import fake_llm as behaviours
from unsloth_nb.testing.fake_anthropic import FakeAnthropic
from unsloth_nb.testing.fake_openai import FakeOpenAI

FACTS = [
    (
        "Who won Super Bowl LIX?",
        "The Philadelphia Eagles won, 40-22.",
        "The Philadelphia Eagles won 40-22.",
        "The Kansas City Chiefs won.",
    ),
    ("Where was it played?", "At the Caesars Superdome in New Orleans.", "Caesars Superdome, New Orleans.", "In Miami."),
    ("Who was MVP?", "Jalen Hurts was the MVP.", "Jalen Hurts.", "Patrick Mahomes."),
    ("Who sang the halftime show?", "Kendrick Lamar headlined it.", "Kendrick Lamar.", "Taylor Swift."),
]


def answers(n: int = 4) -> AnswerSet:
    pairs = [AnswerPair(f"q{i}", q, ref, base=base, finetuned=ft) for i, (q, ref, ft, base) in enumerate(FACTS[:n])]
    return AnswerSet(pairs, max_new_tokens=64, batch_size=4)


def judge_config(fake: FakeOpenAI | FakeAnthropic, **fields: object) -> TrainConfig:
    provider = "anthropic" if isinstance(fake, FakeAnthropic) else "openai"
    model = "claude-haiku-4-5" if provider == "anthropic" else "gpt-5-mini"
    judge = {"provider": provider, "model": model, "base_url": fake.base_url, **fields}
    return TrainConfig.from_dict({"model": "m", "dataset": "d.jsonl", "judge": judge}).judge


@pytest.fixture(params=["openai", "anthropic"])
def fake(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OPENAI_API_KEY", FakeOpenAI.api_key)
    monkeypatch.setenv("ANTHROPIC_API_KEY", FakeAnthropic.api_key)
    server = (FakeOpenAI if request.param == "openai" else FakeAnthropic)()
    with server:
        yield server


def run(fake, tmp_path: Path, behaviour, n: int = 4, **options: object):
    fake.reset(behaviour)
    judge = judge_config(fake, **{k: v for k, v in options.items() if k in ("max_cost_usd", "concurrency", "timeout")})
    client_options = {k: v for k, v in options.items() if k in ("backoff_base", "max_attempts", "down_after")}
    client = build_client(judge, cache=DiskCache(tmp_path / "cache"), **{"backoff_base": 0.01, **client_options})
    return judge_answers(answers(n), judge, client=client, yes=True)


def test_always_first_gives_half_and_no_consistency(fake, tmp_path: Path) -> None:
    report = run(fake, tmp_path, behaviours.picks_first())
    assert (report.wins, report.ties, report.losses) == (0, 4, 0)
    assert report.win_rate == 0.5
    assert report.consistency == 0.0
    assert fake.calls == 8  # two games per question


def test_always_the_finetuned_one_wins_everything(fake, tmp_path: Path) -> None:
    finetuned = {ft for _, _, ft, _ in FACTS}
    report = run(fake, tmp_path, behaviours.prefers(lambda answer: answer in finetuned))
    assert (report.wins, report.ties, report.losses) == (4, 0, 0)
    assert report.consistency == 1.0
    assert report.ci95 == (1.0, 1.0)
    assert report.cost_usd > 0 and report.cost_known


def test_rerun_makes_no_calls_and_costs_nothing(fake, tmp_path: Path) -> None:
    first = run(fake, tmp_path, behaviours.key_facts())
    assert fake.calls == 8 and first.wins == 4
    again = run(fake, tmp_path, behaviours.key_facts())
    assert fake.calls == 0
    assert again.requests_sent == 0 and again.cost_usd == 0.0 and again.cache_hits == 8
    assert [r.outcome for r in again.rows] == [r.outcome for r in first.rows]


def test_429_with_retry_after_is_honoured_then_succeeds(fake, tmp_path: Path) -> None:
    started = time.monotonic()
    report = run(fake, tmp_path, behaviours.rate_limited(times=1, retry_after=1, then=behaviours.key_facts()), n=1, concurrency=1)
    assert time.monotonic() - started >= 1.0  # waited the server's Retry-After, not the 0.01 s back-off
    assert report.wins == 1 and report.retries == 1
    assert fake.calls == 3


def test_a_500_is_retried(fake, tmp_path: Path) -> None:
    report = run(fake, tmp_path, behaviours.server_error(times=2, then=behaviours.key_facts()), n=2, concurrency=1)
    assert report.wins == 2 and report.error is None
    assert fake.calls == 6


def test_a_judge_that_is_down_ends_with_a_message_and_reports_unjudged_rows(fake, tmp_path: Path) -> None:
    report = run(fake, tmp_path, behaviours.server_error(), n=4, concurrency=1, max_attempts=2, down_after=2)
    assert report.error and "unavailable" in report.error and "500" in report.error
    assert report.not_judged == 4
    assert all("judge unavailable" in r.note for r in report.rows)
    assert fake.calls == 4  # two requests x two attempts, then nothing more is sent


def test_malformed_verdict_is_asked_once_more_then_no_verdict(fake, tmp_path: Path) -> None:
    report = run(fake, tmp_path, behaviours.malformed(), n=2)
    assert report.no_verdict == 2 and report.win_rate is None
    assert fake.calls == 8  # 4 games, each retried once
    fixed = run(fake, tmp_path / "b", behaviours.malformed(times=1, then=behaviours.key_facts()), n=1, concurrency=1)
    assert fixed.wins == 1 and fake.calls == 3


def test_a_slow_answer_times_out_and_is_retried(fake, tmp_path: Path) -> None:
    report = run(fake, tmp_path, behaviours.slow(2.0, times=1, then=behaviours.key_facts()), n=1, concurrency=1, timeout=1)
    assert report.wins == 1 and report.retries >= 1


def test_budget_stops_and_reports_rows_not_judged(fake, tmp_path: Path) -> None:
    report = run(fake, tmp_path, behaviours.key_facts(), n=4, concurrency=1, max_cost_usd=0.00001)
    assert report.not_judged >= 1
    assert all(r.note == "judge.max_cost_usd reached" for r in report.rows if r.outcome == "not_judged")
    assert len(report.rows) == 4  # never dropped


def test_estimate_asks_above_the_threshold_before_any_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key")
    with FakeOpenAI() as fake:
        judge = dataclasses.replace(judge_config(fake), confirm_above_usd=0.0)
        client = build_client(judge, cache=DiskCache(tmp_path))
        with pytest.raises(JudgeNeedsConfirmation, match="--yes"):
            judge_answers(answers(), judge, client=client)
        asked: list[str] = []
        with pytest.raises(Exception, match="declined"):
            judge_answers(answers(), judge, client=client, confirm=lambda q: asked.append(q) or False)
        assert fake.calls == 0 and "8 requests" in asked[0] and "$" in asked[0]
    unknown = dataclasses.replace(judge, model="some-unpriced-model")
    assert "unknown" in (judge_question(None, 3, unknown) or "")
    assert judge_question(0.01, 3, dataclasses.replace(judge, confirm_above_usd=1.0)) is None


def test_strict_verdicts() -> None:
    assert parse_verdict("fine.\n[[A]]") == "A"
    assert parse_verdict("[[ B ]]") == "B"
    assert parse_verdict("A is better") is None
    assert parse_verdict("[[A]] or maybe [[B]]") is None
    assert parse_verdict("") is None


def test_bootstrap_interval_brackets_the_rate() -> None:
    outcomes = ["win"] * 41 + ["loss"] * 9
    low, high = bootstrap_ci(outcomes)
    assert low < 41 / 50 < high and low > 0.6 and high < 0.95


def test_the_phases_keep_the_contract_and_the_judge_stays_on_the_client() -> None:
    from unsloth_nb.phases.base import Phase, PhaseNeeds
    from unsloth_nb.phases.evaluation import evaluation_phases

    answers, judge = evaluation_phases()
    assert isinstance(answers, Phase) and isinstance(judge, Phase)
    with_judge = TrainConfig.from_dict({"model": "m", "dataset": "d.jsonl", "judge": {"provider": "anthropic"}})
    without = TrainConfig.from_dict({"model": "m", "dataset": "d.jsonl"})
    assert answers.applies(with_judge) and judge.applies(with_judge)
    assert not answers.applies(without) and not judge.applies(without)
    assert answers.needs(with_judge) == PhaseNeeds(secrets=(), runs_on="model")
    assert judge.needs(with_judge) == PhaseNeeds(
        secrets=("ANTHROPIC_API_KEY",), runs_on="client", why=f"for the anthropic judge ({with_judge.judge.model})"
    )
    assert [p.name for p in evaluation_phases()] == ["answers", "judge"]
    # In the registry: answers right after save (where the model is), the judge after it (on the client).
    from unsloth_nb.phases.runner import client_phases, phases_for

    assert [p.name for p in phases_for(with_judge)] == ["load", "train", "save", "answers", "judge"]
    assert [p.name for p in phases_for(with_judge, runs_on="model")] == ["load", "train", "save", "answers"]
    assert [p.name for p in client_phases(with_judge)[1]] == ["judge"]
    assert [p.name for p in phases_for(without)] == ["load", "train", "save"]


def test_a_failed_answers_phase_is_reported_and_the_judge_stands_down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Evaluation never fails the trained job: the runner goes on, the failure is an event, the judge sends nothing."""
    from unsloth_nb.phases.base import PhaseContext
    from unsloth_nb.phases.evaluation import evaluation_phases
    from unsloth_nb.phases.runner import run_phases

    class Hooks:
        def __init__(self) -> None:
            self.events: list[tuple[str, dict]] = []
            self.states: list[str] = []

        def emit(self, kind: str, /, **data: object) -> None:
            self.events.append((kind, data))

        def should_stop(self) -> bool:
            return False

        def enter(self, state: str) -> None:
            self.states.append(state)

    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    config = TrainConfig.from_dict({"model": "m", "dataset": "d.jsonl", "judge": {"provider": "anthropic"}})
    hooks = Hooks()
    ctx = PhaseContext(config=config, output_dir=tmp_path, hooks=hooks)  # no held-out questions reach the phase

    result = run_phases(ctx, evaluation_phases())

    assert "evaluation/heldout.jsonl" in str(result.metrics["evaluation_error"])
    assert not result.artifacts
    failed = [data for kind, data in hooks.events if kind == "evaluation"]
    assert [d["stage"] for d in failed] == ["failed"]  # said once, by the answers phase
    assert any(k == "log" and "the adapter is kept" in str(d["message"]) for k, d in hooks.events)
    assert [d["phase"] for k, d in hooks.events if k == "result"] == ["answers", "judge"]


def test_the_question_before_start_uses_the_upper_bound_and_the_threshold() -> None:
    from unsloth_nb.evaluate.judging import preflight_estimate, start_question

    judge = TrainConfig.from_dict({"model": "m", "dataset": "d.jsonl", "judge": {"model": "gpt-5-mini"}}).judge
    questions = [(fact[0], fact[1]) for fact in FACTS]
    bound = preflight_estimate(judge, questions)
    assert bound is not None and bound > 0
    assert start_question(dataclasses.replace(judge, confirm_above_usd=bound * 2), questions) is None
    asked = start_question(dataclasses.replace(judge, confirm_above_usd=bound / 2), questions)
    assert asked is not None and f"judge {2 * len(questions)} requests" in asked and f"at most ${bound:.2f}" in asked
    assert "unknown" in (start_question(dataclasses.replace(judge, model="some-unpriced-model"), questions) or "")
    assert start_question(dataclasses.replace(judge, confirm_above_usd=0), []) is None  # nothing to judge
