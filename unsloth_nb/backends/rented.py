"""What the backends that rent RunPod capacity (pods, serverless) do alike.

Each answers the planning half of :class:`~unsloth_nb.backends.base.Backend` from a placement module of its own
(``runpod/placement.py``, ``runpod_serverless/placement.py``: the same five functions), and runs a job's blocking
body in a thread of its own whose ``finally`` must end whatever was rented, even when the event loop goes away.
A new rented placement subclasses :class:`RentedBackend`, names its placement module and drives its body with
:func:`drive`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from unsloth_nb.jobrun.runtime import run_in_thread

if TYPE_CHECKING:
    from unsloth_nb.backends.base import JobContext, PlacementInputs, SecretNeed
    from unsloth_nb.config import TrainConfig
    from unsloth_nb.phases.base import PhaseResult
    from unsloth_nb.planning.planner import Plan


class PlacementRules(Protocol):
    """A placement module: where a job may go, what it needs, and how its plan names the machine."""

    def place(self, inputs: PlacementInputs, *, chosen: bool) -> str | None: ...

    def secrets(self, config: TrainConfig) -> list[SecretNeed]: ...

    def startup_seconds(self, weights_gb: float) -> float: ...

    def plan_target(self, plan: Plan) -> str: ...

    def where(self, plan: Plan) -> str: ...


class RentedBackend:
    """The planning questions of a rented placement, answered by its placement module (``rules``)."""

    rules: PlacementRules  # the placement module (a class attribute of each subclass)
    in_process = False
    rents = True

    def place(self, inputs: PlacementInputs, *, chosen: bool) -> str | None:
        return self.rules.place(inputs, chosen=chosen)

    def secrets(self, config: TrainConfig) -> list[SecretNeed]:
        return self.rules.secrets(config)

    def startup_seconds(self, weights_gb: float) -> float:
        return self.rules.startup_seconds(weights_gb)

    def plan_target(self, plan: Plan) -> str:
        return self.rules.plan_target(plan)

    def where(self, plan: Plan) -> str:
        return self.rules.where(plan)


async def drive(ctx: JobContext, body: Callable[[], PhaseResult], name: str) -> PhaseResult:
    """Run ``body`` in its own thread and await its result.

    When the loop is cancelled (Ctrl-C, a kernel shutdown) the job is told to stop and this still waits for
    ``body`` to return: its ``finally`` ends what the job rented, and nothing may be left billing.
    """
    future = run_in_thread(body, name=name, context=ctx.context)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        ctx.stop_event.set()
        with contextlib.suppress(BaseException):
            await future
        raise
