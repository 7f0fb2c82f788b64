"""A job that finished while no process watched it, then its pod ended itself: fetch what the pod kept.

The pod's worker keeps uncollected outputs before it ends (:mod:`unsloth_nb.worker.keep`):
in the job's private Hub checkpoint repo (``finished/``: the outputs, the event log,
``result.json``), or on the network volume. A process that reattaches (``load_job``,
``runpod cleanup``) and finds the pod gone looks there before calling the pod lost:
the events the pod wrote while nobody watched are copied into the job's log (so the
chart and the "no event lost" check see them), the outputs land in the job's output
folder, and the job ends ``succeeded`` with a note saying how.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unsloth_nb.errors import BackendError
from unsloth_nb.jobrun.lifecycle import RESULT
from unsloth_nb.phases.base import PhaseResult

if TYPE_CHECKING:
    from unsloth_nb.backends.base import JobContext
    from unsloth_nb.backends.worker_link.relay import EventRelay
    from unsloth_nb.config import TrainConfig

#: Scratch folder in the job folder for what is fetched from the Hub (removed once taken).
KEPT_DIR = ".kept"


class FinishedUnwatched(Exception):
    """The pod is gone, and it kept the finished job's outputs at ``where`` (fetched into ``folder``)."""

    def __init__(self, where: str, folder: Path) -> None:
        super().__init__(where)
        self.where = where
        self.folder = folder


def find_kept_outputs(config: TrainConfig, job_folder: Path, job_id: str, say: Callable[[str], None]) -> FinishedUnwatched | None:
    """What the gone pod kept for this job on the Hub, downloaded; None when it kept nothing there.

    The repo is per ``hub.repo_id``, not per job: a ``finished/`` another job of the same
    repo left there is not this job's, so its ``result.json`` must name this job.
    """
    from unsloth_nb.credentials import has_secret
    from unsloth_nb.hub import FINISHED_FOLDER, download_finished, kept_outputs_repo, repo_url

    if not config.hub.repo_id or config.runpod.volume_id or not has_secret("HF_TOKEN"):
        return None
    repo = kept_outputs_repo(config.hub.repo_id)
    scratch = job_folder / KEPT_DIR
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        folder = download_finished(repo, scratch)
    except BackendError as exc:
        say(f"could not look for outputs the pod kept in {repo}: {exc}")
        return None
    if folder is None:
        return None
    try:
        kept_for = json.loads((folder / "result.json").read_text(encoding="utf-8")).get("job_id")
    except (OSError, ValueError):
        kept_for = None
    if kept_for != job_id:
        shutil.rmtree(scratch, ignore_errors=True)
        return None
    return FinishedUnwatched(repo_url(repo, FINISHED_FOLDER), folder)


def volume_note(config: TrainConfig, job_id: str) -> str:
    """For a pod that vanished with a network volume: where its outputs are, if it finished."""
    from unsloth_nb.backends.runpod.pod_request import VOLUME_WORK_DIR

    if not config.runpod.volume_id:
        return ""
    return (
        f"; if it finished, its outputs are on network volume {config.runpod.volume_id} in "
        f"{VOLUME_WORK_DIR.format(job_id=job_id)}/output (attach the volume to a pod to read them)"
    )


def take_kept_outputs(ctx: JobContext, relay: EventRelay, pod_id: str, kept: FinishedUnwatched) -> PhaseResult:
    """Copy the kept events into the job's log and the outputs into its folder; the job's result with a note."""
    from unsloth_nb.jobrun.events import read_events_file

    folder = kept.folder
    try:
        summary: dict[str, Any] = json.loads((folder / "result.json").read_text(encoding="utf-8"))
        events = [
            {"job_id": e.job_id, "seq": e.seq, "time": e.time, "kind": e.kind, "data": e.data}
            for e in read_events_file(folder / "events.jsonl")
        ]
    except (OSError, ValueError) as exc:
        raise BackendError(f"the outputs kept at {kept.where} cannot be read: {exc}") from None
    relay.receive(pod_id, events)
    ctx.set_state("downloading")
    for path in sorted(folder.iterdir()):
        if path.name in ("result.json", "events.jsonl"):
            continue
        target = ctx.output_dir / path.name
        if path.is_dir():
            shutil.copytree(path, target, dirs_exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    shutil.rmtree(folder.parent, ignore_errors=True)
    result = PhaseResult()
    for event in ctx.log.read(kinds={RESULT}):
        result = result.merge(PhaseResult.from_json(event.data))
    result.artifacts = {n: a for n, a in result.artifacts.items() if (ctx.output_dir / a.path).exists()}
    if "adapter" not in result.artifacts:
        raise BackendError(f"the outputs kept at {kept.where} hold no adapter")
    result.metrics.setdefault("global_step", relay.last_step)
    result.metrics.setdefault("final_loss", relay.last_loss)
    state = summary.get("state") or "succeeded"
    result.note = (
        f"trained ({state}) while no process watched, then pod {pod_id} ended itself; "
        f"its outputs were kept at {kept.where} and fetched to {ctx.output_dir}"
    )
    if state == "cancelled":
        result.stopped = True
        result.stop_reason = result.note
    return result
