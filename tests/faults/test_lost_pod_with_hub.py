"""The worst case for a pod without a network volume: its client dies, then the pod vanishes.

Nobody was watching when the pod went, so the only checkpoint newer than the client's
last copy is the one the pod pushed to the job's private Hub checkpoint repo. A process
that reattaches (``Job.load``) reads the dataset again (checked against what the first
pod got), rents a new pod, and the new pod downloads that checkpoint from the Hub and
finishes the job; the chart continues from that step.

Loopback only: the RunPod emulator and a loopback Hub (``HF_ENDPOINT``), which the
pods reach through the environment they inherit from the emulator.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import unsloth_nb
from unsloth_nb.errors import JobFailedError
from unsloth_nb.jobrun.events import read_events_file
from unsloth_nb.jobrun.store import JobFolder
from unsloth_nb.testing.hub_emulator import LoopbackHub
from unsloth_nb.testing.runpod_emulator import RunPodEmulator

from .conftest import FaultRecorder, assert_no_pod_left, job_pods, start_and_kill_client, worker_events

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]

TOKEN = "hf_" + "lostpodtest".ljust(34, "x")
REPO = "me/superbowl-lora"
MAX_STEPS = 80  # the first pod is evicted once checkpoint-20 is on the Hub (about step 25 in CI): far from its end
SAVE_STEPS = 5


@pytest.fixture
def hub(loopback_hub: LoopbackHub, monkeypatch: pytest.MonkeyPatch) -> LoopbackHub:
    """The loopback Hub, taking only TOKEN, which this process (and so the job's pods) holds as HF_TOKEN."""
    loopback_hub.token = TOKEN
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    return loopback_hub


def lose_the_pod_while_nobody_watches(
    emulator: RunPodEmulator, fault: FaultRecorder, model: Path, dataset: Path, at_least: int
) -> tuple[str, str, int]:
    """A kernel starts the job and dies once it trains; the pod trains on, pushing checkpoints, then vanishes.

    Returns (job id, the lost pod, the step of the first Hub checkpoint at or after ``at_least``).
    """
    job_id = start_and_kill_client(model, dataset, MAX_STEPS, "training", train={"save_steps": SAVE_STEPS}, hub={"repo_id": REPO})
    first = JobFolder.open(job_id).load_record().pod_id
    assert first is not None
    pushed = wait_for_hub_checkpoint(emulator, first, at_least=at_least)
    emulator.evict(first, remove=True)
    fault.exempt[first] = len(received_events_of(job_id, first))  # written while nobody watched, gone with the pod
    return job_id, first, pushed


def test_a_pod_lost_while_nobody_watched_resumes_from_its_checkpoint_on_the_hub(
    runpod_emulator: RunPodEmulator, fault: FaultRecorder, tiny_model: Path, dataset_file: Path, hub: LoopbackHub
) -> None:
    fault.inject("client killed, then its pod vanishes (checkpoints on the Hub)")
    job_id, first, pushed = lose_the_pod_while_nobody_watches(
        runpod_emulator, fault, tiny_model, dataset_file, at_least=4 * SAVE_STEPS
    )

    # A new process reattaches: the pod is gone, the newest checkpoint is on the Hub.
    job = unsloth_nb.load_job(job_id)
    job.wait(timeout=240)

    assert job.state == "succeeded", job.error
    assert job.adapter_path is not None and (job.adapter_path / "adapter_model.safetensors").is_file()
    pods = job_pods(job, runpod_emulator)
    assert len(pods) == 2 and pods[0] == first
    messages = [e["message"] for e in job.events(kinds={"log"})]
    assert any(m.startswith("read the dataset again") for m in messages), messages
    resumed = next(m for m in messages if "continuing on a new pod from" in m)
    step = int(resumed.split("continuing on a new pod from checkpoint-", 1)[1].split()[0])
    assert "on the Hub" in resumed and step >= pushed

    # The new pod takes the Hub's checkpoint: that one, or a newer one the vanishing pod pushed in its grace period.
    second = list(read_events_file(worker_events(runpod_emulator, pods[1])))
    download = next(e["message"] for e in second if e.kind == "log" and e["message"].startswith("downloading checkpoint-"))
    assert download.endswith(f"from the Hub repo {REPO}-checkpoints"), download
    fetched = int(download.split("checkpoint-", 1)[1].split()[0])
    assert fetched >= step
    trained_again = [e["step"] for e in second if e.kind == "metrics" and "loss" in e.data]
    assert trained_again[0] == fetched + 1 and trained_again[-1] == MAX_STEPS

    # The chart: what the dead client saw, then the new pod's steps; each step once, in order.
    charted = [e["step"] for e in job.events(kinds={"metrics"}) if "loss" in e.data]
    assert charted == sorted(set(charted)) and charted[-1] == MAX_STEPS
    assert set(range(fetched + 1, MAX_STEPS + 1)) <= set(charted)

    # The Hub: the checkpoint repo is private and holds one checkpoint; the adapter went to its own repo.
    assert hub.private[f"{REPO}-checkpoints"] is True
    assert len(hub.folders(f"{REPO}-checkpoints")) == 1
    assert "adapter_model.safetensors" in hub.files[REPO]
    assert hub.unexpected == []
    assert fault.check_events(job) == (0, 0)
    assert_no_pod_left(runpod_emulator, job)
    assert TOKEN not in (job.folder.path / "events.jsonl").read_text(encoding="utf-8")


def test_a_dataset_changed_since_it_was_sent_is_not_trained_on_a_new_pod(
    runpod_emulator: RunPodEmulator, fault: FaultRecorder, tiny_model: Path, dataset_file: Path, hub: LoopbackHub
) -> None:
    """The same loss, but the dataset file was edited meanwhile: continuing would mix two datasets in one run."""
    fault.inject("client killed, pod vanishes, dataset edited before the reattach")
    job_id, first, _ = lose_the_pod_while_nobody_watches(runpod_emulator, fault, tiny_model, dataset_file, SAVE_STEPS)
    with dataset_file.open("a", encoding="utf-8") as handle:
        handle.write('{"prompt": "Who sang the anthem?", "completion": "Jon Batiste."}\n')

    job = unsloth_nb.load_job(job_id)
    with pytest.raises(JobFailedError):
        job.wait(timeout=120)

    assert "changed since the job started, so a new pod cannot continue it" in (job.error or "")
    assert job_pods(job, runpod_emulator) == [first]  # nothing was rented for it
    assert runpod_emulator.ledger.running_pods() == []


def wait_for_hub_checkpoint(emulator: RunPodEmulator, pod_id: str, at_least: int, timeout: float = 180.0) -> int:
    """The step of the first checkpoint at or after ``at_least`` that the pod reports pushed to the Hub."""
    path = worker_events(emulator, pod_id)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            for event in read_events_file(path):
                if event.kind == "checkpoint" and event.data.get("url") and int(event["step"]) >= at_least:
                    return int(event["step"])
                if event.kind == "status" and event["state"] in ("succeeded", "failed", "cancelled"):
                    raise AssertionError(f"the pod's job ended ({event['state']}) before a checkpoint reached the Hub")
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint at step >= {at_least} reached the Hub within {timeout:.0f} s")


def received_events_of(job_id: str, pod_id: str) -> list[str]:
    path = JobFolder.open(job_id).path / "pods" / f"{pod_id}.events.jsonl"
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []
