"""The TrainingPanel's teacher fields, and its question before a teacher whose estimate is above the threshold.

Widgets run without a front end; the panel's methods are what its buttons call. The teacher is the loopback fake
Anthropic API, spoken to by the unmodified SDK.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from unsloth_nb.jobrun.store import jobs_root
from unsloth_nb.testing.fake_anthropic import FakeAnthropic
from unsloth_nb.testing.fake_teacher import teacher
from unsloth_nb.ui.panel import TrainingPanel
from unsloth_nb.ui.panel_fields import ADVANCED_FIELDS


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("ANTHROPIC_API_KEY", FakeAnthropic.api_key)
    monkeypatch.setenv("UNSLOTH_NB_LLM_CACHE", str(tmp_path / "llm-cache"))
    with FakeAnthropic(teacher()) as server:
        yield server


def qa_file(tmp_path: Path, rows: list[dict[str, Any]]) -> Path:
    distinct = list({r["prompt"]: r for r in rows}.values())[:6]
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in distinct), encoding="utf-8")
    return path


def job_folders() -> list[Path]:
    root = jobs_root()
    return sorted(root.iterdir()) if root.is_dir() else []


def test_the_teachers_main_fields_are_advanced_settings_and_reach_the_config(tmp_path: Path) -> None:
    for path in ("teacher.enabled", "teacher.model", "teacher.operations", "teacher.max_cost_usd"):
        assert path in ADVANCED_FIELDS
    panel = TrainingPanel(model="m", dataset="qa.jsonl", base_dir=tmp_path)
    panel.fields["teacher.enabled"].widget.value = True
    panel.fields["teacher.model"].widget.value = "claude-haiku-4-5"
    panel.fields["teacher.operations"].widget.value = "improve"
    panel.fields["teacher.max_cost_usd"].widget.value = "0.5"
    config = panel.config()
    assert config is not None, panel.errors
    assert config.teacher.enabled and config.teacher.model == "claude-haiku-4-5"
    assert list(config.teacher.operations) == ["improve"] and config.teacher.max_cost_usd == 0.5

    panel.fields["teacher.operations"].widget.value = "improve, translate"
    assert panel.config() is None and "teacher.operations" in panel.errors  # shown at its own field


@pytest.mark.timeout(600)
def test_a_teacher_above_the_threshold_is_asked_about_before_start_then_not_again(
    tiny_model: Path, superbowl_rows: list[dict[str, Any]], tmp_path: Path, fake: FakeAnthropic
) -> None:
    panel = TrainingPanel(
        model=str(tiny_model),
        dataset=str(qa_file(tmp_path, superbowl_rows)),
        base_dir=tmp_path,
        placement="local",
        train__max_steps=1,
        train__warmup_steps=0,
        train__max_seq_length=256,
    )
    panel.fields["teacher.enabled"].widget.value = True
    panel.fields["teacher.base_url"].widget.value = fake.base_url
    panel.fields["teacher.operations"].widget.value = "improve"
    panel.fields["teacher.confirm_above_usd"].widget.value = "0"  # always ask

    assert panel.start() is None
    question = panel.confirm_box.children[0].value
    assert "Teacher: 6 requests to anthropic:" in question and "Enhance?" in question
    assert [w.description for w in panel.confirm_box.children[1:]] == ["Start", "Cancel"]
    panel.confirm_box.children[-1].click()  # Cancel
    assert job_folders() == [] and fake.calls == 0

    assert panel.start() is None
    panel.confirm_box.children[1].click()  # Start: accepted here, so the enhance phase does not ask again
    job = panel.job
    assert job is not None
    job.wait(timeout=500)
    assert job.state == "succeeded", job.error
    assert fake.calls == 6 and job.record.costs.get("teacher", 0) > 0
