"""The planner: model size, memory, placement, RunPod GPU order, time and cost."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures import LLAMA_31_8B, MIXTRAL_8X7B, QWEN25_32B, SMOLLM2_135M, model_folder

from unsloth_nb.config import TrainConfig
from unsloth_nb.data import DatasetSummary
from unsloth_nb.errors import PlanError
from unsloth_nb.planning.gpu_catalog import GPU_CATALOG
from unsloth_nb.planning.plan_text import format_plan
from unsloth_nb.planning.planner import (
    POD_CHECKPOINT_EVERY_S,
    GpuOption,
    LocalHardware,
    default_save_steps,
    detect_local_hardware,
    estimate_model_size,
    memory_needed_gb,
    plan,
)

CPU_ONLY = LocalHardware("cpu", "Test CPU", 16.0, 12.0, ram_gb=16.0, cpu_count=2)
GPU_24GB = LocalHardware("cuda", "NVIDIA GeForce RTX 4090", 24.0, 23.0, ram_gb=64.0, cpu_count=16)
ROWS_1000 = DatasetSummary(source="support.jsonl", format="messages", rows=1000, tokens=400_000, longest_tokens=1500)
CATALOG = {g.gpu_type_id: g for g in GPU_CATALOG}


@pytest.fixture(autouse=True)
def empty_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test sees an empty Hugging Face cache unless it fills one."""
    hub = tmp_path / "hub"
    hub.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    return hub


def config_for(model: str | dict[str, Any], **sections: Any) -> TrainConfig:
    return TrainConfig.from_dict({"model": model, "dataset": "support.jsonl", **sections})


# ---------------------------------------------------------------------- sizes
@pytest.mark.parametrize(
    ("name", "config", "params"),
    [
        ("Llama-3.1-8B", LLAMA_31_8B, 8_030_261_248),
        ("Qwen2.5-32B", QWEN25_32B, 32_763_876_352),
        ("SmolLM2-135M", SMOLLM2_135M, 134_515_008),
    ],
)
def test_size_from_a_local_config_json_is_exact(tmp_path: Path, name: str, config: dict[str, Any], params: int) -> None:
    folder = model_folder(tmp_path, name, config)

    size = estimate_model_size(str(folder))

    assert size.params == params
    assert size.exact
    assert size.source == f"config.json in {folder}"
    assert size.hidden_size == config["hidden_size"]


def test_mixture_of_experts_counts_every_expert_and_reports_active(tmp_path: Path) -> None:
    size = estimate_model_size(str(model_folder(tmp_path, "mixtral", MIXTRAL_8X7B)))

    assert round(size.params / 1e9, 1) == 46.7
    assert size.active_params is not None
    assert round(size.active_params / 1e9, 1) == 12.9


def test_unknown_architecture_is_counted_approximately(tmp_path: Path) -> None:
    config = {**LLAMA_31_8B, "model_type": "brand_new_arch"}

    size = estimate_model_size(str(model_folder(tmp_path, "new", config)))

    assert not size.exact
    assert "approximate" in size.source
    assert abs(size.params - 8_030_261_248) / 8_030_261_248 < 0.01


def test_multimodal_config_counts_its_text_model(tmp_path: Path) -> None:
    config = {
        "model_type": "gemma3",
        "text_config": {"model_type": "gemma3_text", **{k: v for k, v in LLAMA_31_8B.items() if k != "model_type"}},
    }

    size = estimate_model_size(str(model_folder(tmp_path, "vlm", config)))

    assert size.params > 7e9
    assert "text model only" in size.source


def test_adapter_folder_is_sized_by_its_base_model(tmp_path: Path) -> None:
    base = model_folder(tmp_path, "base", SMOLLM2_135M)
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(base), "r": 16}))

    size = estimate_model_size(str(adapter))

    assert size.params == 134_515_008
    assert "adapter" in size.source


def test_size_from_the_hugging_face_cache(empty_hub_cache: Path) -> None:
    repo = empty_hub_cache / "models--unsloth--Meta-Llama-3.1-8B-Instruct"
    snapshot = repo / "snapshots" / "0123456789abcdef"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps(LLAMA_31_8B))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123456789abcdef")

    size = estimate_model_size("unsloth/Meta-Llama-3.1-8B-Instruct")

    assert size.params == 8_030_261_248
    assert size.exact
    assert size.source.startswith("Hugging Face cache (config.json")


def test_hf_home_is_used_when_hf_hub_cache_is_not_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    snapshot = tmp_path / "hf" / "hub" / "models--me--tiny" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps(SMOLLM2_135M))

    assert estimate_model_size("me/tiny").params == 134_515_008


@pytest.mark.parametrize(
    ("name", "billions"),
    [
        ("HuggingFaceTB/SmolLM2-135M-Instruct", 0.135),
        ("Qwen/Qwen2.5-0.5B-Instruct", 0.5),
        ("unsloth/Qwen2.5-1.5B-Instruct-bnb-4bit", 1.5),
        ("unsloth/Llama-3.2-1B-Instruct", 1.0),
        ("meta-llama/Llama-3.1-8B", 8.0),
        ("unsloth/gemma-2-9b-it", 9.0),
        ("unsloth/Llama-3.3-70B-Instruct", 70.0),
        ("openai/gpt-oss-20b", 20.0),
        ("Qwen/Qwen3-30B-A3B", 30.0),
        ("mistralai/Mixtral-8x7B-Instruct-v0.1", 45.92),
        ("microsoft/phi-4", 14.7),
        ("unsloth/gemma-3n-E4B-it", 8.0),
    ],
)
def test_size_from_the_name(name: str, billions: float) -> None:
    size = estimate_model_size(name)

    assert size.params == pytest.approx(billions * 1e9, rel=0.01)
    assert not size.exact
    assert "model name" in size.source or "known model family" in size.source


def test_active_parameters_are_read_from_an_a_suffix() -> None:
    assert estimate_model_size("Qwen/Qwen3-30B-A3B").active_params == 3_000_000_000


def test_a_name_without_a_size_is_an_error_that_says_how_to_fix_it() -> None:
    with pytest.raises(PlanError) as err:
        estimate_model_size("someone/mystery-model")

    message = str(err.value)
    assert "could not be determined" in message
    assert "local folder" in message and "config.json" in message


def test_a_folder_without_config_falls_back_to_its_name(tmp_path: Path) -> None:
    folder = tmp_path / "my-Qwen2.5-7B-finetune"
    folder.mkdir()

    size = estimate_model_size(str(folder))

    assert size.params == 7_000_000_000


# ---------------------------------------------------------------------- memory
def test_memory_follows_unsloths_table() -> None:
    assert memory_needed_gb(8_000_000_000, load_in_4bit=True, max_seq_length=2048, batch_size=2) == 6.0
    assert memory_needed_gb(8_000_000_000, load_in_4bit=False, max_seq_length=2048, batch_size=2) == 22.0
    assert memory_needed_gb(70_000_000_000, load_in_4bit=True, max_seq_length=2048, batch_size=2) == 41.0
    # 13B lies between the 11B and 14B rows.
    assert 7.5 < memory_needed_gb(13_000_000_000, True, 2048, 2) < 8.5


def test_small_models_need_less_than_the_first_row() -> None:
    tiny = memory_needed_gb(135_000_000, True, 2048, 2)
    one_b = memory_needed_gb(1_000_000_000, True, 2048, 2)

    assert 1.0 < tiny < one_b < 3.5


def test_longer_context_and_bigger_batches_need_more() -> None:
    base = memory_needed_gb(8_000_000_000, True, 2048, 2)
    long = memory_needed_gb(8_000_000_000, True, 16384, 2)
    wide = memory_needed_gb(8_000_000_000, True, 2048, 8)

    assert base < wide < long
    assert memory_needed_gb(8_000_000_000, True, 512, 1) == base  # the table is already the minimum


# ---------------------------------------------------------------------- placement across sizes
SIZES = {
    "0.1B": "HuggingFaceTB/SmolLM2-135M-Instruct",
    "1B": "unsloth/Llama-3.2-1B-Instruct",
    "8B": "unsloth/Llama-3.1-8B-Instruct",
    "14B": "unsloth/Qwen3-14B",
    "32B": "unsloth/Qwen2.5-32B-Instruct",
    "70B": "unsloth/Llama-3.3-70B-Instruct",
}


@pytest.mark.parametrize(
    ("size", "placement", "device", "first_gpu"),
    [
        ("0.1B", "local", "cpu", None),
        ("1B", "runpod", "cuda", "NVIDIA RTX A5000"),
        ("8B", "runpod", "cuda", "NVIDIA RTX A5000"),
        ("14B", "runpod", "cuda", "NVIDIA RTX A5000"),
        ("32B", "runpod", "cuda", "NVIDIA RTX 6000 Ada Generation"),
        ("70B", "runpod", "cuda", "NVIDIA RTX 6000 Ada Generation"),
    ],
)
def test_auto_placement_on_a_cpu_only_machine(size: str, placement: str, device: str, first_gpu: str | None) -> None:
    result = plan(config_for(SIZES[size]), ROWS_1000, CPU_ONLY)

    assert (result.placement, result.device) == (placement, device)
    assert_consistent(result, first_gpu)


@pytest.mark.parametrize(
    ("size", "placement", "first_gpu"),
    [
        ("0.1B", "local", None),
        ("1B", "local", None),
        ("8B", "local", None),
        ("14B", "local", None),
        ("32B", "runpod", "NVIDIA RTX 6000 Ada Generation"),
        ("70B", "runpod", "NVIDIA RTX 6000 Ada Generation"),
    ],
)
def test_auto_placement_with_a_24gb_gpu(size: str, placement: str, first_gpu: str | None) -> None:
    result = plan(config_for(SIZES[size]), ROWS_1000, GPU_24GB)

    assert (result.placement, result.device) == (placement, "cuda")
    assert result.method == "QLoRA (4-bit)"
    assert_consistent(result, first_gpu)


def assert_consistent(result: Any, first_gpu: str | None) -> None:
    assert result.total_steps == 125
    assert result.estimated_seconds is not None and result.estimated_seconds > 0
    assert result.memory_needed_gb > 0
    if first_gpu is None:
        assert result.gpu_candidates == []
        assert result.usd_per_hour is None and result.estimated_cost_usd is None
        return
    assert result.gpu_candidates[0].gpu_type_id == first_gpu
    assert result.usd_per_hour == CATALOG[first_gpu].secure_usd_per_hour
    assert result.estimated_cost_usd is not None and result.estimated_cost_usd > 0
    assert all(g.memory_gb * 0.9 >= result.memory_needed_gb for g in result.gpu_candidates)
    assert len({g.gpu_type_id for g in result.gpu_candidates}) == len(result.gpu_candidates)


def test_bigger_models_cost_more() -> None:
    costs = [plan(config_for(SIZES[s]), ROWS_1000, CPU_ONLY).estimated_cost_usd for s in ("1B", "8B", "14B", "32B", "70B")]

    assert costs == sorted(costs)
    assert costs[0] < costs[-1]


def test_cpu_plans_train_in_16_bit_and_say_so() -> None:
    result = plan(config_for(SIZES["0.1B"]), ROWS_1000, CPU_ONLY)

    assert result.method == "LoRA (16-bit)"
    assert any("16 bit" in r for r in result.reasons)
    assert result.memory_needed_gb > memory_needed_gb(result.size.params, True, 2048, 2)


def test_a_small_model_goes_to_runpod_when_ram_is_short() -> None:
    tiny_ram = LocalHardware("cpu", "Small box", 1.0, 0.5, ram_gb=1.0, cpu_count=2)

    result = plan(config_for(SIZES["0.1B"]), ROWS_1000, tiny_ram)

    assert result.placement == "runpod"


def test_a_busy_gpu_counts_only_its_free_memory() -> None:
    busy = LocalHardware("cuda", "NVIDIA GeForce RTX 4090", 24.0, 4.0, ram_gb=64.0, cpu_count=16)

    result = plan(config_for(SIZES["8B"]), ROWS_1000, busy)

    assert result.placement == "runpod"
    assert any("4.0 GB available" in r for r in result.reasons)


def test_a_local_plan_can_come_from_a_model_folder(tmp_path: Path) -> None:
    folder = model_folder(tmp_path, "llama", LLAMA_31_8B)

    result = plan(config_for(str(folder)), ROWS_1000, GPU_24GB)

    assert result.size.params == 8_030_261_248
    assert result.placement == "local"


# ---------------------------------------------------------------------- forced placements
def test_forced_local_on_cpu_refuses_a_large_model() -> None:
    with pytest.raises(PlanError) as err:
        plan(config_for(SIZES["8B"], placement="local"), ROWS_1000, CPU_ONLY)

    assert "placement" in str(err.value)
    assert "runpod" in str(err.value)


def test_forced_local_on_cpu_warns_for_a_1b_model() -> None:
    result = plan(config_for(SIZES["1B"], placement="local"), ROWS_1000, CPU_ONLY)

    assert (result.placement, result.device) == ("local", "cpu")
    assert any("slow" in w for w in result.warnings)


def test_forced_local_on_a_small_gpu_warns_but_keeps_it_local() -> None:
    result = plan(config_for(SIZES["70B"], placement="local"), ROWS_1000, GPU_24GB)

    assert (result.placement, result.device) == ("local", "cuda")
    assert any("run out of memory" in w for w in result.warnings)


def test_forced_runpod_rents_even_for_a_tiny_model() -> None:
    result = plan(config_for(SIZES["0.1B"], placement="runpod"), ROWS_1000, GPU_24GB)

    assert result.placement == "runpod"
    assert (
        result.gpu_candidates[0].gpu_type_id == "NVIDIA RTX A4000"
    )  # the cheapest card: a tiny model is bound by steps, not FLOPs
    assert result.estimated_cost_usd is not None and result.estimated_cost_usd > 0


# ---------------------------------------------------------------------- GPU choice
def test_the_users_gpu_list_is_kept_in_order_and_display_names_resolve() -> None:
    config = config_for(SIZES["8B"], placement="runpod", runpod={"gpus": ["NVIDIA H100 80GB HBM3", "RTX 4090"]})

    result = plan(config, ROWS_1000, CPU_ONLY)

    assert [g.gpu_type_id for g in result.gpu_candidates] == ["NVIDIA H100 80GB HBM3", "NVIDIA GeForce RTX 4090"]
    assert result.usd_per_hour == CATALOG["NVIDIA H100 80GB HBM3"].secure_usd_per_hour


def test_an_unknown_gpu_id_is_an_error_with_close_matches() -> None:
    config = config_for(SIZES["8B"], runpod={"gpus": ["NVIDIA A100 80GB"]})

    with pytest.raises(PlanError) as err:
        plan(config, ROWS_1000, CPU_ONLY)

    message = str(err.value)
    assert "runpod.gpus[0]" in message
    assert "NVIDIA A100 80GB PCIe" in message


def test_a_user_gpu_that_is_too_small_is_kept_with_a_warning() -> None:
    config = config_for(SIZES["70B"], runpod={"gpus": ["NVIDIA GeForce RTX 4090"]})

    result = plan(config, ROWS_1000, CPU_ONLY)

    assert result.gpu_candidates[0].gpu_type_id == "NVIDIA GeForce RTX 4090"
    assert any("may run out of memory" in w for w in result.warnings)


def test_community_cloud_uses_community_prices_and_skips_gpus_not_offered_there() -> None:
    result = plan(config_for(SIZES["70B"], runpod={"cloud_type": "COMMUNITY"}), ROWS_1000, CPU_ONLY)

    assert result.usd_per_hour == CATALOG[result.gpu_candidates[0].gpu_type_id].community_usd_per_hour
    assert result.gpu_candidates[0].gpu_type_id == "NVIDIA A40" or result.usd_per_hour is not None
    assert result.cloud_type == "COMMUNITY"
    assert all(g.community_usd_per_hour is not None for g in result.gpu_candidates)


def test_live_prices_replace_the_catalogue_and_out_of_stock_goes_last() -> None:
    live = [
        GpuOption("NVIDIA H100 PCIe", "H100 PCIe", 80, 2.10, None, stock="None"),
        GpuOption("NVIDIA H100 80GB HBM3", "H100 SXM", 80, 2.50, None, stock="High"),
        GpuOption("NVIDIA A100 80GB PCIe", "A100 PCIe", 80, 1.50, None, stock="Low"),
    ]

    result = plan(config_for(SIZES["70B"]), ROWS_1000, CPU_ONLY, prices=live)

    # The H100 SXM is ~2.8x as fast as the A100 for 1.7x the price: cheaper in total. Out of stock goes last.
    assert [g.gpu_type_id for g in result.gpu_candidates] == [
        "NVIDIA H100 80GB HBM3",
        "NVIDIA A100 80GB PCIe",
        "NVIDIA H100 PCIe",
    ]
    assert result.usd_per_hour == 2.50
    assert result.gpu_choice is not None and "runner-up NVIDIA A100 80GB PCIe" in result.gpu_choice


def test_a_model_no_single_gpu_can_hold_says_what_to_change() -> None:
    with pytest.raises(PlanError) as err:
        plan(config_for({"name": "meta-llama/Llama-3.1-405B", "load_in_4bit": False}), ROWS_1000, CPU_ONLY)

    assert "load_in_4bit" in str(err.value)


def test_sixteen_bit_lora_needs_bigger_gpus() -> None:
    result = plan(config_for({"name": SIZES["8B"], "load_in_4bit": False}), ROWS_1000, CPU_ONLY)

    assert result.method == "LoRA (16-bit)"
    assert result.memory_needed_gb == 22.0
    assert result.gpu_candidates[0].memory_gb >= 32  # a 24 GB card is too tight
    assert all(g.memory_gb * 0.9 >= 22.0 for g in result.gpu_candidates)


# ---------------------------------------------------------------------- steps, time, cost
@pytest.mark.parametrize(
    ("train", "steps"),
    [
        ({}, 125),
        ({"epochs": 2.5}, 313),
        ({"batch_size": 4, "grad_accum": 2}, 125),
        ({"batch_size": 3, "grad_accum": 3}, 112),
        ({"max_steps": 60}, 60),
    ],
)
def test_steps_are_counted_like_the_trainer(train: dict[str, Any], steps: int) -> None:
    result = plan(config_for(SIZES["8B"], train=train), ROWS_1000, GPU_24GB)

    assert result.total_steps == steps


def test_without_a_dataset_there_is_no_time_or_cost() -> None:
    result = plan(config_for(SIZES["70B"]), None, CPU_ONLY)

    assert result.total_steps is None
    assert result.estimated_seconds is None and result.estimated_cost_usd is None
    assert result.usd_per_hour is not None


def test_cost_is_time_times_price() -> None:
    result = plan(config_for(SIZES["32B"]), ROWS_1000, CPU_ONLY)

    assert result.estimated_seconds is not None and result.usd_per_hour is not None
    assert result.estimated_cost_usd == pytest.approx(result.estimated_seconds / 3600 * result.usd_per_hour, abs=0.01)
    assert result.startup_seconds is not None and result.startup_seconds >= 300  # a pod takes minutes to start


def test_more_data_takes_longer() -> None:
    small = plan(config_for(SIZES["8B"]), ROWS_1000, CPU_ONLY)
    big = plan(config_for(SIZES["8B"]), DatasetSummary("big.jsonl", "messages", rows=20_000, tokens=8_000_000), CPU_ONLY)

    assert big.estimated_seconds > small.estimated_seconds  # type: ignore[operator]
    assert big.estimated_cost_usd > small.estimated_cost_usd  # type: ignore[operator]


def test_a_cost_above_the_cap_is_a_warning() -> None:
    result = plan(config_for(SIZES["70B"], runpod={"max_cost_usd": 0.5}), ROWS_1000, CPU_ONLY)

    assert any("max_cost_usd" in w for w in result.warnings)


def test_rows_longer_than_max_seq_length_are_a_warning() -> None:
    long_rows = DatasetSummary("long.jsonl", "messages", rows=100, tokens=50_000, longest_tokens=9000)

    result = plan(config_for(SIZES["8B"]), long_rows, GPU_24GB)

    assert any("truncated" in w for w in result.warnings)


# ---------------------------------------------------------------------- output
def test_plan_to_dict_is_json() -> None:
    result = plan(config_for(SIZES["70B"]), ROWS_1000, CPU_ONLY)

    data = json.loads(json.dumps(result.to_dict()))

    assert data["placement"] == "runpod"
    assert data["gpu_candidates"][0]["gpu_type_id"] == "NVIDIA RTX 6000 Ada Generation"
    assert data["size"]["params"] == 70_000_000_000
    assert data["local"]["device"] == "cpu"


def test_format_plan_shows_the_key_figures() -> None:
    result = plan(config_for(SIZES["70B"]), ROWS_1000, CPU_ONLY)

    text = format_plan(result)

    assert "RunPod" in text
    assert "NVIDIA RTX 6000 Ada Generation" in text
    assert "70B" in text
    assert f"{result.memory_needed_gb:.1f} GB" in text
    assert f"${result.estimated_cost_usd:.2f}" in text
    assert f"${result.usd_per_hour:.2f}/h" in text
    assert "rough" in text
    assert "125" in text


def test_format_plan_for_a_local_cpu_job() -> None:
    text = format_plan(plan(config_for(SIZES["0.1B"]), ROWS_1000, CPU_ONLY))

    assert "this machine" in text
    assert "CPU" in text
    assert "LoRA (16-bit)" in text
    assert "gpuTypeId" not in text


# ---------------------------------------------------------------------- local hardware
@pytest.fixture
def fake_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An ``nvidia-smi`` on PATH that reports one RTX 4090 (only the binary is fake; detection is real)."""
    fake = tmp_path / "bin" / "nvidia-smi"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'NVIDIA GeForce RTX 4090, 24564, 22000'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("UNSLOTH_NB_LOCAL_DEVICE", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    detect_local_hardware.cache_clear()  # type: ignore[attr-defined]
    yield fake
    detect_local_hardware.cache_clear()  # type: ignore[attr-defined]


def test_a_gpu_is_found_with_nvidia_smi(fake_nvidia_smi: Path) -> None:
    hardware = detect_local_hardware()

    assert hardware.device == "cuda"
    assert hardware.name == "NVIDIA GeForce RTX 4090"
    assert hardware.memory_gb == pytest.approx(24.0, abs=0.02)
    assert hardware.free_memory_gb == pytest.approx(21.48, abs=0.01)


@pytest.mark.parametrize(("variable", "value"), [("UNSLOTH_NB_LOCAL_DEVICE", "cpu"), ("CUDA_VISIBLE_DEVICES", "")])
def test_a_hidden_gpu_is_not_planned_on(
    fake_nvidia_smi: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)

    hardware = detect_local_hardware()

    assert hardware.device == "cpu"
    assert hardware.memory_gb > 0


def test_an_unknown_device_override_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNSLOTH_NB_LOCAL_DEVICE", "tpu")

    with pytest.raises(PlanError, match="UNSLOTH_NB_LOCAL_DEVICE"):
        detect_local_hardware()


def test_the_planner_does_not_import_torch() -> None:
    code = "import sys, unsloth_nb.planning.planner; sys.exit(1 if {'torch', 'transformers', 'huggingface_hub'} & set(sys.modules) else 0)"

    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_a_runpod_plan_says_what_a_lost_pod_means_before_anything_is_rented() -> None:
    from unsloth_nb.config import TrainConfig
    from unsloth_nb.planning.planner import LocalHardware, plan

    cpu = LocalHardware(device="cpu", name="test CPU", memory_gb=16.0, ram_gb=16.0, cpu_count=2)
    base = {"model": "unsloth/Llama-3.1-8B-Instruct", "dataset": "qa.jsonl", "placement": "runpod"}
    without = plan(TrainConfig.from_dict(base), hardware=cpu)
    assert any("No train.save_steps" in w and "start again" in w for w in without.warnings)
    with_checkpoints = plan(TrainConfig.from_dict({**base, "train": {"save_steps": 50}}), hardware=cpu)
    assert any("Checkpoints every 50 steps" in r and "resumes" in r for r in with_checkpoints.reasons)
    assert not any("save_steps" in w for w in with_checkpoints.warnings)


# ---------------------------------------------------------------------- checkpoints on a pod
def test_a_long_pod_job_gets_a_checkpoint_about_every_fifteen_minutes() -> None:
    long_rows = DatasetSummary("big.jsonl", "messages", rows=50_000, tokens=40_000_000, longest_tokens=1500)
    result = plan(config_for(SIZES["70B"]), long_rows, CPU_ONLY)

    every = default_save_steps(result)

    assert result.placement == "runpod" and result.total_steps is not None and every is not None
    seconds_per_step = result.tokens_per_step / result.tokens_per_second  # type: ignore[operator]
    assert every * seconds_per_step == pytest.approx(POD_CHECKPOINT_EVERY_S, rel=0.05)
    assert every < result.total_steps


def test_short_pod_jobs_and_local_jobs_get_no_default_checkpoints() -> None:
    short = plan(config_for(SIZES["70B"], train={"max_steps": 3, "warmup_steps": 0}), ROWS_1000, CPU_ONLY)
    local = plan(config_for(SIZES["0.1B"]), ROWS_1000, GPU_24GB)

    assert short.placement == "runpod" and default_save_steps(short) is None
    assert local.placement == "local" and default_save_steps(local) is None


def test_prepare_keeps_checkpoints_on_a_long_pod_job_and_the_plan_says_so(tmp_path: Path) -> None:
    from unsloth_nb.demo import demo_dataset_path
    from unsloth_nb.jobrun.preflight import prepare

    base = {"model": "unsloth/Llama-3.3-70B-Instruct", "dataset": str(demo_dataset_path()), "placement": "runpod"}
    prepared = prepare(TrainConfig.from_dict({**base, "train": {"epochs": 200}}), tmp_path, check_secrets=False)
    chosen = prepare(TrainConfig.from_dict({**base, "train": {"epochs": 200, "save_steps": 7}}), tmp_path, check_secrets=False)

    every = prepared.config.train.save_steps
    assert every is not None and every == default_save_steps(prepared.plan)
    assert any(r.startswith(f"train.save_steps set to {every}: a checkpoint about every 15 min") for r in prepared.plan.reasons)
    assert not any("No train.save_steps" in w for w in prepared.plan.warnings)
    assert chosen.config.train.save_steps == 7
    assert not any(r.startswith("train.save_steps set to") for r in chosen.plan.reasons)


# ---------------------------------------------------------------------- a plan that tells the truth
TINY_LLAMA = {
    "model_type": "llama",
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 512,
    "tie_word_embeddings": True,
}
DEMO_ROWS = DatasetSummary(source="superbowl_qa_demo.jsonl", format="prompt_completion", rows=200, tokens=8925, longest_tokens=82)


def demo_like(model: str | dict[str, Any]) -> TrainConfig:
    """The demo's settings (unsloth_nb/demo.py): 40 steps, batch 4, no accumulation, max_seq_length 256."""
    return config_for(model, train={"max_steps": 40, "batch_size": 4, "grad_accum": 1, "max_seq_length": 256})


def finished_job(plan_made: Any, job_id: str, step_seconds: float, overhead: float, steps: int = 40) -> None:
    """A finished local job's folder as a real run leaves it: job.json, plan.json and its metrics events."""
    from unsloth_nb.jobrun.events import Event
    from unsloth_nb.jobrun.store import JobFolder, JobRecord

    created = 1_800_000_000.0
    finished = created + overhead + steps * step_seconds
    record = JobRecord(id=job_id, model=plan_made.model, dataset="d", state="succeeded", created=created, finished=finished)
    folder = JobFolder.create(record, {})
    folder.write_json("plan.json", plan_made.to_dict())
    events = [
        Event(job_id, step - 1, created + overhead * 0.8 + step * step_seconds, "metrics", {"step": step, "loss": 1.0})
        for step in range(1, steps + 1)
    ]
    folder.events_path.write_text("".join(e.to_json() + "\n" for e in events), encoding="utf-8")


def test_the_demo_estimate_without_history_is_near_the_measured_run(tmp_path: Path) -> None:
    # Measured on this project's 2-core machine: the demo's training job took 124 s (README, Performance).
    result = plan(demo_like(model_folder(tmp_path, "SmolLM2-135M", SMOLLM2_135M).as_posix()), DEMO_ROWS, CPU_ONLY)

    assert result.estimated_seconds is not None
    assert 0.7 * 124 <= result.estimated_seconds <= 1.3 * 124


def test_a_tiny_model_is_bound_by_steps_not_tokens(tmp_path: Path) -> None:
    # 2,000 steps of the test model took 5-12 min on 2 cores; the FLOP rule alone said "about a minute".
    model = model_folder(tmp_path, "tiny", TINY_LLAMA).as_posix()
    result = plan(config_for(model, train={"max_steps": 2000}), ROWS_1000, CPU_ONLY)

    assert result.training_seconds is not None and result.training_seconds >= 5 * 60


def test_earlier_jobs_calibrate_the_estimate_and_its_error_is_reported(tmp_path: Path) -> None:
    model = model_folder(tmp_path, "SmolLM2-135M", SMOLLM2_135M).as_posix()
    before = plan(demo_like(model), DEMO_ROWS, CPU_ONLY)
    assert before.calibration is None and before.estimate_errors is None
    finished_job(before, "20261201-100000-aaaa", step_seconds=4.0, overhead=10.0)  # slower than the rule of thumb

    after = plan(demo_like(model), DEMO_ROWS, CPU_ONLY)

    assert after.estimated_seconds == pytest.approx(10 + 40 * 4.0, rel=0.05)
    assert after.calibration is not None and "1 of 1 earlier job(s)" in after.calibration and "SmolLM2-135M" in after.calibration
    real = 10 + 40 * 4.0
    assert after.estimate_errors is not None and f"{(before.estimated_seconds - real) / real:+.0%}" in after.estimate_errors
    text = format_plan(after)
    assert "Past estimates" in text and "calibrated from 1 of 1 earlier job(s)" in text


def test_one_odd_run_does_not_swing_the_estimate(tmp_path: Path) -> None:
    model = model_folder(tmp_path, "SmolLM2-135M", SMOLLM2_135M).as_posix()
    made = plan(demo_like(model), DEMO_ROWS, CPU_ONLY)
    finished_job(made, "20261201-100000-aaaa", step_seconds=3.0, overhead=10.0)
    finished_job(made, "20261201-110000-bbbb", step_seconds=3.2, overhead=10.0)
    finished_job(made, "20261201-120000-cccc", step_seconds=9.0, overhead=10.0)  # the machine was busy

    after = plan(demo_like(model), DEMO_ROWS, CPU_ONLY)

    assert after.estimated_seconds == pytest.approx(10 + 40 * 3.2, rel=0.05)
    assert after.calibration is not None and "3 of 3" in after.calibration


def test_calibration_is_per_machine(tmp_path: Path) -> None:
    model = model_folder(tmp_path, "SmolLM2-135M", SMOLLM2_135M).as_posix()
    other_machine = LocalHardware("cpu", "Other CPU", 64.0, 60.0, ram_gb=64.0, cpu_count=32)
    finished_job(plan(demo_like(model), DEMO_ROWS, other_machine), "20261201-100000-bbbb", step_seconds=0.2, overhead=5.0)

    assert plan(demo_like(model), DEMO_ROWS, CPU_ONLY).calibration is None
    assert plan(demo_like(model), DEMO_ROWS, other_machine).calibration is not None


def test_summary_and_full_plan_give_the_same_time() -> None:
    from unsloth_nb.ui.panel import _plan_html

    result = plan(config_for(SIZES["70B"]), ROWS_1000, CPU_ONLY)

    short = result.time_text()
    assert short in _plan_html(result)
    assert short.split(" (")[0] in format_plan(result)
    # the start-up is shown beside the training time, never as all of it
    assert "start-up + ~" in short and "training" in short


def test_the_plan_says_which_keys_are_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    pushed = plan(config_for(SIZES["0.1B"], hub={"repo_id": "me/lora"}), ROWS_1000, CPU_ONLY)
    gated = plan(config_for("meta-llama/Llama-2-70b-hf"), ROWS_1000, CPU_ONLY)
    plain = plan(config_for(SIZES["0.1B"]), ROWS_1000, CPU_ONLY)

    assert [k.split(":")[0] for k in pushed.needs_secrets] == ["HF_TOKEN"]
    assert "hub.repo_id" in pushed.needs_secrets[0]
    assert [k.split(":")[0] for k in gated.needs_secrets] == ["RUNPOD_API_KEY", "HF_TOKEN"]
    assert "gated" in gated.needs_secrets[1]
    assert plain.needs_secrets == []
    assert "HF_TOKEN (not set in the environment)" in format_plan(pushed)
    assert "Keys          none needed" in format_plan(plain)


def test_the_gpu_is_chosen_by_total_cost_and_the_runner_up_is_named() -> None:
    result = plan(config_for(SIZES["14B"]), ROWS_1000, CPU_ONLY)

    first = result.gpu_candidates[0]
    assert result.memory_needed_gb < 10
    assert first.secure_usd_per_hour is not None and first.secure_usd_per_hour <= 0.49  # not an A100 at $1.64/h
    assert result.gpu_choice is not None
    assert result.gpu_choice.startswith(first.gpu_type_id)
    assert f"runner-up {result.gpu_candidates[1].gpu_type_id}" in result.gpu_choice
    assert "GPU choice" in format_plan(result)


def test_the_gpu_table_explains_its_stock_column() -> None:
    text = format_plan(plan(config_for(SIZES["70B"]), ROWS_1000, CPU_ONLY))

    assert "'-' = not known" in text and "indicative" in text


def test_an_earlier_jobs_export_does_not_count_as_start_up(tmp_path: Path) -> None:
    """The export has its own rule in the plan: a job that spent minutes on GGUF must not slow the next plan's start-up."""
    model = model_folder(tmp_path, "SmolLM2-135M", SMOLLM2_135M).as_posix()
    exporting = config_for(model, train={"max_steps": 40, "batch_size": 4, "grad_accum": 1, "max_seq_length": 256})
    exporting.save.gguf = ["f16"]
    made = plan(exporting, DEMO_ROWS, CPU_ONLY)
    assert made.export_seconds
    finished_job(made, "20261201-100000-aaaa", step_seconds=4.0, overhead=10.0 + made.export_seconds)

    after = plan(demo_like(model), DEMO_ROWS, CPU_ONLY)  # no export this time

    assert after.estimated_seconds == pytest.approx(10 + 40 * 4.0, rel=0.05)
