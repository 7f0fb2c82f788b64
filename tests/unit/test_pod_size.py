"""A pod's disk, vCPUs and RAM follow the model, the exports and the checkpoints; the plan shows them."""

from __future__ import annotations

from unsloth_nb.config import TrainConfig
from unsloth_nb.planning.model_size import ModelSize
from unsloth_nb.planning.plan_text import format_plan
from unsloth_nb.planning.planner import plan
from unsloth_nb.planning.pod_size import pod_resources

LLAMA_70B = ModelSize(params=70_600_000_000, source="test", hidden_size=8192, num_layers=80)
LLAMA_1B = ModelSize(params=1_240_000_000, source="test", hidden_size=2048, num_layers=16)


def config(model: str = "unsloth/Llama-3.3-70B-Instruct", **sections: dict) -> TrainConfig:
    return TrainConfig.from_dict({"model": model, "dataset": "qa.jsonl", **sections})


def test_a_small_model_gets_the_floor_and_runpods_ram_per_gpu() -> None:
    pod = pod_resources(config("unsloth/Llama-3.2-1B-Instruct"), LLAMA_1B)
    assert pod.container_disk_gb == 25 and (pod.min_vcpu, pod.min_memory_gb) == (4, 8)


def test_a_merged_70b_export_needs_room_for_the_weights_twice_and_ram_to_merge() -> None:
    adapter_only = pod_resources(config(), LLAMA_70B)
    merged = pod_resources(config(save={"merged_16bit": True}), LLAMA_70B)
    assert adapter_only.container_disk_gb >= 160  # 141 GB of 16-bit weights downloaded, plus packages and room
    assert merged.container_disk_gb >= adapter_only.container_disk_gb + 140
    assert merged.min_memory_gb >= 170 > adapter_only.min_memory_gb >= 145
    assert "merged export 141" in merged.describe()


def test_checkpoints_kept_add_disk_and_gpus_add_vcpus_and_ram() -> None:
    few = pod_resources(config(), LLAMA_70B, total_steps=100, save_steps=100)
    many = pod_resources(config(), LLAMA_70B, total_steps=1000, save_steps=10)
    assert many.container_disk_gb > few.container_disk_gb and "100 checkpoints" in many.describe()
    two = pod_resources(config("unsloth/Llama-3.2-1B-Instruct"), LLAMA_1B, gpu_count=2)
    assert (two.min_vcpu, two.min_memory_gb) == (8, 16)


def test_a_disk_set_in_the_config_wins_and_the_plan_shows_the_pod() -> None:
    chosen = pod_resources(config(runpod={"container_disk_gb": 300}), LLAMA_70B)
    assert chosen.container_disk_gb == 300 and "runpod.container_disk_gb" in chosen.describe()
    text = format_plan(plan(config(placement="runpod")))
    pod_line = next(line for line in text.splitlines() if line.strip().startswith("Pod"))
    assert "GB disk" in pod_line and "vCPUs" in pod_line and "GB RAM" in pod_line


def test_a_gguf_export_needs_the_merge_the_f16_file_and_the_quantised_ones() -> None:
    merged = pod_resources(config(save={"merged_16bit": True}), LLAMA_70B)
    gguf = pod_resources(config(save={"gguf": ["q4_k_m"]}), LLAMA_70B)
    # 141 GB merged (the converter reads it), 141 GB f16 GGUF to quantise from, ~42 GB of q4_k_m
    assert gguf.container_disk_gb >= merged.container_disk_gb + 141 + 40
    assert "GGUF export 185" in gguf.describe()
