"""Files between this machine and a pod's worker: a checkpoint sent up, the job's results brought down.

A new pod that continues a lost one's job gets the newest checkpoint kept here
(:func:`send_checkpoint`, every file checked against its sha256 as the worker lists
it); at the end the adapter (and the merged model) come down (:func:`download_outputs`),
and a stopped job also brings the newest checkpoint (:func:`fetch_latest_checkpoint`).
Downloads resume and are checked by the worker client; what to fetch, and when, is
the backend's call.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from unsloth_nb.backends.worker_link.client import WorkerClient
from unsloth_nb.errors import BackendError
from unsloth_nb.jobrun.checkpoints import checkpoint_step, newest_checkpoint
from unsloth_nb.worker.protocol import file_sha256


def send_checkpoint(worker: WorkerClient, folder: Path, pod_id: str, say: Callable[[str], None]) -> None:
    """Seed the new pod's output with a checkpoint, checked file by file against its sha256."""
    files = sorted((p for p in folder.rglob("*") if p.is_file()), key=lambda p: (p.name == "trainer_state.json", str(p)))
    prefix = f"checkpoints/{folder.name}"
    for path in files:
        worker.upload_file(f"{prefix}/{path.relative_to(folder).as_posix()}", path)
    listed = {a.name: a.sha256 for a in worker.artifacts(prefix)}
    for path in files:
        name = f"{prefix}/{path.relative_to(folder).as_posix()}"
        if listed.get(name) != file_sha256(path):
            raise BackendError(f"{name} did not reach the new pod intact")
    size = sum(p.stat().st_size for p in files)
    say(f"{folder.name} sent to pod {pod_id} ({size / 1e6:.1f} MB)")


def download_outputs(worker: WorkerClient, output_dir: Path, prefixes: list[str]) -> tuple[dict[str, Path], int]:
    """Fetch every artifact under each prefix into ``output_dir``: the folders that came, and the bytes."""
    fetched: dict[str, Path] = {}
    total = 0
    for prefix in prefixes:
        files = worker.artifacts(prefix)
        for artifact in files:
            worker.download(artifact, output_dir / artifact.name)
            total += artifact.bytes
        if files:
            fetched[prefix] = output_dir / prefix
    return fetched, total


def fetch_latest_checkpoint(worker: WorkerClient, output_dir: Path) -> Path | None:
    """Download the pod's newest checkpoint; returns it, or the newer copy already kept here."""
    files = worker.artifacts("checkpoints")
    steps = {a.name.split("/")[1] for a in files if a.name.count("/") >= 2}
    numbered = [s for s in steps if s.startswith("checkpoint-") and s[len("checkpoint-") :].isdigit()]
    if not numbered:
        return newest_checkpoint(output_dir / "checkpoints")
    latest = max(numbered, key=lambda s: int(s[len("checkpoint-") :]))
    for artifact in files:
        if artifact.name.startswith(f"checkpoints/{latest}/"):
            worker.download(artifact, output_dir / artifact.name)
    local = output_dir / "checkpoints" / latest
    kept = newest_checkpoint(output_dir / "checkpoints")
    return kept if kept is not None and checkpoint_step(kept) > checkpoint_step(local) else local
