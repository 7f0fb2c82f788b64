"""What the plan says about a job that finishes with nobody watching, and how the status line shows an unreachable API."""

from __future__ import annotations

from unsloth_nb.config import TrainConfig
from unsloth_nb.jobrun.events import Event
from unsloth_nb.planning.planner import plan
from unsloth_nb.planning.unwatched import unwatched_note
from unsloth_nb.ui.console import JobStatus


def config(**sections: object) -> TrainConfig:
    return TrainConfig.from_dict(
        {"model": {"name": "unsloth/Qwen3-14B"}, "dataset": {"path": "qa.jsonl"}, "placement": "runpod", **sections}
    )


def test_with_nowhere_to_keep_outputs_the_plan_prices_the_wait_for_a_collector() -> None:
    note, is_warning = unwatched_note(config(runpod={"keep_uncollected": 3600}), 2.99)
    assert "at most 75 min, $3.74 at $2.99/h" in note and "runpod.keep_uncollected" in note
    assert is_warning  # more than a dollar of GPU time, spent only if the kernel dies: worth a warning
    assert not unwatched_note(config(runpod={"keep_uncollected": 0}), 0.20)[1]
    (said,) = [w for w in plan(config()).warnings + plan(config()).reasons if "nothing follows it" in w]
    assert "$" in said  # priced at the plan's own GPU


def test_with_a_hub_repo_or_a_volume_the_plan_says_where_outputs_are_kept() -> None:
    hub, _ = unwatched_note(config(hub={"repo_id": "me/lora"}), 2.99)
    assert "me/lora-checkpoints (finished/)" in hub and "15 min, $0.75 at $2.99/h" in hub
    volume, _ = unwatched_note(config(runpod={"volume_id": "vol123"}), None)
    assert "on network volume vol123" in volume and "$" not in volume


def test_the_status_line_says_the_api_is_unreachable_until_it_answers_again() -> None:
    status = JobStatus()

    def log(seq: int, **data: object) -> None:
        status.update(Event("job", seq, 0.0, "log", {"level": "warning", "message": "m", "source": "runpod", **data}))

    status.update(Event("job", 0, 0.0, "status", {"state": "terminating"}))
    log(1, api_unreachable_s=42.4)
    assert "RunPod API unreachable for 42 s; the pod's state is unknown" in status.line()
    log(2, api_unreachable_s=0)
    assert "unreachable" not in status.line()
