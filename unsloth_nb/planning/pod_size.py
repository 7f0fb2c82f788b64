"""How big a pod a job needs besides its GPU: container disk, vCPUs and RAM.

RunPod's defaults (the SDK asks for 1 vCPU and 1 GB of RAM; we used to ask for a
fixed 50 GB disk) either waste money or fail late: a merged 16-bit export of a 70B
model does not fit in 50 GB, and a pod with 1 GB of RAM cannot even load the
tokenizer of a big model. So the pod is sized from what it will hold:

- disk: the packages pip adds to the image, the base model's weights as downloaded,
  every checkpoint the run keeps (LoRA weights and their optimizer state), the adapter,
  the merged 16-bit export when asked for (or converted to GGUF), the GGUF files and the
  4-bit merge asked for, and 10 GB of room;
- vCPUs: 4 per GPU, as SkyPilot asks (tokenising and data loading feed the GPU);
- RAM: RunPod's own 8 GB per GPU at least, and enough to hold the weights while they
  load, or the whole 16-bit model when it is merged for export.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from unsloth_nb.config import TrainConfig
    from unsloth_nb.planning.model_size import ModelSize

__all__ = ["PodResources", "pod_resources"]

#: What pip adds to a CUDA + PyTorch image (unsloth, transformers, xformers, bitsandbytes ...) plus its temp space.
PACKAGES_GB = 8.0
ROOM_GB = 10.0
MIN_DISK_GB = 20
VCPU_PER_GPU = 4
RAM_PER_GPU_GB = 8  # RunPod's REST default minRAMPerGPU
#: LoRA weights plus their Adam moments, in fp32, per trainable parameter (as a checkpoint stores them).
CHECKPOINT_BYTES_PER_PARAM = 12


@dataclass(frozen=True)
class PodResources:
    """The container disk, and the least vCPUs and RAM, a job's pod is created with."""

    container_disk_gb: int
    min_vcpu: int
    min_memory_gb: int
    disk_parts: tuple[tuple[str, float], ...] = ()  # (what, GB) behind the disk size
    disk_from_config: bool = False

    def describe(self, host: bool = True) -> str:
        """The disk and what fills it; with ``host``, the least vCPUs and RAM asked of the machine too."""
        disk = f"{self.container_disk_gb} GB {'disk' if host else 'container disk'}"
        if self.disk_from_config:
            disk += " (runpod.container_disk_gb)"
        else:
            disk += " (" + ", ".join(f"{what} {gb:.0f}" for what, gb in self.disk_parts if gb >= 0.5) + ")"
        return f"{disk}, at least {self.min_vcpu} vCPUs and {self.min_memory_gb} GB RAM" if host else disk


#: A pod job without ``train.save_steps`` checkpoints about this often (a lost pod then costs at most this much).
POD_CHECKPOINT_EVERY_S = 15 * 60.0


def checkpoint_every(tokens_per_step: int | None, tokens_per_second: float | None, total_steps: int | None) -> int | None:
    """Steps between checkpoints for about every POD_CHECKPOINT_EVERY_S of training on a rented machine.

    None when the speed is unknown or the whole run is shorter than one interval (a lost pod then costs little).
    Here, below the backends, so a renting backend sizes its disk by the same rule the planner states.
    """
    if not tokens_per_second or not tokens_per_step:
        return None
    every = max(1, round(POD_CHECKPOINT_EVERY_S / (tokens_per_step / tokens_per_second)))
    if total_steps is not None and every >= total_steps:
        return None
    return every


def weights_gb(size: ModelSize, model_name: str) -> float:
    """The base model's weights as downloaded: 16 bit, or about 0.6 byte a parameter for a 4-bit upload."""
    per_param = 0.6 if "4bit" in model_name.lower() else 2.0
    return size.params * per_param / 1e9


def lora_params(size: ModelSize, rank: int) -> int:
    """Trainable LoRA parameters on all linear layers: about 16 x hidden x rank per layer (7 projections)."""
    if size.hidden_size and size.num_layers:
        return 16 * size.hidden_size * rank * size.num_layers
    return int(size.params * 0.01 * rank / 16)


def pod_resources(
    config: TrainConfig,
    size: ModelSize,
    *,
    total_steps: int | None = None,
    save_steps: int | None = None,
    gpu_count: int = 1,
) -> PodResources:
    """Disk, vCPUs and RAM for this job's pod; ``runpod.container_disk_gb``, when set, wins for the disk."""
    weights = weights_gb(size, config.model.name)
    merged = size.params * 2.0 / 1e9 if config.save.merged_16bit or config.save.gguf or "merged_16bit" in config.hub.push else 0.0
    gguf = gguf_gb(config, size.params)
    merged_4bit = merged_4bit_gb(config, size.params)
    adapter = lora_params(size, config.lora.r) * 4 / 1e9
    kept = 1
    if save_steps and total_steps:
        kept = max(1, math.ceil(total_steps / save_steps))
    checkpoints = kept * lora_params(size, config.lora.r) * CHECKPOINT_BYTES_PER_PARAM / 1e9
    parts = (
        ("packages", PACKAGES_GB),
        ("model", weights),
        ("merged export", merged),
        ("GGUF export", gguf),
        ("merged 4-bit export", merged_4bit),
        (f"{kept} checkpoint{'s' if kept != 1 else ''}", checkpoints),
        ("adapter", adapter),
        ("room", ROOM_GB),
    )
    needed = sum(gb for _, gb in parts)
    disk = max(MIN_DISK_GB, 5 * math.ceil(needed * 1.1 / 5))
    chosen = config.runpod.container_disk_gb
    ram = max(RAM_PER_GPU_GB * gpu_count, math.ceil(weights + 4), math.ceil(merged * 1.2 + 4) if merged else 0)
    return PodResources(
        container_disk_gb=int(chosen) if chosen else disk,
        min_vcpu=VCPU_PER_GPU * gpu_count,
        min_memory_gb=int(ram),
        disk_parts=parts,
        disk_from_config=bool(chosen),
    )


#: Bytes per parameter of a GGUF type. f16/q8_0 measured on SmolLM2-135M (270.9 MB and 144.8 MB for 134.5M
#: parameters, ``benchmarks/gguf_export.py``); the k-quants from llama.cpp's quantize list for a 7B Llama
#: (Q4_K_M 3.80 GB against F16 13.0 GB ...) scaled so f16 is 2 bytes. A small model keeps more of its tensors
#: (the embeddings) at higher precision: SmolLM2's q4_k_m was 105.5 MB, 0.78 bytes a parameter.
GGUF_BYTES_PER_PARAM = {
    "f32": 4.0,
    "f16": 2.0,
    "bf16": 2.0,
    "q8_0": 1.07,
    "q6_k": 0.82,
    "q5_k_m": 0.72,
    "q5_k_s": 0.69,
    "q5_1": 0.72,
    "q5_0": 0.67,
    "q4_k_m": 0.6,
    "q4_k_s": 0.57,
    "q4_1": 0.6,
    "q4_0": 0.55,
    "q3_k_l": 0.52,
    "q3_k_m": 0.47,
    "q3_k_s": 0.42,
    "q2_k": 0.4,
}
#: bitsandbytes 4-bit weights plus the 16-bit embeddings and head: unsloth/Meta-Llama-3.1-8B-bnb-4bit is 5.7 GB.
MERGED_4BIT_BYTES_PER_PARAM = 0.71
#: llama.cpp's build (quantiser and converter) on a pod's disk.
LLAMA_CPP_GB = 1.0


def gguf_gb(config: TrainConfig, params: float) -> float:
    """Disk the GGUF step needs: the files asked for, the f16 file the quantiser starts from, llama.cpp's build."""
    from unsloth_nb.config.export import GGUF_CONVERTER_TYPES, gguf_types

    types = gguf_types(config.save)
    if not types:
        return 0.0
    per_param = sum(GGUF_BYTES_PER_PARAM.get(t, 0.6) for t in types)
    if "f16" not in types and any(t not in GGUF_CONVERTER_TYPES for t in types):
        per_param += GGUF_BYTES_PER_PARAM["f16"]
    return params * per_param / 1e9 + LLAMA_CPP_GB


def merged_4bit_gb(config: TrainConfig, params: float) -> float:
    """A 4-bit merged model (``save.merged_4bit`` or pushed), else 0."""
    from unsloth_nb.config.export import push_repo_ids

    wanted = config.save.merged_4bit or "merged_4bit" in push_repo_ids(config.hub)
    return params * MERGED_4BIT_BYTES_PER_PARAM / 1e9 if wanted else 0.0
