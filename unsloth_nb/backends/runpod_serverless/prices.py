"""What a serverless worker costs per second, offline, so a serverless plan is not priced like a pod.

Serverless workers bill per second at their own rates, which are higher than a pod's for the same card
(an A100 80GB: $0.00076/s flex = $2.74/h, against $1.64/h for a secure pod). The shared reference
(runpod.md §7.4) has no serverless prices; the table below is RunPod's own, from the docs page
``serverless/pricing`` (https://docs.runpod.io/serverless/pricing; runpod/docs ``serverless/pricing.mdx``,
read 2026-12). Nothing fetches them live yet, so the plan says where they come from.

RunPod prices pools, not cards ("L4, A5000, 3090"); each card gets its pool's rate. Cards whose pool the
table does not name get no price and so are not proposed for an endpoint. Flex workers (scale to zero)
are what a job's endpoint uses (``workersMin`` 0); active workers (always on, 20-30 % cheaper) are kept
for a later ``workersMin`` above 0.
"""

from __future__ import annotations

from dataclasses import replace

from unsloth_nb.backends.base import PriceRequest, Pricing
from unsloth_nb.planning.gpu_catalog import GpuOption

#: What the plan calls the one rate a job's endpoint pays (``workersMin`` 0: flex workers, billed per second).
RATE_LABEL = "serverless flex"

PRICE_SOURCE = "RunPod's serverless price table (docs.runpod.io/serverless/pricing, read 2026-12; not fetched live)"

#: pool as RunPod names it: (flex $/s, active $/s, the gpuTypeIds in it).
SERVERLESS_POOLS: tuple[tuple[str, float, float, tuple[str, ...]], ...] = (
    ("A4000, A4500, RTX 4000", 0.00016, 0.00011, ("NVIDIA RTX A4000", "NVIDIA RTX A4500", "NVIDIA RTX 4000 Ada Generation")),
    ("L4, A5000, 3090", 0.00019, 0.00013, ("NVIDIA L4", "NVIDIA RTX A5000", "NVIDIA GeForce RTX 3090")),
    ("4090 PRO", 0.00031, 0.00021, ("NVIDIA GeForce RTX 4090",)),
    ("A6000, A40", 0.00034, 0.00024, ("NVIDIA RTX A6000", "NVIDIA A40")),
    ("L40, L40S, 6000 Ada PRO", 0.00053, 0.00037, ("NVIDIA L40", "NVIDIA L40S", "NVIDIA RTX 6000 Ada Generation")),
    ("A100", 0.00076, 0.00060, ("NVIDIA A100 80GB PCIe", "NVIDIA A100-SXM4-80GB")),
    ("H100 PRO", 0.00116, 0.00093, ("NVIDIA H100 80GB HBM3", "NVIDIA H100 PCIe")),
    ("H200 PRO", 0.00155, 0.00124, ("NVIDIA H200",)),
    ("B200", 0.00240, 0.00190, ("NVIDIA B200",)),
)

_BY_GPU: dict[str, tuple[float, float]] = {gpu: (flex, active) for _, flex, active, gpus in SERVERLESS_POOLS for gpu in gpus}


def usd_per_second(gpu_type_id: str, *, active: bool = False) -> float | None:
    """A flex (or active) worker's $/s on this card, or None when RunPod's table does not price its pool."""
    rates = _BY_GPU.get(gpu_type_id)
    return None if rates is None else rates[1 if active else 0]


def usd_per_hour(gpu_type_id: str, *, active: bool = False) -> float | None:
    rate = usd_per_second(gpu_type_id, active=active)
    return None if rate is None else round(rate * 3600, 4)


def price(request: PriceRequest) -> Pricing:
    """GPUs ranked as for pods, but at flex rates (higher than a pod's), the user's named GPUs too."""
    from unsloth_nb.backends.runpod import pricing

    flex = replace(request, catalogue=serverless_catalogue(request.catalogue), user_gpus=serverless_catalogue(request.user_gpus))
    return pricing.price(flex, rate_label=RATE_LABEL)


def serverless_catalogue(catalogue: list[GpuOption]) -> list[GpuOption]:
    """The catalogue re-priced at flex rates; serverless has no secure/community choice, so both get the one rate."""
    priced = []
    for gpu in catalogue:
        rate = usd_per_hour(gpu.gpu_type_id)
        priced.append(replace(gpu, secure_usd_per_hour=rate, community_usd_per_hour=rate, spot_usd_per_hour=None))
    return priced
