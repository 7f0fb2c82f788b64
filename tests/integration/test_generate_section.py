"""The generate: section reaches every place that asks a model: job.chat, Try it, the judge's answers.

Run against the tiny model trained in this process (real Unsloth/transformers generate, no stand-ins).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

import unsloth_nb
from unsloth_nb.config import GenerateConfig, TrainConfig
from unsloth_nb.demo import demo_config, demo_dataset_path
from unsloth_nb.engine.generation import (
    judge_settings,
    openai_params,
    sampling_kwargs,
    template_kwargs,
    thinking_note,
)
from unsloth_nb.errors import UnslothNbError

QWEN3_LIKE = SimpleNamespace(chat_template="{% if enable_thinking is defined and enable_thinking is false %}{% endif %}")
LLAMA_LIKE = SimpleNamespace(chat_template="{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}")


def test_defaults_follow_the_notebooks_and_none_leaves_the_model_its_own() -> None:
    assert sampling_kwargs(GenerateConfig()) == {"max_new_tokens": 128, "do_sample": True, "temperature": 1.5, "min_p": 0.1}
    assert sampling_kwargs(GenerateConfig(temperature=None)) == {"max_new_tokens": 128}
    assert sampling_kwargs(GenerateConfig(temperature=0, max_new_tokens=9)) == {"max_new_tokens": 9, "do_sample": False}
    qwen = GenerateConfig(max_new_tokens=256, temperature=0.7, min_p=None, top_p=0.8, top_k=20, enable_thinking=False)
    assert sampling_kwargs(qwen) == {"max_new_tokens": 256, "do_sample": True, "temperature": 0.7, "top_p": 0.8, "top_k": 20}
    assert openai_params(qwen) == {
        "max_tokens": 256,
        "temperature": 0.7,
        "top_p": 0.8,
        "top_k": 20,
        "chat_template_kwargs": {"enable_thinking": False},
    }


def test_enable_thinking_reaches_only_a_template_that_has_the_switch() -> None:
    settings = GenerateConfig(enable_thinking=False)
    assert template_kwargs(QWEN3_LIKE, settings) == {"enable_thinking": False}
    assert thinking_note(QWEN3_LIKE, settings) is None
    assert template_kwargs(LLAMA_LIKE, settings) == {}
    assert "has no enable_thinking switch" in (thinking_note(LLAMA_LIKE, settings) or "")
    assert thinking_note(LLAMA_LIKE, GenerateConfig()) is None  # not set: nothing to say


def test_the_judge_answers_greedily_unless_told_to_sample() -> None:
    sampled = GenerateConfig(temperature=0.7, enable_thinking=False)
    fair = judge_settings("greedy", 48, sampled)
    assert (fair.greedy, fair.max_new_tokens, fair.enable_thinking) == (True, 48, False)
    asked = judge_settings("generate", 48, sampled)
    assert (asked.temperature, asked.max_new_tokens) == (0.7, 48)
    assert TrainConfig.from_dict({"model": "m", "dataset": "d", "judge": {}}).judge.decoding == "greedy"


def test_the_demo_answers_greedily_from_its_generate_section(tmp_path: Path) -> None:
    config = TrainConfig.from_dict(demo_config(tmp_path))
    assert (config.generate.temperature, config.generate.max_new_tokens) == (0, 40)


def test_job_chat_answers_with_the_generate_settings_and_refuses_a_typo(tiny_model: Path) -> None:
    job = unsloth_nb.train(
        model=str(tiny_model),
        dataset=str(demo_dataset_path()),
        train={"max_steps": 2, "warmup_steps": 1, "max_seq_length": 512},
        generate={"temperature": 0, "max_new_tokens": 6, "enable_thinking": True},
        placement="local",
        wait=True,
    )
    assert job.state == "succeeded"

    with pytest.warns(UserWarning, match="has no enable_thinking switch"):
        first = job.chat("Who won Super Bowl LIX?")
    assert isinstance(first, str)
    with pytest.warns(UserWarning):
        assert job.chat("Who won Super Bowl LIX?") == first  # greedy: the same answer twice
    tokens = job.tokenizer("x " + first, add_special_tokens=False)["input_ids"]
    assert len(tokens) <= 6 + 2  # max_new_tokens from the section caps the answer
    with pytest.raises(UnslothNbError, match="temprature"):
        job.chat("Hi", temprature=0.5)
    with pytest.raises(UnslothNbError, match=r"generate\.temperature"):
        job.chat("Hi", top_k=20)  # greedy with a sampling filter is refused as in the config


def test_the_judges_answers_say_when_enable_thinking_cannot_apply(tiny_model: Path, tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from unsloth import FastLanguageModel

    from unsloth_nb.config import JudgeConfig
    from unsloth_nb.evaluate.holdout import EvalItem, HeldOut
    from unsloth_nb.evaluate.run import answers_for

    base, tokenizer = FastLanguageModel.from_pretrained(str(tiny_model), max_seq_length=512, load_in_4bit=False, dtype=None)
    model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj"]))
    heldout = HeldOut([EvalItem(f"q{i}", [{"role": "user", "content": f"Question {i}?"}]) for i in range(2)], "holdout")
    said: list[tuple[str, dict]] = []

    answers = answers_for(
        heldout,
        JudgeConfig(enabled=True, max_new_tokens=4, batch_size=2),
        tmp_path,
        lambda: (model, tokenizer),
        emit=lambda kind, **data: said.append((kind, data)),
        generate=GenerateConfig(enable_thinking=False),
    )

    assert len(answers.pairs) == 2 and answers.max_new_tokens == 4
    logs = [data["message"] for kind, data in said if kind == "log"]
    assert len(logs) == 1 and "has no enable_thinking switch" in logs[0]
