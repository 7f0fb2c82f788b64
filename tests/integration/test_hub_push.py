"""Pushing the adapter to the Hub: the real huggingface_hub client against a loopback Hub.

The stand-in (:class:`unsloth_nb.testing.hub_emulator.LoopbackHub`) answers the calls an
upload makes and records what arrived, so the test sees which files reached the Hub,
under which repo, with which token, at the address HF_ENDPOINT names.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from unsloth_nb.config import TrainConfig
from unsloth_nb.data import DatasetSummary, PreparedDataset
from unsloth_nb.engine import LogHooks
from unsloth_nb.jobrun.events import EventLog
from unsloth_nb.phases.runner import run_model_phases
from unsloth_nb.testing.hub_emulator import LoopbackHub


def test_the_adapter_is_pushed_to_the_hub_that_hf_endpoint_names(
    tiny_model: Path, superbowl_rows: list[dict], tmp_path: Path, loopback_hub: LoopbackHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_loopback_test_token")
    rows = [
        {"messages": [{"role": "user", "content": r["prompt"]}, {"role": "assistant", "content": r["completion"][:80]}]}
        for r in superbowl_rows[:8]
    ]
    dataset = PreparedDataset(
        rows, None, DatasetSummary("superbowl", "messages", len(rows)), origins=[f"r:{i}" for i in range(8)]
    )
    config = TrainConfig.from_dict(
        {
            "model": str(tiny_model),
            "dataset": "rows.jsonl",
            "lora": {"r": 8, "gradient_checkpointing": "false"},
            "train": {"max_steps": 2, "warmup_steps": 0, "batch_size": 4, "grad_accum": 1, "max_seq_length": 256},
            "hub": {"repo_id": "me/tiny-lora", "private": True},
        }
    )
    log = EventLog("hub")

    result = run_model_phases(config, dataset, tmp_path, LogHooks(log))

    assert loopback_hub.unexpected == []
    assert loopback_hub.created[0]["name"] == "tiny-lora"
    assert loopback_hub.created[0]["visibility"] == "private"
    assert loopback_hub.authorization == {"Bearer hf_loopback_test_token"}
    pushed = loopback_hub.files["me/tiny-lora"]
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer_config.json"} <= set(pushed)
    adapter = result.result.artifacts["adapter"].local_path(tmp_path)
    assert pushed["adapter_model.safetensors"] == (adapter / "adapter_model.safetensors").read_bytes()
    hub_events = [e.data for e in log.read(kinds={"artifact"}) if e["kind"] == "hub"]
    assert hub_events == [
        {
            "name": "hub",
            "path": str(adapter),
            "bytes": hub_events[0]["bytes"],
            "kind": "hub",
            "url": f"{loopback_hub.url}/me/tiny-lora",
        }
    ]
    assert "hf_loopback_test_token" not in json.dumps([e.data for e in log.read()])
