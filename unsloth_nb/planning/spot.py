"""What renting spot (interruptible) capacity means for one job: its price, and what an eviction costs.

RunPod may evict a spot pod at any time. The job then continues on a new pod from its
newest checkpoint (``runpod.resume_on_loss``), so an eviction costs the training since
that checkpoint, done again, plus a new pod's start-up: at most one checkpoint interval
and one start-up, at the pod's rate. The plan says so beside the spot and on-demand
prices, so the saving can be weighed against the risk before anything is rented.
"""

from __future__ import annotations

from unsloth_nb.config import TrainConfig
from unsloth_nb.planning.gpu_catalog import GpuOption


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def spot_note(
    config: TrainConfig,
    gpu: GpuOption | None,
    on_demand_usd_per_hour: float | None,
    seconds_per_step: float | None,
    startup_seconds: float,
    default_every_s: float,
) -> str:
    """One plan line: the spot price beside on-demand, and the most an eviction costs given the checkpoint interval.

    ``default_every_s`` is how often a pod job that set no ``train.save_steps`` keeps a checkpoint.
    """
    spot = gpu.spot_usd_per_hour if gpu is not None else None
    on_demand = f"${on_demand_usd_per_hour:.2f}/h on demand" if on_demand_usd_per_hour is not None else "on-demand price unknown"
    if spot is not None:
        price = f"Spot (runpod.interruptible): ${spot:.2f}/h, beside {on_demand}"
    else:
        price = f"Spot (runpod.interruptible): the spot price is RunPod's live bid floor, read when renting ({on_demand})"
    if not config.runpod.resume_on_loss:
        return f"{price}; an eviction ends the job, since runpod.resume_on_loss is off."
    every = config.train.save_steps
    if not every:
        return f"{price}; without train.save_steps no checkpoint is kept, so an eviction fails the job: set train.save_steps."
    if seconds_per_step:
        interval, said = every * seconds_per_step, f"a checkpoint every {every} steps, ~{_minutes(every * seconds_per_step)}"
    else:
        interval, said = default_every_s, f"a checkpoint every {every} steps (taken as ~{_minutes(default_every_s)})"
    lost = interval + startup_seconds
    rate = spot if spot is not None else on_demand_usd_per_hour
    cost = f" ≈ ${lost / 3600 * rate:.2f}" + ("" if spot is not None else " at the on-demand rate, less at spot") if rate else ""
    return (
        f"{price}. An eviction costs at most ~{_minutes(lost)} of paid time{cost} ({said} is redone, plus "
        f"~{_minutes(startup_seconds)} for a new pod to start); the job then continues from its newest checkpoint."
    )
