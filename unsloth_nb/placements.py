"""The built-in placement names and the backend class behind each, as one table both sides read.

``config`` sits below ``backends`` (a backend imports the config, never the other way), yet
``placement:`` must offer exactly the placements the registry can build. So the table lives
here, below both: :mod:`unsloth_nb.backends.registry` imports each class from it on first use,
and :class:`~unsloth_nb.config.TrainConfig` takes its ``placement`` choices from it. Adding a
placement is one folder under ``backends/`` and one line here.
"""

from __future__ import annotations

#: name -> "module:Class", in the order ``placement: auto`` asks them (the first that accepts the job takes it).
BUILTIN_BACKENDS: dict[str, str] = {
    "local": "unsloth_nb.backends.local:LocalBackend",
    "runpod": "unsloth_nb.backends.runpod.backend:RunPodBackend",
    "serverless": "unsloth_nb.backends.runpod_serverless.backend:ServerlessBackend",
}

#: What ``placement:`` accepts: ``auto`` (the plan decides) or a built-in backend's name.
PLACEMENT_CHOICES: tuple[str, ...] = ("auto", *BUILTIN_BACKENDS)

#: Placements whose machine mounts the job's RunPod network volume, so files on it are read from the
#: mount rather than fetched (and need no S3 keys). Asked by the load phase on the pod, whose
#: package carries no ``backends/``; the RunPod backend's ``mounts_network_volume`` must agree (tested).
MOUNTS_NETWORK_VOLUME: frozenset[str] = frozenset({"runpod"})

__all__ = ["BUILTIN_BACKENDS", "MOUNTS_NETWORK_VOLUME", "PLACEMENT_CHOICES"]
