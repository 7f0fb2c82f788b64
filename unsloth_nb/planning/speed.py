"""How fast a job trains, by rule of thumb: the prior the plan starts from before this machine has run a job.

Kept apart from the planner because :mod:`unsloth_nb.planning.calibration` corrects these priors with measured
jobs, and the planner asks the calibration: both read this module, neither imports the other's caller.
"""

from __future__ import annotations

from unsloth_nb.backends.registry import get_backend
from unsloth_nb.planning.gpu_catalog import DEFAULT_TRAINING_TFLOPS, training_tflops

#: Training FLOPs per parameter per token: forward 2, recomputation under
#: gradient checkpointing 2, backward through frozen weights 2 (LoRA's own
#: weight gradients are negligible).
FLOPS_PER_PARAM_PER_TOKEN = 6.0

#: 4-bit weights are dequantised on the fly: QLoRA runs at about this share of LoRA speed.
QLORA_SPEED_FACTOR = 0.8

#: Small models are bound by kernel launches, not FLOPs; no GPU estimate goes above this.
GPU_MAX_TOKENS_PER_SECOND = 30_000.0

#: CPU: ~95 tokens/s for a 135M model on 2 shared cores (SmolLM2-135M, LoRA r=16, measured
#: 80-110 tokens/s in the quickstart and the demo; training.md's 200 was an idle machine),
#: scaled inversely with params and linearly with cores up to 16 (memory bandwidth stops it).
#: Once this machine has run a job, :mod:`unsloth_nb.planning.calibration` corrects it.
CPU_TOKENS_PER_SECOND_135M_2_CORES = 95.0

#: Fixed cost of one optimizer step besides its tokens (optimizer, logging, Python): what bounds a
#: tiny model, whose tokens cost almost nothing (2,000 steps of the test model took 5-12 min on 2 cores).
CPU_STEP_OVERHEAD_S = 0.15
GPU_STEP_OVERHEAD_S = 0.05


def prior_tokens_per_second(params: float, device: str, four_bit: bool, cpu_count: int | None, gpu_name: str) -> float:
    """Rough training throughput by rule of thumb: FLOPs for GPUs, a measured CPU point scaled by size and cores."""
    params = max(params, 1.0)
    if device == "cpu":
        cores = min(cpu_count or 2, 16)
        return CPU_TOKENS_PER_SECOND_135M_2_CORES * (134.5e6 / params) * (cores / 2)
    tflops = training_tflops(gpu_name) or DEFAULT_TRAINING_TFLOPS
    speed = tflops * 1e12 / (FLOPS_PER_PARAM_PER_TOKEN * params) * (QLORA_SPEED_FACTOR if four_bit else 1.0)
    return min(speed, GPU_MAX_TOKENS_PER_SECOND)


def prior_step_seconds(
    params: float, tokens_per_step: int, device: str, four_bit: bool, cpu_count: int | None, gpu_name: str
) -> float:
    """Seconds per optimizer step by rule of thumb: a fixed cost plus the step's tokens at the rough speed."""
    overhead = CPU_STEP_OVERHEAD_S if device == "cpu" else GPU_STEP_OVERHEAD_S
    return overhead + tokens_per_step / prior_tokens_per_second(params, device, four_bit, cpu_count, gpu_name)


def prior_overhead_seconds(params: float) -> float:
    """Seconds of a job on this machine outside its steps by rule of thumb: imports, model load, save."""
    return get_backend("local").startup_seconds(params * 2 / 1e9)
