"""What one job's pods cost, and the client-side limits on time and money.

A job may rent more than one pod: one that was not ready in time, one lost to an
eviction, and for a reattached job the earlier pods ``pod.json`` lists. Runtime and
cost count over all of them, each from its creation until RunPod confirmed it gone.
:class:`Meter` keeps that account for the job: the ``cost`` events its log shows,
and whether ``runpod.max_runtime`` or ``runpod.max_cost_usd`` has been reached
(the backend then stops training, keeps what was saved and ends the pod).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from unsloth_nb.backends.base import JobContext
    from unsloth_nb.backends.runpod.pods import RentedPod


class Meter:
    """The pods one job rented and when each was confirmed gone: elapsed time, spend and the limits."""

    def __init__(self, ctx: JobContext, cost_every: float) -> None:
        self.ctx = ctx
        self.cost_every = cost_every  # seconds between cost events
        self.rented: list[RentedPod] = []
        self.gone: dict[str, float] = {}  # pod id -> monotonic time its termination was confirmed
        self._next_cost = 0.0

    def add(self, rented: RentedPod) -> None:
        self.rented.append(rented)

    def end(self, pod_id: str, at: float | None = None) -> None:
        """Stop counting a pod: its termination was confirmed (now, or at monotonic time ``at``)."""
        self.gone[pod_id] = time.monotonic() if at is None else at

    def is_gone(self, pod_id: str) -> bool:
        return pod_id in self.gone

    def not_gone(self) -> list[RentedPod]:
        """The pods this job rented that are not confirmed gone: what teardown terminates."""
        return [r for r in self.rented if r.id not in self.gone]

    def elapsed(self) -> float:
        """Seconds since this job's first pod was rented (max_runtime bounds the pods, not the planning)."""
        return time.monotonic() - self.rented[0].created_monotonic if self.rented else 0.0

    def billed(self, rented: RentedPod) -> float:
        return max(0.0, self.gone.get(rented.id, time.monotonic()) - rented.created_monotonic)

    def usd(self) -> float:
        return sum(rented.usd_per_hour * self.billed(rented) / 3600.0 for rented in self.rented)

    def limit_reached(self, pod: RentedPod | None) -> str | None:
        """Why the job must stop now that it reached a limit (``pod`` is the current one), or None."""
        runpod = self.ctx.config.runpod
        if self.elapsed() >= runpod.max_runtime:
            return f"the job reached runpod.max_runtime ({runpod.max_runtime:.0f} s)"
        if runpod.max_cost_usd is not None and self.usd() >= runpod.max_cost_usd:
            return (
                f"the job reached runpod.max_cost_usd ({_money(runpod.max_cost_usd)}; "
                f"{_money(self.usd())} spent at ${pod.usd_per_hour if pod else 0:.2f}/h)"
            )
        return None

    def report(self, pod: RentedPod | None, force: bool = False) -> None:
        """Emit a ``cost`` event for the current pod, at most every ``cost_every`` seconds unless forced."""
        now = time.monotonic()
        if pod is None or (not force and now < self._next_cost):
            return
        self._next_cost = now + self.cost_every
        self.ctx.emit("cost", usd_so_far=round(self.usd(), 6), usd_per_hour=pod.usd_per_hour, gpu=pod.offer.gpu.display_name)


def _money(usd: float) -> str:
    return f"${usd:.2f}" if usd >= 0.01 else f"${usd:.4f}"
