"""A RunPod emulator on loopback: our REST v2 client and the real ``runpod`` SDK talk to it, and its pods run our real code.

- :class:`RunPodEmulator` serves RunPod's REST v2 pod API (``/v2/pods``,
  ``/v2/catalog/gpus``, :mod:`.rest_v2`), its GraphQL API (the subset SDK 1.12
  uses) on the same account, and the pod HTTP proxy on 127.0.0.1. Pods run their start command as local
  processes, bill per second in a :class:`Ledger`, and fail on demand through
  :class:`Faults`.
- :mod:`~unsloth_nb.testing.runpod_emulator.admin` sets faults from another process.
- :func:`main` is ``unsloth-nb runpod emulator``.
- ``unsloth_nb.testing.pytest_runpod`` has the ``runpod_emulator`` pytest fixture.

It needs ``graphql-core`` but never the ``runpod`` SDK.
"""

from __future__ import annotations

from unsloth_nb.testing.runpod_emulator.catalogue import GpuType, default_gpus
from unsloth_nb.testing.runpod_emulator.cli import main
from unsloth_nb.testing.runpod_emulator.cloud import NO_GPUS_TO_RESUME, NOT_FOUND_TO_TERMINATE, OUT_OF_STOCK
from unsloth_nb.testing.runpod_emulator.emulator import RunPodEmulator
from unsloth_nb.testing.runpod_emulator.faults import Faults
from unsloth_nb.testing.runpod_emulator.ledger import Ledger
from unsloth_nb.testing.runpod_emulator.pods import PodInfo, PortSpec

__all__ = [
    "NOT_FOUND_TO_TERMINATE",
    "NO_GPUS_TO_RESUME",
    "OUT_OF_STOCK",
    "Faults",
    "GpuType",
    "Ledger",
    "PodInfo",
    "PortSpec",
    "RunPodEmulator",
    "default_gpus",
    "main",
]
