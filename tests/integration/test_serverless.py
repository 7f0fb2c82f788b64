"""``placement: serverless`` against the emulated RunPod serverless side, through the unmodified ``runpod`` SDK.

The endpoint's workers are local processes running the template's start command (the boot unpacks our
package from the request and serves it with the SDK's own ``runpod.serverless.start`` worker loop), so
our real handler runs inside the real SDK; the client submits, streams and cancels with the SDK's
``Endpoint``. Every test ends with no endpoint, no template and no worker left.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtures import judge_requests, tiny_job

import unsloth_nb
from unsloth_nb.testing.hub_emulator import LoopbackHub, dataset_key
from unsloth_nb.testing.runpod_emulator import RunPodEmulator

pytestmark = pytest.mark.timeout(300)


def test_tiny_job_trains_on_an_emulated_serverless_endpoint(
    serverless: RunPodEmulator, tiny_model: Path, dataset_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "hf_test_secret_value_0123456789"
    monkeypatch.setenv("HF_TOKEN", secret)
    job = tiny_job("serverless", tiny_model, dataset_file)
    job.wait(timeout=280)

    assert job.state == "succeeded", job.error
    events = job.events()
    assert [e.seq for e in events] == list(range(len(events)))
    losses = [e.data["loss"] for e in events if e.kind == "metrics" and "loss" in e.data]
    assert len(losses) == 4  # every step's loss reached the job's log (and so the chart)
    states = [e["state"] for e in events if e.kind == "status"]
    assert states[:4] == ["created", "planning", "provisioning", "starting"]
    assert "training" in states and states[-1] == "succeeded"
    assert (job.adapter_path / "adapter_config.json").exists()
    # The request asked for an execution timeout of its own, not the platform's 600 s default.
    requests = list(serverless.serverless.requests.values())
    assert len(requests) == 1 and requests[0].status == "COMPLETED"
    assert requests[0].execution_timeout_s >= 600
    # The worker's raw stream is kept, as a pod's is.
    mirror = job.folder.path / "pods" / f"{requests[0].id}.events.jsonl"
    assert mirror.exists()
    cost = [e for e in events if e.kind == "cost"]
    assert cost and cost[-1].data["source"] == "serverless"
    assert job.plan is not None and cost[-1].data["usd_per_hour"] == job.plan.usd_per_hour  # a flex worker's rate
    # No secret in what RunPod keeps: the template's env and the request's input, as the emulator recorded them.
    assert secret not in json.dumps([t.to_json() for t in serverless.serverless.template_history])
    assert secret not in json.dumps(requests[0].input)
    assert all(secret not in line for line in job.folder.path.joinpath("events.jsonl").read_text().splitlines())


def test_a_serverless_job_reads_its_hub_dataset_on_the_worker_from_the_reference_it_is_sent(
    serverless: RunPodEmulator,
    tiny_model: Path,
    loopback_hub: LoopbackHub,
    superbowl_on_hub: str,
) -> None:
    job = tiny_job("serverless", tiny_model, superbowl_on_hub, train={"max_steps": 2})
    job.wait(timeout=280)

    assert job.state == "succeeded", job.error
    (request,) = serverless.serverless.requests.values()
    sent = request.input
    assert sent["dataset"] is None and sent["dataset_sha256"] is None  # no rows in the request
    pinned = sent["source"]["pinned"]["org/superbowl"]
    assert pinned["kind"] == "hub" and pinned["repo_id"] == "org/superbowl"
    assert pinned["revision"] == loopback_hub.sha(dataset_key("org/superbowl"))  # the commit preflight saw
    logs = [str(e.data.get("message", "")) for e in job.events() if e.kind == "log"]
    assert any("dataset read here: 40 training" in line for line in logs), logs
    full_reads = [r for r in loopback_hub.reads if r.startswith("GET") and "bytes=" not in r]
    assert full_reads == [f"GET {dataset_key('org/superbowl')}/data/train-00000-of-00001.jsonl"]  # by the worker only
    assert len([e for e in job.events() if e.kind == "metrics" and "loss" in e.data]) == 2


def test_serve_answers_through_the_openai_sdk_with_the_adapter_applied_and_stop_leaves_nothing(
    serverless: RunPodEmulator, tiny_model: Path, dataset_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train = {"max_steps": 30, "batch_size": 2, "grad_accum": 1, "max_seq_length": 512, "warmup_steps": 0, "lr": 2e-3}
    job = unsloth_nb.train(
        model=str(tiny_model), dataset=str(dataset_file), placement="local", train=train, lora={"r": 8, "alpha": 16}
    )
    job.wait(timeout=280)
    assert job.adapter_path is not None

    served = job.serve(adapter=str(job.adapter_path), gpu_ids=["NVIDIA RTX A5000"], wait_s=120)
    printed = capsys.readouterr().out
    assert served.base_url.startswith(serverless.serverless_url) and served.base_url.endswith("/openai/v1")
    assert served.base_url in printed and "from openai import OpenAI" in printed
    assert "~$0.00019/s while a worker runs" in printed and "stays up 60 s after the last request" in printed  # said first
    template = serverless.serverless.templates[served.template_id]
    assert template.env["ENABLE_LORA"] == "true" and int(template.env["MAX_LORA_RANK"]) >= 8
    assert "HF_TOKEN" not in template.env or template.env["HF_TOKEN"] == "{{ RUNPOD_SECRET_HF_TOKEN }}"

    question = "Who won Super Bowl LIX?"
    tuned, base = job.chat(question, max_new_tokens=24), job.chat(question, base=True, max_new_tokens=24)
    # One endpoint, two models: the adapter changes the answer. (The tiny random model's fine-tune learns the
    # chat template's end marker first, so it answers "" where its base rambles newlines: different, as asserted.)
    assert base and tuned != base, (tuned, base)

    from unsloth_nb.cli import main

    assert main(["serve", job.id, "--stop"]) == 0
    assert main(["serve", job.id, "--stop"]) == 0
    assert capsys.readouterr().out.splitlines()[-2:] == [f"endpoint of {job.id} deleted", f"{job.id} is not served"]
    assert not job.stop_serving()


def test_endpoints_are_listed_and_removed_by_the_runpod_cli(
    serverless: RunPodEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    from unsloth_nb.backends.runpod_serverless.endpoints import EndpointsApi
    from unsloth_nb.cli import main

    api = EndpointsApi()
    template = api.create_template({"name": "unsloth-nb-old-job-tpl", "imageName": "x", "isServerless": True})
    left = api.create_endpoint({"name": "unsloth-nb-old-job", "templateId": template, "gpuTypeIds": ["NVIDIA RTX A5000"]})
    other = api.create_template({"name": "someone-else", "imageName": "x", "isServerless": True})
    theirs = api.create_endpoint({"name": "someone-else", "templateId": other, "gpuTypeIds": ["NVIDIA RTX A5000"]})

    assert main(["runpod", "endpoints", "list"]) == 0
    listed = capsys.readouterr().out
    assert left.id in listed and theirs.id not in listed
    assert main(["runpod", "cleanup", "--yes"]) == 0
    assert left.id not in serverless.serverless.endpoints and theirs.id in serverless.serverless.endpoints
    assert template not in serverless.serverless.templates
    assert main(["runpod", "endpoints", "delete", theirs.id]) == 0


def test_a_job_taken_over_after_its_process_died_has_its_endpoint_deleted(serverless: RunPodEmulator) -> None:
    import asyncio
    from types import SimpleNamespace

    from unsloth_nb.backends.runpod_serverless.backend import ServerlessBackend
    from unsloth_nb.backends.runpod_serverless.endpoints import EndpointsApi
    from unsloth_nb.errors import BackendError

    api = EndpointsApi()
    template = api.create_template({"name": "unsloth-nb-job-9-tpl", "imageName": "x", "isServerless": True})
    endpoint = api.create_endpoint({"name": "unsloth-nb-job-9", "templateId": template, "gpuTypeIds": ["NVIDIA RTX A5000"]})

    with pytest.raises(BackendError, match=f"endpoint {endpoint.id} was deleted"):
        asyncio.run(ServerlessBackend().reattach(SimpleNamespace(job_id="job-9")))  # type: ignore[arg-type]
    assert serverless.serverless.endpoints == {}


def test_the_budget_running_out_cancels_the_request(serverless: RunPodEmulator, tiny_model: Path, dataset_file: Path) -> None:
    job = tiny_job("serverless", tiny_model, dataset_file, train={"max_steps": 500}, runpod={"max_cost_usd": 0.0001})
    job.wait(timeout=120)

    assert job.state == "cancelled"
    reason = job.events(kinds={"status"})[-1].get("reason") or ""
    assert "runpod.max_cost_usd" in reason and "$0.0001" in reason
    (request,) = serverless.serverless.requests.values()
    assert request.status == "CANCELLED"


def test_the_judge_takes_both_models_answers_from_the_served_endpoint(
    serverless: RunPodEmulator, tiny_model: Path, dataset_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from unsloth_nb.evaluate.answers import AnswerSet
    from unsloth_nb.testing import fake_llm as behaviours
    from unsloth_nb.testing.fake_openai import FakeOpenAI

    evals = Path(unsloth_nb.__file__).parent / "demo_data" / "superbowl_eval.jsonl"
    train = {"max_steps": 4, "batch_size": 2, "grad_accum": 1, "max_seq_length": 512, "warmup_steps": 0, "lr": 2e-3}
    job = unsloth_nb.train(model=str(tiny_model), dataset=str(dataset_file), placement="local", train=train, lora={"r": 8})
    job.wait(timeout=280)
    assert job.adapter_path is not None
    served = job.serve(adapter=str(job.adapter_path), gpu_ids=["NVIDIA RTX A5000"], wait_s=120, say=lambda _text: None)
    asked_before = len(serverless.serverless.chat_requests)

    monkeypatch.setenv("OPENAI_API_KEY", FakeOpenAI.api_key)
    with FakeOpenAI(behaviours.picks_first()) as fake:
        report = job.evaluate(eval_path=str(evals), base_url=fake.base_url, max_questions=2, max_new_tokens=6)
    assert len(report.rows) == 2 and fake.calls == judge_requests(job)  # two questions, each judged in both orders

    # Both models' answers came from the endpoint: fine-tune then base, per question, and nothing else.
    asked = serverless.serverless.chat_requests[asked_before:]
    assert asked == [served.adapter_name, served.base_model] * 2
    answers = AnswerSet.load(Path(job.record.output_dir) if job.record.output_dir else job.folder.outputs)
    assert answers is not None and len(answers.pairs) == 2
    first = answers.pairs[0]
    assert first.finetuned == job.chat(first.question, temperature=0, max_new_tokens=6)  # the same endpoint, greedy
    assert job.stop_serving()
