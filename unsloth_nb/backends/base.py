"""What the rest of the code may ask of a placement, and what a backend gets and gives back.

A placement (``local``, ``runpod``, ...) is a :class:`Backend` in
:mod:`unsloth_nb.backends.registry`. The planner, the rental question, the plan text,
the views and the controller ask the backend, never compare placement strings, so a
new placement is one folder and one registry line. Data flows one way: the
controller imports this and the registry; backends import this, never the controller.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from unsloth_nb.config import TrainConfig
    from unsloth_nb.data import DatasetSummary, PreparedDataset
    from unsloth_nb.jobrun.events import Event, EventLog
    from unsloth_nb.jobrun.store import JobFolder, JobRecord
    from unsloth_nb.phases.base import PhaseResult
    from unsloth_nb.planning.gpu_catalog import GpuOption
    from unsloth_nb.planning.hardware import LocalHardware
    from unsloth_nb.planning.model_size import ModelSize
    from unsloth_nb.planning.planner import Plan


#: How a backend moves the job to a new state (``unsloth_nb.jobrun.lifecycle``), with an optional reason.
class SetState(Protocol):
    def __call__(self, state: str, reason: str | None = None) -> None: ...


@dataclass
class JobContext:
    """What a backend gets: the job's inputs, its log and its stop flag.

    ``plan`` and ``dataset`` are None when a process reattaches to a job it did not
    start (they lived in the process that died); a backend that needs them again
    (the RunPod backend moving to a new pod) reads the dataset and plans anew.
    """

    job_id: str
    config: TrainConfig
    plan: Plan | None
    dataset: PreparedDataset | None
    log: EventLog
    folder: JobFolder
    output_dir: Path
    stop_event: threading.Event
    set_state: SetState
    record: JobRecord
    context: contextvars.Context = field(default_factory=contextvars.copy_context)
    stop_reasons: list[str] = field(default_factory=list)  # why Stop was asked for, first one first
    #: In-process objects a backend that trains here hands back (the model and tokenizer); never serialised.
    shared: dict[str, Any] = field(default_factory=dict)
    #: Plans the job again for the dataset read anew (a reattached job has no plan); the controller hands in the
    #: planner, which sits above the backends (it asks them), so a backend never imports it.
    plan_again: Callable[[DatasetSummary], Plan] | None = None

    @property
    def stop_requested(self) -> bool:
        return self.stop_event.is_set()

    @property
    def stop_reason(self) -> str:
        """What the user gave as the reason to stop (a job's end reason says it)."""
        return self.stop_reasons[0] if self.stop_reasons else "stopped by the user"

    def emit(self, kind: str, /, **data: Any) -> Event:
        return self.log.emit(kind, **data)


class JobHooks:
    """The phases' hooks (``PhaseHooks``) over a job: events into its log, its Stop flag, its state."""

    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx

    def emit(self, kind: str, /, **data: Any) -> None:
        self.ctx.emit(kind, **data)

    def should_stop(self) -> bool:
        return self.ctx.stop_requested

    def enter(self, state: str) -> None:
        self.ctx.set_state(state)


@dataclass(frozen=True)
class SecretNeed:
    """A key a job needs, by environment-variable name, and why (said when it is missing or asked for)."""

    name: str
    purpose: str


@dataclass
class PlacementInputs:
    """What the planner knows when it asks a backend whether (and on what device) it can take a job.

    A backend that takes or declines the job writes why into ``reasons``/``warnings``: the plan shows them.
    """

    config: TrainConfig
    size: ModelSize
    local: LocalHardware
    gpu_need_gb: float
    cpu_need_gb: float
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class PriceRequest:
    """What the planner knows when it asks a backend for its cost lines (machines to rent, their price).

    ``step_seconds`` is the planner's rule of thumb for one optimizer step on a GPU type (by its id), so a
    renting backend ranks its machines by the whole run's cost. Notes go into ``reasons``/``warnings``.
    """

    config: TrainConfig
    size: ModelSize
    gpu_need_gb: float
    catalogue: list[GpuOption]
    user_gpus: list[GpuOption]
    steps: int | None
    tokens_per_step: int
    startup_seconds: float
    step_seconds: Callable[[str], float]
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class Pricing:
    """A backend's cost lines for one plan: the machines in the order to try, and how a price follows.

    Empty (the default) for a placement that rents nothing: no GPU list, no price, no cost.
    """

    candidates: list[GpuOption] = field(default_factory=list)
    cloud: str | None = None
    gpu_choice: str | None = None  # why the first machine, and the runner-up, in one line
    community: bool = False
    #: One rate per machine, not a cloud to choose (serverless: "flex worker"); the plan then says the rate by this
    #: name, per second and per hour, in one column, and never names a pod cloud.
    rate_label: str | None = None

    def estimate(self, seconds: float | None, warnings: list[str]) -> tuple[float | None, float | None]:
        """(usd per hour, estimated usd) for a run of ``seconds``; a warning when the first machine has no price."""
        if not self.candidates:
            return None, None
        first = self.candidates[0]
        usd_per_hour = first.usd_per_hour(self.cloud or "SECURE", self.community)
        if usd_per_hour is None:
            where = f"at {self.rate_label} rates" if self.rate_label else f"in the {self.cloud} cloud"
            warnings.append(f"No price is known for {first.gpu_type_id} {where}; the cost is not estimated.")
            return None, None
        return usd_per_hour, (max(round(seconds / 3600 * usd_per_hour, 2), 0.01) if seconds is not None else None)


class Backend(Protocol):
    """One placement: how it is planned, described and priced, and how a job runs, reattaches and ends there.

    ``in_process``: the job trains in this process (``job.model`` is set; a job whose process died
    cannot be followed and is marked failed). ``rents``: it pays by the hour for a machine (GPU list
    and $ estimate in the plan, a confirmation above ``runpod.confirm_above_usd``, checkpoints by
    default). ``label`` names it to people ("this machine", "RunPod").
    """

    name: str
    label: str
    in_process: bool
    rents: bool

    def place(self, inputs: PlacementInputs, *, chosen: bool) -> str | None:
        """The device ("cuda"/"cpu") the job would train on here, or None to decline.

        ``chosen``: the user named this placement (a backend may then refuse with a PlanError
        that says why); otherwise ``placement: auto`` asks the backends in registry order.
        """
        ...

    def secrets(self, config: TrainConfig) -> list[SecretNeed]:
        """The keys this placement itself needs (the phases' own come from their ``needs``)."""
        ...

    def startup_seconds(self, weights_gb: float) -> float:
        """Start-up before the first step and wind-down after the last, for the plan's time estimate."""
        ...

    def may_have_model_path(self, config: TrainConfig) -> bool:
        """Whether a model folder missing here may still exist where the job runs (a network volume)."""
        ...

    def plan_notes(self, config: TrainConfig) -> list[tuple[str, bool]]:
        """Lines the plan adds for this placement, each with whether it is a warning."""
        ...

    def price(self, request: PriceRequest) -> Pricing:
        """The plan's cost lines here: machines to rent in order and their price (``Pricing()`` when none)."""
        ...

    def plan_target(self, plan: Plan) -> str:
        """What the job trains on, in a few words ("CPU: AMD EPYC", "NVIDIA A100 80GB PCIe"); "" when unknown."""
        ...

    def where(self, plan: Plan) -> str:
        """The placement in a status or log line ("local (cpu)", "RunPod NVIDIA A100 80GB PCIe")."""
        ...

    def stop_hint(self) -> str:
        """How to end a job of this placement from another process ("" when there is nothing to end)."""
        ...

    async def run(self, ctx: JobContext) -> PhaseResult:
        """Run the job's model phases here, emitting their events into ``ctx.log``; their merged result."""
        ...

    async def reattach(self, ctx: JobContext) -> PhaseResult:
        """Follow a job another (dead) process started, to its end; raise BackendError when it cannot be."""
        ...

    def end_all_now(self, reason: str) -> None:
        """At interpreter exit: end at once whatever this backend runs that costs money or outlives us."""
        ...
