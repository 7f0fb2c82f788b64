"""Resume: a stopped or failed in-kernel job continues from its last checkpoint, as a new job.

RunPod jobs resume on their own (a lost pod's checkpoint goes to a new pod); this is the
notebook's button for a job that ran in this kernel and was stopped or failed.
"""

from __future__ import annotations

import contextvars
import dataclasses
from collections.abc import Iterable
from pathlib import Path

from unsloth_nb.jobrun.job import Job


def last_checkpoint(job: Job, checkpoints: Iterable[str]) -> Path | None:
    """The newest checkpoint ``job`` left on this machine: its own record first, then the events' newest first."""
    for path in [job.checkpoint_path, *(Path(p) for p in reversed(list(checkpoints)))]:
        if path is not None and (Path(path) / "trainer_state.json").is_file():
            return Path(path)
    return None


def resume_job(job: Job, checkpoint: Path | None, context: contextvars.Context | None = None) -> Job:
    """Start a new job with ``job``'s settings that continues from ``checkpoint``."""
    from unsloth_nb.errors import UnslothNbError
    from unsloth_nb.jobrun.controller import start_job
    from unsloth_nb.jobrun.preflight import prepare

    if checkpoint is None:
        raise UnslothNbError(f"job {job.id} left no checkpoint to resume from")
    config = job.config
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, resume_from=str(checkpoint)))
    try:
        base_dir = job.folder.read_json("inputs.json").get("base_dir")
    except (OSError, ValueError, AttributeError):
        base_dir = None
    return start_job(prepare(config, base_dir), context=context)
