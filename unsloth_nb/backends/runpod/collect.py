"""``runpod cleanup`` collects finished work before it ends anything.

A job whose process died may have finished on its pod meanwhile. Cleanup used to
terminate such a pod (the adapter with it) or, once the pod had ended itself, mark the
job failed. Now, for a job of this machine whose owner is gone:

- its pod still runs and its worker reports the job ended: the job is taken over
  (``load_job``), which downloads the outputs and then terminates the pod;
- its pod is gone and it kept the outputs in the job's private Hub repo: the same
  takeover fetches them from there.

Either way the job ends ``succeeded`` with a note that it finished unwatched. A pod
whose job still trains is left to the caller (cleanup ends it: that is what it is for).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from unsloth_nb.backends.runpod.api_types import Pod
    from unsloth_nb.jobrun.store import JobRecord

#: How long cleanup waits for one takeover (download and termination) before it moves on.
TAKEOVER_TIMEOUT_S = 600.0


def finished_on_pod(pod: Pod) -> bool:
    """Whether the pod's worker reports its job ended (asked with the token its env shows the account)."""
    from unsloth_nb.backends.runpod.pods import proxy_url
    from unsloth_nb.backends.worker_link.client import WorkerClient
    from unsloth_nb.worker.protocol import REMOTE_END_STATES
    from unsloth_nb.worker.settings import TOKEN_ENV

    token = pod.env.get(TOKEN_ENV, "")
    if not token or not pod.running:
        return False
    probe = WorkerClient(proxy_url(pod.id), token, unreachable_after=5.0)
    try:
        health = probe.health(timeout=5.0)
    finally:
        probe.close()
    return health is not None and health.state in REMOTE_END_STATES


def kept_on_hub(record: JobRecord) -> bool:
    """Whether the job's gone pod kept its finished outputs in the job's private Hub repo."""
    import shutil
    import tempfile
    from pathlib import Path

    from unsloth_nb.backends.runpod.unwatched import find_kept_outputs
    from unsloth_nb.config import TrainConfig
    from unsloth_nb.errors import UnslothNbError
    from unsloth_nb.jobrun.store import JobFolder

    try:
        config = TrainConfig.from_dict(JobFolder.open(record.id).config())
    except (OSError, ValueError, UnslothNbError):
        return False
    scratch = Path(tempfile.mkdtemp(prefix="unsloth-nb-kept-"))
    try:
        return find_kept_outputs(config, scratch, record.id, lambda message: None) is not None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def take_over(job_id: str, say: Callable[[str], None]) -> bool:
    """``load_job`` the job and wait for it: True when it ended succeeded (its outputs are here)."""
    from unsloth_nb.errors import UnslothNbError
    from unsloth_nb.jobrun.controller import load_job

    job = load_job(job_id)
    try:
        job.wait(timeout=TAKEOVER_TIMEOUT_S)
    except UnslothNbError:
        pass
    if job.state == "succeeded":
        say(f"job {job_id} finished while nobody watched; its outputs were collected to {job.folder.path}")
        return True
    say(f"job {job_id} ended {job.state}: {job.error or ''}".rstrip(": "))
    return False
