"""How much GPU memory (or RAM on a CPU) LoRA/QLoRA fine-tuning needs for a model of a given size.

A rule of thumb built on Unsloth's published VRAM table, with headroom for more
tokens in flight than the table assumes; every constant it rests on is
documented next to it. It takes a parameter count, not a model, so it needs no
weights, no GPU and no torch.
"""

from __future__ import annotations

import itertools

__all__ = [
    "CONTEXT_GB_PER_1K_TOKENS_AT_1B",
    "CPU_MEMORY_FACTOR",
    "GPU_MEMORY_USABLE",
    "SMALL_MODEL_FLOOR_GB",
    "TABLE_TOKENS_IN_FLIGHT",
    "UNSLOTH_VRAM_TABLE",
    "cpu_memory_needed_gb",
    "fits",
    "memory_needed_gb",
]

#: A GPU "fits" when the need is at most this share of its (free) memory; the
#: rest is left for the CUDA context, fragmentation and the odd long batch.
GPU_MEMORY_USABLE = 0.9

#: RAM for LoRA on CPU relative to the GPU 16-bit figure: the plain PyTorch CPU path
#: keeps more in fp32 (SmolLM2-135M peaked at 1.3-1.9 GB RSS, training.md §2.4).
CPU_MEMORY_FACTOR = 1.5

#: Unsloth's minimum VRAM for fine-tuning, (billions of params, QLoRA 4-bit GB, LoRA 16-bit GB),
#: from the Unsloth Requirements page. "These numbers are the absolute minimum."
UNSLOTH_VRAM_TABLE: tuple[tuple[float, float, float], ...] = (
    (3, 3.5, 8),
    (7, 5, 19),
    (8, 6, 22),
    (9, 6.5, 24),
    (11, 7.5, 29),
    (14, 8.5, 33),
    (27, 22, 64),
    (32, 26, 76),
    (40, 30, 96),
    (70, 41, 164),
    (81, 48, 192),
    (90, 53, 212),
    (405, 237, 950),
)

#: Below the table's first row the need is a straight line from this floor at zero
#: parameters (CUDA context, allocator, tokenizer, LoRA state) to the 3B row.
SMALL_MODEL_FLOOR_GB = 1.0

#: Tokens in flight (batch x sequence) the table is taken to assume: Unsloth's
#: notebook defaults, batch 2 x 2048. Fewer tokens never lowers the minimum.
TABLE_TOKENS_IN_FLIGHT = 2 * 2048

#: Extra GB per 1,000 tokens in flight beyond that, at 1B params, growing with the
#: cube root of the size. Fitted to Unsloth's long-context claims on an 80 GB card
#: (Llama 3.1 8B ~342K tokens: ~0.22 GB/1K; Llama 3.3 70B ~89K: ~0.44 GB/1K).
CONTEXT_GB_PER_1K_TOKENS_AT_1B = 0.11


def memory_needed_gb(params: int, load_in_4bit: bool, max_seq_length: int = 2048, batch_size: int = 2) -> float:
    """GPU memory to fine-tune with LoRA (16-bit) or QLoRA (4-bit), in GB.

    The rule: Unsloth's minimum from its VRAM table (linear between rows; below
    3B a line from 1 GB at zero parameters; above 405B proportional to size),
    plus headroom for tokens in flight beyond batch 2 x 2048:
    ``0.11 GB x (params in B) ** (1/3)`` per extra 1,000 tokens.
    """
    billions = max(params, 0) / 1e9
    column = 1 if load_in_4bit else 2
    rows = UNSLOTH_VRAM_TABLE
    first, last = rows[0], rows[-1]
    if billions <= first[0]:
        base = SMALL_MODEL_FLOOR_GB + (first[column] - SMALL_MODEL_FLOOR_GB) * billions / first[0]
    elif billions >= last[0]:
        base = last[column] * billions / last[0]
    else:
        base = 0.0
        for low, high in itertools.pairwise(rows):
            if low[0] <= billions <= high[0]:
                share = (billions - low[0]) / (high[0] - low[0])
                base = low[column] + share * (high[column] - low[column])
                break
    extra_tokens = max(0, batch_size * max_seq_length - TABLE_TOKENS_IN_FLIGHT)
    headroom = extra_tokens / 1000 * CONTEXT_GB_PER_1K_TOKENS_AT_1B * max(billions, 0.01) ** (1 / 3)
    return round(base + headroom, 2)


def cpu_memory_needed_gb(params: int, max_seq_length: int = 2048, batch_size: int = 2) -> float:
    """RAM for LoRA on the CPU: always 16-bit (no 4-bit kernels there), with fp32 overheads."""
    return round(memory_needed_gb(params, False, max_seq_length, batch_size) * CPU_MEMORY_FACTOR, 2)


def fits(need_gb: float, available_gb: float) -> bool:
    return need_gb <= available_gb * GPU_MEMORY_USABLE
