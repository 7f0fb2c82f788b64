"""``unsloth-nb data enhance`` (the issue's name) is ``unsloth-nb enhance``: same flags, JSON and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from unsloth_nb.cli import main
from unsloth_nb.testing.fake_anthropic import FakeAnthropic
from unsloth_nb.testing.fake_teacher import teacher

QA = [("Who won Super Bowl LIX?", "The Philadelphia Eagles won 40-22."), ("Who was the MVP?", "Jalen Hurts was the MVP.")]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("ANTHROPIC_API_KEY", FakeAnthropic.api_key)
    monkeypatch.setenv("UNSLOTH_NB_LLM_CACHE", str(tmp_path / "cache"))
    with FakeAnthropic(teacher()) as server:
        yield server


def test_data_enhance_writes_the_enhanced_file_with_json_output(
    fake: FakeAnthropic, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "qa.jsonl"
    data.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in QA), encoding="utf-8")
    argv = ["data", "enhance", str(data), "--yes", "--json", "--teacher-base-url", fake.base_url, "--teacher-batch", "off"]
    assert main([*argv, "--teacher-ops", "improve"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "complete" and result["card"]["rows_out"] == len(QA)
    assert Path(result["out"]) == tmp_path / "qa.enhanced.jsonl" and fake.calls == len(QA)
    assert main(["data", "enhance", str(data), "--out", str(data), "--yes"]) == 1  # never overwrites the input
    assert "never overwrites" in capsys.readouterr().err


def test_data_help_lists_enhance_and_its_help_names_itself(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["data", "enhance", "--help"])
    assert "usage: unsloth-nb data enhance" in capsys.readouterr().out
    main(["data", "--help"])
    assert "enhance" in capsys.readouterr().out
