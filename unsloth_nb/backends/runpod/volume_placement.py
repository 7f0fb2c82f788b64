"""Which network volume a pod mounts, and the data centre that puts it in.

A pod attaches ``runpod.volume_id`` when one is set (checkpoints live there), else the
volume a ``volume://<id>/...`` dataset is on (:mod:`unsloth_nb.data.volume_ids`), so the
worker reads the rows from the mount (``/workspace``) instead of through the volume's S3 API. A network volume lives
in one data centre and RunPod places a pod that mounts it there; the create request
says so explicitly (``dataCenterIds``), and the plan names the data centre, because
GPU stock and prices differ between data centres.

The data centre is asked of RunPod once per volume and process
(``GET /v2/network-volumes/{id}``); a volume that does not exist is refused before
anything is rented. So are the cards that data centre has (``GET
/v2/catalog/datacenters/{id}?include=GPU_AVAILABILITY``): the plan considers only those,
since a pod pinned there cannot get any other.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from unsloth_nb.data.volume_ids import attached_volume, dataset_volume_ids
from unsloth_nb.errors import PlanError, UnslothNbError

if TYPE_CHECKING:
    from unsloth_nb.backends.base import PriceRequest
    from unsloth_nb.backends.runpod.api_types import PodSpec
    from unsloth_nb.config import TrainConfig

_DATA_CENTRES: dict[str, str] = {}
_CARDS: dict[tuple[str, str], frozenset[str]] = {}  # (API base URL, data centre) -> its gpuTypeIds


def volume_data_centre(volume_id: str) -> str:
    """The data centre holding ``volume_id`` (asked of RunPod once per process); VolumeNotFoundError if none."""
    if volume_id not in _DATA_CENTRES:
        from unsloth_nb.backends.runpod.volumes import VolumesClient

        _DATA_CENTRES[volume_id] = VolumesClient().get(volume_id).data_center
    return _DATA_CENTRES[volume_id]


def data_centre_gpus(centre: str) -> frozenset[str]:
    """The gpuTypeIds data centre ``centre`` has (asked of RunPod once per process); raises UnslothNbError."""
    from unsloth_nb.backends.runpod.api_types import base_url
    from unsloth_nb.backends.runpod.client import RunPodClient

    key = (base_url(), centre)
    if key not in _CARDS:
        client = RunPodClient(api="rest")
        path = f"/v2/catalog/datacenters/{quote(centre, safe='')}"
        answer: Any = client._call(
            f"read data centre {centre}",
            lambda api: api._request("GET", path, params={"include": "GPU_AVAILABILITY"}),  # type: ignore[attr-defined]
        )
        items = answer.get("gpuAvailability") if isinstance(answer, dict) else None
        # Field names as `runpodctl datacenter list` prints them (gpuId); a v2 answer may say id or gpuTypeId.
        ids = {str(i.get("gpuId") or i.get("gpuTypeId") or i.get("id") or "") for i in items or [] if isinstance(i, dict)}
        _CARDS[key] = frozenset(ids - {""})
    return _CARDS[key]


def narrow_to_data_centre(request: PriceRequest) -> PriceRequest:
    """The request with only the cards the volume's data centre has; unchanged without a volume.

    When RunPod cannot say which cards it has, the list stays whole and the plan says so. Cards the user
    named that the data centre lacks are dropped with a warning; none left is a PlanError saying what to change.
    """
    volume = attached_volume(request.config)
    if volume is None:
        return request
    try:
        centre = volume_data_centre(volume)
    except UnslothNbError:
        return request  # the plan's volume note says what is wrong with the volume
    try:
        cards = data_centre_gpus(centre)
    except UnslothNbError as exc:
        request.warnings.append(
            f"Which GPUs data centre {centre} has is not known ({exc}): every card is considered, and one it lacks "
            "is refused when the pod is created."
        )
        return request
    if not cards:
        return request
    named = [g for g in request.user_gpus if g.gpu_type_id in cards]
    for gpu in request.user_gpus:
        if gpu.gpu_type_id not in cards:
            request.warnings.append(
                f"runpod.gpus: {gpu.gpu_type_id} is not in data centre {centre}, where network volume {volume} is: left out."
            )
    if request.user_gpus and not named:
        raise PlanError(
            f"runpod.gpus: none of these cards is in data centre {centre}, where network volume {volume} is; it has "
            f"{', '.join(sorted(cards))}. Name some of those, or use a volume in another data centre."
        )
    catalogue = [g for g in request.catalogue if g.gpu_type_id in cards]
    request.reasons.append(f"GPUs: only the {len(cards)} card type(s) data centre {centre} has (network volume {volume}).")
    return replace(request, catalogue=catalogue, user_gpus=named)


def place_on_volume(spec: PodSpec, config: TrainConfig) -> PodSpec:
    """``spec`` mounting the job's volume, in that volume's data centre (unchanged without a volume)."""
    volume = attached_volume(config)
    if volume is None:
        return spec
    return replace(spec, network_volume_id=volume, data_center_ids=(volume_data_centre(volume),))


def plan_notes(config: TrainConfig) -> list[tuple[str, bool]]:
    """The plan's line on where the pod runs when a volume pins it; a warning when the volume cannot be found."""
    volume = attached_volume(config)
    if volume is None:
        return []
    why = "it holds the dataset" if volume in dataset_volume_ids(config) else "it keeps the checkpoints"
    try:
        centre = volume_data_centre(volume)
    except UnslothNbError as exc:
        return [(f"Network volume {volume} ({why}): {exc}", True)]
    note = f"Placed in data centre {centre}, where network volume {volume} is ({why}): the pod is rented there only."
    return [(note, False)]


__all__ = [
    "attached_volume",
    "data_centre_gpus",
    "dataset_volume_ids",
    "narrow_to_data_centre",
    "place_on_volume",
    "plan_notes",
    "volume_data_centre",
]
