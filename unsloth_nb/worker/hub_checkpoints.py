"""Pushing the pod's checkpoints to a private Hub repo while training goes on.

Without a network volume a checkpoint on the pod's disk dies with the pod. The client
keeps a copy, but only while it runs; a copy on the Hub outlives both, and a new pod
downloads it at data-centre speed instead of waiting for the client's upload.

Pushing runs in a thread of its own so a slow upload never holds up training. Each
new checkpoint replaces a waiting one (only the newest matters), and files are
hard-linked into a staging folder first, so the upload reads a fixed set of files
whatever the trainer does to its folder meanwhile. When a push lands, a
``checkpoint`` event with the Hub ``url`` tells the client where it is.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from unsloth_nb.jobrun.checkpoints import checkpoint_step
from unsloth_nb.latest_only import LatestOnly

if TYPE_CHECKING:
    from unsloth_nb.config import TrainConfig

logger = logging.getLogger("unsloth_nb.worker")

Emit = Callable[..., None]


def hub_checkpoint_repo(config: TrainConfig) -> str | None:
    """The repo checkpoints go to for this job, or None (a network volume keeps them, or none is configured)."""
    if config.runpod.volume_id or not config.train.save_steps:
        return None
    repo = config.hub.checkpoint_repo_id
    return repo if repo and os.environ.get("HF_TOKEN") else None


class HubCheckpointPusher:
    """Pushes the newest checkpoint offered, one push at a time."""

    def __init__(self, repo_id: str, staging: Path, output_dir: Path, emit: Emit) -> None:
        self.repo_id = repo_id
        self.staging = staging
        self.output_dir = output_dir
        self._emit = emit
        self._pushed_step = -1
        self._staged = 0
        self._last_error: str | None = None
        self._pushes: LatestOnly[tuple[Path, int]] = LatestOnly(
            self._push_and_clean, name="unsloth-nb-hub-checkpoints", on_dropped=self._clean, join_timeout=5.0
        )

    def offer(self, folder: Path, step: int) -> None:
        """Called from the training thread after a checkpoint is saved; returns at once."""
        self._pushes.offer((self._stage(folder), step))

    def wait_idle(self, timeout: float) -> bool:
        return self._pushes.wait_idle(timeout)

    def close(self) -> None:
        self._pushes.close()

    def _stage(self, folder: Path) -> Path:
        """Hard links to the checkpoint's files (a copy where links are not possible).

        Each offer gets a folder of its own (``staging/<n>/checkpoint-N``), so cleaning up
        a replaced offer never touches a newer one of the same name.
        """
        self._staged += 1
        target = self.staging / str(self._staged) / folder.name
        for path in folder.rglob("*"):
            if not path.is_file():
                continue
            linked = target / path.relative_to(folder)
            linked.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, linked)
            except OSError:
                shutil.copy2(path, linked)
        return target

    def _push_and_clean(self, wanted: tuple[Path, int]) -> None:
        try:
            self._push(*wanted)
        finally:
            self._clean(wanted)

    @staticmethod
    def _clean(wanted: tuple[Path, int]) -> None:
        """Remove a staged snapshot once pushed, or when a newer checkpoint replaced it before its turn."""
        shutil.rmtree(wanted[0].parent, ignore_errors=True)

    def _push(self, snapshot: Path, step: int) -> None:
        from unsloth_nb.hub import push_checkpoint

        if step <= self._pushed_step or checkpoint_step(snapshot.name) < 0:
            return
        try:
            url = push_checkpoint(snapshot, self.repo_id)
        except Exception as exc:  # the client's own copy still covers a lost pod; say it once per kind of failure
            message = f"could not push {snapshot.name} to {self.repo_id}: {exc}"
            logger.warning(message)
            if message != self._last_error:
                self._last_error = message
                self._emit("log", level="warning", message=message, source="worker")
            return
        self._pushed_step = step
        self._last_error = None
        logger.info("%s pushed to %s", snapshot.name, url)
        self._emit("checkpoint", step=step, path=str(self.output_dir / "checkpoints" / snapshot.name), url=url)
