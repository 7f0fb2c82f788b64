"""Talking to the Hugging Face Hub: pushing a finished adapter, and keeping checkpoints there.

A RunPod job without a network volume loses its pod's disk with the pod. When a Hub
repository is configured, the pod pushes each checkpoint to a private repository of
its own (``<repo_id>-checkpoints``, see ``HubConfig.checkpoint_repo_id``), holding only
the newest ``checkpoint-N/`` folder; a new pod downloads it to continue, whatever
happened to the machine that started the job.

The endpoint is read from ``HF_ENDPOINT`` at call time rather than at import (as
``huggingface_hub`` does), so tests can point a process at a loopback Hub. The token
comes from ``HF_TOKEN`` and is never part of a message.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from unsloth_nb.errors import BackendError, MissingSecretError
from unsloth_nb.jobrun.checkpoints import CHECKPOINT_NAME, checkpoint_step

DEFAULT_ENDPOINT = "https://huggingface.co"


def hub_endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def hub_api(why: str) -> Any:
    """An HfApi for the configured endpoint with HF_TOKEN; ``why`` completes the missing-token message."""
    token = os.environ.get("HF_TOKEN")
    if not token:
        raise MissingSecretError("HF_TOKEN", why)
    from huggingface_hub import HfApi

    return HfApi(endpoint=hub_endpoint(), token=token)


def repo_url(repo_id: str, folder: str | None = None) -> str:
    base = f"{hub_endpoint()}/{repo_id}"
    return f"{base}/tree/main/{folder}" if folder else base


def push_folder(folder: Path, repo_id: str, private: bool, message: str) -> str:
    """Upload a saved folder to a model repository (created if needed); returns the repo's URL."""
    api = hub_api(f"to push to {repo_id}")
    try:
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type="model", commit_message=message)
    except Exception as exc:  # network and permission failures: the folder is safe on disk
        raise BackendError(f"pushing {folder} to {repo_id} on {hub_endpoint()} failed: {exc}") from exc
    return repo_url(repo_id)


def push_checkpoint(checkpoint: Path, repo_id: str) -> str:
    """Replace whatever checkpoint the private repo holds with ``checkpoint`` in one commit.

    One commit adds ``checkpoint-N/`` and deletes every other ``checkpoint-*`` folder,
    so the repo never holds a half-uploaded checkpoint beside a deleted good one, and
    its size stays one checkpoint. Returns the URL of the folder on the Hub.
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    name = checkpoint.name
    if not CHECKPOINT_NAME.fullmatch(name) or not (checkpoint / "trainer_state.json").is_file():
        # An empty or partial folder would replace the good checkpoint on the Hub with nothing.
        raise BackendError(f"{checkpoint} is not a complete checkpoint-N folder")
    api = hub_api(f"to push checkpoints to {repo_id}")
    try:
        api.create_repo(repo_id, private=True, exist_ok=True, repo_type="model")
        older = [
            entry.path
            for entry in api.list_repo_tree(repo_id, repo_type="model")
            if CHECKPOINT_NAME.fullmatch(entry.path) and entry.path != name
        ]
        files = sorted(p for p in checkpoint.rglob("*") if p.is_file())
        operations: list[Any] = [
            CommitOperationAdd(path_in_repo=f"{name}/{p.relative_to(checkpoint).as_posix()}", path_or_fileobj=str(p))
            for p in files
        ]
        operations += [CommitOperationDelete(path_in_repo=f"{path}/", is_folder=True) for path in older]
        api.create_commit(
            repo_id, operations=operations, repo_type="model", commit_message=f"{name} (unsloth-nb, replaces older checkpoints)"
        )
    except Exception as exc:
        raise BackendError(f"pushing {name} to {repo_id} on {hub_endpoint()} failed: {exc}") from exc
    return repo_url(repo_id, name)


def newest_checkpoint_on_hub(repo_id: str) -> str | None:
    """The ``checkpoint-N`` folder the repo holds (the newest, should an old one remain), or None."""
    api = hub_api(f"to read checkpoints from {repo_id}")
    try:
        names = [entry.path for entry in api.list_repo_tree(repo_id, repo_type="model") if CHECKPOINT_NAME.fullmatch(entry.path)]
    except Exception as exc:
        if type(exc).__name__ == "RepositoryNotFoundError":
            return None
        raise BackendError(f"listing {repo_id} on {hub_endpoint()} failed: {exc}") from exc
    return max(names, key=checkpoint_step) if names else None


def download_checkpoint(repo_id: str, name: str, into: Path) -> Path:
    """Fetch ``name`` (``checkpoint-N``) from the repo into ``into/name``; returns that folder.

    Files land in a hidden ``.name.partial`` folder first and it is renamed once the
    download finished, so a download cut short is never taken for a checkpoint.
    """
    if not CHECKPOINT_NAME.fullmatch(name):
        raise BackendError(f"{name!r} is not a checkpoint-N name")
    api = hub_api(f"to download checkpoints from {repo_id}")
    partial = into / f".{name}.partial"
    target = into / name
    shutil.rmtree(partial, ignore_errors=True)
    try:
        from huggingface_hub import snapshot_download

        snapshot_download(
            repo_id,
            repo_type="model",
            allow_patterns=[f"{name}/*", f"{name}/**"],
            local_dir=str(partial),
            token=api.token,
            endpoint=api.endpoint,
        )
    except Exception as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise BackendError(f"downloading {name} from {repo_id} on {hub_endpoint()} failed: {exc}") from exc
    fetched = partial / name
    if not (fetched / "trainer_state.json").is_file():
        shutil.rmtree(partial, ignore_errors=True)
        raise BackendError(f"{repo_id} holds no complete {name} (no trainer_state.json)")
    shutil.rmtree(target, ignore_errors=True)
    fetched.rename(target)
    shutil.rmtree(partial, ignore_errors=True)
    return target


#: Where a pod keeps a finished job's outputs that no client collected: a folder of the private checkpoint repo.
FINISHED_FOLDER = "finished"


def kept_outputs_repo(repo_id: str) -> str:
    """The private repo a pod keeps uncollected outputs in: the job's checkpoint repo, whatever push_checkpoints says."""
    return f"{repo_id}-checkpoints"


def push_finished(output: Path, repo_id: str) -> str:
    """Put ``output`` (adapter, result, events; no checkpoints) under ``finished/`` of the private repo in one commit.

    ``finished/result.json`` goes last in the same commit, so a reader that finds it finds
    the whole folder. Returns the folder's URL.
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    api = hub_api(f"to keep finished outputs in {repo_id}")
    files = sorted(p for p in output.rglob("*") if p.is_file())
    marker = [p for p in files if p.relative_to(output).as_posix() == "result.json"]
    operations: list[Any] = [
        CommitOperationAdd(path_in_repo=f"{FINISHED_FOLDER}/{p.relative_to(output).as_posix()}", path_or_fileobj=str(p))
        for p in [*(p for p in files if p not in marker), *marker]
    ]
    try:
        api.create_repo(repo_id, private=True, exist_ok=True, repo_type="model")
        # An earlier job of the same repo may have left a finished/ folder: replace it, never mix the two.
        if any(entry.path == FINISHED_FOLDER for entry in api.list_repo_tree(repo_id, repo_type="model")):
            operations.insert(0, CommitOperationDelete(path_in_repo=f"{FINISHED_FOLDER}/", is_folder=True))
        api.create_commit(
            repo_id, operations=operations, repo_type="model", commit_message="finished outputs nobody collected (unsloth-nb)"
        )
    except Exception as exc:
        raise BackendError(f"keeping the finished outputs in {repo_id} on {hub_endpoint()} failed: {exc}") from exc
    return repo_url(repo_id, FINISHED_FOLDER)


def download_finished(repo_id: str, into: Path) -> Path | None:
    """Fetch ``finished/`` from the repo into ``into``; None when the repo holds no complete one (no result.json)."""
    api = hub_api(f"to fetch the finished outputs kept in {repo_id}")
    try:
        from huggingface_hub import snapshot_download

        snapshot_download(
            repo_id,
            repo_type="model",
            allow_patterns=[f"{FINISHED_FOLDER}/*", f"{FINISHED_FOLDER}/**"],
            local_dir=str(into),
            token=api.token,
            endpoint=api.endpoint,
        )
    except Exception as exc:
        if type(exc).__name__ == "RepositoryNotFoundError":
            return None
        raise BackendError(f"downloading the finished outputs from {repo_id} on {hub_endpoint()} failed: {exc}") from exc
    folder = into / FINISHED_FOLDER
    return folder if (folder / "result.json").is_file() else None
