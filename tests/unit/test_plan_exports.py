"""The plan and ``--dry-run`` name every output a job writes: what, how big, how long, and what comes down.

Exports (GGUF, Ollama Modelfile, merged 16-bit and 4-bit models) used to be missing from the plan: a pod job
that wrote 30 GB of GGUF files was priced and timed as if it brought back only its adapter.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from unsloth_nb import cli
from unsloth_nb.config import TrainConfig
from unsloth_nb.data import DatasetSummary
from unsloth_nb.demo import demo_dataset_path
from unsloth_nb.planning.exports import CONVERT_S, DOWNLOAD_GB_PER_S, QUANTISE_S_PER_GB
from unsloth_nb.planning.plan_text import format_plan
from unsloth_nb.planning.planner import LocalHardware, plan
from unsloth_nb.testing.runpod_emulator import RunPodEmulator

CPU_ONLY = LocalHardware("cpu", "Test CPU", 16.0, 12.0, ram_gb=16.0, cpu_count=2)
ROWS = DatasetSummary(source="support.jsonl", format="messages", rows=1000, tokens=400_000, longest_tokens=1500)
EXPORTS = {"gguf": ["q4_k_m", "q8_0"], "ollama": True, "merged_16bit": True, "merged_4bit": True}


@pytest.fixture(autouse=True)
def empty_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))


def config_for(placement: str = "runpod", **sections: object) -> TrainConfig:
    return TrainConfig.from_dict(
        {"model": "unsloth/Llama-3.1-8B-Instruct", "dataset": "support.jsonl", "placement": placement, **sections}
    )


def test_a_pod_plan_lists_each_export_with_its_size_time_disk_download_and_price() -> None:
    bare = plan(config_for(), ROWS, CPU_ONLY)
    full = plan(config_for(save=EXPORTS), ROWS, CPU_ONLY)
    text = format_plan(full)

    names = [o.name for o in full.outputs]
    assert names == ["adapter", "merged_16bit", "gguf_q4_k_m", "gguf_q8_0", "ollama_modelfile", "merged_4bit"]
    sizes = {o.name: o.gb for o in full.outputs}
    assert 15 < sizes["merged_16bit"] < 17 and 4 < sizes["gguf_q4_k_m"] < 6 and 8 < sizes["gguf_q8_0"] < 9.5
    assert 5 < sizes["merged_4bit"] < 6.5  # QLoRA on a pod trains in 4 bit, so the 4-bit merge is made
    outputs = next(line for line in text.splitlines() if line.strip().startswith("Outputs"))
    assert "GGUF q4_k_m (llama.cpp quantiser, from f16) ~4.8 GB" in outputs and "Ollama Modelfile" in outputs
    assert "merged 16-bit model ~16.0 GB" in outputs and "export ~" in outputs
    assert "come down to this machine" in outputs and "billed" in outputs

    # Export and download are in the time and in the paid time, so in the cost too.
    assert full.export_seconds and full.download_seconds
    assert full.download_seconds == pytest.approx((sum(sizes.values()) - sizes["adapter"]) / DOWNLOAD_GB_PER_S, abs=1)
    assert full.export_seconds > CONVERT_S + 16 * QUANTISE_S_PER_GB  # the quantiser reads the 16 GB f16 file
    assert full.training_seconds == bare.training_seconds and full.startup_seconds == bare.startup_seconds
    assert full.estimated_seconds == pytest.approx(bare.estimated_seconds + full.export_seconds + full.download_seconds, abs=2)
    assert full.estimated_cost_usd is not None and bare.estimated_cost_usd is not None
    assert full.estimated_cost_usd > bare.estimated_cost_usd
    assert "export" in text.splitlines()[5] and "download" in text.splitlines()[5]  # the Time row says both parts

    # The pod's disk holds every export.
    assert full.pod is not None and bare.pod is not None
    parts = dict(full.pod.disk_parts)
    assert parts["merged 4-bit export"] == pytest.approx(sizes["merged_4bit"])
    assert parts["GGUF export"] > sizes["gguf_q4_k_m"] + sizes["gguf_q8_0"] + 16  # + the f16 the quantiser reads
    assert full.pod.container_disk_gb > bare.pod.container_disk_gb + 40


def test_a_local_cpu_plan_times_the_export_says_the_4bit_merge_is_skipped_and_downloads_nothing() -> None:
    config = TrainConfig.from_dict(
        {"model": "HuggingFaceTB/SmolLM2-135M-Instruct", "dataset": "x.jsonl", "placement": "local", "save": EXPORTS}
    )
    result = plan(config, ROWS, CPU_ONLY)
    text = format_plan(result)

    four_bit = next(o for o in result.outputs if o.name == "merged_4bit")
    assert four_bit.skipped and "skipped (the model trains in 16 bit here" in text
    assert result.export_seconds and not result.download_seconds
    assert "come down to this machine" not in text
    assert next(o for o in result.outputs if o.name == "gguf_q8_0").gb == pytest.approx(0.134 * 1.07, rel=0.1)


def test_a_plan_without_exports_still_names_the_adapter() -> None:
    result = plan(config_for(), ROWS, CPU_ONLY)
    assert [o.name for o in result.outputs] == ["adapter"] and result.export_seconds is None
    assert "Outputs" in format_plan(result) and "export ~" not in format_plan(result)


def test_the_dry_run_lists_every_download_exports_included(
    runpod_emulator: RunPodEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = ["--model", "unsloth/Llama-3.1-8B-Instruct", "--dataset", str(demo_dataset_path()), "--placement", "runpod"]
    exports = ["--save-gguf", "q4_k_m", "--save-ollama", "--save-merged", "--save-merged-4bit"]
    assert cli.main(["train", *flags, *exports, "--dry-run"]) == 0

    out = capsys.readouterr().out
    step = out[out.index("\n12. ") : out.index("\n13. ")]
    assert "5 outputs" in step
    for path in ("adapter", "merged_16bit", "gguf/Llama-3.1-8B-Instruct.Q4_K_M.gguf", "gguf/Modelfile", "merged_4bit"):
        assert f"\n   {path} " in step, path
    assert "artifacts?prefix=<output>&sha256=1" in step
    assert runpod_emulator.api_calls == [] and runpod_emulator.pods == {}


def test_serverless_warns_that_exports_do_not_fit_its_result() -> None:
    text = format_plan(plan(config_for("serverless", save={"gguf": ["q4_k_m"]}), ROWS, CPU_ONLY))
    assert "at most 64 MB zipped" in text and "Use placement: runpod to export" in text
    assert "to export" not in format_plan(plan(config_for("serverless"), ROWS, CPU_ONLY))


def test_outputs_travel_in_the_plans_json() -> None:
    result = plan(config_for(save={"gguf": ["f16"]}), ROWS, CPU_ONLY)
    data = result.to_dict()
    assert [o["name"] for o in data["outputs"]] == ["adapter", "gguf_f16"]
    assert dataclasses.asdict(result.outputs[1])["path"].endswith(".F16.gguf")
