"""The cost lines of a RunPod plan: the GPUs to try, in order, and the hourly price of the first.

The planner asks every backend for its :class:`~unsloth_nb.backends.base.Pricing`; this is RunPod's
answer. Cards are ranked by the estimated total cost of the whole run (price x (start-up + training)),
with the planner's rule of thumb for a step's seconds on each card handed in, so nothing here imports
the planner (it sits above the backends).
"""

from __future__ import annotations

from collections.abc import Callable

from unsloth_nb.backends.base import PriceRequest, Pricing
from unsloth_nb.errors import PlanError
from unsloth_nb.planning.durations import rough_duration
from unsloth_nb.planning.gpu_catalog import GpuOption
from unsloth_nb.planning.memory import GPU_MEMORY_USABLE, fits


def price(request: PriceRequest, rate_label: str | None = None) -> Pricing:
    """The GPUs in the order to try (and why the first), in the configured cloud; the hourly price is the first's.

    ``rate_label``: the catalogue carries one rate per card under that name (serverless flex workers), so the
    plan speaks of it rather than of a pod's secure and community clouds.
    """
    runpod = request.config.runpod
    candidates, choice = _gpu_candidates(request, rate_label)
    return Pricing(candidates, runpod.cloud_type, choice, community=runpod.allow_community, rate_label=rate_label)


def _gpu_candidates(request: PriceRequest, rate_label: str | None = None) -> tuple[list[GpuOption], str | None]:
    """RunPod GPUs in the order to try, and why the first one: the user's list as given, else
    every card that fits, lowest estimated total cost (price x (start-up + training)) first.
    Cards RunPod reports out of stock go last."""
    config, need, catalogue, user_gpus = request.config, request.gpu_need_gb, request.catalogue, request.user_gpus
    reasons, warnings, steps, startup = request.reasons, request.warnings, request.steps, request.startup_seconds
    cloud, community = config.runpod.cloud_type, config.runpod.allow_community
    if rate_label:  # one rate per card: the catalogue carries it in every cloud's place
        community = False
    priced = {g.gpu_type_id: g for g in catalogue}
    if user_gpus:
        options = [priced.get(g.gpu_type_id, g) for g in user_gpus]
        for option in options:
            if not fits(need, option.memory_gb):
                warnings.append(
                    f"{option.gpu_type_id} has {option.memory_gb} GB; the job needs ~{need:.1f} GB "
                    f"(+{1 - GPU_MEMORY_USABLE:.0%} headroom) and may run out of memory."
                )
        reasons.append("GPUs: runpod.gpus, in the order given.")
        return _stocked_first(options), None

    usable = [g for g in catalogue if fits(need, g.memory_gb) and g.usd_per_hour(cloud, community) is not None]
    if not usable:
        largest = max((g.memory_gb for g in catalogue), default=0)
        hint = (
            "set model.load_in_4bit: true (QLoRA needs about a quarter of the memory)"
            if not config.model.load_in_4bit
            else "use a smaller model or a shorter train.max_seq_length / batch_size"
        )
        offered = f"priced at {rate_label} rates" if rate_label else f"offered in the {cloud} cloud"
        raise PlanError(
            f"No single RunPod GPU {offered} has the ~{need:.0f} GB this job needs "
            f"(the largest has {largest} GB, of which {GPU_MEMORY_USABLE:.0%} is used); {hint}."
        )

    def seconds_on(gpu: GpuOption) -> float:
        return startup + (steps if steps is not None else 1) * request.step_seconds(gpu.gpu_type_id)

    def total_cost(gpu: GpuOption) -> float:
        return (gpu.usd_per_hour(cloud, community) or 0.0) * seconds_on(gpu) / 3600

    ranked = sorted(usable, key=lambda g: (round(total_cost(g), 4), seconds_on(g), g.memory_gb))
    basis = "estimated total cost" if steps is not None else "cost per training step (steps unknown)"
    prices = f"{rate_label} prices" if rate_label else f"{cloud} prices{', community as fallback' if community else ''}"
    reasons.append(
        f"GPUs: every card with at least {need / GPU_MEMORY_USABLE:.0f} GB, lowest {basis} first "
        f"({prices}; price x the paid time: start-up, training, export and download)."
    )
    ordered = _stocked_first(ranked)
    return ordered, _gpu_choice(ordered, total_cost, seconds_on, cloud, community, steps is not None)


def _gpu_choice(
    ordered: list[GpuOption],
    total_cost: Callable[[GpuOption], float],
    seconds_on: Callable[[GpuOption], float],
    cloud: str,
    community: bool,
    whole_run: bool,
) -> str:
    """One line: the first card with its estimated cost, and the runner-up with why it lost."""

    def said(gpu: GpuOption) -> str:
        price = gpu.usd_per_hour(cloud, community) or 0.0
        usd = total_cost(gpu)
        run = f"~${usd:.3f}" if usd < 0.1 else f"~${usd:.2f}"
        run = f"{run} for ~{rough_duration(seconds_on(gpu))}" if whole_run else "per step"
        return f"{gpu.gpu_type_id} (${price:.2f}/h, {run})"

    first = ordered[0]
    text = f"{said(first)}: the lowest estimated total of the cards that fit"
    if len(ordered) < 2:
        return text + "."
    second = ordered[1]
    if not second.in_stock or not first.in_stock:
        why = "it is out of stock" if not second.in_stock else "it costs more"
    elif seconds_on(second) < seconds_on(first):
        why = "it is faster but its higher price costs more in total" if whole_run else "it costs more per step"
    else:
        why = "it costs more in total" if whole_run else "it costs more per step"
    return f"{text}; runner-up {said(second)}: {why}."


def _stocked_first(options: list[GpuOption]) -> list[GpuOption]:
    return [g for g in options if g.in_stock] + [g for g in options if not g.in_stock]
