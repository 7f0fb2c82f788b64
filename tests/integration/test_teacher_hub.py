"""``hub.repo_id`` with a teacher: the adapter goes to the model repo, the enhanced rows and their card to the dataset
repo of the same id. The real huggingface_hub client talks to the loopback Hub; the teacher is the fake Anthropic API.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from unsloth_nb.testing.fake_anthropic import FakeAnthropic
from unsloth_nb.testing.fake_teacher import teacher
from unsloth_nb.testing.hub_emulator import LoopbackHub, dataset_key


def test_the_enhanced_set_is_pushed_with_its_card_to_the_dataset_repo_beside_the_adapter(
    tiny_model: Path,
    superbowl_rows: list[dict[str, Any]],
    tmp_path: Path,
    loopback_hub: LoopbackHub,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from unsloth_nb.api import as_config
    from unsloth_nb.jobrun.controller import start_job
    from unsloth_nb.jobrun.preflight import prepare

    monkeypatch.setenv("HF_TOKEN", "hf_loopback_test_token")
    monkeypatch.setenv("ANTHROPIC_API_KEY", FakeAnthropic.api_key)
    monkeypatch.setenv("UNSLOTH_NB_LLM_CACHE", str(tmp_path / "llm-cache"))
    distinct = list({r["prompt"]: r for r in superbowl_rows}.values())[:6]
    data = tmp_path / "qa.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in distinct), encoding="utf-8")
    with FakeAnthropic(teacher()) as fake:
        config = as_config(
            {
                "model": {"name": str(tiny_model), "load_in_4bit": False},
                "dataset": str(data),
                "lora": {"r": 8},
                "train": {"max_steps": 1, "batch_size": 4, "grad_accum": 1, "warmup_steps": 0, "max_seq_length": 256},
                "placement": "local",
                "teacher": {"base_url": fake.base_url, "batch": "off", "operations": ["improve"]},
                "hub": {"repo_id": "me/tiny-lora", "private": True},
            }
        )
        job = start_job(prepare(config, tmp_path)).wait(timeout=500)
    assert job.state == "succeeded", job.error
    assert loopback_hub.unexpected == []
    assert loopback_hub.authorization == {"Bearer hf_loopback_test_token"}
    assert "adapter_model.safetensors" in loopback_hub.files["me/tiny-lora"]  # the model repo, as before

    pushed = loopback_hub.files[dataset_key("me/tiny-lora")]
    assert set(pushed) == {"train.jsonl", "teacher_card.json", "README.md"}
    enhanced = job.folder.path / "teacher" / "enhanced.jsonl"
    assert pushed["train.jsonl"] == enhanced.read_bytes()
    card = json.loads(pushed["teacher_card.json"])
    assert card["teacher"]["model"] == "claude-sonnet-4-5" and card["rows_out"] == len(distinct)
    readme = pushed["README.md"].decode()
    assert readme.startswith("---\nconfigs:") and "data_files: train.jsonl" in readme
    assert "anthropic:claude-sonnet-4-5" in readme and "teacher cost | $" in readme
    created = [c for c in loopback_hub.created if c.get("type") == "dataset"]
    assert created and created[0]["name"] == "tiny-lora" and created[0]["visibility"] == "private"
    artifact = job.record.result["artifacts"]["enhanced_dataset"]
    assert artifact["url"].endswith("/datasets/me/tiny-lora")
    assert FakeAnthropic.api_key.encode() not in b"".join(pushed.values())


def test_a_failed_dataset_push_is_a_warning_and_the_rows_stay(
    tmp_path: Path, loopback_hub: LoopbackHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    from unsloth_nb.config import TrainConfig
    from unsloth_nb.engine import LogHooks
    from unsloth_nb.jobrun.events import EventLog
    from unsloth_nb.phases.base import PhaseContext
    from unsloth_nb.phases.enhance import push_to_hub

    loopback_hub.token = "hf_the_right_token"
    monkeypatch.setenv("HF_TOKEN", "hf_a_wrong_token")
    rows = tmp_path / "enhanced.jsonl"
    rows.write_text('{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n')
    config = TrainConfig.from_dict({"model": "m", "dataset": "d.jsonl", "hub": {"repo_id": "me/x"}})
    log = EventLog("push")
    ctx = PhaseContext(config=config, output_dir=tmp_path, hooks=LogHooks(log))

    assert push_to_hub(ctx, rows, {"teacher": {"model": "t"}}) is None
    warnings = [e.data["message"] for e in log.read(kinds={"log"}) if e.data.get("level") == "warning"]
    assert len(warnings) == 1 and "pushing the enhanced dataset to me/x" in warnings[0] and str(rows) in warnings[0]
    assert "hf_a_wrong_token" not in warnings[0]
    assert rows.is_file() and not loopback_hub.files.get(dataset_key("me/x"))
