"""The client's half of ``serverless.checkpoint_store``: what the request and the template say about the store.

The request carries the store's description (kind, bucket, key, endpoint, region: what
``S3Source.to_json`` gives, never a key). The template's env carries only references to RunPod secrets,
``{{ RUNPOD_SECRET_<name> }}``, which RunPod resolves when it starts a worker: the values stay in the
user's RunPod account and never pass through a request, a template body or this machine's job folder.
The worker's half is :mod:`unsloth_nb.worker.checkpoint_store`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from unsloth_nb.config import TrainConfig

#: The RunPod secrets a worker needs to write the store (created once in RunPod's console under Secrets).
STORE_SECRETS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


def store_description(config: TrainConfig) -> dict[str, Any] | None:
    """The store as the worker needs it, or None when the job names none."""
    store = (config.serverless.checkpoint_store or "").strip()
    if not store:
        return None
    from unsloth_nb.data.sources.s3 import S3Source, VolumeSource

    source = VolumeSource.parse_volume(store) if store.startswith("volume://") else S3Source.parse(store)
    return source.to_json()


def store_env(config: TrainConfig) -> dict[str, str]:
    """The template env for the store: references to RunPod secrets, never their values."""
    if not (config.serverless.checkpoint_store or "").strip():
        return {}
    return {name: f"{{{{ RUNPOD_SECRET_{name} }}}}" for name in STORE_SECRETS}
