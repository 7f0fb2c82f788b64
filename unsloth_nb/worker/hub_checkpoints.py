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
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from unsloth_nb.checkpoints import checkpoint_step

logger = logging.getLogger("unsloth_nb.worker")

Emit = Callable[..., None]


def hub_checkpoint_repo(config: Any) -> str | None:
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
        self._cond = threading.Condition()
        self._wanted: tuple[Path, int] | None = None
        self._busy = False
        self._closed = False
        self._pushed_step = -1
        self._last_error: str | None = None
        self._thread = threading.Thread(target=self._serve, name="unsloth-nb-hub-checkpoints", daemon=True)
        self._thread.start()

    def offer(self, folder: Path, step: int) -> None:
        """Called from the training thread after a checkpoint is saved; returns at once."""
        snapshot = self._stage(folder)
        with self._cond:
            if self._closed:
                return
            self._wanted = (snapshot, step)
            self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: not self._busy and self._wanted is None, timeout)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._wanted = None
            self._cond.notify_all()
        self._thread.join(timeout=5)

    def _stage(self, folder: Path) -> Path:
        """Hard links to the checkpoint's files (a copy where links are not possible)."""
        target = self.staging / folder.name
        shutil.rmtree(target, ignore_errors=True)
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

    def _serve(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closed or self._wanted is not None)
                if self._closed:
                    return
                wanted, self._wanted = self._wanted, None
                self._busy = True
            assert wanted is not None
            try:
                self._push(*wanted)
            finally:
                shutil.rmtree(wanted[0], ignore_errors=True)
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

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
