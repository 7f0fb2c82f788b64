"""What a rented job costs when it finishes with nobody watching, said in the plan before anything is rented.

A pod whose job finished and that no client follows waits its idle timeout, keeps the
outputs nobody collected (network volume, else the private Hub repo), and ends itself.
With nowhere to keep them it waits ``runpod.keep_uncollected`` more for ``load_job`` or
``runpod cleanup``: the plan prices that wait, so it is a choice, not a surprise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from unsloth_nb.worker.settings import DEFAULT_IDLE_TIMEOUT_S

if TYPE_CHECKING:
    from unsloth_nb.config import TrainConfig


def unwatched_note(config: TrainConfig, usd_per_hour: float | None) -> tuple[str, bool]:
    """(note, is_warning): where unwatched outputs go and the most an unwatched finish bills."""
    idle, grace = DEFAULT_IDLE_TIMEOUT_S, config.runpod.keep_uncollected

    def priced(seconds: float) -> str:
        minutes = f"{seconds / 60:.0f} min"
        return f"{minutes}, ${seconds / 3600 * usd_per_hour:.2f} at ${usd_per_hour:.2f}/h" if usd_per_hour else minutes

    if config.runpod.volume_id:
        where = f"on network volume {config.runpod.volume_id}"
    elif config.hub.repo_id:
        where = f"in the private Hub repo {config.hub.repo_id}-checkpoints (finished/)"
    else:
        return (
            "If the job finishes while nothing follows it (the kernel died), its outputs have nowhere to go: the pod "
            f"waits for `load_job` or `unsloth-nb runpod cleanup` to collect them, at most {priced(idle + grace)} "
            "(idle timeout + runpod.keep_uncollected), then ends itself and they are lost. "
            "hub.repo_id (with HF_TOKEN) or runpod.volume_id keeps them instead.",
            grace > 0 and usd_per_hour is not None and (idle + grace) / 3600 * usd_per_hour >= 1.0,
        )
    return (
        f"If the job finishes while nothing follows it, the pod keeps its outputs {where} and ends itself after its "
        f"idle timeout ({priced(idle)}); `load_job` fetches them.",
        False,
    )
