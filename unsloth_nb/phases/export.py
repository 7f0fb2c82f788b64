"""Export: after saving (and after the answers the judge reads), write GGUF files, an Ollama Modelfile and
merged models, and push what ``hub.push`` names beyond the adapter. Runs where the model is."""

from __future__ import annotations

from typing import TYPE_CHECKING

from unsloth_nb.config.export import exports_wanted, push_repo_ids
from unsloth_nb.jobrun.lifecycle import EXPORTING
from unsloth_nb.phases.base import PhaseContext, PhaseNeeds, PhaseResult

if TYPE_CHECKING:
    from unsloth_nb.config import TrainConfig


class ExportPhase:
    name = "export"
    state = EXPORTING
    runs_after_stop = False  # a stopped run keeps its adapter; exporting a half-trained model helps nobody

    def applies(self, config: TrainConfig) -> bool:
        return exports_wanted(config.save, config.hub)

    def needs(self, config: TrainConfig) -> PhaseNeeds:
        pushed = sorted(set(push_repo_ids(config.hub)) - {"adapter"})
        if pushed:
            return PhaseNeeds(secrets=("HF_TOKEN",), why=f"to push {', '.join(pushed)} to the Hub")
        return PhaseNeeds()

    def run(self, ctx: PhaseContext) -> PhaseResult:
        from unsloth_nb.export.run import export_outputs

        return export_outputs(ctx.shared["model"], ctx.shared["tokenizer"], ctx.config, ctx.output_dir, ctx.hooks, ctx.result)
