"""A plan as plain text, the same in a terminal and under a notebook cell.

``unsloth-nb plan``, ``unsloth-nb train``, the ``%unsloth_train`` magic and the
TrainingPanel all show a plan with :func:`format_plan`, so they give the same
figures in the same words. Only string formatting happens here; the plan itself
is made by :mod:`unsloth_nb.planning.planner`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from unsloth_nb.backends.registry import get_backend
from unsloth_nb.planning.durations import rough_duration

if TYPE_CHECKING:
    from unsloth_nb.planning.planner import Plan

__all__ = ["STOCK_NOTE", "format_plan"]


def format_plan(plan: Plan, max_gpus: int = 5) -> str:
    """The plan as plain text, the same in a terminal and under a notebook cell."""
    backend = get_backend(plan.placement)
    target = backend.plan_target(plan)
    headline = f"Plan: {plan.model} on {backend.label}" + (f" ({target})" if target else "")
    memory_kind = "GPU memory" if plan.device == "cuda" else "RAM"
    rows: list[tuple[str, str]] = [
        ("Model", plan.size.describe()),
        ("Method", f"{plan.method}, needs ~{plan.memory_needed_gb:.1f} GB of {memory_kind}"),
        ("This machine", plan.local.describe()),
    ]
    if plan.total_steps is not None:
        rows.append(("Steps", f"{plan.total_steps:,} (~{plan.tokens_per_step or 0:,} tokens per step)"))
    else:
        rows.append(("Steps", "unknown (no dataset summary or train.max_steps)"))
    rows.append(("Time", plan.time_text(detail=True)))
    if plan.outputs:
        rows.append(("Outputs", _outputs(plan, backend.in_process)))
    if plan.estimate_errors:
        rows.append(("Past estimates", plan.estimate_errors))
    if backend.rents:
        price = _rate(plan)
        cost = (
            f"~${plan.estimated_cost_usd:.2f} (rough) at {price}"
            if plan.estimated_cost_usd is not None
            else f"not estimated; {price}"
        )
        rows.append(("Cost", cost))
        if plan.pod is not None:  # a serverless worker gets the disk; vCPUs and RAM come with its GPU
            rows.append(("Worker", plan.pod.describe(host=False)) if plan.rate_label else ("Pod", plan.pod.describe()))
    else:
        rows.append(("Cost", f"none ({backend.name})"))
    if plan.gpu_choice:
        rows.append(("GPU choice", plan.gpu_choice))
    rows.append(("Keys", _keys(plan.needs_secrets)))
    width = max(len(label) for label, _ in rows)
    lines = [headline] + [f"  {label.ljust(width)}  {value}" for label, value in rows]

    if plan.gpu_candidates:
        lines.append("  RunPod GPUs, in the order they are tried:")
        table: list[tuple[str, ...]]
        if plan.rate_label:  # one rate per card (serverless flex workers carry it in the secure price's place)
            table = [("#", "gpuTypeId", "GB", f"{plan.rate_label} $/s ($/h)", "stock")]
            for i, gpu in enumerate(plan.gpu_candidates[:max_gpus], 1):
                table.append(
                    (str(i), gpu.gpu_type_id, str(gpu.memory_gb), _per_second(gpu.secure_usd_per_hour), gpu.stock or "-")
                )
        else:
            table = [("#", "gpuTypeId", "GB", "secure $/h", "community $/h", "stock")]
            for i, gpu in enumerate(plan.gpu_candidates[:max_gpus], 1):
                table.append(
                    (
                        str(i),
                        gpu.gpu_type_id,
                        str(gpu.memory_gb),
                        _price(gpu.secure_usd_per_hour),
                        _price(gpu.community_usd_per_hour),
                        gpu.stock or "-",
                    )
                )
        widths = [max(len(r[c]) for r in table) for c in range(len(table[0]))]
        for r in table:
            cells = [r[0].rjust(widths[0]), r[1].ljust(widths[1])] + [r[c].rjust(widths[c]) for c in range(2, len(r))]
            lines.append("    " + "  ".join(cells).rstrip())
        if len(plan.gpu_candidates) > max_gpus:
            lines.append(f"    ... and {len(plan.gpu_candidates) - max_gpus} more")
        lines.append(STOCK_NOTE)
    if plan.reasons:
        lines.append("  Why:")
        lines += [f"    - {r}" for r in plan.reasons]
    if plan.warnings:
        lines.append("  Warnings:")
        lines += [f"    ! {w}" for w in plan.warnings]
    return "\n".join(lines)


#: What the stock column's "-" means, said under every GPU table.
STOCK_NOTE = (
    "    stock: RunPod's live stockStatus (High/Medium/Low/None); '-' = not known (the plan used the offline "
    "catalogue), counted as available. Catalogue prices are indicative."
)


def _outputs(plan: Plan, here: bool) -> str:
    """What the job writes and how big, the export's time, and for a machine elsewhere what comes down from it."""
    from unsloth_nb.planning.exports import DOWNLOAD_GB_PER_S

    text = "; ".join(output.describe() for output in plan.outputs)
    if plan.export_seconds:
        text += f"; export ~{rough_duration(plan.export_seconds)} after training (rough)"
    if not here:
        total = sum(o.gb for o in plan.outputs if not o.skipped)
        text += f"; all ~{total:.1f} GB come down to this machine" if total >= 0.1 else "; all come down to this machine"
        if plan.download_seconds:
            text += f" (~{rough_duration(plan.download_seconds)} at {DOWNLOAD_GB_PER_S * 8000:.0f} Mbit/s, billed)"
    return text


def _keys(needed: list[str]) -> str:
    """Each key the job needs, whether it is set here, and why."""
    if not needed:
        return "none needed"
    import os

    said = []
    for line in needed:
        name, _, why = line.partition(": ")
        state = "set" if os.environ.get(name) else "not set in the environment"
        said.append(f"{name} ({state}) - {why}")
    return "; ".join(said)


def _rate(plan: Plan) -> str:
    """The first machine's price as the placement bills it: a pod's $/h in its cloud, a serverless worker's $/s."""
    if plan.usd_per_hour is None:
        return "price unknown"
    if plan.rate_label:
        return f"${plan.usd_per_hour / 3600:.5f}/s = ${plan.usd_per_hour:.2f}/h ({plan.rate_label} worker, per second it is up)"
    return f"${plan.usd_per_hour:.2f}/h ({plan.cloud_type})"


def _per_second(per_hour: float | None) -> str:
    return f"{per_hour / 3600:.5f} ({per_hour:.2f})" if per_hour is not None else "-"


def _price(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "-"
