"""Pod jobs that read their dataset where it lives: the client checks a sample and sends a reference, not rows.

The loopback Hub and the loopback S3 server hold the rows; the emulated pod's worker reads
them in full, validates every row there and trains. The dataset bytes the client uploads
are the reference only: asserted below a few kB.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fixtures import tiny_job

import unsloth_nb
from unsloth_nb.errors import JobFailedError
from unsloth_nb.testing.hub_emulator import LoopbackHub, dataset_key
from unsloth_nb.testing.runpod_emulator import RunPodEmulator
from unsloth_nb.testing.s3_emulator import LoopbackS3

pytestmark = pytest.mark.timeout(300)

MAX_REFERENCE_BYTES = 4096


@pytest.fixture
def rows_bytes(dataset_file: Path) -> bytes:
    return dataset_file.read_bytes()


def pod_job(model: Path, dataset: str) -> unsloth_nb.Job:
    return tiny_job("runpod", model, dataset, train={"max_steps": 2})


def uploaded_dataset(job: unsloth_nb.Job) -> dict[str, Any]:
    return json.loads((job.folder.path / "dataset_sent.json").read_text(encoding="utf-8"))


def worker_logs(job: unsloth_nb.Job) -> list[str]:
    return [str(e.data.get("message", "")) for e in job.events() if e.kind == "log"]


def test_a_pod_job_trains_from_a_hub_dataset_read_on_the_pod(
    runpod_emulator: RunPodEmulator,
    tiny_model: Path,
    loopback_hub: LoopbackHub,
    superbowl_on_hub: str,
    rows_bytes: bytes,
) -> None:
    job = pod_job(tiny_model, superbowl_on_hub)
    job.wait(timeout=280)
    assert job.state == "succeeded", job.error
    sent = uploaded_dataset(job)
    assert sent["bytes"] < MAX_REFERENCE_BYTES < len(rows_bytes)
    assert any("dataset read here: 40 training" in line for line in worker_logs(job))
    full_reads = [r for r in loopback_hub.reads if r.startswith("GET") and "bytes=" not in r]
    assert full_reads == [f"GET {dataset_key('org/superbowl')}/data/train-00000-of-00001.jsonl"]  # by the pod only


def test_a_pod_job_trains_from_s3_read_on_the_pod(
    runpod_emulator: RunPodEmulator,
    tiny_model: Path,
    loopback_s3: LoopbackS3,
    rows_bytes: bytes,
) -> None:
    loopback_s3.put("data", "superbowl.jsonl", rows_bytes)
    job = pod_job(tiny_model, "s3://data/superbowl.jsonl")
    job.wait(timeout=280)
    assert job.state == "succeeded", job.error
    assert uploaded_dataset(job)["bytes"] < MAX_REFERENCE_BYTES
    assert any("dataset read here: 40 training" in line for line in worker_logs(job))
    assert "loopback-secret-key" not in json.dumps(uploaded_dataset(job))
    # The S3 keys reached the pod in the authenticated job request only: never in a RunPod API call (pod env).
    assert "loopback-secret-key" not in repr(runpod_emulator.api_calls)


def test_a_pod_job_on_a_volume_runpod_does_not_have_is_refused_before_anything_is_rented(
    runpod_emulator: RunPodEmulator,
    tiny_model: Path,
    loopback_s3: LoopbackS3,
    rows_bytes: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RUNPOD_VOLUME_DATACENTER", "EU-RO-1")
    monkeypatch.setenv("UNSLOTH_NB_RUNPOD_S3_ENDPOINT", loopback_s3.url)  # s3api-eu-ro-1.runpod.io, on loopback
    loopback_s3.put("vol123", "datasets/superbowl.jsonl", rows_bytes)  # readable through S3, but no such volume
    job = pod_job(tiny_model, "volume://vol123/datasets/superbowl.jsonl")
    with pytest.raises(JobFailedError, match="RunPod has no network volume vol123; `unsloth-nb runpod volume list`"):
        job.wait(timeout=280)
    assert runpod_emulator.pods == {}


def test_a_broken_row_past_the_sample_fails_the_pod_job_before_training_naming_its_s3_line(
    runpod_emulator: RunPodEmulator, tiny_model: Path, loopback_s3: LoopbackS3
) -> None:
    lines = [json.dumps({"prompt": f"Question {i}?", "completion": f"Answer {i}."}) for i in range(13_000)]
    lines[12_344] = lines[12_344][:-1]  # row 12,345 loses its closing brace: far past the sample read here
    loopback_s3.put("data", "big.jsonl", ("\n".join(lines) + "\n").encode())
    job = pod_job(tiny_model, "s3://data/big.jsonl")
    with pytest.raises(JobFailedError) as caught:
        job.wait(timeout=280)
    summary = next(e.data for e in job.events() if e.kind == "summary" and "sources" in e.data)
    assert any("estimated from a sample" in line for line in summary["sources"])
    assert 12_000 < summary["rows"] < 14_000  # the plan's estimate from the sample's bytes
    assert "s3://data/big.jsonl:12345: not valid JSON" in str(caught.value)
    states = [e["state"] for e in job.events() if e.kind == "status"]
    assert "training" not in states
    assert uploaded_dataset(job)["bytes"] < MAX_REFERENCE_BYTES


def test_a_pod_job_on_a_volume_dataset_mounts_the_volume_in_its_data_centre_and_reads_the_mount(
    runpod_emulator: RunPodEmulator,
    tiny_model: Path,
    loopback_s3: LoopbackS3,
    rows_bytes: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from unsloth_nb.backends.runpod.pod_request import job_secret_names
    from unsloth_nb.backends.runpod.volumes import VolumesClient
    from unsloth_nb.planning.plan_text import format_plan

    runpod_emulator.volumes.attach_s3(loopback_s3.env)  # the volume's S3 API is the loopback S3 server
    volume = VolumesClient().create("datasets", 10, "EU-RO-1")
    monkeypatch.setenv("RUNPOD_VOLUME_DATACENTER", "EU-RO-1")
    monkeypatch.setenv("UNSLOTH_NB_RUNPOD_S3_ENDPOINT", loopback_s3.url)  # s3api-eu-ro-1.runpod.io, on loopback
    loopback_s3.put(volume.id, "datasets/superbowl.jsonl", rows_bytes)  # uploaded through the S3 API: on the mount too
    job = pod_job(tiny_model, f"volume://{volume.id}/datasets/superbowl.jsonl")
    seen: dict[str, Any] = {}
    runpod_emulator.wait_for(lambda: seen.update(runpod_emulator.pods) or seen, timeout=120)  # before it is terminated
    job.wait(timeout=280)
    assert job.state == "succeeded", job.error
    assert f"Placed in data centre EU-RO-1, where network volume {volume.id} is" in format_plan(job.plan)
    (pod,) = seen.values()
    assert (pod.network_volume_id, pod.data_center_ids) == (volume.id, ("EU-RO-1",))
    assert any("dataset read here: 40 training" in line for line in worker_logs(job))
    # No S3 key goes to the pod (its container has none either), so the rows came from the volume's mount.
    required, optional = job_secret_names(job.config)
    assert not [name for name in [*required, *optional] if name.startswith("AWS_")]
