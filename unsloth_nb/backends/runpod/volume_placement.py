"""Which network volume a pod mounts, and the data centre that puts it in.

A pod attaches ``runpod.volume_id`` when one is set (checkpoints live there), else the
volume a ``volume://<id>/...`` dataset is on (:mod:`unsloth_nb.data.volume_ids`), so the
worker reads the rows from the mount (``/workspace``) instead of through the volume's S3 API. A network volume lives
in one data centre and RunPod places a pod that mounts it there; the create request
says so explicitly (``dataCenterIds``), and the plan names the data centre, because
GPU stock and prices differ between data centres.

The data centre is asked of RunPod once per volume and process
(``GET /v2/network-volumes/{id}``); a volume that does not exist is refused before
anything is rented.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from unsloth_nb.data.volume_ids import attached_volume, dataset_volume_ids

if TYPE_CHECKING:
    from unsloth_nb.backends.runpod.api_types import PodSpec
    from unsloth_nb.config import TrainConfig

_DATA_CENTRES: dict[str, str] = {}


def volume_data_centre(volume_id: str) -> str:
    """The data centre holding ``volume_id`` (asked of RunPod once per process); VolumeNotFoundError if none."""
    if volume_id not in _DATA_CENTRES:
        from unsloth_nb.backends.runpod.volumes import VolumesClient

        _DATA_CENTRES[volume_id] = VolumesClient().get(volume_id).data_center
    return _DATA_CENTRES[volume_id]


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
    from unsloth_nb.errors import UnslothNbError

    why = "it holds the dataset" if volume in dataset_volume_ids(config) else "it keeps the checkpoints"
    try:
        centre = volume_data_centre(volume)
    except UnslothNbError as exc:
        return [(f"Network volume {volume} ({why}): {exc}", True)]
    note = f"Placed in data centre {centre}, where network volume {volume} is ({why}): the pod is rented there only."
    return [(note, False)]


__all__ = ["attached_volume", "dataset_volume_ids", "place_on_volume", "plan_notes", "volume_data_centre"]
