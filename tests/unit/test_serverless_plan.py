"""``placement: serverless`` without the emulator: the plan, the config section, the request, the handler's refusals."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from unsloth_nb.backends.runpod_serverless.request import (
    RUN_PAYLOAD_LIMIT,
    boot_env,
    endpoint_body,
    execution_timeout,
    job_input,
    run_request,
    template_body,
)
from unsloth_nb.config import TrainConfig
from unsloth_nb.data import DatasetSummary, PreparedDataset
from unsloth_nb.errors import ConfigError, InputErrors
from unsloth_nb.planning.plan_text import format_plan
from unsloth_nb.planning.planner import LocalHardware, plan
from unsloth_nb.testing.runpod_emulator import RunPodEmulator
from unsloth_nb.worker.serverless import handle

CPU_ONLY = LocalHardware("cpu", "Test CPU", 16.0, 12.0, ram_gb=16.0, cpu_count=2)
ROWS_1000 = DatasetSummary(source="support.jsonl", format="messages", rows=1000, tokens=400_000, longest_tokens=1500)


@pytest.fixture(autouse=True)
def empty_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))


def config_for(**sections: object) -> TrainConfig:
    return TrainConfig.from_dict(
        {"model": "unsloth/Llama-3.1-8B-Instruct", "dataset": "support.jsonl", "placement": "serverless", **sections}
    )


def test_the_plan_shows_the_pool_the_price_per_second_the_cold_start_and_the_timeout() -> None:
    result = plan(config_for(serverless={"execution_timeout": "3h", "workers_max": 2}), ROWS_1000, CPU_ONLY)
    text = format_plan(result)

    assert result.placement == "serverless" and result.device == "cuda"
    assert text.splitlines()[0].startswith("Plan: unsloth/Llama-3.1-8B-Instruct on RunPod serverless (endpoint pool ")
    assert "/s flex)" in text.splitlines()[0]  # $/s of the first GPU of the pool, at serverless (flex) rates
    assert "workers 0-2" in text and "cold start ~105 s" in text
    assert "execution timeout requested: 10800 s" in text
    assert result.estimated_cost_usd is not None


def test_the_plan_warns_that_a_serverless_worker_gets_no_s3_keys() -> None:
    warning = "receives no S3 keys"
    assert warning in format_plan(plan(config_for(dataset="s3://data/rows.jsonl"), ROWS_1000, CPU_ONLY))
    assert warning not in format_plan(plan(config_for(dataset="org/rows"), ROWS_1000, CPU_ONLY))


def test_auto_placement_never_picks_serverless() -> None:
    result = plan(config_for(placement="auto"), ROWS_1000, CPU_ONLY)
    assert result.placement == "runpod"


def test_the_default_execution_timeout_is_twice_the_estimate_plus_ten_minutes() -> None:
    config = config_for()
    result = plan(config, ROWS_1000, CPU_ONLY)
    assert result.estimated_seconds is not None
    assert execution_timeout(config, result) == max(600, 2 * result.estimated_seconds + 600)
    assert execution_timeout(config_for(serverless={"execution_timeout": 7200}), result) == 7200


def test_a_timeout_beyond_runpods_seven_days_is_refused() -> None:
    with pytest.raises((ConfigError, InputErrors), match=r"serverless\.execution_timeout"):
        config_for(serverless={"execution_timeout": "8d"})


def test_the_endpoint_scales_from_zero_and_the_request_carries_its_timeout_and_ttl() -> None:
    config = config_for(serverless={"workers_max": 2, "idle_timeout": 7})
    endpoint = endpoint_body(config, "job-1", "tpl1", ["NVIDIA RTX A5000"], 3600)
    assert endpoint["workersMin"] == 0 and endpoint["workersMax"] == 2 and endpoint["idleTimeout"] == 7
    assert endpoint["executionTimeoutMs"] == 3_600_000 and endpoint["name"] == "unsloth-nb-job-1"
    body = run_request({"x": 1}, 3600)
    assert body["policy"] == {"executionTimeout": 3_600_000, "ttl": 7_200_000}


def test_no_secret_travels_in_the_template_or_the_request(monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {
        "HF_TOKEN": "hf_secret_value_0123456789",
        "RUNPOD_API_KEY": "rpa_SECRET0123456789",
        "OPENAI_API_KEY": "sk-secret0123",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    config = config_for()
    dataset = PreparedDataset(
        train=[{"prompt": "q", "completion": "a"}],
        eval=[],
        summary=DatasetSummary(source="x.jsonl", format="prompt_completion", rows=1, tokens=2, longest_tokens=2),
    )
    template = json.dumps(template_body(config, "job-1", 40))
    request = json.dumps(run_request(job_input("job-1", config, dataset), 600))
    for value in secrets.values():
        assert value not in template and value not in request
    assert len(request) < RUN_PAYLOAD_LIMIT / 10  # package + one row: a few hundred kB of the 10 MB
    assert sum(len(v) for v in boot_env().values()) < 16_000


def test_the_handler_refuses_what_is_not_an_unsloth_nb_request() -> None:
    (answer,) = list(handle({"id": "r1", "input": {"prompt": "hi"}}))
    assert "not an unsloth-nb request" in answer["error"]


def test_the_handler_refuses_a_damaged_dataset() -> None:
    body = {
        "unsloth_nb": 1,
        "job_id": "job-1",
        "config": config_for().to_dict(),
        "dataset": base64.b64encode(b"rows").decode(),
        "dataset_sha256": "0" * 64,
        "source": None,
    }
    (answer,) = list(handle({"id": "r1", "input": body}))
    assert "sha256" in answer["error"]


def test_the_handler_refuses_a_source_that_is_not_a_dataset_reference() -> None:
    body = {"unsloth_nb": 1, "job_id": "job-1", "config": {}, "source": {"kind": "hub", "id": "me/data"}}
    (answer,) = list(handle({"id": "r1", "input": body}))
    assert "source must be a dataset reference" in answer["error"]
    both = {**body, "source": {"version": 1, "dataset": {"path": "me/data"}}, "dataset": "cm93cw=="}
    (answer,) = list(handle({"id": "r2", "input": both}))
    assert "not both" in answer["error"]


def test_a_job_whose_phases_need_a_secret_is_refused_with_what_to_do() -> None:
    from unsloth_nb.errors import PlanError

    with pytest.raises(PlanError, match="HF_TOKEN"):
        plan(config_for(hub={"repo_id": "me/adapter"}), ROWS_1000, CPU_ONLY)


def test_a_serverless_plan_is_priced_at_runpods_serverless_rates_not_a_pods() -> None:
    from unsloth_nb.backends.runpod_serverless.prices import PRICE_SOURCE, usd_per_hour, usd_per_second

    serverless = plan(config_for(), ROWS_1000, CPU_ONLY)
    pod = plan(config_for(placement="runpod"), ROWS_1000, CPU_ONLY)
    first = serverless.gpu_candidates[0].gpu_type_id

    assert serverless.usd_per_hour == usd_per_hour(first)
    assert pod.usd_per_hour is not None and serverless.usd_per_hour is not None
    # The same card costs more as a flex worker than as a secure pod (e.g. an A100 80GB: $2.74/h against $1.64/h).
    a100 = next(g for g in pod.gpu_candidates if g.gpu_type_id == "NVIDIA A100 80GB PCIe")
    assert usd_per_second("NVIDIA A100 80GB PCIe") == 0.00076
    assert (usd_per_hour("NVIDIA A100 80GB PCIe") or 0) > (a100.secure_usd_per_hour or 0)
    # Only pools RunPod prices for serverless are proposed for the endpoint.
    assert {g.gpu_type_id for g in serverless.gpu_candidates} <= {
        g.gpu_type_id for g in pod.gpu_candidates if usd_per_hour(g.gpu_type_id) is not None
    }
    assert "NVIDIA GeForce RTX 5090" not in {g.gpu_type_id for g in serverless.gpu_candidates}
    text = format_plan(serverless)
    assert f"${serverless.usd_per_hour / 3600:.5f}/s flex" in text.splitlines()[0]
    assert PRICE_SOURCE in text  # where the rates come from, since nothing reads them live


def test_a_gpu_named_by_the_user_without_a_serverless_price_says_so() -> None:
    result = plan(config_for(runpod={"gpus": ["NVIDIA GeForce RTX 5090"]}), ROWS_1000, CPU_ONLY)
    assert result.usd_per_hour is None and result.estimated_cost_usd is None
    assert "no serverless price known" in format_plan(result).splitlines()[0]
    assert any("No price is known for NVIDIA GeForce RTX 5090" in w for w in result.warnings)


def test_a_checkpoint_store_travels_as_a_description_and_its_keys_as_runpod_secret_references(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIA_SECRET_ID_0123")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws_secret_value_0123456789")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://store.example")
    config = config_for(serverless={"checkpoint_store": "s3://ckpts/runs"}, train={"save_steps": 50})
    dataset = PreparedDataset(
        train=[{"prompt": "q", "completion": "a"}],
        eval=[],
        summary=DatasetSummary(source="x.jsonl", format="prompt_completion", rows=1, tokens=2, longest_tokens=2),
    )
    template = template_body(config, "job-1", 40)
    body = job_input("job-1", config, dataset)

    assert body["checkpoint_store"] == {
        "kind": "s3",
        "bucket": "ckpts",
        "key": "runs",
        "endpoint": "https://store.example",
        "region": None,
    }
    assert template["env"]["AWS_ACCESS_KEY_ID"] == "{{ RUNPOD_SECRET_AWS_ACCESS_KEY_ID }}"
    sent = json.dumps(template) + json.dumps(body)
    assert "aws_secret_value_0123456789" not in sent and "AKIA_SECRET_ID_0123" not in sent
    text = format_plan(plan(config, ROWS_1000, CPU_ONLY))
    assert "uploaded to s3://ckpts/runs" in text and "starts again from step 0" not in text
    # Without a store, the plan keeps warning that a lost worker's checkpoints are lost with it.
    assert "starts again from step 0" in format_plan(plan(config_for(train={"save_steps": 50}), ROWS_1000, CPU_ONLY))
    assert "AWS_ACCESS_KEY_ID" not in template_body(config_for(), "job-1", 40)["env"]


def test_a_checkpoint_store_that_is_not_s3_or_a_volume_is_refused() -> None:
    with pytest.raises((ConfigError, InputErrors), match=r"serverless\.checkpoint_store"):
        config_for(serverless={"checkpoint_store": "/tmp/checkpoints"})


def test_a_volume_store_is_reached_through_runpods_s3_api_of_its_data_centre(monkeypatch: pytest.MonkeyPatch) -> None:
    from unsloth_nb.backends.runpod_serverless.store import store_description
    from unsloth_nb.errors import DatasetError

    monkeypatch.delenv("UNSLOTH_NB_RUNPOD_S3_ENDPOINT", raising=False)
    monkeypatch.delenv("RUNPOD_VOLUME_DATACENTER", raising=False)
    config = config_for(serverless={"checkpoint_store": "volume://vol123/ckpts"})
    with pytest.raises(DatasetError, match="RUNPOD_VOLUME_DATACENTER"):
        store_description(config)
    from unsloth_nb.errors import PlanError

    with pytest.raises(PlanError, match=r"(?s)serverless\.checkpoint_store: .*RUNPOD_VOLUME_DATACENTER"):
        plan(config, ROWS_1000, CPU_ONLY)  # said before anything is created
    monkeypatch.setenv("RUNPOD_VOLUME_DATACENTER", "EU-RO-1")
    assert store_description(config) == {
        "kind": "volume",
        "bucket": "vol123",
        "key": "ckpts",
        "endpoint": "https://s3api-eu-ro-1.runpod.io/",
        "region": "EU-RO-1",
    }


def test_the_serverless_plan_speaks_of_flex_workers_per_second_not_of_pods_and_clouds() -> None:
    result = plan(config_for(), ROWS_1000, CPU_ONLY)
    text = format_plan(result)
    rows = {line.split()[0]: line for line in text.splitlines() if line.startswith("  ") and not line.startswith("    ")}

    assert result.cloud_type is None and result.rate_label == "serverless flex"
    assert result.usd_per_hour is not None
    per_second = f"${result.usd_per_hour / 3600:.5f}/s = ${result.usd_per_hour:.2f}/h (serverless flex worker"
    assert per_second in rows["Cost"] and "SECURE" not in text and "COMMUNITY" not in text
    # One rate, one column: the flex rate per second with its hourly equivalent; no secure/community pair.
    header = next(line for line in text.splitlines() if "gpuTypeId" in line)
    assert "serverless flex $/s ($/h)" in header and "secure" not in header and "community" not in header
    first = next(line for line in text.splitlines() if line.strip().startswith("1  "))
    assert f"{result.usd_per_hour / 3600:.5f} ({result.usd_per_hour:.2f})" in first
    # The worker's disk, not a pod; its idle timeout and cold start; what an unwatched request does.
    assert "Worker" in rows and "Pod" not in rows and "container disk" in rows["Worker"] and "vCPUs" not in rows["Worker"]
    assert "idle timeout 5 s" in text and "cold start ~105 s" in text and "Active (always-on) workers" in text
    assert "If this process dies mid-job nothing follows the request" in text
    assert "the pod waits for" not in text and "pod keeps its outputs" not in text


def test_a_pod_plan_keeps_its_two_cloud_columns() -> None:
    text = format_plan(plan(config_for(placement="runpod"), ROWS_1000, CPU_ONLY))
    assert "secure $/h" in text and "community $/h" in text and "(SECURE)" in text and "flex" not in text


def test_the_serverless_dry_run_shows_the_template_endpoint_and_request_not_a_pod(
    runpod_emulator: RunPodEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    from unsloth_nb import cli
    from unsloth_nb.demo import demo_dataset_path

    flags = ["--model", "unsloth/Llama-3.1-8B-Instruct", "--dataset", str(demo_dataset_path()), "--placement", "serverless"]
    assert cli.main(["train", *flags, "--dry-run"]) == 0

    out = capsys.readouterr().out
    dry = out[out.index("Dry run") :]
    assert f"POST {runpod_emulator.api_base_url}/v2/templates" in dry and "/v2/endpoints" in dry
    assert "/<endpoint id>/run  one request" in dry and '"workersMin": 0' in dry and '"executionTimeout": ' in dry
    assert "/v2/pods" not in dry and "podFindAndDeployOnDemand" not in dry and "proxy.runpod.net" not in dry
    assert "1 output, " in dry and "\n   adapter  LoRA adapter" in dry
    assert runpod_emulator.api_calls == []


def test_a_card_without_a_serverless_price_is_said_in_serverless_words() -> None:
    result = plan(config_for(runpod={"gpus": ["NVIDIA GeForce RTX 5090"]}), ROWS_1000, CPU_ONLY)
    assert "No price is known for NVIDIA GeForce RTX 5090 at serverless flex rates" in " ".join(result.warnings)
    assert "cloud" not in " ".join(result.warnings)
