"""Whether a RunPod rental may start without asking, and what to ask when it may not.

Renting a GPU spends the user's money, so the front ends (the CLI, the
``%unsloth_train`` magic and the TrainingPanel) ask before a pod is rented. Asking
for every few-cent test run trains people to click "Rent" without reading, so
``runpod.confirm_above_usd`` sets a threshold: a plan whose cost is known and at or
under it starts at once, with one line saying so. The three front ends share these
functions so that they can never disagree about when to ask or how a cost is worded.

The figure compared is the plan's estimate capped by ``runpod.max_cost_usd``: the
client stops the pod at that budget, so it bounds what the job can cost even when
the estimate is higher. An unknown estimate always asks (nothing bounds it that the
user has seen), and a threshold of 0 always asks, even for a $0.00 estimate, so
"0" is a dependable way to be asked every time. ``--yes`` is handled by the
callers: it never asks.

Only plain arithmetic on the plan and the config happens here, so ``import
unsloth_nb`` stays light; the planner and config types are imported for type
checking only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from unsloth_nb.backends.registry import get_backend

if TYPE_CHECKING:
    from unsloth_nb.config import TrainConfig
    from unsloth_nb.planning.planner import Plan

__all__ = ["asking_because", "rental_cost", "rental_note", "rental_question"]

_KNOB = "runpod.confirm_above_usd"
_CAP = "runpod.max_cost_usd"


def rental_cost(plan: Plan, config: TrainConfig) -> float | None:
    """The most the plan's rental is expected to cost: the estimate, capped by ``runpod.max_cost_usd``.

    None when the estimate is unknown: a cap alone does not count as a known cost,
    because the user was never shown what the job itself should cost.
    """
    estimate = plan.estimated_cost_usd
    if estimate is None:
        return None
    cap = config.runpod.max_cost_usd
    return min(estimate, cap) if cap is not None else estimate


def _must_ask(plan: Plan, config: TrainConfig) -> bool:
    if not get_backend(plan.placement).rents:
        return False
    threshold = config.runpod.confirm_above_usd
    figure = rental_cost(plan, config)
    return threshold == 0 or figure is None or figure > threshold


def _figure_text(plan: Plan, config: TrainConfig) -> str:
    """The compared figure in words: the estimate, or the cap when the cap is what bounds the cost."""
    estimate = plan.estimated_cost_usd
    figure = rental_cost(plan, config)
    if estimate is None or figure is None:
        return "the estimated cost is unknown"
    if figure < estimate:
        return f"at most ${figure:.2f} ({_CAP} stops the pod there; estimated ${estimate:.2f})"
    return f"estimated ${estimate:.2f}"


def rental_question(plan: Plan, config: TrainConfig) -> str | None:
    """The question to ask before renting, or None when the rental may start without asking.

    The question names the estimate, the hourly price when known and the
    ``runpod.max_cost_usd`` budget when set, so the answer is an informed one.
    Front ends add their own answer form (the CLI's ``[y/N]``, buttons).
    """
    if not _must_ask(plan, config):
        return None
    estimate = plan.estimated_cost_usd
    parts = [f"estimated ${estimate:.2f}" if estimate is not None else "estimated cost unknown"]
    if plan.usd_per_hour is not None:
        parts[0] += f" at ${plan.usd_per_hour:.2f}/h"
    cap = config.runpod.max_cost_usd
    if cap is not None:
        parts.append(f"{_CAP} stops it at ${cap:.2f}")
    return f"Rent a RunPod GPU for this job ({'; '.join(parts)})?"


def asking_because(plan: Plan, config: TrainConfig) -> str:
    """Why this plan asks before renting, for a front end that cannot ask (no terminal, no widgets).

    It tells the user which knob led to the question, so they can pass ``--yes``
    or change the threshold knowingly.
    """
    threshold = config.runpod.confirm_above_usd
    if threshold == 0:
        return f"{_KNOB} is 0, so every rental asks first"
    if rental_cost(plan, config) is None:
        return "its estimated cost is unknown, so it asks first"
    return f"{_figure_text(plan, config)} is above {_KNOB} (${threshold:.2f})"


def rental_note(plan: Plan, config: TrainConfig) -> str | None:
    """One line for a rental that starts without asking, saying why; None when nothing is rented or a question is due.

    Starting to spend money silently would be a surprise, so the front ends show
    this line and how to be asked again.
    """
    if not get_backend(plan.placement).rents or _must_ask(plan, config):
        return None
    threshold = config.runpod.confirm_above_usd
    return (
        f"Renting without asking: {_figure_text(plan, config)} is within {_KNOB} (${threshold:.2f}); "
        "set it to 0 to always be asked."
    )
