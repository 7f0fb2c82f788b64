"""Train: TRL's SFTTrainer on the loaded model, reporting loss and checkpoints as events; Stop ends it cleanly."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from unsloth_nb.jobrun.lifecycle import TRAINING
from unsloth_nb.phases.base import Artifact, PhaseContext, PhaseNeeds, PhaseResult

if TYPE_CHECKING:
    from unsloth_nb.config import TrainConfig


class TrainPhase:
    name = "train"
    state = TRAINING
    runs_after_stop = False

    def applies(self, config: TrainConfig) -> bool:
        return True

    def needs(self, config: TrainConfig) -> PhaseNeeds:
        return PhaseNeeds()

    def run(self, ctx: PhaseContext) -> PhaseResult:
        from unsloth_nb.engine import sft
        from unsloth_nb.engine.model import cuda_available

        assert ctx.dataset is not None, "the load phase runs first"
        outcome = sft.train(
            ctx.shared["model"],
            ctx.shared["tokenizer"],
            ctx.config,
            ctx.dataset,
            ctx.output_dir,
            ctx.hooks,
            on_gpu=cuda_available(),
            resume_from_checkpoint=ctx.resume_from_checkpoint,
        )
        artifacts = {}
        if outcome.last_checkpoint is not None:
            artifacts["checkpoint"] = Artifact("checkpoint", _relative(outcome.last_checkpoint, ctx.output_dir))
        return PhaseResult(
            artifacts=artifacts,
            metrics={
                "global_step": outcome.global_step,
                "total_steps": outcome.total_steps,
                "final_loss": outcome.final_loss,
                "train_runtime": outcome.train_runtime,
            },
            stopped=outcome.stopped,
        )


def _relative(path: Path, output_dir: Path) -> str:
    return Path(path).resolve().relative_to(Path(output_dir).resolve()).as_posix()
