"""Which RunPod network volume a job's pod mounts: a question of the config alone, asked here and on the pod.

The pod attaches ``runpod.volume_id`` when one is set (checkpoints live there), else the
volume a ``volume://<id>/...`` dataset is on. Kept out of ``backends/`` because the pod's
load phase asks it too (to leave the S3 keys at home when the rows are on the mount),
and the pod's package does not carry ``backends/``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from unsloth_nb.config import TrainConfig


def dataset_volume_ids(config: TrainConfig) -> list[str]:
    """The volumes the job's dataset files are on (``volume://<id>/...``), in the order they are named."""
    dataset = config.dataset
    paths = [dataset.path, dataset.eval_path or "", *(entry.rpartition("=")[0] or entry for entry in dataset.mix)]
    ids: list[str] = []
    for path in paths:
        if str(path).startswith("volume://"):
            volume = str(path).removeprefix("volume://").partition("/")[0]
            if volume and volume not in ids:
                ids.append(volume)
    return ids


def attached_volume(config: TrainConfig) -> str | None:
    """The network volume the job's pod mounts: ``runpod.volume_id``, else the dataset's volume, else none."""
    if config.runpod.volume_id:
        return config.runpod.volume_id
    ids = dataset_volume_ids(config)
    return ids[0] if ids else None


def mounted_volume(config: TrainConfig) -> str | None:
    """The volume mounted where the job trains: :func:`attached_volume` on a placement that mounts one, else none."""
    from unsloth_nb.placements import MOUNTS_NETWORK_VOLUME

    return attached_volume(config) if config.placement in MOUNTS_NETWORK_VOLUME else None


__all__ = ["attached_volume", "dataset_volume_ids", "mounted_volume"]
