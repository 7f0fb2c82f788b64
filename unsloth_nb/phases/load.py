"""Load: the base model with its LoRA adapters, and the dataset checked against its tokenizer.

The model and tokenizer stay in this process (``ctx.shared``) for the phases after it;
nothing of them goes into the result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from unsloth_nb.jobrun.lifecycle import STARTING
from unsloth_nb.phases.base import PhaseContext, PhaseNeeds, PhaseResult

if TYPE_CHECKING:
    from unsloth_nb.config import TrainConfig


class LoadPhase:
    name = "load"
    state = STARTING
    runs_after_stop = False

    def applies(self, config: TrainConfig) -> bool:
        return True

    def needs(self, config: TrainConfig) -> PhaseNeeds:
        # Gated base models (and private Hub datasets) download only with a token; one that is set goes along,
        # as do the S3 keys when the dataset is read from S3 or a network volume where training runs.
        from unsloth_nb.data.sources import secrets_for

        dataset = config.dataset
        sources = [dataset.path, dataset.eval_path or "", *(entry.rpartition("=")[0] or entry for entry in dataset.mix)]
        from unsloth_nb.data.volume_ids import mounted_volume

        volume = mounted_volume(config)  # a pod mounts one network volume, and reads that one's files there
        if volume is not None:
            sources = [s for s in sources if not str(s).startswith(f"volume://{volume}/")]
        return PhaseNeeds(optional_secrets=("HF_TOKEN", *secrets_for(sources)))

    def run(self, ctx: PhaseContext) -> PhaseResult:
        from unsloth_nb.engine.model import load_model

        if ctx.dataset is None:
            raise ValueError("the load phase needs the job's dataset")
        ctx.output_dir.mkdir(parents=True, exist_ok=True)
        loaded, ctx.dataset = load_model(ctx.config, ctx.dataset, ctx.hooks)
        ctx.shared["model"], ctx.shared["tokenizer"] = loaded.model, loaded.tokenizer
        return PhaseResult()
