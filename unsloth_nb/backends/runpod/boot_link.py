"""Bringing a booting pod its ``unsloth_nb`` package over the worker port.

The create request carries only a small boot script; its stage 0 (:mod:`.stage0`)
answers ``GET /boot`` on the worker port with the job token, and waits for the
package. Each readiness poll that finds no worker yet asks stage 0 where it stands,
and a pod waiting for its package gets it, with its sha256, in one ``PUT /boot/package``.
The package's first step reads the image's torch and CUDA, the GPU and its driver;
the answer to the upload carries them, and they are reported as a job event. Then
stage 0 finishes the install and the worker starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from unsloth_nb.backends.runpod.bootstrap import package_sha256, package_zip
from unsloth_nb.backends.worker_link.client import WorkerClient, WorkerRefusedError, WorkerUnreachableError
from unsloth_nb.worker.pod_setup import describe
from unsloth_nb.worker.protocol import BootStatus

#: How long a readiness poll waits for the worker right after the package arrived and nothing was left to install.
WORKER_START_WAIT_S = 5.0


class PackageDelivery:
    """Remembers, per pod, what was reported and sent, so each happens once."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self._say = say
        self._reported: set[str] = set()
        self._sent: set[str] = set()

    def ready(self, worker: WorkerClient, pod_id: str) -> bool:
        """True once the worker answers its health check; until then, help the pod boot."""
        if worker.health(timeout=10.0) is not None:
            return True
        if not self.poll(worker, pod_id):
            return False
        # The package just landed and nothing is left to install: the worker starts within a second or two.
        deadline = time.monotonic() + WORKER_START_WAIT_S
        while time.monotonic() < deadline:
            time.sleep(0.2)
            if worker.health(timeout=5.0) is not None:
                return True
        return False

    def poll(self, worker: WorkerClient, pod_id: str) -> bool:
        """Ask stage 0 where the pod stands; send the package when it waits for it.

        True when the package was sent just now and the install is over (the worker is about to start).
        """
        state = worker.boot(timeout=10.0)
        if state is None:
            return False
        self._report(pod_id, state)
        if state.waiting_for_package and pod_id not in self._sent:
            data = package_zip()
            try:
                answer = worker.send_package(data, package_sha256())
            except WorkerUnreachableError:
                return False  # the next poll tries again
            except WorkerRefusedError as exc:
                if exc.status != 404:
                    raise
                # The upload arrived but its answer was lost, and the retry met the started worker,
                # which has no boot route: the package is there.
                self._sent.add(pod_id)
                return True
            self._sent.add(pod_id)
            self._say(f"unsloth-nb package sent to pod {pod_id} ({len(data) / 1e3:.0f} kB, sha256 checked there)")
            self._report(pod_id, answer)
            return not answer.installing
        return False

    def _report(self, pod_id: str, state: BootStatus) -> None:
        """Once per pod, the image's torch and CUDA, as soon as stage 0 knows them (the package's first step)."""
        if pod_id not in self._reported and state.facts:
            self._reported.add(pod_id)
            self._say(f"pod {pod_id} is booting: {describe(state.facts)}; packages: {state.install}")
