"""The RunPod emulator, driven through the unmodified ``runpod`` SDK as our backend will drive it.

Each test gets a fresh emulator (the ``runpod_emulator`` fixture) whose teardown
fails the test if any pod is still billing, so every test ends its pods.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import runpod
from runpod.api.graphql import run_graphql_query
from runpod.error import AuthenticationError, QueryError

from unsloth_nb.testing import pytest_runpod
from unsloth_nb.testing.runpod_emulator import NO_GPUS_TO_RESUME, NOT_FOUND_TO_TERMINATE, OUT_OF_STOCK, RunPodEmulator
from unsloth_nb.testing.runpod_emulator.admin import emulator_state, evict_pod, reset_faults, set_faults

runpod_emulator = pytest_runpod.runpod_emulator  # the fixture, until tests/conftest.py provides it
FAKE_API_KEY = pytest_runpod.FAKE_API_KEY
H100 = "NVIDIA H100 80GB HBM3"
RTX4090 = "NVIDIA GeForce RTX 4090"
REQUIRED_GPUS = {
    RTX4090,
    "NVIDIA RTX A6000",
    "NVIDIA A40",
    "NVIDIA L40S",
    "NVIDIA A100 80GB PCIe",
    "NVIDIA A100-SXM4-80GB",
    "NVIDIA H100 PCIe",
    H100,
    "NVIDIA H100 NVL",
    "NVIDIA H200",
}

# A pod's HTTP app: listens where the emulator says (as our worker will), and answers
# what the tests need to see through the proxy.
APP = r"""
import json, os, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

DATA = b"0123456789"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body, headers=()):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def chunk(self, piece):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        self.wfile.flush()

    def do_GET(self):
        if self.path.startswith("/env/"):
            self.answer(200, os.environ.get(self.path[5:], "<unset>").encode())
        elif self.path == "/headers":
            self.answer(200, json.dumps(dict(self.headers)).encode())
        elif self.path == "/file":
            ranged = self.headers.get("Range")
            if ranged:
                start, end = (int(n) for n in ranged.split("=")[1].split("-"))
                self.answer(206, DATA[start : end + 1], [("Content-Range", f"bytes {start}-{end}/{len(DATA)}")])
            else:
                self.answer(200, DATA)
        elif self.path == "/stream":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.chunk(b"first;")
            while not Path("go").exists():
                time.sleep(0.02)
            self.chunk(b"second")
            self.wfile.write(b"0\r\n\r\n")
        elif self.path.startswith("/sleep/"):
            time.sleep(float(self.path[len("/sleep/"):]))
            self.answer(200, b"late")
        else:
            self.answer(404, b"no such page")

    def do_POST(self):
        self.answer(200, self.rfile.read(int(self.headers.get("Content-Length") or 0)))


address = (os.environ.get("UNSLOTH_NB_EMULATOR_HOST", "0.0.0.0"), int(os.environ.get("UNSLOTH_NB_EMULATOR_PORT_8000", "8000")))
ThreadingHTTPServer(address, Handler).serve_forever()
"""


@pytest.fixture
def app_command(tmp_path: Path) -> str:
    """A start command that serves :data:`APP` on container port 8000."""
    script = tmp_path / "app.py"
    script.write_text(APP)
    return f"python {script}"


def create(name: str = "unsloth-nb-test", docker_args: str = "sleep 600", gpu: str = RTX4090, **kwargs: object) -> str:
    pod = runpod.create_pod(name, "runpod/pytorch:test", gpu, docker_args=docker_args, ports="8000/http,22/tcp", **kwargs)
    return str(pod["id"])


def escape(text: str) -> str:
    """What our client adapter does to every free-text value before the SDK inlines it."""
    return json.dumps(text)[1:-1]


def status(url: str, **kwargs: object) -> int | None:
    try:
        return requests.get(url, timeout=10, **kwargs).status_code  # type: ignore[arg-type]
    except requests.ConnectionError:
        return None


def wait_serving(emulator: RunPodEmulator, pod_id: str) -> str:
    """Wait until the pod's app answers through the proxy; returns its proxy base URL."""
    base = emulator.proxy_url(pod_id, 8000)
    emulator.wait_for(lambda: status(f"{base}/env/HOME") == 200, timeout=30)
    return base


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def terminate_and_confirm(emulator: RunPodEmulator, pod_id: str) -> None:
    runpod.terminate_pod(pod_id)
    emulator.wait_for(lambda: runpod.get_pod(pod_id) is None, timeout=10)


# ---- catalogue --------------------------------------------------------------------------


def test_gpu_catalogue_lists_real_ids_prices_and_stock(runpod_emulator: RunPodEmulator) -> None:
    gpus = {gpu["id"]: gpu for gpu in runpod.get_gpus()}
    assert set(gpus) >= REQUIRED_GPUS
    assert gpus[H100] == {"id": H100, "displayName": "H100 SXM", "memoryInGb": 80}

    detail = runpod.get_gpu(H100)
    assert detail["securePrice"] == 2.99 and detail["communityPrice"] == 2.69
    assert detail["lowestPrice"]["uninterruptablePrice"] == 2.69
    assert 0 < detail["lowestPrice"]["minimumBidPrice"] < 2.69
    with pytest.raises(ValueError, match="No GPU found"):
        runpod.get_gpu("NVIDIA GeForce GTX 1080")

    stock_query = f'query {{ gpuTypes(input: {{id: "{H100}"}}) {{ lowestPrice(input: {{gpuCount: 1, secureCloud: true}}) {{ stockStatus uninterruptablePrice }} }} }}'
    assert run_graphql_query(stock_query)["data"]["gpuTypes"][0]["lowestPrice"] == {
        "stockStatus": "High",
        "uninterruptablePrice": 2.99,
    }
    runpod_emulator.gpus[H100].available = 0
    assert run_graphql_query(stock_query)["data"]["gpuTypes"][0]["lowestPrice"]["stockStatus"] is None


# ---- pod lifecycle ----------------------------------------------------------------------


def test_pod_starts_after_delay_and_serves_through_the_proxy(runpod_emulator: RunPodEmulator, app_command: str) -> None:
    runpod_emulator.start_delay = 1.0
    created = runpod.create_pod(
        "unsloth-nb-job1",
        "runpod/pytorch:test",
        RTX4090,
        cloud_type="SECURE",
        docker_args=app_command,
        ports="8000/http,22/tcp",
        env={"HF_TOKEN": "hf_secret value"},
    )
    pod_id = created["id"]
    assert len(pod_id) == 14 and pod_id.isalnum()
    assert created["env"] == ["HF_TOKEN=hf_secret value"] and created["machine"]["podHostId"].startswith(pod_id + "-")

    pod = runpod.get_pod(pod_id)
    assert (pod["desiredStatus"], pod["runtime"], pod["name"], pod["costPerHr"]) == ("RUNNING", None, "unsloth-nb-job1", 0.69)
    assert pod["machine"]["gpuDisplayName"] == "RTX 4090" and pod["gpuCount"] == 1

    base = wait_serving(runpod_emulator, pod_id)
    runtime = runpod.get_pod(pod_id)["runtime"]
    http_port = next(p for p in runtime["ports"] if p["privatePort"] == 8000)
    assert http_port["type"] == "http" and not http_port["isIpPublic"]
    assert next(p for p in runtime["ports"] if p["privatePort"] == 22)["isIpPublic"]
    assert [p["id"] for p in runpod.get_pods()] == [pod_id]

    # The pod's env, plus what RunPod injects, reaches the process; the test's own environment does not.
    assert requests.get(f"{base}/env/HF_TOKEN", timeout=10).text == "hf_secret value"
    assert requests.get(f"{base}/env/RUNPOD_POD_ID", timeout=10).text == pod_id
    assert requests.get(f"{base}/env/RUNPOD_API_BASE_URL", timeout=10).text == runpod_emulator.api_base_url
    pod_key = requests.get(f"{base}/env/RUNPOD_API_KEY", timeout=10).text
    assert pod_key.startswith("rpa_") and pod_key != FAKE_API_KEY
    assert requests.get(f"{base}/env/UNSLOTH_NB_EMULATOR_PORT_8000", timeout=10).text == str(http_port["publicPort"])
    assert requests.get(f"{base}/env/RUNPOD_TCP_PORT_22", timeout=10).text.isdigit()
    assert requests.get(f"{base}/env/UNSLOTH_NB_HOME", timeout=10).text == "<unset>"

    # The proxy passes methods, bodies, headers and Range, and streams.
    assert requests.post(f"{base}/echo", data=b"x" * 200_000, timeout=10).content == b"x" * 200_000
    ranged = requests.get(f"{base}/file", headers={"Range": "bytes=2-4"}, timeout=10)
    assert (ranged.status_code, ranged.content, ranged.headers["Content-Range"]) == (206, b"234", "bytes 2-4/10")
    assert json.loads(requests.get(f"{base}/headers", headers={"X-Job-Token": "t0k"}, timeout=10).text)["X-Job-Token"] == "t0k"
    with requests.get(f"{base}/stream", stream=True, timeout=10) as streamed:
        pieces = streamed.iter_content(chunk_size=None)
        assert next(pieces) == b"first;"  # arrives while the app still waits for the go-ahead
        (runpod_emulator.pods[pod_id].home / "go").touch()
        assert b"".join(pieces) == b"second"

    assert "container start #1" in runpod_emulator.log(pod_id)
    terminate_and_confirm(runpod_emulator, pod_id)
    assert pod_id not in [p["id"] for p in runpod.get_pods()]
    assert status(f"{base}/env/HOME") == 404


def test_stop_resume_terminate(runpod_emulator: RunPodEmulator, app_command: str) -> None:
    pod_id = create(docker_args=app_command)
    base = wait_serving(runpod_emulator, pod_id)
    pid = runpod_emulator.pods[pod_id].pid
    assert pid is not None

    assert runpod.stop_pod(pod_id) == {"id": pod_id, "desiredStatus": "EXITED"}
    stopped = runpod.get_pod(pod_id)
    assert (stopped["desiredStatus"], stopped["runtime"]) == ("EXITED", None)
    assert pod_id not in runpod_emulator.ledger.running_pods()
    runpod_emulator.wait_for(lambda: not process_alive(pid), timeout=10)
    assert status(f"{base}/env/HOME") == 502

    resumed = runpod.resume_pod(pod_id, 1)
    assert resumed["desiredStatus"] == "RUNNING" and resumed["id"] == pod_id
    assert pod_id in runpod_emulator.ledger.running_pods()
    wait_serving(runpod_emulator, pod_id)
    assert runpod_emulator.pods[pod_id].starts == 2

    terminate_and_confirm(runpod_emulator, pod_id)
    with pytest.raises(QueryError, match=NOT_FOUND_TO_TERMINATE):
        runpod.terminate_pod(pod_id)


def test_ledger_bills_seconds_and_dollars_until_terminated(runpod_emulator: RunPodEmulator) -> None:
    pod_id = create(gpu=H100, cloud_type="SECURE", gpu_count=2)
    assert runpod.get_pod(pod_id)["costPerHr"] == 5.98
    assert runpod_emulator.ledger.running_pods() == [pod_id]
    time.sleep(0.5)
    terminate_and_confirm(runpod_emulator, pod_id)
    seconds = runpod_emulator.ledger.pod_seconds(pod_id)
    assert seconds >= 0.5
    assert runpod_emulator.ledger.pod_usd(pod_id) == pytest.approx(seconds * 5.98 / 3600)
    assert runpod_emulator.ledger.total_usd() == pytest.approx(seconds * 5.98 / 3600)
    time.sleep(0.2)
    assert runpod_emulator.ledger.pod_seconds(pod_id) == seconds  # nothing bills after terminate
    assert runpod_emulator.ledger.running_pods() == []


def test_cpu_pod_and_gpu_stock(runpod_emulator: RunPodEmulator) -> None:
    cpu = runpod.create_pod("cpu-box", "ubuntu:24.04", docker_args="sleep 600", instance_id="cpu3c-4-8")
    assert runpod.get_pod(cpu["id"])["vcpuCount"] == 4
    terminate_and_confirm(runpod_emulator, cpu["id"])

    runpod_emulator.gpus[H100].available = 1
    first = create(gpu=H100)
    with pytest.raises(QueryError, match="no longer any instances available"):
        create(gpu=H100)
    runpod.stop_pod(first)  # the GPU goes back to the pool...
    second = create(gpu=H100)  # ...and someone else takes it
    with pytest.raises(QueryError, match=NO_GPUS_TO_RESUME):
        runpod.resume_pod(first, 1)
    terminate_and_confirm(runpod_emulator, first)
    terminate_and_confirm(runpod_emulator, second)
    assert runpod_emulator.gpus[H100].available == 1


def test_spot_pod_and_user_settings(runpod_emulator: RunPodEmulator) -> None:
    spot = run_graphql_query(
        f'mutation {{ podRentInterruptable(input: {{ bidPerGpu: 0.2, cloudType: SECURE, gpuCount: 1, gpuTypeId: "{RTX4090}", '
        'name: "spot", imageName: "img", dockerArgs: "sleep 600" }) { id desiredStatus } }'
    )["data"]["podRentInterruptable"]
    pod = runpod.get_pod(spot["id"])
    assert (pod["podType"], pod["costPerHr"], spot["desiredStatus"]) == ("INTERRUPTABLE", 0.2, "RUNNING")
    terminate_and_confirm(runpod_emulator, spot["id"])

    runpod.update_user_settings("ssh-ed25519 AAAA me@host")
    assert runpod.get_user()["pubKey"] == "ssh-ed25519 AAAA me@host"


def test_crash_loop_restarts_with_a_bound_and_keeps_billing(runpod_emulator: RunPodEmulator) -> None:
    pod_id = create(docker_args="echo crashing; exit 3")
    runpod_emulator.wait_for(lambda: runpod_emulator.pods[pod_id].gave_up, timeout=30)
    info = runpod_emulator.pods[pod_id]
    assert (info.restarts, info.exit_codes) == (3, (3, 3, 3, 3))
    assert runpod_emulator.log(pod_id).count("crashing") == 4
    pod = runpod.get_pod(pod_id)
    assert (pod["desiredStatus"], pod["runtime"]) == ("RUNNING", None)
    assert pod_id in runpod_emulator.ledger.running_pods()
    terminate_and_confirm(runpod_emulator, pod_id)


def test_pod_terminates_itself_with_its_scoped_key(runpod_emulator: RunPodEmulator) -> None:
    pod_id = create(docker_args="echo done; runpodctl remove pod $RUNPOD_POD_ID; sleep 600")
    runpod_emulator.wait_for(lambda: runpod.get_pod(pod_id) is None, timeout=30)
    assert runpod_emulator.ledger.running_pods() == []
    log = runpod_emulator.log(pod_id)
    assert "done" in log and "container start #2" not in log  # ended, not restarted


def test_pod_scoped_key_acts_only_on_its_own_pod(runpod_emulator: RunPodEmulator) -> None:
    mine, other = create(name="mine"), create(name="other")
    key = runpod_emulator.pods[mine].api_key
    assert run_graphql_query(f'query {{ pod(input: {{podId: "{mine}"}}) {{ id }} }}', api_key=key)["data"]["pod"]["id"] == mine
    with pytest.raises(AuthenticationError):
        run_graphql_query(f'query {{ pod(input: {{podId: "{other}"}}) {{ id }} }}', api_key=key)
    with pytest.raises(AuthenticationError):
        runpod.get_pods(api_key=key)
    terminate_and_confirm(runpod_emulator, mine)
    terminate_and_confirm(runpod_emulator, other)


# ---- what the real API rejects --------------------------------------------------------------


def test_unescaped_quote_or_newline_is_a_graphql_syntax_error(runpod_emulator: RunPodEmulator) -> None:
    with pytest.raises(QueryError, match="Syntax Error"):
        create(env={"A": 'he said "hi"'})
    with pytest.raises(QueryError, match="Unterminated string"):
        create(name="two\nlines")
    assert runpod.get_pods() == []

    # Escaping as our client adapter will (JSON string escapes) gets the raw value through to the process.
    value = 'he said "hi"\nand left \\ behind'
    pod_id = create(env={"A": escape(value)}, docker_args=escape('printf %s "$A" > a.txt; sleep 600'))
    assert runpod_emulator.pods[pod_id].env["A"] == value
    home = runpod_emulator.pods[pod_id].home
    runpod_emulator.wait_for(lambda: (home / "a.txt").exists() and (home / "a.txt").read_text() == value, timeout=30)
    terminate_and_confirm(runpod_emulator, pod_id)


def test_bad_api_key_is_rejected_with_401(runpod_emulator: RunPodEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runpod, "api_key", "rpa_WRONG")
    with pytest.raises(AuthenticationError):
        runpod.get_pods()
    with pytest.raises(AuthenticationError):
        runpod.create_pod("x", "img", RTX4090)
    # Older SDKs sent the key as a query parameter; that works too.
    answer = requests.post(
        f"{runpod_emulator.graphql_url}?api_key={FAKE_API_KEY}", json={"query": "{ myself { id } }"}, timeout=10
    )
    assert answer.status_code == 200 and answer.json()["data"]["myself"]["id"]


# ---- fault knobs ------------------------------------------------------------------------------


def test_out_of_stock_fault(runpod_emulator: RunPodEmulator) -> None:
    runpod_emulator.faults.out_of_stock = {H100}
    with pytest.raises(QueryError) as raised:
        create(gpu=H100)
    assert str(raised.value) == OUT_OF_STOCK
    assert runpod.get_pods() == []
    terminate_and_confirm(runpod_emulator, create(gpu=RTX4090))


def test_rate_limit_server_error_and_html_502(runpod_emulator: RunPodEmulator) -> None:
    runpod_emulator.faults.retry_after_s = 7
    runpod_emulator.faults.rate_limited["myself"] = 1
    limited = requests.post(
        runpod_emulator.graphql_url,
        json={"query": "{ myself { id } }"},
        headers={"Authorization": f"Bearer {FAKE_API_KEY}"},
        timeout=10,
    )
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7" and "errors" not in limited.json()

    runpod_emulator.faults.rate_limited["myself"] = 1
    with pytest.raises(KeyError):
        runpod.get_pods()
    assert runpod.get_pods() == []  # the count is used up

    runpod_emulator.faults.server_errors["*"] = 1
    with pytest.raises(KeyError):
        runpod.get_gpus()

    runpod_emulator.faults.bad_gateway["gpuTypes"] = 2
    with pytest.raises(requests.JSONDecodeError):
        runpod.get_gpus()
    html = requests.post(runpod_emulator.graphql_url, json={"query": "{ gpuTypes { id } }"}, timeout=10)
    assert html.status_code == 502 and "502 Bad Gateway" in html.text and html.headers["Content-Type"] == "text/html"
    assert runpod.get_gpus()


def test_terminate_fails_silently_on_429_and_on_silent_failure(runpod_emulator: RunPodEmulator) -> None:
    pod_id = create()
    runpod_emulator.faults.rate_limited["podTerminate"] = 1
    assert runpod.terminate_pod(pod_id) is None  # the SDK swallows the 429...
    assert runpod.get_pod(pod_id)["desiredStatus"] == "RUNNING"  # ...and the pod still runs

    runpod_emulator.faults.silent_terminate_failures = 1
    assert runpod.terminate_pod(pod_id) is None
    assert runpod.get_pod(pod_id)["desiredStatus"] == "RUNNING"
    assert pod_id in runpod_emulator.ledger.running_pods()
    terminate_and_confirm(runpod_emulator, pod_id)


def test_slow_response(runpod_emulator: RunPodEmulator) -> None:
    runpod_emulator.faults.slow_s["gpuTypes"] = 0.5
    started = time.monotonic()
    runpod.get_gpus()
    assert time.monotonic() - started >= 0.5
    with pytest.raises(requests.Timeout):
        requests.post(
            runpod_emulator.graphql_url,
            json={"query": "{ gpuTypes { id } }"},
            headers={"Authorization": f"Bearer {FAKE_API_KEY}"},
            timeout=0.1,
        )


def test_lost_create_response_leaves_a_pod_behind(runpod_emulator: RunPodEmulator) -> None:
    runpod_emulator.faults.lost_creates = 1
    with pytest.raises(requests.ConnectionError):
        create(name="unsloth-nb-lost")
    orphans = [pod for pod in runpod.get_pods() if pod["name"] == "unsloth-nb-lost"]
    assert len(orphans) == 1 and orphans[0]["id"] in runpod_emulator.ledger.running_pods()
    terminate_and_confirm(runpod_emulator, orphans[0]["id"])


def test_pod_that_never_becomes_ready(runpod_emulator: RunPodEmulator) -> None:
    runpod_emulator.faults.never_ready = 1
    stuck, fine = create(name="stuck"), create(name="fine")
    runpod_emulator.wait_for(lambda: runpod.get_pod(fine)["runtime"] is not None, timeout=30)
    time.sleep(0.5)
    assert runpod.get_pod(stuck)["runtime"] is None and runpod.get_pod(stuck)["desiredStatus"] == "RUNNING"
    assert runpod_emulator.pods[stuck].starts == 0 and stuck in runpod_emulator.ledger.running_pods()
    terminate_and_confirm(runpod_emulator, stuck)
    terminate_and_confirm(runpod_emulator, fine)


def test_pod_that_dies(runpod_emulator: RunPodEmulator) -> None:
    runpod_emulator.faults.die_after_s = 0.3
    evicted = create(name="evicted")
    runpod_emulator.wait_for(lambda: runpod.get_pod(evicted)["desiredStatus"] == "EXITED", timeout=30)
    pod = runpod.get_pod(evicted)
    assert pod["runtime"] is None and pod["lastStatusChange"].startswith("Exited by Runpod")
    assert evicted not in runpod_emulator.ledger.running_pods()

    runpod_emulator.faults.die_as = "terminated"
    vanished = create(name="vanished")
    runpod_emulator.wait_for(lambda: runpod.get_pod(vanished) is None, timeout=30)
    assert runpod_emulator.ledger.running_pods() == []
    terminate_and_confirm(runpod_emulator, evicted)


# ---- proxy edges, admin endpoint, CLI -------------------------------------------------------------


def test_proxy_answers_502_before_the_app_listens_and_524_after_its_timeout(
    tmp_path: Path, app_command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with RunPodEmulator(start_delay=0.0, workdir=tmp_path / "emu", proxy_timeout_s=1.0) as emulator:
        monkeypatch.setenv("RUNPOD_API_BASE_URL", emulator.api_base_url)
        monkeypatch.setattr(runpod, "api_key", "any key will do")
        pod_id = create(docker_args=f"while [ ! -e go ]; do sleep 0.05; done; {app_command}")
        emulator.wait_for(lambda: emulator.pods[pod_id].container_up, timeout=30)
        base = emulator.proxy_url(pod_id, 8000)
        early = requests.get(f"{base}/env/HOME", timeout=10)
        assert early.status_code == 502 and "text/html" in early.headers["Content-Type"]
        (emulator.pods[pod_id].home / "go").touch()
        wait_serving(emulator, pod_id)
        assert status(f"{base}/sleep/3") == 524
        assert status(emulator.proxy_url(pod_id, 22)) == 404  # TCP ports are not proxied
        assert status(emulator.proxy_url("nosuchpod00000", 8000)) == 404
        terminate_and_confirm(emulator, pod_id)
        assert emulator.ledger.running_pods() == []


def test_admin_endpoint_sets_faults_and_reports_the_bill(runpod_emulator: RunPodEmulator) -> None:
    url = runpod_emulator.api_base_url
    knobs = set_faults(url, out_of_stock=[H100], rate_limited={"pod": 2})
    assert knobs["out_of_stock"] == [H100] and knobs["rate_limited"] == {"pod": 2}
    assert runpod_emulator.faults.rate_limited == {"pod": 2}
    with pytest.raises(QueryError, match="no longer any instances"):
        create(gpu=H100)
    reset_faults(url)
    pod_id = create(gpu=H100)
    state = emulator_state(url)
    assert state["ledger"]["running_pods"] == [pod_id] and state["pods"][0]["name"] == "unsloth-nb-test"
    evict_pod(url, pod_id)
    assert runpod.get_pod(pod_id)["desiredStatus"] == "EXITED"
    assert emulator_state(url)["ledger"]["running_pods"] == []
    with pytest.raises(urllib.error.HTTPError, match="400"):
        set_faults(url, no_such_knob=1)
    terminate_and_confirm(runpod_emulator, pod_id)


#: A pod whose shell starts two children of its own, like a boot script starting the worker;
#: it writes the three process ids to ``pids`` in its home folder.
FAMILY_POD = "echo $$ >> pids; sleep 600 & echo $! >> pids; sleep 601 & echo $! >> pids; wait"


def start_emulator_cli(workdir: Path, *extra_args: str, sigint_ignored: bool = False) -> tuple[subprocess.Popen[str], list[str]]:
    """``python -m unsloth_nb.testing.runpod_emulator`` as a user starts it; returns once it printed its banner.

    ``sigint_ignored`` starts it the way ``make test &``, nohup or a CI runner without a terminal
    do: with SIGINT inherited as ignored.
    """

    def ignore_sigint() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "unsloth_nb.testing.runpod_emulator",
            "--start-delay",
            "0.1",
            "--api-key",
            "k",
            "--workdir",
            str(workdir),
            *extra_args,
        ],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=ignore_sigint if sigint_ignored else None,
    )
    lines: list[str] = []
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if line.startswith("Ctrl-C"):
            break
    return process, lines


@pytest.fixture
def emulator_cli(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    process, lines = start_emulator_cli(tmp_path, sigint_ignored=getattr(request, "param", False))
    try:
        yield process, lines
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def use_emulator_cli(lines: list[str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point the runpod SDK at the emulator the CLI started, from the variables it printed."""
    exported = dict(line.strip().removeprefix("export ").split("=", 1) for line in lines if line.strip().startswith("export "))
    monkeypatch.setenv("RUNPOD_API_BASE_URL", exported["RUNPOD_API_BASE_URL"])
    monkeypatch.setattr(runpod, "api_key", "k")
    return exported


def pod_family(workdir: Path, pod_id: str) -> list[int]:
    """The ids of the FAMILY_POD's shell and its two children, once it has written all three."""
    pids = workdir / "pods" / pod_id / "pids"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        written = pids.read_text().split() if pids.exists() else []
        if len(written) == 3:
            return [int(pid) for pid in written]
        time.sleep(0.05)
    raise AssertionError(f"pod {pod_id} did not start its processes: {pids} holds {written}")


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie nobody reaped yet counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return state != "Z"


def wait_all_gone(pids: list[int], timeout: float = 5.0) -> list[int]:
    """The pids still running after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while (alive := [pid for pid in pids if running(pid)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive


@pytest.mark.parametrize("emulator_cli", [False, True], ids=["sigint-default", "sigint-inherited-as-ignored"], indirect=True)
def test_cli_runs_until_interrupted(
    emulator_cli: tuple[subprocess.Popen[str], list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C stops it even when it was started in the background, and no pod process outlives it."""
    process, lines = emulator_cli
    exported = use_emulator_cli(lines, monkeypatch)
    assert exported["UNSLOTH_NB_RUNPOD_PROXY_TEMPLATE"].strip("'").endswith("/{pod_id}-{port}")
    pod_id = create(docker_args=FAMILY_POD)
    assert runpod.get_pod(pod_id)["name"] == "unsloth-nb-test"
    family = pod_family(tmp_path, pod_id)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0
    assert process.stdout is not None and "Stopped. Billed $" in process.stdout.read()
    assert wait_all_gone(family) == []


def test_cli_stops_on_sigterm(
    emulator_cli: tuple[subprocess.Popen[str], list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    process, lines = emulator_cli
    use_emulator_cli(lines, monkeypatch)
    family = pod_family(tmp_path, create(docker_args=FAMILY_POD))
    process.terminate()
    assert process.wait(timeout=30) == 0
    assert wait_all_gone(family) == []


def test_pods_die_with_an_emulator_killed_by_sigkill(
    emulator_cli: tuple[subprocess.Popen[str], list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No orderly stop runs on SIGKILL; the pods' process groups still go within a few seconds."""
    process, lines = emulator_cli
    use_emulator_cli(lines, monkeypatch)
    families = [pod_family(tmp_path, create(docker_args=FAMILY_POD)) for _ in range(2)]
    process.kill()
    process.wait(timeout=10)
    assert wait_all_gone([pid for family in families for pid in family]) == []


def test_cli_passes_the_worker_idle_timeout_to_pods(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--worker-idle-timeout`` reaches every pod's environment, where the worker and the boot script read it."""
    process, lines = start_emulator_cli(tmp_path, "--worker-idle-timeout", "7.5")
    try:
        assert any("after 7.5 s without a client" in line for line in lines)
        use_emulator_cli(lines, monkeypatch)
        pod_id = create(docker_args=escape('echo "$UNSLOTH_NB_WORKER_IDLE_TIMEOUT" > idle; sleep 600'))
        written = tmp_path / "pods" / pod_id / "idle"
        deadline = time.monotonic() + 30
        while not (written.exists() and written.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert written.read_text().strip() == "7.5"
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_cli_refuses_a_worker_idle_timeout_that_is_not_positive(tmp_path: Path) -> None:
    answer = subprocess.run(
        [sys.executable, "-m", "unsloth_nb.testing.runpod_emulator", "--workdir", str(tmp_path), "--worker-idle-timeout", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert answer.returncode == 2 and "--worker-idle-timeout: must be a positive number of seconds" in answer.stderr
