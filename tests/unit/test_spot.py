"""The plan of a spot job: the spot price beside on-demand, and what an eviction costs given the checkpoints."""

from __future__ import annotations

from unsloth_nb.config import TrainConfig
from unsloth_nb.planning.gpu_catalog import GpuOption
from unsloth_nb.planning.planner import plan
from unsloth_nb.planning.spot import spot_note

A100 = GpuOption("NVIDIA A100 80GB PCIe", "A100 PCIe", 80, 1.64, 1.19)


def config(**runpod: object) -> TrainConfig:
    return TrainConfig.from_dict(
        {
            "model": {"name": "unsloth/Qwen3-14B"},
            "dataset": {"path": "qa.jsonl"},
            "placement": "runpod",
            "train": {"max_steps": 3000, "save_steps": 200},
            "runpod": {"interruptible": True, **runpod},
        }
    )


def test_the_plan_of_a_spot_job_says_the_price_and_the_cost_of_an_eviction() -> None:
    (note,) = [r for r in plan(config()).reasons if r.startswith("Spot")]
    assert "on demand" in note and "An eviction costs at most" in note and "a checkpoint every 200 steps" in note
    assert not [r for r in plan(config(interruptible=False)).reasons if r.startswith("Spot")]


def test_a_live_spot_price_is_shown_beside_on_demand_and_prices_the_eviction() -> None:
    live = GpuOption(A100.gpu_type_id, A100.display_name, 80, 1.64, 1.19, spot_usd_per_hour=0.82)
    note = spot_note(config(), live, 1.64, seconds_per_step=6.0, startup_seconds=480, default_every_s=900)
    # 200 steps x 6 s = 20 min redone + 8 min start-up = 28 min at $0.82/h
    assert note.startswith("Spot (runpod.interruptible): $0.82/h, beside $1.64/h on demand.")
    assert "at most ~28 min of paid time ≈ $0.38" in note


def test_without_checkpoints_or_resume_an_eviction_ends_the_job() -> None:
    no_resume = spot_note(config(resume_on_loss=False), A100, 1.64, 6.0, 480, 900)
    assert "an eviction ends the job, since runpod.resume_on_loss is off" in no_resume
    bare = TrainConfig.from_dict({**config().to_dict(), "train": {"max_steps": 3000}})
    assert "without train.save_steps no checkpoint is kept" in spot_note(bare, A100, 1.64, 6.0, 480, 900)
