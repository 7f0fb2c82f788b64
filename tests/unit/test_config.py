"""TrainConfig: one schema for dicts, YAML, JSON and flags; errors that name the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from unsloth_nb.config import TrainConfig, field_specs
from unsloth_nb.errors import ConfigError

MINIMAL = {"model": "unsloth/Llama-3.2-1B-Instruct", "dataset": "qa.jsonl"}


def build(**sections: object) -> TrainConfig:
    return TrainConfig.from_dict({**MINIMAL, **sections})


def test_defaults_follow_unsloth_notebooks() -> None:
    config = build()
    assert (config.lora.r, config.lora.alpha, config.lora.dropout) == (16, 16, 0.0)
    assert config.lora.target_modules == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    assert (config.train.lr, config.train.batch_size, config.train.grad_accum) == (2e-4, 2, 4)
    assert (config.train.warmup_steps, config.train.optim, config.train.seed) == (5, "adamw_8bit", 3407)
    assert config.model.load_in_4bit is True
    assert config.placement == "auto"


def test_strings_stand_for_model_name_and_dataset_path() -> None:
    config = build()
    assert config.model.name == "unsloth/Llama-3.2-1B-Instruct"
    assert config.dataset.path == "qa.jsonl"


def test_yaml_as_in_the_design_document() -> None:
    config = TrainConfig.from_yaml(
        """
model: unsloth/Qwen3-14B
dataset: data/support.jsonl
lora: {r: 16, alpha: 16}
train: {epochs: 2, lr: 2e-4, max_seq_length: 2048}
runpod: {gpus: ["NVIDIA A100 80GB PCIe", "NVIDIA H100 80GB HBM3"], max_cost_usd: 5, max_runtime: 90m}
hub: {repo_id: me/qwen3-support-lora, private: true}
"""
    )
    assert config.train.lr == 2e-4  # PyYAML reads 2e-4 as a string; the schema turns it into a number
    assert config.train.epochs == 2.0
    assert config.runpod.gpus == ["NVIDIA A100 80GB PCIe", "NVIDIA H100 80GB HBM3"]
    assert config.runpod.max_cost_usd == 5.0
    assert config.runpod.max_runtime == 5400.0
    assert config.hub.repo_id == "me/qwen3-support-lora"


def test_json_file_and_yaml_file_load_the_same(tmp_path: Path) -> None:
    data = {**MINIMAL, "lora": {"r": 8}, "train": {"max_steps": 30}}
    (tmp_path / "job.json").write_text(json.dumps(data))
    (tmp_path / "job.yaml").write_text(build(lora={"r": 8}, train={"max_steps": 30}).to_yaml())
    assert TrainConfig.from_file(tmp_path / "job.json") == TrainConfig.from_file(tmp_path / "job.yaml")


def test_round_trip_through_dict() -> None:
    config = build(lora={"r": 32, "use_rslora": True}, runpod={"gpus": ["NVIDIA H100 80GB HBM3"]})
    assert TrainConfig.from_dict(config.to_dict()) == config


def test_aliases_from_unsloth_notebooks() -> None:
    config = build(lora={"lora_alpha": 32}, train={"learning_rate": 1e-4, "per_device_train_batch_size": 8})
    assert (config.lora.alpha, config.train.lr, config.train.batch_size) == (32, 1e-4, 8)


def test_merged_applies_dotted_overrides() -> None:
    config = build().merged({"lora.r": 64, "train.max_steps": 10, "model": "other/model"})
    assert (config.lora.r, config.train.max_steps, config.model.name) == (64, 10, "other/model")


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ({"lora": {"r": 0}}, "lora.r", "at least 1"),
        ({"train": {"lr": -1}}, "train.lr", "greater than 0"),
        ({"train": {"lr": "fast"}}, "train.lr", "expected a number"),
        ({"train": {"batch_size": 2.5}}, "train.batch_size", "whole number"),
        ({"train": {"scheduler": "wavy"}}, "train.scheduler", "not one of"),
        ({"train": {"max_seq_length": 4}}, "train.max_seq_length", "at least 16"),
        ({"train": {"epochs": 0}}, "train.epochs", "greater than 0"),
        ({"train": {"warmup_steps": 50, "max_steps": 10}}, "train.warmup_steps", "exceed max_steps"),
        ({"lora": {"rank": 8}}, "lora.rank", "unknown field"),
        ({"lora": {"target_modules": []}}, "lora.target_modules", "at least one"),
        ({"model": {"name": "m", "load_in_4bit": "maybe"}}, "model.load_in_4bit", "true or false"),
        ({"placement": "moon"}, "placement", "auto, local, runpod"),
        ({"hub": {"repo_id": "no-slash"}}, "hub.repo_id", "owner/name"),
        ({"runpod": {"max_runtime": "soon"}}, "runpod.max_runtime", "duration"),
        ({"runpod": {"cloud_type": "cheap"}}, "runpod.cloud_type", "SECURE"),
        ({"dataset": {"path": "x.jsonl", "eval_split": 0.9}}, "dataset.eval_split", "at most 0.5"),
        ({"model": ""}, "model.name", "no model given"),
        ({"dataset": ""}, "dataset.path", "no dataset given"),
    ],
)
def test_each_error_names_its_field(data: dict, field: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build(**data)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")
    assert words in str(caught.value)


@pytest.mark.parametrize("key", ["hf_token", "api_key", "token", "runpod_api_key"])
def test_secrets_are_refused_in_configs(key: str) -> None:
    with pytest.raises(ConfigError, match="environment"):
        TrainConfig.from_dict({**MINIMAL, key: "hf_abc"})
    with pytest.raises(ConfigError, match="environment"):
        TrainConfig.from_dict({**MINIMAL, "hub": {key: "hf_abc"}})


def test_serialised_config_has_no_secret_shaped_field() -> None:
    for spec in field_specs():
        leaf = spec.path.rsplit(".", 1)[-1].replace("max_new_tokens", "max_new")  # a count of tokens, not a token
        assert not any(word in leaf for word in ("token", "key", "secret", "password")), spec.path


def test_every_field_has_help_and_a_unique_flag() -> None:
    specs = field_specs()
    flags = [s.flag for s in specs if s.flag]
    assert len(flags) == len(set(flags))
    assert all(s.help for s in specs)
    assert {"--model", "--dataset", "--hub-id", "--epochs", "--lr", "--max-steps", "--lora-r"} <= set(flags)


def test_bad_yaml_names_the_line() -> None:
    with pytest.raises(ConfigError, match=r"cell:3: not valid YAML"):
        TrainConfig.from_yaml("model: a\ndataset: b\nlora: {r: [}\n", source="cell")


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        TrainConfig.from_file(tmp_path / "nope.yaml")


def test_shorthand_strings_take_nested_overrides_in_any_order() -> None:
    from unsloth_nb.api import as_config

    config = as_config(model="m", dataset="qa.jsonl", dataset__skip_invalid=True, model__load_in_4bit=False)
    assert (config.dataset.path, config.dataset.skip_invalid) == ("qa.jsonl", True)
    assert (config.model.name, config.model.load_in_4bit) == ("m", False)
    config = as_config(dataset__max_rows=5, dataset="qa.jsonl", model="m")
    assert (config.dataset.path, config.dataset.max_rows) == ("qa.jsonl", 5)


def test_a_nested_field_under_a_plain_value_names_the_field() -> None:
    from unsloth_nb.api import as_config

    with pytest.raises(ConfigError, match=r"^placement: expected a mapping"):
        as_config(model="m", dataset="d", placement="local", placement__x=1)


def test_every_bad_field_is_reported_at_once() -> None:
    from unsloth_nb.errors import InputErrors

    with pytest.raises(InputErrors) as caught:
        TrainConfig.from_dict({"model": "", "dataset": "qa.jsonl", "lora": {"r": 0}, "train": {"lr": "fast", "epoch": 2}})

    assert [e.field for e in caught.value.errors()] == ["train.lr", "train.epoch", "lora.r", "model.name"]
    assert str(caught.value).startswith("4 problems; nothing was started:\n- train.lr: expected a number")


def test_checked_hands_back_the_mistakes_and_a_config_of_the_rest() -> None:
    config, errors = TrainConfig.checked({**MINIMAL, "lora": {"r": 0, "alpha": 32}, "train": {"batch_size": "x"}})

    assert [e.field for e in errors] == ["train.batch_size", "lora.r"]
    assert (config.lora.r, config.lora.alpha, config.train.batch_size) == (16, 32, 2)  # refused values: their defaults


@pytest.mark.parametrize(
    ("data", "suggestion"),
    [
        ({"train": {"epoch": 2}}, "did you mean train.epochs?"),
        ({"train": {"learning_rte": 1e-4}}, "did you mean train.learning_rate?"),
        ({"epochs": 2}, "did you mean train.epochs?"),  # a field of another section
        ({"lora": {"max_steps": 3}}, "did you mean train.max_steps?"),
    ],
)
def test_an_unknown_field_names_the_closest_one(data: dict, suggestion: str) -> None:
    with pytest.raises(ConfigError, match="unknown field") as caught:
        build(**data)
    assert suggestion in str(caught.value)


def test_a_default_warmup_is_clamped_to_a_short_run_but_the_users_own_is_refused() -> None:
    """`--max-steps 3` used to be refused because the default warmup_steps is 5."""
    short = build(train={"max_steps": 3})
    assert short.train.warmup_steps == 0 and not short.user_set("train.warmup_steps")
    assert build(train={"max_steps": 60}).train.warmup_steps == 5  # a run long enough keeps Unsloth's default

    with pytest.raises(ConfigError, match=r"5 warm-up steps exceed max_steps=3"):
        build(train={"max_steps": 3, "warmup_steps": 5})


def test_merged_keeps_knowing_which_fields_the_user_set() -> None:
    config = build(train={"max_steps": 60}).merged({"train.max_steps": 3})
    assert config.train.warmup_steps == 0 and config.train.max_steps == 3


@pytest.mark.parametrize("text", ["[q_proj,k_proj]", "['q_proj', 'k_proj']", '["q_proj", "k_proj"]', " q_proj , k_proj "])
def test_a_pasted_list_reads_as_a_list(text: str) -> None:
    assert build(lora={"target_modules": text}).lora.target_modules == ["q_proj", "k_proj"]


def test_messages_name_fields_in_the_words_of_each_front_end() -> None:
    from unsloth_nb.errors import CLI, MAGIC, TEXT

    with pytest.raises(ConfigError) as caught:
        TrainConfig.from_dict({"dataset": "qa.jsonl"})
    error = caught.value
    assert error.render(TEXT).startswith("model.name: no model given: set model.name (--model)")
    assert error.render(CLI).startswith("--model (model.name): no model given: pass --model")
    assert error.render(MAGIC).startswith("--model (model.name): no model given: pass --model")
