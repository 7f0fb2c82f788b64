"""The shared flag parser of `unsloth-nb train` and `%unsloth_train`."""

from __future__ import annotations

from pathlib import Path

import pytest

from unsloth_nb.errors import ConfigError
from unsloth_nb.flags import FlagError, build_train_parser, parse_train_args


def test_flags_build_a_config() -> None:
    config, options = parse_train_args(
        "--model unsloth/Llama-3.2-1B-Instruct --dataset qa.jsonl --epochs 2 --lr 1e-4 --lora-r 8 "
        "--target-modules q_proj,v_proj --no-load-in-4bit --hub-id me/lora --yes -o job"
    )
    assert config.model.name == "unsloth/Llama-3.2-1B-Instruct"
    assert config.dataset.path == "qa.jsonl"
    assert (config.train.epochs, config.train.lr, config.lora.r) == (2.0, 1e-4, 8)
    assert config.lora.target_modules == ["q_proj", "v_proj"]
    assert config.model.load_in_4bit is False
    assert config.hub.repo_id == "me/lora"
    assert options.yes and options.output_name == "job"


def test_force_runpod_sets_placement() -> None:
    config, _ = parse_train_args(["--model", "m", "--dataset", "d.jsonl", "--force-runpod"])
    assert config.placement == "runpod"


def test_flags_override_a_config_file_and_cell_body(tmp_path: Path) -> None:
    file = tmp_path / "job.yaml"
    file.write_text("model: from-file\ndataset: file.jsonl\nlora: {r: 4}\n")
    config, _ = parse_train_args(["--config", str(file), "--lora-r", "32"], base={"train": {"max_steps": 7}})
    assert (config.model.name, config.lora.r, config.train.max_steps) == ("from-file", 32, 7)


def test_columns_flag_takes_pairs() -> None:
    config, _ = parse_train_args("--model m --dataset d.csv --columns question=q,answer=a")
    assert config.dataset.columns == {"question": "q", "answer": "a"}


def test_unknown_flag_is_a_short_error() -> None:
    with pytest.raises(FlagError, match="unknown flag --lora-rank; did you mean --lora-r"):
        parse_train_args("--model m --dataset d --lora-rank 8")


def test_bad_value_names_the_field() -> None:
    with pytest.raises(ConfigError, match=r"^train\.lr: expected a number"):
        parse_train_args("--model m --dataset d --lr fast")


def test_help_lists_every_section() -> None:
    text = build_train_parser().format_help()
    for words in ("--model", "--dataset", "--lora-r", "--max-steps", "--hub-id", "--max-cost", "LoRA adapter", "RunPod"):
        assert words in text


def test_an_unknown_flag_names_the_closest_real_one() -> None:
    with pytest.raises(FlagError, match=r"unknown flag --epoch; did you mean --epochs\?"):
        parse_train_args("--model m --dataset d --epoch 3")


def test_flag_mistakes_and_field_mistakes_come_together() -> None:
    from unsloth_nb.errors import InputErrors

    with pytest.raises(InputErrors) as caught:
        parse_train_args("--model m --dataset d --epoch 3 --lora-r 0 --lr fast stray")

    messages = [str(e) for e in caught.value.errors()]
    assert messages[0].startswith("unknown flag --epoch; did you mean --epochs?")
    assert messages[1].startswith("unexpected value 'stray'")
    assert {e.field for e in caught.value.errors()[2:]} == {"lora.r", "train.lr"}


def test_the_help_hint_names_the_place_the_help_is() -> None:
    from unsloth_nb.errors import CLI, MAGIC

    with pytest.raises(FlagError) as caught:
        parse_train_args("--model m --dataset d --epoch 3")
    assert "see unsloth-nb train --help" in caught.value.render(CLI)
    assert "see %unsloth_train? for the list of flags" in caught.value.render(MAGIC)
    assert "--help" not in caught.value.render(MAGIC)


def test_max_steps_below_the_default_warmup_is_accepted() -> None:
    config, _ = parse_train_args("--model m --dataset d --max-steps 3")
    assert (config.train.max_steps, config.train.warmup_steps) == (3, 0)


def test_a_pasted_list_of_target_modules() -> None:
    config, _ = parse_train_args(["--model", "m", "--dataset", "d", "--target-modules", "[q_proj,k_proj]"])
    assert config.lora.target_modules == ["q_proj", "k_proj"]


def test_an_unknown_command_names_the_closest(capsys: pytest.CaptureFixture[str]) -> None:
    from unsloth_nb import cli

    assert cli.main(["trian", "--model", "m"]) == cli.EXIT_BAD_INPUT
    assert "unsloth-nb: unknown command 'trian'; did you mean 'train'?" in capsys.readouterr().err


def test_the_cli_asks_for_keys_after_showing_the_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """In a terminal every missing key is asked for in a hidden prompt, once the plan and its price are on screen."""
    import getpass
    import io
    import sys

    from unsloth_nb import cli
    from unsloth_nb.demo import demo_dataset_path

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    for name in ("RUNPOD_API_KEY", "HF_TOKEN"):
        monkeypatch.setenv(name, "placeholder")  # so that the value the prompt sets is undone after the test
        monkeypatch.delenv(name)
    asked: list[tuple[str, str]] = []

    def password_box(prompt: str = "", stream: object = None) -> str:
        asked.append((prompt.split(" ", 1)[0], sys.stderr.getvalue()))
        return "typed-" + str(len(asked))

    monkeypatch.setattr(getpass, "getpass", password_box)
    monkeypatch.setattr("sys.stdin", Terminal("n\n"))  # and "no" to the rental question
    argv = ["train", "--model", "unsloth/Llama-3.3-70B-Instruct", "--dataset", str(demo_dataset_path())]
    argv += ["--placement", "runpod", "--hub-id", "me/big-lora", "--confirm-above", "0"]

    code = cli.main(argv)

    assert [name for name, _ in asked] == ["HF_TOKEN", "RUNPOD_API_KEY"]
    assert "Plan: unsloth/Llama-3.3-70B-Instruct on RunPod" in asked[0][1]
    assert code == cli.EXIT_BAD_INPUT and "the rental was not confirmed" in capsys.readouterr().err


def test_errors_names_a_fields_flag_from_what_config_hands_it_and_never_imports_config() -> None:
    """errors sits below config (config raises its errors), so config registers its field lookups when it is
    imported; a message worded before that names the field alone. A fresh interpreter shows both."""
    import subprocess
    import sys

    script = """
import sys
from unsloth_nb.errors import CLI, ConfigError, set_field, use_wording

def worded():
    with use_wording(CLI):
        return [str(ConfigError("lora.r", "too small; " + set_field("lora.r", 8))),
                str(ConfigError("dataset.path", "bad rows; " + set_field("dataset.skip_invalid", True)))]

print(worded())
print("unsloth_nb.config" in sys.modules)
import unsloth_nb.config
print(worded())
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == [
        "['lora.r: too small; set lora.r: 8', 'dataset.path: bad rows; set dataset.skip_invalid: true']",
        "False",
        "['--lora-r (lora.r): too small; pass --lora-r 8', '--dataset (dataset.path): bad rows; pass --skip-invalid']",
    ]
