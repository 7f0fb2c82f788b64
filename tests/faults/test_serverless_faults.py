"""The fault matrix's serverless rows: each fault injected into a real tiny job on the emulated serverless side.

The endpoint's worker is a local process running the unmodified ``runpod`` SDK worker loop with our handler.
Each row ends with no endpoint, template or worker left (the fixture checks; the summary's "pods left"
counts serverless workers too) and, where the job succeeds, a dense event log.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

import unsloth_nb
from unsloth_nb.errors import JobFailedError
from unsloth_nb.testing.runpod_emulator import RunPodEmulator

from .conftest import FaultRecorder, start_job

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]


def assert_dense(job: unsloth_nb.Job) -> None:
    events = job.events()
    assert [e.seq for e in events] == list(range(len(events)))


def assert_no_event_lost(job: unsloth_nb.Job, emulator: RunPodEmulator, fault: FaultRecorder) -> None:
    """Every event the completed request's handler yielded (its aggregated output) reached the job, once, in order."""
    for request in emulator.serverless.requests.values():
        if request.status != "COMPLETED":
            continue
        sent = [e["seq"] for chunk in request.output for e in (chunk.get("events") or [])]
        mirror = job.folder.path / "pods" / f"{request.id}.events.jsonl"
        received = [json.loads(line)["seq"] for line in mirror.read_text(encoding="utf-8").splitlines()]
        fault.record.events_lost += len(set(sent) - set(received))
        fault.record.duplicates += len(received) - len(set(received))
        assert received == sent


def wait_for_a_step(job: unsloth_nb.Job, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not any(e.kind == "metrics" for e in job.events()):
        assert not job.done, job.error
        assert time.monotonic() < deadline, f"no training step within {timeout} s"
        time.sleep(0.2)


def test_serverless_stop_cancels_the_request_and_deletes_the_endpoint(
    serverless: RunPodEmulator, fault: FaultRecorder, tiny_model: Path, dataset_file: Path
) -> None:
    fault.inject("serverless: Stop mid-training")
    job = start_job(tiny_model, dataset_file, placement="serverless", train={"max_steps": 500})
    wait_for_a_step(job)
    stopped_at = time.monotonic()
    job.cancel()
    job.wait(timeout=60)

    assert job.state == "cancelled"
    assert time.monotonic() - stopped_at < 30
    (request,) = serverless.serverless.requests.values()
    assert request.status == "CANCELLED"
    assert "cancelling the serverless request" in " ".join(str(e.data.get("message")) for e in job.events(kinds={"log"}))


def test_serverless_execution_timeout_fails_the_job_with_the_setting_to_change(
    serverless: RunPodEmulator, fault: FaultRecorder, tiny_model: Path, dataset_file: Path
) -> None:
    serverless.serverless.faults.execution_timeout_s = 3.0
    fault.inject("serverless: execution timeout")
    job = start_job(tiny_model, dataset_file, placement="serverless", train={"max_steps": 500})
    with pytest.raises(JobFailedError):
        job.wait(timeout=240)

    assert job.state == "failed"
    assert "serverless.execution_timeout" in (job.error or "")
    (request,) = serverless.serverless.requests.values()
    assert request.status == "TIMED_OUT"


def test_serverless_worker_killed_mid_job_is_replaced_by_a_new_request(
    serverless: RunPodEmulator, fault: FaultRecorder, tiny_model: Path, dataset_file: Path
) -> None:
    serverless.serverless.faults.kill_worker_after_losses = 2  # mid-training, however fast this machine is
    serverless.serverless.faults.cold_start_s = 1.0
    fault.inject("serverless: worker killed mid-job")
    fault.inject("serverless: cold start")
    job = start_job(tiny_model, dataset_file, placement="serverless", train={"max_steps": 30})
    job.wait(timeout=280)

    assert job.state == "succeeded", job.error
    assert_dense(job)
    assert_no_event_lost(job, serverless, fault)
    statuses = sorted(r.status for r in serverless.serverless.requests.values())
    assert statuses == ["COMPLETED", "FAILED"]
    steps = [e.data["step"] for e in job.events(kinds={"metrics"}) if "loss" in e.data]
    assert steps == sorted(set(steps)) and steps[-1] == 30  # steps trained again are not charted twice
    assert any("was lost at step" in str(e.data.get("message")) for e in job.events(kinds={"log"}))


def test_serverless_throttled_queue_and_lost_run_answer_never_run_the_job_twice(
    serverless: RunPodEmulator, fault: FaultRecorder, tiny_model: Path, dataset_file: Path
) -> None:
    serverless.serverless.faults.throttled_runs = 2
    serverless.serverless.faults.lost_runs = 1
    fault.inject("serverless: /run throttled (429) twice")
    fault.inject("serverless: /run answer lost")
    job = start_job(tiny_model, dataset_file, placement="serverless")
    job.wait(timeout=280)

    assert job.state == "succeeded", job.error
    assert_dense(job)
    assert_no_event_lost(job, serverless, fault)
    statuses = sorted(r.status for r in serverless.serverless.requests.values())
    assert statuses == ["CANCELLED", "COMPLETED"]  # the request whose answer was lost was purged, never run
    assert sum(1 for r in serverless.serverless.requests.values() if r.started is not None) == 1


def test_serverless_worker_killed_after_a_checkpoint_resumes_from_the_store(
    serverless: RunPodEmulator, fault: FaultRecorder, tiny_model: Path, dataset_file: Path, loopback_s3: Any
) -> None:
    from unsloth_nb.testing.s3_emulator import TEST_ACCESS_KEY, TEST_SECRET_KEY

    loopback_s3.client().create_bucket(Bucket="ckpts")
    # The worker's keys come from the account's RunPod secrets; its environment inherits no AWS_* from here.
    serverless.serverless.secrets.update({"AWS_ACCESS_KEY_ID": TEST_ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": TEST_SECRET_KEY})
    fault.inject("serverless: worker killed after a checkpoint reached the store")
    job = start_job(
        tiny_model,
        dataset_file,
        placement="serverless",
        train={"max_steps": 60, "save_steps": 4},
        serverless={"checkpoint_store": "s3://ckpts/runs"},
    )
    deadline = time.monotonic() + 240
    while not _complete_checkpoints(loopback_s3, f"runs/{job.id}/checkpoints/"):
        assert not job.done, job.error
        assert time.monotonic() < deadline, "no checkpoint reached the store"
        time.sleep(0.2)
    serverless.serverless.faults.kill_worker_after_s = 0.0  # the worker dies now, mid-training
    job.wait(timeout=280)

    assert job.state == "succeeded", job.error
    assert_dense(job)
    assert_no_event_lost(job, serverless, fault)
    requests = sorted(serverless.serverless.requests.values(), key=lambda r: r.status)
    assert [r.status for r in requests] == ["COMPLETED", "FAILED"]
    # The replacement request resumed from a stored checkpoint: it never trained steps 1-4 again.
    mirror = job.folder.path / "pods" / f"{requests[0].id}.events.jsonl"
    resumed = [json.loads(line) for line in mirror.read_text(encoding="utf-8").splitlines()]
    first_step = min(e["data"]["step"] for e in resumed if e["kind"] == "metrics" and "loss" in e["data"])
    assert first_step > 4, first_step
    logs = " ".join(str(e.data.get("message")) for e in job.events(kinds={"log"}))
    assert "resumes from the newest checkpoint in s3://ckpts/runs" in logs
    assert "resuming from checkpoint-" in logs and f"in s3://ckpts/runs/{job.id}/checkpoints" in logs
    steps = [e.data["step"] for e in job.events(kinds={"metrics"}) if "loss" in e.data]
    assert steps == sorted(set(steps)) and steps[-1] == 60
    # The store keeps the newest two complete checkpoints, not one per save.
    kept = _complete_checkpoints(loopback_s3, f"runs/{job.id}/checkpoints/")
    assert [key.split("/")[3] for key in sorted(kept)] == ["checkpoint-56", "checkpoint-60"]
    # The template named the secrets; their values never reached RunPod's template or the request.
    template = serverless.serverless.template_history[-1]
    assert template.env["AWS_SECRET_ACCESS_KEY"] == "{{ RUNPOD_SECRET_AWS_SECRET_ACCESS_KEY }}"
    assert TEST_SECRET_KEY not in json.dumps([r.input for r in requests])


def _complete_checkpoints(s3: Any, prefix: str) -> list[str]:
    listing = s3.client().list_objects_v2(Bucket="ckpts", Prefix=prefix)
    return [item["Key"] for item in listing.get("Contents") or [] if item["Key"].endswith("/.complete")]
