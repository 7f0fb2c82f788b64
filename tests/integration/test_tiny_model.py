"""The tiny model is a normal Hugging Face folder, built the same way every time and reused."""

from __future__ import annotations

import json
from pathlib import Path

from unsloth_nb.testing import build_tiny_model


def test_the_tiny_model_is_deterministic_and_reused(tmp_path: Path) -> None:
    first = build_tiny_model(tmp_path / "a", vocab_texts=["Who won Super Bowl LIX? The Eagles."])
    second = build_tiny_model(tmp_path / "b", vocab_texts=["Who won Super Bowl LIX? The Eagles."])
    for name in ("model.safetensors", "tokenizer.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes()

    written = (first / "model.safetensors").stat().st_mtime_ns
    assert build_tiny_model(first, vocab_texts=["Who won Super Bowl LIX? The Eagles."]) == first
    assert (first / "model.safetensors").stat().st_mtime_ns == written

    rebuilt = build_tiny_model(first, vocab_texts=["Other words entirely."])
    assert (rebuilt / "tokenizer.json").read_bytes() != (second / "tokenizer.json").read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folders left behind


def test_the_tiny_model_loads_like_a_hub_model(tiny_model: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = tiny_model
    config = json.loads((folder / "config.json").read_text())
    assert (config["hidden_size"], config["num_hidden_layers"], config["num_attention_heads"], config["num_key_value_heads"]) == (
        64,
        2,
        4,
        2,
    )

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<pad>"
    assert model.config.vocab_size == len(tokenizer)
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True)
    assert text == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
