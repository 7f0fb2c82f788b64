"""Datasets in the shapes people export (tests/data/real_world) train without a flag.

Each is read, detected and normalised by the real pipeline with default settings, then
trained for one step on the tiny model with Unsloth's CPU backend and TRL.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from unsloth_nb.config import TrainConfig
from unsloth_nb.data import prepare_dataset
from unsloth_nb.engine import LogHooks
from unsloth_nb.jobrun.events import EventLog
from unsloth_nb.phases.runner import run_model_phases

pytestmark = pytest.mark.timeout(600)

REAL_WORLD = Path(__file__).resolve().parents[1] / "data" / "real_world"


@pytest.mark.parametrize("name", sorted(p.name for p in REAL_WORLD.iterdir()))
def test_a_real_world_shaped_dataset_trains_without_a_flag(name: str, tiny_model: Path, tmp_path: Path) -> None:
    config = TrainConfig.from_dict(
        {
            "model": {"name": str(tiny_model)},
            "dataset": str(REAL_WORLD / name),
            "lora": {"r": 4, "gradient_checkpointing": "false"},
            "train": {"max_steps": 1, "batch_size": 2, "grad_accum": 1, "warmup_steps": 0, "max_seq_length": 128},
        }
    )
    dataset = prepare_dataset(config.dataset, config.train.max_seq_length)
    log = EventLog(name)

    ran = run_model_phases(config, dataset, tmp_path, LogHooks(log))

    assert int(ran.result.metrics["global_step"]) == 1
    assert ran.result.metrics.get("final_loss") is not None
