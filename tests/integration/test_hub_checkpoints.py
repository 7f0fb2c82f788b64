"""Checkpoints on the Hub: pushed by the pod, found and fetched by a new one.

The real ``huggingface_hub`` client against a loopback Hub (``loopback_hub`` fixture);
the worker-side pusher runs its real thread.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from unsloth_nb import hub
from unsloth_nb.backends.runpod.placement import lost_pod_policy
from unsloth_nb.config import TrainConfig
from unsloth_nb.errors import BackendError, MissingSecretError
from unsloth_nb.testing.hub_emulator import LoopbackHub
from unsloth_nb.worker.hub_checkpoints import HubCheckpointPusher, hub_checkpoint_repo

TOKEN = "hf_" + "checkpointtest".ljust(34, "x")
REPO = "me/superbowl-lora-checkpoints"


def fake_checkpoint(root: Path, step: int, size: int = 4096) -> Path:
    folder = root / f"checkpoint-{step}"
    (folder / "nested").mkdir(parents=True)
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}), encoding="utf-8")
    (folder / "optimizer.pt").write_bytes(bytes([step % 256]) * size)
    (folder / "nested" / "rng_state.pth").write_bytes(b"rng" * step)
    return folder


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch, loopback_hub: LoopbackHub) -> str:
    loopback_hub.token = TOKEN
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    return TOKEN


def test_each_push_replaces_the_previous_checkpoint_in_one_private_repo(
    tmp_path: Path, loopback_hub: LoopbackHub, token: str
) -> None:
    first = hub.push_checkpoint(fake_checkpoint(tmp_path, 3), REPO)
    second = hub.push_checkpoint(fake_checkpoint(tmp_path, 6), REPO)

    assert first == f"{loopback_hub.url}/{REPO}/tree/main/checkpoint-3"
    assert second.endswith("/checkpoint-6")
    assert loopback_hub.private[REPO] is True
    assert loopback_hub.folders(REPO) == {"checkpoint-6"}
    assert set(loopback_hub.files[REPO]) == {
        "checkpoint-6/trainer_state.json",
        "checkpoint-6/optimizer.pt",
        "checkpoint-6/nested/rng_state.pth",
    }
    # The second commit added the new folder and removed the old one at once.
    assert loopback_hub.commits[-1].deleted == ["checkpoint-3/"]
    assert hub.newest_checkpoint_on_hub(REPO) == "checkpoint-6"
    assert loopback_hub.authorization == {f"Bearer {token}"}
    assert loopback_hub.unexpected == []


def test_a_new_pod_downloads_the_checkpoint_it_is_told_to_resume_from(
    tmp_path: Path, loopback_hub: LoopbackHub, token: str
) -> None:
    source = fake_checkpoint(tmp_path / "pod-1", 9)
    hub.push_checkpoint(source, REPO)
    into = tmp_path / "pod-2" / "checkpoints"
    into.mkdir(parents=True)

    fetched = hub.download_checkpoint(REPO, "checkpoint-9", into)

    assert fetched == into / "checkpoint-9"
    for path in source.rglob("*"):
        if path.is_file():
            assert (fetched / path.relative_to(source)).read_bytes() == path.read_bytes()
    assert sorted(p.name for p in into.iterdir()) == ["checkpoint-9"]  # no partial folder left behind


def test_a_checkpoint_the_repo_does_not_hold_is_refused_and_leaves_nothing(
    tmp_path: Path, loopback_hub: LoopbackHub, token: str
) -> None:
    hub.push_checkpoint(fake_checkpoint(tmp_path / "pod", 4), REPO)
    into = tmp_path / "new"
    into.mkdir()
    with pytest.raises(BackendError, match="holds no complete checkpoint-2"):
        hub.download_checkpoint(REPO, "checkpoint-2", into)
    assert list(into.iterdir()) == []
    assert hub.newest_checkpoint_on_hub("me/never-created-checkpoints") is None


def test_an_incomplete_checkpoint_never_replaces_the_one_on_the_hub(
    tmp_path: Path, loopback_hub: LoopbackHub, token: str
) -> None:
    hub.push_checkpoint(fake_checkpoint(tmp_path, 4), REPO)
    partial = tmp_path / "checkpoint-8"
    partial.mkdir()
    (partial / "optimizer.pt").write_bytes(b"half")  # a save cut short: no trainer_state.json

    with pytest.raises(BackendError, match="not a complete checkpoint-N folder"):
        hub.push_checkpoint(partial, REPO)
    assert loopback_hub.folders(REPO) == {"checkpoint-4"}


def test_without_hf_token_the_error_names_the_variable(
    tmp_path: Path, loopback_hub: LoopbackHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(MissingSecretError, match="HF_TOKEN"):
        hub.push_checkpoint(fake_checkpoint(tmp_path, 1), REPO)


def test_the_pusher_keeps_up_with_training_and_pushes_the_newest(tmp_path: Path, loopback_hub: LoopbackHub, token: str) -> None:
    """Checkpoints offered faster than they upload: the newest is pushed, and a folder deleted meanwhile still is."""
    output = tmp_path / "output"
    events: list[tuple[str, dict[str, Any]]] = []
    lock = threading.Lock()

    def emit(kind: str, /, **data: Any) -> None:
        with lock:
            events.append((kind, data))

    pusher = HubCheckpointPusher(REPO, tmp_path / "staging", output, emit)
    try:
        for step in (2, 4, 6):
            folder = fake_checkpoint(output / "checkpoints", step, size=200_000)
            pusher.offer(folder, step)
        # The trainer may remove a checkpoint folder while it is being pushed: the staged links keep its files.
        for path in sorted((output / "checkpoints" / "checkpoint-6").rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        assert pusher.wait_idle(timeout=60)
    finally:
        pusher.close()

    pushed = [data for kind, data in events if kind == "checkpoint"]
    assert pushed[-1] == {
        "step": 6,
        "path": str(output / "checkpoints" / "checkpoint-6"),
        "url": f"{loopback_hub.url}/{REPO}/tree/main/checkpoint-6",
    }
    assert [d["step"] for d in pushed] == sorted({d["step"] for d in pushed})  # never an older one after a newer
    assert loopback_hub.folders(REPO) == {"checkpoint-6"}
    assert loopback_hub.files[REPO]["checkpoint-6/optimizer.pt"] == bytes([6]) * 200_000
    assert not any(kind == "log" for kind, _ in events)
    assert list((tmp_path / "staging").iterdir()) == []  # pushed and replaced snapshots alike are cleaned up


def test_which_jobs_push_checkpoints_and_what_the_plan_says(monkeypatch: pytest.MonkeyPatch) -> None:
    base = {"model": "m", "dataset": "d.jsonl", "placement": "runpod", "hub": {"repo_id": "me/lora"}}
    config = TrainConfig.from_dict({**base, "train": {"save_steps": 10}})
    monkeypatch.delenv("HF_TOKEN", raising=False)
    assert hub_checkpoint_repo(config) is None  # a pod without the token cannot push
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert hub_checkpoint_repo(config) == "me/lora-checkpoints"
    policy, warn = lost_pod_policy(config)
    assert "pushed to the private Hub repo me/lora-checkpoints" in policy and not warn

    no_saves = TrainConfig.from_dict(base)
    volume = TrainConfig.from_dict({**base, "train": {"save_steps": 10}, "runpod": {"volume_id": "vol1"}})
    opted_out = TrainConfig.from_dict(
        {**base, "train": {"save_steps": 10}, "hub": {"repo_id": "me/lora", "push_checkpoints": False}}
    )
    assert hub_checkpoint_repo(no_saves) is None
    assert hub_checkpoint_repo(volume) is None
    assert hub_checkpoint_repo(opted_out) is None
    assert "copied to this machine" in lost_pod_policy(opted_out)[0]
