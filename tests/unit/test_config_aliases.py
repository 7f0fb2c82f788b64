"""Unsloth's and TRL's own names, pasted from a notebook, in flags, a cell body and a config file.

The names are the ones issue 17 found refused as "unknown field" when its 7 Unsloth notebooks
were ported: each is now read as our field, or as a value we fix (accepted when it matches,
refused with the reason otherwise).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from unsloth_nb.config import TrainConfig
from unsloth_nb.demo import demo_dataset_path
from unsloth_nb.errors import ConfigError
from unsloth_nb.flags import build_train_parser, parse_cell_body, read_train_args

DEMO = demo_dataset_path()

#: The training core of an Unsloth notebook, as a user pastes its keyword arguments (Python literals included).
PASTED = f"""\
model_name: unsloth/Llama-3.2-1B-Instruct
max_seq_length: 1024
dtype: None
load_in_4bit: True
r: 8
lora_alpha: 32
lora_dropout: 0
bias: "none"
target_modules: [q_proj, v_proj]
use_gradient_checkpointing: "unsloth"
random_state: 3407
use_rslora: False
loftq_config: None
dataset: {DEMO}
dataset_text_field: text
per_device_train_batch_size: 4
gradient_accumulation_steps: 2
warmup_steps: 3
max_steps: 30
learning_rate: 1e-4
logging_steps: 2
optim: adamw_torch
weight_decay: 0.01
lr_scheduler_type: cosine
seed: 3407
output_dir: outputs
report_to: "none"
placement: local
"""


def check_pasted(config: TrainConfig) -> None:
    assert config.model.name == "unsloth/Llama-3.2-1B-Instruct"
    assert (config.model.dtype, config.model.load_in_4bit) == ("auto", True)
    assert (config.lora.r, config.lora.alpha, config.lora.dropout) == (8, 32, 0.0)
    assert config.lora.target_modules == ["q_proj", "v_proj"]
    assert (config.lora.gradient_checkpointing, config.lora.use_rslora) == ("unsloth", False)
    t = config.train
    assert (t.batch_size, t.grad_accum, t.warmup_steps, t.max_steps, t.lr) == (4, 2, 3, 30, pytest.approx(1e-4))
    assert (t.logging_steps, t.optim, t.weight_decay, t.scheduler, t.seed) == (2, "adamw_torch", 0.01, "cosine", 3407)
    assert t.max_seq_length == 1024 and config.save.output_dir == "outputs"
    assert config.dataset.columns == {}  # dataset_text_field: text is what we use anyway


def test_a_pasted_notebook_core_is_a_valid_config_flat_in_a_cell_body() -> None:
    config, _, errors = read_train_args("", parse_cell_body(PASTED))
    assert errors == []
    check_pasted(config)


def test_the_same_names_in_their_sections_and_in_a_yaml_file(tmp_path: Path) -> None:
    config_file = tmp_path / "job.yaml"
    config_file.write_text(
        "model: {model_name: unsloth/Llama-3.2-1B-Instruct, max_seq_length: 1024, dtype: null, load_in_4bit: true}\n"
        "lora: {r: 8, lora_alpha: 32, lora_dropout: 0, bias: none, target_modules: [q_proj, v_proj],\n"
        "       use_gradient_checkpointing: unsloth, random_state: 3407, use_rslora: false, loftq_config: null}\n"
        f"dataset: {DEMO}\n"
        "train: {per_device_train_batch_size: 4, gradient_accumulation_steps: 2, warmup_steps: 3, max_steps: 30,\n"
        "        learning_rate: 1.0e-4, logging_steps: 2, optim: adamw_torch, weight_decay: 0.01,\n"
        "        lr_scheduler_type: cosine, seed: 3407, output_dir: outputs, report_to: none, dataset_text_field: text}\n"
    )
    config, _, errors = read_train_args(["--config", str(config_file)])
    assert errors == []
    check_pasted(config)
    assert TrainConfig.from_file(config_file).train.lr == pytest.approx(1e-4)


def test_a_json_file_with_python_names(tmp_path: Path) -> None:
    config_file = tmp_path / "job.json"
    config_file.write_text(f'{{"model_name": "m", "dataset": "{DEMO}", "learning_rate": 3e-4, "bias": "none", "dtype": null}}')
    config = TrainConfig.from_file(config_file)
    assert (config.model.name, config.train.lr, config.model.dtype) == ("m", pytest.approx(3e-4), "auto")


def test_flags_take_their_names_and_python_literals() -> None:
    argv = (
        f"--model-name m --dataset {DEMO} --learning_rate 1e-4 --load-in-4bit False --gradient-checkpointing True "
        "--use-gradient-checkpointing True --random-state 7 --dtype None --per-device-train-batch-size 4 "
        "--bias none --report-to none --loftq-config None --dataset-text-field content --packing True"
    )
    config, _, errors = read_train_args(argv)
    assert errors == []
    assert (config.model.name, config.train.lr, config.model.load_in_4bit) == ("m", pytest.approx(1e-4), False)
    assert (config.lora.gradient_checkpointing, config.train.seed, config.model.dtype) == ("true", 7, "auto")
    assert (config.train.batch_size, config.train.packing) == (4, True)
    assert config.dataset.columns == {"text": "content"}  # TRL's text column, under our name for it

    config, _, errors = read_train_args(f"--model m --dataset {DEMO} --load-in-4bit=True --gradient-checkpointing False")
    assert errors == [] and config.model.load_in_4bit and config.lora.gradient_checkpointing == "false"


REFUSED = {
    "bias": ("all", "bias='none' (Unsloth's optimised path); remove bias or set it to 'none'"),
    "report_to": ("wandb", "not to an experiment tracker; remove report_to or set it to 'none'"),
    "loftq_config": ("{loftq_bits: 4}", "without LoftQ; remove loftq_config or set it to None"),
    "load_in_8bit": ("True", "remove load_in_8bit or set it to False"),
    "full_finetuning": ("True", "trains LoRA adapters, not every weight"),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_a_fixed_name_with_another_value_is_refused_with_the_reason(name: str, tmp_path: Path) -> None:
    value, reason = REFUSED[name]
    config_file = tmp_path / "job.yaml"
    config_file.write_text(f"model_name: m\ndataset: {DEMO}\n{name}: {value}\n")
    for errors in (
        read_train_args("", parse_cell_body(config_file.read_text()))[2],
        read_train_args(["--config", str(config_file)])[2],
        read_train_args(f"--model m --dataset {DEMO} --{name.replace('_', '-')} '{value}'")[2],
    ):
        assert [error.field for error in errors] == [name]  # this one mistake, nothing else
        assert reason in str(errors[0])


def test_two_names_for_one_field_must_agree() -> None:
    _, _, errors = read_train_args("", {"model": "m", "dataset": str(DEMO), "seed": 1, "lora": {"random_state": 2}})
    assert len(errors) == 1 and errors[0].field == "train.seed" and "one seed" in str(errors[0])
    config, _, errors = read_train_args("", {"model": "m", "dataset": str(DEMO), "seed": 3407, "random_state": 3407})
    assert errors == [] and config.train.seed == 3407


def test_a_flag_overrides_a_pasted_name() -> None:
    config, _, errors = read_train_args("--model other --lr 5e-4", parse_cell_body(PASTED))
    assert errors == [] and config.model.name == "other" and config.train.lr == pytest.approx(5e-4)


def test_a_name_outside_its_call_is_still_unknown_with_did_you_mean() -> None:
    with pytest.raises(ConfigError, match=r"lora\.learning_rate: unknown field; did you mean train\.lr\?"):
        TrainConfig.from_dict({"model": "m", "dataset": "d", "lora": {"learning_rate": 1e-4}})
    with pytest.raises(ConfigError, match=r"did you mean train\.max_steps"):
        TrainConfig.from_dict({"model": "m", "dataset": "d", "lora": {"max_steps": 3}})


def test_help_shows_both_names() -> None:
    text = " ".join(build_train_parser().format_help().split())
    for fragment in ("(Unsloth/TRL: learning_rate)", "(Unsloth/TRL: model_name)", "(Unsloth/TRL: per_device_train_batch_size)"):
        assert fragment in text
    assert "--bias VALUE" in text and "--report-to VALUE" in text


def test_the_python_api_takes_their_names_and_a_keyword_overrides_a_file(tmp_path: Path) -> None:
    from unsloth_nb.api import as_config

    config_file = tmp_path / "job.yaml"
    config_file.write_text(f"model_name: m\ndataset: {DEMO}\nlearning_rate: 1.0e-4\n")
    config = as_config(config_file, model="other", lora_alpha=32, report_to="none")
    assert (config.model.name, config.train.lr, config.lora.alpha) == ("other", pytest.approx(1e-4), 32)
    with pytest.raises(ConfigError, match="remove bias"):
        as_config(config_file, bias="lora_only")


def test_unsloth_nb_train_help_shows_both_names(capsys: pytest.CaptureFixture[str]) -> None:
    from unsloth_nb import cli

    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--lr LR Learning rate." in text and "(Unsloth/TRL: learning_rate)" in text and "--bias VALUE" in text


# ---------------------------------------------------------------------- the magic
@pytest.fixture
def ip() -> Iterator[InteractiveShell]:
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "unsloth_nb")
    yield shell


def run_cell(ip: InteractiveShell, source: str) -> tuple[bool, str]:
    with capture_output() as captured:
        result = ip.run_cell(source)
    displayed = "".join(str(output.data.get("text/plain", "")) for output in captured.outputs)
    return result.success, captured.stdout + captured.stderr + displayed


def test_the_magic_refuses_only_the_mismatching_fixed_value(ip: InteractiveShell, tiny_model: Path) -> None:
    pasted = PASTED.replace("unsloth/Llama-3.2-1B-Instruct", str(tiny_model)).replace(
        "max_seq_length: 1024", "max_seq_length: 512"
    )
    ok, output = run_cell(ip, f"%%unsloth_train\n{pasted}bias: all\n")
    assert not ok and "Traceback" not in output
    assert "bias='none' (Unsloth's optimised path); remove bias or set it to 'none'" in output
    assert "unknown field" not in output and "problems" not in output  # every other pasted name was understood

    ok, output = run_cell(ip, f"%unsloth_train --model {tiny_model} --dataset {DEMO} --load-in-4bit True --report-to wandb")
    assert not ok and "remove report_to or set it to 'none'" in output and "unknown" not in output


def test_the_magics_help_shows_both_names(ip: InteractiveShell) -> None:
    ok, output = run_cell(ip, "%unsloth_train?")
    assert ok and "learning_rate" in output and "--bias" in output
