"""``unsloth-nb train --dry-run`` and ``%unsloth_train --dry-run``: the plan and the exact requests, renting nothing.

The RunPod emulator stands where RunPod would be; a dry run must not send it a
single request, and what it prints must hold no secret.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from unsloth_nb import cli
from unsloth_nb.demo import demo_dataset_path
from unsloth_nb.jobrun.store import list_jobs
from unsloth_nb.testing.runpod_emulator import RunPodEmulator

HF = "hf_" + "DryRunFake" + "Token0123456789"
RUNPOD = "rpa_" + "DryRunFake" + "Key0123456789"
FLAGS = ["--model", "unsloth/Llama-3.1-8B-Instruct", "--dataset", str(demo_dataset_path()), "--placement", "runpod"]


def test_the_cli_prints_the_plan_and_every_request_and_rents_nothing(
    runpod_emulator: RunPodEmulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HF_TOKEN", HF)
    monkeypatch.setenv("RUNPOD_API_KEY", RUNPOD)

    assert cli.main(["train", *FLAGS, "--hub-id", "me/support-lora", "--save-merged", "--dry-run"]) == 0

    out = capsys.readouterr().out
    assert "Plan: unsloth/Llama-3.1-8B-Instruct on RunPod" in out and "Pod " in out and "vCPUs" in out
    assert "Dry run: nothing is rented" in out and "REST v2" in out
    assert f"POST {runpod_emulator.api_base_url}/v2/pods  create the pod" in out
    create = next(line for line in out.splitlines() if line.strip().startswith('{"name": "'))
    body = json.loads(create.strip())  # REST v2's create body, as sent
    gpu = body["gpu"]
    assert gpu["minCudaVersion"] == "12.8" and "allowedCudaVersions" not in gpu
    assert gpu["minVcpuCountPerGpu"] >= 4 and gpu["minRamPerGpu"] >= 16
    assert set(body["env"]) == {"UNSLOTH_NB_WORKER_TOKEN", "UNSLOTH_NB_WORKER_PORT", "UNSLOTH_NB_BOOT"}
    assert '"secrets": {"HF_TOKEN": "<HF_TOKEN>"}' in out  # where the token would travel, not its value
    assert HF not in out and RUNPOD not in out and "HF_TOKEN" not in create
    assert f"DELETE {runpod_emulator.api_base_url}/v2/pods/<pod id>" in out and "/graphql" not in out
    assert runpod_emulator.api_calls == [] and runpod_emulator.pods == {}
    assert list_jobs() == []


def test_over_graphql_the_dry_run_shows_the_mutation_the_sdk_sends(
    runpod_emulator: RunPodEmulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HF_TOKEN", HF)
    monkeypatch.setenv("UNSLOTH_NB_RUNPOD_API", "graphql")

    assert cli.main(["train", *FLAGS, "--hub-id", "me/support-lora", "--dry-run"]) == 0

    out = capsys.readouterr().out
    create = next(line for line in out.splitlines() if line.strip().startswith('{"query": "'))
    query = json.loads(create.strip())["query"]
    assert "podFindAndDeployOnDemand" in query and 'allowedCudaVersions: [\\"12.8\\"' not in query
    assert 'allowedCudaVersions: ["12.8", "12.9", "13.0", "13.1"]' in query and "minMemoryInGb: " in query
    assert "minVcpuCount: " in query and "GraphQL" in out and "podTerminate" in out
    assert HF not in out and 'HF_TOKEN\\"' not in query
    assert runpod_emulator.api_calls == [] and runpod_emulator.pods == {}


def test_a_local_job_says_it_would_send_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "model"
    model.mkdir()
    config = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2}
    (model / "config.json").write_text(json.dumps({**config, "num_attention_heads": 4, "vocab_size": 512}))
    tiny = ["--model", str(model), "--dataset", str(demo_dataset_path()), "--placement", "local"]
    assert cli.main(["train", *tiny, "--dry-run"]) == 0
    assert "sends no request to RunPod and rents nothing" in capsys.readouterr().out
    assert list_jobs() == []


def test_the_magic_has_the_same_dry_run(runpod_emulator: RunPodEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", HF)
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "unsloth_nb")
    with capture_output() as captured:
        result = shell.run_cell("%unsloth_train " + " ".join(FLAGS) + " --dry-run")
    assert result.success, captured.stdout + captured.stderr
    assert (
        "Dry run: nothing is rented" in captured.stdout
        and "PUT https://<pod id>-8000.proxy.runpod.net/boot/package" in captured.stdout
    )
    assert HF not in captured.stdout
    assert runpod_emulator.api_calls == [] and list_jobs() == []
