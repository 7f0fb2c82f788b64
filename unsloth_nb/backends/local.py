"""The in-kernel backend: the engine in a worker thread of this process.

The model must live in the kernel (``job.model`` after training), and torch blocks
in native code, so a thread rather than a task. The thread runs in the context
captured when the job started, so anything it prints lands in the cell that
started the job (ipykernel 7 routes output by contextvars).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

from unsloth_nb.backends.base import JobContext, JobHooks, PlacementInputs, PriceRequest, Pricing, SecretNeed
from unsloth_nb.errors import BackendError, JobCancelledError, PlanError
from unsloth_nb.jobrun.runtime import run_in_thread
from unsloth_nb.phases.base import PhaseContext, PhaseResult
from unsloth_nb.planning.memory import GPU_MEMORY_USABLE, fits
from unsloth_nb.planning.model_size import _human_params

if TYPE_CHECKING:
    from unsloth_nb.config import TrainConfig
    from unsloth_nb.planning.hardware import LocalHardware
    from unsloth_nb.planning.planner import Plan

#: Models up to this size train on a CPU in reasonable time when placement is auto
#: (SmolLM2-135M at ~100-300 tokens/s on 2 cores; 0.5B is ~4x slower).
CPU_AUTO_MAX_PARAMS = 0.6e9

#: Above this, ``placement: local`` on a CPU-only machine is refused: days per epoch.
CPU_FORCED_MAX_PARAMS = 3e9

#: Start-up before the first step: imports and model load (~100 MB/s from disk or the Hub, 16-bit weights).
LOCAL_STARTUP_S = 20.0
LOCAL_LOAD_S_PER_GB = 10.0


class LocalBackend:
    """This machine: the local GPU when the job fits, else the CPU for small models."""

    name = "local"
    label = "this machine"
    in_process = True
    rents = False

    # ------------------------------------------------------------------ planning
    def place(self, inputs: PlacementInputs, *, chosen: bool) -> str | None:
        config, size, local = inputs.config, inputs.size, inputs.local
        reasons, warnings = inputs.reasons, inputs.warnings
        method = "QLoRA (4-bit)" if config.model.load_in_4bit else "LoRA (16-bit)"
        gpu_available = local.free_memory_gb if local.free_memory_gb is not None else local.memory_gb
        gpu_fits = local.device == "cuda" and fits(inputs.gpu_need_gb, gpu_available)
        ram = _ram_available(local)
        cpu_need = inputs.cpu_need_gb
        ram_fits = ram is not None and cpu_need <= ram * GPU_MEMORY_USABLE
        need_text = f"{method} of {_human_params(size.params)} parameters needs ~{inputs.gpu_need_gb:.1f} GB of GPU memory"
        if chosen:
            if local.device == "cuda":
                reasons.append(f"placement is local: training on {local.describe()}.")
                if not gpu_fits:
                    warnings.append(
                        f"{need_text}, more than {GPU_MEMORY_USABLE:.0%} of the {gpu_available:.1f} GB available on "
                        f"{local.name}; it may run out of memory (try placement: auto, a shorter train.max_seq_length or batch_size 1)."
                    )
                return "cuda"
            if size.params > CPU_FORCED_MAX_PARAMS:
                raise PlanError(
                    f"placement: local cannot train {_human_params(size.params)} parameters here: this machine has no "
                    f"CUDA GPU and CPU training above ~{_human_params(CPU_FORCED_MAX_PARAMS)} would take days and "
                    f"~{cpu_need:.0f} GB of RAM. Use placement: runpod (or auto), or a model up to ~1B."
                )
            reasons.append(f"placement is local and there is no CUDA GPU: training on the CPU ({local.describe()}).")
            if size.params > CPU_AUTO_MAX_PARAMS:
                warnings.append(
                    f"{_human_params(size.params)} parameters on a CPU is slow (see the rough time); placement: auto would use RunPod."
                )
            if ram is not None and not ram_fits:
                warnings.append(
                    f"LoRA on the CPU needs ~{cpu_need:.1f} GB of RAM and {ram:.1f} GB is available; it may run out of memory."
                )
            return "cpu"
        if gpu_fits:
            reasons.append(f"{need_text}; the local {local.name} has {gpu_available:.1f} GB available, so it trains here.")
            return "cuda"
        if local.device == "cuda":
            reasons.append(f"{need_text}; the local {local.name} has only {gpu_available:.1f} GB available.")
        else:
            reasons.append(f"{need_text}; this machine has no CUDA GPU.")
        if size.params <= CPU_AUTO_MAX_PARAMS and ram_fits:
            reasons.append(
                f"Models up to ~{_human_params(CPU_AUTO_MAX_PARAMS)} train on the CPU in reasonable time "
                f"(~{cpu_need:.1f} GB of RAM), so it trains here on the CPU."
            )
            return "cpu"
        if size.params <= CPU_AUTO_MAX_PARAMS:
            reasons.append(f"It would need ~{cpu_need:.1f} GB of RAM on the CPU, more than is available.")
        else:
            reasons.append(f"Above ~{_human_params(CPU_AUTO_MAX_PARAMS)} parameters the CPU is too slow.")
        return None

    def secrets(self, config: TrainConfig) -> list[SecretNeed]:
        return []

    def startup_seconds(self, weights_gb: float) -> float:
        return LOCAL_STARTUP_S + weights_gb * LOCAL_LOAD_S_PER_GB

    def may_have_model_path(self, config: TrainConfig) -> bool:
        return False

    def plan_notes(self, config: TrainConfig) -> list[tuple[str, bool]]:
        return []

    def price(self, request: PriceRequest) -> Pricing:
        return Pricing()  # this machine is already paid for

    def plan_target(self, plan: Plan) -> str:
        return f"{'GPU' if plan.device == 'cuda' else 'CPU'}: {plan.local.name}"

    def where(self, plan: Plan) -> str:
        return f"local ({plan.device})"

    def stop_hint(self) -> str:
        return ""

    # ------------------------------------------------------------------ running
    async def reattach(self, ctx: JobContext) -> PhaseResult:
        raise BackendError("a job that trained in a process that ended cannot be followed; start it again")

    def end_all_now(self, reason: str) -> None:
        """Nothing outlives this process: its training thread ends with it."""

    async def run(self, ctx: JobContext) -> PhaseResult:
        if ctx.stop_requested:
            raise JobCancelledError("stopped before training started")
        return await run_in_thread(self._train, ctx, name=f"unsloth-nb-train-{ctx.job_id}", context=ctx.context)

    @staticmethod
    def _train(ctx: JobContext) -> PhaseResult:
        from unsloth_nb.phases.runner import phases_for, run_phases

        assert ctx.dataset is not None, "a local job runs in the process that prepared it"
        phase_ctx = PhaseContext(
            config=ctx.config,
            output_dir=ctx.output_dir,
            hooks=JobHooks(ctx),
            dataset=ctx.dataset,
            shared=ctx.shared,  # the trained model and tokenizer stay in this process, for job.model
            resume_from_checkpoint=_resume_target(ctx),
        )
        # The chart's and the view's work on each event runs on the log's delivery thread, not between steps.
        with _responsive_kernel(), ctx.log.deliver_in_background():
            return run_phases(phase_ctx, phases_for(ctx.config, runs_on="model"))


def _ram_available(local: LocalHardware) -> float | None:
    if local.device == "cpu":
        return local.free_memory_gb if local.free_memory_gb is not None else local.memory_gb
    return local.ram_gb


def _resume_target(ctx: JobContext) -> str | bool | None:
    """``latest`` means the newest checkpoint in the output folder; a path is used as given."""
    value = ctx.config.train.resume_from
    if not value:
        return None
    return True if value == "latest" else value


@contextlib.contextmanager
def _responsive_kernel() -> Iterator[None]:
    """Hand the GIL over more often while training runs beside the notebook's own thread.

    Python switches threads every 5 ms by default; a cell typed during training then
    waits behind torch's Python-side work. 1 ms brought cell round trips within 2x idle
    in benchmarks/kernel_responsiveness.py. It costs the training nothing measurable:
    ``benchmarks/controller_overhead.py --switch-interval-too`` ran the job with 1 ms and
    with Python's 5 ms side by side (SmolLM2-135M, 4 pairs, 2026-12-06): train() at 1.023 and
    1.051 of bare Unsloth, the 5 ms run no faster; one pair's spread there is 0.88-1.27.
    """
    previous = sys.getswitchinterval()
    sys.setswitchinterval(min(previous, 0.001))
    try:
        yield
    finally:
        sys.setswitchinterval(previous)
