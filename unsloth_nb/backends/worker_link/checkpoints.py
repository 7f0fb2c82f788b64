"""Keeping a copy of the newest checkpoint on this machine while a pod trains.

A pod can vanish (eviction, a host failure) and its disk with it. Without a network
volume, the only checkpoint that outlives the pod is one somebody copied off it, so
the backend hands every ``checkpoint`` event to a :class:`CheckpointKeeper`, which
downloads that checkpoint in a thread of its own (the event stream, Stop and the
cost limits never wait for it) and keeps only the newest complete copy.

A copy is complete once its folder has its final name: files land in
``.checkpoint-N.partial/`` and the folder is renamed when every file matched its
sha256, so a copy cut short by a dying pod is never taken for a checkpoint.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

from unsloth_nb.backends.worker_link.client import WorkerClient
from unsloth_nb.errors import BackendError
from unsloth_nb.jobrun.checkpoints import checkpoint_step, newest_checkpoint
from unsloth_nb.latest_only import LatestOnly

log = logging.getLogger(__name__)


class CheckpointKeeper:
    """Downloads the newest checkpoint a pod reports, one at a time, newest first.

    ``offer`` is called from the event stream and returns at once; an older request
    still waiting is replaced by the newer one. Older local copies are removed once a
    newer one is complete, so the disk holds one checkpoint.
    """

    def __init__(self, folder: Path, say: Callable[[str], None]) -> None:
        self.folder = folder
        self._say = say
        self._told = False
        self._abort = threading.Event()
        self._copies: LatestOnly[tuple[str, str, str]] = LatestOnly(self._copy_or_say, name="unsloth-nb-checkpoints")

    def offer(self, url: str, token: str, name: str) -> None:
        """Copy this checkpoint (worker url, token, artifact name) once the one under way is done."""
        self._copies.offer((url, token, name))

    def newest(self) -> Path | None:
        return newest_checkpoint(self.folder)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is being copied or waits to be; False on timeout."""
        return self._copies.wait_idle(timeout)

    def close(self) -> None:
        """Stop copying (a copy under way is abandoned) and end the thread."""
        self._abort.set()
        self._copies.close()

    # ------------------------------------------------------------------ the thread
    def _copy_or_say(self, wanted: tuple[str, str, str]) -> None:
        try:
            self._copy(*wanted)
        except Exception as exc:  # the pod may be gone: keep the copy we have
            if self._abort.is_set():
                # Closed on purpose (Stop, Ctrl-C, the end of training): the job's own download
                # of the outputs supersedes this copy, so nothing failed that anyone should hear of.
                log.debug("copy of %s abandoned: the job no longer needs it (%s)", wanted[2], exc)
                return
            log.info("checkpoint copy failed: %s", exc)
            self._say(f"could not copy {wanted[2]} here ({exc}); keeping the previous copy")

    def _copy(self, url: str, token: str, name: str) -> None:
        target = self.folder / Path(name).name
        current = self.newest()
        if current is not None and checkpoint_step(current) >= checkpoint_step(target):
            return
        worker = WorkerClient(url, token, unreachable_after=30.0, abort=self._abort)
        partial = self.folder / f".{target.name}.partial"
        try:
            files = worker.artifacts(name)
            if not any(a.name.endswith("/trainer_state.json") for a in files):
                raise BackendError(f"the pod lists no complete {name}")
            total = 0
            for artifact in files:
                worker.download(artifact, partial / artifact.name[len(name) + 1 :])
                total += artifact.bytes
        finally:
            worker.close()
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
        for older in self.folder.iterdir():
            stale = older.name.endswith(".partial") or 0 <= checkpoint_step(older) < checkpoint_step(target)
            if stale and older != target:
                shutil.rmtree(older, ignore_errors=True)
        if not self._told:  # once is enough: each checkpoint event already shows on the job's log
            self._told = True
            self._say(
                f"{target.name} copied to {target.parent} ({total / 1e6:.1f} MB); each newer checkpoint replaces it "
                "there, and a lost pod resumes from the newest"
            )
        log.info("%s copied to %s", target.name, target)
