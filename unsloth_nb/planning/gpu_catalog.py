"""Static facts about RunPod GPUs: ids, memory, indicative prices, rough speed.

The planner needs a GPU list before any RunPod call is made (``unsloth-nb plan``
works without an API key), so it starts from this table. Ids are RunPod's exact
``gpuTypeId`` strings, the ones ``create_pod(gpu_type_id=...)`` takes. Memory is
per GPU in GB as RunPod lists it.

Prices are indicative on-demand $/GPU/hour (late 2026) and go stale: the RunPod
backend fetches live prices and stock and passes them to ``planner.plan(prices=...)``,
which replaces this table. ``None`` means the GPU is not usually offered in that cloud.

Left out on purpose: AMD GPUs (the pod image and Unsloth's fast path are CUDA),
MIG slices, and cards under 16 GB, which no LoRA job here needs.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class GpuOption:
    """One GPU type a pod can be rented with, and what it costs per hour."""

    gpu_type_id: str
    display_name: str
    memory_gb: int
    secure_usd_per_hour: float | None
    community_usd_per_hour: float | None
    stock: str | None = None  # RunPod's stockStatus when known live: "High", "Medium", "Low" or "None"
    spot_usd_per_hour: float | None = None  # spot (interruptible) $/GPU/h when known live; RunPod's bid floor

    def usd_per_hour(self, cloud_type: str = "SECURE", allow_community: bool = False) -> float | None:
        """Price in the cloud a pod would be rented from, or None when it is not offered there.

        ``ALL`` takes the cheaper of the two clouds; ``SECURE`` with
        ``allow_community`` falls back to the community price when there is no
        secure one, as the backend falls back when secure has no stock.
        """
        cloud = cloud_type.upper()
        if cloud == "COMMUNITY":
            return self.community_usd_per_hour
        if cloud == "ALL":
            prices = [p for p in (self.secure_usd_per_hour, self.community_usd_per_hour) if p is not None]
            return min(prices) if prices else None
        if self.secure_usd_per_hour is None and allow_community:
            return self.community_usd_per_hour
        return self.secure_usd_per_hour

    @property
    def in_stock(self) -> bool:
        """False only when RunPod said so; unknown stock counts as available."""
        return (self.stock or "").lower() != "none"


#: gpuTypeId, display name, GB, secure $/h, community $/h (indicative; see the module docstring).
GPU_CATALOG: tuple[GpuOption, ...] = (
    GpuOption("NVIDIA RTX A4000", "RTX A4000", 16, 0.25, 0.17),
    GpuOption("NVIDIA RTX A5000", "RTX A5000", 24, 0.27, 0.16),
    GpuOption("NVIDIA GeForce RTX 3090", "RTX 3090", 24, 0.46, 0.22),
    GpuOption("NVIDIA L4", "L4", 24, 0.43, None),
    GpuOption("NVIDIA GeForce RTX 4090", "RTX 4090", 24, 0.69, 0.34),
    GpuOption("NVIDIA GeForce RTX 5090", "RTX 5090", 32, 0.94, 0.69),
    GpuOption("NVIDIA A40", "A40", 48, 0.44, None),
    GpuOption("NVIDIA RTX A6000", "RTX A6000", 48, 0.49, 0.33),
    GpuOption("NVIDIA RTX 6000 Ada Generation", "RTX 6000 Ada", 48, 0.77, 0.74),
    GpuOption("NVIDIA L40S", "L40S", 48, 0.86, 0.79),
    GpuOption("NVIDIA A100 80GB PCIe", "A100 PCIe", 80, 1.64, 1.19),
    GpuOption("NVIDIA A100-SXM4-80GB", "A100 SXM", 80, 1.74, 1.39),
    GpuOption("NVIDIA H100 PCIe", "H100 PCIe", 80, 2.39, 1.99),
    GpuOption("NVIDIA H100 80GB HBM3", "H100 SXM", 80, 2.99, 2.69),
    GpuOption("NVIDIA H100 NVL", "H100 NVL", 94, 2.79, 2.59),
    GpuOption("NVIDIA RTX PRO 6000 Blackwell Server Edition", "RTX PRO 6000", 96, 1.84, None),
    GpuOption("NVIDIA H200", "H200 SXM", 141, 3.99, 3.59),
    GpuOption("NVIDIA B200", "B200", 180, 5.99, None),
    GpuOption("NVIDIA B300 SXM6 AC", "B300", 288, 7.99, None),
)

#: Other gpuTypeIds RunPod lists (GB per GPU), accepted in ``runpod.gpus`` but not
#: suggested by the planner (small, old, AMD or MIG). No price is assumed for them.
OTHER_GPU_IDS: dict[str, int] = {
    "NVIDIA GeForce RTX 3090 Ti": 24,
    "NVIDIA GeForce RTX 3070": 8,
    "NVIDIA GeForce RTX 3080": 10,
    "NVIDIA GeForce RTX 3080 Ti": 12,
    "NVIDIA GeForce RTX 4070 Ti": 12,
    "NVIDIA GeForce RTX 4080": 16,
    "NVIDIA GeForce RTX 4080 SUPER": 16,
    "NVIDIA GeForce RTX 5080": 16,
    "NVIDIA H200 NVL": 143,
    "NVIDIA L40": 48,
    "NVIDIA A30": 24,
    "NVIDIA RTX A2000": 6,
    "NVIDIA RTX A4500": 20,
    "NVIDIA RTX 2000 Ada Generation": 16,
    "NVIDIA RTX 4000 Ada Generation": 20,
    "NVIDIA RTX 4000 SFF Ada Generation": 20,
    "NVIDIA RTX 5000 Ada Generation": 32,
    "NVIDIA RTX PRO 4500 Blackwell": 32,
    "NVIDIA RTX PRO 6000 Blackwell Workstation Edition": 96,
    "NVIDIA RTX PRO 6000 Blackwell Max-Q Workstation Edition": 96,
    "NVIDIA RTX PRO 6000 Blackwell Server Edition MIG 1g.24gb": 24,
    "NVIDIA RTX PRO 6000 Blackwell Server Edition MIG 2g.48gb": 48,
    "Tesla V100-PCIE-16GB": 16,
    "Tesla V100-SXM2-16GB": 16,
    "Tesla V100-SXM2-32GB": 32,
    "AMD Instinct MI300X OAM": 192,
}

#: Rough sustained training throughput in TFLOP/s for LoRA with bf16 compute,
#: about a third of each card's dense bf16 peak (what fine-tuning reaches once
#: LoRA, gradient checkpointing and small batches are paid for). Only used for
#: time estimates, which the plan labels rough. Keys are gpuTypeIds, which are
#: also what ``nvidia-smi`` prints as the name for most of these cards.
TRAINING_TFLOPS: dict[str, float] = {
    "NVIDIA RTX A4000": 20.0,
    "NVIDIA RTX A5000": 28.0,
    "NVIDIA GeForce RTX 3090": 30.0,
    "NVIDIA L4": 25.0,
    "NVIDIA GeForce RTX 4090": 60.0,
    "NVIDIA GeForce RTX 5090": 80.0,
    "NVIDIA A40": 40.0,
    "NVIDIA RTX A6000": 40.0,
    "NVIDIA RTX 6000 Ada Generation": 90.0,
    "NVIDIA L40S": 90.0,
    "NVIDIA A100 80GB PCIe": 100.0,
    "NVIDIA A100-SXM4-80GB": 110.0,
    "NVIDIA H100 PCIe": 200.0,
    "NVIDIA H100 80GB HBM3": 280.0,
    "NVIDIA H100 NVL": 240.0,
    "NVIDIA RTX PRO 6000 Blackwell Server Edition": 130.0,
    "NVIDIA H200": 300.0,
    "NVIDIA B200": 550.0,
    "NVIDIA B300 SXM6 AC": 600.0,
}

#: Assumed for a GPU missing from TRAINING_TFLOPS (a mid-range card).
DEFAULT_TRAINING_TFLOPS = 40.0


def training_tflops(gpu_name: str) -> float | None:
    """Throughput for a gpuTypeId or an ``nvidia-smi`` name, or None when unknown."""
    if gpu_name in TRAINING_TFLOPS:
        return TRAINING_TFLOPS[gpu_name]
    wanted = _squash(gpu_name)
    for gpu_id, tflops in TRAINING_TFLOPS.items():
        if _squash(gpu_id) == wanted:
            return tflops
    for option in sorted(GPU_CATALOG, key=lambda o: -len(_squash(o.display_name))):
        if _squash(option.display_name) in wanted:
            return TRAINING_TFLOPS.get(option.gpu_type_id)
    return None


def all_known_gpus() -> list[GpuOption]:
    """Every GPU id we know: the priced catalogue, then the other ids without prices."""
    return list(GPU_CATALOG) + [
        GpuOption(gpu_id, gpu_id.removeprefix("NVIDIA "), gb, None, None) for gpu_id, gb in OTHER_GPU_IDS.items()
    ]


def _squash(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())
