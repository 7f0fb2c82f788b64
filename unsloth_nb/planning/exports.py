"""What a job's outputs will be before it runs: each file or folder, its size on disk and the time to write it.

The plan shows a user what a job produces (the adapter, a merged model, GGUF files, an Ollama Modelfile),
how big each is, how long the export takes, and on a rented machine how much must come down to this
machine and how long the machine bills for it. A pod's container disk (:mod:`.pod_size`) and
``--dry-run``'s download list read the same list, so they agree with what the plan says.

Every figure is a rule of thumb from a measurement named beside it; the plan calls them rough.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from unsloth_nb.config import TrainConfig
    from unsloth_nb.planning.model_size import ModelSize

from unsloth_nb.planning.pod_size import GGUF_BYTES_PER_PARAM, MERGED_4BIT_BYTES_PER_PARAM, lora_params

__all__ = ["PlannedOutput", "download_seconds", "export_seconds", "planned_outputs"]

# Time rules of thumb from ``python benchmarks/gguf_export.py`` (SmolLM2-135M, 2 shared vCPUs, AMD EPYC,
# 2026-12-06, 1-min load 1.2-2.8 from other work; f16 = 0.271 GB): 16-bit merge 0.8 s and 1.8 s in two runs;
# llama.cpp's converter f16 + q8_0 (0.416 GB written) in one process 12.3 s, f16 alone 14.0 s in the busier
# run (the run-to-run noise is bigger than the per-GB part; issue 17's run at load 7+ gave 19.9 s, about half
# of it importing torch and transformers): ~8 s to start + ~15 s per GB written; the quantiser, f16 -> q4_k_m,
# 2.2 s (5.2 s at load 7+) for 0.271 GB of f16 read, ~10 s/GB. A pod converts at a similar rate: the
# converter is one Python process on the CPU, and a pod has more cores, not faster ones.
MERGE_S_PER_GB = 5.0
CONVERT_S = 8.0
CONVERT_S_PER_GB = 15.0
QUANTISE_S_PER_GB = 10.0
#: A 4-bit merge re-quantises every weight on the GPU: about as long as a 16-bit merge (not measured: no GPU).
MERGE_4BIT_S_PER_GB = MERGE_S_PER_GB
#: Outputs coming down from a pod through RunPod's proxy to this machine: 400 Mbit/s, the rate
#: ``benchmarks/pod_install_time.py`` assumes for a pod's own downloads (a home line may be far slower).
DOWNLOAD_GB_PER_S = 0.05


@dataclass(frozen=True)
class PlannedOutput:
    """One thing the job writes: its artifact name, its path under the job's output folder, what it is,
    its estimated size, and the seconds its export step takes (0 for what training itself saves)."""

    name: str
    path: str
    what: str
    gb: float
    seconds: float = 0.0
    skipped: str | None = None  # why it will not be written (a 4-bit merge of a model loaded in 16 bit)

    def describe(self) -> str:
        if self.skipped:
            return f"{self.what}: skipped ({self.skipped})"
        return f"{self.what} ~{_size(self.gb)}" if self.gb >= 0.001 else self.what


def planned_outputs(config: TrainConfig, size: ModelSize, *, four_bit: bool) -> list[PlannedOutput]:
    """Everything the job will write for a user, in the order it is written, with sizes and export times.

    ``four_bit``: the base model trains in 4 bit (a CUDA GPU and ``model.load_in_4bit``); a 4-bit merge
    needs it and is skipped otherwise, as the export phase does.
    """
    from unsloth_nb.config.export import GGUF_CONVERTER_TYPES, gguf_types, push_repo_ids
    from unsloth_nb.engine.save import ADAPTER_DIR, MERGED_DIR
    from unsloth_nb.evaluate.answers import ANSWERS_FILE
    from unsloth_nb.export.run import GGUF_DIR, MERGED_4BIT_DIR, gguf_file_name

    params = size.params
    merged_gb = params * 2.0 / 1e9
    pushed = push_repo_ids(config.hub)
    outputs = [PlannedOutput("adapter", ADAPTER_DIR, "LoRA adapter", lora_params(size, config.lora.r) * 4 / 1e9)]
    if config.judge.enabled:
        outputs.append(PlannedOutput("answers", ANSWERS_FILE, "both models' answers for the judge", 0.0))
    if config.save.merged_16bit or "merged_16bit" in pushed:
        outputs.append(PlannedOutput("merged_16bit", MERGED_DIR, "merged 16-bit model", merged_gb, merged_gb * MERGE_S_PER_GB))
    types = gguf_types(config.save)
    if types:
        merge = 0.0 if any(o.name == "merged_16bit" for o in outputs) else merged_gb * MERGE_S_PER_GB
        quantised = [t for t in types if t not in GGUF_CONVERTER_TYPES]
        direct = [t for t in types if t in GGUF_CONVERTER_TYPES] + (["f16"] if quantised and "f16" not in types else [])
        written = sum(params * GGUF_BYTES_PER_PARAM.get(t, 0.6) / 1e9 for t in direct)
        convert = merge + CONVERT_S + written * CONVERT_S_PER_GB  # one converter process writes every direct type
        for gguf_type in types:
            gb = params * GGUF_BYTES_PER_PARAM.get(gguf_type, 0.6) / 1e9
            seconds = merged_gb * QUANTISE_S_PER_GB if gguf_type in quantised else 0.0
            if gguf_type == types[0]:
                seconds += convert  # the merge and the converter's run, counted once
            how = "llama.cpp quantiser, from f16" if gguf_type in quantised else "llama.cpp converter"
            path = f"{GGUF_DIR}/{gguf_file_name(config.model.name, gguf_type)}"
            outputs.append(PlannedOutput(f"gguf_{gguf_type}", path, f"GGUF {gguf_type} ({how})", gb, seconds))
        if config.save.ollama:
            outputs.append(PlannedOutput("ollama_modelfile", f"{GGUF_DIR}/Modelfile", "Ollama Modelfile", 0.0))
    if config.save.merged_4bit or "merged_4bit" in pushed:
        gb = params * MERGED_4BIT_BYTES_PER_PARAM / 1e9
        skipped = None if four_bit else "the model trains in 16 bit here (CPU, or model.load_in_4bit: false)"
        outputs.append(
            PlannedOutput(
                "merged_4bit", MERGED_4BIT_DIR, "merged 4-bit model", 0.0 if skipped else gb, gb * MERGE_4BIT_S_PER_GB, skipped
            )
        )
    return outputs


def export_seconds(outputs: list[PlannedOutput]) -> float:
    """Seconds the export steps add after training (merges, conversion, quantising)."""
    return sum(o.seconds for o in outputs if not o.skipped)


def download_seconds(outputs: list[PlannedOutput]) -> float:
    """Seconds to bring every output down from a rented machine, beyond the adapter its start-up rule counts."""
    return sum(o.gb for o in outputs if o.name != "adapter") / DOWNLOAD_GB_PER_S


def _size(gb: float) -> str:
    return f"{gb:.1f} GB" if gb >= 1 else f"{gb * 1000:.0f} MB"
