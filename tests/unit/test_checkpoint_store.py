"""The serverless worker's checkpoint store against a loopback S3 server (moto), through the unmodified boto3."""

from __future__ import annotations

from pathlib import Path

from unsloth_nb.testing.s3_emulator import LoopbackS3
from unsloth_nb.worker.checkpoint_store import CheckpointStore


def checkpoint(folder: Path, step: int) -> Path:
    path = folder / f"checkpoint-{step}"
    (path / "sub").mkdir(parents=True)
    (path / "trainer_state.json").write_text(f'{{"global_step": {step}}}', encoding="utf-8")
    (path / "sub" / "adapter.bin").write_bytes(bytes(range(256)) * step)
    return path


def store_for(s3: LoopbackS3) -> CheckpointStore:
    s3.client().create_bucket(Bucket="ckpts")
    description = {"kind": "s3", "bucket": "ckpts", "key": "runs/", "endpoint": s3.url, "region": "us-east-1"}
    store = CheckpointStore.from_json(description, "job-7")
    assert store is not None
    return store


def test_the_newest_complete_checkpoint_comes_back_whole(loopback_s3: LoopbackS3, tmp_path: Path) -> None:
    store = store_for(loopback_s3)
    assert store.display == "s3://ckpts/runs/job-7/checkpoints" and store.newest() is None
    for step in (9, 10):
        store.upload(checkpoint(tmp_path / "worker", step))

    assert store.newest() == "checkpoint-10"  # by step, not by name (checkpoint-9 sorts after checkpoint-10)
    restored = store.download("checkpoint-10", tmp_path / "replacement")
    original = tmp_path / "worker" / "checkpoint-10"
    assert sorted(p.relative_to(restored) for p in restored.rglob("*") if p.is_file()) == sorted(
        p.relative_to(original) for p in original.rglob("*") if p.is_file()
    )
    assert (restored / "sub" / "adapter.bin").read_bytes() == (original / "sub" / "adapter.bin").read_bytes()


def test_a_checkpoint_whose_upload_did_not_finish_is_never_resumed_from(loopback_s3: LoopbackS3, tmp_path: Path) -> None:
    store = store_for(loopback_s3)
    store.upload(checkpoint(tmp_path, 4))
    # A worker killed mid-upload: some files of checkpoint-8 are there, its completion marker is not.
    loopback_s3.put("ckpts", "runs/job-7/checkpoints/checkpoint-8/trainer_state.json", b"{}")

    assert store.newest() == "checkpoint-4"


def test_no_store_described_means_no_store() -> None:
    assert CheckpointStore.from_json(None, "job-7") is None
    assert CheckpointStore.from_json({"kind": "s3", "bucket": ""}, "job-7") is None


def test_only_the_newest_complete_checkpoints_are_kept(loopback_s3: LoopbackS3, tmp_path: Path) -> None:
    store = store_for(loopback_s3)
    for step in (2, 4, 6, 8):
        store.upload(checkpoint(tmp_path, step))
        store.prune(keep=2)

    listing = loopback_s3.client().list_objects_v2(Bucket="ckpts", Prefix="runs/job-7/checkpoints/")
    folders = {item["Key"].split("/")[3] for item in listing["Contents"]}
    assert folders == {"checkpoint-6", "checkpoint-8"}
    assert store.newest() == "checkpoint-8"
