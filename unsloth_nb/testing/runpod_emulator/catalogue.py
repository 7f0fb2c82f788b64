"""The emulator's GPU catalogue: RunPod's real ``gpuTypeId`` strings, memory, prices and stock.

Ids must be the exact strings RunPod uses, because the code under test sends them
to the real API too. Prices are indicative on-demand $/GPU/hour (late 2026), the
same figures as the planner's static table, so a test's cost estimate and the
emulator's bill agree. ``available`` is how many GPUs of the type are free right
now: creating or resuming a pod takes them and stopping or terminating gives them
back, so a test can run a type out of stock simply by renting it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: What ``stockStatus`` says for a number of free GPUs (RunPod's words; null when none).
_STOCK_LEVELS: tuple[tuple[int, str], ...] = ((7, "High"), (3, "Medium"), (1, "Low"))


@dataclass
class GpuType:
    """One rentable GPU type. Mutable on purpose: tests change ``available`` to shape stock."""

    id: str
    display_name: str
    memory_gb: int
    secure_price: float | None  # on-demand $/GPU/h in Secure Cloud; None: not offered there
    community_price: float | None  # on-demand $/GPU/h in Community Cloud; None: not offered there
    available: int = 8
    max_gpu_count: int = 8
    cuda_cores: int = 0
    vcpus_per_gpu: int = 8
    ram_gb_per_gpu: int = 48

    def on_demand_price(self, cloud_type: str) -> float | None:
        """$/GPU/h for a pod rented in ``cloud_type``; ``ALL`` lands wherever it is cheapest."""
        if cloud_type == "SECURE":
            return self.secure_price
        if cloud_type == "COMMUNITY":
            return self.community_price
        prices = [p for p in (self.secure_price, self.community_price) if p is not None]
        return min(prices) if prices else None

    def spot_price(self, cloud_type: str) -> float | None:
        """Spot (interruptible) floor: about half the on-demand price, as RunPod's usually is."""
        price = self.on_demand_price(cloud_type)
        return None if price is None else round(price * 0.5, 3)

    def stock_status(self) -> str | None:
        return next((label for floor, label in _STOCK_LEVELS if self.available >= floor), None)

    def as_graphql(self) -> dict[str, Any]:
        """The ``GpuType`` object; ``lowestPrice`` is callable because the field takes arguments."""
        secure = self.secure_price
        community = self.community_price
        reference = secure if secure is not None else community

        def lowest_price(info: object, input: dict[str, Any] | None = None) -> dict[str, Any]:
            wanted = input or {}
            secure_cloud = wanted.get("secureCloud")
            cloud = "ALL" if secure_cloud is None else ("SECURE" if secure_cloud else "COMMUNITY")
            count = wanted.get("gpuCount") or 1
            return {
                "minimumBidPrice": self.spot_price(cloud),
                "uninterruptablePrice": self.on_demand_price(cloud),
                "stockStatus": self.stock_status() if self.available >= count else None,
                "availableGpuCounts": [n for n in (1, 2, 4, 8) if n <= min(self.available, self.max_gpu_count)],
                "gpuName": self.display_name,
                "gpuTypeId": self.id,
                "minMemory": self.ram_gb_per_gpu * count,
                "minVcpu": self.vcpus_per_gpu * count,
            }

        return {
            "id": self.id,
            "displayName": self.display_name,
            "manufacturer": "Nvidia",
            "memoryInGb": self.memory_gb,
            "cudaCores": self.cuda_cores,
            "maxGpuCount": self.max_gpu_count,
            "secureCloud": secure is not None,
            "communityCloud": community is not None,
            "securePrice": secure,
            "communityPrice": community,
            "secureSpotPrice": self.spot_price("SECURE"),
            "communitySpotPrice": self.spot_price("COMMUNITY"),
            "oneWeekPrice": None if reference is None else round(reference * 0.95, 3),
            "oneMonthPrice": None if reference is None else round(reference * 0.9, 3),
            "threeMonthPrice": None if reference is None else round(reference * 0.85, 3),
            "lowestPrice": lowest_price,
        }


def default_gpus() -> list[GpuType]:
    """A fresh copy of the default catalogue (fresh so one test's stock changes stay its own)."""
    return [
        GpuType("NVIDIA GeForce RTX 4090", "RTX 4090", 24, 0.69, 0.34, cuda_cores=16384, vcpus_per_gpu=6, ram_gb_per_gpu=41),
        GpuType("NVIDIA GeForce RTX 5090", "RTX 5090", 32, 0.94, 0.69, cuda_cores=21760, vcpus_per_gpu=6, ram_gb_per_gpu=46),
        GpuType("NVIDIA RTX A6000", "RTX A6000", 48, 0.49, 0.33, cuda_cores=10752, vcpus_per_gpu=8, ram_gb_per_gpu=50),
        GpuType("NVIDIA A40", "A40", 48, 0.44, None, cuda_cores=10752, vcpus_per_gpu=9, ram_gb_per_gpu=50),
        GpuType("NVIDIA L40S", "L40S", 48, 0.86, 0.79, cuda_cores=18176, vcpus_per_gpu=12, ram_gb_per_gpu=62),
        GpuType("NVIDIA A100 80GB PCIe", "A100 PCIe", 80, 1.64, 1.19, cuda_cores=6912, vcpus_per_gpu=8, ram_gb_per_gpu=117),
        GpuType("NVIDIA A100-SXM4-80GB", "A100 SXM", 80, 1.74, 1.39, cuda_cores=6912, vcpus_per_gpu=16, ram_gb_per_gpu=125),
        GpuType("NVIDIA H100 PCIe", "H100 PCIe", 80, 2.39, 1.99, cuda_cores=14592, vcpus_per_gpu=16, ram_gb_per_gpu=188),
        GpuType("NVIDIA H100 80GB HBM3", "H100 SXM", 80, 2.99, 2.69, cuda_cores=16896, vcpus_per_gpu=20, ram_gb_per_gpu=125),
        GpuType("NVIDIA H100 NVL", "H100 NVL", 94, 2.79, 2.59, cuda_cores=16896, vcpus_per_gpu=16, ram_gb_per_gpu=94),
        GpuType("NVIDIA H200", "H200 SXM", 141, 3.99, 3.59, cuda_cores=16896, vcpus_per_gpu=24, ram_gb_per_gpu=188),
    ]
