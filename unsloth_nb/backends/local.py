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
from typing import Any

from unsloth_nb.backends.base import BackendResult, JobContext
from unsloth_nb.errors import JobCancelledError
from unsloth_nb.jobs.runtime import run_in_thread


class _Hooks:
    """Connects the engine to the job: events, the stop flag, state changes."""

    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx

    def emit(self, kind: str, /, **data: Any) -> None:
        self.ctx.emit(kind, **data)

    def should_stop(self) -> bool:
        return self.ctx.stop_requested

    def enter(self, state: str) -> None:
        self.ctx.set_state(state)


class LocalBackend:
    name = "local"

    async def run(self, ctx: JobContext) -> BackendResult:
        if ctx.stop_requested:
            raise JobCancelledError("stopped before training started")
        return await run_in_thread(self._train, ctx, name=f"unsloth-nb-train-{ctx.job_id}", context=ctx.context)

    @staticmethod
    def _train(ctx: JobContext) -> BackendResult:
        from unsloth_nb.engine import run_training

        ctx.set_state("starting")
        with _responsive_kernel():
            result = run_training(
                ctx.config, ctx.dataset, ctx.output_dir, _Hooks(ctx), resume_from_checkpoint=_resume_target(ctx)
            )
        return BackendResult(
            adapter_dir=result.adapter_dir,
            merged_dir=result.merged_dir,
            last_checkpoint=result.last_checkpoint,
            global_step=result.global_step,
            final_loss=result.final_loss,
            stopped=result.stopped,
            model=result.model,
            tokenizer=result.tokenizer,
        )


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
    with Python's 5 ms side by side, train() at 1.007 and 1.012 of bare Unsloth (SmolLM2-135M).
    """
    previous = sys.getswitchinterval()
    sys.setswitchinterval(min(previous, 0.001))
    try:
        yield
    finally:
        sys.setswitchinterval(previous)
