"""The fault matrix: each way RunPod, the network, the pod or the client fails, injected into a real job.

Every test runs a tiny LoRA job on the RunPod emulator through the unmodified
``runpod`` SDK (pods run our real bootstrap and worker as local processes), injects
one fault, and checks that the job ends as it should, that no pod is left billing,
and, where events flow, that none was lost or duplicated on the way to the client.
The ``fault`` fixture records each for the summary line printed at the end of the run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

import unsloth_nb
from unsloth_nb.cli import main as cli_main
from unsloth_nb.errors import JobFailedError
from unsloth_nb.jobrun.events import read_events_file
from unsloth_nb.jobrun.store import JobFolder
from unsloth_nb.testing.runpod_emulator import RunPodEmulator
from unsloth_nb.ui.console import JobStatus

from .conftest import (
    BAD_GATEWAY_PAGE,
    FaultRecorder,
    FlakyNetwork,
    Refusal,
    assert_no_pod_left,
    end_reason,
    job_pods,
    received_events,
    start_and_kill_client,
    start_job,
    train_settings,
    training,
    wait_for_event,
    worker_events,
)

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]

RTX_4090 = "NVIDIA GeForce RTX 4090"
A6000 = "NVIDIA RTX A6000"
A40 = "NVIDIA A40"
H200 = "NVIDIA H200"
#: Every kind of call a job makes to RunPod's API (by GraphQL operation).
API_OPERATIONS = ("gpuTypes", "myself", "podFindAndDeployOnDemand", "pod", "podTerminate")
#: Every kind of call a job makes to its worker through the pod proxy.
WORKER_CALLS = (
    "GET /health",
    "GET /job",
    "PUT /job",
    "GET /job/dataset",
    "PUT /job/dataset",
    "POST /job/start",
    "GET /events",
    "GET /artifacts",
    "GET /artifacts/*",
)


def finish(job: unsloth_nb.Job, timeout: float = 240.0) -> unsloth_nb.Job:
    """Wait for the job's end whatever it is (failures are asserted by the test)."""
    try:
        job.wait(timeout=timeout)
    except JobFailedError:
        pass
    return job


def assert_succeeded(job: unsloth_nb.Job, emulator: RunPodEmulator, fault: FaultRecorder) -> None:
    assert fault.check_adapter(job), f"{job.state}: {job.error}"
    assert job.state == "succeeded", job.error
    assert job.adapter_path is not None and (job.adapter_path / "adapter_config.json").is_file()
    assert fault.check_events(job) == (0, 0)
    assert_no_pod_left(emulator, job)


# ---------------------------------------------------------------------- RunPod's API
def test_out_of_stock_on_the_first_two_gpus(
    runpod_emulator: RunPodEmulator, fault: FaultRecorder, tiny_model: Path, dataset_file: Path
) -> None:
    runpod_emulator.faults.out_of_stock = {RTX_4090, A6000}  # listed in stock, refused at create
    fault.inject("out of stock on the first two GPUs")
    job = finish(start_job(tiny_model, dataset_file, runpod={"gpus": [RTX_4090, A6000, A40]}))

    assert_succeeded(job, runpod_emulator, fault)
    (pod,) = [p for p in runpod_emulator.ledger.to_dict()["pods"] if p["pod_id"] in job_pods(job, runpod_emulator)]
    assert pod["gpu_type_id"] == A40 and job.record.gpu == "A40"
    refused = [e["message"] for e in job.events(kinds={"log"}) if "no stock, trying the next GPU" in e["message"]]
    assert len(refused) == 2


@pytest.mark.parametrize("api", ["rest", "graphql"])
def test_429_5xx_and_html_502_on_every_kind_of_call(
    runpod_emulator: RunPodEmulator,
    fault: FaultRecorder,
    flaky_network: FlakyNetwork,
    tiny_model: Path,
    dataset_file: Path,
    api: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("UNSLOTH_NB_RUNPOD_API", api)  # REST v2 (the default), and GraphQL while RunPod serves it
    once = {operation: 1 for operation in API_OPERATIONS}
    runpod_emulator.faults.retry_after_s = 1
    runpod_emulator.faults.update({"bad_gateway": once, "rate_limited": once, "server_errors": once})
    flaky_network.refusals = (
        Refusal(503, b'{"message": "Service Unavailable"}'),
        Refusal(502, BAD_GATEWAY_PAGE, "text/html"),
        Refusal(429, b'{"title": "Too Many Requests"}', headers=(("Retry-After", "1"),)),
    )
    for name in ("HTTP 429 with Retry-After on every call", "HTTP 5xx on every call", "HTML 502 on every call"):
        fault.inject(f"{name} ({api})")
    job = finish(start_job(tiny_model, dataset_file))

    assert_succeeded(job, runpod_emulator, fault)
    knobs = runpod_emulator.faults.to_dict()
    for knob in ("bad_gateway", "rate_limited", "server_errors"):
        assert knobs[knob] == {op: 0 for op in API_OPERATIONS}, knob  # every kind of API call met each failure
    refused = {kind for kind, count in flaky_network.failed.items() if count == 3}
    assert set(WORKER_CALLS) <= refused, flaky_network.failed


def test_a_402_for_the_balance_fails_at_once_and_says_where_to_add_credit(
    runpod_emulator: RunPodEmulator, fault: FaultRecorder, tiny_model: Path, dataset_file: Path
) -> None:
    runpod_emulator.faults.insufficient_balance = 1
    fault.inject("create refused for the balance (HTTP 402)")
    job = finish(start_job(tiny_model, dataset_file))

    assert job.state == "failed"
    assert "HTTP 402" in str(job.error) and "https://www.runpod.io/console/user/billing" in str(job.error)
    assert runpod_emulator.ledger.pod_ids() == [] and runpod_emulator.pods == {}  # refused; no other GPU tried


def test_create_whose_answer_is_lost_adopts_the_pod(
    runpod_emulator: RunPodEmulator, fault: FaultRecorder, tiny_model: Path, dataset_file: Path
) -> None:
    runpod_emulator.faults.lost_creates = 1
    fault.inject("create answer lost (the pod exists)")
    job = finish(start_job(tiny_model, dataset_file))

    assert_succeeded(job, runpod_emulator, fault)
    assert runpod_emulator.faults.lost_creates == 0
    assert len(job_pods(job, runpod_emulator)) == 1  # adopted by name, never created twice


def test_a_pod_that_never_becomes_ready_is_replaced(
    runpod_emulator: RunPodEmulator, fault: FaultRecorder, tiny_model: Path, dataset_file: Path
) -> None:
    runpod_emulator.faults.never_ready = 1
    fault.inject("pod never becomes ready")
    job = finish(start_job(tiny_model, dataset_file, runpod={"gpus": [RTX_4090, A6000], "ready_timeout": 10}))

    assert_succeeded(job, runpod_emulator, fault)
    stuck, used = job_pods(job, runpod_emulator)
    assert not worker_events(runpod_emulator, stuck).exists()
    assert runpod_emulator.ledger.pod_seconds(stuck) < 20  # terminated at the readiness deadline
    assert job.record.pod_id == used and job.record.gpu == "RTX A6000"
    assert any("did not answer its health check within 10 s" in e["message"] for e in job.events(kinds={"log"}))


def test_terminate_that_silently_fails_is_detected_and_sent_again(
    runpod_emulator: RunPodEmulator, fault: FaultRecorder, tiny_model: Path, dataset_file: Path
) -> None:
    runpod_emulator.faults.silent_terminate_failures = 2  # "succeeds" and leaves the pod running, twice
    fault.inject("terminate_pod silently failing")
    job = finish(start_job(tiny_model, dataset_file))

    assert_succeeded(job, runpod_emulator, fault)
    assert runpod_emulator.faults.silent_terminate_failures == 0
    assert any("terminated (confirmed" in e["message"] for e in job.events(kinds={"log"}))


# ---------------------------------------------------------------------- the pod and its worker
def test_a_worker_that_crashes_mid_training_fails_the_job_with_its_last_log_lines(
    runpod_emulator: RunPodEmulator, fault: FaultRecorder, tiny_model: Path, dataset_file: Path
) -> None:
    job = start_job(tiny_model, dataset_file, train={"max_steps": 400})
    wait_for_event(job, training)
    fault.inject("worker crashes mid-training (killed)")
    kill_worker(runpod_emulator, job)
    finish(job)

    assert job.state == "failed"
    assert "died while the job was training (it exited with status 137)" in (job.error or "")
    assert "no checkpoint" in (job.error or "")
    (error,) = [e for e in job.events(kinds={"error"}) if e.get("log_tail")]
    assert "last log lines" in error["message"] and error["log_tail"].strip()
    assert "exited with status 137" in error["message"]
    assert fault.check_events(job) == (0, 0)
    assert_no_pod_left(runpod_emulator, job)


def test_a_worker_that_crashes_after_a_checkpoint_resumes_on_the_same_pod(
    runpod_emulator: RunPodEmulator, fault: FaultRecorder, tiny_model: Path, dataset_file: Path
) -> None:
    job = start_job(tiny_model, dataset_file, train={"max_steps": 16, "save_steps": 3})
    wait_for_event(job, lambda e: e.kind == "checkpoint")
    fault.inject("worker crashes mid-training after a checkpoint (killed)")
    kill_worker(runpod_emulator, job)
    finish(job)

    assert_succeeded(job, runpod_emulator, fault)
    assert len(job_pods(job, runpod_emulator)) == 1  # the pod's start-up script started the worker again
    resumed = next(e["message"] for e in job.events(kinds={"log"}) if "died and came back; resuming from" in e["message"])
    step = int(resumed.rsplit("checkpoint-", 1)[1])
    assert step >= 3 and step % 3 == 0
    charted = [e["step"] for e in job.events(kinds={"metrics"}) if "loss" in e.data]
    assert charted == list(range(1, 17))


def kill_worker(emulator: RunPodEmulator, job: unsloth_nb.Job) -> None:
    """SIGKILL the worker process of the job's pod, as the OOM killer would."""
    info = emulator.pod(job.record.pod_id or "")
    assert info is not None and info.pid is not None
    (worker,) = [p for p in psutil.Process(info.pid).children(recursive=True) if "unsloth_nb.worker" in " ".join(p.cmdline())]
    worker.kill()


def evict_when_caught_up(
    fault: FaultRecorder, job: unsloth_nb.Job, emulator: RunPodEmulator, pod_id: str, *, remove: bool = True
) -> None:
    """Make the pod vanish once the client holds every event it has written so far.

    Events the worker writes after that die with the pod (no client could get them);
    those are the only ones not counted as lost.
    """
    path = worker_events(emulator, pod_id)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        written = sum(1 for _ in read_events_file(path))
        got = received_events(job, pod_id)
        if got and int(got[-1]["seq"]) >= written - 1:
            emulator.evict(pod_id, remove=remove)
            fault.exempt[pod_id] = written
            return
        time.sleep(0.005)
    raise AssertionError("the client never caught up with the pod's events")


@pytest.mark.parametrize("gone_as", ["usual", "error"], ids=["lookup-404", "lookup-error-naming-the-pod"])
def test_a_pod_that_disappears_mid_training_resumes_on_a_new_pod_from_the_last_checkpoint(
    runpod_emulator: RunPodEmulator, fault: FaultRecorder, tiny_model: Path, dataset_file: Path, gone_as: str
) -> None:
    runpod_emulator.faults.lookup_gone_as = gone_as  # how RunPod answers a lookup of the vanished pod
    job = start_job(tiny_model, dataset_file, train={"max_steps": 20, "save_steps": 3})
    copied = wait_for_event(job, lambda e: e.kind == "log" and "each newer checkpoint replaces it" in e["message"])
    first = job.record.pod_id
    assert first is not None
    fault.inject("pod disappears mid-training (eviction)" + ("" if gone_as == "usual" else "; its lookup answers an error"))
    evict_when_caught_up(fault, job, runpod_emulator, first)
    finish(job)

    assert_succeeded(job, runpod_emulator, fault)
    pods = job_pods(job, runpod_emulator)
    assert len(pods) == 2 and pods[0] == first and job.record.pod_id == pods[1]
    resumed = next(e["message"] for e in job.events(kinds={"log"}) if "continuing on a new pod from" in e["message"])
    checkpoint_step = int(resumed.rsplit("checkpoint-", 1)[1].split()[0])
    assert checkpoint_step % 3 == 0 and checkpoint_step >= int(copied["message"].split()[0].split("-")[1])
    # The new pod started from that checkpoint, and the chart has every step once, in order.
    second = list(read_events_file(worker_events(runpod_emulator, pods[1])))
    second_steps = [e["step"] for e in second if e.kind == "metrics" and "loss" in e.data]
    assert second_steps[0] == checkpoint_step + 1 and second_steps[-1] == 20
    charted = [e["step"] for e in job.events(kinds={"metrics"}) if "loss" in e.data]
    assert charted == list(range(1, 21))
    progress = [e["step"] for e in job.events(kinds={"progress"})]
    assert progress == sorted(set(progress))


def test_a_spot_pod_evicted_mid_training_resumes_on_a_new_spot_pod(
    runpod_emulator: RunPodEmulator, fault: FaultRecorder, tiny_model: Path, dataset_file: Path
) -> None:
    job = start_job(tiny_model, dataset_file, train={"max_steps": 16, "save_steps": 3}, runpod={"interruptible": True})
    wait_for_event(job, lambda e: e.kind == "log" and "each newer checkpoint replaces it" in e["message"])
    first = job.record.pod_id
    assert first is not None
    fault.inject("spot pod evicted mid-training (EXITED by RunPod)")
    evict_when_caught_up(fault, job, runpod_emulator, first, remove=False)  # a spot eviction leaves the pod EXITED
    finish(job)

    assert_succeeded(job, runpod_emulator, fault)
    pods = job_pods(job, runpod_emulator)
    assert len(pods) == 2 and pods[0] == first
    ledger = {p["pod_id"]: p for p in runpod_emulator.ledger.to_dict()["pods"]}
    for pod_id in pods:  # both rented at the spot bid, not on demand
        gpu = runpod_emulator.gpus[ledger[pod_id]["gpu_type_id"]]
        assert ledger[pod_id]["cost_per_hr"] == gpu.spot_price("SECURE") < (gpu.on_demand_price("SECURE") or 0)
    assert any("continuing on a new pod from" in e["message"] for e in job.events(kinds={"log"}))
    charted = [e["step"] for e in job.events(kinds={"metrics"}) if "loss" in e.data]
    assert charted == list(range(1, 17))


def test_the_event_stream_dropping_mid_run_reconnects_from_the_cursor(
    runpod_emulator: RunPodEmulator,
    fault: FaultRecorder,
    flaky_network: FlakyNetwork,
    tiny_model: Path,
    dataset_file: Path,
) -> None:
    flaky_network.lose_answer_once = True  # every kind of call: the pod acts, its answer never arrives
    flaky_network.drop_events = 3  # answers full of events, lost
    flaky_network.cut_events = 3  # answers full of events, cut half-way
    fault.inject("event stream dropping mid-run")
    job = finish(start_job(tiny_model, dataset_file, train={"max_steps": 6}))

    assert_succeeded(job, runpod_emulator, fault)
    assert flaky_network.failed["GET /events (with events)"] == 6
    assert {kind for kind, count in flaky_network.failed.items() if count == 1} >= set(WORKER_CALLS)
    assert [e.seq for e in job.events()] == list(range(len(job.events())))


# ---------------------------------------------------------------------- the client
def test_a_kernel_restart_mid_job_is_reattached_and_finishes(
    runpod_emulator: RunPodEmulator, fault: FaultRecorder, tiny_model: Path, dataset_file: Path
) -> None:
    fault.inject("kernel restart mid-job (reattach)")
    job_id = start_and_kill_client(tiny_model, dataset_file, max_steps=30, until="training")

    # The job folder shows a job whose process is gone, and its pod still running.
    record = JobFolder.open(job_id).load_record()
    assert not record.terminal and not record.owner_alive() and record.pod_id
    assert runpod_emulator.ledger.running_pods() == [record.pod_id]
    before = len(received_events_of(job_id, record.pod_id))
    assert before > 0

    job = unsloth_nb.load_job(job_id)
    finish(job)

    assert_succeeded(job, runpod_emulator, fault)
    assert job.record.pid == os.getpid()
    assert any(e["message"].startswith("reattached to pod") for e in job.events(kinds={"log"}))
    assert [e.seq for e in job.events()] == list(range(len(job.events())))
    charted = [e["step"] for e in job.events(kinds={"metrics"}) if "loss" in e.data]
    assert charted == list(range(1, 31))
    assert job.record.gpu and (job.adapter_path / "adapter_model.safetensors").is_file()


def received_events_of(job_id: str, pod_id: str) -> list[str]:
    path = JobFolder.open(job_id).path / "pods" / f"{pod_id}.events.jsonl"
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def test_a_kernel_restart_mid_job_then_cleanup_ends_the_pod(
    runpod_emulator: RunPodEmulator,
    fault: FaultRecorder,
    tiny_model: Path,
    dataset_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fault.inject("kernel restart mid-job (cleanup)")
    job_id = start_and_kill_client(tiny_model, dataset_file, max_steps=400, until="pod")
    record = JobFolder.open(job_id).load_record()
    assert not record.terminal and not record.owner_alive() and record.pod_id

    assert cli_main(["runpod", "cleanup", "--yes"]) == 0
    out = capsys.readouterr().out
    assert f"pod {record.pod_id} terminated (confirmed" in out and f"job {job_id} marked failed" in out

    job = unsloth_nb.load_job(job_id)
    assert job.state == "failed" and "runpod cleanup" in (job.error or "")
    assert runpod_emulator.ledger.running_pods() == [] and runpod_emulator.pod(record.pod_id) is None


def test_stop_saves_downloads_and_ends_the_pod(
    runpod_emulator: RunPodEmulator, fault: FaultRecorder, tiny_model: Path, dataset_file: Path
) -> None:
    job = start_job(tiny_model, dataset_file, train={"max_steps": 400})
    wait_for_event(job, training)
    fault.inject("Stop")
    job.cancel()
    finish(job)

    assert job.state == "cancelled" and "stopped by the user" in end_reason(job)
    assert job.adapter_path is not None and (job.adapter_path / "adapter_config.json").is_file()
    assert job.checkpoint_path is not None and (job.checkpoint_path / "trainer_state.json").is_file()
    assert fault.check_events(job) == (0, 0)
    assert_no_pod_left(runpod_emulator, job)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_and_sigterm_of_the_cli_stop_the_job_and_end_the_pod(
    runpod_emulator: RunPodEmulator,
    fault: FaultRecorder,
    tiny_model: Path,
    dataset_file: Path,
    tmp_path: Path,
    sig: signal.Signals,
) -> None:
    settings = train_settings(max_steps=400)
    argv = [sys.executable, "-m", "unsloth_nb.cli", "train", "--force-runpod", "--yes", "--json"]
    argv += ["--model", str(tiny_model), "--dataset", str(dataset_file), "--lora-r", "8", "--lora-alpha", "8"]
    for name, flag in (("max_steps", "--max-steps"), ("batch_size", "--batch-size"), ("grad_accum", "--grad-accum")):
        argv += [flag, str(settings[name])]
    argv += ["--max-seq-length", "512", "--warmup-steps", "0"]
    stderr = (tmp_path / "stderr.txt").open("w+")
    cli = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr, text=True)
    assert cli.stdout is not None
    job_id = None
    deadline = time.monotonic() + 240
    for line in cli.stdout:
        event = json.loads(line)
        job_id = event["job_id"]
        if event["kind"] == "metrics" and event["data"].get("loss") is not None:
            break
        assert time.monotonic() < deadline, "no training step within 240 s"
    assert job_id is not None
    fault.inject("Ctrl-C of the CLI" if sig == signal.SIGINT else "SIGTERM of the CLI")
    cli.send_signal(sig)
    cli.communicate(timeout=120)
    stderr.seek(0)

    assert cli.returncode == 130, stderr.read()[-2000:]
    job = unsloth_nb.load_job(job_id, reattach=False)
    assert job.state == "cancelled" and "interrupted from the terminal" in end_reason(job)
    assert job.adapter_path is not None and (job.adapter_path / "adapter_config.json").is_file()
    assert fault.check_events(job) == (0, 0)
    assert_no_pod_left(runpod_emulator, job)


# ---------------------------------------------------------------------- limits
def test_the_budget_running_out_saves_downloads_and_ends_the_pod(
    runpod_emulator: RunPodEmulator, fault: FaultRecorder, tiny_model: Path, dataset_file: Path
) -> None:
    runpod_emulator.gpus[H200].secure_price = 3600.0  # $1 a second: the budget runs out mid-training
    budget = 40.0
    fault.inject("max_cost_usd reached")
    job = finish(start_job(tiny_model, dataset_file, train={"max_steps": 5000}, runpod={"gpus": [H200], "max_cost_usd": budget}))

    assert job.state == "cancelled", job.error
    reason = end_reason(job)
    assert "runpod.max_cost_usd ($40.00" in reason and "$3600.00/h" in reason and "adapter saved" in reason
    assert any(e.kind == "metrics" for e in job.events())  # it trained, then the limit stopped it
    assert job.adapter_path is not None and (job.adapter_path / "adapter_config.json").is_file()
    assert job.checkpoint_path is not None and (job.checkpoint_path / "trainer_state.json").is_file()
    costs = job.events(kinds={"cost"})
    assert costs[-1]["usd_per_hour"] == 3600.0 and costs[-1]["usd_so_far"] >= budget
    status = JobStatus()
    for event in job.events():
        status.update(event)
    assert f"${costs[-1]['usd_so_far']:.2f}" in status.line()  # cost so far feeds the status line
    (pod_id,) = job_pods(job, runpod_emulator)
    assert runpod_emulator.ledger.pod_usd(pod_id) < budget + 30  # saved and ended within seconds of the limit
    assert fault.check_events(job) == (0, 0)
    assert_no_pod_left(runpod_emulator, job)


def test_max_runtime_saves_downloads_and_ends_the_pod(
    runpod_emulator: RunPodEmulator, fault: FaultRecorder, tiny_model: Path, dataset_file: Path
) -> None:
    fault.inject("max_runtime reached")
    job = finish(start_job(tiny_model, dataset_file, train={"max_steps": 5000}, runpod={"max_runtime": 60}))

    assert job.state == "cancelled", job.error
    assert "runpod.max_runtime (60 s)" in end_reason(job) and "adapter saved" in end_reason(job)
    assert job.adapter_path is not None and (job.adapter_path / "adapter_config.json").is_file()
    assert job.checkpoint_path is not None and (job.checkpoint_path / "trainer_state.json").is_file()
    (pod_id,) = job_pods(job, runpod_emulator)
    assert 60 <= runpod_emulator.ledger.pod_seconds(pod_id) < 90
    assert fault.check_events(job) == (0, 0)
    assert_no_pod_left(runpod_emulator, job)


# ---------------------------------------------------------------------- an orphan probed by new jobs
def test_an_orphan_probed_by_new_jobs_still_ends_on_its_idle_timeout(
    runpod_emulator: RunPodEmulator,
    fault: FaultRecorder,
    tiny_model: Path,
    dataset_file: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every new job asks each idle pod of ours for /health (``find_reusable_pod``); that must not keep one alive."""
    from unsloth_nb.backends.runpod.client import RunPodClient
    from unsloth_nb.backends.runpod.pods import Offer, find_reusable_pod, proxy_url
    from unsloth_nb.backends.worker_link.client import WorkerClient
    from unsloth_nb.planning.gpu_catalog import GpuOption

    idle_timeout = 12.0
    monkeypatch.setitem(runpod_emulator.pod_env, "UNSLOTH_NB_WORKER_IDLE_TIMEOUT", f"{idle_timeout:g}")
    fault.inject("orphan probed by 10 new jobs during its idle timeout")
    # Its outputs have nowhere to go, so it waits runpod.keep_uncollected (5 s here) for a collector: probes are none.
    keep = 5.0
    job_id = start_and_kill_client(tiny_model, dataset_file, max_steps=3, until="training", runpod={"keep_uncollected": keep})
    record = JobFolder.open(job_id).load_record()
    assert record.pod_id and not record.owner_alive()

    client = RunPodClient()
    listed = client.get_pod(record.pod_id)
    assert listed is not None
    gpu = GpuOption(listed.gpu_type_id or "", listed.gpu_display_name or "", 80, 1.0, None)
    offers = [Offer(gpu, "SECURE", 1.0, "High")]
    answers: list[str] = []

    def health(pod: Any, token: str) -> Any:
        probe = WorkerClient(proxy_url(pod.id), token, unreachable_after=5.0)
        try:
            answer = probe.health(timeout=5.0)
        finally:
            probe.close()
        if answer is not None:
            answers.append(answer.state)
        return answer

    finished_at: float | None = None
    deadline = time.monotonic() + 300
    while runpod_emulator.ledger.running_pods() and time.monotonic() < deadline:
        # one "new job": the same reuse check a job starting now sends (the worker has a job, so it is not taken)
        assert find_reusable_pod(client, offers, health) is None
        if finished_at is None and answers and answers[-1] in ("succeeded", "failed", "cancelled"):
            finished_at = time.monotonic()
        time.sleep(0.25)  # new jobs in quick succession: 10 probes fit in the idle timeout even on a busy machine
    assert finished_at is not None, f"the worker never reported its job finished: {answers[-5:]}"
    ended_after = time.monotonic() - finished_at
    probes_while_idle = sum(1 for state in answers if state in ("succeeded", "failed", "cancelled"))
    assert probes_while_idle >= 10, answers
    assert runpod_emulator.ledger.running_pods() == [], "the probed orphan is still billing"
    # it ended on its idle timeout and the wait for a collector (plus the poll and the termination), not a probe later
    assert ended_after < idle_timeout + keep + 15, f"ended {ended_after:.0f} s after its job finished"
