"""Training on a RunPod GPU pod that this package creates, watches and always terminates.

- :mod:`.client`: the pod API behind retries, lookups by name and our own errors, over
  :mod:`.rest_api` (REST v2, the default) or :mod:`.graphql_api` (the ``runpod`` SDK),
  chosen by ``UNSLOTH_NB_RUNPOD_API``;
- :mod:`.pods`: choosing a GPU, creating the pod, readiness, finding our pods;
- :mod:`.bootstrap`: the start command that ships our worker onto a stock image;
- :mod:`.backend`: the job's run, from rent to confirmed termination, helped by
  :mod:`.billing` (cost, limits) and :mod:`.reattach` (``pod.json`` and re-reading
  the inputs after a restart);
- :mod:`.cli`: ``unsloth-nb runpod gpus|list|stop|terminate|cleanup``.

Talking to the worker on the pod (HTTP client, event relay, transfers, the
client's checkpoint copy) is :mod:`unsloth_nb.backends.worker_link`, which any
other backend that runs our worker reuses.

Importing this package imports neither ``runpod`` (seconds of start-up) nor ``requests``; the first API call does.
"""

from __future__ import annotations

from unsloth_nb.engine.quiet import guard_runpod_import

guard_runpod_import()  # `import runpod` runs logging.basicConfig(level=INFO); keep the root logger as it is

from unsloth_nb.backends.runpod.backend import RunPodBackend, Timing  # noqa: E402
from unsloth_nb.backends.runpod.client import RunPodClient  # noqa: E402

__all__ = ["RunPodBackend", "RunPodClient", "Timing"]
