"""Training on a RunPod GPU pod that this package creates, watches and always terminates.

- :mod:`.client`: the ``runpod`` SDK behind retries, escaping and our own errors;
- :mod:`.pods`: choosing a GPU, creating the pod, readiness, finding our pods;
- :mod:`.bootstrap`: the start command that ships our worker onto a stock image;
- :mod:`.worker_client`: HTTP to the worker through RunPod's proxy;
- :mod:`.backend`: the job's run, from rent to confirmed termination, helped by
  :mod:`.relay` (pod events into the job's log), :mod:`.billing` (cost, limits),
  :mod:`.reattach` (``pod.json`` and re-reading the inputs after a restart),
  :mod:`.transfer` (checkpoints and outputs between pod and client) and
  :mod:`.checkpoints` (the client's copy of the newest checkpoint);
- :mod:`.cli`: ``unsloth-nb runpod gpus|list|stop|terminate|cleanup``.

Importing this package does not import ``runpod`` (seconds of start-up); the first API call does.
"""

from __future__ import annotations

from unsloth_nb.engine.quiet import guard_runpod_import

guard_runpod_import()  # `import runpod` runs logging.basicConfig(level=INFO); keep the root logger as it is

from unsloth_nb.backends.runpod.backend import RunPodBackend, Timing  # noqa: E402
from unsloth_nb.backends.runpod.client import RunPodClient  # noqa: E402

__all__ = ["RunPodBackend", "RunPodClient", "Timing"]
