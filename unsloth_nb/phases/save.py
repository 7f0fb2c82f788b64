"""Save: the adapter (always after training, also when stopped), the merged 16-bit model and the Hub push."""

from __future__ import annotations

from typing import TYPE_CHECKING

from unsloth_nb.jobrun.lifecycle import SAVING
from unsloth_nb.phases.base import Artifact, PhaseContext, PhaseNeeds, PhaseResult

if TYPE_CHECKING:
    from unsloth_nb.config import TrainConfig


class SavePhase:
    name = "save"
    state = SAVING
    runs_after_stop = True  # a stopped run keeps its adapter

    def applies(self, config: TrainConfig) -> bool:
        return True

    def needs(self, config: TrainConfig) -> PhaseNeeds:
        from unsloth_nb.config.export import push_repo_ids

        adapter_repo = push_repo_ids(config.hub).get("adapter")
        if adapter_repo:
            return PhaseNeeds(secrets=("HF_TOKEN",), why=f"to push the adapter to the Hub repository {adapter_repo}")
        return PhaseNeeds()

    def run(self, ctx: PhaseContext) -> PhaseResult:
        from unsloth_nb.engine.save import ADAPTER_DIR, MERGED_DIR, folder_bytes, save_outputs

        stopped = ctx.result.stopped
        adapter_dir, merged_dir = save_outputs(
            ctx.shared["model"], ctx.shared["tokenizer"], ctx.config, ctx.output_dir, ctx.hooks, stopped
        )
        artifacts = {}
        if adapter_dir is not None:
            artifacts["adapter"] = Artifact("adapter", ADAPTER_DIR, bytes=folder_bytes(adapter_dir))
        if merged_dir is not None:
            artifacts["merged_16bit"] = Artifact("merged_16bit", MERGED_DIR, bytes=folder_bytes(merged_dir))
        return PhaseResult(artifacts=artifacts)
