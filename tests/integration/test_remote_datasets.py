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

import unsloth_nb
from unsloth_nb.errors import JobFailedError
from unsloth_nb.testing.hub_emulator import LoopbackHub, dataset_key
from unsloth_nb.testing.runpod_emulator import RunPodEmulator
from unsloth_nb.testing.s3_emulator import LoopbackS3

pytestmark = pytest.mark.timeout(300)

MAX_REFERENCE_BYTES = 4096


@pytest.fixture
def rows_bytes(superbowl_rows: list[dict[str, Any]]) -> bytes:
    rows = [{"prompt": r["prompt"], "completion": r["completion"][:160]} for r in superbowl_rows]
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def pod_job(model: Path, dataset: str) -> unsloth_nb.Job:
    train = {"max_steps": 2, "batch_size": 2, "grad_accum": 1, "max_seq_length": 512, "warmup_steps": 0}
    return unsloth_nb.train(model=str(model), dataset=dataset, placement="runpod", train=train, lora={"r": 8, "alpha": 8})


def uploaded_dataset(job: unsloth_nb.Job) -> dict[str, Any]:
    return json.loads((job.folder.path / "dataset_sent.json").read_text(encoding="utf-8"))


def worker_logs(job: unsloth_nb.Job) -> list[str]:
    return [str(e.data.get("message", "")) for e in job.events() if e.kind == "log"]


def test_a_pod_job_trains_from_a_hub_dataset_read_on_the_pod(
    runpod_emulator: RunPodEmulator,
    tiny_model: Path,
    loopback_hub: LoopbackHub,
    rows_bytes: bytes,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("UNSLOTH_NB_DATA_CACHE", str(tmp_path / "data-cache"))
    loopback_hub.add_dataset("org/superbowl", {"data/train-00000-of-00001.jsonl": rows_bytes})
    job = pod_job(tiny_model, "org/superbowl")
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


def test_a_pod_job_reads_a_network_volume_path_through_the_volumes_s3_api(
    runpod_emulator: RunPodEmulator,
    tiny_model: Path,
    loopback_s3: LoopbackS3,
    rows_bytes: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RUNPOD_VOLUME_DATACENTER", "EU-RO-1")
    monkeypatch.setenv("UNSLOTH_NB_RUNPOD_S3_ENDPOINT", loopback_s3.url)  # s3api-eu-ro-1.runpod.io, on loopback
    loopback_s3.put("vol123", "datasets/superbowl.jsonl", rows_bytes)  # the bucket is the volume id
    job = pod_job(tiny_model, "volume://vol123/datasets/superbowl.jsonl")
    job.wait(timeout=280)
    assert job.state == "succeeded", job.error
    assert uploaded_dataset(job)["bytes"] < MAX_REFERENCE_BYTES
    assert any("dataset read here: 40 training" in line for line in worker_logs(job))


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
