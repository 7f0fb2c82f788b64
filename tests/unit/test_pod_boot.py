"""What a pod is created with and how it boots: a small request, no user secret, the image's torch kept.

The create request is rendered exactly as the client sends it; the boot script and
its stage 0 run for real (stage 0 as a process on a loopback port, as on a pod).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from unsloth_nb.backends.runpod.api_types import PodSpec
from unsloth_nb.backends.runpod.bootstrap import (
    BOOT_ENV,
    START_COMMAND,
    _strip_comments,
    boot_script,
    boot_value,
    package_sha256,
    package_zip,
    stage0_source,
    training_requirements,
)
from unsloth_nb.backends.runpod.client import RunPodClient
from unsloth_nb.backends.runpod.pod_request import (
    allowed_cuda_versions,
    image_cuda_version,
    job_secrets,
    pod_spec,
)
from unsloth_nb.config import TrainConfig
from unsloth_nb.testing.runpod_emulator.containers import free_port
from unsloth_nb.worker import pod_setup
from unsloth_nb.worker.settings import PORT_ENV, TOKEN_ENV

#: The create request's budget: RunPod documents no limit, and nobody else sends more than a few KB.
MAX_CREATE_BYTES = 8 * 1024
TOKEN = "boot-test-token-0123456789abcdef"


def config(**runpod: object) -> TrainConfig:
    return TrainConfig.from_dict({"model": "unsloth/Llama-3.2-1B-Instruct", "dataset": "qa.jsonl", "runpod": runpod})


@pytest.mark.parametrize(
    ("image", "cuda"),
    [
        ("runpod/pytorch:1.0.3-cu1281-torch291-ubuntu2404", "12.8"),
        ("runpod/pytorch:1.0.2-cu1300-torch290-ubuntu2404", "13.0"),
        ("runpod/pytorch:2.8.0-py3.11-cuda12.8.1-cudnn-devel-ubuntu22.04", "12.8"),
        ("runpod/pytorch:2.4.0-py3.11-cuda12.4.1-devel-ubuntu22.04", "12.4"),
        ("my-registry:5000/team/trainer", None),
        ("unsloth/unsloth:latest", None),
    ],
)
def test_the_cuda_floor_is_read_from_the_image_tag(image: str, cuda: str | None) -> None:
    assert image_cuda_version(image) == cuda


def test_the_default_image_sends_min_cuda_12_8_and_the_newer_versions() -> None:
    spec = pod_spec(config(), None, "20261206-000000-abcd", TOKEN)
    assert spec.image.startswith("runpod/pytorch:") and spec.min_cuda_version == "12.8"
    assert allowed_cuda_versions("12.8") == ["12.8", "12.9", "13.0", "13.1"]
    assert pod_spec(config(min_cuda_version="12.9"), None, "j", TOKEN).min_cuda_version == "12.9"


def test_the_pod_env_holds_the_token_the_port_and_the_boot_script_and_no_user_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_" + "boottestsecret" * 3)
    monkeypatch.setenv("RUNPOD_API_KEY", "rpa_" + "boottestsecret" * 3)
    cfg = config()
    spec = pod_spec(cfg, None, "20261206-000000-abcd", TOKEN)
    assert set(spec.env) == {TOKEN_ENV, PORT_ENV, BOOT_ENV}
    assert "boottestsecret" not in json.dumps(spec.env) + spec.docker_args
    assert job_secrets(cfg) == {"HF_TOKEN": os.environ["HF_TOKEN"]}  # it goes in POST /job/start instead


def _big_job_spec() -> PodSpec:
    cfg = TrainConfig.from_dict({"model": "unsloth/Llama-3.1-8B-Instruct", "dataset": "qa.jsonl", "save": {"merged_16bit": True}})
    spec = pod_spec(cfg, None, "20261206-000000-abcd", TOKEN)
    spec.gpu_type_id = "NVIDIA GeForce RTX 4090"
    return spec


def test_the_rest_create_request_is_a_few_kb_and_carries_the_cuda_floor_and_the_pod_size() -> None:
    spec = _big_job_spec()
    method, path, body = RunPodClient(api_key="unused", api="rest").create_request(spec)
    assert (method, path) == ("POST", "/v2/pods")
    size = len(body.encode())
    assert size <= MAX_CREATE_BYTES, f"create request is {size} bytes"
    sent = json.loads(body)
    # REST v2 puts the host filters under gpu, per GPU (v1's flat minVCPUPerGPU / minRAMPerGPU are gone).
    assert sent["gpu"] == {
        "id": "NVIDIA GeForce RTX 4090",
        "count": 1,
        "minCudaVersion": "12.8",
        "minVcpuCountPerGpu": spec.min_vcpu_count,
        "minRamPerGpu": spec.min_memory_gb,
    }
    assert spec.min_vcpu_count == 4 and spec.min_memory_gb >= 16  # the 8B model merged in 16 bit
    assert sent["disk"] == spec.container_disk_gb and spec.container_disk_gb >= 40
    assert sent["env"] == spec.env and sent["args"] == spec.docker_args


def test_two_gpus_ask_rest_v2_for_half_the_vcpus_and_ram_per_gpu() -> None:
    spec = _big_job_spec()
    spec.gpu_count, spec.min_vcpu_count, spec.min_memory_gb = 2, 8, 33
    gpu = json.loads(RunPodClient(api_key="unused", api="rest").create_request(spec)[2])["gpu"]
    assert (gpu["count"], gpu["minVcpuCountPerGpu"], gpu["minRamPerGpu"]) == (2, 4, 17)


def test_the_graphql_create_request_is_a_few_kb_and_carries_the_cuda_floor_and_the_pod_size() -> None:
    spec = _big_job_spec()
    method, path, body = RunPodClient(api_key="unused", api="graphql").create_request(spec)
    assert (method, path) == ("POST", "/graphql")
    size = len(body.encode())
    assert size <= MAX_CREATE_BYTES, f"create request is {size} bytes"
    query = json.loads(body)["query"]
    assert 'allowedCudaVersions: ["12.8", "12.9", "13.0", "13.1"]' in query
    assert f"minVcpuCount: {spec.min_vcpu_count}" in query and spec.min_vcpu_count == 4
    assert f"minMemoryInGb: {spec.min_memory_gb}" in query and spec.min_memory_gb >= 16  # the 8B model merged in 16 bit
    assert f"containerDiskInGb: {spec.container_disk_gb}" in query and spec.container_disk_gb >= 40


#: Room the create request keeps for what comes next (an env var, a longer image or GPU name): 2 KB of the 8 KB.
HEADROOM_BYTES = 2 * 1024


def _largest_spec() -> PodSpec:
    """The biggest create request a real job makes: every section on, a network volume, spot, the longest names."""
    cfg = TrainConfig.from_dict(
        {
            "model": "unsloth/Meta-Llama-3.1-405B-Instruct-bnb-4bit-with-a-long-fine-tune-suffix",
            "dataset": "volume://abcdefghij/datasets/support-conversations-2026-12.jsonl",
            "placement": "runpod",
            "lora": {"r": 64, "alpha": 128},
            "train": {"epochs": 3, "save_steps": 50, "max_seq_length": 8192},
            "save": {"merged_16bit": True, "merged_4bit": True, "gguf": ["q4_k_m", "q8_0", "f16"], "ollama": True},
            "hub": {"repo_id": "a-long-organisation-name/a-long-repository-name-for-this-lora", "push": ["adapter", "gguf"]},
            "judge": {"enabled": True},
            "generate": {"max_new_tokens": 512},
            "runpod": {
                "volume_id": "abcdefghij",
                "interruptible": True,
                "cloud_type": "ALL",
                "allow_community": True,
                "image": "runpod/pytorch:1.0.3-cu1281-torch291-ubuntu2404-with-a-longer-custom-tag",
                "min_cuda_version": "12.8",
                "container_disk_gb": 2000,
            },
        }
    )
    spec = pod_spec(cfg, None, "20261206-235959-zz99", "t" * 43)  # secrets.token_urlsafe(32) is 43 characters
    spec.gpu_type_id = "NVIDIA RTX PRO 6000 Blackwell Server Edition MIG 1g.24gb"  # the catalogue's longest id
    spec.data_center_ids, spec.gpu_count, spec.bid_per_gpu = ("EUR-IS-1",), 8, 12.3456
    return spec


@pytest.mark.parametrize("api", ["rest", "graphql"])
@pytest.mark.parametrize("spot", [False, True])
def test_the_largest_create_request_keeps_2_kb_of_its_8_kb(api: str, spot: bool) -> None:
    """GraphQL's create was 8,103 of 8,192 bytes with the install inlined: one more env var broke every spot job."""
    spec = _largest_spec()
    spec.interruptible = spot
    method, path, body = RunPodClient(api_key="unused", api=api).create_request(spec)
    size = len(body.encode())
    assert size <= MAX_CREATE_BYTES - HEADROOM_BYTES, f"{method} {path}: {size} bytes"
    assert spec.network_volume_id == "abcdefghij" and "/workspace/unsloth-nb/" in body  # the volume's work folder
    assert ("podRentInterruptable" in body) == spot
    assert len(boot_value()) < 5000  # the boot script (stage 0 only; the install comes with the package)


def test_the_package_carries_what_the_pod_installs() -> None:
    import io
    import zipfile

    names = zipfile.ZipFile(io.BytesIO(package_zip())).namelist()
    assert "unsloth_nb/worker/pod_setup.py" in names and "unsloth_nb/backends/runpod/stage0.py" not in names
    wanted = zipfile.ZipFile(io.BytesIO(package_zip())).read(f"unsloth_nb/worker/{pod_setup.REQUIREMENTS_FILE}").decode()
    assert wanted.split() == list(training_requirements()) and any(r.startswith("unsloth") for r in wanted.split())


def test_a_spot_create_request_is_graphql_whichever_api_is_chosen() -> None:
    spec = _big_job_spec()
    spec.interruptible, spec.bid_per_gpu = True, 0.31
    method, path, body = RunPodClient(api_key="unused", api="rest").create_request(spec)
    query = json.loads(body)["query"]
    assert (method, path) == ("POST", "/graphql") and "podRentInterruptable" in query and "bidPerGpu: 0.31" in query
    assert 'minCudaVersion: "12.8"' in query and f"minVcpuCount: {spec.min_vcpu_count}" in query


def test_the_boot_script_is_valid_bash_and_stage_0_is_valid_python(tmp_path: Path) -> None:
    script = tmp_path / "boot.sh"
    script.write_text(_strip_comments(boot_script()))
    subprocess.run(["bash", "-n", str(script)], check=True)
    compile(stage0_source(), "stage0.py", "exec")
    assert "bash -c" in START_COMMAND and "gzip -dc" in START_COMMAND


def test_constraints_keep_the_image_torch_and_match_torchvision_and_xformers() -> None:
    assert pod_setup.constraints_for({"torch": "2.9.1+cu128"}) == [
        "torch==2.9.1",
        "torchvision==0.24.1",
        "xformers==0.0.33.post2",
    ]
    assert pod_setup.constraints_for({"torch": "2.8.0+cu128", "torchvision": "0.23.0+cu128"}) == [
        "torch==2.8.0",
        "torchvision==0.23.0",
        "xformers==0.0.32.post2",
    ]
    assert pod_setup.constraints_for({"torch": "2.12.0", "xformers": "0.0.35"})[-1] == "xformers==0.0.35"
    assert pod_setup.constraints_for({"torch": None}) == []
    command = pod_setup.pip_command(["unsloth"], Path("/c.txt"))
    assert command[command.index("--constraint") + 1] == "/c.txt"


# ---------------------------------------------------------------------- stage 0 as it runs on a pod
def request(port: int, method: str, path: str, body: bytes | None = None, token: str | None = TOKEN) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


def start_stage0(tmp_path: Path, **env: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    script = tmp_path / "stage0.py"
    script.write_text(stage0_source())
    environment = {
        **os.environ,
        TOKEN_ENV: TOKEN,
        PORT_ENV: str(port),
        "UNSLOTH_NB_EMULATOR_HOST": "127.0.0.1",
        **env,
    }
    environment.pop("PYTHONPATH", None)  # the install step must come from the package sent, as on a pod
    process = subprocess.Popen([sys.executable, str(script), str(tmp_path / "boot")], env=environment, stdout=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            request(port, "GET", "/boot")
            return process, port
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise AssertionError("stage 0 did not listen")


def test_stage_0_takes_the_package_only_with_the_token_and_its_checksum(tmp_path: Path) -> None:
    process, port = start_stage0(tmp_path)
    try:
        assert request(port, "GET", "/boot", token=None)[0] == 401
        assert request(port, "GET", "/boot", token="wrong-token-0123456789")[0] == 401
        status, state = request(port, "GET", "/boot")
        assert status == 200 and state["stage"] == "boot" and state["package"] == "waiting"
        assert state["install"] == "after the package" and state["facts"] == {}  # the install step comes with it
        assert request(port, "GET", "/health")[0] == 503  # the worker is not there yet
        data = package_zip()
        assert request(port, "PUT", "/boot/package?sha256=" + "0" * 64, data)[0] == 400
        status, state = request(port, "PUT", f"/boot/package?sha256={package_sha256()}", data)
        assert status == 200 and state["package"] == "received"
        # The upload's answer carries the image's facts, read by the package's pod_setup.
        assert state["install"] == "not needed" and state["facts"]["torch"]  # this machine has the training stack
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
    boot = tmp_path / "boot"
    assert (boot / "src" / "unsloth_nb" / "worker" / "__main__.py").is_file()
    assert hashlib.sha256(data).hexdigest() == package_sha256()
    report = json.loads((boot / "boot.json").read_text())
    assert report["facts"]["torch"] and report["problem"] is None and "torch" in report["summary"]


def test_stage_0_gives_up_when_no_package_comes(tmp_path: Path) -> None:
    process, _ = start_stage0(tmp_path, UNSLOTH_NB_WORKER_IDLE_TIMEOUT="1")
    assert process.wait(timeout=30) == 3


def test_stage_0_installs_what_is_missing_in_the_background_and_reports_how_it_went(tmp_path: Path) -> None:
    """A bare Python (no training stack, not even pip): the install starts, fails, and the boot still completes."""
    import venv

    bare = tmp_path / "bare"
    venv.EnvBuilder(with_pip=False).create(bare)
    python = bare / "bin" / "python"
    port = free_port()
    script = tmp_path / "stage0.py"
    script.write_text(stage0_source())
    env = {**os.environ, TOKEN_ENV: TOKEN, PORT_ENV: str(port), "UNSLOTH_NB_EMULATOR_HOST": "127.0.0.1"}
    env.pop("PYTHONPATH", None)
    process = subprocess.Popen([str(python), str(script), str(tmp_path / "boot")], env=env, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        state: dict = {}
        while time.monotonic() < deadline:
            try:
                state = request(port, "GET", "/boot")[1]
                break
            except OSError:
                time.sleep(0.1)
        assert state["package"] == "waiting" and state["install"] == "after the package", state
        status, state = request(port, "PUT", f"/boot/package?sha256={package_sha256()}", package_zip())
        assert status == 200 and state["package"] == "received" and state["facts"]["torch"] is None
        assert state["install"] == "running" or state["install"].startswith("failed"), state
        while not state["install"].startswith("failed") and time.monotonic() < deadline:
            time.sleep(0.1)
            state = request(port, "GET", "/boot")[1]
        assert state["install"].startswith("failed"), state
        out, _ = process.communicate(timeout=30)
        assert process.returncode == 0
    finally:
        process.kill()
    boot = tmp_path / "boot"
    assert "No module named pip" in (boot / "install.log").read_text()
    # What it installs comes with the package: the client's own pins, none of them in the create request.
    assert f"installing {' '.join(training_requirements())} (missing: " in out
    report = json.loads((boot / "boot.json").read_text())
    assert report["install"].startswith("failed") and report["problem"] is None
