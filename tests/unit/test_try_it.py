"""Answers are shown as text a person can read: special tokens skipped, cut characters and control bytes dropped.

A byte-level tokenizer (the tiny model's, like Llama 3's and Qwen's) spells a character it never saw
as one token per UTF-8 byte, so an answer that stops between two of them, or a model that samples
loose bytes (the random test model at the generate: section's temperature 1.5), decodes to U+FFFD.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from unsloth_nb.engine.generation import clean_answer, decode_answer
from unsloth_nb.testing.tiny_model import is_tiny_model
from unsloth_nb.ui.try_it import TEST_MODEL_NOTE
from unsloth_nb.ui.view_html import answers_html

TEXT = "Paris, café ☕ 2025"


@pytest.fixture(scope="module")
def tokenizer(tiny_model: Path) -> object:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model))


def test_an_answer_cut_inside_a_multibyte_character_shows_no_replacement_character(tokenizer: object) -> None:
    ids = tokenizer.encode(TEXT, add_special_tokens=False)  # type: ignore[attr-defined]
    raw = [tokenizer.decode(ids[:n]) for n in range(1, len(ids) + 1)]  # type: ignore[attr-defined]
    cut = [n for n, text in enumerate(raw, start=1) if "\ufffd" in text]
    assert cut, f"the tokenizer must split a multi-byte character for this test to mean anything: {ids}"

    for n in cut:
        shown = decode_answer(tokenizer, ids[:n])
        assert "\ufffd" not in shown
        assert shown == raw[n - 1].replace("\ufffd", "").strip(), "only the cut character goes, the text before it stays"
    assert decode_answer(tokenizer, ids) == TEXT, "a whole character is decoded, not dropped"


def test_special_tokens_and_control_characters_are_not_shown(tokenizer: object) -> None:
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")  # type: ignore[attr-defined]
    ids = tokenizer.encode("yes\x07 no\x1b[0m\nmaybe", add_special_tokens=False)  # type: ignore[attr-defined]
    assert decode_answer(tokenizer, [*ids, end]) == "yes no[0m\nmaybe"


def test_clean_answer_keeps_newlines_and_tabs_and_drops_what_cannot_be_shown() -> None:
    assert clean_answer("  a\ufffd\ufffdb\r\n\tc\u0085\ue000\x00  ") == "ab\n\tc"
    assert clean_answer("\ufffd\ufffd") == "", "nothing readable: an empty answer, which the view says"
    assert "(an empty answer)" in answers_html("Q?", {"fine-tuned": clean_answer("\ufffd")})


def test_the_test_model_is_recognised_so_try_it_can_say_its_answers_are_noise(tiny_model: Path, tmp_path: Path) -> None:
    assert is_tiny_model(tiny_model) and not is_tiny_model(tmp_path) and not is_tiny_model("unsloth/Qwen3-14B")
    assert "random-weight test model" in TEST_MODEL_NOTE
