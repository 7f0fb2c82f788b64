"""Nothing trained is lost and nothing bills when nobody watches (issue 18).

Each test kills the client of a real RunPod job on the emulator (a kernel that died)
or cuts RunPod's API off from the pod or from the client, and checks that the
adapter ends up on this machine or where the pod said it kept it, that the pod ends,
and what it billed meanwhile (``fault.billed_unwatched``, printed beside the test).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

import unsloth_nb
from unsloth_nb.cli import main as cli_main
from unsloth_nb.errors import JobFailedError
from unsloth_nb.jobrun.events import Event, read_events_file
from unsloth_nb.jobrun.store import JobFolder
from unsloth_nb.testing.hub_emulator import LoopbackHub
from unsloth_nb.testing.runpod_emulator import RunPodEmulator
from unsloth_nb.ui.console import JobStatus

from .conftest import (
    FaultRecorder,
    assert_no_pod_left,
    end_reason,
    job_pods,
    start_and_kill_client,
    start_job,
    states,
    training,
    wait_for_event,
    worker_events,
)

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]

IDLE_TIMEOUT_S = 4.0
TOKEN = "hf_" + "unwatchedtest".ljust(34, "x")
REPO = "me/unwatched-lora"
TERMINAL = ("succeeded", "failed", "cancelled")


@pytest.fixture
def hub(loopback_hub: LoopbackHub, monkeypatch: pytest.MonkeyPatch) -> LoopbackHub:
    """The loopback Hub, taking only TOKEN, which this process (and so the job's pods) holds as HF_TOKEN."""
    loopback_hub.token = TOKEN
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    return loopback_hub


@pytest.fixture
def short_idle(runpod_emulator: RunPodEmulator, monkeypatch: pytest.MonkeyPatch) -> float:
    """Pods end themselves after a few idle seconds, and retry a failed self-termination every 2 s at most."""
    monkeypatch.setitem(runpod_emulator.pod_env, "UNSLOTH_NB_WORKER_IDLE_TIMEOUT", f"{IDLE_TIMEOUT_S:g}")
    monkeypatch.setitem(runpod_emulator.pod_env, "UNSLOTH_NB_WORKER_TERMINATE_RETRY_MAX", "2")
    return IDLE_TIMEOUT_S


def pod_events(emulator: RunPodEmulator, pod_id: str) -> list[Event]:
    path = worker_events(emulator, pod_id)
    return list(read_events_file(path)) if path.exists() else []


def wait_for_pod_event(emulator: RunPodEmulator, pod_id: str, test: Any, timeout: float = 180.0) -> Event:
    """The first event the pod's worker wrote (nobody relays it) for which ``test(event)`` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in pod_events(emulator, pod_id):
            if test(event):
                return event
        time.sleep(0.2)
    raise AssertionError(f"the pod never wrote such an event; its last: {[e.data for e in pod_events(emulator, pod_id)][-5:]}")


def finished_at(emulator: RunPodEmulator, pod_id: str) -> float:
    """Wall time of the pod's job ending (its last status event)."""
    ended = [e for e in pod_events(emulator, pod_id) if e.kind == "status" and e.data.get("state") in TERMINAL]
    assert ended, "the pod's job did not end"
    return ended[-1].time


def wait_until_gone(emulator: RunPodEmulator, pod_id: str, timeout: float) -> float:
    """Wall time at which the emulator stopped billing the pod."""
    emulator.wait_for(lambda: pod_id not in emulator.ledger.running_pods(), timeout=timeout, interval=0.1)
    return time.time()


def assert_pod_ended_itself(emulator: RunPodEmulator, job: unsloth_nb.Job) -> None:
    """No pod left, and the job's record does not pretend this process terminated it."""
    assert emulator.ledger.running_pods() == []
    for pod_id in job_pods(job, emulator):
        assert emulator.pod(pod_id) is None, f"pod {pod_id} still exists"
    assert "terminating" not in states(job)[-3:], states(job)


def messages(job: unsloth_nb.Job) -> list[str]:
    return [str(e.data.get("message")) for e in job.events(kinds={"log"})]


def kill_the_client_and_let_it_finish(emulator: RunPodEmulator, model: Path, dataset: Path, **config: Any) -> tuple[str, str]:
    job_id = start_and_kill_client(model, dataset, max_steps=3, until="training", **config)
    pod_id = JobFolder.open(job_id).load_record().pod_id
    assert pod_id is not None
    return job_id, pod_id


# ---------------------------------------------------------------------- nowhere to keep the outputs
@pytest.mark.parametrize("collector", ["load_job", "cleanup"])
def test_a_job_finishing_unwatched_with_nowhere_to_keep_its_outputs_waits_for_a_collector(
    runpod_emulator: RunPodEmulator,
    fault: FaultRecorder,
    tiny_model: Path,
    dataset_file: Path,
    short_idle: float,
    collector: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fault.inject(f"client killed; the pod finishes with nowhere to keep the adapter; {collector} collects it")
    job_id, pod_id = kill_the_client_and_let_it_finish(
        runpod_emulator, tiny_model, dataset_file, runpod={"keep_uncollected": 600}
    )
    waiting = wait_for_pod_event(runpod_emulator, pod_id, lambda e: "waits up to 600 s more" in str(e.data.get("message")))
    assert waiting.data["level"] == "warning"
    time.sleep(short_idle)  # past the idle timeout, the pod is still there for a collector
    assert runpod_emulator.ledger.running_pods() == [pod_id]
    ended = finished_at(runpod_emulator, pod_id)

    if collector == "cleanup":
        assert cli_main(["runpod", "cleanup", "--yes"]) == 0
        out = capsys.readouterr().out
        assert f"pod {pod_id} holds the finished job {job_id}: collecting its outputs" in out, out
        job = unsloth_nb.load_job(job_id, reattach=False)
    else:
        job = unsloth_nb.load_job(job_id)
        job.wait(timeout=120)
    gone = time.time()

    assert fault.check_adapter(job)
    assert job.state == "succeeded", job.error
    assert "while no process watched; its outputs were collected from pod" in end_reason(job)
    assert fault.check_events(job) == (0, 0)
    assert_no_pod_left(runpod_emulator, job)
    fault.billed_unwatched(gone - ended)


def test_outputs_nobody_collects_within_the_cap_are_given_up_loudly_and_the_pod_ends(
    runpod_emulator: RunPodEmulator, fault: FaultRecorder, tiny_model: Path, dataset_file: Path, short_idle: float
) -> None:
    """The cap is the only case where an adapter is let go: the plan priced it, and the last event says so."""
    fault.inject("client killed; nobody collects within runpod.keep_uncollected")
    job_id, pod_id = kill_the_client_and_let_it_finish(runpod_emulator, tiny_model, dataset_file, runpod={"keep_uncollected": 3})
    gone = wait_until_gone(runpod_emulator, pod_id, timeout=180)
    ended = finished_at(runpod_emulator, pod_id)
    said = [str(e.data.get("message")) for e in pod_events(runpod_emulator, pod_id) if e.kind == "log"]
    assert any("they end with this pod" in m for m in said), said[-5:]
    fault.gave_up_adapter()
    # idle timeout + the cap + the watcher's poll and the termination, no more
    assert gone - ended < short_idle + 3 + 10, f"billed {gone - ended:.0f} s after the job ended"
    fault.billed_unwatched(gone - ended)

    job = unsloth_nb.load_job(job_id)
    with pytest.raises(JobFailedError):
        job.wait(timeout=60)
    assert "ended or vanished while no process watched this job" in (job.error or "")
    assert runpod_emulator.ledger.running_pods() == []


# ---------------------------------------------------------------------- kept on the Hub
@pytest.mark.parametrize("collector", ["load_job", "cleanup"])
def test_a_job_finishing_unwatched_keeps_its_outputs_on_the_hub_and_a_collector_fetches_them(
    runpod_emulator: RunPodEmulator,
    fault: FaultRecorder,
    tiny_model: Path,
    dataset_file: Path,
    short_idle: float,
    hub: LoopbackHub,
    collector: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fault.inject(f"client killed; the pod finishes, keeps the adapter on the Hub and ends itself; {collector} fetches it")
    job_id, pod_id = kill_the_client_and_let_it_finish(runpod_emulator, tiny_model, dataset_file, hub={"repo_id": REPO})
    gone = wait_until_gone(runpod_emulator, pod_id, timeout=180)
    ended = finished_at(runpod_emulator, pod_id)
    fault.billed_unwatched(gone - ended)
    assert gone - ended < short_idle + 15, f"billed {gone - ended:.0f} s after the job ended"

    kept = f"{REPO}-checkpoints"
    assert hub.private[kept] is True
    assert {"finished/result.json", "finished/adapter/adapter_config.json", "finished/events.jsonl"} <= set(hub.files[kept])
    # What the pod wrote after it made the copy (that it kept them, that it ends) died with it.
    said = pod_events(runpod_emulator, pod_id)
    fault.exempt[pod_id] = next(e.seq for e in said if "finished outputs kept at" in str(e.data.get("message")))

    if collector == "cleanup":
        assert cli_main(["runpod", "cleanup", "--yes"]) == 0
        out = capsys.readouterr().out
        assert f"job {job_id} finished while nobody watched; its outputs were collected" in out, out
        assert "marked failed" not in out
        job = unsloth_nb.load_job(job_id, reattach=False)
    else:
        job = unsloth_nb.load_job(job_id)
        job.wait(timeout=120)

    assert fault.check_adapter(job)
    assert job.state == "succeeded", job.error
    reason = end_reason(job)
    assert f"pod {pod_id} ended itself" in reason and f"{kept}/tree/main/finished" in reason, reason
    assert "vanished" not in " ".join(messages(job))
    assert [e.seq for e in job.events()] == list(range(len(job.events())))
    charted = [e["step"] for e in job.events(kinds={"metrics"}) if "loss" in e.data]
    assert charted == [1, 2, 3]
    assert fault.check_events(job) == (0, 0)
    assert_pod_ended_itself(runpod_emulator, job)
    assert TOKEN not in (job.folder.path / "events.jsonl").read_text(encoding="utf-8")


# ---------------------------------------------------------------------- RunPod's API unreachable
def test_a_pod_that_cannot_reach_the_api_keeps_trying_to_end_itself_until_it_can(
    runpod_emulator: RunPodEmulator,
    fault: FaultRecorder,
    tiny_model: Path,
    dataset_file: Path,
    short_idle: float,
    hub: LoopbackHub,
) -> None:
    fault.inject("RunPod API unreachable from the pod for longer than its idle timeout")
    runpod_emulator.faults.update({"unreachable_from": "pods"})
    job_id, pod_id = kill_the_client_and_let_it_finish(runpod_emulator, tiny_model, dataset_file, hub={"repo_id": REPO})
    wait_for_pod_event(runpod_emulator, pod_id, lambda e: "finished outputs kept at" in str(e.data.get("message")))
    wait_for_pod_event(runpod_emulator, pod_id, lambda e: "(attempt 3)" in str(e.data.get("message")), timeout=120)
    time.sleep(short_idle)
    assert runpod_emulator.ledger.running_pods() == [pod_id]  # it could not end itself, and it has not given up
    failures = [e for e in pod_events(runpod_emulator, pod_id) if "could not terminate pod" in str(e.data.get("message"))]
    assert len(failures) >= 3 and all(e.data["level"] == "error" for e in failures)

    back = time.time()
    runpod_emulator.faults.update({"unreachable_from": ""})
    gone = wait_until_gone(runpod_emulator, pod_id, timeout=30)
    assert gone - back < 2 + 5, f"the pod ended {gone - back:.0f} s after the API came back"  # one backoff step (2 s) + a try
    fault.billed_unwatched(gone - finished_at(runpod_emulator, pod_id))

    said = pod_events(runpod_emulator, pod_id)
    fault.exempt[pod_id] = next(e.seq for e in said if "finished outputs kept at" in str(e.data.get("message")))
    job = unsloth_nb.load_job(job_id)
    job.wait(timeout=120)
    assert fault.check_adapter(job)
    assert job.state == "succeeded", job.error
    assert fault.check_events(job) == (0, 0)
    assert_pod_ended_itself(runpod_emulator, job)


def test_a_client_that_cannot_reach_the_api_says_so_and_never_claims_the_pod_state(
    runpod_emulator: RunPodEmulator, fault: FaultRecorder, tiny_model: Path, dataset_file: Path
) -> None:
    fault.inject("RunPod API unreachable from the client while it ends the pod")
    job = start_job(tiny_model, dataset_file, train={"max_steps": 30})
    wait_for_event(job, training)
    runpod_emulator.faults.update({"unreachable_from": "clients"})
    statuses: list[str] = []

    def bring_it_back() -> None:
        # Until the job has said the API is unreachable for a while (its terminate cannot get through), then back.
        deadline = time.monotonic() + 200
        while time.monotonic() < deadline:
            said = [e for e in job.events(kinds={"log"}) if (e.data.get("api_unreachable_s") or 0) >= 5]
            if said:
                status = JobStatus()
                for event in job.events():
                    status.update(event)
                statuses.append(status.line())
                break
            time.sleep(0.2)
        runpod_emulator.faults.update({"unreachable_from": ""})

    helper = threading.Thread(target=bring_it_back, daemon=True)
    helper.start()
    try:
        job.wait(timeout=240)
    except JobFailedError:
        pass
    helper.join(timeout=10)

    said = messages(job)
    assert any(m.startswith("RunPod API unreachable for ") and m.endswith("the pod's state is unknown") for m in said), said
    assert "RunPod API reachable again" in said
    assert statuses and "RunPod API unreachable for" in statuses[0] and "the pod's state is unknown" in statuses[0]
    assert not any("still listed" in m or "is running but" in m for m in said), said
    assert fault.check_adapter(job)
    assert job.state == "succeeded", job.error
    assert fault.check_events(job) == (0, 0)
    assert_no_pod_left(runpod_emulator, job)
