"""The RunPod backend against the RunPod emulator, through the unmodified ``runpod`` SDK.

Pods here are local processes started by the emulator from the very start command a
real pod gets (the bootstrap unpacks our package and runs the real worker), reached
through the emulator's proxy. Every test ends with the emulator's ledger showing no
pod billing (the fixture fails the test otherwise).
"""

from __future__ import annotations

import http.client
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fixtures import tiny_job

from unsloth_nb.backends.runpod.api_types import OutOfStockError, PodSpec, RetryPolicy, RunPodAuthError
from unsloth_nb.backends.runpod.boot_link import PackageDelivery
from unsloth_nb.backends.runpod.bootstrap import START_COMMAND, boot_env
from unsloth_nb.backends.runpod.client import RunPodClient
from unsloth_nb.backends.runpod.pods import (
    Offer,
    RentedPod,
    live_offers,
    pod_name,
    provision,
    proxy_url,
)
from unsloth_nb.backends.worker_link.client import WorkerClient
from unsloth_nb.jobrun.events import read_events_file
from unsloth_nb.planning.gpu_catalog import GPU_CATALOG, GpuOption
from unsloth_nb.testing.runpod_emulator import RunPodEmulator
from unsloth_nb.worker.settings import TOKEN_ENV

pytestmark = pytest.mark.timeout(300)

RTX_4090 = "NVIDIA GeForce RTX 4090"
A6000 = "NVIDIA RTX A6000"
TOKEN = "test-token-0123456789abcdef"


# ---------------------------------------------------------------------- helpers
def gpu(gpu_type_id: str) -> GpuOption:
    return next(g for g in GPU_CATALOG if g.gpu_type_id == gpu_type_id)


def quick_client() -> RunPodClient:
    return RunPodClient(retry=RetryPolicy(attempts=6, base_delay=0.01, max_delay=1.0), sleep=lambda s: None)


def worker_pod_spec(name: str, gpu_type_id: str = RTX_4090) -> PodSpec:
    """What the backend creates: the real start command, our package, the worker's token."""
    env = {TOKEN_ENV: TOKEN, **boot_env()}
    return PodSpec(name=name, image="runpod/pytorch:test", gpu_type_id=gpu_type_id, env=env, docker_args=START_COMMAND)


def raw_get(url: str, path: str, headers: dict[str, str] | None = None) -> int:
    """GET a path exactly as written (no client-side ``..`` clean-up), returning the status."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request("GET", parts.path.rstrip("/") + path, headers=headers or {})
        return connection.getresponse().status
    finally:
        connection.close()


# ---------------------------------------------------------------------- the whole job
def test_tiny_job_trains_on_an_emulated_pod(
    runpod_emulator: RunPodEmulator, tiny_model: Path, dataset_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_test_secret_value_0123456789")
    seen_tokens: list[str] = []
    job = tiny_job("runpod", tiny_model, dataset_file)

    def grab_token(event: Any) -> None:
        if event.kind == "status" and event.data.get("state") == "uploading" and job.record.pod_id:
            info = runpod_emulator.pod(job.record.pod_id)
            if info is not None:
                seen_tokens.append(info.env[TOKEN_ENV])
                assert "HF_TOKEN" not in info.env  # it travels in the job request, never in pod env

    job.log.subscribe(grab_token)
    job.wait(timeout=280)

    assert job.state == "succeeded", job.error
    events = job.events()
    assert [e.seq for e in events] == list(range(len(events)))
    states = [e["state"] for e in events if e.kind == "status"]
    assert states == [
        "created",
        "planning",
        "provisioning",
        "starting",
        "uploading",
        "starting",
        "training",
        "saving",
        "downloading",
        "terminating",
        "succeeded",
    ]

    # Every event the worker logged arrived once, in order, none missing.
    pod_id = job.record.pod_id
    assert pod_id and job.record.gpu
    remote = list(read_events_file(runpod_emulator.workdir / "pods" / pod_id / "unsloth-nb-worker" / "events.jsonl"))
    assert [e.seq for e in remote] == list(range(len(remote)))
    copied = {"metrics", "progress", "checkpoint", "artifact", "log", "summary", "error"}
    remote_copied = [(e.kind, e.data.get("step"), e.data.get("message"), e.data.get("name")) for e in remote if e.kind in copied]
    local_from_pod = [
        (e.kind, e.data.get("step"), e.data.get("message"), e.data.get("name"))
        for e in events
        if e.kind in copied and e.data.get("source") not in ("runpod", "planner", "controller") and "rows" not in e.data
    ]
    assert local_from_pod == remote_copied
    assert [e["step"] for e in events if e.kind == "metrics"] == [1, 2, 3, 4]
    remote_states = [e["state"] for e in remote if e.kind == "status" and e["state"] in ("starting", "training", "saving")]
    assert remote_states == ["starting", "training", "saving"]

    # Cost ticks from the pod's real $/h, and ends with the final figure.
    costs = [e for e in events if e.kind == "cost"]
    # The pod is the cheapest planned card RunPod lists, billed at its live price.
    first_listed = next(g for g in job.plan.gpu_candidates if g.gpu_type_id in runpod_emulator.gpus).gpu_type_id
    assert costs and costs[-1]["usd_per_hour"] == pytest.approx(runpod_emulator.gpus[first_listed].secure_price)
    assert costs[-1]["usd_so_far"] == pytest.approx(runpod_emulator.ledger.pod_usd(pod_id), rel=0.5, abs=1e-4)

    # The adapter was downloaded intact and loads.
    adapter = job.adapter_path
    assert adapter is not None and (adapter / "adapter_config.json").is_file()
    from unsloth_nb.engine import generate, load_for_inference

    model, tokenizer = load_for_inference(adapter, max_seq_length=512)
    assert isinstance(generate(model, tokenizer, "Who won Super Bowl LIX?", max_new_tokens=4), str)

    # The job folder names the pod, and no secret reached it.
    pod_record = job.folder.read_json("pod.json")
    assert pod_record["pod_id"] == pod_id and pod_record["name"] == pod_name(job.id) and pod_record["terminated"]
    assert seen_tokens
    for path in job.folder.path.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".jsonl"):
            text = path.read_text(encoding="utf-8")
            assert seen_tokens[0] not in text and "hf_test_secret_value" not in text, path
    assert runpod_emulator.pod(pod_id) is None
    assert runpod_emulator.ledger.running_pods() == []

    # The image's torch and CUDA are logged at boot: by the client from stage 0, and by the worker.
    booting = [e["message"] for e in events if e.kind == "log" and "is booting: torch " in e["message"]]
    assert len(booting) == 1 and "CUDA" in booting[0]
    assert [e for e in events if e.kind == "log" and e.get("source") == "pod" and e["message"].startswith("pod: torch ")]

    ready = next(e.time for e in events if e.kind == "log" and "worker ready" in e["message"])
    first_loss = next(e.time for e in events if e.kind == "metrics" and e.get("loss") is not None)
    print(f"\nworker ready -> first loss on the client: {first_loss - ready:.1f} s")


def test_stop_during_training_ends_the_pod_within_30_s(
    runpod_emulator: RunPodEmulator, tiny_model: Path, dataset_file: Path
) -> None:
    job = tiny_job("runpod", tiny_model, dataset_file, train={"max_steps": 500})
    deadline = time.monotonic() + 240
    while not any(e.kind == "metrics" for e in job.events()):
        assert not job.done, job.error
        assert time.monotonic() < deadline, "no training step within 240 s"
        time.sleep(0.2)

    stopped_at = time.monotonic()
    job.cancel()
    runpod_emulator.wait_for(lambda: not runpod_emulator.ledger.running_pods(), timeout=30)
    assert time.monotonic() - stopped_at < 30
    job.wait(timeout=30)

    assert job.state == "cancelled"
    assert "stopped by the user" in (job.events(kinds={"status"})[-1].get("reason") or "")
    assert job.adapter_path is not None and (job.adapter_path / "adapter_config.json").is_file()
    assert job.checkpoint_path is not None and job.checkpoint_path.is_dir()
    assert runpod_emulator.pod(job.record.pod_id) is None


def test_budget_limit_ends_the_job_and_the_pod(runpod_emulator: RunPodEmulator, tiny_model: Path, dataset_file: Path) -> None:
    job = tiny_job("runpod", tiny_model, dataset_file, runpod={"max_cost_usd": 0.0001})
    job.wait(timeout=120)

    assert job.state == "cancelled"
    reason = job.events(kinds={"status"})[-1].get("reason") or ""
    assert "runpod.max_cost_usd" in reason and "$0.0001" in reason
    assert [e["state"] for e in job.events(kinds={"status"})][-2] == "terminating"
    assert runpod_emulator.ledger.running_pods() == []


# ---------------------------------------------------------------------- choosing and creating pods
def test_falls_back_to_the_next_gpu_when_one_is_out_of_stock(runpod_emulator: RunPodEmulator) -> None:
    client = quick_client()
    runpod_emulator.gpus[A6000].available = 0  # RunPod's stockStatus says so: tried last
    runpod_emulator.faults.out_of_stock = {RTX_4090}  # stock looks fine, but the create is refused
    offers = live_offers(client, [gpu(RTX_4090), gpu(A6000), gpu("NVIDIA A40")])
    assert [o.gpu.gpu_type_id for o in offers] == [RTX_4090, "NVIDIA A40", A6000]
    assert offers[-1].stock == "None"

    created: list[RentedPod] = []
    rented = provision(
        client,
        PodSpec(name="unsloth-nb-fallback", image="img", gpu_type_id="", docker_args="exec sleep 600"),
        offers,
        is_ready=lambda pod: True,
        on_created=created.append,
        on_abandoned=lambda pod, why: None,
        should_stop=lambda: False,
        ready_timeout=10,
    )
    try:
        assert rented.offer.gpu.gpu_type_id == "NVIDIA A40"
        assert runpod_emulator.pod(rented.id).gpu_type_id == "NVIDIA A40"
        assert rented.usd_per_hour == pytest.approx(0.44)
        assert [p.id for p in created] == [rented.id]
    finally:
        client.terminate_pod(rented.id, poll=0.1)


def test_community_cloud_only_when_allowed(runpod_emulator: RunPodEmulator) -> None:
    client = quick_client()
    runpod_emulator.gpus[RTX_4090].secure_price = None  # only offered in Community Cloud
    assert live_offers(client, [gpu(RTX_4090)], "SECURE", allow_community=False) == []
    with pytest.raises(OutOfStockError, match="allow-community"):
        provision(
            client,
            PodSpec(name="unsloth-nb-secure", image="img", gpu_type_id=""),
            [],
            is_ready=lambda pod: True,
            on_created=lambda pod: None,
            on_abandoned=lambda pod, why: None,
            should_stop=lambda: False,
            ready_timeout=10,
        )

    offers = live_offers(client, [gpu(RTX_4090)], "SECURE", allow_community=True)
    assert [(o.gpu.gpu_type_id, o.cloud_type, o.usd_per_hour) for o in offers] == [(RTX_4090, "COMMUNITY", 0.34)]
    pod = client.create_pod(PodSpec(name="unsloth-nb-community", image="img", gpu_type_id=RTX_4090, cloud_type="COMMUNITY"))
    try:
        assert runpod_emulator.pod(pod.id).cloud_type == "COMMUNITY"
    finally:
        client.terminate_pod(pod.id, poll=0.1)


def test_quotes_newlines_and_backslashes_survive_in_names_env_and_commands(
    runpod_emulator: RunPodEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    client = quick_client()
    name = 'unsloth-nb-esc "quoted" \\ back\nslash'
    env = {"PLAIN": "x", "TRICKY": 'he said "hi"\nand left \\ with ünïcödé 😀', "SECRETISH": "s3cr3t-'value'"}
    command = "bash -c 'echo \"$TRICKY\" > tricky.txt; exec sleep 600'"
    pod = client.create_pod(PodSpec(name=name, image='img:"1"', gpu_type_id=RTX_4090, env=env, docker_args=command))
    try:
        info = runpod_emulator.pod(pod.id)
        assert (info.name, info.env, info.docker_args, info.image_name) == (name, env, command, 'img:"1"')
        assert [p.id for p in client.pods_named(name)] == [pod.id]
        runpod_emulator.wait_for(lambda: (info.home / "tricky.txt").exists(), timeout=20)
        assert (info.home / "tricky.txt").read_text(encoding="utf-8") == env["TRICKY"] + "\n"
    finally:
        client.terminate_pod(pod.id, poll=0.1)

    # A refused create says what happened, and never shows the query (it holds env values).
    runpod_emulator.faults.out_of_stock = {RTX_4090}
    with pytest.raises(OutOfStockError) as refused:
        client.create_pod(PodSpec(name="unsloth-nb-nostock", image="img", gpu_type_id=RTX_4090, env=env))
    assert "no longer any instances available" in str(refused.value)
    assert "s3cr3t" not in str(refused.value) and "s3cr3t" not in caplog.text


# ---------------------------------------------------------------------- retries and termination
def test_retries_429_and_5xx_honouring_retry_after(runpod_emulator: RunPodEmulator) -> None:
    slept: list[float] = []
    client = RunPodClient(retry=RetryPolicy(attempts=6, base_delay=0.01), sleep=slept.append)
    runpod_emulator.faults.retry_after_s = 3
    runpod_emulator.faults.update({"rate_limited": {"myself": 2}})
    assert client.list_pods() == []
    assert slept == [3.0, 3.0]

    slept.clear()
    runpod_emulator.faults.update({"server_errors": {"gpuTypes": 2}, "bad_gateway": {"gpuTypes": 1}})
    assert any(g.id == RTX_4090 for g in client.gpu_types())
    assert len(slept) == 3 and all(s <= 0.1 for s in slept)

    # A create whose first try failed with a 5xx and whose second answer was lost: exactly one pod.
    runpod_emulator.faults.update({"server_errors": {"podFindAndDeployOnDemand": 1}, "lost_creates": 1})
    pod = client.create_pod(PodSpec(name="unsloth-nb-once", image="img", gpu_type_id=RTX_4090))
    try:
        assert [p.name for p in runpod_emulator.pods.values()] == ["unsloth-nb-once"]
        assert len(runpod_emulator.ledger.pod_ids()) == 1
    finally:
        client.terminate_pod(pod.id, poll=0.1)


def test_bad_key_is_reported_without_retrying(runpod_emulator: RunPodEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", "rpa_WRONG_KEY")
    slept: list[float] = []
    with pytest.raises(RunPodAuthError, match="RUNPOD_API_KEY"):
        RunPodClient(sleep=slept.append).list_pods()
    assert slept == []


def test_terminate_is_confirmed_even_when_the_sdk_call_silently_fails(runpod_emulator: RunPodEmulator) -> None:
    client = quick_client()
    pod = client.create_pod(PodSpec(name="unsloth-nb-stubborn", image="img", gpu_type_id=RTX_4090))
    runpod_emulator.faults.update({"silent_terminate_failures": 2, "rate_limited": {"podTerminate": 1}})

    import runpod

    assert runpod.terminate_pod(pod.id) is None  # the SDK "succeeds" on the 429...
    assert runpod_emulator.pod(pod.id) is not None  # ...and nothing happened
    client.terminate_pod(pod.id, poll=0.05, resend_every=0.2)
    assert runpod_emulator.pod(pod.id) is None
    assert runpod_emulator.ledger.running_pods() == []
    assert runpod_emulator.faults.silent_terminate_failures == 0


# ---------------------------------------------------------------------- readiness and the worker
def test_readiness_deadline_terminates_the_pod_and_tries_the_next_gpu(runpod_emulator: RunPodEmulator) -> None:
    client = quick_client()
    runpod_emulator.faults.never_ready = 1
    offers = [Offer(gpu(RTX_4090), "SECURE", 0.69, "High"), Offer(gpu(A6000), "SECURE", 0.49, "High")]
    abandoned: list[tuple[str, str]] = []
    created: list[RentedPod] = []

    delivery = PackageDelivery(lambda message: None)

    def healthy(rented: RentedPod) -> bool:
        worker = WorkerClient(rented.url, TOKEN)
        try:
            return delivery.ready(worker, rented.id)
        finally:
            worker.close()

    started = time.monotonic()
    rented = provision(
        client,
        worker_pod_spec("unsloth-nb-readiness"),
        offers,
        is_ready=healthy,
        on_created=created.append,
        on_abandoned=lambda pod, why: abandoned.append((pod.id, why)),
        should_stop=lambda: False,
        ready_timeout=3,
        poll=0.2,
    )
    try:
        assert rented.offer.gpu.gpu_type_id == A6000
        assert len(created) == 2 and abandoned[0][0] == created[0].id
        assert "did not answer its health check within 3 s" in abandoned[0][1]
        assert runpod_emulator.pod(created[0].id) is None
        assert time.monotonic() - started < 60
    finally:
        client.terminate_pod(rented.id, poll=0.1)


def test_worker_refuses_missing_and_wrong_tokens_and_path_traversal(runpod_emulator: RunPodEmulator) -> None:
    client = quick_client()
    pod = client.create_pod(worker_pod_spec("unsloth-nb-auth"))
    try:
        url = proxy_url(pod.id)
        worker = WorkerClient(url, TOKEN)
        delivery = PackageDelivery(lambda message: None)
        runpod_emulator.wait_for(lambda: delivery.ready(worker, pod.id), timeout=60, interval=0.2)
        assert raw_get(url, "/health") == 401
        assert raw_get(url, "/health", {"Authorization": "Bearer wrong-token-0123456789"}) == 401
        assert raw_get(url, "/artifacts", {"Authorization": "Bearer "}) == 401
        good = {"Authorization": f"Bearer {TOKEN}"}
        assert raw_get(url, "/health", good) == 200
        assert raw_get(url, "/artifacts/../job.json", good) == 403
        assert raw_get(url, "/artifacts/%2e%2e/%2e%2e/etc/passwd", good) == 403
        assert raw_get(url, "/artifacts/adapter/../../worker.log", good) == 403
        worker.close()
    finally:
        client.terminate_pod(pod.id, poll=0.1)


def test_importing_the_backend_does_not_import_the_sdk() -> None:
    code = "import sys, unsloth_nb, unsloth_nb.backends.runpod, unsloth_nb.backends.runpod.cli; print('runpod' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False"


def test_an_idle_worker_left_by_a_finished_job_is_reused(runpod_emulator: RunPodEmulator) -> None:
    from unsloth_nb.backends.runpod.pods import find_reusable_pod
    from unsloth_nb.jobrun.store import JobFolder, JobRecord

    client = quick_client()
    old_job = "20261128-100000-gone"
    pod = client.create_pod(worker_pod_spec(pod_name(old_job)))
    offers = live_offers(client, [gpu(RTX_4090), gpu(A6000)])

    def health(found: Any, token: str) -> dict[str, object] | None:
        worker = WorkerClient(proxy_url(found.id), token)
        try:
            return worker.health(timeout=5)
        finally:
            worker.close()

    try:
        worker = WorkerClient(proxy_url(pod.id), TOKEN)
        delivery = PackageDelivery(lambda message: None)
        runpod_emulator.wait_for(lambda: delivery.ready(worker, pod.id), timeout=60, interval=0.2)
        worker.close()
        assert find_reusable_pod(client, offers, health) is None  # no job record here: maybe another machine's

        record = JobRecord(id=old_job, model="m", dataset="d", placement="runpod", state="training", pod_id=pod.id)
        folder = JobFolder.create(record, {})
        assert find_reusable_pod(client, offers, health) is None  # its job is still running

        record.state = "failed"
        folder.save_record(record)
        found = find_reusable_pod(client, offers, health)
        assert found is not None
        reused, offer, token = found
        assert (reused.id, offer.gpu.gpu_type_id, token) == (pod.id, RTX_4090, TOKEN)
        assert find_reusable_pod(client, [o for o in offers if o.gpu.gpu_type_id == A6000], health) is None
    finally:
        client.terminate_pod(pod.id, poll=0.1)


EXITING_CLIENT = """
import sys, time
import unsloth_nb

train = {"max_steps": 500, "batch_size": 2, "grad_accum": 1, "max_seq_length": 512, "warmup_steps": 0}
job = unsloth_nb.train(model=sys.argv[1], dataset=sys.argv[2], placement="runpod", train=train, lora={"r": 8, "alpha": 8})
deadline = time.monotonic() + 240
while not job.metrics():
    if job.done or time.monotonic() > deadline:
        print("no training step:", job.state, job.error, flush=True)
        sys.exit(3)
    time.sleep(0.2)
print("training", job.id, flush=True)
# The script ends here with the job still training: the interpreter exits, as a closed kernel does.
"""


def test_a_client_process_that_exits_mid_training_terminates_its_pod(
    runpod_emulator: RunPodEmulator, tiny_model: Path, dataset_file: Path
) -> None:
    from unsloth_nb.jobrun.store import JobFolder

    client = subprocess.Popen(
        [sys.executable, "-c", EXITING_CLIENT, str(tiny_model), str(dataset_file)], stdout=subprocess.PIPE, text=True
    )
    assert client.stdout is not None
    line = client.stdout.readline()
    assert line.startswith("training"), line
    exiting = time.monotonic()
    assert client.wait(timeout=120) == 0
    print(f"\nexit with a job training -> pod confirmed gone: {time.monotonic() - exiting:.1f} s")

    assert runpod_emulator.ledger.running_pods() == []
    record = JobFolder.open(line.split()[1]).load_record()
    assert record.state == "cancelled" and record.pod_id and runpod_emulator.pod(record.pod_id) is None
    events = list(read_events_file(JobFolder.open(record.id).events_path))
    assert events[-1].data.get("reason") == "the Python process is exiting"
    assert [e["state"] for e in events if e.kind == "status"][-2:] == ["terminating", "cancelled"]
