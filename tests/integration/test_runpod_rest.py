"""RunPod's REST v2 pod API: our client (``backends/runpod/rest_api.py``) against the emulator's ``/v2`` routes.

Every test drives the real client through the loopback emulator, which serves REST v2
and GraphQL on one account; fault knobs shape the answers (400 capacity or rule, 402,
429 with Retry-After, 5xx, a lost create, a silent terminate, a lookup of a gone pod
that answers null, 404 or an error naming the pod).
"""

from __future__ import annotations

import pytest
import requests

from unsloth_nb.backends.runpod import rest_api
from unsloth_nb.backends.runpod.api_types import (
    API_ENV,
    InsufficientBalanceError,
    OutOfStockError,
    PodSpec,
    RetryPolicy,
    RunPodRuleError,
    chosen_api,
)
from unsloth_nb.backends.runpod.bootstrap import BOOT_ENV, START_COMMAND, boot_env
from unsloth_nb.backends.runpod.client import RunPodClient
from unsloth_nb.backends.runpod.pods import PodLostError, check_alive
from unsloth_nb.errors import ConfigError
from unsloth_nb.testing.runpod_emulator import RunPodEmulator
from unsloth_nb.worker.selfterm import PodIdentity, terminate_this_pod

RTX_4090 = "NVIDIA GeForce RTX 4090"
A6000 = "NVIDIA RTX A6000"


def client(api: str = "rest", slept: list[float] | None = None) -> RunPodClient:
    sink = slept if slept is not None else []
    return RunPodClient(api=api, retry=RetryPolicy(attempts=6, base_delay=0.01, max_delay=5.0), sleep=sink.append)


def spec(name: str = "unsloth-nb-rest", **changes: object) -> PodSpec:
    fields: dict[str, object] = {"name": name, "image": "img", "gpu_type_id": RTX_4090, "docker_args": "exec sleep 600"}
    fields.update(changes)
    return PodSpec(**fields)  # type: ignore[arg-type]


def rest_calls(emulator: RunPodEmulator) -> list[str]:
    return [op for call in emulator.api_calls if call.api == "rest" and not call.from_pod for op in call.operations]


# ---------------------------------------------------------------------- the setting
def test_rest_v2_is_the_default_and_graphql_is_one_setting_away(
    runpod_emulator: RunPodEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(API_ENV, raising=False)
    assert chosen_api() == "rest"
    assert RunPodClient().list_pods() == []
    assert {c.api for c in runpod_emulator.api_calls} == {"rest"}

    monkeypatch.setenv(API_ENV, "graphql")
    before = len(runpod_emulator.api_calls)
    assert RunPodClient().list_pods() == []
    assert {c.api for c in runpod_emulator.api_calls[before:]} == {"graphql"}

    monkeypatch.setenv(API_ENV, "rest-v1")
    with pytest.raises(ConfigError, match=f"{API_ENV}: 'rest-v1' is not a RunPod API"):
        RunPodClient()


# ---------------------------------------------------------------------- shapes
def test_create_sends_the_v2_body_and_reads_the_pod_back(runpod_emulator: RunPodEmulator) -> None:
    rest = client()
    env = {"PLAIN": "x", "TRICKY": 'quote " backslash \\ newline\n ünï 😀'}
    pod = rest.create_pod(
        spec(env=env, min_cuda_version="12.8", data_center_ids=("EU-RO-1",), network_volume_id="vol123", ports="8000/http")
    )
    try:
        info = runpod_emulator.pod(pod.id)
        assert info is not None
        assert (info.env, info.min_cuda_version, info.data_center_ids, info.network_volume_id) == (
            env,
            "12.8",
            ("EU-RO-1",),
            "vol123",
        )
        assert info.docker_args == "exec sleep 600" and [f"{p.container_port}/{p.protocol}" for p in info.ports] == ["8000/http"]
        assert pod.running and pod.gpu_type_id == RTX_4090 and pod.cost_per_hr == pytest.approx(0.69)
        runpod_emulator.wait_for(lambda: (rest.get_pod(pod.id) or pod).runtime_up, timeout=20)
        live = rest.get_pod(pod.id)
        assert live is not None and live.desired_status == "RUNNING" and live.http_ports == (8000,)
        assert live.env == env  # the pod's env reads back (which is why no user secret may be in it)
        assert [p.id for p in rest.pods_named("unsloth-nb-rest")] == [pod.id]
    finally:
        rest.terminate_pod(pod.id, poll=0.05)
    assert rest.get_pod(pod.id) is None
    assert "podFindAndDeployOnDemand" in rest_calls(runpod_emulator) and "podTerminate" in rest_calls(runpod_emulator)


def test_the_create_asks_for_vcpus_and_ram_per_gpu_and_is_sent_as_rendered(runpod_emulator: RunPodEmulator) -> None:
    """REST v2 takes the host floors under ``gpu``, per GPU; the bytes sent are ``create_request``'s, to the byte."""
    rest = client()
    wanted = spec("unsloth-nb-sized", gpu_count=2, min_vcpu_count=40, min_memory_gb=301, min_cuda_version="12.4")
    method, path, body = rest.create_request(wanted)
    pod = rest.create_pod(wanted)
    try:
        info = runpod_emulator.pod(pod.id)
        assert info is not None and info.gpu_count == 2
        assert info.vcpu_count >= 40 and info.memory_gb >= 302  # 20 vCPUs and 151 GB per GPU, rounded up
        assert info.min_cuda_version == "12.4"
        creates = [c for c in runpod_emulator.api_calls if "podFindAndDeployOnDemand" in c.operations]
        assert (method, path) == ("POST", "/v2/pods") and [c.bytes for c in creates] == [len(body.encode())]
    finally:
        rest.terminate_pod(pod.id, poll=0.05)


def test_rest_v1_field_names_are_refused_by_v2(runpod_emulator: RunPodEmulator) -> None:
    """The emulator refuses REST v1's flat ``minVCPUPerGPU`` as v2 does not know it (so a regression shows)."""
    answer = requests.post(
        runpod_emulator.api_base_url + "/v2/pods",
        json={"name": "n", "image": "img", "gpu": {"id": RTX_4090, "count": 1}, "minVCPUPerGPU": 4},
        headers={"Authorization": f"Bearer {rest_key(runpod_emulator)}"},
        timeout=10,
    )
    assert answer.status_code == 422 and "gpu.minVcpuCountPerGpu" in answer.text
    assert runpod_emulator.pods == {}


def test_listing_follows_the_cursor_across_pages(runpod_emulator: RunPodEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rest_api, "PAGE_LIMIT", 2)
    rest = client()
    made = [rest.create_pod(spec(f"unsloth-nb-page-{i}")).id for i in range(5)]
    try:
        listed = rest.list_pods()
        assert sorted(p.id for p in listed) == sorted(made)
        assert rest_calls(runpod_emulator).count("myself") == 3  # pages of 2, 2 and 1
    finally:
        for pod_id in made:
            rest.terminate_pod(pod_id, poll=0.05)


def test_catalogue_reads_price_and_availability_per_cloud(runpod_emulator: RunPodEmulator) -> None:
    runpod_emulator.gpus[A6000].available = 0
    types = {g.id: g for g in client().gpu_types()}
    assert types[RTX_4090].secure_usd_per_hour == pytest.approx(0.69)
    assert types[RTX_4090].community_usd_per_hour == pytest.approx(0.34)
    assert types[RTX_4090].stock("SECURE") == "High" and types[A6000].stock("SECURE") == "None"
    assert types["NVIDIA A40"].community_usd_per_hour is None  # not offered in community cloud
    assert client().gpu_stock(RTX_4090, "COMMUNITY") == ("High", pytest.approx(0.34))
    assert client().gpu_stock("NVIDIA NO SUCH GPU", "SECURE") == ("None", None)


# ---------------------------------------------------------------------- errors
def test_a_400_is_capacity_or_a_rule_and_a_402_is_the_balance(runpod_emulator: RunPodEmulator) -> None:
    rest = client()
    runpod_emulator.faults.out_of_stock = {RTX_4090}
    with pytest.raises(OutOfStockError, match="no longer any instances available"):
        rest.create_pod(spec(env={"SECRETISH": "s3cr3t"}))
    runpod_emulator.faults.out_of_stock = set()

    with pytest.raises(RunPodRuleError) as rule:
        rest.create_pod(spec(min_cuda_version="12.8", allowed_cuda_versions=("12.8",)))
    message = str(rule.value)
    assert "HTTP 400" in message and "mutually exclusive" in message and "gpu.minCudaVersion" in message
    assert "not a capacity problem" in message and "change the runpod setting" in message

    with pytest.raises(OutOfStockError, match="CUDA version"):  # no host is new enough: capacity, not a rule
        rest.create_pod(spec(min_cuda_version="13.1"))

    runpod_emulator.faults.insufficient_balance = 1
    with pytest.raises(InsufficientBalanceError, match=r"HTTP 402.*Add credit at https://www\.runpod\.io/console/user/billing"):
        rest.create_pod(spec())
    assert runpod_emulator.pods == {}


def test_retries_429_after_retry_after_and_5xx_with_jitter(runpod_emulator: RunPodEmulator) -> None:
    slept: list[float] = []
    rest = client(slept=slept)
    runpod_emulator.faults.retry_after_s = 3
    runpod_emulator.faults.update({"rate_limited": {"myself": 2}})
    assert rest.list_pods() == []
    assert slept == [3.0, 3.0]

    slept.clear()
    runpod_emulator.faults.update({"server_errors": {"gpuTypes": 2}, "bad_gateway": {"gpuTypes": 1}})
    assert any(g.id == RTX_4090 for g in rest.gpu_types())
    assert len(slept) == 3 and all(0 <= s <= 0.08 for s in slept)  # full jitter under the capped backoff


def test_problem_answers_are_problem_json(runpod_emulator: RunPodEmulator) -> None:
    base = runpod_emulator.api_base_url
    headers = {"Authorization": f"Bearer {runpod_emulator.api_key}"}
    runpod_emulator.faults.retry_after_s = 7
    runpod_emulator.faults.update({"rate_limited": {"myself": 1}})
    limited = requests.get(f"{base}/v2/pods", headers=headers, timeout=10)
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "7")
    assert limited.headers["Content-Type"] == "application/problem+json"
    assert limited.json() == {"title": "Too Many Requests", "status": 429, "detail": "rate limit exceeded for the minute window"}
    for path, status in [
        ("/v2/pods?cursor=nonsense!", 422),
        ("/v2/pods?limit=1001", 422),
        ("/v2/catalog/gpus?include=AVAILABILITY", 400),
        ("/v2/pods/nosuchpod", 404),
        ("/v2/nothing", 404),
    ]:
        answer = requests.get(base + path, headers=headers, timeout=10)
        assert (path, answer.status_code, answer.json()["status"]) == (path, status, status)
    assert requests.get(f"{base}/v2/pods", timeout=10).status_code == 401


def test_a_lost_create_answer_adopts_the_pod_and_a_silent_terminate_is_resent(runpod_emulator: RunPodEmulator) -> None:
    rest = client()
    runpod_emulator.faults.update({"server_errors": {"podFindAndDeployOnDemand": 1}, "lost_creates": 1})
    pod = rest.create_pod(spec("unsloth-nb-once"))
    assert [p.name for p in runpod_emulator.pods.values()] == ["unsloth-nb-once"]
    assert len(runpod_emulator.ledger.pod_ids()) == 1

    runpod_emulator.faults.update({"silent_terminate_failures": 2, "rate_limited": {"podTerminate": 1}})
    rest.terminate_pod(pod.id, poll=0.05, resend_every=0.2)
    assert runpod_emulator.pod(pod.id) is None and runpod_emulator.ledger.running_pods() == []
    assert runpod_emulator.faults.silent_terminate_failures == 0


# ---------------------------------------------------------------------- a lost pod
@pytest.mark.parametrize("api", ["rest", "graphql"])
@pytest.mark.parametrize("gone_as", ["usual", "null", "404", "error"])
def test_a_gone_pod_is_declared_lost_whatever_the_lookup_answers(runpod_emulator: RunPodEmulator, api: str, gone_as: str) -> None:
    rest = client(api)
    pod = rest.create_pod(spec(f"unsloth-nb-gone-{api}-{gone_as}"))
    check_alive(rest, pod.id)  # alive: no verdict
    runpod_emulator.faults.lookup_gone_as = gone_as
    runpod_emulator.evict(pod.id, remove=True)
    assert rest.get_pod(pod.id) is None
    with pytest.raises(PodLostError, match=f"pod {pod.id} is gone"):
        check_alive(rest, pod.id)


def test_api_trouble_is_not_a_verdict_on_the_pod(runpod_emulator: RunPodEmulator) -> None:
    rest = RunPodClient(retry=RetryPolicy(attempts=2, base_delay=0.01), sleep=lambda s: None)
    pod = rest.create_pod(spec("unsloth-nb-flaky"))
    try:
        runpod_emulator.faults.update({"server_errors": {"pod": 2}})
        check_alive(rest, pod.id)  # two 500s: the client gives up, the pod is not declared lost
    finally:
        rest.terminate_pod(pod.id, poll=0.05)


# ---------------------------------------------------------------------- the pod ends itself
def test_a_pod_terminates_itself_through_rest_v2_with_its_own_key(runpod_emulator: RunPodEmulator) -> None:
    rest = client()
    mine = rest.create_pod(spec("unsloth-nb-self"))
    other = rest.create_pod(spec("unsloth-nb-other"))
    try:
        mine_key = runpod_emulator.pod(mine.id).api_key  # type: ignore[union-attr]
        base = runpod_emulator.api_base_url
        # A pod key may not end another pod (and nothing falls back to anything broader).
        assert not terminate_this_pod(PodIdentity(other.id, mine_key, base), retry_delays=())
        assert runpod_emulator.pod(other.id) is not None

        runpod_emulator.faults.update({"rate_limited": {"podTerminate": 1}, "server_errors": {"podTerminate": 1}})
        runpod_emulator.faults.retry_after_s = 0
        assert terminate_this_pod(PodIdentity(mine.id, mine_key, base), retry_delays=(0.01, 0.01, 0.01))
        assert runpod_emulator.pod(mine.id) is None
        sent = [c for c in runpod_emulator.api_calls if c.from_pod]
        assert sent and {c.api for c in sent} == {"rest"} and {op for c in sent for op in c.operations} == {"podTerminate"}
        # Already gone counts as done.
        assert terminate_this_pod(PodIdentity(mine.id, rest_key(runpod_emulator), base), retry_delays=())
    finally:
        rest.terminate_pod(other.id, poll=0.05)


def rest_key(emulator: RunPodEmulator) -> str:
    return str(emulator.api_key)


# ---------------------------------------------------------------------- the boot script's fallbacks
@pytest.mark.parametrize("broken", ["start-command", "boot-script"])
def test_a_pod_whose_boot_fails_ends_itself_through_rest_v2(runpod_emulator: RunPodEmulator, broken: str) -> None:
    """With GraphQL and REST v1 gone, the start command and the boot script still end a pod that cannot boot."""
    env = boot_env()
    if broken == "start-command":
        env[BOOT_ENV] = "%%% not base64 %%%"  # the start command's own fallback runs
    else:
        env["UNSLOTH_NB_WORKER_IDLE_TIMEOUT"] = "2"  # no client sends the package: stage 0 gives up, the script ends the pod
    rest = client()
    pod = rest.create_pod(spec(f"unsloth-nb-boot-{broken}", env=env, docker_args=START_COMMAND))
    runpod_emulator.wait_for(lambda: runpod_emulator.pod(pod.id) is None, timeout=60)
    sent = [c for c in runpod_emulator.api_calls if c.from_pod]
    assert [(c.api, c.operations) for c in sent] == [("rest", ("podTerminate",))]


# ---------------------------------------------------------------------- spot
def test_a_spot_pod_is_rented_through_graphql_at_the_live_bid_floor(runpod_emulator: RunPodEmulator) -> None:
    """REST v2 has no spot pods: a spot create (and its price) go through GraphQL whatever the API setting."""
    rest = client("rest")
    bid = rest.spot_bid(RTX_4090, "SECURE")
    assert bid == runpod_emulator.gpus[RTX_4090].spot_price("SECURE")
    pod = rest.create_pod(spec("unsloth-nb-spot", interruptible=True, bid_per_gpu=bid))
    try:
        info = runpod_emulator.pod(pod.id)
        assert info is not None and info.pod_type == "INTERRUPTABLE" and info.cost_per_hr == bid
        creates = [c for c in runpod_emulator.api_calls if "podRentInterruptable" in c.operations]
        assert [c.api for c in creates] == ["graphql"]
        assert rest.get_pod(pod.id) is not None  # everything else stays on REST v2
    finally:
        rest.terminate_pod(pod.id, poll=0.05)
