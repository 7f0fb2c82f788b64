"""A job with teacher: and judge: sections, end to end on the tiny model in this kernel, with fake APIs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from unsloth_nb.testing import fake_llm
from unsloth_nb.testing.fake_anthropic import FakeAnthropic
from unsloth_nb.testing.fake_openai import FakeOpenAI
from unsloth_nb.testing.fake_teacher import LEADS, teacher


def write_rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    """The first 12 rows with distinct questions (the set repeats questions with other answers)."""
    distinct = list({r["prompt"]: r for r in reversed(rows)}.values())[::-1][:12]
    path.write_text("".join(json.dumps(r) + "\n" for r in distinct), encoding="utf-8")
    return path


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("ANTHROPIC_API_KEY", FakeAnthropic.api_key)
    monkeypatch.setenv("OPENAI_API_KEY", FakeOpenAI.api_key)
    monkeypatch.setenv("UNSLOTH_NB_LLM_CACHE", str(tmp_path / "llm-cache"))
    with FakeAnthropic(teacher()) as anthropic_fake, FakeOpenAI(fake_llm.key_facts()) as openai_fake:
        yield anthropic_fake, openai_fake


def job_config(tiny_model: Path, data: Path, anthropic_fake: FakeAnthropic, openai_fake: FakeOpenAI, **teacher: Any):
    from unsloth_nb.api import as_config

    return as_config(
        {
            "model": {"name": str(tiny_model), "load_in_4bit": False},
            "dataset": str(data),
            "train": {"max_steps": 2, "batch_size": 4, "grad_accum": 1, "warmup_steps": 0, "max_seq_length": 256},
            "placement": "local",
            "teacher": {"base_url": anthropic_fake.base_url, "batch": "off", **teacher},
            "judge": {"base_url": openai_fake.base_url, "holdout": 3, "max_new_tokens": 8, "batch_size": 4},
        }
    )


def test_preflight_plans_for_the_enhanced_rows_and_shows_the_teacher_estimate(
    tiny_model: Path, superbowl_rows: list[dict[str, Any]], tmp_path: Path, fakes
) -> None:
    from unsloth_nb.jobrun.preflight import prepare

    data = write_rows(tmp_path / "qa.jsonl", superbowl_rows)
    prepared = prepare(job_config(tiny_model, data, *fakes), tmp_path)
    assert len(prepared.dataset.train) == 9 and len(prepared.heldout.items) + prepared.heldout.dropped_near_duplicates == 3
    line = next(r for r in prepared.plan.reasons if r.startswith("Teacher:"))
    assert "18 requests to anthropic:claude-sonnet-4-5" in line and "~27 training rows after it" in line
    assert "Anthropic's token counting on 8 of 18 requests" in line  # the key is set: the provider counted
    whole = next(r for r in prepared.plan.reasons if r.startswith("Estimated cost of the whole job: ~$"))
    assert " = teacher ~$" in whole and " + judge ~$" in whole and "GPU" not in whole  # local: no GPU bill
    assert not any("same family" in w for w in prepared.plan.warnings)
    assert fakes[0].calls == 0  # an estimate sends nothing

    same = job_config(tiny_model, data, *fakes).merged({"judge.provider": "anthropic", "judge.model": "claude-haiku-4-5"})
    warned = prepare(same, tmp_path)
    assert any("same family" in w for w in warned.plan.warnings)


def test_a_teacher_and_judge_job_trains_on_the_enhanced_rows_with_one_cost_record(
    tiny_model: Path, superbowl_rows: list[dict[str, Any]], tmp_path: Path, fakes
) -> None:
    from unsloth_nb.jobrun.controller import start_job
    from unsloth_nb.jobrun.preflight import prepare

    anthropic_fake, openai_fake = fakes
    data = write_rows(tmp_path / "qa.jsonl", superbowl_rows)
    before = data.read_text()
    prepared = prepare(job_config(tiny_model, data, *fakes), tmp_path)
    prepared.judge_yes = True
    heldout = [item.question for item in prepared.heldout.items]
    job = start_job(prepared).wait(timeout=900)
    assert job.state == "succeeded", job.error
    assert data.read_text() == before  # the user's file is never modified
    enhanced = job.folder.path / "teacher" / "enhanced.jsonl"
    rows = [json.loads(line) for line in enhanced.read_text().splitlines()]
    assert len(rows) == 27
    questions = {r["messages"][0]["content"] for r in rows}
    assert not any(q in questions or LEADS[0] + q in questions for q in heldout)  # nothing held out was trained on
    states = [e.data["state"] for e in job.events(kinds={"status"})]
    assert states.index("enhancing") < states.index("training")
    summaries = [e.data["rows"] for e in job.events(kinds={"summary"}) if "rows" in e.data]
    assert summaries[-1] == 27
    costs = {e.data.get("source") for e in job.events(kinds={"cost"})}
    assert {"teacher", "judge"} <= costs
    metrics = job.record.result["metrics"]
    assert metrics["teacher_usd"] > 0 and metrics["teacher_rows"] == 27
    from unsloth_nb.jobrun.store import JobFolder

    kept = JobFolder.open(job.id).load_record().costs  # job.json keeps each part of the one ledger
    assert set(kept) == {"teacher", "judge"} and kept["teacher"] == pytest.approx(metrics["teacher_usd"])
    assert kept["judge"] == pytest.approx(metrics["judge_usd"])
    assert "enhanced_dataset" in job.record.artifacts
    assert anthropic_fake.calls == 18 and openai_fake.calls > 0
    for path in job.folder.path.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="ignore")
            assert FakeAnthropic.api_key not in text and FakeOpenAI.api_key not in text


@pytest.mark.timeout(400)
def test_a_teacher_and_judge_job_on_an_emulated_pod_sends_the_enhanced_rows_and_never_the_teacher_key(
    runpod_emulator: Any, tiny_model: Path, superbowl_rows: list[dict[str, Any]], tmp_path: Path, fakes
) -> None:
    import unsloth_nb

    anthropic_fake, openai_fake = fakes
    rows = [{"prompt": r["prompt"], "completion": r["completion"][:160]} for r in superbowl_rows]
    data = write_rows(tmp_path / "qa.jsonl", rows)
    job = unsloth_nb.train(
        model=str(tiny_model),
        dataset=str(data),
        placement="runpod",
        train={"max_steps": 2, "batch_size": 2, "grad_accum": 1, "max_seq_length": 512, "warmup_steps": 0},
        lora={"r": 8, "alpha": 8},
        teacher={"base_url": anthropic_fake.base_url, "batch": "off"},
        judge={"base_url": openai_fake.base_url, "holdout": 3, "max_new_tokens": 8, "batch_size": 4},
    )
    envs: list[dict[str, str]] = []

    def pod_env(event: Any) -> None:
        if event.kind == "status" and event.data.get("state") == "uploading" and job.record.pod_id:
            info = runpod_emulator.pod(job.record.pod_id)
            if info is not None:
                envs.append(dict(info.env))

    job.log.subscribe(pod_env)
    job.wait(timeout=360)
    assert job.state == "succeeded", job.error
    states = [e.data["state"] for e in job.events(kinds={"status"})]
    assert states.index("enhancing") < states.index("provisioning") < states.index("training") < states.index("evaluating")
    sent = [e.data["message"] for e in job.events(kinds={"log"}) if "dataset sent" in str(e.data.get("message"))]
    assert sent and "27 rows" in sent[0]
    assert anthropic_fake.calls == 18
    assert envs and all(FakeAnthropic.api_key not in json.dumps(env) for env in envs)
    costs = {e.data.get("source") for e in job.events(kinds={"cost"})}
    assert "teacher" in costs and "judge" in costs


def test_a_teacher_estimate_above_the_threshold_stops_the_job_before_any_request_unless_yes(
    tiny_model: Path, superbowl_rows: list[dict[str, Any]], tmp_path: Path, fakes
) -> None:
    import unsloth_nb

    anthropic_fake, _ = fakes
    data = write_rows(tmp_path / "qa.jsonl", superbowl_rows)
    options = {
        "model": {"name": str(tiny_model), "load_in_4bit": False},
        "dataset": str(data),
        "placement": "local",
        "train": {"max_steps": 1, "batch_size": 4, "grad_accum": 1, "warmup_steps": 0, "max_seq_length": 256},
        "teacher": {"base_url": anthropic_fake.base_url, "batch": "off", "operations": ["improve"], "confirm_above_usd": 0},
    }
    job = unsloth_nb.train(options)
    with pytest.raises(Exception, match=r"teacher\.confirm_above_usd"):
        job.wait(timeout=300)
    assert job.state == "failed" and "teacher.confirm_above_usd" in (job.error or "")
    assert anthropic_fake.calls == 0
    job = unsloth_nb.train(options, yes=True, wait=True)
    assert job.state == "succeeded" and anthropic_fake.calls == 12
